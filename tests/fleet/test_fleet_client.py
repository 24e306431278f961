"""The HTTP client against a local stdlib server speaking the contract."""
from __future__ import annotations

import json
import socket
import time
from typing import Any, Callable

from fleet.client import ApiClient
from fleet_fake_api import FakeApi, Faults

KEYS = {"dev-1": "secret"}
GOOD = {"content-type": "application/json", "x-device-id": "dev-1", "x-device-key": "secret"}


def body(ts: int | None = None) -> bytes:
    ts = int(time.time() * 1000) if ts is None else ts
    return json.dumps({"readings": [{"ts": ts, "seq": 0, "metrics": {"t": 1.5}}]}).encode()


def test_accepted_post_and_json_body(fake_api_factory: Callable[..., FakeApi]) -> None:
    stored: list[Any] = []
    api = fake_api_factory(KEYS, lambda d, r: stored.append((d, r)))
    resp = ApiClient(api.url).post_telemetry(GOOD, body())
    assert resp.status == 202 and resp.json()["accepted"] == 1 and resp.attempts == 1
    assert stored and stored[0][0] == "dev-1"
    assert resp.latency_s > 0


def test_keep_alive_reuses_one_connection(fake_api_factory: Callable[..., FakeApi]) -> None:
    api = fake_api_factory(KEYS)
    client = ApiClient(api.url)
    statuses = [client.post_telemetry(GOOD, body()).status for _ in range(25)]
    client.close()
    assert statuses == [202] * 25
    assert api.connections == 1


def test_server_closing_connections_is_handled_transparently(fake_api_factory: Callable[..., FakeApi]) -> None:
    api = fake_api_factory(KEYS, faults=Faults(close_connections=True))
    client = ApiClient(api.url, retries=0)
    statuses = [client.post_telemetry(GOOD, body()).status for _ in range(5)]
    assert statuses == [202] * 5 and api.connections == 5


def test_503_is_retried_then_succeeds(fake_api_factory: Callable[..., FakeApi]) -> None:
    api = fake_api_factory(KEYS, faults=Faults(fail_first=2))
    sleeps: list[float] = []
    resp = ApiClient(api.url, retries=2, sleep=sleeps.append).post_telemetry(GOOD, body())
    assert resp.status == 202 and resp.attempts == 3
    assert sleeps == [0.0, 0.0]  # honoured Retry-After: 0


def test_retries_are_bounded(fake_api_factory: Callable[..., FakeApi]) -> None:
    api = fake_api_factory(KEYS, faults=Faults(fail_first=10))
    resp = ApiClient(api.url, retries=1, sleep=lambda s: None).post_telemetry(GOOD, body())
    assert resp.status == 503 and resp.attempts == 2 and api.posts == 2
    assert resp.json()["error"] == "unavailable"


def test_client_errors_are_not_retried(fake_api_factory: Callable[..., FakeApi]) -> None:
    api = fake_api_factory(KEYS)
    resp = ApiClient(api.url, retries=3).post_telemetry({**GOOD, "x-device-key": "nope"}, body())
    assert resp.status == 403 and resp.attempts == 1 and api.posts == 1


def test_contract_statuses_come_through(fake_api_factory: Callable[..., FakeApi]) -> None:
    api = fake_api_factory(KEYS)
    client = ApiClient(api.url)
    assert client.post_telemetry({k: v for k, v in GOOD.items() if k != "x-device-key"}, body()).status == 401
    assert client.post_telemetry({**GOOD, "content-type": "text/plain"}, body()).status == 415
    bad = client.post_telemetry(GOOD, b'{"readings": [')
    assert bad.status == 400 and bad.json()["error"] == "invalid_json"
    assert client.health().status == 200


def test_connection_refused_is_a_transport_error_not_an_exception() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sleeps: list[float] = []
    resp = ApiClient(f"http://127.0.0.1:{port}", retries=2, sleep=sleeps.append).post_telemetry(GOOD, body())
    assert resp.status is None and resp.attempts == 3 and "ConnectionRefused" in (resp.error or "")
    assert sleeps == [0.05, 0.1]  # exponential backoff without Retry-After


def test_timeout_is_reported() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the TCP handshake, never answers
    try:
        port = listener.getsockname()[1]
        resp = ApiClient(f"http://127.0.0.1:{port}", timeout=0.2, retries=0).post_telemetry(GOOD, body())
        assert resp.status is None and (resp.error or "").startswith("Timeout")
    finally:
        listener.close()


def test_base_path_of_api_url_is_kept(fake_api_factory: Callable[..., FakeApi]) -> None:
    api = fake_api_factory(KEYS)
    resp = ApiClient(api.url + "/prefix/").health()
    assert resp.status == 404  # "/prefix/health" is not the fake's health route: the prefix was sent
