"""The reader (admin.readings) and ``python -m admin readings``: time ranges through the sort key,
one reading per (ts, seq) with the later arrival winning, JSON lines / CSV, and errors with exit 2."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from admin.cli import run
from admin.readings import UnreadableItem, read_readings
from admin_support import TABLE
from handlers.telemetry.process import record_items
from handlers.telemetry.records import TelemetryRecord
from handlers.telemetry.validation import Reading

READINGS = "readings-admin-test"
HOUR = 3_600_000
T0 = 1_796_083_200_000  # 2026-12-01T00:00:00Z


@pytest.fixture
def readings_table(ddb: Any) -> str:
    ddb.create_table(
        TableName=READINGS,
        KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}, {"AttributeName": "readingKey", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"},
                              {"AttributeName": "readingKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return READINGS


def store(ddb: Any, device: str, readings: list[tuple[int, int, float]], received_at: int) -> None:
    """Write items exactly as the processor builds them."""
    record = TelemetryRecord(device, "r", received_at, [Reading(ts, seq, {"t": v}) for ts, seq, v in readings])
    for item in record_items(record, ttl_days=30):
        ddb.put_item(TableName=READINGS, Item=item)


class CountingClient:
    """The real client, recording which operations ran and how many items each Query returned."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[str] = []
        self.items_returned = 0

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("query")
        page = self.real.query(**kwargs)
        self.items_returned += len(page.get("Items", []))
        return page

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.real, name)


def a_day_of_requests(ddb: Any, device: str = "dev-1") -> None:
    """24 h of one reading a minute, sent 10 a request: 144 items."""
    for r in range(144):
        start = T0 + r * 10 * 60_000
        store(ddb, device, [(start + i * 60_000, r * 10 + i, float(r * 10 + i)) for i in range(10)], received_at=start + HOUR)


def test_a_time_range_is_one_query_on_the_sort_key_not_the_devices_history(ddb: Any, readings_table: str) -> None:
    a_day_of_requests(ddb)
    spy = CountingClient(ddb)
    since, until = T0 + 12 * HOUR, T0 + 13 * HOUR
    got = list(read_readings(spy, readings_table, "dev-1", since, until))
    assert [r.ts for r in got] == [since + m * 60_000 for m in range(60)]  # [since, until), in order, once each
    assert all(r.metrics == {"t": float(r.seq)} and r.copies == 1 for r in got)
    assert spy.calls == ["query"]
    # the items of that hour, plus those starting up to one item span (1 h) before it: not the other 18 hours
    assert spy.items_returned <= 6 + 6 + 1


def test_the_later_arrival_of_a_reading_wins_and_others_are_kept(ddb: Any, readings_table: str) -> None:
    store(ddb, "dev-1", [(T0, 0, 1.0), (T0 + 10, 0, 2.0), (T0 + 20, 0, 3.0)], received_at=T0 + 100)
    store(ddb, "dev-1", [(T0 + 10, 0, 20.0)], received_at=T0 + 300)  # a later request, another value
    store(ddb, "dev-1", [(T0 + 20, 0, 30.0), (T0 + 30, 0, 4.0)], received_at=T0 + 50)  # an older copy, arrived earlier
    got = [(r.ts, r.metrics["t"], r.received_at, r.copies) for r in read_readings(ddb, readings_table, "dev-1", T0, T0 + 1000)]
    assert got == [(T0, 1.0, T0 + 100, 1), (T0 + 10, 20.0, T0 + 300, 2), (T0 + 20, 3.0, T0 + 100, 2), (T0 + 30, 4.0, T0 + 50, 1)]


def test_items_of_the_one_reading_layout_are_still_read(ddb: Any, readings_table: str) -> None:
    """A table upgraded in place keeps its earlier items (one reading each, no `v`) until their TTL."""
    ddb.put_item(TableName=readings_table, Item={
        "deviceId": {"S": "dev-1"}, "readingKey": {"S": f"{T0 + 5:013d}#{0:010d}"}, "ts": {"N": str(T0 + 5)},
        "seq": {"N": "0"}, "metrics": {"M": {"t": {"N": "1.5"}, "n": {"N": "7"}}}, "receivedAt": {"N": str(T0)},
        "expiresAt": {"N": "1"}})
    store(ddb, "dev-1", [(T0, 0, 1.0), (T0 + 5, 0, 2.0), (T0 + 9, 0, 3.0)], received_at=T0 + 100)  # later: wins
    store(ddb, "dev-1", [(T0 + 7, 0, 4.0)], received_at=T0 + 200)
    ddb.put_item(TableName=readings_table, Item={
        "deviceId": {"S": "dev-1"}, "readingKey": {"S": f"{T0 + 8:013d}#{0:010d}"}, "ts": {"N": str(T0 + 8)},
        "seq": {"N": "0"}, "metrics": {"M": {"n": {"N": "7"}}}, "receivedAt": {"N": str(T0)}})
    got = [(r.ts, r.metrics, r.copies) for r in read_readings(ddb, readings_table, "dev-1", T0, T0 + 10)]
    assert got == [(T0, {"t": 1.0}, 1), (T0 + 5, {"t": 2.0}, 2), (T0 + 7, {"t": 4.0}, 1), (T0 + 8, {"n": 7}, 1),
                   (T0 + 9, {"t": 3.0}, 1)]


def test_an_unknown_item_version_is_refused_by_name(ddb: Any, readings_table: str) -> None:
    store(ddb, "dev-1", [(T0, 0, 1.0)], received_at=T0)
    (item,) = ddb.scan(TableName=readings_table)["Items"]
    ddb.put_item(TableName=readings_table, Item={**item, "v": {"N": "9"}})
    with pytest.raises(UnreadableItem, match="format version '9'"):
        list(read_readings(ddb, readings_table, "dev-1", T0, T0 + 1))


def cli(ddb: Any, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--table", TABLE, *argv], out=out, err=err, client=ddb)
    return code, out.getvalue(), err.getvalue()


def registered(ddb: Any, device: str = "dev-1") -> None:
    assert cli(ddb, "add", "--device-id", device)[0] == 0


def test_cli_prints_json_lines_and_csv(ddb: Any, readings_table: str) -> None:
    registered(ddb)
    store(ddb, "dev-1", [(T0, 0, 21.5), (T0 + 1000, 1, 22.25)], received_at=T0 + 5)
    code, out, err = cli(ddb, "readings", "dev-1", "--since", "2026-12-01T00:00Z", "--until", "2026-12-01T00:00:00.001Z",
                         "--readings-table", readings_table)
    assert (code, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == [
        {"deviceId": "dev-1", "ts": T0, "seq": 0, "metrics": {"t": 21.5}, "receivedAt": T0 + 5}]  # until is exclusive
    code, out, _ = cli(ddb, "readings", "dev-1", "--since", "2026-12-01T01:00:00+01:00", "--until", "2026-12-02",
                       "--readings-table", readings_table, "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [["deviceId", "ts", "time", "seq", "receivedAt", "metric", "value"],
                    ["dev-1", str(T0), "2026-12-01T00:00:00.000Z", "0", str(T0 + 5), "t", "21.5"],
                    ["dev-1", str(T0 + 1000), "2026-12-01T00:00:01.000Z", "1", str(T0 + 5), "t", "22.25"]]


@pytest.mark.parametrize("argv, message", [
    (["dev-1", "--since", "yesterday", "--until", "2026-12-02"], "--since 'yesterday' is not a time; use ISO-8601"),
    (["dev-1", "--since", "2026-12-01T00:00", "--until", "2026-12-02"], "--since '2026-12-01T00:00' has no time zone"),
    (["dev-1", "--since", "2026-12-02", "--until", "2026-12-01"], "--since (2026-12-02) must be earlier than --until"),
    (["dev-1", "--since", "2026-12-01", "--until", "2026-12-01"], "must be earlier than --until"),
    (["dev-1", "--since", "1969-12-31", "--until", "2026-12-01"], "outside the readings' ts range"),
    (["nobody", "--since", "2026-12-01", "--until", "2026-12-02"], "no device 'nobody'; see 'list'"),
    (["bad id!", "--since", "2026-12-01", "--until", "2026-12-02"], "invalid device id 'bad id!'"),
])
def test_cli_refuses_bad_ranges_and_unknown_devices_in_one_line(
    argv: list[str], message: str, ddb: Any, readings_table: str
) -> None:
    registered(ddb)
    code, out, err = cli(ddb, "readings", *argv, "--readings-table", readings_table)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_cli_needs_to_know_the_readings_table(ddb: Any) -> None:
    registered(ddb)
    code, _, err = cli(ddb, "readings", "dev-1", "--since", "2026-12-01", "--until", "2026-12-02")
    assert code == 2 and "--readings-table NAME" in err and err.count("\n") == 1
