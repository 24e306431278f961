"""maxBodyBytes' ceiling: the largest body whose payload format 2.0 event, base64 included, fits Lambda's 6 MB."""
from __future__ import annotations

import json

from localcloud.apigw_events import HttpRequest, RouteMatch, build_event
from localcloud.model import RouteSpec
from settings.parse import EVENT_ENVELOPE_BYTES, LAMBDA_SYNC_PAYLOAD_BYTES, MAX_BODY_BYTES

HTTP_API_REQUEST_LINE_AND_HEADERS = 10_240  # HTTP API quota (http-api-quotas.html)


def _worst_event(body_bytes: int) -> bytes:
    """A request at every HTTP API limit that still reaches the function: request line + headers at the
    10,240-byte quota, made of characters JSON must escape, a query string repeated as parameters, a
    binary content type (so the body travels base64-encoded) and the longest device id in the context."""
    path, query = "/v1/telemetry", "q=" + '"' * 1000
    headers = [("content-type", "application/octet-stream"), ("x-device-id", "d" * 128), ("x-device-key", "k" * 64)]
    used = len(f"POST {path}?{query} HTTP/1.1\r\n") + sum(len(n) + len(v) + 4 for n, v in headers)
    headers.append(("x-pad", '"' * (HTTP_API_REQUEST_LINE_AND_HEADERS - used - len("x-pad") - 4)))
    assert len(f"POST {path}?{query} HTTP/1.1\r\n") + sum(len(n) + len(v) + 4 for n, v in headers) == 10_240
    request = HttpRequest("POST", path, query, headers, b"\xff" * body_bytes, "203.0.113.7",
                          request_id="Ab1Cd2Ef3Gh4=")
    route = RouteSpec("POST /v1/telemetry", "iot-ingest-prod-ingest", "2.0", 30_000)
    event = build_event(request, RouteMatch(route, {}), api_id="abcdef1234", stage="$default",
                        account_id="123456789012", authorizer_context={"deviceId": "d" * 128})
    assert event["isBase64Encoded"] is (body_bytes > 0)
    return json.dumps(event).encode()


def test_ceiling_is_three_quarters_of_what_the_envelope_leaves() -> None:
    assert MAX_BODY_BYTES == (6 * 1024 * 1024 - 64 * 1024) // 4 * 3 == 4_669_440


def test_largest_allowed_body_fits_the_invocation_limit_with_the_stated_margin() -> None:
    envelope = len(_worst_event(0))
    assert envelope * 2 <= EVENT_ENVELOPE_BYTES, envelope  # the margin covers twice the worst envelope seen
    assert len(_worst_event(MAX_BODY_BYTES)) <= LAMBDA_SYNC_PAYLOAD_BYTES


def test_the_old_6_mib_ceiling_did_not_fit() -> None:
    assert len(_worst_event(LAMBDA_SYNC_PAYLOAD_BYTES)) > LAMBDA_SYNC_PAYLOAD_BYTES
    assert len(_worst_event(MAX_BODY_BYTES * 101 // 100)) > LAMBDA_SYNC_PAYLOAD_BYTES  # the bound is not loose
