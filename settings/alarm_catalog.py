"""Names of every alarm the stack declares, and what config may override.

Lives in settings/ (not components/alarms/) because validation must reject an
unknown override before any resource exists, and settings/ may not import
components/. ``components/alarms/defaults.py`` defines one default per id here
and fails at import if the two lists ever drift apart.
"""
from __future__ import annotations

from typing import Final

FUNCTION_ROLES: Final = ("authorizer", "ingest", "processor")

ALARM_IDS: Final[tuple[str, ...]] = (
    "api-5xx",
    "api-4xx",
    "api-latency-p99",
    *(f"{role}-{kind}" for role in FUNCTION_ROLES for kind in ("errors", "throttles", "duration")),
    "processor-iterator-age",
    "processor-destination-delivery-failures",
    "processor-stalled",
    "stream-throttled-records",
    "stream-write-throughput-exceeded",
    "stream-iterator-age",
    "readings-write-throttles",
    "readings-system-errors",
    "devices-write-throttles",
    "devices-read-throttles",
    "devices-update-system-errors",
    "devices-get-system-errors",
    "dlq-messages-visible",
)

#: The alarms whose statistic is a percentile (see components/alarms/defaults.py, which checks
#: this list at import): only they take ``evaluateLowSampleCountPercentiles``.
PERCENTILE_ALARM_IDS: Final[tuple[str, ...]] = ("api-latency-p99",)

#: The metric-math alarms (their period applies to every metric they read).
MATH_ALARM_IDS: Final[tuple[str, ...]] = ("processor-stalled",)

#: Override field -> human description of what is allowed.
OVERRIDE_FIELDS: Final[dict[str, str]] = {
    "threshold": "a number",
    "period": "10, 20, 30 or a positive multiple of 60 (seconds)",
    "evaluationPeriods": "an integer >= 1",
    "datapointsToAlarm": "an integer from 1 to evaluationPeriods",
    "treatMissingData": "one of breaching, notBreaching, ignore, missing",
    "enabled": "true or false (false: the alarm still exists but its actions are disabled)",
    "evaluateLowSampleCountPercentiles": "evaluate or ignore, on a percentile alarm only ("
                                         + ", ".join(PERCENTILE_ALARM_IDS) + ")",
}

LOW_SAMPLE_COUNT_PERCENTILES: Final = ("evaluate", "ignore")

TREAT_MISSING_DATA: Final = ("breaching", "notBreaching", "ignore", "missing")
