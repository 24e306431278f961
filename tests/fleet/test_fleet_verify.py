"""The read-back against real (emulated) tables: progress signal, fallback, re-reads, and verdicts."""
from __future__ import annotations

import json
import uuid
from typing import Any

from fleet_fake_api import dynamo_store
from fleet.client import Response
from fleet.devices import Misbehaviour, OutgoingRequest
from fleet.ledger import Ledger
from fleet.verify import ReadingsTable, verify


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps += 1
        self.now += s


def devices_table(dynamodb: Any) -> str:
    name = f"devices-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=name, KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    return name


def sent(led: Ledger, device: str, ids: list[tuple[int, int]], status: int = 202) -> list[dict[str, Any]]:
    readings = [{"ts": ts, "seq": seq, "metrics": {"t": 20.5 + seq}} for ts, seq in ids]
    req = OutgoingRequest(device, {}, b"", {(r["ts"], r["seq"]): r["metrics"] for r in readings},
                          None if status == 202 else Misbehaviour.STALE_TIMESTAMP)
    led.record(req, Response(status, json.dumps({"accepted": len(readings)}).encode()))
    return readings


def test_signal_complete_and_everything_stored(dynamodb: Any, readings_table: str) -> None:
    dev_table = devices_table(dynamodb)
    store = dynamo_store(dynamodb, readings_table, dev_table)
    led = Ledger()
    for d in ("a", "b"):
        store(d, sent(led, d, [(1000, 0), (1000, 1), (1200, 2)]))
    clock = FakeClock()
    v = verify(led, ReadingsTable(dynamodb, readings_table, dev_table), timeout_s=10, clock=clock, sleep=clock.sleep)
    assert v.ok and v.stored == v.expected == 6 and v.polls == 1 and clock.sleeps == 0
    assert v.all_stored_at == 0.0


def test_waits_for_the_signal_then_times_out_with_missing(dynamodb: Any, readings_table: str) -> None:
    dev_table = devices_table(dynamodb)
    store = dynamo_store(dynamodb, readings_table, dev_table)
    led = Ledger()
    readings = sent(led, "a", [(1000, 0), (1100, 1), (1200, 2)])
    store("a", readings[:2])  # the newest never arrives
    clock = FakeClock()
    v = verify(led, ReadingsTable(dynamodb, readings_table, dev_table), timeout_s=3, poll_interval_s=0.5,
               clock=clock, sleep=clock.sleep)
    assert v.missing == 1 and v.stored == 2 and not v.ok
    assert v.polls >= 6 and v.waited_s >= 3  # it kept polling until the deadline
    assert v.all_stored_at is None


def test_signal_can_run_ahead_of_an_older_lost_reading(dynamodb: Any, readings_table: str) -> None:
    dev_table = devices_table(dynamodb)
    store = dynamo_store(dynamodb, readings_table, dev_table)
    led = Ledger()
    readings = sent(led, "a", [(1000, 0), (1100, 1), (1200, 2)])
    store("a", [readings[0], readings[2]])  # latest says "done", the middle one is lost
    clock = FakeClock()
    v = verify(led, ReadingsTable(dynamodb, readings_table, dev_table), timeout_s=4, clock=clock, sleep=clock.sleep)
    assert v.missing == 1 and v.missing_examples == ["a ts=1100 seq=1"]
    assert v.polls > 1 and clock.now >= 4  # re-read until the deadline before giving up


def test_without_a_devices_table_it_counts_and_catches_rejected_but_stored(dynamodb: Any, readings_table: str) -> None:
    store = dynamo_store(dynamodb, readings_table)
    led = Ledger()
    store("a", sent(led, "a", [(1000, 0), (1000, 1)]))
    store("a", sent(led, "a", [(1050, 5)], status=400))  # a broken API stored what it rejected
    table = ReadingsTable(dynamodb, readings_table, "no-such-table")
    clock = FakeClock()
    v = verify(led, table, timeout_s=5, clock=clock, sleep=clock.sleep)
    assert table.signal_error is not None and "ResourceNotFound" in table.signal_error
    assert (v.stored, v.missing, v.unexpected) == (2, 0, 1) and not v.ok


def test_stored_metrics_are_compared(dynamodb: Any, readings_table: str) -> None:
    led = Ledger()
    readings = sent(led, "a", [(1000, 0)])
    altered = [{**readings[0], "metrics": {"t": -1.0}}]  # what got stored differs from what was sent
    dynamo_store(dynamodb, readings_table)("a", altered)
    clock = FakeClock()
    v = verify(led, ReadingsTable(dynamodb, readings_table), timeout_s=1, clock=clock, sleep=clock.sleep)
    assert v.corrupted == 1 and v.missing == 0
