"""Simulated devices: sensor random walks and the HTTP requests they send.

A device owns its sensors and its sequence counter, so readings from one device
have strictly increasing `seq` and plausible, slowly changing values - the shape
real telemetry has, which matters for payload size and for the read-back check
(every reading is identified by `(ts, seq)`, as the reader de-duplicates it).

Misbehaving devices sometimes send a bad request instead of a good one. Each kind
of bad request names the HTTP statuses the contract (docs/architecture.md,
"HTTP contract") promises for it, so the report can tell expected rejections
from real errors.
"""
from __future__ import annotations

import enum
import json
import random
import threading
from dataclasses import dataclass, field
from typing import Any

# Named channels a typical environmental sensor node reports: (name, start, step, low, high, decimals).
_CHANNELS: tuple[tuple[str, float, float, float, float, int], ...] = (
    ("temperature", 21.0, 0.15, -40.0, 85.0, 2),
    ("humidity", 45.0, 0.4, 0.0, 100.0, 1),
    ("battery", 98.0, 0.02, 0.0, 100.0, 2),
    ("pressure", 1013.0, 0.3, 870.0, 1085.0, 1),
    ("co2", 420.0, 3.0, 250.0, 5000.0, 0),
    ("rssi", -67.0, 1.0, -120.0, -20.0, 0),
    ("voltage", 3.3, 0.005, 2.5, 4.2, 3),
    ("lux", 300.0, 12.0, 0.0, 100000.0, 1),
)

# A reading is identified by (ts, seq) (docs/handlers.md, "Repeated (ts, seq)").
ReadingId = tuple[int, int]

# A device over its daily reading quota gets 429 with {"error": "quota_exceeded", ...} (README, Quotas).
QUOTA_STATUS = 429
QUOTA_ERROR = "quota_exceeded"

# Far enough in the past that any sane MAX_READING_AGE_SECONDS rejects it.
STALE_AGE_MS = 400 * 24 * 3600 * 1000


class Misbehaviour(str, enum.Enum):
    """Kinds of bad input, each with the statuses the HTTP contract promises for it."""

    MALFORMED_JSON = "malformed_json"
    NAN_VALUE = "nan_value"
    STALE_TIMESTAMP = "stale_timestamp"
    WRONG_KEY = "wrong_key"
    SPOOFED_DEVICE_ID = "spoofed_device_id"
    MISSING_KEY = "missing_key"
    WRONG_CONTENT_TYPE = "wrong_content_type"

    @property
    def expected_statuses(self) -> frozenset[int]:
        return _EXPECTED[self]


_EXPECTED: dict[Misbehaviour, frozenset[int]] = {
    Misbehaviour.MALFORMED_JSON: frozenset({400}),  # invalid_json
    Misbehaviour.NAN_VALUE: frozenset({400}),  # invalid_json or invalid_request: metrics must be finite
    Misbehaviour.STALE_TIMESTAMP: frozenset({400}),  # invalid_request, older than MAX_READING_AGE_SECONDS
    Misbehaviour.WRONG_KEY: frozenset({403}),  # API Gateway, authorizer denied
    Misbehaviour.SPOOFED_DEVICE_ID: frozenset({403}),  # device_mismatch
    Misbehaviour.MISSING_KEY: frozenset({401}),  # API Gateway, identity source missing
    Misbehaviour.WRONG_CONTENT_TYPE: frozenset({415}),  # unsupported_media_type
}


@dataclass
class Sensor:
    """One channel as a mean-reverting random walk, clamped to its physical range."""

    name: str
    value: float
    step: float
    low: float
    high: float
    decimals: int
    home: float = 0.0

    def __post_init__(self) -> None:
        self.home = self.value

    def next(self, rng: random.Random) -> float:
        pull = 0.02 * (self.home - self.value)
        self.value = min(self.high, max(self.low, self.value + pull + rng.gauss(0.0, self.step)))
        return round(self.value, self.decimals) if self.decimals else float(round(self.value))


def make_sensors(count: int, rng: random.Random) -> list[Sensor]:
    """`count` channels: the named ones first, then auxiliary channels to reach the payload size asked for."""
    sensors: list[Sensor] = []
    for i in range(count):
        if i < len(_CHANNELS):
            name, start, step, low, high, decimals = _CHANNELS[i]
        else:
            name, start, step, low, high, decimals = f"aux{i - len(_CHANNELS) + 1}", 50.0, 1.0, 0.0, 100.0, 2
        start = min(high, max(low, start + rng.uniform(-3, 3) * step))
        sensors.append(Sensor(name, start, step, low, high, decimals))
    return sensors


@dataclass(frozen=True)
class Credentials:
    device_id: str
    key: str


@dataclass(frozen=True)
class OutgoingRequest:
    """One POST /v1/telemetry as it goes on the wire, plus what the fleet needs to judge the answer."""

    device_id: str
    headers: dict[str, str]
    body: bytes
    readings: dict[ReadingId, dict[str, float]]  # sent readings by (ts, seq); empty if none can be stored
    misbehaviour: Misbehaviour | None = None
    greedy: bool = False  # a good request from a device over its quota: 202 until cut off, then 429

    @property
    def expected_statuses(self) -> frozenset[int]:
        if self.misbehaviour is None:
            return frozenset({202, QUOTA_STATUS}) if self.greedy else frozenset({202})
        return self.misbehaviour.expected_statuses


@dataclass
class Device:
    """A simulated device. Not thread-safe by design: the scheduler builds requests from one thread."""

    credentials: Credentials
    sensors: list[Sensor]
    rng: random.Random
    misbehaving: bool = False
    greedy: bool = False  # sends far above its daily quota (the scheduler sends it more often)
    bad_share: float = 0.5  # share of a misbehaving device's requests that are bad
    sample_interval_ms: int = 200
    seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def device_id(self) -> str:
        return self.credentials.device_id

    def _readings(self, count: int, now_ms: int) -> list[dict[str, Any]]:
        """`count` consecutive samples ending now, as a buffering device would send them."""
        out: list[dict[str, Any]] = []
        for i in range(count):
            ts = now_ms - (count - 1 - i) * self.sample_interval_ms
            out.append({"ts": ts, "seq": self.seq, "metrics": {s.name: s.next(self.rng) for s in self.sensors}})
            self.seq += 1
        return out

    def _headers(self, key: str | None = None) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "x-device-id": self.device_id,
            "x-device-key": self.credentials.key if key is None else key,
        }

    def next_request(self, readings_per_request: int, now_ms: int) -> OutgoingRequest:
        """The device's next request: good, or (for misbehaving devices, sometimes) one bad kind."""
        with self._lock:
            if self.misbehaving and self.rng.random() < self.bad_share:
                return self.bad_request(self.rng.choice(list(Misbehaviour)), readings_per_request, now_ms)
            readings = self._readings(readings_per_request, now_ms)
            body = json.dumps({"deviceId": self.device_id, "readings": readings}, separators=(",", ":"))
            return OutgoingRequest(
                device_id=self.device_id,
                headers=self._headers(),
                body=body.encode(),
                readings={(r["ts"], r["seq"]): r["metrics"] for r in readings},
                greedy=self.greedy,
            )

    def bad_request(self, kind: Misbehaviour, readings_per_request: int, now_ms: int) -> OutgoingRequest:
        """A request of the given bad kind. Its readings are kept so the read-back can prove none was stored."""
        readings = self._readings(readings_per_request, now_ms)
        headers = self._headers()
        payload: dict[str, Any] = {"deviceId": self.device_id, "readings": readings}
        text: str | None = None
        if kind is Misbehaviour.MALFORMED_JSON:
            text = json.dumps(payload, separators=(",", ":"))[:-7]  # truncated mid-document
        elif kind is Misbehaviour.NAN_VALUE:
            readings[-1]["metrics"][self.sensors[0].name] = float("nan")
            text = json.dumps(payload, separators=(",", ":"), allow_nan=True)  # the literal NaN, not JSON
        elif kind is Misbehaviour.STALE_TIMESTAMP:
            readings[0]["ts"] = now_ms - STALE_AGE_MS
        elif kind is Misbehaviour.WRONG_KEY:
            headers["x-device-key"] = "wrong-" + self.credentials.key[::-1]
        elif kind is Misbehaviour.SPOOFED_DEVICE_ID:
            payload["deviceId"] = "spoofed-" + self.device_id
        elif kind is Misbehaviour.MISSING_KEY:
            del headers["x-device-key"]
        elif kind is Misbehaviour.WRONG_CONTENT_TYPE:
            headers["content-type"] = "text/plain"
        if text is None:
            text = json.dumps(payload, separators=(",", ":"))
        return OutgoingRequest(
            device_id=self.device_id,
            headers=headers,
            body=text.encode(),
            readings={(r["ts"], r["seq"]): r["metrics"] for r in readings},
            misbehaviour=kind,
        )


def build_fleet(
    credentials: list[Credentials],
    *,
    payload_metrics: int,
    misbehaving_share: float,
    rng: random.Random,
    greedy: int = 0,
) -> list[Device]:
    """Devices for the given credentials; the misbehaving ones are a random subset of the asked share.

    A non-zero share always yields at least one misbehaving device, so small demo
    fleets still exercise the rejection paths. The ``greedy`` ones (well-formed
    requests, far too many) are chosen after, among the others when there are enough,
    so the report can tell a quota cut-off from bad input.
    """
    n_bad = round(misbehaving_share * len(credentials))
    if misbehaving_share > 0 and n_bad == 0 and credentials:
        n_bad = 1
    bad = set(rng.sample(range(len(credentials)), min(n_bad, len(credentials))))
    devices = [
        Device(
            credentials=c,
            sensors=make_sensors(payload_metrics, rng),
            rng=random.Random(rng.getrandbits(64)),
            misbehaving=i in bad,
        )
        for i, c in enumerate(credentials)
    ]
    if greedy:
        well_behaved = [d for d in devices if not d.misbehaving]
        pool = well_behaved if len(well_behaved) >= greedy else devices
        for device in rng.sample(pool, min(greedy, len(pool))):
            device.greedy, device.misbehaving = True, False
    return devices

