"""Device registry on the devices table: add, rotate, revoke, list, get.

Only the SHA-256 of a key is stored; the key itself is returned once by
add/rotate and cannot be recovered afterwards. Hashing and generation come from
handlers.telemetry.device_keys so the authorizer and this tool agree exactly.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from handlers.telemetry.device_keys import (
    ATTR_CREATED_AT,
    ATTR_DEVICE_ID,
    ATTR_KEY_HASH,
    ATTR_ROTATED_AT,
    ATTR_STATUS,
    STATUS_ACTIVE,
    STATUS_REVOKED,
    generate_device_id,
    generate_key,
    hash_key,
    is_valid_device_id,
)
from handlers.telemetry.usage import ATTR_QUOTA, QuotaFormatError, day_end_ms, iso_z, item_quota, item_used_today, quota_attribute


class RegistryError(Exception):
    """A registry operation that cannot be done as asked; the message says what to do instead."""


class DeviceNotFound(RegistryError):
    pass


class DeviceExists(RegistryError):
    pass


class InvalidDeviceId(RegistryError):
    pass


def _now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _plain(value: dict[str, Any]) -> Any:
    """DynamoDB AttributeValue -> plain Python (numbers as int/float)."""
    (kind, inner), = value.items()
    if kind == "S":
        return inner
    if kind == "N":
        return int(inner) if inner.lstrip("-").isdigit() else float(inner)
    if kind == "M":
        return {k: _plain(v) for k, v in inner.items()}
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind == "BOOL":
        return inner
    if kind == "NULL":
        return None
    return inner


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """An item as shown to operators: never the key hash."""
    return {name: _plain(value) for name, value in sorted(item.items()) if name != ATTR_KEY_HASH}


class DeviceRegistry:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._ddb = dynamodb_client
        self._table = table_name

    @staticmethod
    def _check_id(device_id: str) -> None:
        if not is_valid_device_id(device_id):
            raise InvalidDeviceId(
                f"invalid device id {device_id!r}: use 1-128 characters from A-Z a-z 0-9 _ . : -"
            )

    def add(self, device_id: str | None = None) -> tuple[str, str]:
        """Register a device; returns (device id, key). Never overwrites an existing device."""
        device_id = generate_device_id() if device_id is None else device_id
        self._check_id(device_id)
        key = generate_key()
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item={
                    ATTR_DEVICE_ID: {"S": device_id},
                    ATTR_KEY_HASH: {"S": hash_key(key)},
                    ATTR_STATUS: {"S": STATUS_ACTIVE},
                    ATTR_CREATED_AT: {"S": _now_iso()},
                },
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": ATTR_DEVICE_ID},
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                raise DeviceExists(f"device {device_id!r} already exists; use 'rotate {device_id}' for a new key") from None
            raise
        return device_id, key

    def rotate(self, device_id: str) -> str:
        """Give an existing device a new key (the old one stops working) and reactivate it."""
        self._check_id(device_id)
        key = generate_key()
        self._update(
            device_id,
            "SET #h = :h, #r = :now, #s = :active",
            {":h": {"S": hash_key(key)}, ":now": {"S": _now_iso()}, ":active": {"S": STATUS_ACTIVE}},
            {"#h": ATTR_KEY_HASH, "#r": ATTR_ROTATED_AT, "#s": ATTR_STATUS},
        )
        return key

    def revoke(self, device_id: str) -> None:
        """Stop a device's key from authorising; its readings stay."""
        self._check_id(device_id)
        self._update(device_id, "SET #s = :revoked", {":revoked": {"S": STATUS_REVOKED}}, {"#s": ATTR_STATUS})

    def set_quota(self, device_id: str, quota: int | None) -> None:
        """Give one device its own daily reading quota (None: unlimited), whatever the stack default."""
        self._check_id(device_id)
        if quota is not None and quota < 0:
            raise RegistryError(f"quota must be a whole number >= 0 or 'unlimited', got {quota}")
        self._update(device_id, "SET #q = :q", {":q": quota_attribute(quota)}, {"#q": ATTR_QUOTA})

    def clear_quota(self, device_id: str) -> None:
        """Back to the stack default (iot-ingest:deviceDailyReadingQuota)."""
        self._check_id(device_id)
        self._update(device_id, "REMOVE #q", None, {"#q": ATTR_QUOTA})

    def usage(self, device_id: str, default_quota: int | None, now_ms: int) -> dict[str, Any]:
        """Today's (UTC) count, the quota that applies and where it comes from, and when the count resets."""
        self._check_id(device_id)
        item = self._ddb.get_item(TableName=self._table, Key={ATTR_DEVICE_ID: {"S": device_id}}, ConsistentRead=True).get("Item")
        if not item:
            raise DeviceNotFound(f"no device {device_id!r}; see 'list' for registered devices or 'add' one")
        return usage_summary(item, default_quota, now_ms)

    def _update(self, device_id: str, expression: str, values: dict[str, Any] | None, names: dict[str, str]) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={ATTR_DEVICE_ID: {"S": device_id}},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(#id)",
                ExpressionAttributeNames={"#id": ATTR_DEVICE_ID, **names},
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                raise DeviceNotFound(f"no device {device_id!r}; see 'list' for registered devices or 'add' one") from None
            raise

    def get(self, device_id: str) -> dict[str, Any]:
        self._check_id(device_id)
        item = self._ddb.get_item(TableName=self._table, Key={ATTR_DEVICE_ID: {"S": device_id}}, ConsistentRead=True).get("Item")
        if not item:
            raise DeviceNotFound(f"no device {device_id!r}; see 'list' for registered devices or 'add' one")
        return _public(item)

    def list(self, default_quota: int | None = None, now_ms: int | None = None) -> list[dict[str, Any]]:
        """Every device, each with a "quotaToday" summary (see ``usage``) when ``now_ms`` is given."""
        devices: list[dict[str, Any]] = []
        for page in self._ddb.get_paginator("scan").paginate(TableName=self._table):
            for item in page.get("Items", []):
                device = _public(item)
                if now_ms is not None:
                    device["quotaToday"] = usage_summary(item, default_quota, now_ms)
                devices.append(device)
        return sorted(devices, key=lambda d: d[ATTR_DEVICE_ID])


def usage_summary(item: dict[str, Any], default_quota: int | None, now_ms: int) -> dict[str, Any]:
    """quota (None: unlimited), its source (device override or stack default), used today, reset time."""
    try:
        quota = item_quota(item, default_quota)
        used: int | str = item_used_today(item, now_ms)
    except QuotaFormatError as exc:
        # The authorizer denies such a device; say so instead of printing a guess.
        return {"error": f"{exc} (the authorizer denies this device until the attribute is fixed)"}
    return {
        "quota": quota,
        "quotaSource": "device" if ATTR_QUOTA in item else "stack default",
        "used": used,
        "remaining": None if quota is None else max(0, quota - int(used)),
        "resetsAt": iso_z(day_end_ms(now_ms)),
    }
