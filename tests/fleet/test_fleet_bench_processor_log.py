"""The benchmark's processor-log summary reads only what was logged after the phase began."""
from __future__ import annotations

from pathlib import Path

from benchmarks.processor_log import activity, processor_log

EMF = '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"service":"processor","ReadingsStored":[%d.0],"RecordsFailed":[0.0]}\n'


def test_activity_sums_invocations_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "lambda" / "iot-ingest-dev-processor.log"
    log.parent.mkdir(parents=True)
    before = "START RequestId: a\n" + EMF % 999 + "END RequestId: a\nREPORT RequestId: a\tDuration: 5000.00 ms\n"
    after = "".join(
        f"START RequestId: {i}\n" + EMF % n + f"END RequestId: {i}\nREPORT RequestId: {i}\tDuration: {ms} ms\n"
        for i, (n, ms) in enumerate([(4000, "2000.00"), (1000, "500.50")])
    ) + "not json but mentions \"ReadingsStored\"\n"
    log.write_text(before + after)
    assert processor_log(tmp_path) == log
    act = activity(log, len(before.encode()))
    assert (act.invocations, act.readings) == (2, 5000)
    assert abs(act.busy_seconds - 2.5005) < 1e-9
    summary = act.to_json(window_s=5.001)
    assert summary["readingsPerBusySecond"] == round(5000 / 2.5005, 1) and summary["busyShareOfWindow"] == 0.5
