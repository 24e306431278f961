"""Fixtures for the fleet's tests: DynamoDB on the shared moto server (tests/conftest.py) and the fake contract API."""
from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import boto3
import pytest

from fleet_fake_api import FakeApi, Faults


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
