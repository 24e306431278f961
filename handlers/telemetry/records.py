"""Kinesis record format: packing readings on the ingest side, decoding on the processor side.

Why pack many readings into one record: a shard accepts 1,000 records/s *or*
1 MB/s, and a provisioned stream bills one PUT payload unit per 25 KB chunk of
each record (on-demand rounds each record up to 1 KB). A reading is ~60-200
bytes, so one record per reading would hit the 1,000 records/s ceiling at
~0.1-0.2 MB/s (a fifth of what the shard can carry) and pay a whole payload
unit for each tiny record. Packing greedily up to 25 KB makes a typical
request cost 1 record and 1 payload unit, and keeps records under the unit
boundary so no record ever costs 2 units. All readings of a request go to the
same partition key (the device id), so packing never mixes shards or devices.
https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
https://aws.amazon.com/kinesis/data-streams/pricing/
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeGuard

from .device_keys import is_valid_device_id
from .validation import Reading, number_problem

RECORD_VERSION = 1
# One PUT payload unit is 25 KB; count data *and* partition key against it and use
# decimal KB, so every record stays within one unit whatever the exact definition.
MAX_RECORD_BYTES = 25_000

_SEPARATORS = (",", ":")


class RecordTooLarge(ValueError):
    """A single reading cannot fit in one record (the schema's limits make this unreachable)."""


class PoisonRecord(ValueError):
    """A Kinesis record that can never be processed, whatever the retry."""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=_SEPARATORS, allow_nan=False)


def pack(device_id: str, request_id: str, received_at: int, readings: list[Reading]) -> list[bytes]:
    """Greedy packing of readings, in order, into as few <= 25 KB records as possible."""
    head = _dumps({"v": RECORD_VERSION, "deviceId": device_id, "requestId": request_id, "receivedAt": received_at})
    prefix = head[:-1] + ',"readings":['
    suffix = "]}"
    overhead = len(prefix) + len(suffix) + len(device_id.encode("utf-8"))
    records: list[bytes] = []
    current: list[str] = []
    size = overhead
    for index, reading in enumerate(readings):
        text = _dumps(reading.as_json())
        cost = len(text.encode("utf-8")) + (1 if current else 0)
        if overhead + len(text.encode("utf-8")) > MAX_RECORD_BYTES:
            raise RecordTooLarge(f"readings[{index}] alone is larger than one {MAX_RECORD_BYTES}-byte record")
        if current and size + cost > MAX_RECORD_BYTES:
            records.append((prefix + ",".join(current) + suffix).encode("utf-8"))
            current, size = [], overhead
            cost -= 1
        current.append(text)
        size += cost
    if current:
        records.append((prefix + ",".join(current) + suffix).encode("utf-8"))
    return records


@dataclass(frozen=True)
class TelemetryRecord:
    device_id: str
    request_id: str
    received_at: int
    readings: list[Reading]


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and number_problem(value) is None


def decode(data: bytes, partition_key: str | None = None) -> TelemetryRecord:
    """Parse and check one record; raise PoisonRecord with the reason if it is unusable.

    The ingest function only writes valid records, so anything failing here was
    written by something else (or corrupted) and must not block the shard.
    """
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise PoisonRecord(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PoisonRecord("record is not a JSON object")
    if doc.get("v") != RECORD_VERSION:
        raise PoisonRecord(f"unsupported record version {doc.get('v')!r}")
    device_id = doc.get("deviceId")
    if not isinstance(device_id, str) or not is_valid_device_id(device_id):
        raise PoisonRecord("deviceId missing or malformed")
    if partition_key is not None and partition_key != device_id:
        raise PoisonRecord("partition key differs from deviceId")
    request_id = doc.get("requestId")
    received_at = doc.get("receivedAt")
    if not isinstance(request_id, str) or not _is_int(received_at):
        raise PoisonRecord("requestId or receivedAt missing or malformed")
    raw_readings = doc.get("readings")
    if not isinstance(raw_readings, list) or not raw_readings:
        raise PoisonRecord("readings missing or empty")
    readings: list[Reading] = []
    for i, item in enumerate(raw_readings):
        if not isinstance(item, dict):
            raise PoisonRecord(f"readings[{i}] is not an object")
        ts, seq, metrics = item.get("ts"), item.get("seq", 0), item.get("metrics")
        if not (_is_int(ts) and 0 <= ts <= 9_999_999_999_999 and _is_int(seq) and 0 <= seq <= 9_999_999_999):
            raise PoisonRecord(f"readings[{i}] ts/seq missing or out of range")
        if not isinstance(metrics, dict) or not metrics or not all(
            isinstance(k, str) and _is_number(v) for k, v in metrics.items()
        ):
            raise PoisonRecord(f"readings[{i}].metrics missing or not a map of storable finite numbers")
        readings.append(Reading(ts=ts, seq=seq, metrics=metrics))
    return TelemetryRecord(device_id, request_id, received_at, readings)


def _reject_constant(literal: str) -> Any:
    raise ValueError(f"non-finite literal {literal}")
