"""What CloudWatch does for the pipeline on AWS: collects the services' metrics and
evaluates the alarms, notifying their SNS actions.

Metrics: the data plane reports every sample with AWS's namespace, metric name,
dimensions and unit (aws-facts.md section 1) through ``put``. Samples are
aggregated in memory and flushed about once a second as statistic sets
(``put_metric_data`` with ``StatisticValues``), so the request path never waits
on the emulator. Raw samples are also kept in memory for a bounded time, because
the emulator cannot compute percentiles (aws-facts.md section 7).

Alarms: ``evaluate_alarms(now)`` reads the alarms back from the emulator with
``describe_alarms``, computes each alarm's statistic for its last N complete
periods, fixed and aligned to the period boundary as CloudWatch's are (``periods``;
math in ``alarms.py``), writes changed
states with ``set_alarm_state`` and publishes AWS's alarm notification JSON to
each action topic. A background thread calls it every ``evaluation_interval_s``.
The statistics come from the samples held here (per-second aggregates kept for
``RETENTION_S``, raw samples for percentiles), not from the emulator, because
moto matches a *subset* of dimensions while CloudWatch requires the exact set
(an alarm on TableName alone must not see TableName+Operation data; aws-facts.md
section 1). Periods are the declared ones, multiplied by ``time_scale``
(default 1; end-to-end tests and demos use e.g. 0.02 so a 60 s period lasts
1.2 s). Unit tests make an alarm fire without waiting by calling
``put(..., timestamp=...)`` inside the evaluation range, or by passing a
``now`` of their choosing. A percentile alarm with EvaluateLowSampleCountPercentile
``ignore`` keeps its state while its newest period has fewer samples than CloudWatch's
minimum (``alarms.low_sample_minimum``; with a time scale, the count a full period would
have at the same rate). SQS queue depth (AWS/SQS) is sampled from the
emulator at each evaluation for the queues in ``queue_urls``. Metric-math alarms are evaluated
for the subset in ``metric_math.py`` (FILL, IF, comparisons, arithmetic); other expressions and
anomaly-detection alarms are skipped (logged once).
"""
from __future__ import annotations

import collections
import json
import math
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.config import Config

from . import alarms, metric_math
from .aws_metrics import TIME_METRICS

log = logging.getLogger(__name__)

RETENTION_S = 6 * 3600.0  # longest alarm range evaluated exactly
RAW_MAX_SAMPLES = 200_000
MAX_DATUMS_PER_CALL = 1000  # PutMetricData limit

_REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-central-1": "EU (Frankfurt)",
}

MetricKey = tuple[str, str, tuple[tuple[str, str], ...], str]
SeriesKey = tuple[str, str, tuple[tuple[str, str], ...]]


def _merge(table: dict[Any, list[float]], key: Any, value: float) -> None:
    agg = table.get(key)
    if agg is None:
        table[key] = [1.0, value, value, value]
    else:
        agg[0] += 1
        agg[1] += value
        if value < agg[2]:
            agg[2] = value
        if value > agg[3]:
            agg[3] = value


def _from_aggregate(stat: str, agg: list[float]) -> float | None:
    """One standard statistic from [count, sum, min, max]; None when the period has no data."""
    if stat not in ("Sum", "SampleCount", "Average", "Maximum", "Minimum"):
        raise alarms.UnsupportedAlarm(f"unknown statistic {stat!r}")
    if not agg or agg[0] == 0:
        return None
    count, total, low, high = agg
    return {"Sum": total, "SampleCount": count, "Average": total / count, "Maximum": high, "Minimum": low}[stat]


def aws_client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client bound to the emulator with fake credentials."""
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                      connect_timeout=5, read_timeout=30))


def _iso(ts: float) -> str:
    """StateChangeTime format of alarm notifications: 2015-06-03T17:43:27.123+0000."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


class Monitor:
    def __init__(self, endpoint_url: str, region: str, *, flush_interval_s: float = 1.0,
                 evaluation_interval_s: float = 10.0, account_id: str = "123456789012",
                 time_scale: float = 1.0, queue_urls: tuple[str, ...] = (), count_rates: bool = False,
                 time_threshold_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if time_threshold_scale <= 0:
            raise ValueError("time_threshold_scale must be > 0")
        # Drills run a whole cloud time-scaled: a scaled period sees time_scale of a real period's
        # events, so with count_rates a Sum/SampleCount is judged as the count a real period would
        # have at the same rate (value / time_scale), and thresholds on durations (Duration,
        # IteratorAge, Latency) are multiplied by time_threshold_scale.
        self.count_rates = count_rates
        self.time_threshold_scale = time_threshold_scale
        self.region = region
        self.time_scale = time_scale
        self.queue_urls = tuple(dict.fromkeys(queue_urls))
        self._sqs = aws_client("sqs", endpoint_url, region)
        self.account_id = account_id
        self.flush_interval_s = flush_interval_s
        self.evaluation_interval_s = evaluation_interval_s
        self._cw = aws_client("cloudwatch", endpoint_url, region)
        self._sns = aws_client("sns", endpoint_url, region)
        self._lock = threading.Lock()
        self._pending: dict[tuple[MetricKey, int], list[float]] = {}  # count, sum, min, max
        self._series: dict[SeriesKey, dict[int, list[float]]] = {}
        self._raw: dict[SeriesKey, collections.deque] = {}
        self._last_trim = time.monotonic()
        self._totals: collections.Counter[MetricKey] = collections.Counter()
        self._eval_lock = threading.Lock()
        self._not_evaluated: set[str] = set()  # alarms already reported as not evaluable here
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.notifications_sent = 0
        self.flush_failures = 0

    # ---- metrics -------------------------------------------------------------------------
    def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float,
            unit: str = "None", timestamp: float | None = None) -> None:
        """Record one sample; cheap and non-blocking apart from a short lock."""
        dims = tuple(sorted(dimensions.items()))
        key = (namespace, name, dims, unit)
        series_key = (namespace, name, dims)
        now = time.time() if timestamp is None else timestamp
        second = int(now)
        with self._lock:
            _merge(self._pending, (key, second), value)
            series = self._series.get(series_key)
            if series is None:
                series = self._series[series_key] = {}
            _merge(series, second, value)
            self._totals[key] += value  # type: ignore[assignment]  # Counter sums floats; typeshed types counts as int
            raw = self._raw.get(series_key)
            if raw is None:
                raw = self._raw[series_key] = collections.deque(maxlen=RAW_MAX_SAMPLES)
            raw.append((now, value))

    def total(self, namespace: str, name: str, dimensions: dict[str, str]) -> float:
        """Sum of every sample ever put for a metric (for reports and tests)."""
        dims = tuple(sorted(dimensions.items()))
        with self._lock:
            return sum(v for (ns, n, d, _), v in self._totals.items() if (ns, n, d) == (namespace, name, dims))

    def published(self) -> set[tuple[str, str, tuple[str, ...]]]:
        """Every (namespace, metric, dimension names) put so far (for the metric audit)."""
        with self._lock:
            return {(ns, n, tuple(k for k, _ in d)) for ns, n, d, _ in self._totals}

    def flush(self) -> int:
        """Send pending aggregates as statistic sets; returns the number of datums sent."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if time.monotonic() - self._last_trim > 60:
                self._trim()
        if not pending:
            return 0
        by_namespace: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for ((namespace, name, dims, unit), second), (count, total, low, high) in pending.items():
            by_namespace[namespace].append({
                "MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                "Timestamp": datetime.fromtimestamp(second, tz=timezone.utc), "Unit": unit,
                "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
            })
        sent = 0
        for namespace, datums in by_namespace.items():
            for i in range(0, len(datums), MAX_DATUMS_PER_CALL):
                chunk = datums[i:i + MAX_DATUMS_PER_CALL]
                try:
                    self._cw.put_metric_data(Namespace=namespace, MetricData=chunk)
                    sent += len(chunk)
                except Exception:  # the emulator may be stopping; count, don't crash
                    self.flush_failures += 1
                    log.warning("put_metric_data failed for %s", namespace, exc_info=True)
        return sent

    def _trim(self) -> None:
        """Forget aggregates older than the retention (caller holds the lock)."""
        self._last_trim = time.monotonic()
        cutoff = time.time() - RETENTION_S
        for series in self._series.values():
            for second in [s for s in series if s < cutoff]:
                del series[second]
        for raw in self._raw.values():
            while raw and raw[0][0] < cutoff:
                raw.popleft()

    def window(self, namespace: str, name: str, dimensions: dict[str, str], start: float,
               end: float) -> tuple[list[float], list[float]]:
        """(per-second aggregates merged: [count, sum, min, max] or [], raw samples) in [start, end)."""
        key = (namespace, name, tuple(sorted(dimensions.items())))
        merged: list[float] = []
        with self._lock:
            for second, (count, total, low, high) in self._series.get(key, {}).items():
                if start <= second < end:
                    if not merged:
                        merged = [count, total, low, high]
                    else:
                        merged = [merged[0] + count, merged[1] + total, min(merged[2], low),
                                  max(merged[3], high)]
            raw = [v for t, v in self._raw.get(key, ()) if start <= t < end]
        return merged, raw

    # ---- alarms --------------------------------------------------------------------------
    def sample_queues(self) -> None:
        """AWS/SQS metrics, which SQS publishes on its own every minute; here at each evaluation.

        ApproximateAgeOfOldestMessage is not available from the emulator, so it is not published.
        """
        for url in self.queue_urls:
            try:
                attrs = self._sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                  "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            except Exception:  # a deleted queue must not stop the evaluation
                log.debug("cannot sample %s", url, exc_info=True)
                continue
            dims = {"QueueName": url.rstrip("/").rsplit("/", 1)[-1]}
            self.put("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims,
                     float(attrs.get("ApproximateNumberOfMessages", 0)), "Count")
            self.put("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dims,
                     float(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)), "Count")

    def evaluate_alarms(self, now: float | None = None) -> list[dict[str, Any]]:
        """Evaluate every metric alarm once; returns the notifications for changed states."""
        with self._eval_lock:
            self.sample_queues()
            self.flush()
            now = time.time() if now is None else now
            changes: list[dict[str, Any]] = []
            for alarm in self._describe_alarms():
                try:
                    change = self._evaluate_one(alarm, now)
                except alarms.UnsupportedAlarm as exc:
                    name = str(alarm.get("AlarmName"))
                    if name not in self._not_evaluated:  # said once, loudly, not on every tick
                        self._not_evaluated.add(name)
                        log.warning("alarm %s is stored but NOT evaluated by the local cloud: %s", name, exc)
                    continue
                if change is not None:
                    changes.append(change)
            return changes

    def _describe_alarms(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self._cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
            found.extend(page.get("MetricAlarms", []))
        return found

    def periods(self, alarm: dict[str, Any], now: float) -> list[tuple[float | None, int]]:
        """(statistic, sample count) for each of the alarm's last N complete periods, oldest first.

        CloudWatch aggregates a metric into fixed periods aligned to the period boundary (a 60 s
        period runs from :00 to :00 of each minute) and an evaluation looks at the newest N
        *complete* periods: an alarm evaluated at 11:26:05 reports datapoints for 11:23, 11:24 and
        11:25. The evaluation window slides by whole periods as time passes, so a datapoint's value
        never changes once its period is over; a window sliding with the clock instead re-cuts the
        same samples into new buckets and can go ALARM -> OK -> ALARM after a fault has stopped.
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation-window.html
        No evaluation delay is modelled: samples here are stamped when they reach the monitor, so a
        period is final as soon as it ends (on AWS, late-arriving datapoints can still change it).
        With a time scale, periods are aligned to multiples of the scaled period since the epoch.
        """
        if alarm.get("Metrics"):
            return self._math_periods(alarm, now)
        if not alarm.get("MetricName"):
            raise alarms.UnsupportedAlarm("an alarm without a metric is not evaluated locally")
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return self._metric_periods(alarm["Namespace"], alarm["MetricName"], dims,
                                    alarm.get("ExtendedStatistic") or alarm["Statistic"],
                                    int(alarm["Period"]), int(alarm["EvaluationPeriods"]), now)

    def _metric_periods(self, namespace: str, name: str, dims: dict[str, str], stat: str, declared_period: int,
                        n: int, now: float) -> list[tuple[float | None, int]]:
        period = float(declared_period) * self.time_scale
        end = math.floor(now / period) * period  # the newest complete period ends here
        if self.time_scale == 1.0:
            end = float(int(end))
        values: list[tuple[float | None, int]] = []
        for i in range(n - 1, -1, -1):
            w_end = end - i * period
            w_start = w_end - period
            agg, raw = self.window(namespace, name, dims, w_start, w_end)
            if self.time_scale != 1.0:
                agg = [float(len(raw)), sum(raw), min(raw), max(raw)] if raw else []
            if stat.startswith("p"):
                values.append((alarms.statistic(stat, raw), len(raw)))
            else:
                values.append((_from_aggregate(stat, agg), int(agg[0]) if agg else 0))
        return values

    def _math_periods(self, alarm: dict[str, Any], now: float) -> list[tuple[float | None, int]]:
        """A metric-math alarm: each query's statistic per period, then the returned expression
        per period (the subset in metric_math.py). Sum/SampleCount inputs are judged as rates
        under ``count_rates``, like single-metric alarms."""
        queries = alarm["Metrics"]
        returned = [q for q in queries if q.get("ReturnData")]
        if len(returned) != 1 or not returned[0].get("Expression"):
            raise alarms.UnsupportedAlarm("a metric-math alarm must return exactly one expression")
        try:
            expression = metric_math.compile_expression(returned[0]["Expression"])
        except metric_math.UnsupportedExpression as exc:
            raise alarms.UnsupportedAlarm(str(exc)) from None
        n = int(alarm["EvaluationPeriods"])
        series: dict[str, list[float | None]] = {}
        counts = [0] * n
        for query in queries:
            stat_query = query.get("MetricStat")
            if not stat_query:
                continue
            metric = stat_query["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            periods = self._metric_periods(metric["Namespace"], metric["MetricName"], dims, stat_query["Stat"],
                                           int(stat_query["Period"]), n, now)
            scale = self.time_scale if self.count_rates and stat_query["Stat"] in ("Sum", "SampleCount") else 1.0
            series[query["Id"]] = [None if v is None else v / scale for v, _ in periods]
            counts = [c + k for c, (_, k) in zip(counts, periods, strict=False)]
        return [(expression({k: v[i] for k, v in series.items()}), counts[i]) for i in range(n)]

    def decide(self, alarm: dict[str, Any], now: float) -> alarms.Decision | None:
        """The alarm's state at ``now`` from its complete periods; None when the state is kept
        without a decision (a percentile over too few samples with EvaluateLowSampleCountPercentile
        ``ignore``). Pure apart from reading the samples held here."""
        return self._decide(alarm, now, self.periods(alarm, now))

    def _decide(self, alarm: dict[str, Any], now: float,
                periods: list[tuple[float | None, int]]) -> alarms.Decision | None:
        minimum = alarms.low_sample_minimum(alarm.get("ExtendedStatistic") or "")
        if minimum is not None and alarm.get("EvaluateLowSampleCountPercentile") == "ignore":
            # A scaled period (time_scale < 1) sees that fraction of a real period's requests:
            # compare the count a real period would have at the same rate.
            newest = (periods[-1][1] if periods else 0) / self.time_scale
            if 0 < newest < minimum:
                return None  # too few samples for this percentile: the state does not change
        n = int(alarm["EvaluationPeriods"])
        values = [value for value, _ in periods]
        threshold = float(alarm["Threshold"])
        if self.count_rates and alarm.get("Statistic") in ("Sum", "SampleCount"):
            values = [None if v is None else v / self.time_scale for v in values]
        if (alarm.get("Namespace"), alarm.get("MetricName")) in TIME_METRICS:
            threshold *= self.time_threshold_scale
        return alarms.decide(
            values, threshold=threshold,
            operator=alarm["ComparisonOperator"],
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or n),
            treat_missing=alarm.get("TreatMissingData", "missing"), current_state=alarm["StateValue"])

    def _evaluate_one(self, alarm: dict[str, Any], now: float) -> dict[str, Any] | None:
        periods = self.periods(alarm, now)
        decision = self._decide(alarm, now, periods)
        if decision is None:
            return None
        values = [value for value, _ in periods]
        old = alarm["StateValue"]
        if decision.state == old:
            return None
        reason_data = json.dumps({"version": "1.0", "queryDate": _iso(now),
                                  "statistic": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
                                  "period": alarm.get("Period"), "threshold": alarm["Threshold"],
                                  "recentDatapoints": [v for v in values if v is not None]})
        self._cw.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=decision.state,
                                 StateReason=decision.reason[:1023], StateReasonData=reason_data)
        message = self.notification(alarm, old, decision, now)
        actions = {alarms.ALARM: "AlarmActions", alarms.OK: "OKActions",
                   alarms.INSUFFICIENT: "InsufficientDataActions"}[decision.state]
        if alarm.get("ActionsEnabled", True):
            for arn in alarm.get(actions, []):
                if not arn.startswith("arn:aws:sns:"):
                    continue
                region_name = _REGION_NAMES.get(self.region, self.region)
                subject = f'{decision.state}: "{alarm["AlarmName"]}" in {region_name}'[:100]
                try:
                    self._sns.publish(TopicArn=arn, Subject=subject, Message=json.dumps(message))
                    self.notifications_sent += 1
                except Exception:  # a missing topic must not stop the other alarms
                    log.warning("could not notify %s", arn, exc_info=True)
        return message

    def notification(self, alarm: dict[str, Any], old: str, decision: alarms.Decision,
                     now: float) -> dict[str, Any]:
        """AWS's alarm notification shape (the SNS message body).

        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
        """
        if alarm.get("Metrics"):  # a metric-math alarm's trigger lists its queries instead
            return self._notification_body(alarm, old, decision, now, {
                "Metrics": alarm["Metrics"], "EvaluationPeriods": alarm["EvaluationPeriods"],
                "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]),
                "ComparisonOperator": alarm["ComparisonOperator"], "Threshold": alarm["Threshold"],
                "TreatMissingData": alarm.get("TreatMissingData", "missing"),
                "EvaluateLowSampleCountPercentile": ""})
        trigger: dict[str, Any] = {
            "MetricName": alarm["MetricName"], "Namespace": alarm["Namespace"],
            "StatisticType": "ExtendedStatistic" if alarm.get("ExtendedStatistic") else "Statistic",
            "Statistic": (alarm.get("ExtendedStatistic") or alarm.get("Statistic", "")).upper(),
            "Unit": alarm.get("Unit"),
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm["Period"], "EvaluationPeriods": alarm["EvaluationPeriods"],
            "DatapointsToAlarm": alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]),
            "ComparisonOperator": alarm["ComparisonOperator"], "Threshold": alarm["Threshold"],
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": alarm.get("EvaluateLowSampleCountPercentile", ""),
        }
        return self._notification_body(alarm, old, decision, now, trigger)

    def _notification_body(self, alarm: dict[str, Any], old: str, decision: alarms.Decision, now: float,
                           trigger: dict[str, Any]) -> dict[str, Any]:
        return {
            "AlarmName": alarm["AlarmName"], "AlarmDescription": alarm.get("AlarmDescription"),
            "AWSAccountId": self.account_id,
            "AlarmConfigurationUpdatedTimestamp": _iso(alarm["AlarmConfigurationUpdatedTimestamp"].timestamp())
            if alarm.get("AlarmConfigurationUpdatedTimestamp") else None,
            "NewStateValue": decision.state, "NewStateReason": decision.reason,
            "StateChangeTime": _iso(now), "Region": _REGION_NAMES.get(self.region, self.region),
            "AlarmArn": alarm.get("AlarmArn"), "OldStateValue": old,
            "OKActions": alarm.get("OKActions", []), "AlarmActions": alarm.get("AlarmActions", []),
            "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
            "Trigger": trigger,
        }

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for target, name in ((self._flush_loop, "monitor-flush"), (self._eval_loop, "monitor-alarms")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:  # keep the loop alive
                log.warning("metric flush failed", exc_info=True)

    def _eval_loop(self) -> None:
        while not self._stop.wait(self.evaluation_interval_s):
            try:
                self.evaluate_alarms()
            except Exception:  # keep the loop alive
                log.warning("alarm evaluation failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - emulator may already be gone
            pass
