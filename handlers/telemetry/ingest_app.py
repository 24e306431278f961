"""The ingest function's logic: route, validate completely, then write to Kinesis.

Nothing is written unless the whole request is valid, so a device that gets a
4xx knows none of its readings were taken and can fix and re-send the lot.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backoff import Backoff
from .config import IngestConfig
from .kinesis_put import Entry, PutBudgetExhausted, put_records
from .log_text import log_safe
from .records import RecordTooLarge, pack
from .quota_refusal import quota_refusal
from .responses import RequestError, error_response, json_response, unavailable
from .validation import body_bytes, check_content_type, parse_json, validate_document

_log = logging.getLogger("telemetry.ingest")

RETRY_AFTER_S = 2
HEALTH = "GET /health"
TELEMETRY = "POST /v1/telemetry"


@dataclass
class IngestResult:
    response: dict[str, Any]
    accepted: int = 0
    rejected_readings: int = 0
    rejected_request: bool = False
    records: int = 0
    over_quota: bool = False


def route_key(event: dict[str, Any]) -> str:
    """The matched route, or "METHOD path" for a $default route."""
    key = event.get("routeKey")
    if key and key != "$default":
        return str(key)
    http = (event.get("requestContext") or {}).get("http") or {}
    return f"{http.get('method', '')} {event.get('rawPath') or http.get('path', '')}"


def authorised_device(event: dict[str, Any]) -> str | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    device_id = (authorizer.get("lambda") or {}).get("deviceId")
    return device_id if isinstance(device_id, str) and device_id else None


def request_id(event: dict[str, Any]) -> str:
    return str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4())


def _readings_in(event_doc: Any) -> int:
    readings = event_doc.get("readings") if isinstance(event_doc, dict) else None
    return len(readings) if isinstance(readings, list) else 0


def handle(
    event: dict[str, Any],
    *,
    kinesis: Any,
    config: IngestConfig,
    now_ms: int,
    new_backoff: Callable[[], Backoff],
    log: Any = _log,
) -> IngestResult:
    route = route_key(event)
    if route == HEALTH:
        return IngestResult(json_response(200, {"status": "ok"}))
    if route != TELEMETRY:
        return IngestResult(json_response(404, {"error": "not_found", "message": f"no route {route}", "field": None}))
    return _telemetry(event, kinesis=kinesis, config=config, now_ms=now_ms, new_backoff=new_backoff, log=log)


def _telemetry(
    event: dict[str, Any],
    *,
    kinesis: Any,
    config: IngestConfig,
    now_ms: int,
    new_backoff: Callable[[], Backoff],
    log: Any,
) -> IngestResult:
    device_id = authorised_device(event)
    if device_id is None:
        # Only a route deployed without the authorizer gets here: a server bug, not a client error.
        log.error("no authorizer context on the telemetry route; refusing the request")
        body: dict[str, Any] = {"error": "misconfigured", "message": "request was not authorised", "field": None}
        return IngestResult(json_response(500, body), rejected_request=True)
    refusal = quota_refusal(event, now_ms)
    if refusal is not None:
        # Checked first and alone: a device over its quota gets 429 whatever it sent, and nothing is written.
        log.info("request refused: daily quota", extra={"deviceId": device_id})
        return IngestResult(refusal, over_quota=True)
    req_id = request_id(event)
    doc: Any = None
    try:
        check_content_type(event.get("headers"))
        raw = body_bytes(event, config.max_body_bytes)
        doc = parse_json(raw)
        readings = validate_document(
            doc,
            authorised_device_id=device_id,
            max_readings=config.max_readings,
            now_ms=now_ms,
            max_age_s=config.max_age_s,
            max_future_skew_s=config.max_future_skew_s,
        )
        records = pack(device_id, req_id, now_ms, readings)
    except RecordTooLarge as exc:
        err = RequestError(413, "payload_too_large", str(exc), "readings")
        return _rejected(err, doc, device_id, log)
    except RequestError as err:
        return _rejected(err, doc, device_id, log)
    try:
        put_records(kinesis, config.stream_name, [Entry(data, device_id) for data in records], new_backoff())
    except PutBudgetExhausted as exc:
        log.warning("kinesis put gave up", extra={"deviceId": device_id, "unwritten": exc.unwritten, "lastError": exc.last_error})
        return IngestResult(
            unavailable(RETRY_AFTER_S, "the stream is busy; retry the same request after Retry-After seconds"),
            rejected_readings=len(readings),
            rejected_request=True,
        )
    body = {"accepted": len(readings), "records": len(records), "requestId": req_id}
    return IngestResult(json_response(202, body), accepted=len(readings), records=len(records))


def _rejected(err: RequestError, doc: Any, device_id: str, log: Any) -> IngestResult:
    # The field may quote a key from the body (a lone surrogate would make the logger drop the line).
    log.info("request rejected", extra={"deviceId": device_id, "status": err.status, "error": err.error,
                                        "field": log_safe(err.field)})
    return IngestResult(error_response(err), rejected_readings=_readings_in(doc), rejected_request=True)
