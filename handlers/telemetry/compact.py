"""The readings table's item format: many readings of one device in one compact item.

Why: DynamoDB bills a write per started KB of item, so an item per ~200-byte
reading paid a whole write unit for each reading (72-81 % of the bill, issue 7).
An item's size is its attribute names plus values, binary counted raw:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
One item holds a group of a device's readings instead:

- the group: readings of one request, sorted by (ts, seq), no (ts, seq) twice,
  spanning less than SPAN_MS (last ts - first ts) and at most MAX_RAW_BYTES of
  canonical JSON; a typical request (10 readings) is one group, one item, one
  write unit (measured in tests/handlers/test_compact.py);
- its encoding: zlib (RFC 1950) of the canonical JSON array of the readings
  exactly as the API takes them, ``[{"ts":..,"seq":..,"metrics":{..}},..]``;
  ingest compresses once and puts those bytes on the stream, the processor
  checks them and stores them unchanged;
- its sort key, from content only: ``{firstTs:013d}#{firstSeq:010d}#{digest}``
  with digest = the first 9 bytes of SHA-256 of the canonical JSON, base64url
  (12 characters). The same readings always give the same key, so a re-sent
  request overwrites its own items (idempotent writes); different readings
  starting at the same (ts, seq) get their own item.

Why a span limit rather than aligned time buckets: with buckets, a request whose
readings cross a bucket boundary costs two items (10 readings a minute apart cross
an hour boundary in 9 of 60 requests: 1.15 write units a request on average); cut by
span, any request spanning under an hour is one item, and the Query below still
bounds a time range just as tightly (it starts SPAN_MS before `since`).

A time range [since, until) is one Query on the sort key: an item holding a
reading at ts >= since has firstTs > since - SPAN_MS, so the range
``{since - SPAN_MS + 1:013d}`` .. ``{until - 1:013d}~`` finds every item that can
hold one, without reading the device's history. docs/architecture.md describes
the format for other consumers; admin/readings.py is the reference reader.
"""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from .validation import Reading

ITEM_VERSION = 1
# Longest time an item may span (last ts - first ts < SPAN_MS). Readers start their
# Query this far before `since`; a longer span means fewer items for slow devices
# batching a long stretch, a shorter one reads less outside the range.
SPAN_MS = 3_600_000
# Most canonical JSON one item holds; also the processor's cap on decompressing a
# record (a zlib bomb is refused, not expanded). A reading is at most ~4.5 KB
# (50 metrics, 64-character names), so any reading fits.
MAX_RAW_BYTES = 64_000

_SEPARATORS = (",", ":")
_DIGEST_BYTES = 9


def canonical(readings: Sequence[Reading]) -> bytes:
    """The one JSON text of a group: its digest, and what is compressed and stored."""
    return json.dumps([r.as_json() for r in readings], separators=_SEPARATORS, allow_nan=False).encode("utf-8")


def reading_size(reading: Reading) -> int:
    return len(json.dumps(reading.as_json(), separators=_SEPARATORS, allow_nan=False).encode("utf-8"))


def groups(readings: Iterable[Reading]) -> list[list[Reading]]:
    """Sort by (ts, seq), keep the last of any repeated (ts, seq), and cut greedily into
    groups by SPAN_MS and MAX_RAW_BYTES. A pure function of the readings, so a re-sent
    request is cut the same way and its items get the same keys."""
    unique: dict[tuple[int, int], Reading] = {}
    for reading in readings:
        unique[(reading.ts, reading.seq)] = reading
    out: list[list[Reading]] = []
    current: list[Reading] = []
    size = 2  # "[]"
    for key in sorted(unique):
        reading = unique[key]
        cost = reading_size(reading) + (1 if current else 0)
        if current and (reading.ts - current[0].ts >= SPAN_MS or size + cost > MAX_RAW_BYTES):
            out.append(current)
            current, size = [], 2
            cost -= 1
        current.append(reading)
        size += cost
    if current:
        out.append(current)
    return out


def compress(raw: bytes) -> bytes:
    return zlib.compress(raw, 6)


def decompress(blob: bytes) -> bytes:
    """Inflate at most MAX_RAW_BYTES; raise ValueError for anything else (corrupt, truncated, too big)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(blob, MAX_RAW_BYTES + 1)
    except zlib.error as exc:
        raise ValueError(f"not a zlib stream: {exc}") from None
    if len(raw) > MAX_RAW_BYTES:
        raise ValueError(f"readings inflate to more than {MAX_RAW_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("zlib stream truncated or followed by extra bytes")
    return raw


def sort_key(first: Reading, raw: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()[:_DIGEST_BYTES]).decode("ascii")
    return f"{first.ts:013d}#{first.seq:010d}#{digest}"


def number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def build_item(device_id: str, group: Sequence[Reading], raw: bytes, blob: bytes, received_at: int,
               ttl_days: int) -> dict[str, Any]:
    """The readings-table item of one group (raw = canonical(group), blob = its zlib bytes).

    expiresAt counts from the newest reading, so no reading of the item expires
    earlier than ttl_days after its own ts.
    """
    first, last = group[0], group[-1]
    return {
        "deviceId": {"S": device_id},
        "readingKey": {"S": sort_key(first, raw)},
        "v": number(ITEM_VERSION),
        "firstTs": number(first.ts),
        "lastTs": number(last.ts),
        "count": number(len(group)),
        "receivedAt": number(received_at),
        "expiresAt": number(last.ts // 1000 + ttl_days * 86_400),
        "readings": {"B": blob},
    }


def query_bounds(since_ms: int, until_ms: int) -> tuple[str, str]:
    """Sort-key bounds (for BETWEEN) of every item that can hold a reading with since <= ts < until."""
    return f"{max(0, since_ms - SPAN_MS + 1):013d}", f"{until_ms - 1:013d}~"  # '~' sorts after '#' and base64url
