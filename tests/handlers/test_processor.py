"""Processor: storage format, idempotency, repeated (ts, seq), out-of-order safety, poison pills, DynamoDB failures.

Readings are read back through the operators' reader (admin.readings), as every consumer must.
"""
from __future__ import annotations

import json
import re
import zlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from admin.readings import StoredReading, read_readings
from handlers.telemetry.config import ProcessorConfig
from handlers.telemetry.process import BatchOutcome, process_batch
from handlers.telemetry.records import pack
from handlers.telemetry.storage import StorageUnavailable
from handlers.telemetry.validation import Reading
from handlers_support import DEVICES, NOW_MS, READINGS, VirtualTime, kinesis_event, register
from dynamodb_faults import FlakyDynamo


def record(device: str, *readings: tuple[int, int, float], received_at: int = NOW_MS, request_id: str = "r") -> bytes:
    (data,) = pack(device, request_id, received_at, [Reading(ts, seq, {"temp": v}) for ts, seq, v in readings])
    return data


def process(event: dict[str, Any], dynamodb: Any, config: ProcessorConfig, vtime: VirtualTime) -> BatchOutcome:
    return process_batch(event, dynamodb=dynamodb, config=config, new_backoff=vtime.backoff)


def items(dynamodb: Any, device: str = "dev-1") -> list[dict[str, Any]]:
    return dynamodb.query(
        TableName=READINGS, KeyConditionExpression="deviceId = :d", ExpressionAttributeValues={":d": {"S": device}}
    )["Items"]


def stored(dynamodb: Any, device: str = "dev-1") -> list[StoredReading]:
    return list(read_readings(dynamodb, READINGS, device, 0, 10**13))


def device(dynamodb: Any, device_id: str = "dev-1") -> dict[str, Any]:
    return dynamodb.get_item(TableName=DEVICES, Key={"deviceId": {"S": device_id}}).get("Item", {})


def test_readings_are_stored_in_the_contract_format(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    data = record("dev-1", (NOW_MS + 9, 0, 22.5), (NOW_MS, 7, 21.5), received_at=NOW_MS + 5)
    outcome = process(kinesis_event([("100", data, "dev-1")]), dynamodb, processor_config, vtime)
    assert outcome.response() == {"batchItemFailures": []}
    assert (outcome.stored, outcome.items) == (2, 1)
    (item,) = items(dynamodb)
    assert re.fullmatch(rf"{NOW_MS:013d}#{7:010d}#[A-Za-z0-9_-]{{12}}", item["readingKey"]["S"])
    assert item["v"] == {"N": "1"} and item["count"] == {"N": "2"}
    assert item["firstTs"] == {"N": str(NOW_MS)} and item["lastTs"] == {"N": str(NOW_MS + 9)}
    assert item["receivedAt"] == {"N": str(NOW_MS + 5)}
    assert item["expiresAt"] == {"N": str((NOW_MS + 9) // 1000 + 30 * 86_400)}  # from the newest reading
    assert json.loads(zlib.decompress(item["readings"]["B"])) == [
        {"ts": NOW_MS, "seq": 7, "metrics": {"temp": 21.5}}, {"ts": NOW_MS + 9, "seq": 0, "metrics": {"temp": 22.5}}]
    assert data.endswith(item["readings"]["B"])  # compressed once, at ingest: stored as received
    assert stored(dynamodb) == [StoredReading(NOW_MS, 7, {"temp": 21.5}, NOW_MS + 5),
                                StoredReading(NOW_MS + 9, 0, {"temp": 22.5}, NOW_MS + 5)]
    dev = device(dynamodb)
    assert dev["latestTs"] == {"N": str(NOW_MS + 9)} and dev["latestSeq"] == {"N": "0"}
    assert dev["lastSeenAt"] == {"N": str(NOW_MS + 5)}
    assert dev["latest"]["M"]["metrics"] == {"M": {"temp": {"N": "22.5"}}}
    assert dev["keyHash"]["S"]  # the update leaves the credentials alone


def test_resent_request_leaves_no_duplicate_items(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    data = record("dev-1", (NOW_MS, 0, 1.0), (NOW_MS + 1, 0, 2.0))
    process(kinesis_event([("1", data, "dev-1")]), dynamodb, processor_config, vtime)
    # The same readings again, in a later request (new requestId and receivedAt, hence other record
    # bytes) and twice within one batch (a duplicate key in one BatchWriteItem).
    again = record("dev-1", (NOW_MS + 1, 0, 2.0), (NOW_MS, 0, 1.0), received_at=NOW_MS + 60_000, request_id="r2")
    counting = FlakyDynamo(dynamodb)  # no faults: only records the BatchWriteItem calls
    outcome = process(kinesis_event([("2", again, "dev-1"), ("3", again, "dev-1")]), counting, processor_config, vtime)
    assert outcome.failures == []
    assert counting.batch_sizes == [1]  # deduplicated before the call, not rescued by a fallback
    assert dynamodb.scan(TableName=READINGS, Select="COUNT")["Count"] == 1  # the same content key: overwritten
    assert [(r.ts, r.copies, r.received_at) for r in stored(dynamodb)] == [(NOW_MS, 1, NOW_MS + 60_000),
                                                                            (NOW_MS + 1, 1, NOW_MS + 60_000)]


@pytest.mark.parametrize("order", ["in-order", "later-request-processed-first"])
def test_repeated_ts_seq_with_another_value_the_later_arrival_wins(
    order: str, dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime
) -> None:
    """docs/handlers.md "Repeated (ts, seq)": a later request's copy of a reading wins, on read-back and in
    the devices table, whatever order the records are processed in; the other readings of both stay."""
    register(dynamodb, "dev-1", "k")
    first = record("dev-1", (NOW_MS, 0, 1.0), (NOW_MS + 10, 0, 10.0), received_at=NOW_MS + 100)
    later = record("dev-1", (NOW_MS + 10, 0, 99.0), (NOW_MS + 20, 0, 20.0), received_at=NOW_MS + 200, request_id="r2")
    batches = [[("1", first, "dev-1")], [("2", later, "dev-1")]]
    for batch in (batches if order == "in-order" else batches[::-1]):
        process(kinesis_event(batch), dynamodb, processor_config, vtime)
    assert len(items(dynamodb)) == 2
    assert [(r.ts, r.metrics["temp"], r.copies) for r in stored(dynamodb)] == [
        (NOW_MS, 1.0, 1), (NOW_MS + 10, 99.0, 2), (NOW_MS + 20, 20.0, 1)]
    assert device(dynamodb)["latest"]["M"]["metrics"]["M"]["temp"] == {"N": "20.0"}
    # the same for the device's latest: the same (ts, seq) again, received later, replaces it ...
    process(kinesis_event([("3", record("dev-1", (NOW_MS + 20, 0, 21.0), received_at=NOW_MS + 300), "dev-1")]),
            dynamodb, processor_config, vtime)
    assert device(dynamodb)["latest"]["M"]["metrics"]["M"]["temp"] == {"N": "21.0"}
    assert stored(dynamodb)[-1].metrics == {"temp": 21.0}
    # ... and an older copy arriving late (a retried record) changes neither
    process(kinesis_event([("4", record("dev-1", (NOW_MS + 20, 0, 5.0), received_at=NOW_MS + 250), "dev-1")]),
            dynamodb, processor_config, vtime)
    assert device(dynamodb)["latest"]["M"]["metrics"]["M"]["temp"] == {"N": "21.0"}
    assert stored(dynamodb)[-1].metrics == {"temp": 21.0} and stored(dynamodb)[-1].copies == 3
    # ... and the same when the quota counter's day rolls over, where a guarded follow-up write decides
    dynamodb.update_item(TableName=DEVICES, Key={"deviceId": {"S": "dev-1"}}, UpdateExpression="SET usageDay = :d",
                         ExpressionAttributeValues={":d": {"S": "2000-01-01"}})
    process(kinesis_event([("5", record("dev-1", (NOW_MS + 20, 0, 22.0), received_at=NOW_MS + 400), "dev-1")]),
            dynamodb, processor_config, vtime)
    assert device(dynamodb)["latest"]["M"]["metrics"]["M"]["temp"] == {"N": "22.0"}
    assert device(dynamodb)["usageDay"]["S"] != "2000-01-01"  # the follow-up ran


def test_legacy_version_1_records_are_stored_compactly(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    """Records written by the previous release may still be on the stream during an upgrade: never lost."""
    doc = {"v": 1, "deviceId": "dev-1", "requestId": "old", "receivedAt": NOW_MS,
           "readings": [{"ts": NOW_MS + 1, "seq": 0, "metrics": {"a": 2}}, {"ts": NOW_MS, "seq": 0, "metrics": {"a": 1}}]}
    outcome = process(kinesis_event([("1", json.dumps(doc).encode(), "dev-1")]), dynamodb, processor_config, vtime)
    assert outcome.failures == [] and (outcome.stored, outcome.items) == (2, 1)
    assert [(r.ts, r.metrics) for r in stored(dynamodb)] == [(NOW_MS, {"a": 1}), (NOW_MS + 1, {"a": 2})]


def test_a_record_spanning_more_than_an_item_span_is_split(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    hour = 3_600_000
    readings = [(NOW_MS + i * hour // 2, 0, float(i)) for i in range(5)]  # 2 h of readings
    records = pack("dev-1", "r", NOW_MS, [Reading(ts, seq, {"temp": v}) for ts, seq, v in readings])
    assert len(records) == 3  # cut where a group would span an hour or more
    event = kinesis_event([(str(i), data, "dev-1") for i, data in enumerate(records)])
    outcome = process(event, dynamodb, processor_config, vtime)
    assert outcome.stored == 5 and outcome.items == 3
    assert all(int(i["lastTs"]["N"]) - int(i["firstTs"]["N"]) < hour for i in items(dynamodb))
    assert [r.ts for r in stored(dynamodb)] == [ts for ts, _, _ in readings]


def test_older_reading_never_rolls_back_latest(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 30.0)), "dev-1")]), dynamodb, processor_config, vtime)
    older = kinesis_event([("2", record("dev-1", (NOW_MS - 1000, 5, 10.0), received_at=NOW_MS + 99), "dev-1")])
    outcome = process(older, dynamodb, processor_config, vtime)
    assert outcome.failures == [] and outcome.latest_updated == 0
    dev = device(dynamodb)
    assert dev["latestTs"] == {"N": str(NOW_MS)}
    assert dev["latest"]["M"]["metrics"]["M"]["temp"] == {"N": "30.0"}
    assert len(stored(dynamodb)) == 2  # the older reading itself is still stored


def test_same_ts_higher_seq_moves_latest_forward(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    process(kinesis_event([("1", record("dev-1", (NOW_MS, 1, 1.0)), "dev-1")]), dynamodb, processor_config, vtime)
    process(kinesis_event([("2", record("dev-1", (NOW_MS, 0, 0.0)), "dev-1")]), dynamodb, processor_config, vtime)
    assert device(dynamodb)["latestSeq"] == {"N": "1"}
    process(kinesis_event([("3", record("dev-1", (NOW_MS, 2, 2.0)), "dev-1")]), dynamodb, processor_config, vtime)
    assert device(dynamodb)["latestSeq"] == {"N": "2"}


def test_newest_reading_of_a_batch_wins_whatever_its_position(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    event = kinesis_event([
        ("1", record("dev-1", (NOW_MS + 50, 0, 50.0)), "dev-1"),
        ("2", record("dev-1", (NOW_MS, 0, 0.0), (NOW_MS + 10, 0, 10.0)), "dev-1"),
    ])
    process(event, dynamodb, processor_config, vtime)
    assert device(dynamodb)["latestTs"] == {"N": str(NOW_MS + 50)}


def test_one_latest_update_per_device_per_batch(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    for d in ("dev-1", "dev-2"):
        register(dynamodb, d, "k")
    counting = FlakyDynamo(dynamodb)  # no faults: counts the calls
    event = kinesis_event([(str(i), record(d, (NOW_MS + i, 0, float(i)), (NOW_MS + i + 100, 0, 0.0)), d)
                           for i, d in enumerate(["dev-1", "dev-2", "dev-1", "dev-1", "dev-2"])])
    outcome = process(event, counting, processor_config, vtime)
    assert outcome.failures == [] and outcome.items == 5 and outcome.stored == 10
    assert counting.update_calls == 2 and outcome.latest_updated == 2
    assert device(dynamodb, "dev-1")["latestTs"] == {"N": str(NOW_MS + 3 + 100)}
    assert device(dynamodb, "dev-2")["latestTs"] == {"N": str(NOW_MS + 4 + 100)}


def test_unknown_device_gets_readings_but_no_phantom_device_item(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    outcome = process(kinesis_event([("1", record("ghost", (NOW_MS, 0, 1.0)), "ghost")]), dynamodb, processor_config, vtime)
    assert outcome.failures == []
    assert len(stored(dynamodb, "ghost")) == 1
    assert device(dynamodb, "ghost") == {}


@pytest.mark.parametrize(
    "data, partition_key",
    [
        (b"\x00\x01 not json", "dev-1"),
        (json.dumps({"v": 2, "deviceId": "dev-1", "requestId": "r", "receivedAt": 1, "readings": [{"ts": 1, "metrics": {"a": 1}}]}).encode(), "dev-1"),
        (json.dumps({"v": 1, "deviceId": "dev-1", "requestId": "r", "receivedAt": 1, "readings": []}).encode(), "dev-1"),
        (json.dumps({"v": 1, "deviceId": "dev-1", "requestId": "r", "receivedAt": 1, "readings": [{"ts": "x", "metrics": {"a": 1}}]}).encode(), "dev-1"),
        (b'{"v": 1, "deviceId": "dev-1", "requestId": "r", "receivedAt": 1, "readings": [{"ts": 1, "metrics": {"a": NaN}}]}', "dev-1"),
        (json.dumps({"v": 1, "deviceId": "dev-1", "requestId": "r", "receivedAt": 1, "readings": [{"ts": 1, "metrics": {"a": 1e200}}]}).encode(), "dev-1"),
        (record("dev-1", (NOW_MS, 0, 1.0)), "someone-else"),
        (b"\x02" + json.dumps({"deviceId": "dev-1", "requestId": "r", "receivedAt": 1}).encode() + b"\nnot zlib", "dev-1"),
        (record("dev-1", (NOW_MS, 0, 1.0))[:-3], "dev-1"),
        (b"\x02" + json.dumps({"deviceId": "dev-1", "requestId": "r", "receivedAt": 1}).encode() + b"\n"
         + zlib.compress(b"[" + b" " * 200_000 + b"]"), "dev-1"),
        (b"\x02" + json.dumps({"deviceId": "dev-1", "requestId": "r"}).encode() + b"\n"
         + zlib.compress(b'[{"ts":1,"metrics":{"a":1}}]'), "dev-1"),
        (b"\x02" + zlib.compress(b'[{"ts":1,"metrics":{"a":1}}]'), "dev-1"),
        (b"\x02" + json.dumps({"deviceId": "dev-1", "requestId": "r", "receivedAt": 1}).encode() + b"\n"
         + zlib.compress(b'[{"ts":1,"metrics":{"a":"x"}}]'), "dev-1"),
    ],
    ids=["not-json", "wrong-version", "no-readings", "bad-ts", "nan", "unstorable-number", "partition-key-mismatch",
         "v2-not-zlib", "v2-truncated", "v2-zlib-bomb", "v2-no-receivedAt", "v2-no-header", "v2-bad-metric"],
)
def test_poison_pill_is_reported_and_the_rest_stored(
    data: bytes, partition_key: str, dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime
) -> None:
    event = kinesis_event([
        ("10", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1"),
        ("11", data, partition_key),
        ("12", record("dev-1", (NOW_MS, 1, 2.0)), "dev-1"),
    ])
    outcome = process(event, dynamodb, processor_config, vtime)
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": "11"}]}
    assert [r.seq for r in stored(dynamodb)] == [0, 1]


def test_unprocessed_items_are_retried_until_written(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, unprocessed_calls=3)
    event = kinesis_event([(str(i), record("dev-1", (NOW_MS + i, 0, float(i))), "dev-1") for i in range(30)])
    outcome = process(event, flaky, processor_config, vtime)
    assert outcome.failures == [] and outcome.stored == 30 and outcome.items == 30
    assert len(items(dynamodb)) == 30 and len(stored(dynamodb)) == 30
    assert max(flaky.batch_sizes) <= 25
    assert len(flaky.batch_sizes) > 2 and len(vtime.sleeps) == 3


def test_throttled_batch_calls_are_retried_until_written(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, throttled_calls=2)
    event = kinesis_event([(str(i), record("dev-1", (NOW_MS + i, 0, float(i))), "dev-1") for i in range(5)])
    outcome = process(event, flaky, processor_config, vtime)
    assert outcome.failures == [] and outcome.stored == 5
    assert len(stored(dynamodb)) == 5
    assert flaky.batch_sizes == [5, 5, 5] and len(vtime.sleeps) == 2


def test_throttling_beyond_the_budget_raises_so_the_invocation_errors(
    dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime
) -> None:
    flaky = FlakyDynamo(dynamodb, throttled_calls=10_000)
    with pytest.raises(StorageUnavailable, match="ProvisionedThroughputExceeded"):
        process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1")]), flaky, processor_config, vtime)
    assert items(dynamodb) == []


def test_storage_failure_raises_so_the_invocation_errors(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, unprocessed_calls=10_000)
    with pytest.raises(StorageUnavailable):
        process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 1.0), (NOW_MS + 1, 0, 1.0)), "dev-1")]), flaky, processor_config, vtime)


def test_service_error_raises_rather_than_blaming_records(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, fail_code="AccessDeniedException")
    with pytest.raises(ClientError) as info:
        process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1")]), flaky, processor_config, vtime)
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    assert len(flaky.batch_sizes) == 1  # no retry can cure it: raised at once, not retried


def test_missing_table_raises(dynamodb: Any, vtime: VirtualTime) -> None:
    config = ProcessorConfig(readings_table="no-such-table", devices_table=DEVICES)
    with pytest.raises(ClientError):
        process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1")]), dynamodb, config, vtime)


def test_item_rejected_by_dynamodb_fails_only_its_record(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, invalid_devices=frozenset({"dev-bad"}))
    event = kinesis_event([
        ("5", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1"),
        ("6", record("dev-bad", (NOW_MS, 0, 1.0)), "dev-bad"),
        ("7", record("dev-2", (NOW_MS, 0, 1.0)), "dev-2"),
    ])
    outcome = process(event, flaky, processor_config, vtime)
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": "6"}]}
    assert len(stored(dynamodb, "dev-1")) == 1 and len(stored(dynamodb, "dev-2")) == 1
    assert items(dynamodb, "dev-bad") == []


def test_empty_batch_is_a_no_op(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    outcome = process({"Records": []}, dynamodb, processor_config, vtime)
    assert outcome.response() == {"batchItemFailures": []}
    assert dynamodb.scan(TableName=READINGS, Select="COUNT")["Count"] == 0
