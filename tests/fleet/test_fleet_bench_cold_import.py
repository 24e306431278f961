"""benchmarks.cold_import: the handlers really import in a fresh interpreter, and the table adds up."""
from __future__ import annotations

from benchmarks import cold_import


def test_each_handler_imports_in_a_fresh_interpreter_and_every_step_is_timed() -> None:
    for handler in cold_import.HANDLERS:
        steps = cold_import.sample(handler)  # raises if the handler cannot be imported as Lambda would
        assert len(steps) == len(cold_import.STEPS)
        assert all(ms >= 0 for ms in steps) and steps[0] > 0  # boto3 is never free


def test_table_reports_medians_total_and_the_ratio_to_boto3() -> None:
    result = cold_import.measure(runs=1)
    for handler, medians in result.items():
        steps = [medians[s] for s in cold_import.STEPS]
        assert medians["total"] == sum(steps), handler
        assert medians["total/boto3"] == sum(steps) / medians["boto3"], handler
    text = cold_import.table(result)
    assert text.count("\n") == 8 and "| **total / `import boto3`** (ratio, same run) |" in text
