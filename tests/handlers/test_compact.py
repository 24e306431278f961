"""The readings item format (handlers/telemetry/compact.py): what a typical request costs to store,
content-derived keys, grouping, and the bounds that let a reader Query a time range."""
from __future__ import annotations

import json
import random
import re

import pytest

from ddb_size import item_bytes, write_units
from handlers.telemetry.compact import MAX_RAW_BYTES, SPAN_MS, canonical, decompress, groups, query_bounds, sort_key
from handlers.telemetry.process import record_items
from handlers.telemetry.records import MAX_RECORD_BYTES, decode, pack
from handlers.telemetry.validation import SCHEMA, Reading

NOW_MS = 1_764_576_000_000
REQUEST_ID = "a1b2c3d4-1111-2222-3333-444455556666"  # API Gateway request ids are 36 characters or fewer


def typical_request(metrics: int = 10, readings: int = 10, seed: int = 7) -> list[Reading]:
    """Readings shaped like a sensor node's: named channels as slow random walks, 1-3 decimals,
    one reading a minute, increasing seq (about 190 bytes of JSON each with 10 metrics)."""
    rng = random.Random(seed)
    names = ["temperature", "humidity", "battery", "pressure", "co2", "rssi", "voltage", "lux", "aux1", "aux2",
             "aux3", "aux4"][:metrics]
    values = {name: rng.uniform(10, 1000) for name in names}
    out = []
    for i in range(readings):
        for name in names:
            values[name] += rng.gauss(0, 1)
        out.append(Reading(NOW_MS + i * 60_000, 1000 + i, {n: round(v, rng.choice((1, 2, 3))) for n, v in values.items()}))
    return out


def json_bytes(reading: Reading) -> int:
    return len(json.dumps(reading.as_json(), separators=(",", ":")))


@pytest.mark.parametrize("device_id", ["sensor-0042", "d" * 128], ids=["typical-id", "longest-id"])
def test_a_typical_request_is_one_record_and_one_item_of_at_most_1_kb(device_id: str) -> None:
    readings = typical_request()
    assert 180 <= sum(map(json_bytes, readings)) / len(readings) <= 220  # the reference workload's ~200 B
    (data,) = pack(device_id, REQUEST_ID, NOW_MS + 700_000, readings)
    # on-demand Kinesis bills each record rounded up to 1 KB: (data + partition key) fits in one
    assert len(data) + len(device_id) <= 1024
    (item,) = record_items(decode(data, device_id), ttl_days=395)
    # DynamoDB's own size rules (names + values): one write request unit instead of ten
    assert item_bytes(item) <= 1024 and write_units(item) == 1


def test_the_per_reading_layout_it_replaces_cost_a_unit_per_reading() -> None:
    """The figure the issue starts from, measured by the same rules: ten items of ~250 B, ten units."""
    from handlers.telemetry.storage import metrics_map, number
    old = [{"deviceId": {"S": "sensor-0042"}, "readingKey": {"S": f"{r.ts:013d}#{r.seq:010d}"},
            "ts": number(r.ts), "seq": number(r.seq), "metrics": metrics_map(r.metrics),
            "receivedAt": number(NOW_MS), "expiresAt": number(r.ts // 1000)} for r in typical_request()]
    assert sum(write_units(i) for i in old) == 10


def test_many_readings_fill_items_densely() -> None:
    """500 readings (a device batching 8 h) still cost about one unit per KB of compressed data."""
    readings = typical_request(readings=500)
    records = pack("sensor-0042", REQUEST_ID, NOW_MS, readings)
    items = [i for data in records for i in record_items(decode(data), ttl_days=30)]
    assert sum(int(i["count"]["N"]) for i in items) == 500
    assert all(len(data) + len("sensor-0042") <= MAX_RECORD_BYTES for data in records)
    assert sum(write_units(i) for i in items) <= sum(item_bytes(i) for i in items) / 1024 + len(items)
    assert sum(write_units(i) for i in items) < 500 / 4  # vs 500 units one item per reading


def test_sort_key_is_fixed_width_ordered_and_derived_from_content() -> None:
    schema = SCHEMA["definitions"]["reading"]["properties"]
    widest = Reading(schema["ts"]["maximum"], schema["seq"]["maximum"], {"a": 1})
    narrow = Reading(0, 0, {"a": 1})
    assert len(sort_key(widest, b"x")) == len(sort_key(narrow, b"x")) == 13 + 1 + 10 + 1 + 12
    assert re.fullmatch(r"9{13}#9{10}#[A-Za-z0-9_-]{12}", sort_key(widest, b"x"))
    a = Reading(1_700_000_000_000, 2, {"a": 1})
    b = Reading(1_700_000_000_001, 0, {"a": 1})
    assert sort_key(a, b"z") < sort_key(b, b"a")  # time order first, whatever the digest
    assert sort_key(a, b"one") != sort_key(a, b"two")  # other content starting at the same reading: its own item


def test_same_readings_in_another_order_give_the_same_records_and_keys() -> None:
    readings = typical_request()
    shuffled = readings[::-1]
    one = pack("d", "r1", 1, readings)
    two = pack("d", "r2", 2, shuffled)
    def keys(recs: list[bytes]) -> list[str]:
        return [i["readingKey"]["S"] for data in recs for i in record_items(decode(data), 30)]

    assert keys(one) == keys(two)


def test_groups_cut_by_span_and_size_and_keep_the_last_repeat() -> None:
    spread = [Reading(NOW_MS + i * (SPAN_MS // 3), 0, {"a": i}) for i in range(7)]
    cut = groups(spread)
    assert [len(g) for g in cut] == [3, 3, 1]
    assert all(g[-1].ts - g[0].ts < SPAN_MS for g in cut)
    big = [Reading(NOW_MS + i, 0, {f"m{k}": 1.0 + k for k in range(50)}) for i in range(300)]
    assert all(len(canonical(g)) <= MAX_RAW_BYTES for g in groups(big)) and len(groups(big)) > 1
    repeated = groups([Reading(NOW_MS, 0, {"a": 1}), Reading(NOW_MS, 0, {"a": 2})])
    assert repeated == [[Reading(NOW_MS, 0, {"a": 2})]]


def test_decompress_refuses_a_bomb_and_trailing_bytes() -> None:
    import zlib
    with pytest.raises(ValueError, match="more than"):
        decompress(zlib.compress(b" " * (MAX_RAW_BYTES + 1)))
    with pytest.raises(ValueError, match="extra bytes|truncated"):
        decompress(zlib.compress(b"[]") + b"x")
    assert decompress(zlib.compress(b"[]")) == b"[]"


def test_query_bounds_cover_every_item_that_can_hold_a_reading_in_range() -> None:
    since, until = NOW_MS, NOW_MS + 60_000
    lo, hi = query_bounds(since, until)
    inside_latest_start = sort_key(Reading(since - SPAN_MS + 1, 0, {"a": 1}), b"x")  # spans into the range
    too_early = sort_key(Reading(since - SPAN_MS, 9_999_999_999, {"a": 1}), b"x")  # ends before since
    last_in = sort_key(Reading(until - 1, 9_999_999_999, {"a": 1}), b"x")
    first_out = sort_key(Reading(until, 0, {"a": 1}), b"x")
    assert lo <= inside_latest_start <= hi and lo <= last_in <= hi
    assert not lo <= too_early and not first_out <= hi
