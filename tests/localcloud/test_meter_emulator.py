"""The cost meter inside the emulator: DynamoDB units by item size, Kinesis units, SQS requests,
and who made each call (localcloud/meter_emulator.py). Counts are compared as deltas of the
emulator's counters around each action; tables, streams and queues have unique names."""
from __future__ import annotations

import uuid
from typing import Any, Iterator

import boto3
import pytest
from botocore.config import Config

from localcloud.billing_units import item_size
from localcloud.emulator import Emulator
from localcloud.meter import fetch_emulator_usage


def _client(emulator: Emulator, service: str) -> Any:
    return emulator.client(service)


def _lambda_client(emulator: Emulator, service: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client whose User-Agent says it runs in Lambda, as the runner's workers' clients do."""
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=emulator.region)
    return session.client(service, endpoint_url=emulator.endpoint_url, config=Config(retries={"max_attempts": 1}))


def _table_counts(emulator: Emulator, caller: str, table: str) -> dict[str, float]:
    return dict(fetch_emulator_usage(emulator.endpoint_url).get("dynamodb", {}).get(caller, {}).get(table, {}))


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _item(key: str, size: int) -> dict[str, Any]:
    """An item of exactly ``size`` bytes by DynamoDB's rules."""
    pad = size - item_size({"pk": {"S": key}, "pad": {"S": ""}})
    item = {"pk": {"S": key}, "pad": {"S": "x" * pad}}
    assert item_size(item) == size
    return item


@pytest.fixture()
def table(emulator: Emulator) -> Iterator[str]:
    name = f"meter-{uuid.uuid4().hex[:8]}"
    ddb = _client(emulator, "dynamodb")
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    yield name
    ddb.delete_table(TableName=name)


def test_put_item_at_the_1kb_boundary(emulator: Emulator, table: str) -> None:
    ddb = _client(emulator, "dynamodb")
    before = _table_counts(emulator, "other", table)
    ddb.put_item(TableName=table, Item=_item("a", 1024))
    ddb.put_item(TableName=table, Item=_item("b", 1025))
    got = _diff(_table_counts(emulator, "other", table), before)
    assert got["writeUnits"] == 1 + 2
    assert (got["writes"], got["storedItemsDelta"], got["storedBytesDelta"]) == (2, 2, 1024 + 1025)


def test_update_item_is_charged_on_the_larger_of_before_and_after(emulator: Emulator, table: str) -> None:
    ddb = _client(emulator, "dynamodb")
    ddb.put_item(TableName=table, Item=_item("u", 1100))
    before = _table_counts(emulator, "other", table)
    # shrink 1100 B -> about 900 B: still 2 WRU, the item before the update was over 1 KB
    ddb.update_item(TableName=table, Key={"pk": {"S": "u"}}, UpdateExpression="SET #p = :p", ExpressionAttributeNames={"#p": "pad"},
                    ExpressionAttributeValues={":p": {"S": "x" * 890}})
    got = _diff(_table_counts(emulator, "other", table), before)
    assert got["writeUnits"] == 2
    assert got["storedBytesDelta"] == -(1100 - item_size({"pk": {"S": "u"}, "pad": {"S": "x" * 890}}))


def test_a_failed_conditional_write_is_still_charged(emulator: Emulator, table: str) -> None:
    ddb = _client(emulator, "dynamodb")
    ddb.put_item(TableName=table, Item=_item("c", 1500))
    before = _table_counts(emulator, "other", table)
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.update_item(TableName=table, Key={"pk": {"S": "c"}}, UpdateExpression="SET #p = :p", ExpressionAttributeNames={"#p": "pad"},
                        ConditionExpression="attribute_not_exists(pk)", ExpressionAttributeValues={":p": {"S": "y"}})
    got = _diff(_table_counts(emulator, "other", table), before)
    assert (got["writeUnits"], got["conditionalFailures"]) == (2, 1)
    assert "storedBytesDelta" not in got


def test_batch_write_item_rounds_each_item(emulator: Emulator, table: str) -> None:
    ddb = _client(emulator, "dynamodb")
    before = _table_counts(emulator, "other", table)
    ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": _item(k, n)}}
                                              for k, n in (("p1", 200), ("p2", 1500), ("p3", 3000))]})
    got = _diff(_table_counts(emulator, "other", table), before)
    assert (got["writeUnits"], got["writes"], got["storedItemsDelta"]) == (1 + 2 + 3, 3, 3)


def test_reads_per_4kb_halved_unless_consistent(emulator: Emulator, table: str) -> None:
    ddb = _client(emulator, "dynamodb")
    ddb.put_item(TableName=table, Item=_item("r", 5000))
    before = _table_counts(emulator, "other", table)
    ddb.get_item(TableName=table, Key={"pk": {"S": "r"}}, ConsistentRead=True)  # 2 blocks: 2
    ddb.get_item(TableName=table, Key={"pk": {"S": "r"}})  # eventually consistent: 1
    ddb.get_item(TableName=table, Key={"pk": {"S": "absent"}})  # nothing found still reads: 0.5
    ddb.query(TableName=table, KeyConditionExpression="pk = :k", ExpressionAttributeValues={":k": {"S": "r"}})  # 1
    got = _diff(_table_counts(emulator, "other", table), before)
    assert (got["readUnits"], got["reads"]) == (2 + 1 + 0.5 + 1, 4)
    assert "writeUnits" not in got  # moto's own internal lookups are not billed


def test_calls_from_lambda_are_the_pipelines(emulator: Emulator, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ddb = _lambda_client(emulator, "dynamodb", monkeypatch)
    before = _table_counts(emulator, "pipeline", table)
    ddb.put_item(TableName=table, Item=_item("l", 10))
    got = _diff(_table_counts(emulator, "pipeline", table), before)
    assert (got["writeUnits"], got["writes"]) == (1, 1)


def test_kinesis_records_units_and_bytes(clean_faults: Emulator) -> None:
    emulator = clean_faults
    kinesis = _client(emulator, "kinesis")
    stream = f"meter-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1})

    def counts() -> dict[str, float]:
        return dict(fetch_emulator_usage(emulator.endpoint_url).get("kinesis", {}).get("other", {}).get(stream, {}))

    before = counts()
    small, large = b"a" * 99, b"b" * (30 * 1024)  # + 1-byte partition key: 100 B and 30 KiB + 1
    kinesis.put_records(StreamName=stream, Records=[{"Data": small, "PartitionKey": "k"},
                                                    {"Data": large, "PartitionKey": "k"}])
    # the fault injector refuses entry 1: AWS does not bill a rejected entry, neither does the meter
    emulator.inject_fault({"target": "Kinesis_20131202.PutRecords", "failRecords": [1]})
    kinesis.put_records(StreamName=stream, Records=[{"Data": small, "PartitionKey": "k"},
                                                    {"Data": large, "PartitionKey": "k"}])
    got = _diff(counts(), before)
    assert got["records"] == 3
    assert got["bytes"] == 2 * 100 + (30 * 1024 + 1)  # two small, one large
    assert got["putUnits"] == 1 + 2 + 1
    assert got["onDemandBytes"] == 1024 + 31 * 1024 + 1024
    kinesis.delete_stream(StreamName=stream)


def test_sqs_requests_without_the_monitors_polling(emulator: Emulator) -> None:
    sqs = _client(emulator, "sqs")
    url = sqs.create_queue(QueueName=f"meter-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    def counts() -> dict[str, Any]:
        return dict(fetch_emulator_usage(emulator.endpoint_url).get("sqs", {}).get("other", {}))

    before = counts()
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])  # free: monitor only
    sqs.receive_message(QueueUrl=url)
    after = counts()
    assert after["requests"] - before.get("requests", 0) == 2
    assert "GetQueueAttributes" not in after.get("byAction", {})
    sqs.delete_queue(QueueUrl=url)
