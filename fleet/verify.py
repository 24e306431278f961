"""Read-back check: is every accepted reading stored exactly once, and nothing rejected stored?

A 202 only means the reading reached Kinesis; the processor stores it later.
So the check first *waits* for the processor, then reads everything back once.

Waiting must be cheap: on the emulator, reading an item back costs about as
much as writing it (measured before readings were packed many to an item: Query
~0.4-0.8 ms per item, BatchGetItem ~1 ms), so polling the readings table slowed
down the very drain it was waiting for. The progress signal is instead the
devices table's `latestTs`/`latestSeq` (docs/architecture.md), which the
processor moves forward after it has written a batch's readings: one
BatchGetItem of the run's devices per poll. Without a devices table, the
readings are read back through the reader and counted.

Then every device's readings over this run's time range are read back through
the operators' reader (admin.readings: one Query on the sort key, items
decoded, one reading per `(ts, seq)`), and counted:

- missing: accepted but not stored (re-read until the deadline, since the signal
  only proves the *newest* reading of a device arrived);
- duplicates: one `(ts, seq)` stored in more than one item. The fleet re-sends
  a request unchanged, and identical readings get an identical item key, so any
  is a bug in the idempotent key;
- unexpected: a reading the API *rejected* (4xx) that is stored anyway;
- corrupted: stored metrics that differ from what was sent.

Items of the run's devices that the fleet never sent (earlier runs reusing
`--keys`) are ignored.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from admin.readings import StoredReading, read_readings

from .devices import ReadingId
from .ledger import Ledger


class QueryClient(Protocol):
    def query(self, **kwargs: Any) -> dict[str, Any]: ...

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]: ...


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
        return self.checked and not (self.missing or self.duplicates or self.unexpected or self.corrupted)


class ReadingsTable:
    """One device's readings in a timestamp range, through the reader (admin.readings)."""

    def __init__(self, client: QueryClient, table_name: str, devices_table: str | None = None) -> None:
        self._client = client
        self._table = table_name
        self._devices_table = devices_table
        self.signal_error: str | None = None

    def count(self, device_id: str, lo_ts: int, hi_ts: int) -> int:
        """Readings stored with lo_ts <= ts <= hi_ts."""
        return len(self.fetch(device_id, lo_ts, hi_ts))

    def fetch(self, device_id: str, lo_ts: int, hi_ts: int) -> list[StoredReading]:
        """Readings with lo_ts <= ts <= hi_ts (strongly consistent: the check must see every write)."""
        return list(read_readings(self._client, self._table, device_id, max(lo_ts, 0), hi_ts + 1, consistent=True))

    def latest_or_none(self, device_ids: list[str]) -> dict[str, ReadingId] | None:
        """`latest()`, or None when there is no usable devices table (then callers count instead)."""
        if self._devices_table is None:
            return None
        try:
            return self.latest(device_ids)
        except Exception as exc:  # noqa: BLE001 - missing table, no permission: fall back for the rest of the run
            self.signal_error = f"{type(exc).__name__}: {exc}"
            self._devices_table = None
            return None

    def latest(self, device_ids: list[str]) -> dict[str, ReadingId]:
        """(latestTs, latestSeq) per device from the devices table; devices with none yet are absent."""
        assert self._devices_table is not None
        out: dict[str, ReadingId] = {}
        for i in range(0, len(device_ids), 100):  # BatchGetItem takes at most 100 keys
            request: dict[str, Any] = {self._devices_table: {
                "Keys": [{"deviceId": {"S": d}} for d in device_ids[i : i + 100]],
                "ProjectionExpression": "#d, #t, #s",
                "ExpressionAttributeNames": {"#d": "deviceId", "#t": "latestTs", "#s": "latestSeq"},
                "ConsistentRead": True,
            }}
            while request:
                page = self._client.batch_get_item(RequestItems=request)
                for item in page.get("Responses", {}).get(self._devices_table, []):
                    if "latestTs" in item and "latestSeq" in item:
                        out[item["deviceId"]["S"]] = (int(item["latestTs"]["N"]), int(item["latestSeq"]["N"]))
                request = page.get("UnprocessedKeys") or {}
        return out


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
        by_id = {(r.ts, r.seq): r for r in items}
        into.expected += len(accepted)
        for rid, metrics in accepted.items():
            if rid not in by_id:
                into.missing += 1
                if len(into.missing_examples) < 5:
                    into.missing_examples.append(f"{device} ts={rid[0]} seq={rid[1]}")
                continue
            into.stored += 1
            into.duplicates += by_id[rid].copies - 1
            if not _same(by_id[rid].metrics, metrics):
                into.corrupted += 1
        into.unexpected += sum(1 for rid in rejected if rid in by_id and rid not in accepted)
    return into


def _ts_range(ids: Iterable[ReadingId]) -> tuple[int, int] | None:
    ts = [t for t, _ in ids]
    return (min(ts), max(ts)) if ts else None


def _wait_for_processor(
    ledger: Ledger,
    table: ReadingsTable,
    ranges: dict[str, tuple[int, int]],
    *,
    deadline: float,
    poll_interval_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    result: Verification,
) -> float | None:
    """Poll the cheap progress signal; return clock() when it says everything arrived, or None at the deadline."""
    pending = sorted(d for d in ledger.accepted if ledger.accepted[d])
    newest = {d: max(ledger.accepted[d]) for d in pending}
    while pending:
        result.polls += 1
        latest = table.latest_or_none(pending)
        if latest is not None:
            pending = [d for d in pending if latest.get(d, (-1, -1)) < newest[d]]
        else:
            pending = [d for d in pending if table.count(d, *ranges[d]) < len(ledger.accepted[d])]
        if not pending:
            break
        if clock() >= deadline:
            return None
        sleep(poll_interval_s)
    return clock()


def verify(
    ledger: Ledger,
    table: ReadingsTable,
    *,
    timeout_s: float,
    poll_interval_s: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Wait for the processor (cheaply), then read back and count; re-read while readings are missing."""
    result = Verification()
    devices = sorted(set(ledger.accepted) | set(ledger.rejected))
    ranges: dict[str, tuple[int, int]] = {}
    for device in devices:
        ids = list(ledger.accepted.get(device, {})) + list(ledger.rejected.get(device, set()))
        span = _ts_range(ids)
        if span is not None:
            ranges[device] = span
    started = clock()
    deadline = started + timeout_s
    arrived_at = _wait_for_processor(ledger, table, ranges, deadline=deadline, poll_interval_s=poll_interval_s,
                                     clock=clock, sleep=sleep, result=result)
    stored = {d: table.fetch(d, *ranges[d]) for d in devices if d in ranges}
    compare(ledger, stored, result)
    if not result.missing:
        result.all_stored_at = arrived_at
    while result.missing and clock() < deadline:  # older readings may still be on their way
        sleep(max(poll_interval_s, 1.0))
        result.polls += 1
        for d in devices:
            if d in ranges and not set(ledger.accepted.get(d, {})) <= {(r.ts, r.seq) for r in stored[d]}:
                stored[d] = table.fetch(d, *ranges[d])
        compare(ledger, stored, result)
        if not result.missing:
            result.all_stored_at = clock()
    result.waited_s = clock() - started
    return result
