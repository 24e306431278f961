"""Traffic for drills: devices posting telemetry through the HTTP API, in background threads."""
from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Device:
    device_id: str
    key: str


class Load:
    """``clients`` threads, each sending one request every ``interval_s`` until ``stop()``.

    ``request()`` returns (path, body, headers) for each request; statuses are counted.
    """

    def __init__(self, port: int, request: Callable[[], tuple[str, bytes, dict[str, str]]], *,
                 clients: int = 1, interval_s: float = 0.1, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.request = request
        self.clients = clients
        self.interval_s = interval_s
        self.statuses: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "Load":
        for i in range(self.clients):
            thread = threading.Thread(target=self._run, daemon=True, name=f"drill-load-{i}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, wait: bool = True) -> None:
        """Stop sending; with ``wait`` False the threads end after their request in flight."""
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join(timeout=40)
            self._threads = []

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=35)
                path, body, headers = self.request()
                conn.request("POST", path, body=body, headers={"content-type": "application/json", **headers})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        if conn is not None:
            conn.close()


def telemetry(readings: int = 1) -> bytes:
    now = int(time.time() * 1000)
    return json.dumps({"readings": [{"ts": now - i, "metrics": {"drill": 1.0}} for i in range(readings)]}).encode()


def valid(device: Device, readings: int = 1) -> Callable[[], tuple[str, bytes, dict[str, str]]]:
    """A registered device's readings (the authorizer's cache answers after the first)."""
    return lambda: ("/v1/telemetry", telemetry(readings), {"x-device-id": device.device_id, "x-device-key": device.key})


def unknown_devices(pool: int | None = None) -> Callable[[], tuple[str, bytes, dict[str, str]]]:
    """Requests from unregistered devices (403). With ``pool`` None every request is a new
    device, so the authorizer runs (and reads the devices table) for each; with a pool, the
    API's authorizer cache answers repeats."""
    ids = [f"drill-unknown-{uuid.uuid4().hex[:10]}" for _ in range(pool or 0)]
    counter = iter(range(1 << 62))

    def request() -> tuple[str, bytes, dict[str, str]]:
        device = ids[next(counter) % len(ids)] if ids else f"drill-unknown-{uuid.uuid4().hex[:12]}"
        return "/v1/telemetry", telemetry(), {"x-device-id": device, "x-device-key": "not-a-key"}

    return request
