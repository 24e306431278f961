"""A tiny stdlib HTTP server that speaks the device HTTP contract (docs/architecture.md).

It stands in for the *API*, not for the fleet under test: the fleet's client,
classification, read-back and exit codes are exercised against it. Accepted
readings go to a `store` callback (a list, or a real DynamoDB table in the
emulator), and fault knobs make it misbehave the way a broken pipeline would.
"""
from __future__ import annotations

import json
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from handlers.telemetry.process import record_items
from handlers.telemetry.records import TelemetryRecord
from handlers.telemetry.validation import Reading

Store = Callable[[str, list[dict[str, Any]]], None]


@dataclass
class Faults:
    drop_every: int = 0  # acknowledge but do not store every n-th accepted reading
    fail_first: int = 0  # answer the first n POSTs 503 with Retry-After: 0
    close_connections: bool = False  # answer with Connection: close
    stall_s: float = 0.0  # sleep before answering POSTs
    accept_everything: bool = False  # a broken API: 202 for bad input too


@dataclass
class FakeApi:
    keys: dict[str, str] | Callable[[str, str], bool]  # device -> key, or an authorizer
    store: Store
    faults: Faults = field(default_factory=Faults)
    max_age_ms: int = 7 * 86_400_000
    connections: int = 0
    posts: int = 0
    accepted_readings: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeApi":
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without NODELAY, Nagle plus the client's
                # delayed ACK adds ~40 ms to every keep-alive response.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with api._lock:
                    api.connections += 1

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if api.faults.close_connections:
                    self.send_header("connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/health":
                    self._answer(200, {"status": "ok"})
                else:
                    self._answer(404, {"message": "Not Found"})

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                with api._lock:
                    api.posts += 1
                    n = api.posts
                if api.faults.stall_s:
                    threading.Event().wait(api.faults.stall_s)
                if n <= api.faults.fail_first:
                    self._answer(503, {"error": "unavailable", "message": "try later"}, {"retry-after": "0"})
                    return
                device, key = self.headers.get("x-device-id"), self.headers.get("x-device-key")
                if not device or not key:
                    self._answer(401, {"message": "Unauthorized"})
                    return
                if not api.authorized(device, key):
                    self._answer(403, {"message": "Forbidden"})
                    return
                status, body = api.judge(device, self.headers.get("content-type", ""), raw)
                self._answer(status, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def authorized(self, device: str, key: str) -> bool:
        return self.keys(device, key) if callable(self.keys) else self.keys.get(device) == key

    def judge(self, device: str, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """The ingest function's decisions, reduced to what the fleet provokes."""

        def error(status: int, code: str, fld: str = "") -> tuple[int, dict[str, Any]]:
            return status, {"error": code, "message": code, "field": fld}

        if not self.faults.accept_everything:
            if not content_type.startswith("application/json"):
                return error(415, "unsupported_media_type", "content-type")
        try:
            doc = json.loads(raw, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError:
            if not self.faults.accept_everything:
                return error(400, "invalid_json")
            doc = json.loads(raw.replace(b"NaN", b"0")) if raw.endswith(b"}") else {"readings": []}
        readings = doc.get("readings", [])
        if not self.faults.accept_everything:
            if doc.get("deviceId", device) != device:
                return error(403, "device_mismatch", "deviceId")
            now = int(time.time() * 1000)
            for i, r in enumerate(readings):
                if now - r["ts"] > self.max_age_ms or any(not math.isfinite(v) for v in r["metrics"].values()):
                    return error(400, "invalid_request", f"readings[{i}]")
        with self._lock:
            kept = []
            for r in readings:
                self.accepted_readings += 1
                if self.faults.drop_every and self.accepted_readings % self.faults.drop_every == 0:
                    continue
                kept.append(r)
        self.store(device, kept)
        return 202, {"accepted": len(readings), "records": 1, "requestId": "r"}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def dynamo_store(dynamodb: Any, table: str, devices_table: str | None = None) -> Callable[[str, list[dict[str, Any]]], None]:
    """Store readings as the processor does (its own items: handlers.telemetry.process.record_items), then
    move the device's latestTs/latestSeq forward in the devices table, if one is given, as the processor does."""

    def store(device: str, readings: list[dict[str, Any]]) -> None:
        if readings:
            record = TelemetryRecord(device, "r", int(time.time() * 1000),
                                     [Reading(r["ts"], r.get("seq", 0), r["metrics"]) for r in readings])
            for item in record_items(record, ttl_days=30):
                dynamodb.put_item(TableName=table, Item=item)
        if devices_table and readings:
            newest = max(readings, key=lambda r: (r["ts"], r.get("seq", 0)))
            try:
                dynamodb.update_item(
                    TableName=devices_table, Key={"deviceId": {"S": device}},
                    UpdateExpression="SET latestTs = :t, latestSeq = :s",
                    ConditionExpression="attribute_not_exists(latestTs) OR latestTs < :t OR (latestTs = :t AND latestSeq < :s)",
                    ExpressionAttributeValues={":t": {"N": str(newest["ts"])}, ":s": {"N": str(newest.get("seq", 0))}},
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass

    return store
