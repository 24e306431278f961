"""CloudWatch metric-alarm evaluation math, free of I/O so it can be tested exactly.

The emulator stores alarms but never evaluates them (aws-facts.md section 7), so
the monitor computes each alarm's state here from per-period statistics.

Semantics (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html):
- The evaluation range is the last ``EvaluationPeriods`` periods ending at the
  evaluation time. A period's value is the alarm's statistic over the raw
  samples in it, or None when there are none.
- ``DatapointsToAlarm`` (M, default N) of the N periods must breach for ALARM.
- TreatMissingData: ``notBreaching`` counts a missing period as good,
  ``breaching`` as bad, ``ignore`` keeps the current state when every period is
  missing, and ``missing`` (the default) goes to INSUFFICIENT_DATA when every
  period is missing. With some data present, ``missing``/``ignore`` decide from
  the present periods only. Simplification: AWS may look back beyond N periods
  to find N datapoints for ``missing``/``ignore``; we do not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

ALARM = "ALARM"
OK = "OK"
INSUFFICIENT = "INSUFFICIENT_DATA"

_OPERATORS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}

_SYMBOLS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


class UnsupportedAlarm(ValueError):
    """An alarm this evaluator cannot compute (metric math, anomaly bands)."""


def statistic(name: str, samples: Sequence[float]) -> float | None:
    """One statistic over raw samples; ``pNN``/``pNN.N`` are nearest-rank percentiles."""
    if not samples:
        return None
    if name == "Sum":
        return float(sum(samples))
    if name == "Average":
        return float(sum(samples)) / len(samples)
    if name == "Maximum":
        return float(max(samples))
    if name == "Minimum":
        return float(min(samples))
    if name == "SampleCount":
        return float(len(samples))
    if name.startswith("p"):
        try:
            q = float(name[1:])
        except ValueError:
            raise UnsupportedAlarm(f"unknown statistic {name!r}") from None
        if not 0 <= q <= 100:
            raise UnsupportedAlarm(f"percentile out of range: {name!r}")
        ordered = sorted(samples)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return float(ordered[rank - 1])
    raise UnsupportedAlarm(f"unknown statistic {name!r}")


def low_sample_minimum(name: str) -> int | None:
    """Fewest samples a period needs before an alarm with EvaluateLowSampleCountPercentile
    ``ignore`` lets its percentile change the state; None if the statistic has no minimum.

    CloudWatch: 10/(1-p) for p in [0.5, 1), 10/p for p in (0, 0.5), so p99 needs 1,000
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/percentiles-with-low-samples.html).
    """
    if not name.startswith("p"):
        return None
    try:
        p = float(name[1:]) / 100
    except ValueError:
        return None
    if 0.5 <= p < 1:
        return math.ceil(round(10 / (1 - p), 6))
    if 0 < p < 0.5:
        return math.ceil(round(10 / p, 6))
    return None


@dataclass(frozen=True)
class Decision:
    state: str
    reason: str
    breaching: int
    present: int


def decide(values: Sequence[float | None], *, threshold: float, operator: str, datapoints_to_alarm: int,
           treat_missing: str, current_state: str) -> Decision:
    """New alarm state for the N most recent period values (oldest first)."""
    try:
        compare = _OPERATORS[operator]
    except KeyError:
        raise UnsupportedAlarm(f"comparison operator {operator!r} is not supported locally") from None
    n = len(values)
    m = min(max(1, datapoints_to_alarm), n) if n else 1
    treat = treat_missing or "missing"
    present = [v for v in values if v is not None]
    breaching = sum(1 for v in present if compare(v, threshold))
    missing = n - len(present)
    if treat == "breaching":
        breaching += missing
    symbol = _SYMBOLS[operator]
    shown = ", ".join("-" if v is None else f"{v:g}" for v in values)
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return Decision(current_state, "No data; state kept (treat missing data: ignore)", 0, 0)
        return Decision(INSUFFICIENT, f"Insufficient Data: {n} datapoints were unknown.", 0, 0)
    if breaching >= m:
        reason = (f"Threshold Crossed: {breaching} out of the last {n} datapoints [{shown}] "
                  f"were {symbol} the threshold ({threshold:g}) "
                  f"(minimum {m} datapoint{'s' if m != 1 else ''} for OK -> ALARM transition).")
        return Decision(ALARM, reason, breaching, len(present))
    reason = (f"Threshold Crossed: {n - breaching} out of the last {n} datapoints [{shown}] "
              f"were not {symbol} the threshold ({threshold:g}) "
              f"(minimum {n - m + 1} datapoint{'s' if n - m + 1 != 1 else ''} for ALARM -> OK transition).")
    return Decision(OK, reason, breaching, len(present))
