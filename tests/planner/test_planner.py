"""The planner's math, capacity checks, input errors and the README section it generates."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from planner import cli
from planner.breakdown import SECONDS_PER_MONTH
from planner.capacity import checks
from planner.model import ON_DEMAND_SHARDS, PlanInputError, Workload, plan
from planner.prices import load_prices
from planner.readme import current_section, render_section
from planner.stack import REPO_ROOT, load_stack_settings

PRICES = load_prices()


def calibration(**overrides: Any) -> dict[str, Any]:
    """Round per-request figures, as `make bench-cost` would write them (one item per request)."""
    cal: dict[str, Any] = {
        "stack": "t", "measuredAt": "2026-12-01", "commit": "abc1234",
        "workload": {"devices": 50, "requests": 1000, "readings": 10_000, "readingsPerRequest": 10.0,
                     "readingBytes": 200.0, "seconds": 50.0},
        "httpBilledPerRequest": 1.0, "kinesisRecordsPerRequest": 1.0, "kinesisBytesPerRecord": 2000.0,
        "functions": {
            "ingest": {"memoryMb": 512, "invocationsPerRequest": 1.0, "cpuMsPerInvocation": 2.0,
                       "callsPerInvocation": {"kinesis.PutRecords": 1.0}, "maxRssMb": 60.0},
            "authorizer": {"memoryMb": 256, "invocationsPerRequest": 0.05, "cpuMsPerInvocation": 2.0,
                           "callsPerInvocation": {"dynamodb.GetItem": 1.0}, "maxRssMb": 60.0},
            "processor": {"memoryMb": 512, "invocationsPerRequest": 0.1, "cpuMsPerInvocation": 30.0,
                          "callsPerInvocation": {"dynamodb.BatchWriteItem": 1.0, "dynamodb.UpdateItem": 5.0},
                          "maxRssMb": 60.0, "recordsPerInvocation": 10.0},
        },
        "tables": {"readings": {"writesPerRequest": 1.0, "writeUnitsPerWrite": 1.0, "bytesPerWrite": 900.0,
                                "readsPerRequest": 0.0, "readUnitsPerRead": 0.0, "storedBytesPerReading": 100.0},
                   "devices": {"writesPerRequest": 1.0, "writeUnitsPerWrite": 1.0, "bytesPerWrite": 300.0,
                               "readsPerRequest": 0.05, "readUnitsPerRead": 1.0, "storedBytesPerReading": 0.0}},
        "fixed": {"alarmMetrics": 24, "kmsKeys": 1, "dashboards": 1},
    }
    cal.update(overrides)
    return cal


def _line(p: Any, item: str) -> Any:
    return next(ln for ln in p.breakdown.lines if ln.item == item)


def test_monthly_cost_of_the_readme_fleet_on_prod() -> None:
    settings = load_stack_settings("prod")
    p = plan("prod", settings, Workload(devices=1000, interval_s=60, readings=10), calibration(), PRICES)
    requests = 1000 / 60 * SECONDS_PER_MONTH
    assert p.breakdown.readings == pytest.approx(requests * 10)
    assert _line(p, "HTTP API requests").dollars == pytest.approx(requests * 1.00 / 1e6)
    assert _line(p, "Lambda ingest requests").quantity == pytest.approx(requests)
    # ingest at prod's memory: 2 ms CPU x 1769/memory + 15 ms PutRecords, rounded up to 1 ms
    memory = settings.functions.ingest.memory_mb
    ms = math.ceil(2.0 * 1769 / memory + 15.0)
    assert _line(p, "Lambda ingest compute").quantity == pytest.approx(requests * memory / 1024 * ms / 1000)
    # authorizer: one miss per device per 300 s cache period
    assert _line(p, "Lambda authorizer requests").quantity == pytest.approx(1000 * SECONDS_PER_MONTH / 300)
    # processor: 4 on-demand shards, each invoked once per batching window (16.7 records/s is far below a batch)
    window = settings.processor.batching_window_s
    assert _line(p, "Lambda processor requests").quantity == pytest.approx(ON_DEMAND_SHARDS * SECONDS_PER_MONTH / window)
    # one item of 900 B per request: 1 WRU
    assert _line(p, "DynamoDB readings writes").quantity == pytest.approx(requests)
    assert _line(p, "Kinesis on-demand stream-hours").dollars == pytest.approx(730 * 0.04)
    assert _line(p, "Kinesis on-demand data in").quantity == pytest.approx(requests * 2048 / 1024 ** 3)
    assert p.breakdown.storage is not None and p.breakdown.storage.ttl_days == 395 and p.breakdown.storage.pitr


def test_item_per_reading_layout_scales_writes_with_readings() -> None:
    cal = calibration(tables={**calibration()["tables"], "readings": {
        "writesPerRequest": 10.0, "writeUnitsPerWrite": 1.0, "bytesPerWrite": 220.0, "storedBytesPerReading": 320.0}})
    settings = load_stack_settings("dev")
    p = plan("dev", settings, Workload(devices=10, interval_s=10, readings=20), cal, PRICES)
    requests = 10 / 10 * SECONDS_PER_MONTH
    assert _line(p, "DynamoDB readings writes").quantity == pytest.approx(requests * 20)
    assert _line(p, "Kinesis shard-hours").dollars == pytest.approx(settings.stream.shard_count * 730 * 0.015)


def test_bigger_requests_need_more_write_units_per_item() -> None:
    settings = load_stack_settings("dev")
    p = plan("dev", settings, Workload(devices=10, interval_s=10, readings=50), calibration(), PRICES)
    assert p.derived.readings_wru_per_write == math.ceil(900 * 5 / 1024)  # the item holds 5x the bytes


def test_capacity_checks_name_the_number_and_the_fix() -> None:
    settings = load_stack_settings("dev")  # one provisioned shard, stage throttle 50 req/s
    p = plan("dev", settings, Workload(devices=3000, interval_s=1, readings=10), calibration(), PRICES)
    by_name = {c.name: c for c in checks(p)}
    stream = by_name["Kinesis write records"]
    assert not stream.ok and stream.value == pytest.approx(3000 * 2) and stream.limit == 1000
    assert "shardCount >= 12" in stream.advice  # 6,000 records/s x 2,000 B = 11.4 MiB/s: bytes decide
    throttle = by_name["HTTP API stage throttle (rate)"]
    assert not throttle.ok and throttle.limit == settings.api.throttle_rate and "apiThrottleRate" in throttle.advice
    small = plan("dev", settings, Workload(devices=10, interval_s=60, readings=10), calibration(), PRICES)
    assert all(c.ok for c in checks(small) if not c.advisory)


def test_busiest_device_partition_limit() -> None:
    settings = load_stack_settings("prod")
    p = plan("prod", settings, Workload(devices=1, interval_s=0.001, readings=10), calibration(), PRICES)
    check = next(c for c in checks(p) if c.name.startswith("DynamoDB readings partition"))
    assert check.value == pytest.approx(1 * 1 / 0.001 * 2) and not check.ok


@pytest.mark.parametrize(("field", "value", "flag"), [
    ("devices", 0, "--devices"), ("interval_s", -5.0, "--interval"), ("interval_s", 0.0, "--interval"),
    ("readings", 0, "--readings"), ("reading_bytes", 0, "--reading-bytes"), ("peak_factor", 0.5, "--peak-factor"),
])
def test_workload_refuses_impossible_inputs(field: str, value: Any, flag: str) -> None:
    bad = dataclasses.replace(Workload(devices=10, interval_s=60, readings=10), **{field: value})
    with pytest.raises(PlanInputError, match=flag):
        bad.validate()


@pytest.mark.parametrize(("args", "flag"), [
    (["--devices", "0"], "--devices"), (["--interval", "-1"], "--interval"), (["--stack", "nope"], "--stack"),
    (["--devices", "many"], "--devices"),
])
def test_cli_input_errors_exit_2_naming_the_flag(args: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = {"--stack": "prod", "--devices": "1000", "--interval": "60", "--readings": "10"}
    for key, value in zip(args[::2], args[1::2], strict=False):
        base[key] = value
    argv = ["plan"] + [x for kv in base.items() for x in kv]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(cli.main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and len(err.strip().splitlines()) == 1


def test_cli_plan_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cal_file = tmp_path / "cal.json"
    cal_file.write_text(json.dumps({"stacks": {"prod": calibration(stack="prod")}}))
    code = cli.main(["plan", "--stack", "prod", "--devices", "1000", "--interval", "60", "--readings", "10",
                     "--format", "json", "--calibration", str(cal_file)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["stack"] == "prod"
    assert out["cost"]["perMillionReadings"]["total"] > 0 and all(c["ok"] for c in out["capacity"] if not c["advisory"])


def test_readme_cost_section_is_the_planners_output() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert current_section(readme) == render_section(), "run `make readme-cost`"
