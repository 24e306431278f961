"""Processor: storage format, idempotency, out-of-order safety, poison pills, DynamoDB failures."""
from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

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


def device(dynamodb: Any, device_id: str = "dev-1") -> dict[str, Any]:
    return dynamodb.get_item(TableName=DEVICES, Key={"deviceId": {"S": device_id}}).get("Item", {})


def test_readings_are_stored_in_the_contract_format(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    event = kinesis_event([("100", record("dev-1", (NOW_MS, 7, 21.5), received_at=NOW_MS + 5), "dev-1")])
    outcome = process(event, dynamodb, processor_config, vtime)
    assert outcome.response() == {"batchItemFailures": []}
    assert outcome.stored == 1
    (item,) = items(dynamodb)
    assert item["readingKey"] == {"S": f"{NOW_MS:013d}#{7:010d}"}
    assert item["ts"] == {"N": str(NOW_MS)} and item["seq"] == {"N": "7"}
    assert item["metrics"] == {"M": {"temp": {"N": "21.5"}}}
    assert item["receivedAt"] == {"N": str(NOW_MS + 5)}
    assert item["expiresAt"] == {"N": str(NOW_MS // 1000 + 30 * 86_400)}
    dev = device(dynamodb)
    assert dev["latestTs"] == {"N": str(NOW_MS)} and dev["latestSeq"] == {"N": "7"}
    assert dev["lastSeenAt"] == {"N": str(NOW_MS + 5)}
    assert dev["latest"]["M"]["metrics"] == {"M": {"temp": {"N": "21.5"}}}
    assert dev["keyHash"]["S"]  # the update leaves the credentials alone


def test_resent_request_leaves_no_duplicate_items(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    data = record("dev-1", (NOW_MS, 0, 1.0), (NOW_MS + 1, 0, 2.0))
    process(kinesis_event([("1", data, "dev-1")]), dynamodb, processor_config, vtime)
    # the same readings again, in a later batch and twice within one batch (a duplicate key in one BatchWriteItem)
    counting = FlakyDynamo(dynamodb)  # no faults: only records the BatchWriteItem calls
    outcome = process(kinesis_event([("2", data, "dev-1"), ("3", data, "dev-1")]), counting, processor_config, vtime)
    assert outcome.failures == []
    assert counting.batch_sizes == [2]  # deduplicated before the call, not rescued by a fallback
    assert len(items(dynamodb)) == 2
    assert dynamodb.scan(TableName=READINGS, Select="COUNT")["Count"] == 2


def test_older_reading_never_rolls_back_latest(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 30.0)), "dev-1")]), dynamodb, processor_config, vtime)
    older = kinesis_event([("2", record("dev-1", (NOW_MS - 1000, 5, 10.0), received_at=NOW_MS + 99), "dev-1")])
    outcome = process(older, dynamodb, processor_config, vtime)
    assert outcome.failures == [] and outcome.latest_updated == 0
    dev = device(dynamodb)
    assert dev["latestTs"] == {"N": str(NOW_MS)}
    assert dev["latest"]["M"]["metrics"]["M"]["temp"] == {"N": "30.0"}
    assert len(items(dynamodb)) == 2  # the older reading itself is still stored


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


def test_unknown_device_gets_readings_but_no_phantom_device_item(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    outcome = process(kinesis_event([("1", record("ghost", (NOW_MS, 0, 1.0)), "ghost")]), dynamodb, processor_config, vtime)
    assert outcome.failures == []
    assert len(items(dynamodb, "ghost")) == 1
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
    ],
    ids=["not-json", "wrong-version", "no-readings", "bad-ts", "nan", "unstorable-number", "partition-key-mismatch"],
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
    assert sorted(i["seq"]["N"] for i in items(dynamodb)) == ["0", "1"]


def test_unprocessed_items_are_retried_until_written(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, unprocessed_calls=3)
    readings = [(NOW_MS + i, 0, float(i)) for i in range(30)]
    outcome = process(kinesis_event([("1", record("dev-1", *readings), "dev-1")]), flaky, processor_config, vtime)
    assert outcome.failures == [] and outcome.stored == 30
    assert len(items(dynamodb)) == 30
    assert max(flaky.batch_sizes) <= 25
    assert len(flaky.batch_sizes) > 2 and len(vtime.sleeps) == 3


def test_throttled_batch_calls_are_retried_until_written(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, throttled_calls=2)
    readings = [(NOW_MS + i, 0, float(i)) for i in range(5)]
    outcome = process(kinesis_event([("1", record("dev-1", *readings), "dev-1")]), flaky, processor_config, vtime)
    assert outcome.failures == [] and outcome.stored == 5
    assert len(items(dynamodb)) == 5
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
    assert len(items(dynamodb, "dev-1")) == 1 and len(items(dynamodb, "dev-2")) == 1
    assert items(dynamodb, "dev-bad") == []


def test_empty_batch_is_a_no_op(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    outcome = process({"Records": []}, dynamodb, processor_config, vtime)
    assert outcome.response() == {"batchItemFailures": []}
    assert dynamodb.scan(TableName=READINGS, Select="COUNT")["Count"] == 0
