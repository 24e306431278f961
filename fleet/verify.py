"""Read-back check: is every accepted reading stored exactly once, and nothing rejected stored?

A 202 only means the reading reached Kinesis; the processor stores it later.
So the check polls the readings table (one Query per device, sort-key range =
this run's timestamps) until every accepted reading is there or a deadline
passes, then makes one final pass over all devices to count:

- missing: accepted but not stored;
- duplicates: one `(ts, seq)` stored under more than one item (the table's key
  design should make this impossible, so any is a bug);
- unexpected: a reading the API *rejected* (4xx) that is stored anyway;
- corrupted: stored metrics that differ from what was sent.

Items of the run's devices that the fleet never sent (earlier runs reusing
`--keys`) are ignored.
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Protocol

from .devices import ReadingId
from .ledger import Ledger


class QueryClient(Protocol):
    def query(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StoredReading:
    ts: int
    seq: int
    metrics: dict[str, float]


@dataclass
class Verification:
    checked: bool = False
    expected: int = 0
    stored: int = 0
    missing: int = 0
    duplicates: int = 0
    unexpected: int = 0
    corrupted: int = 0
    waited_s: float = 0.0
    polls: int = 0
    all_stored_at: float | None = None  # clock() when the last accepted reading was first seen stored
    missing_examples: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.checked and self.missing == 0 and self.duplicates == 0 and self.unexpected == 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (Decimal, int, float, str)) else math.nan


def _deserialise(item: dict[str, Any]) -> StoredReading:
    """Low-level DynamoDB item -> StoredReading, reading only what the contract defines."""
    metrics = {k: _number(v.get("N")) for k, v in item.get("metrics", {}).get("M", {}).items()}
    return StoredReading(int(item["ts"]["N"]), int(item["seq"]["N"]), metrics)


class ReadingsTable:
    """Queries one device's readings in a timestamp range (sort key `f"{ts:013d}#{seq:010d}"`)."""

    def __init__(self, client: QueryClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def fetch(self, device_id: str, lo_ts: int, hi_ts: int) -> list[StoredReading]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#d = :d AND #k BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#d": "deviceId", "#k": "readingKey", "#t": "ts", "#s": "seq", "#m": "metrics"},
            "ExpressionAttributeValues": {
                ":d": {"S": device_id},
                ":lo": {"S": f"{max(lo_ts, 0):013d}#"},
                ":hi": {"S": f"{hi_ts:013d}#~"},  # '~' sorts after every digit
            },
            "ProjectionExpression": "#t, #s, #m",
            "ConsistentRead": True,
        }
        out: list[StoredReading] = []
        while True:
            page = self._client.query(**kwargs)
            out.extend(_deserialise(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9) for k in a)


def compare(ledger: Ledger, stored: dict[str, list[StoredReading]], into: Verification) -> Verification:
    """Fill `into` with the counts for the given read-back (a pure function of its inputs)."""
    into.checked = True
    into.expected = into.stored = into.missing = into.duplicates = into.unexpected = into.corrupted = 0
    into.missing_examples = []
    for device in sorted(set(ledger.accepted) | set(ledger.rejected)):
        accepted = ledger.accepted.get(device, {})
        rejected = ledger.rejected.get(device, set())
        items = stored.get(device, [])
        counts = Counter((r.ts, r.seq) for r in items)
        by_id = {(r.ts, r.seq): r for r in items}
        into.expected += len(accepted)
        for rid, metrics in accepted.items():
            if rid not in counts:
                into.missing += 1
                if len(into.missing_examples) < 5:
                    into.missing_examples.append(f"{device} ts={rid[0]} seq={rid[1]}")
                continue
            into.stored += 1
            into.duplicates += counts[rid] - 1
            if not _same(by_id[rid].metrics, metrics):
                into.corrupted += 1
        into.unexpected += sum(1 for rid in rejected if rid in counts and rid not in accepted)
    return into


def _ts_range(ids: Iterable[ReadingId]) -> tuple[int, int] | None:
    ts = [t for t, _ in ids]
    return (min(ts), max(ts)) if ts else None


def verify(
    ledger: Ledger,
    table: ReadingsTable,
    *,
    timeout_s: float,
    poll_interval_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Poll until every accepted reading is stored or `timeout_s` passes, then count everything once."""
    result = Verification()
    devices = sorted(set(ledger.accepted) | set(ledger.rejected))
    ranges: dict[str, tuple[int, int]] = {}
    for device in devices:
        ids = list(ledger.accepted.get(device, {})) + list(ledger.rejected.get(device, set()))
        span = _ts_range(ids)
        if span is not None:
            ranges[device] = span
    started = clock()
    stored: dict[str, list[StoredReading]] = {}
    pending = [d for d in devices if ledger.accepted.get(d)]
    while True:
        result.polls += 1
        for device in pending:
            stored[device] = table.fetch(device, *ranges[device])
        pending = [
            d for d in pending
            if not set(ledger.accepted[d]) <= {(r.ts, r.seq) for r in stored[d]}
        ]
        if not pending:
            result.all_stored_at = clock()
            break
        if clock() - started >= timeout_s:
            break
        sleep(poll_interval_s)
    result.waited_s = clock() - started
    for device in devices:  # final pass: duplicates and rejected-but-stored can appear late
        stored[device] = table.fetch(device, *ranges[device])
    return compare(ledger, stored, result)
