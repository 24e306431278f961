"""HTTP API (payload 2.0) responses in the shape the contract promises.

Every response carries an explicit statusCode: a Lambda that returns JSON
without one is turned into a 200 by API Gateway
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class RequestError(Exception):
    """A client-visible rejection; carries everything the error body needs."""

    status: int
    error: str
    message: str
    field: str | None  # None when the error is not about one part of the request
    index: int | None = None

    def __str__(self) -> str:  # dataclass + Exception: give logs a readable text
        return f"{self.status} {self.error} {self.field}: {self.message}"


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_body(err: RequestError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": err.error, "message": err.message, "field": err.field}
    if err.index is not None:
        body["index"] = err.index
    return body


def error_response(err: RequestError, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return json_response(err.status, error_body(err), headers)


def unavailable(retry_after_s: int, message: str) -> dict[str, Any]:
    """503 with Retry-After; re-sending is safe: the same readings are stored under the same item keys."""
    err = RequestError(503, "unavailable", message, None)
    return error_response(err, {"retry-after": str(max(1, int(retry_after_s)))})
