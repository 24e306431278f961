"""AWS's unit rules, at their boundaries (localcloud/billing_units.py)."""
from __future__ import annotations

import base64

import pytest

from localcloud import billing_units as u


@pytest.mark.parametrize(("attr", "size"), [
    ({"S": "abc"}, 3),
    ({"S": "é"}, 2),  # UTF-8 bytes, not characters
    ({"N": "1"}, 2),  # 1 significant digit -> 1 byte + 1
    ({"N": "12"}, 2),
    ({"N": "123"}, 3),
    ({"N": "1000"}, 2),  # trailing zeroes trimmed
    ({"N": "0.00012"}, 2),  # leading zeroes trimmed
    ({"N": "-12.5"}, 3),  # sign and point are not digits
    ({"B": base64.b64encode(b"\x00" * 10).decode()}, 10),  # raw bytes, not base64 text
    ({"BOOL": True}, 1),
    ({"NULL": True}, 1),
    ({"SS": ["ab", "c"]}, 3),
    ({"M": {}}, 3),  # empty map: 3 bytes of overhead
    ({"M": {"x": {"N": "1"}}}, 3 + 1 + 2 + 1),  # + name + value + 1 byte per element
    ({"L": [{"S": "ab"}, {"S": "c"}]}, 3 + (2 + 1) + (1 + 1)),
])
def test_value_size_follows_the_documented_rules(attr: dict, size: int) -> None:
    assert u.value_size(attr) == size


def test_item_size_adds_attribute_names() -> None:
    assert u.item_size({"deviceId": {"S": "dev-1"}, "n": {"N": "42"}}) == 8 + 5 + 1 + 2
    assert u.item_size(None) == 0 and u.item_size({}) == 0


@pytest.mark.parametrize(("before", "after", "wru"), [
    (0, 0, 1), (0, 1, 1), (0, 1024, 1), (0, 1025, 2), (1025, 10, 2), (2048, 2048, 2), (0, 400 * 1024, 400),
])
def test_write_units_round_the_larger_size_up_per_kb(before: int, after: int, wru: int) -> None:
    assert u.write_units(before, after) == wru


@pytest.mark.parametrize(("size", "consistent", "rru"), [
    (0, True, 1.0), (0, False, 0.5), (4096, True, 1.0), (4096, False, 0.5), (4097, True, 2.0), (4097, False, 1.0),
    (12 * 1024, False, 1.5),
])
def test_read_units_per_4kb_halved_when_eventually_consistent(size: int, consistent: bool, rru: float) -> None:
    assert u.read_units(size, consistent) == rru


@pytest.mark.parametrize(("size", "units", "on_demand"), [
    (1, 1, 1024), (1024, 1, 1024), (1025, 1, 2048), (25 * 1024, 1, 25 * 1024), (25 * 1024 + 1, 2, 26 * 1024),
    (1024 * 1024, 41, 1024 * 1024),
])
def test_kinesis_put_units_per_25kb_and_on_demand_per_kb(size: int, units: int, on_demand: int) -> None:
    assert u.kinesis_put_units(size) == units
    assert u.kinesis_on_demand_bytes(size) == on_demand


@pytest.mark.parametrize(("size", "requests"), [(0, 1), (512 * 1024, 1), (512 * 1024 + 1, 2), (10 * 1024 * 1024, 20)])
def test_http_api_metering_per_512kb(size: int, requests: int) -> None:
    assert u.http_api_requests(size) == requests


def test_sqs_requests_per_64kb_chunk() -> None:
    assert (u.sqs_requests(0), u.sqs_requests(64 * 1024), u.sqs_requests(64 * 1024 + 1)) == (1, 1, 2)


@pytest.mark.parametrize(("ms", "billed"), [(0.0, 1), (0.2, 1), (1.0, 1), (1.0001, 2), (20.5, 21)])
def test_lambda_duration_rounds_up_to_1ms(ms: float, billed: int) -> None:
    assert u.lambda_billed_ms(ms) == billed


def test_modelled_duration_stretches_cpu_below_one_vcpu_only() -> None:
    assert u.modelled_duration_ms(10.0, 5.0, 1769) == pytest.approx(15.0)
    assert u.modelled_duration_ms(10.0, 5.0, 3538) == pytest.approx(15.0)  # more than one vCPU: no speed-up assumed
    assert u.modelled_duration_ms(10.0, 5.0, 1769 // 2 + 0.5) == pytest.approx(25.0)
    assert u.modelled_duration_ms(10.0, 0.0, 128) == pytest.approx(10.0 * 1769 / 128)


def test_service_wait_uses_the_stated_latency_per_call() -> None:
    calls = {"kinesis.PutRecords": 2, "dynamodb.GetItem": 1, "sts.Unknown": 1}
    expected = 2 * u.SERVICE_LATENCY_MS["kinesis.PutRecords"] + u.SERVICE_LATENCY_MS["dynamodb.GetItem"] \
        + u.DEFAULT_SERVICE_LATENCY_MS
    assert u.service_wait_ms(calls) == pytest.approx(expected)
