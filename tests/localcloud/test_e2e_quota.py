"""End to end on the local cloud: a device over its daily quota gets 429 quota_exceeded, nothing of
the refused requests is written, other devices are unaffected, and the overshoot stays within the
documented bound (authorizer cache TTL + processor lag, at the device's rate).

The stack is dev with a small quota (50 readings a day) and a 2 s authorizer cache TTL, so the
cut-off happens within seconds. The overshoot bound is checked against the processor lag measured
in the same run (no fixed timing is asserted): a background poller records when the devices-table
counter covers each accepted request.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from admin.readings import read_readings
from admin.registry import DeviceRegistry
from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
QUOTA = 50
CACHE_TTL_S = 2
PER_REQUEST = 5


def copy_program(target: Path) -> Path:
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy2(REPO / name, target / name)
    for folder in ("settings", "components", "handlers"):
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dev = (REPO / "Pulumi.dev.yaml").read_text().replace(
        "iot-ingest:authorizerCacheTtlSeconds: 15", f"iot-ingest:authorizerCacheTtlSeconds: {CACHE_TTL_S}")
    assert f"authorizerCacheTtlSeconds: {CACHE_TTL_S}" in dev
    (target / "Pulumi.quota.yaml").write_text(dev + f'  iot-ingest:deviceDailyReadingQuota: "{QUOTA}"\n')
    return target


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    program = copy_program(tmp_path_factory.mktemp("quota-program"))
    lc = LocalCloud(project_dir=program, stack="quota", state_dir=tmp_path_factory.mktemp("quota-cloud"))
    lc.start()
    try:
        yield lc
    finally:
        lc.stop()


@pytest.fixture(scope="module")
def registry(cloud: LocalCloud) -> DeviceRegistry:
    assert cloud.stack is not None
    return DeviceRegistry(cloud.emulator.client("dynamodb"), cloud.stack.outputs["devicesTableName"])


def post(cloud: LocalCloud, body: Any, device: str, key: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    port = int(cloud.api_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/telemetry", body=json.dumps(body).encode(),
                     headers={"content-type": "application/json", "x-device-id": device, "x-device-key": key})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, (json.loads(data) if data else {})
    finally:
        conn.close()


def stored_keys(cloud: LocalCloud, device_id: str) -> list[str]:
    """The device's stored readings of the last hour and the next, through the reader, as "ts#seq" ids."""
    assert cloud.stack is not None
    ddb = cloud.emulator.client("dynamodb")
    now = int(time.time() * 1000)
    return [f"{r.ts:013d}#{r.seq:010d}" for r in read_readings(
        ddb, cloud.stack.outputs["readingsTableName"], device_id, now - 3_600_000, now + 3_600_000, consistent=True)]


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


def batch(start_seq: int) -> tuple[dict[str, Any], list[str]]:
    ts = int(time.time() * 1000)
    readings = [{"ts": ts, "seq": start_seq + i, "metrics": {"v": i}} for i in range(PER_REQUEST)]
    return {"readings": readings}, [f"{ts:013d}#{start_seq + i:010d}" for i in range(PER_REQUEST)]


class CounterWatch:
    """Polls the device's usage counter and records (monotonic time, count) until stopped."""

    def __init__(self, registry: DeviceRegistry, device: str) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(registry, device), daemon=True)

    def _run(self, registry: DeviceRegistry, device: str) -> None:
        while not self._stop.is_set():
            used = registry.usage(device, QUOTA, int(time.time() * 1000))["used"]
            self.samples.append((time.monotonic(), int(used)))
            time.sleep(0.05)

    def __enter__(self) -> "CounterWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def covered_at(self, count: int) -> float | None:
        return next((t for t, c in self.samples if c >= count), None)


def test_greedy_device_is_cut_off_within_the_bound_and_nothing_else_changes(
        cloud: LocalCloud, registry: DeviceRegistry) -> None:
    greedy, greedy_key = registry.add(f"greedy-{uuid.uuid4().hex[:6]}")
    calm, calm_key = registry.add(f"calm-{uuid.uuid4().hex[:6]}")
    # separate client: the watcher polls from its own thread
    watch_registry = DeviceRegistry(cloud.emulator.client("dynamodb"), registry._table)

    accepted: list[tuple[float, int]] = []  # (time of the 202, cumulative readings accepted)
    accepted_keys: list[str] = []
    refused: list[tuple[dict[str, str], dict[str, Any]]] = []
    seq = 0
    started = time.monotonic()
    with CounterWatch(watch_registry, greedy) as watch:
        while len(refused) < 3 and time.monotonic() - started < 60:
            body, keys = batch(seq)
            seq += PER_REQUEST
            status, headers, answer = post(cloud, body, greedy, greedy_key)
            if status == 202:
                accepted_keys.extend(keys)
                accepted.append((time.monotonic(), len(accepted_keys)))
            else:
                assert status == 429, (status, answer)
                refused.append((headers, answer))
            time.sleep(0.05)
        ended = time.monotonic()
        wait_for(lambda: watch.covered_at(len(accepted_keys)) is not None, what="every accepted reading counted")

    assert len(refused) == 3, f"never refused: {len(accepted_keys)} readings accepted in {ended - started:.1f}s"
    headers, answer = refused[0]
    now = dt.datetime.now(dt.timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    assert answer["error"] == "quota_exceeded" and answer["quota"] == QUOTA and answer["used"] >= QUOTA
    assert answer["resetsAt"] == midnight.strftime("%Y-%m-%dT%H:%M:%SZ") and answer["message"]
    assert abs(int(headers["retry-after"]) - (midnight - now).total_seconds()) < 60

    # every accepted reading stored exactly once, nothing of the refused requests, and counted exactly once
    wait_for(lambda: len(stored_keys(cloud, greedy)) >= len(accepted_keys), what="accepted readings stored")
    calm_body, calm_keys = batch(0)
    status, _, _ = post(cloud, calm_body, calm, calm_key)  # another device is unaffected ...
    assert status == 202
    wait_for(lambda: stored_keys(cloud, calm), what="the other device's reading stored")  # ... and, per-key order
    # on the single shard, once it is stored everything sent before it has been processed
    assert sorted(stored_keys(cloud, greedy)) == sorted(accepted_keys)
    assert sorted(stored_keys(cloud, calm)) == sorted(calm_keys)
    usage = registry.usage(greedy, QUOTA, int(time.time() * 1000))
    assert usage["used"] == len(accepted_keys) and usage["quota"] == QUOTA

    # the overshoot bound: readings accepted after the quota was reached <= rate x (cache TTL + processor lag)
    # + one request, with the lag measured in this run
    lags = [watch.covered_at(n) - t for t, n in accepted]  # type: ignore[operator]  # covered_at is not None once waited for
    lag = max(lags)
    duration = max(accepted[-1][0] - accepted[0][0], 1e-3)
    rate = len(accepted_keys) / duration
    overshoot = len(accepted_keys) - QUOTA
    bound = rate * (CACHE_TTL_S + lag) + PER_REQUEST
    print(f"\nquota e2e: quota {QUOTA}, cache TTL {CACHE_TTL_S} s, rate {rate:.0f} readings/s, "
          f"max processor lag {lag:.2f} s, accepted {len(accepted_keys)}, overshoot {overshoot}, bound {bound:.0f}")
    assert 0 <= overshoot <= bound


def test_raising_a_devices_quota_lets_it_send_again_after_the_cache_ttl(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    device, key = registry.add(f"paused-{uuid.uuid4().hex[:6]}")
    registry.set_quota(device, 0)  # 0 is a real quota: refuse everything
    status, headers, answer = post(cloud, batch(0)[0], device, key)
    assert status == 429 and answer["quota"] == 0 and answer["used"] == 0 and int(headers["retry-after"]) >= 1
    registry.set_quota(device, None)  # unlimited for this device
    status = wait_for(lambda: post(cloud, batch(10)[0], device, key)[0] == 202, timeout=CACHE_TTL_S + 20,
                      what="accepted once the cached verdict expired")
    assert status
    wait_for(lambda: len(stored_keys(cloud, device)) == PER_REQUEST, what="its readings stored")
