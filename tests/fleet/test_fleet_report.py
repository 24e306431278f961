"""Report maths: percentiles, classification of answers, read-back comparison and exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.client import Response
from fleet.devices import Misbehaviour, OutgoingRequest
from fleet.ledger import Ledger
from fleet.report import EXIT_INTEGRITY, EXIT_NO_SERVICE, EXIT_OK, FleetReport, percentile
from fleet.verify import StoredReading, Verification, compare


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 75) == 3.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 0)


def req(device: str, ids: list[tuple[int, int]], kind: Misbehaviour | None = None) -> OutgoingRequest:
    return OutgoingRequest(device, {}, b"{}", {i: {"t": float(i[1])} for i in ids}, kind)


def accepted(n: int) -> Response:
    return Response(202, json.dumps({"accepted": n}).encode(), latency_s=0.01)


def test_ledger_classifies_answers() -> None:
    led = Ledger()
    led.record(req("a", [(1, 0), (1, 1)]), accepted(2))
    led.record(req("a", [(2, 2)], Misbehaviour.WRONG_KEY), Response(403, latency_s=0.02))
    led.record(req("a", [(3, 3)], Misbehaviour.MALFORMED_JSON), Response(500, latency_s=0.02))  # promised 400
    led.record(req("b", [(4, 0)]), Response(None, error="Timeout: timed out", attempts=3))
    led.record(req("b", [(5, 1)], Misbehaviour.NAN_VALUE), accepted(1))  # bad input accepted
    led.record(req("b", [(6, 2)]), Response(429, attempts=3))  # good request throttled away
    led.record(req("b", [(7, 3)]), Response(202, b'{"accepted": 5}'))  # count disagrees
    assert led.requests == 7 and led.readings == 8 and led.retries == 4
    assert led.accepted_requests == 2 and led.accepted_readings == 3
    assert dict(led.expected_rejections) == {"wrong_key -> 403": 1}
    assert dict(led.unexpected) == {"malformed_json -> 500": 1, "good -> error:Timeout": 1,
                                    "nan_value -> 202": 1, "good -> 429": 1}
    assert led.unexpected_total == 4
    assert led.by_status["error:Timeout"] == 1
    assert led.rejected == {"a": {(2, 2)}, "b": {(6, 2)}}
    assert led.unknown == {"a": {(3, 3)}, "b": {(4, 0), (5, 1)}}
    assert led.count_mismatches == 1
    assert sorted(led.latencies_s) == [0.0, 0.0, 0.01, 0.01, 0.02, 0.02]  # transport errors have no latency


def test_ledger_counts_the_same_reading_acknowledged_twice() -> None:
    led = Ledger()
    led.record(req("a", [(1, 0)]), accepted(1))
    led.record(req("a", [(1, 0)]), accepted(1))
    assert led.accepted_twice == 1 and led.accepted_readings == 1


def stored(*ids: tuple[int, int], t: float | None = None) -> list[StoredReading]:
    """What the reader returns: one reading per (ts, seq); an id given twice was found in two items."""
    return [StoredReading(ts, seq, {"t": float(seq) if t is None else t}, received_at=0, copies=ids.count((ts, seq)))
            for ts, seq in dict.fromkeys(ids)]


def ledger_with(accepted_ids: dict[str, list[tuple[int, int]]], rejected_ids: dict[str, list[tuple[int, int]]] | None = None) -> Ledger:
    led = Ledger()
    for dev, ids in accepted_ids.items():
        led.record(req(dev, ids), accepted(len(ids)))
    for dev, ids in (rejected_ids or {}).items():
        led.record(req(dev, ids, Misbehaviour.STALE_TIMESTAMP), Response(400))
    return led


def test_compare_all_present() -> None:
    led = ledger_with({"a": [(1, 0), (1, 1)], "b": [(2, 0)]})
    v = compare(led, {"a": stored((1, 0), (1, 1), (9, 9)), "b": stored((2, 0))}, Verification())
    assert (v.checked, v.expected, v.stored, v.missing, v.duplicates, v.unexpected, v.corrupted) == (True, 3, 3, 0, 0, 0, 0)
    assert v.ok  # (9, 9) belongs to an earlier run and is ignored


def test_compare_finds_missing_duplicates_rejected_stored_and_corrupted() -> None:
    led = ledger_with({"a": [(1, 0), (1, 1), (1, 2)], "b": [(2, 0)]}, {"a": [(5, 5)]})
    items = {
        "a": stored((1, 0), (1, 1), (1, 1), (5, 5)),  # (1,2) missing, (1,1) twice, rejected (5,5) stored
        "b": stored((2, 0), t=123.0),  # metrics differ
    }
    v = compare(led, items, Verification())
    assert (v.expected, v.stored, v.missing, v.duplicates, v.unexpected, v.corrupted) == (4, 3, 1, 1, 1, 1)
    assert v.missing_examples == ["a ts=1 seq=2"]
    assert not v.ok


def report(led: Ledger, v: Verification, **kw: object) -> FleetReport:
    return FleetReport(ledger=led, verification=v, devices=2, misbehaving_devices=0, send_seconds=1.0,
                       planned_requests=led.requests, **kw)  # type: ignore[arg-type]  # test overrides of mixed types


@pytest.mark.parametrize("items,code", [
    ({"a": stored((1, 0), (1, 1))}, EXIT_OK),
    ({"a": stored((1, 0))}, EXIT_INTEGRITY),  # missing
    ({"a": stored((1, 0), (1, 1), (1, 1))}, EXIT_INTEGRITY),  # duplicate
    ({"a": stored((1, 0), (1, 1), t=99.0)}, EXIT_INTEGRITY),  # values altered on the way
])
def test_exit_code_follows_integrity(items: dict[str, list[StoredReading]], code: int) -> None:
    led = ledger_with({"a": [(1, 0), (1, 1)]})
    assert report(led, compare(led, items, Verification())).exit_code() == code


def test_rejected_but_stored_fails_the_run() -> None:
    led = ledger_with({"a": [(1, 0)]}, {"a": [(3, 3)]})
    assert report(led, compare(led, {"a": stored((1, 0), (3, 3))}, Verification())).exit_code() == EXIT_INTEGRITY


def test_nothing_accepted_or_unverifiable_is_not_success() -> None:
    led = Ledger()
    led.record(req("a", [(1, 0)]), Response(500))
    assert report(led, Verification()).exit_code() == EXIT_NO_SERVICE
    led2 = ledger_with({"a": [(1, 0)]})
    assert report(led2, Verification(error="boom")).exit_code() == EXIT_NO_SERVICE
    assert report(led2, Verification(), verify_requested=False).exit_code() == EXIT_OK


def test_only_expected_rejections_still_pass() -> None:
    led = ledger_with({"a": [(1, 0)]})
    led.record(req("a", [(2, 0)], Misbehaviour.WRONG_KEY), Response(403))
    assert report(led, compare(led, {"a": stored((1, 0))}, Verification())).exit_code() == EXIT_OK


def test_render_and_json_agree(tmp_path: Path) -> None:
    led = ledger_with({"a": [(1, 0), (1, 1)]}, {"a": [(3, 3)]})
    led.latencies_s[:] = [0.010, 0.020, 0.030]
    v = compare(led, {"a": stored((1, 0))}, Verification())
    rep = report(led, v, first_post_to_last_stored_s=None)
    text = rep.render()
    assert "missing" in text and "exit 1" in text and "expected: stale_timestamp -> 400" in text
    rep.write_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["storage"]["missing"] == 1 and data["exitCode"] == 1
    assert data["latencyMs"] == {"p50": 20.0, "p95": 30.0, "p99": 30.0}
    assert data["byStatus"] == {"202": 1, "400": 1}
    assert data["expectedRejections"] == {"stale_timestamp -> 400": 1}
