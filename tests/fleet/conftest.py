"""Fixtures for the fleet's tests: an in-thread moto server (loopback) and the fake contract API."""
from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from fleet_fake_api import FakeApi, Faults


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def dynamodb(moto_endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def readings_table(dynamodb: Any) -> str:
    """A fresh readings table with the contract's key schema."""
    name = f"readings-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}, {"AttributeName": "readingKey", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"},
                              {"AttributeName": "readingKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def dynamo_store(dynamodb: Any, table: str, devices_table: str | None = None) -> Callable[[str, list[dict[str, Any]]], None]:
    """Store readings the way the processor does (readingKey = f"{ts:013d}#{seq:010d}"), then move the
    device's latestTs/latestSeq forward in the devices table, if one is given, as the processor does."""

    def store(device: str, readings: list[dict[str, Any]]) -> None:
        for r in readings:
            dynamodb.put_item(TableName=table, Item={
                "deviceId": {"S": device},
                "readingKey": {"S": f"{r['ts']:013d}#{r.get('seq', 0):010d}"},
                "ts": {"N": str(r["ts"])},
                "seq": {"N": str(r.get("seq", 0))},
                "metrics": {"M": {k: {"N": repr(v)} for k, v in r["metrics"].items()}},
            })
        if devices_table and readings:
            newest = max(readings, key=lambda r: (r["ts"], r.get("seq", 0)))
            try:
                dynamodb.update_item(
                    TableName=devices_table, Key={"deviceId": {"S": device}},
                    UpdateExpression="SET latestTs = :t, latestSeq = :s",
                    ConditionExpression="attribute_not_exists(latestTs) OR latestTs < :t OR (latestTs = :t AND latestSeq < :s)",
                    ExpressionAttributeValues={":t": {"N": str(newest["ts"])}, ":s": {"N": str(newest.get("seq", 0))}},
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass

    return store


@pytest.fixture
def fake_api_factory() -> Iterator[Callable[..., FakeApi]]:
    started: list[FakeApi] = []

    def make(keys: dict[str, str], store: Callable[[str, list[dict[str, Any]]], None] | None = None,
             faults: Faults | None = None) -> FakeApi:
        api = FakeApi(keys=keys, store=store or (lambda d, r: None), faults=faults or Faults()).start()
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()
