"""Processor under transient DynamoDB faults: throttling, 5xx bursts and lost connections are ridden
out inside the invocation, never turned into failed records, bisected batches or DLQ entries."""
from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from admin.readings import read_readings
from handlers.telemetry.config import ProcessorConfig
from handlers.telemetry.process import BatchOutcome, process_batch
from handlers.telemetry.records import pack
from handlers.telemetry.storage import StorageUnavailable, is_transient
from handlers.telemetry.validation import Reading
from handlers_support import DEVICES, NOW_MS, READINGS, VirtualTime, kinesis_event, register
from dynamodb_faults import FlakyDynamo, client_error


def record(device: str, *readings: tuple[int, int, float]) -> bytes:
    (data,) = pack(device, "r", NOW_MS, [Reading(ts, seq, {"temp": v}) for ts, seq, v in readings])
    return data


def process(event: dict[str, Any], dynamodb: Any, config: ProcessorConfig, vtime: VirtualTime) -> BatchOutcome:
    return process_batch(event, dynamodb=dynamodb, config=config, new_backoff=vtime.backoff)


def stored_count(dynamodb: Any) -> int:
    """Readings of dev-1 stored, through the reader (items hold many readings each)."""
    return len(list(read_readings(dynamodb, READINGS, "dev-1", 0, 10**13)))


def latest_ts(dynamodb: Any, device_id: str = "dev-1") -> str | None:
    item = dynamodb.get_item(TableName=DEVICES, Key={"deviceId": {"S": device_id}}).get("Item", {})
    return item.get("latestTs", {}).get("N")


@pytest.mark.parametrize(
    "code, transient",
    [
        ("ProvisionedThroughputExceededException", True),
        ("ThrottlingException", True),
        ("RequestLimitExceeded", True),
        ("InternalServerError", True),
        ("ServiceUnavailable", True),
        ("ValidationException", False),
        ("AccessDeniedException", False),
        ("ResourceNotFoundException", False),
        ("ConditionalCheckFailedException", False),
    ],
)
def test_which_errors_are_transient(code: str, transient: bool) -> None:
    assert is_transient(client_error(code, "BatchWriteItem")) is transient


def test_any_5xx_status_is_transient_and_transport_errors_too() -> None:
    unnamed = ClientError({"Error": {"Code": "SomethingNew"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "UpdateItem")
    assert is_transient(unnamed)
    assert is_transient(ReadTimeoutError(endpoint_url="http://x"))
    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))


def test_a_burst_of_server_errors_is_ridden_out(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    flaky = FlakyDynamo(dynamodb, burst=["InternalServerError"] * 4 + ["ServiceUnavailable", "ThrottlingException"])
    readings = [(NOW_MS + i, 0, float(i)) for i in range(10)]
    outcome = process(kinesis_event([("1", record("dev-1", *readings), "dev-1")]), flaky, processor_config, vtime)
    assert outcome.response() == {"batchItemFailures": []} and outcome.stored == 10
    assert stored_count(dynamodb) == 10
    assert len(flaky.batch_sizes) == 7 and len(vtime.sleeps) == 6  # six refused calls, each retried after a pause
    assert latest_ts(dynamodb) == str(NOW_MS + 9)


def test_a_lost_connection_is_retried(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    flaky = FlakyDynamo(dynamodb, burst=[ReadTimeoutError(endpoint_url="http://dynamodb")])
    outcome = process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1")]), flaky, processor_config, vtime)
    assert outcome.failures == [] and stored_count(dynamodb) == 1


def test_throttled_and_failing_latest_updates_are_retried(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", "k")
    flaky = FlakyDynamo(dynamodb, update_burst=["ProvisionedThroughputExceededException", "InternalServerError"])
    outcome = process(kinesis_event([("1", record("dev-1", (NOW_MS, 3, 1.0)), "dev-1")]), flaky, processor_config, vtime)
    assert outcome.failures == [] and outcome.latest_updated == 1
    assert flaky.update_calls == 3
    assert latest_ts(dynamodb) == str(NOW_MS)


def test_server_errors_outlasting_the_deadline_fail_the_invocation(
    dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime
) -> None:
    flaky = FlakyDynamo(dynamodb, burst=["InternalServerError"] * 10_000)
    with pytest.raises(StorageUnavailable, match="InternalServerError"):
        process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1")]), flaky, processor_config, vtime)
    assert stored_count(dynamodb) == 0
    assert sum(vtime.sleeps) <= 3.0  # gave up at the budget, not before and not after


def test_latest_update_failing_past_the_deadline_fails_the_invocation(
    dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime
) -> None:
    register(dynamodb, "dev-1", "k")
    flaky = FlakyDynamo(dynamodb, update_burst=["ThrottlingException"] * 10_000)
    with pytest.raises(StorageUnavailable, match="UpdateItem"):
        process(kinesis_event([("1", record("dev-1", (NOW_MS, 0, 1.0)), "dev-1")]), flaky, processor_config, vtime)
    assert stored_count(dynamodb) == 1  # the reading itself is stored; the retried batch re-writes it harmlessly
