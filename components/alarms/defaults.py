"""Every alarm's default tuning, with the reason for each number (SLIC Watch style).

One table so thresholds are reviewed together and overridden by id from
config (``iot-ingest:alarmOverrides``). Periods are seconds.

On-demand streams still throttle: a hot partition key (a shard's 1 MB/s or
1,000 records/s) or traffic above twice the previous peak
(https://docs.aws.amazon.com/streams/latest/dev/how-do-i-size-a-stream.html).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from settings.alarm_catalog import ALARM_IDS, FUNCTION_ROLES, PERCENTILE_ALARM_IDS

GT = "GreaterThanThreshold"
GE = "GreaterThanOrEqualToThreshold"


@dataclass(frozen=True)
class AlarmDefault:
    threshold: float  # for *-duration: a fraction of the function's timeout
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    treat_missing_data: str
    rationale: str
    statistic: str | None = None
    extended_statistic: str | None = None  # e.g. "p99"; exclusive with statistic
    threshold_is_timeout_fraction: bool = False
    # percentile alarms only: "ignore" keeps the state through periods with too few samples
    evaluate_low_sample_count_percentiles: str | None = None


def _function_defaults(role: str) -> dict[str, AlarmDefault]:
    return {
        f"{role}-errors": AlarmDefault(
            1, 60, 3, 2, GE, "notBreaching", statistic="Sum",
            rationale="Any unhandled error in 2 of 3 minutes: handlers answer bad input themselves, so errors are bugs or outages."),
        f"{role}-throttles": AlarmDefault(
            1, 60, 3, 2, GE, "notBreaching", statistic="Sum",
            rationale="Throttling means reserved/account concurrency is exhausted and callers see 429/503 or lag."),
        f"{role}-duration": AlarmDefault(
            0.8, 60, 3, 2, GT, "notBreaching", statistic="Maximum", threshold_is_timeout_fraction=True,
            rationale="An invocation above 80% of its timeout is one slow dependency away from timing out."),
    }


ALARM_DEFAULTS: Final[dict[str, AlarmDefault]] = {
    "api-5xx": AlarmDefault(
        5, 60, 5, 3, GE, "notBreaching", statistic="Sum",
        rationale="5xx are our faults (integration errors, authorizer crashes); a few per minute for 3 of 5 minutes is an incident."),
    "api-4xx": AlarmDefault(
        100, 60, 5, 3, GE, "notBreaching", statistic="Sum",
        rationale="4xx include 429 throttles and rejected devices; a sustained burst means misconfigured devices or the throttle set too low."),
    "api-latency-p99": AlarmDefault(
        2000, 60, 5, 3, GT, "notBreaching", extended_statistic="p99", evaluate_low_sample_count_percentiles="ignore",
        rationale="Devices hold a connection per request; a p99 above 2 s backs up fleets on slow links. "
                  "A minute with fewer than 1,000 requests is ignored: its p99 is just its slowest request "
                  "(one cold start), and the duration alarms still watch each function."),
    **{k: v for role in FUNCTION_ROLES for k, v in _function_defaults(role).items()},
    "processor-iterator-age": AlarmDefault(
        120_000, 60, 5, 3, GT, "notBreaching", statistic="Maximum",
        rationale="Records reaching the processor more than 2 minutes after they were written: it is falling behind (Maximum, per AWS guidance)."),
    "processor-destination-delivery-failures": AlarmDefault(
        1, 60, 1, 1, GE, "notBreaching", statistic="Sum",
        rationale="A failed batch that cannot even reach the DLQ is lost without trace; alert on the first one."),
    "processor-stalled": AlarmDefault(
        1, 60, 3, 2, GE, "notBreaching", statistic="Sum",
        rationale="Records came in during 2 of 3 minutes in which the processor ran not once: its mapping is "
                  "disabled or it lost a permission. IteratorAge cannot show this (it is not published while "
                  "nothing reads), so this compares IncomingRecords with processor Invocations; an idle stream "
                  "counts 0, so missing data is not breaching."),
    "stream-throttled-records": AlarmDefault(
        1, 60, 5, 3, GE, "notBreaching", statistic="Sum",
        rationale="Throttled PutRecords entries are retried by ingest, but sustained throttling means the stream lacks capacity: "
                  "more shards (PROVISIONED), or on ON_DEMAND a hot partition key (1 MB/s or 1,000 records/s per shard) "
                  "or traffic above twice the previous peak."),
    "stream-write-throughput-exceeded": AlarmDefault(
        1, 60, 5, 3, GE, "notBreaching", statistic="Sum",
        rationale="Write throughput exceeded for 3 of 5 minutes: add shards or switch to ON_DEMAND; "
                  "an ON_DEMAND stream throttles a hot partition key or a burst above twice its previous peak."),
    "stream-iterator-age": AlarmDefault(
        120_000, 60, 5, 3, GT, "notBreaching", statistic="Maximum",
        rationale="Records older than 2 minutes at read time risk expiring before they are stored."),
    "readings-write-throttles": AlarmDefault(
        1, 60, 5, 3, GE, "notBreaching", statistic="Sum",
        rationale="DynamoDB publishes throttles only when non-zero; sustained ones mean a hot partition (one chatty device)."),
    "readings-system-errors": AlarmDefault(
        1, 60, 3, 2, GE, "notBreaching", statistic="Sum",
        rationale="Service-side BatchWriteItem failures; the processor retries, but repeated ones mean an AWS incident."),
    "devices-write-throttles": AlarmDefault(
        1, 60, 5, 3, GE, "notBreaching", statistic="Sum",
        rationale="Latest-reading updates throttled for 3 of 5 minutes: a device is writing far above its fair share."),
    "devices-read-throttles": AlarmDefault(
        1, 60, 5, 3, GE, "notBreaching", statistic="Sum",
        rationale="Authorizer reads throttled means devices are being denied; check the authorizer cache TTL."),
    "devices-update-system-errors": AlarmDefault(
        1, 60, 3, 2, GE, "notBreaching", statistic="Sum",
        rationale="Service-side UpdateItem failures on the devices table."),
    "devices-get-system-errors": AlarmDefault(
        1, 60, 3, 2, GE, "notBreaching", statistic="Sum",
        rationale="Service-side GetItem failures make the authorizer deny valid devices."),
    "dlq-messages-visible": AlarmDefault(
        1, 300, 1, 1, GE, "notBreaching", statistic="Maximum",
        rationale="Anything in the DLQ is a batch the processor gave up on; someone must look and replay."),
}

if set(ALARM_DEFAULTS) != set(ALARM_IDS):  # pragma: no cover - guards against drift at import time
    raise RuntimeError(
        f"alarm defaults and settings.alarm_catalog disagree: "
        f"{sorted(set(ALARM_DEFAULTS) ^ set(ALARM_IDS))}")
if {k for k, d in ALARM_DEFAULTS.items() if d.extended_statistic} != set(PERCENTILE_ALARM_IDS):  # pragma: no cover
    raise RuntimeError("settings.alarm_catalog.PERCENTILE_ALARM_IDS must list exactly the percentile alarms")
