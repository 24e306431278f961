"""Device authentication for the HTTP API Lambda REQUEST authorizer (payload 2.0, simple responses).

Deny on anything doubtful, including any lookup error: an authorizer that
allows on error turns a DynamoDB hiccup into an open door. Reasons are logged
with the device id, never the key.
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from .device_keys import ATTR_DEVICE_ID, ATTR_KEY_HASH, ATTR_STATUS, STATUS_ACTIVE, is_valid_device_id, key_matches
from .log_text import log_safe
from .usage import ATTR_QUOTA, ATTR_USAGE_COUNT, ATTR_USAGE_DAY, QuotaFormatError, QuotaState, quota_state
from .validation import header

_log = logging.getLogger("telemetry.auth")


@dataclass(frozen=True)
class AuthResult:
    allowed: bool
    device_id: str | None
    reason: str
    quota: QuotaState | None = None  # set when allowed but at or over today's quota

    def response(self) -> dict[str, Any]:
        """The simple-response shape; context reaches ingest as requestContext.authorizer.lambda.

        A device over its quota is still authorised (it is who it says it is);
        the quota state in the context makes ingest answer 429 without writing.
        """
        if self.allowed:
            context: dict[str, Any] = {"deviceId": self.device_id}
            if self.quota is not None:
                context.update(self.quota.context())
            return {"isAuthorized": True, "context": context}
        return {"isAuthorized": False, "context": {}}


def authorize(event: dict[str, Any], dynamodb: Any, table: str, log: Any = _log,
              default_quota: int | None = None, now_ms: int | None = None) -> AuthResult:
    headers = event.get("headers") or {}
    device_id = header(headers, "x-device-id")
    key = header(headers, "x-device-key")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    result = _decide(device_id, key, dynamodb, table, log, default_quota, now)
    if result.quota is not None:
        log.info("device over its daily quota", extra={"deviceId": result.device_id, "quota": result.quota.quota,
                                                       "used": result.quota.used})
    if result.allowed:
        log.debug("device authorised", extra={"deviceId": result.device_id})
    else:
        log.info("device denied", extra={"deviceId": _printable(device_id), "reason": result.reason})
    return result


def _printable(device_id: str | None) -> str | None:
    """Device ids are not secret, but a garbage header should neither flood the log nor drop its line."""
    return log_safe(device_id, 128)


def _decide(device_id: str | None, key: str | None, dynamodb: Any, table: str, log: Any,
            default_quota: int | None, now_ms: int) -> AuthResult:
    if not device_id or not key:
        return AuthResult(False, None, "missing x-device-id or x-device-key header")
    if not is_valid_device_id(device_id):
        return AuthResult(False, None, "malformed device id")
    try:
        response = dynamodb.get_item(
            TableName=table,
            Key={ATTR_DEVICE_ID: {"S": device_id}},
            # A revoked key must stop working now, not after replication catches up.
            ConsistentRead=True,
            # The usage attributes ride along on the same read (same item, same cost).
            ProjectionExpression="#h, #s, #q, #ud, #uc",
            ExpressionAttributeNames={"#h": ATTR_KEY_HASH, "#s": ATTR_STATUS, "#q": ATTR_QUOTA,
                                      "#ud": ATTR_USAGE_DAY, "#uc": ATTR_USAGE_COUNT},
        )
    except Exception as exc:  # noqa: BLE001 - any failure to look up means deny
        log.warning("device lookup failed", extra={"deviceId": device_id, "error": type(exc).__name__})
        return AuthResult(False, device_id, "lookup error")
    item = response.get("Item")
    if not item:
        return AuthResult(False, device_id, "unknown device")
    if item.get(ATTR_STATUS, {}).get("S") != STATUS_ACTIVE:
        return AuthResult(False, device_id, "device not active")
    stored = item.get(ATTR_KEY_HASH, {}).get("S")
    if not stored:
        return AuthResult(False, device_id, "device has no key hash")
    if not key_matches(key, stored):
        return AuthResult(False, device_id, "wrong key")
    try:
        state = quota_state(item, default_quota, now_ms)
    except QuotaFormatError as exc:
        # Cannot tell the device's quota or usage: deny, never "allow without limits".
        log.warning("device quota or usage unreadable", extra={"deviceId": device_id, "error": str(exc)})
        return AuthResult(False, device_id, "quota or usage unreadable")
    return AuthResult(True, device_id, "ok", state if state.exceeded else None)
