"""The cost meter on a short local-cloud run: what it counted matches what was sent and stored.

Layout-independent on purpose (the readings table's item format may change): DynamoDB counts are
compared with the items actually in the table, Kinesis counts with the records actually in the
stream, HTTP and Lambda counts with the fleet's own ledger.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from fleet.config import FleetConfig
from fleet.cost import attach_cost, usage_snapshot
from fleet.runner import run
from localcloud.billing_units import item_size, kinesis_put_units
from localcloud.meter import delta

pytestmark = pytest.mark.e2e


def _scan(ddb: Any, table: str) -> list[dict[str, Any]]:
    items, kwargs = [], {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _stream_records(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    records = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += page["Records"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return records


def test_meter_counts_what_a_short_run_sent_and_stored(tmp_path: Path) -> None:
    from localcloud.cloud import LocalCloud

    with LocalCloud(stack="dev", state_dir=tmp_path / "localcloud") as cloud:
        outputs = cloud.stack.outputs
        config = FleetConfig(
            api_url=cloud.api_url, endpoint_url=cloud.endpoint_url, region=cloud.stack.region,
            readings_table=outputs["readingsTableName"], devices_table=outputs["devicesTableName"],
            devices=3, duration=1.5, rate=6.0, readings_per_request=10, payload_metrics=10, misbehaving=0.0,
            progress=False, seed=11, drain_timeout=30.0,
        ).validate()
        before = usage_snapshot(cloud)
        assert before is not None
        report = run(config)
        attach_cost(report, cloud, before, "dev", Path(__file__).resolve().parents[2])
        usage = delta(before, cloud.usage())
        ddb, kinesis = cloud.emulator.client("dynamodb"), cloud.emulator.client("kinesis")
        stored = _scan(ddb, outputs["readingsTableName"])
        stream = next(iter(usage["fixed"]["streams"]))
        records = _stream_records(kinesis, stream)

    led = report.ledger
    assert led.accepted_requests > 0 and report.verification.stored == led.accepted_readings, report.render()
    http = usage["dataplane"]["http"]
    assert http["requests"] == led.requests + 1  # + the fleet's GET /health
    functions = {name.rsplit("-", 1)[-1]: f for name, f in usage["dataplane"]["lambda"].items()}
    assert functions["ingest"]["invocations"] == led.requests + 1  # GET /health is served by ingest too
    assert functions["ingest"]["measured"] == led.requests + 1 and functions["ingest"]["cpuMs"] > 0
    assert functions["ingest"]["calls"].get("kinesis.PutRecords", 0) >= led.accepted_requests
    assert 1 <= functions["authorizer"]["invocations"] <= 3  # one per device, then its 60 s cache

    # Kinesis: the meter's records and bytes are the stream's
    put = usage["emulator"]["kinesis"]["pipeline"][stream]
    assert put["records"] == len(records)
    sizes = [len(r["Data"]) + len(r["PartitionKey"].encode()) for r in records]
    assert put["bytes"] == sum(sizes)
    assert put["putUnits"] == sum(kinesis_put_units(s) for s in sizes)

    # DynamoDB: every stored reading item was written once by the pipeline, at 1 KB per WRU
    table = usage["emulator"]["dynamodb"]["pipeline"][outputs["readingsTableName"]]
    assert table["storedItemsDelta"] == len(stored)
    assert table["storedBytesDelta"] == sum(item_size(i) for i in stored)
    if led.retries == 0:  # a retried request rewrites its items, and is billed again
        assert table["writeUnits"] == sum(math.ceil(item_size(i) / 1024) for i in stored)
    devices = usage["emulator"]["dynamodb"]["pipeline"][outputs["devicesTableName"]]
    assert devices["reads"] == functions["authorizer"]["invocations"]  # one consistent GetItem per miss
    assert devices["readUnits"] == devices["reads"]  # a device item is under 4 KB

    # CloudWatch Logs: the access log's bytes are the file the gateway wrote; functions logged something
    logs = usage["dataplane"]["logs"]
    access = [n for group, n in logs.items() if group.startswith("api-access")]
    assert access == [(tmp_path / "localcloud" / "logs" / "access.log").stat().st_size]
    ingest_log = next(n for group, n in logs.items() if group.endswith("-ingest"))
    assert ingest_log >= led.requests * len(b"START RequestId: ")  # at least the platform lines

    # and the fleet report prices it per million readings
    assert report.cost is not None
    http_line = next(line for line in report.cost.lines if line.item == "HTTP API requests")
    assert report.cost.per_million(http_line) == pytest.approx((led.requests + 1) / led.accepted_readings)
    assert report.to_json()["cost"]["perMillionReadings"]["total"] > 0
