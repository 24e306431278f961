"""Payload generation: good readings satisfy the contract's schema; each bad kind is bad in exactly its way."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from fleet.devices import STALE_AGE_MS, Credentials, Device, Misbehaviour, build_fleet, make_sensors

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "handlers" / "telemetry" / "telemetry.schema.json"
NOW = 1_764_000_000_000


@pytest.fixture(scope="module")
def schema_validate() -> Any:
    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text()))


def device(metrics: int = 4, seed: int = 1) -> Device:
    rng = random.Random(seed)
    return Device(Credentials("dev-1", "k3y"), make_sensors(metrics, rng), rng)


def strict_loads(body: bytes) -> Any:
    """JSON as the contract means it: NaN/Infinity literals are not JSON."""
    def reject(literal: str) -> Any:
        raise ValueError(f"non-JSON literal {literal}")
    return json.loads(body, parse_constant=reject)


@pytest.mark.parametrize("metrics", [1, 4, 8, 12, 50])
def test_good_request_is_schema_valid_and_matches_ledger_view(schema_validate: Any, metrics: int) -> None:
    d = device(metrics)
    req = d.next_request(5, NOW)
    doc = strict_loads(req.body)
    schema_validate(doc)
    assert req.misbehaviour is None and req.expected_statuses == {202}
    assert req.headers == {"content-type": "application/json", "x-device-id": "dev-1", "x-device-key": "k3y"}
    assert doc["deviceId"] == "dev-1"
    assert len(doc["readings"]) == 5
    assert all(len(r["metrics"]) == metrics for r in doc["readings"])
    assert {(r["ts"], r["seq"]): r["metrics"] for r in doc["readings"]} == req.readings
    assert doc["readings"][-1]["ts"] == NOW  # the newest sample is "now"


def test_seq_strictly_increases_across_requests_and_ids_are_unique() -> None:
    d = device()
    seqs = [r["seq"] for i in range(20) for r in strict_loads(d.next_request(3, NOW + i * 1000).body)["readings"]]
    assert seqs == list(range(60))


def test_sensors_stay_in_physical_range_over_a_long_walk() -> None:
    rng = random.Random(7)
    sensors = make_sensors(12, rng)
    for _ in range(5000):
        for s in sensors:
            v = s.next(rng)
            assert s.low <= v <= s.high and math.isfinite(v)
    assert len({s.name for s in sensors}) == 12


@pytest.mark.parametrize("kind", list(Misbehaviour))
def test_each_bad_kind_is_bad_in_its_own_way_only(schema_validate: Any, kind: Misbehaviour) -> None:
    d = device()
    req = d.bad_request(kind, 4, NOW)
    assert req.misbehaviour is kind and req.expected_statuses == kind.expected_statuses
    assert len(req.readings) == 4  # kept, so the read-back can prove none was stored
    if kind is Misbehaviour.MALFORMED_JSON:
        with pytest.raises(ValueError):
            json.loads(req.body)
        return
    if kind is Misbehaviour.NAN_VALUE:
        assert b"NaN" in req.body
        with pytest.raises(ValueError, match="NaN"):
            strict_loads(req.body)
        return
    doc = strict_loads(req.body)
    schema_validate(doc)  # everything else is well-formed: the fault is only the one named
    good_headers = {"content-type": "application/json", "x-device-id": "dev-1", "x-device-key": "k3y"}
    if kind is Misbehaviour.STALE_TIMESTAMP:
        assert NOW - doc["readings"][0]["ts"] >= STALE_AGE_MS > 365 * 86_400_000  # beyond any allowed max age
        assert req.headers == good_headers
    elif kind is Misbehaviour.WRONG_KEY:
        assert req.headers["x-device-key"] != "k3y" and req.headers["x-device-id"] == "dev-1"
    elif kind is Misbehaviour.SPOOFED_DEVICE_ID:
        assert doc["deviceId"] != "dev-1" and req.headers == good_headers
    elif kind is Misbehaviour.MISSING_KEY:
        assert "x-device-key" not in req.headers
    elif kind is Misbehaviour.WRONG_CONTENT_TYPE:
        assert req.headers["content-type"] != "application/json"


def test_misbehaving_device_mixes_bad_and_good_requests() -> None:
    d = device()
    d.misbehaving = True
    kinds = [d.next_request(2, NOW).misbehaviour for _ in range(400)]
    bad = [k for k in kinds if k is not None]
    assert 120 < len(bad) < 280  # about half
    assert set(bad) == set(Misbehaviour)  # every kind shows up


def test_well_behaved_device_never_sends_bad_input() -> None:
    d = device()
    assert all(d.next_request(2, NOW).misbehaviour is None for _ in range(300))


@pytest.mark.parametrize("n,share,expected", [(50, 0.05, 2), (50, 0.0, 0), (5, 0.01, 1), (10, 1.0, 10), (20, 0.25, 5)])
def test_misbehaving_share(n: int, share: float, expected: int) -> None:
    creds = [Credentials(f"d{i}", "k") for i in range(n)]
    fleet = build_fleet(creds, payload_metrics=3, misbehaving_share=share, rng=random.Random(3))
    assert sum(d.misbehaving for d in fleet) == expected
    assert [d.device_id for d in fleet] == [c.device_id for c in creds]
