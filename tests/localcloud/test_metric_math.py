"""The metric-math subset the monitor evaluates (localcloud/metric_math.py)."""
from __future__ import annotations

import pytest

from localcloud.metric_math import UnsupportedExpression, compile_expression

STALLED = "IF(FILL(invocations, 0) == 0, FILL(incoming, 0), 0)"


@pytest.mark.parametrize("incoming, invocations, expected", [
    (12.0, None, 12.0),  # records came in, the function never ran: stalled
    (12.0, 3.0, 0.0),    # records came in and were processed
    (None, None, 0.0),   # an idle stream is not a stalled consumer
    (None, 2.0, 0.0),
])
def test_stalled_consumer_expression(incoming: float | None, invocations: float | None, expected: float) -> None:
    assert compile_expression(STALLED)({"incoming": incoming, "invocations": invocations}) == expected


def test_arithmetic_precedence_missing_values_and_division_by_zero() -> None:
    assert compile_expression("a + b * 2 - (c / 4)")({"a": 1.0, "b": 3.0, "c": 8.0}) == 5.0
    assert compile_expression("errors / requests")({"errors": 1.0, "requests": None}) is None
    assert compile_expression("errors / requests")({"errors": 1.0, "requests": 0.0}) is None
    assert compile_expression("a >= 2")({"a": 2.0}) == 1.0


@pytest.mark.parametrize("text", ["ANOMALY_DETECTION_BAND(m1, 2)", "SEARCH('{AWS/Lambda}', 'Sum', 60)", "a +", "FILL(a)"])
def test_what_is_not_evaluated_says_so(text: str) -> None:
    with pytest.raises(UnsupportedExpression):
        compile_expression(text)
