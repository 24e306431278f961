"""A replay target in moto (stream, tables, DLQ, the processor function's configuration) and
helpers to put telemetry on the stream and failed-batch records in the DLQ.

Only the AWS side is faked (moto, or a thin wrapper that trims a shard the way
retention does); the replay and the processor code under test are the real ones.
"""
from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from handlers.telemetry.records import pack
from handlers.telemetry.validation import Reading

REGION = "us-east-1"
STREAM = "replay-stream"
READINGS = "replay-readings"
DEVICES = "replay-devices"
PROCESSOR = "replay-processor"
SHARD = "shardId-000000000000"
NOW_MS = 1_750_000_000_000


@dataclass
class Stack:
    kinesis: Any
    dynamodb: Any
    sqs: Any
    outputs: dict[str, Any]
    stack_file: Path
    sequence: dict[str, list[str]] = field(default_factory=dict)

    @property
    def queue_url(self) -> str:
        return str(self.outputs["dlqUrl"])

    def put(self, device_id: str, count: int, first_seq: int = 0) -> str:
        """One Kinesis record of ``count`` readings, as the ingest function writes it; its sequence number."""
        readings = [Reading(ts=NOW_MS + first_seq + i, seq=first_seq + i, metrics={"t": 20.0 + i}) for i in range(count)]
        (data,) = pack(device_id, uuid.uuid4().hex, NOW_MS, readings)
        put = self.kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=device_id)
        return str(put["SequenceNumber"])

    def put_raw(self, data: bytes, key: str) -> str:
        return str(self.kinesis.put_record(StreamName=STREAM, Data=data, PartitionKey=key)["SequenceNumber"])

    def fail(self, first: str, last: str, size: int, stream_arn: str | None = None, shard: str = SHARD) -> None:
        """Send the DLQ what Lambda sends for a batch it gave up on (metadata only):
        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html"""
        body = {
            "requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetryAttemptsExhausted",
                               "functionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{PROCESSOR}",
                               "approximateInvokeCount": 4},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": "2026-12-01T08:00:00.000Z",
            "KinesisBatchInfo": {
                "shardId": shard, "startSequenceNumber": first, "endSequenceNumber": last,
                "approximateArrivalOfFirstRecord": "2026-12-01T07:59:00.000Z",
                "approximateArrivalOfLastRecord": "2026-12-01T07:59:01.000Z",
                "batchSize": size, "streamArn": stream_arn or self.outputs["streamArn"],
            },
        }
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def dlq_bodies(self) -> list[Any]:
        """Every message body in the DLQ, parsed if JSON (peeked: they stay visible)."""
        bodies: dict[str, Any] = {}
        for _ in range(5):
            for m in self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                              VisibilityTimeout=0).get("Messages", []):
                try:
                    bodies[m["MessageId"]] = json.loads(m["Body"])
                except ValueError:
                    bodies[m["MessageId"]] = m["Body"]
        return list(bodies.values())

    def dlq_depth(self) -> int:
        """Messages in the DLQ, visible or not (a message merely hidden by a receive still counts)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def stored(self, device_id: str) -> list[tuple[int, int]]:
        """(ts, seq) of the device's stored readings, one entry per stored copy (sorted)."""
        return stored_readings(self.dynamodb, READINGS, device_id)

    def items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=READINGS, ConsistentRead=True)["Items"]

    def register(self, device_id: str) -> None:
        self.dynamodb.put_item(TableName=DEVICES, Item={"deviceId": {"S": device_id}, "status": {"S": "active"}})


def stored_readings(dynamodb: Any, table: str, device_id: str) -> list[tuple[int, int]]:
    """(ts, seq) of every stored reading of a device, a reading stored twice listed twice.

    Layout-independent: through the readings table's reader (admin.readings) where it
    exists, else from items of one reading each (ts and seq attributes).
    """
    try:
        from admin.readings import read_readings
    except ImportError:
        items = dynamodb.query(TableName=table, KeyConditionExpression="deviceId = :d", ConsistentRead=True,
                               ExpressionAttributeValues={":d": {"S": device_id}})["Items"]
        return sorted((int(i["ts"]["N"]), int(i["seq"]["N"])) for i in items)
    found = read_readings(dynamodb, table, device_id, 0, 10**13, consistent=True)
    return sorted((r.ts, r.seq) for r in found for _ in range(r.copies))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name=REGION)
        kinesis.create_stream(StreamName=STREAM, ShardCount=1)
        stream_arn = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["StreamARN"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=READINGS,
            KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}, {"AttributeName": "readingKey", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"},
                                  {"AttributeName": "readingKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName=DEVICES, KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="replay-dlq")["QueueUrl"]
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(RoleName="replay-processor-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("processor.py", "def handler(event, context):\n    return {}\n")
        boto3.client("lambda", region_name=REGION).create_function(
            FunctionName=PROCESSOR, Runtime="python3.12", Role=role, Handler="processor.handler",
            Code={"ZipFile": archive.getvalue()},
            Environment={"Variables": {"READINGS_TABLE": READINGS, "DEVICES_TABLE": DEVICES, "READINGS_TTL_DAYS": "7"}},
        )
        outputs = {"dlqUrl": queue_url, "streamName": STREAM, "streamArn": stream_arn,
                   "readingsTableName": READINGS, "devicesTableName": DEVICES,
                   "functionNames": {"processor": PROCESSOR, "ingest": "x", "authorizer": "y"}}
        stack_file = tmp_path / "outputs.json"
        stack_file.write_text(json.dumps(outputs))
        yield Stack(kinesis, dynamodb, sqs, outputs, stack_file)


class TrimmedKinesis:
    """The stream as retention leaves it: records before ``trim_before`` are gone.

    ``refuse_trimmed``: GetShardIterator(AT_SEQUENCE_NUMBER) of a trimmed record answers
    InvalidArgumentException; otherwise the iterator starts at the oldest record left
    (AWS documents neither for AT_SEQUENCE_NUMBER, so replay must cope with both).
    """

    def __init__(self, real: Any, trim_before: str, refuse_trimmed: bool = False) -> None:
        self.real = real
        self.trim_before = int(trim_before)
        self.refuse_trimmed = refuse_trimmed

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        kind = kwargs.get("ShardIteratorType")
        start = int(kwargs.get("StartingSequenceNumber", 0) or 0)
        if kind == "TRIM_HORIZON" or (kind == "AT_SEQUENCE_NUMBER" and start < self.trim_before):
            if kind == "AT_SEQUENCE_NUMBER" and self.refuse_trimmed:
                raise ClientError({"Error": {"Code": "InvalidArgumentException", "Message": "trimmed"}},
                                  "GetShardIterator")
            kwargs.update(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=str(self.trim_before))
        return dict(self.real.get_shard_iterator(**kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class DownDynamo:
    """DynamoDB refusing BatchWriteItem with ``code`` (every call, or the first ``times``);
    everything else goes to moto."""

    def __init__(self, real: Any, code: str = "AccessDeniedException", status: int = 400, times: int | None = None) -> None:
        self.real = real
        self.code, self.status, self.times = code, status, times
        self.calls = 0

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.times is not None and self.calls > self.times:
            return dict(self.real.batch_write_item(**kwargs))
        raise ClientError({"Error": {"Code": self.code, "Message": "injected: writes refused"},
                           "ResponseMetadata": {"HTTPStatusCode": self.status}}, "BatchWriteItem")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
