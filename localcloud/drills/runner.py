"""Runs drills against a time-scaled local cloud and judges each alarm.

For each alarm: wait until it is OK, apply its drill's fault, wait for ALARM (the state in
CloudWatch) and for the ALARM notification on the alarm's SNS topic (read from an SQS queue
subscribed to every topic the alarms notify), stop the fault, wait for OK and its notification,
then watch N + 1 more periods for a re-alarm: after the fault no new breaching data exists, so
any ALARM is a failure.

Time: periods last ``time_scale`` of the declared ones (0.01: a minute is 0.6 s), duration
thresholds ``threshold_scale`` of theirs (0.05: 4,000 ms is 200 ms), and counts are judged as
the per-real-period rate (monitor.py). A drill may ask for a slower scale when its fault lasts
longer than a scaled period (one processor invocation near its timeout).
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..cloud import LocalCloud
from .catalogue import DRILLS
from .context import DrillContext
from .load import Device

DEFAULT_TIME_SCALE = 0.01
DEFAULT_THRESHOLD_SCALE = 0.05
EVALUATION_INTERVAL_S = 0.1


@dataclass
class DrillResult:
    alarm_id: str
    alarm_name: str
    fault: str
    time_to_alarm_s: float | None = None
    alarm_notified: bool = False
    time_to_ok_s: float | None = None
    ok_notified: bool = False
    re_alarms: int = 0
    passed: bool = False
    problem: str = ""
    notification: dict[str, Any] = field(default_factory=dict)  # the ALARM notification as received

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Inbox:
    """Every alarm notification, read from a queue subscribed to the alarm topics."""

    def __init__(self, cloud: LocalCloud, topics: Iterable[str]) -> None:
        self._sqs = cloud.emulator.client("sqs")
        sns = cloud.emulator.client("sns")
        self.url = self._sqs.create_queue(QueueName=f"drill-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for topic in sorted(set(topics)):
            sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        self.notes: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="drill-inbox")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            except Exception:  # noqa: BLE001 - the emulator is stopping
                self._stop.wait(0.2)
                continue
            if not messages:
                self._stop.wait(0.1)
            for message in messages:
                try:
                    note = json.loads(message["Body"])
                except ValueError:
                    continue
                with self._lock:
                    self.notes.append((time.monotonic(), note))
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def find(self, alarm_name: str, state: str, since: float) -> tuple[float, dict[str, Any]] | None:
        with self._lock:
            return next(((t, n) for t, n in self.notes
                         if t >= since and n.get("AlarmName") == alarm_name and n.get("NewStateValue") == state), None)

    def count(self, alarm_name: str, state: str, since: float) -> int:
        with self._lock:
            return sum(1 for t, n in self.notes
                       if t >= since and n.get("AlarmName") == alarm_name and n.get("NewStateValue") == state)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class DrillRun:
    def __init__(self, stack: str = "dev", alarm_ids: list[str] | None = None, *,
                 time_scale: float = DEFAULT_TIME_SCALE, threshold_scale: float = DEFAULT_THRESHOLD_SCALE,
                 state_dir: Path | None = None, log: Any = print) -> None:
        unknown = [a for a in alarm_ids or [] if a not in DRILLS]
        if unknown:
            raise KeyError(f"no drill for alarm id(s) {', '.join(unknown)}; known: {', '.join(DRILLS)}")
        self.stack = stack
        self.alarm_ids = list(alarm_ids or DRILLS)
        self.time_scale = time_scale
        self.threshold_scale = threshold_scale
        self.state_dir = state_dir
        self.log = log
        self.startup_s: float | None = None

    def run(self) -> list[DrillResult]:
        state_dir = self.state_dir or Path(tempfile.mkdtemp(prefix=f"drill-{self.stack}-"))
        cloud = LocalCloud(stack=self.stack, state_dir=state_dir, dataplane_options={
            "alarm_time_scale": self.time_scale, "evaluation_interval_s": EVALUATION_INTERVAL_S,
            "alarm_count_rates": True, "alarm_time_threshold_scale": self.threshold_scale})
        began = time.monotonic()
        cloud.start()
        inbox: Inbox | None = None
        try:
            self.startup_s = time.monotonic() - began
            assert cloud.stack is not None
            from admin.registry import DeviceRegistry

            registry = DeviceRegistry(cloud.emulator.client("dynamodb"), cloud.stack.outputs["devicesTableName"])
            device = Device(*registry.add(f"drill-{uuid.uuid4().hex[:8]}"))
            ctx = DrillContext(cloud, device)
            alarms = self._alarms(cloud)
            missing = [a for a in self.alarm_ids if a not in alarms]
            topics = [t for a in alarms.values() for t in (*a.get("AlarmActions", []), *a.get("OKActions", []))]
            inbox = Inbox(cloud, topics)
            results = []
            for alarm_id in self.alarm_ids:
                if alarm_id in missing:
                    results.append(DrillResult(alarm_id, "", DRILLS[alarm_id].fault,
                                               problem=f"stack {self.stack!r} declares no alarm {alarm_id}"))
                    continue
                result = self.run_one(ctx, inbox, alarm_id, alarms[alarm_id])
                self.log(f"  {alarm_id}: {'pass' if result.passed else 'FAIL ' + result.problem}")
                results.append(result)
            ctx.close()
            return results
        finally:
            if inbox is not None:
                inbox.stop()
            cloud.stop()

    @staticmethod
    def _alarms(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
        """Alarm id -> the alarm as stored; the program names alarms ``<prefix>-<alarm id>``."""
        cw = cloud.emulator.client("cloudwatch")
        stored = [a for page in cw.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
                  for a in page.get("MetricAlarms", [])]
        found: dict[str, dict[str, Any]] = {}
        for alarm_id in DRILLS:
            matches = [a for a in stored if a["AlarmName"].endswith(f"-{alarm_id}")]
            if len(matches) == 1:
                found[alarm_id] = matches[0]
        return found

    def _state(self, ctx: DrillContext, name: str) -> str:
        cw = ctx.cloud.emulator.client("cloudwatch")
        return str(cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"])

    def run_one(self, ctx: DrillContext, inbox: Inbox, alarm_id: str, alarm: dict[str, Any]) -> DrillResult:
        drill = DRILLS[alarm_id]
        name = alarm["AlarmName"]
        result = DrillResult(alarm_id, name, drill.fault)
        ctx.monitor.time_threshold_scale = drill.threshold_scale or self.threshold_scale
        scale = max(self.time_scale, drill.time_scale(ctx) if drill.time_scale else 0.0)
        ctx.monitor.time_scale = scale
        period = _declared_period(alarm) * scale
        n = int(alarm["EvaluationPeriods"])
        # Generous deadlines: a loaded machine lags, and a drill that fails says so by itself.
        fire_deadline = max(30.0, 12 * n * period)
        settle = max(20.0, 6 * n * period)
        if drill.recover is not None:  # e.g. an earlier drill's failed batches still in the DLQ
            drill.recover(ctx)
        if not self._wait(lambda: self._state(ctx, name) == "OK", settle):
            result.problem = f"not OK before the drill (state {self._state(ctx, name)})"
            return result
        started = time.monotonic()
        alarmed_at = started
        try:
            drill.apply(ctx)
            fired = self._wait(lambda: self._state(ctx, name) == "ALARM", fire_deadline)
            if fired:
                result.time_to_alarm_s = round(time.monotonic() - started, 2)
                note = self._wait_for(lambda: inbox.find(name, "ALARM", started), 10.0)
                result.alarm_notified = note is not None
                if note is not None:
                    alarmed_at, result.notification = note
        finally:
            stopping = time.monotonic()  # the fault stops once the requests it held have finished
            ctx.stop_fault()
            if drill.recover is not None:
                drill.recover(ctx)
        if result.time_to_alarm_s is None:
            result.problem = f"no ALARM within {fire_deadline:.0f} s"
            return result
        cleared = self._wait(lambda: self._state(ctx, name) == "OK", fire_deadline)
        if cleared:
            result.time_to_ok_s = round(time.monotonic() - stopping, 2)
            # The OK may come while the held requests drain, so look from the ALARM on.
            result.ok_notified = self._wait_for(lambda: inbox.find(name, "OK", alarmed_at), 10.0) is not None
            ok_at = time.monotonic()
            # A window sliding with the clock re-alarmed within N periods of the fault's end.
            watch_until = ok_at + max(2.0, (n + 1) * period)
            while time.monotonic() < watch_until:
                time.sleep(0.1)
            result.re_alarms = inbox.count(name, "ALARM", ok_at)
        problems = []
        if not result.alarm_notified:
            problems.append("no ALARM notification")
        if result.time_to_ok_s is None:
            problems.append(f"not OK within {fire_deadline:.0f} s of the fault stopping")
        elif not result.ok_notified:
            problems.append("no OK notification")
        if result.re_alarms:
            problems.append(f"{result.re_alarms} re-alarm(s) after OK without new breaching data")
        result.problem = "; ".join(problems)
        result.passed = not problems
        return result

    @staticmethod
    def _wait(check: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            time.sleep(0.1)
        return bool(check())

    @staticmethod
    def _wait_for(get: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = get()
            if value is not None:
                return value
            time.sleep(0.1)
        return get()


def _declared_period(alarm: dict[str, Any]) -> float:
    """The alarm's period; a metric-math alarm's is its queries' period."""
    if alarm.get("Period"):
        return float(alarm["Period"])
    return float(max(q["MetricStat"]["Period"] for q in alarm.get("Metrics", []) if q.get("MetricStat")))


def table(results: list[DrillResult]) -> str:
    """The report as a fixed-width table."""
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    rows = [("alarm", "fault applied", "to ALARM", "notified", "to OK", "notified", "re-alarms", "result")]
    for r in results:
        rows.append((r.alarm_id, r.fault if len(r.fault) <= 60 else r.fault[:57] + "...",
                     seconds(r.time_to_alarm_s), "yes" if r.alarm_notified else "no", seconds(r.time_to_ok_s),
                     "yes" if r.ok_notified else "no", str(r.re_alarms), "pass" if r.passed else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = [r for r in results if not r.passed]
    lines.append("")
    lines.append(f"{len(results) - len(failed)} of {len(results)} alarms passed their drill")
    for r in failed:
        lines.append(f"  {r.alarm_id}: {r.problem}")
    return "\n".join(lines)
