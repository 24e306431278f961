"""DeviceRegistry against moto: keys are returned once, only hashes stored, clear errors."""
from __future__ import annotations

from typing import Any

import pytest

from admin.registry import DeviceExists, DeviceNotFound, DeviceRegistry, InvalidDeviceId
from admin_support import TABLE
from handlers.telemetry.auth import authorize
from handlers.telemetry.device_keys import hash_key


def raw_item(ddb: Any, device_id: str) -> dict[str, Any]:
    return ddb.get_item(TableName=TABLE, Key={"deviceId": {"S": device_id}})["Item"]


def auth(ddb: Any, device_id: str, key: str) -> bool:
    return authorize({"headers": {"x-device-id": device_id, "x-device-key": key}}, ddb, TABLE).allowed


def test_add_stores_only_the_hash_and_the_key_authorises(ddb: Any) -> None:
    registry = DeviceRegistry(ddb, TABLE)
    device_id, key = registry.add("sensor-1")
    assert device_id == "sensor-1" and len(key) >= 40
    item = raw_item(ddb, "sensor-1")
    assert item["keyHash"]["S"] == hash_key(key)
    assert key not in str(item)  # the key itself is nowhere in the table
    assert item["status"]["S"] == "active" and item["createdAt"]["S"].endswith("Z")
    assert auth(ddb, "sensor-1", key)


def test_add_generates_distinct_ids_and_keys(ddb: Any) -> None:
    registry = DeviceRegistry(ddb, TABLE)
    (id1, key1), (id2, key2) = registry.add(), registry.add()
    assert id1 != id2 and key1 != key2
    assert {d["deviceId"] for d in registry.list()} == {id1, id2}


def test_add_never_overwrites(ddb: Any) -> None:
    registry = DeviceRegistry(ddb, TABLE)
    _, key = registry.add("sensor-1")
    with pytest.raises(DeviceExists, match="rotate"):
        registry.add("sensor-1")
    assert auth(ddb, "sensor-1", key)  # the original key still works


def test_rotate_replaces_the_key(ddb: Any) -> None:
    registry = DeviceRegistry(ddb, TABLE)
    _, old = registry.add("sensor-1")
    new = registry.rotate("sensor-1")
    assert new != old
    assert not auth(ddb, "sensor-1", old) and auth(ddb, "sensor-1", new)
    assert "rotatedAt" in registry.get("sensor-1")


def test_revoke_denies_and_rotate_reactivates(ddb: Any) -> None:
    registry = DeviceRegistry(ddb, TABLE)
    _, key = registry.add("sensor-1")
    registry.revoke("sensor-1")
    assert registry.get("sensor-1")["status"] == "revoked"
    assert not auth(ddb, "sensor-1", key)
    new = registry.rotate("sensor-1")
    assert auth(ddb, "sensor-1", new)


@pytest.mark.parametrize("operation", ["rotate", "revoke", "get"])
def test_unknown_device_is_a_clear_error_and_creates_nothing(ddb: Any, operation: str) -> None:
    registry = DeviceRegistry(ddb, TABLE)
    with pytest.raises(DeviceNotFound, match="no device 'ghost'"):
        getattr(registry, operation)("ghost")
    assert ddb.scan(TableName=TABLE)["Count"] == 0


def test_invalid_device_id_is_rejected(ddb: Any) -> None:
    with pytest.raises(InvalidDeviceId):
        DeviceRegistry(ddb, TABLE).add("bad id with spaces")


def test_list_and_get_never_include_the_key_hash(ddb: Any) -> None:
    registry = DeviceRegistry(ddb, TABLE)
    registry.add("b-dev")
    registry.add("a-dev")
    ddb.update_item(
        TableName=TABLE, Key={"deviceId": {"S": "a-dev"}},
        UpdateExpression="SET lastSeenAt = :t", ExpressionAttributeValues={":t": {"N": "1700000000123"}},
    )
    devices = registry.list()
    assert [d["deviceId"] for d in devices] == ["a-dev", "b-dev"]
    assert all("keyHash" not in d for d in devices)
    assert "keyHash" not in registry.get("a-dev")
    assert devices[0]["lastSeenAt"] == 1_700_000_000_123
