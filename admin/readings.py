"""Read a device's readings back over a time range: the reference decoder of the readings table.

The table holds many readings per item (handlers/telemetry/compact.py,
docs/architecture.md "Readings table"). Reading back therefore means: one Query
on the device's partition with the sort key bounded to the range (never a scan
of its history), inflate each item, keep the readings inside [since, until),
and de-duplicate by (ts, seq).

Why de-duplicate: a reading is identified by (deviceId, ts, seq). Re-sending the
same request rewrites the same items, but a later request may carry a reading
with the same (ts, seq) again, alone or among other readings, with the same or a
different value; it is then stored in another item. The rule: **the copy received
later wins** (greater receivedAt; on an exact tie, the item with the greater sort
key). The devices table's `latest` follows the same rule.

Items come back in sort-key order, i.e. by their first ts, and each item only
holds readings at or after its first ts. So once an item starting at F has been
read, no later item can hold a reading before F: those readings are final and are
yielded, in (ts, seq) order, while the Query goes on. Memory stays bounded by the
readings of about one item span (compact.SPAN_MS), whatever the range.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from handlers.telemetry.compact import ITEM_VERSION, decompress, query_bounds
from handlers.telemetry.records import parse_json, parse_readings
from handlers.telemetry.validation import Reading


class UnreadableItem(Exception):
    """An item this reader cannot decode (unknown format version, corrupt readings)."""


@dataclass(frozen=True)
class StoredReading:
    ts: int
    seq: int
    metrics: dict[str, int | float]
    received_at: int
    copies: int = 1  # items in the range holding this (ts, seq); more than 1 only after a repeated reading

    def as_json(self, device_id: str) -> dict[str, Any]:
        return {"deviceId": device_id, "ts": self.ts, "seq": self.seq, "metrics": self.metrics,
                "receivedAt": self.received_at}


def _legacy_number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _decode_legacy(item: dict[str, Any]) -> tuple[int, list[Reading]]:
    """An item of the earlier one-reading-per-item layout (no `v`; sort key `{ts:013d}#{seq:010d}`):
    tables upgraded in place keep such items until their TTL, and they are readings like any other."""
    metrics = {name: _legacy_number(value["N"]) for name, value in item["metrics"]["M"].items()}
    reading = Reading(int(item["ts"]["N"]), int(item["seq"]["N"]), metrics)
    return int(item.get("receivedAt", {}).get("N", "0")), parse_readings([reading.as_json()])


def decode_item(item: dict[str, Any]) -> tuple[int, list[Reading]]:
    """(receivedAt, readings) of one low-level DynamoDB item (as a boto3 client returns it)."""
    key = item.get("readingKey", {}).get("S", "?")
    version = item.get("v", {}).get("N")
    if version is None and "ts" in item and "metrics" in item:
        try:
            return _decode_legacy(item)
        except (KeyError, TypeError, ValueError) as exc:
            raise UnreadableItem(f"item {key!r} (one-reading layout): {exc}") from None
    if version != str(ITEM_VERSION):
        raise UnreadableItem(f"item {key!r} has format version {version!r}; this reader knows {ITEM_VERSION}")
    try:
        blob = item["readings"]["B"]
        readings = parse_readings(parse_json(decompress(bytes(blob)), "readings"))
        received_at = int(item["receivedAt"]["N"])
    except (KeyError, TypeError, ValueError) as exc:  # PoisonRecord is a ValueError
        raise UnreadableItem(f"item {key!r}: {exc}") from None
    return received_at, readings


def query_items(client: Any, table: str, device_id: str, since_ms: int, until_ms: int, *,
                consistent: bool = False) -> Iterator[dict[str, Any]]:
    """Every item that can hold a reading with since <= ts < until, in sort-key order."""
    lo, hi = query_bounds(since_ms, until_ms)
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#d = :d AND #k BETWEEN :lo AND :hi",
        "ExpressionAttributeNames": {"#d": "deviceId", "#k": "readingKey"},
        "ExpressionAttributeValues": {":d": {"S": device_id}, ":lo": {"S": lo}, ":hi": {"S": hi}},
        "ConsistentRead": consistent,
    }
    while True:
        page = client.query(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def read_readings(client: Any, table: str, device_id: str, since_ms: int, until_ms: int, *,
                  consistent: bool = False) -> Iterator[StoredReading]:
    """The device's readings with since <= ts < until, in (ts, seq) order, one per (ts, seq)."""
    if not 0 <= since_ms < until_ms:
        raise ValueError(f"need 0 <= since < until, got since={since_ms} until={until_ms}")
    best: dict[tuple[int, int], StoredReading] = {}
    order: list[tuple[int, int]] = []  # heap of the keys in `best`

    def final_before(ts: int) -> Iterator[StoredReading]:
        while order and order[0][0] < ts:
            yield best.pop(heapq.heappop(order))

    for item in query_items(client, table, device_id, since_ms, until_ms, consistent=consistent):
        received_at, readings = decode_item(item)
        yield from final_before(min(r.ts for r in readings))  # = firstTs, the sort key's first part
        for r in readings:
            if not since_ms <= r.ts < until_ms:
                continue
            key = (r.ts, r.seq)
            held = best.get(key)
            if held is None:
                heapq.heappush(order, key)
                best[key] = StoredReading(r.ts, r.seq, r.metrics, received_at)
            elif received_at >= held.received_at:  # later arrival wins; a tie goes to the later sort key
                best[key] = StoredReading(r.ts, r.seq, r.metrics, received_at, held.copies + 1)
            else:
                best[key] = StoredReading(held.ts, held.seq, held.metrics, held.received_at, held.copies + 1)
    yield from final_before(10**14)

