"""Pricing the meter's counts (planner/costing.py) and the data-plane meter (localcloud/meter.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud.meter import UsageMeter, delta
from planner.breakdown import GB, SECONDS_PER_MONTH
from planner.costing import price_usage
from planner.prices import PRICES_FILE, REQUIRED, load_prices

PRICES = load_prices()


def test_every_price_is_dated_sourced_and_rated() -> None:
    data = json.loads(Path(PRICES_FILE).read_text())
    assert data["as_of"] and data["region"] == "us-east-1"
    for key in REQUIRED:
        entry = data["prices_usd"][key]
        assert entry["source"].startswith("https://aws.amazon.com/"), key
        assert entry["confidence"] in ("V", "S", "K"), key
        assert entry["checked"], key


def test_usage_meter_counts_http_units_and_models_lambda_duration() -> None:
    meter = UsageMeter()
    meter.http_request(512 * 1024)
    meter.http_request(512 * 1024 + 1)
    meter.invocation("p-dev-ingest", 1769, 40.2, {"cpuMs": 3.0, "calls": {"kinesis.PutRecords": 1}, "maxRssMb": 70})
    meter.invocation("p-dev-ingest", 1769, 9.0, None)  # no usage reported (e.g. a killed worker): wall only
    meter.log_bytes("p-dev-ingest", 100)
    meter.log_bytes("p-dev-ingest", 0)
    meter.log_bytes("api-access-x", 50)
    snap = meter.snapshot()
    assert snap["logs"] == {"p-dev-ingest": 100, "api-access-x": 50}
    assert snap["http"] == {"requests": 2, "billedRequests": 3, "requestBytes": 2 * 512 * 1024 + 1}
    f = snap["lambda"]["p-dev-ingest"]
    assert (f["invocations"], f["measured"]) == (2, 1)
    assert f["modelledMs"] == pytest.approx(3.0 + 15.0)  # one vCPU: CPU as measured + PutRecords' stated 15 ms
    assert f["modelledGbSeconds"] == pytest.approx(1769 / 1024 * 18 / 1000)
    assert f["wallGbSeconds"] == pytest.approx(1769 / 1024 * (41 + 9) / 1000)  # each rounded up to 1 ms


def _usage(seconds: float = 100.0) -> dict:
    return {
        "seconds": seconds,
        "dataplane": {"http": {"requests": 100_000, "billedRequests": 100_000, "requestBytes": 0},
                      "lambda": {"p-dev-ingest": {"memoryMb": 1024, "invocations": 100_000, "measured": 100_000,
                                                  "wallMs": 1e6, "wallGbSeconds": 1000.0, "cpuMs": 1e5,
                                                  "serviceWaitMs": 1e6, "modelledMs": 2e6,
                                                  "modelledGbSeconds": 2000.0, "calls": {}, "maxRssMb": 80}},
                      "logs": {"p-dev-ingest": GB // 2, "api-access-a1": GB // 2}},
        "emulator": {
            "kinesis": {"pipeline": {"s1": {"records": 100_000, "putUnits": 100_000, "onDemandBytes": 2 * GB,
                                            "bytes": GB}},
                        "other": {"s1": {"readBytes": GB}}},
            "dynamodb": {"pipeline": {"x-readings-1": {"writeUnits": 1_000_000, "writes": 1_000_000,
                                                       "writtenBytes": 2e8, "storedBytesDelta": 2e8,
                                                       "storedItemsDelta": 1_000_000}},
                         "other": {"x-readings-1": {"readUnits": 50.0}}},
            "sqs": {"other": {"requests": 10}},
        },
        "fixed": {"streams": {"s1": {"mode": "PROVISIONED", "shards": 2}}, "tables": {"x-readings-1":
                  {"pointInTimeRecovery": True}}, "alarmMetrics": 10, "kmsKeys": 1, "dashboards": 0},
    }


def test_price_usage_per_million_readings_by_line() -> None:
    b = price_usage(_usage(), 1_000_000, PRICES, ttl_days=365)
    per_m = {line.item: b.per_million(line) for line in b.lines}
    assert per_m["HTTP API requests"] == pytest.approx(0.1)  # 100k requests x $1/M per 1 M readings
    assert per_m["Lambda ingest requests"] == pytest.approx(0.02)
    assert per_m["Lambda ingest compute"] == pytest.approx(2000 * PRICES["lambda_per_gb_second_arm64"])
    assert per_m["Kinesis PUT payload units"] == pytest.approx(0.1 * PRICES["kinesis_provisioned_per_million_put_units"])
    assert per_m["DynamoDB readings writes"] == pytest.approx(PRICES["dynamodb_on_demand_per_million_wru"])
    assert "DynamoDB readings reads" not in per_m  # the fleet's read-back is not the pipeline's cost
    assert per_m["SQS requests"] == pytest.approx(10 * 0.4 / 1e6)
    assert per_m["CloudWatch Logs ingestion"] == pytest.approx(PRICES["cloudwatch_logs_ingestion_per_gb"])  # 1 GB
    assert b.total("usage") == pytest.approx(sum(b.per_million(ln) for ln in b.lines if ln.kind == "usage"))
    assert b.total() == pytest.approx(b.total("usage") + b.total("fixed"))


def test_fixed_costs_are_amortised_at_the_observed_rate() -> None:
    b = price_usage(_usage(seconds=100.0), 1_000_000, PRICES)  # 10,000 readings/s
    monthly_readings = 1_000_000 / 100.0 * SECONDS_PER_MONTH
    shard = next(ln for ln in b.lines if ln.item == "Kinesis shard-hours")
    assert shard.kind == "fixed"
    assert b.per_million(shard) == pytest.approx(2 * 730 * 0.015 / (monthly_readings / 1e6))
    slower = price_usage(_usage(seconds=1000.0), 1_000_000, PRICES)
    assert slower.total("fixed") == pytest.approx(10 * b.total("fixed"))
    assert slower.total("usage") == pytest.approx(b.total("usage"))


def test_storage_over_ttl_from_observed_bytes_with_pitr() -> None:
    b = price_usage(_usage(), 1_000_000, PRICES, ttl_days=365)
    assert b.storage is not None and b.storage.pitr
    assert b.storage.bytes_per_reading == pytest.approx(200 + 100)  # item bytes + 100 B per item
    expected = 300 * 1e6 / GB * 365 / (365 / 12) * (0.25 + 0.20)
    assert b.storage.per_million == pytest.approx(expected)


def test_delta_subtracts_counters_and_keeps_the_stack() -> None:
    before = {"takenAt": 10.0, "dataplane": {"http": {"requests": 1}, "lambda": {}},
              "emulator": {"dynamodb": {"pipeline": {"t": {"writeUnits": 5}}}}, "fixed": {"alarms": 1}}
    after = {"takenAt": 15.5, "dataplane": {"http": {"requests": 4}, "lambda": {}},
             "emulator": {"dynamodb": {"pipeline": {"t": {"writeUnits": 7, "reads": 2}}}}, "fixed": {"alarms": 1}}
    d = delta(before, after)
    assert d["seconds"] == 5.5 and d["dataplane"]["http"]["requests"] == 3
    assert d["emulator"]["dynamodb"]["pipeline"]["t"] == {"writeUnits": 2, "reads": 2}
