"""Ingest's side of the daily quota: turn the authorizer's quota context into a 429.

The authorizer decides (it reads the device item anyway); ingest only answers.
Its answer is computed with ingest's own clock: the authorizer's result may be
cached for up to the cache TTL, so a "quota exceeded" context from before UTC
midnight is ignored after it (the day has reset), and Retry-After is the time
left until the reset now, not when the context was made.
"""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from .responses import json_response
from .usage import CTX_EXCEEDED, CTX_QUOTA, CTX_RESETS_AT, CTX_USED

QUOTA_STATUS = 429


def _context(event: dict[str, Any]) -> dict[str, Any]:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    context = authorizer.get("lambda") or {}
    return context if isinstance(context, dict) else {}


def _epoch_ms(iso: Any) -> int | None:
    if not isinstance(iso, str):
        return None
    try:
        moment = _dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def _whole(value: Any) -> int | None:
    """Context numbers may arrive as numbers or as their text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def quota_refusal(event: dict[str, Any], now_ms: int) -> dict[str, Any] | None:
    """The 429 response for a device over today's quota, or None to go on with the request."""
    context = _context(event)
    if context.get(CTX_EXCEEDED) not in (True, "true"):
        return None
    resets_at_ms = _epoch_ms(context.get(CTX_RESETS_AT))
    if resets_at_ms is None or resets_at_ms <= now_ms:
        return None  # a cached verdict from a day that has ended
    quota, used = _whole(context.get(CTX_QUOTA)), _whole(context.get(CTX_USED))
    retry_after = max(1, math.ceil((resets_at_ms - now_ms) / 1000))
    body = {
        "error": "quota_exceeded",
        "message": (f"this device has used {used} of its {quota} readings for today (UTC); "
                    f"nothing was stored; send again after {context[CTX_RESETS_AT]}"),
        "field": None,
        "quota": quota,
        "used": used,
        "resetsAt": context[CTX_RESETS_AT],
    }
    return json_response(QUOTA_STATUS, body, {"retry-after": str(retry_after)})
