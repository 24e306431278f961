"""A small keep-alive HTTP client for the telemetry API, one instance per worker thread.

`http.client` keeps one persistent connection per instance, which is what a real
device (or gateway) does and what keeps the load generator cheap: no TLS or TCP
handshake per request. Instances are not thread-safe; each worker owns one.

Retries: 429 and 503 (the contract's `Retry-After` answer) and transport errors are
retried a bounded number of times, except a 429 `quota_exceeded`: its Retry-After is
the next UTC midnight, so the answer is final for the run. Re-sending is safe because
the readings table's item keys are built from the readings themselves, so a duplicate
delivery rewrites its own items (docs/handlers.md, "Repeated (ts, seq)").
"""
from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

RETRYABLE_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_S = 2.0


@dataclass(frozen=True)
class Response:
    """The outcome of one logical request (after retries). `status` is None on a transport error."""

    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0  # of the final attempt
    attempts: int = 1
    error: str | None = None

    def json(self) -> Any:
        """The body as JSON, or None if it is not JSON (gateway errors need not be)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


class ApiClient:
    """POSTs to `{api_url}{path}` over one persistent HTTP(S) connection."""

    def __init__(
        self,
        api_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {api_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._timeout = timeout
        self._retries = retries
        self._sleep = sleep
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _once(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Response:
        """One attempt. A stale keep-alive connection the server already closed is reopened once, silently."""
        for fresh in (False, True):
            conn = self._connection()
            started = time.perf_counter()
            try:
                conn.request(method, self._base + path, body=body, headers=headers)
                raw = conn.getresponse()
                data = raw.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if fresh:
                    return Response(None, latency_s=time.perf_counter() - started, error=type(exc).__name__)
                continue
            except (OSError, http.client.HTTPException) as exc:  # refused, timeout, protocol garbage
                self.close()
                kind = "Timeout" if isinstance(exc, socket.timeout) else type(exc).__name__
                return Response(None, latency_s=time.perf_counter() - started, error=f"{kind}: {exc}")
            latency = time.perf_counter() - started
            if raw.will_close:
                self.close()
            return Response(raw.status, data, {k.lower(): v for k, v in raw.getheaders()}, latency)
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Response:
        """One logical request with bounded retries on 429/503/transport errors."""
        attempt = 0
        while True:
            attempt += 1
            resp = self._once(method, path, headers, body)
            retryable = (resp.status is None or resp.status in RETRYABLE_STATUSES) and not is_quota_refusal(resp)
            if not retryable or attempt > self._retries:
                return Response(resp.status, resp.body, resp.headers, resp.latency_s, attempt, resp.error)
            self._sleep(_backoff(resp, attempt))

    def post_telemetry(self, headers: dict[str, str], body: bytes) -> Response:
        return self.request("POST", "/v1/telemetry", headers, body)

    def health(self) -> Response:
        return self.request("GET", "/health", {})


def is_quota_refusal(resp: Response) -> bool:
    """The API's 429 for a device over its daily quota (as opposed to the stage throttle's 429)."""
    if resp.status != 429:
        return False
    body = resp.json()
    return isinstance(body, dict) and body.get("error") == "quota_exceeded"


def _backoff(resp: Response, attempt: int) -> float:
    """Honour Retry-After (seconds form) up to a cap; otherwise exponential from 50 ms."""
    retry_after = resp.headers.get("retry-after")
    if retry_after is not None:
        try:
            return min(MAX_RETRY_AFTER_S, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return min(MAX_RETRY_AFTER_S, 0.05 * 2 ** (attempt - 1))
