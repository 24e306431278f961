"""The `greedy` misbehaviour: who is greedy, how often it sends, how its 429s are told apart and reported."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest

from fleet.client import ApiClient, Response, is_quota_refusal
from fleet.config import ConfigError, FleetConfig, build_parser, config_from_args
from fleet.devices import Credentials, OutgoingRequest, build_fleet
from fleet.ledger import Ledger
from fleet.report import EXIT_OK, FleetReport
from fleet.runner import send_slots
from fleet.scheduler import plan
from fleet.verify import Verification

QUOTA_BODY = {"error": "quota_exceeded", "message": "m", "field": None, "quota": 100, "used": 120,
              "resetsAt": "2026-12-02T00:00:00Z"}


def quota_429() -> Response:
    return Response(429, json.dumps(QUOTA_BODY).encode(), {"retry-after": "50000"})


def throttle_429() -> Response:
    return Response(429, b'{"message":"Too Many Requests"}', {})


def creds(n: int) -> list[Credentials]:
    return [Credentials(f"dev-{i}", f"key-{i}") for i in range(n)]


def test_greedy_devices_are_chosen_among_the_well_behaved() -> None:
    fleet = build_fleet(creds(10), payload_metrics=2, misbehaving_share=0.3, rng=random.Random(1), greedy=2)
    greedy = [d for d in fleet if d.greedy]
    assert len(greedy) == 2 and not any(d.misbehaving for d in greedy)
    assert sum(d.misbehaving for d in fleet) == 3
    request = greedy[0].next_request(5, 1_750_000_000_000)
    assert request.greedy and request.misbehaviour is None and len(request.readings) == 5
    assert request.expected_statuses == frozenset({202, 429})


def test_a_greedy_device_sends_factor_times_as_often_within_the_fleets_rate() -> None:
    fleet = build_fleet(creds(4), payload_metrics=2, misbehaving_share=0.0, rng=random.Random(2), greedy=1)
    config = FleetConfig(api_url="http://x", devices=4, rate=13.0, greedy=1, greedy_factor=10.0)
    slots, rate = send_slots(fleet, config)
    assert len(slots) == 13 and rate == 13.0  # --rate stays the whole fleet's rate
    sends = [d for _, d in plan(slots, rate=rate, duration=20.0, jitter=0.0, rng=random.Random(3))]
    greedy = next(d for d in fleet if d.greedy)
    calm = next(d for d in fleet if not d.greedy)
    assert sum(d is greedy for d in sends) == 200  # ten a second
    assert sum(d is calm for d in sends) == 20  # one a second
    assert len(sends) == 260


def test_only_the_quota_429_is_final() -> None:
    assert is_quota_refusal(quota_429()) and not is_quota_refusal(throttle_429())

    class Scripted(ApiClient):
        def __init__(self, answers: list[Response]) -> None:
            super().__init__("http://127.0.0.1:9", retries=2, sleep=lambda s: None)
            self.answers = answers

        def _once(self, *args: Any) -> Response:
            return self.answers.pop(0)

    final = Scripted([quota_429(), Response(202, b"{}")]).post_telemetry({}, b"")
    assert final.status == 429 and final.attempts == 1  # not retried: Retry-After is next midnight
    retried = Scripted([throttle_429(), Response(202, b"{}")]).post_telemetry({}, b"")
    assert retried.status == 202 and retried.attempts == 2


def greedy_request(seq: int) -> OutgoingRequest:
    return OutgoingRequest("g", {}, b"{}", {(1, seq): {"t": 1.0}}, None, greedy=True)


def test_ledger_counts_the_cut_off_as_expected_and_keeps_the_refused_readings() -> None:
    led = Ledger()
    led.record(greedy_request(0), Response(202, b'{"accepted":1}'))
    led.record(greedy_request(1), quota_429())
    led.record(greedy_request(2), quota_429())
    led.record(greedy_request(3), throttle_429())  # the stage throttle is not the quota
    good = OutgoingRequest("c", {}, b"{}", {(1, 9): {"t": 1.0}})
    led.record(good, quota_429())  # a device that is not greedy should never be refused
    assert led.expected_rejections == {"greedy -> 429 quota_exceeded": 2}
    assert led.unexpected == {"greedy -> 429": 1, "good -> 429": 1}
    assert set(led.accepted["g"]) == {(1, 0)}
    assert led.rejected["g"] == {(1, 1), (1, 2), (1, 3)}  # the read-back must find none of these stored
    assert led.quota_refusals == {"g": 2} and led.first_quota_refusal["g"]["used"] == 120


def test_report_shows_the_cut_off() -> None:
    led = Ledger()
    for seq in range(3):
        led.record(greedy_request(seq), Response(202, b'{"accepted":1}'))
    led.record(greedy_request(9), quota_429())
    v = Verification(checked=True, expected=3, stored=3)
    rep = FleetReport(ledger=led, verification=v, devices=1, misbehaving_devices=0, send_seconds=1.0,
                      planned_requests=4, greedy_quota=2, greedy_devices=["g"])
    (summary,) = rep.to_json()["greedy"]
    assert summary == {"deviceId": "g", "quota": 2, "readingsAccepted": 3, "overshoot": 1, "quotaRefusals": 1,
                       "firstRefusal": QUOTA_BODY}
    text = rep.render()
    assert "greedy g" in text and "refused 429 quota_exceeded" in text and "overshoot 1" in text
    assert rep.exit_code() == EXIT_OK


def test_greedy_options_default_on_for_the_demo_only_and_are_validated() -> None:
    assert config_from_args(build_parser().parse_args(["demo"]), api_url="http://x").greedy == 1
    assert config_from_args(build_parser().parse_args(["run", "--api-url", "http://x"])).greedy == 0
    for bad in (dict(greedy=-1), dict(greedy=6), dict(greedy_quota=-1), dict(greedy_factor=0.5)):
        with pytest.raises(ConfigError, match="--greedy"):
            FleetConfig(api_url="http://x", devices=5, **bad).validate()  # type: ignore[arg-type]  # deliberately bad values of mixed types
