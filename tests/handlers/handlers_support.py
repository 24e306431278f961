"""Fixtures for handler tests: in-process moto (mock_aws), real boto3 clients, virtual time.

Only the AWS side is ever faked (moto, or a thin client wrapper that injects
AWS-style failures); the code under test is always the real handlers code.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from handlers.telemetry.backoff import Backoff, RetryPolicy
from handlers.telemetry.config import IngestConfig, ProcessorConfig
from handlers.telemetry.device_keys import hash_key

REGION = "us-east-1"
STREAM = "telemetry-test"
READINGS = "readings-test"
DEVICES = "devices-test"
NOW_MS = 1_750_000_000_000


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def kinesis(aws: None) -> Any:
    client = boto3.client("kinesis", region_name=REGION)
    client.create_stream(StreamName=STREAM, ShardCount=1)
    return client


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=READINGS,
        KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}, {"AttributeName": "readingKey", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "deviceId", "AttributeType": "S"},
            {"AttributeName": "readingKey", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.create_table(
        TableName=DEVICES,
        KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def register(dynamodb: Any, device_id: str, key: str, status: str = "active") -> None:
    dynamodb.put_item(
        TableName=DEVICES,
        Item={"deviceId": {"S": device_id}, "keyHash": {"S": hash_key(key)}, "status": {"S": status}},
    )


def stream_records(kinesis: Any) -> list[dict[str, Any]]:
    """Every record in the test stream, oldest first, with Data decoded as JSON."""
    out: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            out.extend(page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


@dataclass
class VirtualTime:
    """A clock whose sleep advances it instantly: retry budgets are exercised without waiting."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def backoff(self, budget_s: float = 3.0) -> Backoff:
        return Backoff(RetryPolicy(budget_s=budget_s), sleep=self.sleep, clock=self.clock, rng=lambda: 1.0)


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def ingest_config() -> IngestConfig:
    return IngestConfig(stream_name=STREAM, max_readings=100, max_body_bytes=64_000, max_age_s=3600, max_future_skew_s=60, put_budget_s=3.0)


@pytest.fixture
def processor_config() -> ProcessorConfig:
    return ProcessorConfig(readings_table=READINGS, devices_table=DEVICES, ttl_days=30)


def telemetry_event(
    body: Any,
    *,
    device_id: str | None = "dev-1",
    content_type: str | None = "application/json",
    b64: bool = False,
    raw: bool = False,
) -> dict[str, Any]:
    """A payload 2.0 event as API Gateway would deliver it after the authorizer allowed device_id."""
    text = body if raw else json.dumps(body)
    data = text.encode("utf-8") if isinstance(text, str) else text
    headers = {"x-device-id": device_id or ""}
    if content_type is not None:
        headers["content-type"] = content_type
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "POST /v1/telemetry",
        "rawPath": "/v1/telemetry",
        "headers": headers,
        "requestContext": {"requestId": "req-1", "http": {"method": "POST", "path": "/v1/telemetry"}},
        "body": base64.b64encode(data).decode("ascii") if b64 else data.decode("utf-8", "surrogateescape"),
        "isBase64Encoded": b64,
    }
    if device_id is not None:
        event["requestContext"]["authorizer"] = {"lambda": {"deviceId": device_id}}
    return event


def reading(ts: int = NOW_MS, seq: int | None = None, **metrics: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ts": ts, "metrics": metrics or {"temp": 21.5}}
    if seq is not None:
        out["seq"] = seq
    return out


def kinesis_event(records: list[tuple[str, bytes, str]]) -> dict[str, Any]:
    """A Kinesis event source mapping event: (sequenceNumber, data, partitionKey) per record."""
    return {
        "Records": [
            {
                "eventSource": "aws:kinesis",
                "kinesis": {"sequenceNumber": seq, "data": base64.b64encode(data).decode("ascii"), "partitionKey": pk},
            }
            for seq, data, pk in records
        ]
    }
