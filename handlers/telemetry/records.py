"""Kinesis record format: packing readings on the ingest side, decoding on the processor side.

Why pack many readings into one record: a shard accepts 1,000 records/s *or*
1 MB/s, a provisioned stream bills one PUT payload unit per 25 KB chunk of
each record, and an on-demand stream bills each record rounded up to 1 KB.
A reading is ~60-200 bytes, so one record per reading would hit the 1,000
records/s ceiling at a fraction of the byte rate and pay a whole unit for each
tiny record. All readings of a request go to the same partition key (the
device id), so packing never mixes shards or devices.
https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html
https://aws.amazon.com/kinesis/data-streams/pricing/

Version 2 (written by ingest): one record per item-to-be (telemetry.compact's
groups), compressed once here:

    b"\\x02" + header JSON {"deviceId", "requestId", "receivedAt"} + b"\\n" + zlib(canonical readings JSON)

The processor checks the readings and stores the zlib bytes unchanged, so a
typical request (10 readings of ~200 B) is one record of ~0.5 KB: one on-demand
KB, one provisioned payload unit. Version 1 (plain JSON
``{"v": 1, "deviceId", "requestId", "receivedAt", "readings": [...]}``, written
by earlier releases) is still decoded, so records already on the stream during
an upgrade are stored, never lost.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeGuard

from .compact import canonical, compress, decompress, groups
from .device_keys import is_valid_device_id
from .validation import Reading, number_problem

RECORD_VERSION = 2
LEGACY_RECORD_VERSION = 1
_V2 = b"\x02"
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


def _header(device_id: str, request_id: str, received_at: int) -> bytes:
    return _V2 + _dumps({"deviceId": device_id, "requestId": request_id, "receivedAt": received_at}).encode("utf-8") + b"\n"


def pack(device_id: str, request_id: str, received_at: int, readings: list[Reading]) -> list[bytes]:
    """One version-2 record per group of readings (telemetry.compact.groups); a group whose
    record would exceed one 25 KB payload unit is halved until it fits (deterministically,
    so a re-sent request gives the same records and the same items)."""
    head = _header(device_id, request_id, received_at)
    budget = MAX_RECORD_BYTES - len(head) - len(device_id.encode("utf-8"))
    records: list[bytes] = []

    def emit(group: list[Reading]) -> None:
        blob = compress(canonical(group))
        if len(blob) <= budget:
            records.append(head + blob)
        elif len(group) == 1:
            raise RecordTooLarge(f"reading ts={group[0].ts} seq={group[0].seq} alone is larger than one {MAX_RECORD_BYTES}-byte record")
        else:
            half = len(group) // 2
            emit(group[:half])
            emit(group[half:])

    for group in groups(readings):
        emit(group)
    return records


@dataclass(frozen=True)
class TelemetryRecord:
    device_id: str
    request_id: str
    received_at: int
    readings: list[Reading]
    # Version 2 only: the canonical JSON the readings were parsed from and its zlib bytes as received.
    raw: bytes | None = None
    blob: bytes | None = None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and number_problem(value) is None


def parse_readings(raw_readings: Any) -> list[Reading]:
    """Check a list of readings as the schema and validation define them; PoisonRecord if not.
    Shared by the processor (records) and readers of the readings table (items)."""
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
    return readings


def parse_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise PoisonRecord(f"{what} is not UTF-8 JSON: {exc}") from None


def _check_header(doc: Any, partition_key: str | None) -> tuple[str, str, int]:
    if not isinstance(doc, dict):
        raise PoisonRecord("record header is not a JSON object")
    device_id = doc.get("deviceId")
    if not isinstance(device_id, str) or not is_valid_device_id(device_id):
        raise PoisonRecord("deviceId missing or malformed")
    if partition_key is not None and partition_key != device_id:
        raise PoisonRecord("partition key differs from deviceId")
    request_id = doc.get("requestId")
    received_at = doc.get("receivedAt")
    if not isinstance(request_id, str) or not _is_int(received_at):
        raise PoisonRecord("requestId or receivedAt missing or malformed")
    return device_id, request_id, received_at


def decode(data: bytes, partition_key: str | None = None) -> TelemetryRecord:
    """Parse and check one record; raise PoisonRecord with the reason if it is unusable.

    The ingest function only writes valid records, so anything failing here was
    written by something else (or corrupted) and must not block the shard.
    """
    if data[:1] == _V2:
        head, newline, blob = data[1:].partition(b"\n")
        if not newline:
            raise PoisonRecord("version 2 record without its header line")
        device_id, request_id, received_at = _check_header(parse_json(head, "record header"), partition_key)
        try:
            raw = decompress(blob)
        except ValueError as exc:
            raise PoisonRecord(f"readings: {exc}") from None
        readings = parse_readings(parse_json(raw, "readings"))
        return TelemetryRecord(device_id, request_id, received_at, readings, raw=raw, blob=blob)
    doc = parse_json(data, "record")
    if not isinstance(doc, dict):
        raise PoisonRecord("record is not a JSON object")
    if doc.get("v") != LEGACY_RECORD_VERSION:
        raise PoisonRecord(f"unsupported record version {doc.get('v')!r}")
    device_id, request_id, received_at = _check_header(doc, partition_key)
    return TelemetryRecord(device_id, request_id, received_at, parse_readings(doc.get("readings")))


def _reject_constant(literal: str) -> Any:
    raise ValueError(f"non-finite literal {literal}")
