"""Authorizer: deny on every doubtful case (including lookup errors), allow with the deviceId context."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from handlers.telemetry.auth import authorize
from handlers_support import DEVICES, register

KEY = "correct-horse-battery-staple"


def event(device_id: str | None = "dev-1", key: str | None = KEY) -> dict[str, Any]:
    headers = {}
    if device_id is not None:
        headers["x-device-id"] = device_id
    if key is not None:
        headers["x-device-key"] = key
    return {"version": "2.0", "type": "REQUEST", "routeKey": "POST /v1/telemetry", "headers": headers}


@pytest.fixture
def registered(dynamodb: Any) -> Any:
    register(dynamodb, "dev-1", KEY)
    register(dynamodb, "dev-old", KEY, status="revoked")
    return dynamodb


def test_correct_key_is_allowed_with_device_context(registered: Any) -> None:
    result = authorize(event(), registered, DEVICES)
    assert result.response() == {"isAuthorized": True, "context": {"deviceId": "dev-1"}}


@pytest.mark.parametrize(
    "evt, reason",
    [
        (event(device_id=None), "missing"),
        (event(key=None), "missing"),
        (event(key=""), "missing"),
        (event(device_id="nobody"), "unknown device"),
        (event(key=KEY + "x"), "wrong key"),
        (event(key=KEY.upper()), "wrong key"),
        (event(device_id="dev-old"), "not active"),
        (event(device_id="dev-1,dev-2"), "malformed"),  # a repeated header arrives comma-joined
    ],
    ids=["no-id", "no-key", "empty-key", "unknown", "wrong-key", "case-changed-key", "revoked", "repeated-header"],
)
def test_denied(evt: dict[str, Any], reason: str, registered: Any) -> None:
    result = authorize(evt, registered, DEVICES)
    assert result.response() == {"isAuthorized": False, "context": {}}
    assert reason in result.reason


def test_event_without_headers_is_denied(registered: Any) -> None:
    assert authorize({"version": "2.0"}, registered, DEVICES).allowed is False


def test_lookup_error_denies(dynamodb: Any) -> None:
    register(dynamodb, "dev-1", KEY)
    result = authorize(event(), dynamodb, "no-such-table")  # ResourceNotFoundException from DynamoDB
    assert result.response()["isAuthorized"] is False
    assert result.reason == "lookup error"


def test_unexpected_client_failure_denies(dynamodb: Any) -> None:
    class Broken:
        def get_item(self, **_: Any) -> Any:
            raise ConnectionResetError("connection reset by peer")

    assert authorize(event(), Broken(), DEVICES).allowed is False


def test_device_without_key_hash_is_denied(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=DEVICES, Item={"deviceId": {"S": "dev-1"}, "status": {"S": "active"}})
    assert authorize(event(), dynamodb, DEVICES).allowed is False


def test_key_is_never_logged(registered: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for evt in (event(), event(key=KEY + "x"), event(device_id="nobody")):
        authorize(evt, registered, DEVICES, logging.getLogger("authz-test"))
    assert caplog.records  # the reasons were logged ...
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert KEY not in text  # ... but never the key
