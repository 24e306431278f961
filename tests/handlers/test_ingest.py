"""Ingest: routing, every bad-input class (right status, field, nothing written), and the happy path."""
from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

import pytest

from admin.readings import read_readings
from handlers.telemetry.compact import MAX_RAW_BYTES
from handlers.telemetry.config import IngestConfig, ProcessorConfig
from handlers.telemetry.ingest_app import IngestResult, handle
from handlers.telemetry.process import process_batch
from handlers.telemetry.records import decode
from handlers_support import NOW_MS, READINGS, VirtualTime, kinesis_event, reading, stream_records, telemetry_event


def run(event: dict[str, Any], kinesis: Any, config: IngestConfig, vtime: VirtualTime) -> IngestResult:
    return handle(event, kinesis=kinesis, config=config, now_ms=NOW_MS, new_backoff=vtime.backoff)


def body(result: IngestResult) -> dict[str, Any]:
    return json.loads(result.response["body"])


def test_health_touches_nothing(vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"health check used kinesis.{name}")

    event = {"version": "2.0", "routeKey": "GET /health", "rawPath": "/health", "requestContext": {}}
    result = run(event, Untouchable(), ingest_config, vtime)
    assert result.response["statusCode"] == 200
    assert body(result) == {"status": "ok"}


def test_unknown_route_is_404(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    event = {"routeKey": "$default", "rawPath": "/nope", "requestContext": {"http": {"method": "GET", "path": "/nope"}}}
    result = run(event, kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == 404
    assert stream_records(kinesis) == []


def test_valid_request_is_accepted_and_written(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    readings = [reading(NOW_MS - i, seq=i, temp=20 + i) for i in range(5)]
    result = run(telemetry_event({"deviceId": "dev-1", "readings": readings}), kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == 202
    assert body(result) == {"accepted": 5, "records": 1, "requestId": "req-1"}
    records = stream_records(kinesis)
    assert len(records) == 1
    assert records[0]["PartitionKey"] == "dev-1"
    assert records[0]["Data"][:1] == b"\x02"  # record version 2: header line + zlib (docs/architecture.md)
    rec = decode(records[0]["Data"], "dev-1")
    assert (rec.device_id, rec.request_id, rec.received_at) == ("dev-1", "req-1", NOW_MS)
    assert [r.seq for r in rec.readings] == [4, 3, 2, 1, 0]  # sorted by (ts, seq): the item's order
    assert rec.readings[2].metrics == {"temp": 22}


def test_base64_body_and_charset_are_accepted(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    event = telemetry_event({"readings": [reading()]}, b64=True, content_type="application/json; charset=UTF-8")
    result = run(event, kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == 202
    assert len(stream_records(kinesis)) == 1


def test_many_small_readings_cost_few_records(kinesis: Any, vtime: VirtualTime) -> None:
    config = IngestConfig(stream_name="telemetry-test", max_readings=1000, max_body_bytes=1_000_000, max_age_s=3600)
    readings = [reading(NOW_MS - i, seq=i, temp=21.5, hum=40.25, volt=3.3) for i in range(1000)]
    result = run(telemetry_event({"readings": readings}), kinesis, config, vtime)
    assert result.response["statusCode"] == 202
    records = stream_records(kinesis)
    assert body(result)["records"] == len(records)
    # No record above one 25 KB payload unit (data + partition key) ...
    assert all(len(r["Data"]) + len("dev-1") <= 25_000 for r in records)
    # ... and few of them: ~75 KB of JSON is cut into 64,000-byte groups, each compressed into one record
    raw = sum(len(json.dumps(r, separators=(",", ":"))) for r in readings)
    assert len(records) == -(-raw // MAX_RAW_BYTES) == 2
    assert sum(len(decode(r["Data"]).readings) for r in records) == 1000


def metric_literal(literal: str, name: str = "x") -> dict[str, Any]:
    """A one-reading request whose metric is the JSON number literal exactly as written."""
    return telemetry_event('{"readings": [{"ts": %d, "metrics": {"ok": 1, "%s": %s}}]}' % (NOW_MS, name, literal), raw=True)


# Numbers that cannot be stored exactly as sent (DynamoDB: 38 digits, magnitude 1E-130..9.99E+125;
# readings travel as 64-bit floats): each must be refused, never stored changed.
NOT_STORABLE_EXACTLY = [
    "1e-400", "-1e-400", "1e-1000000000000000000001", "7e-999999999999999999999999",  # underflow to 0
    "5e-324", "9.999999999999999e-131", "9.99e-131", "-1e-131",  # below 1E-130 (5e-324 is the smallest double)
    "1e126", "1.0e126", "-1e126", "9.9999999999999999e125", "1e400",  # at or above 1E+126 (the last overflows)
    "0.10000000000000001", "1.00000000000000000001", "9007199254740993.0",  # more precision than a double
    "1e1000000000000000000001",
    "100000000000000000000000000000000000000", "-100000000000000000000000000000000000000",  # 39 digits
]
# Numbers at the edges that are stored exactly.
STORABLE_EXACTLY = [
    "1e-130", "1E-130", "-1e-130", "1.0e-130", "9.99e125", "-9.99e125", "9.999999999999998e125",
    "99999999999999999999999999999999999999", "-99999999999999999999999999999999999999",  # 38 digits
    "0.1", "0.30000000000000004", "1E5", "2.50", "0", "0.0", "-0.0", "0e-500", "0.0e-1000000000000000000001", "5e-130", "123456789012345680000.0",
]


# Each case: (event, expected status, error code, field, index)
BAD_INPUTS: dict[str, tuple[dict[str, Any], int, str, str | None, int | None]] = {
    "malformed json": (telemetry_event('{"readings": [', raw=True), 400, "invalid_json", "body", None),
    "empty body": (telemetry_event("", raw=True), 400, "invalid_json", "body", None),
    "invalid base64": ({**telemetry_event({}), "body": "@@@not base64", "isBase64Encoded": True}, 400, "invalid_json", "body", None),
    "lone surrogate": ({**telemetry_event({}), "body": '{"readings": "\ud800"}'}, 400, "invalid_json", "body", None),
    "invalid utf-8": (telemetry_event(b"\xff\xfe{}", raw=True, b64=True), 400, "invalid_json", "body", None),
    "not an object": (telemetry_event([1, 2]), 400, "invalid_request", "body", None),
    "missing readings": (telemetry_event({"deviceId": "dev-1"}), 400, "invalid_request", "readings", None),
    "unknown property": (telemetry_event({"readings": [reading()], "extra": 1}), 400, "invalid_request", "extra", None),
    "readings not a list": (telemetry_event({"readings": {"ts": 1}}), 400, "invalid_request", "readings", None),
    "empty readings": (telemetry_event({"readings": []}), 400, "invalid_request", "readings", None),
    "too many readings": (telemetry_event({"readings": [reading(seq=i) for i in range(101)]}), 400, "invalid_request", "readings", None),
    "ts is a string": (telemetry_event({"readings": [reading(), {"ts": "now", "metrics": {"t": 1}}]}), 400, "invalid_request", "readings[1].ts", 1),
    "ts missing": (telemetry_event({"readings": [{"metrics": {"t": 1}}]}), 400, "invalid_request", "readings[0].ts", 0),
    "negative seq": (telemetry_event({"readings": [reading(seq=-1)]}), 400, "invalid_request", "readings[0].seq", 0),
    "metric is a string": (telemetry_event({"readings": [reading(), reading(), reading(), reading(temp="hot")]}), 400, "invalid_request", "readings[3].metrics.temp", 3),
    "metric is a bool": (telemetry_event({"readings": [reading(on=True)]}), 400, "invalid_request", "readings[0].metrics.on", 0),
    "no metrics": (telemetry_event({"readings": [{"ts": NOW_MS, "metrics": {}}]}), 400, "invalid_request", "readings[0].metrics", 0),
    "NaN literal": (telemetry_event('{"readings": [{"ts": %d, "metrics": {"temp": NaN}}]}' % NOW_MS, raw=True), 400, "invalid_request", "readings[0].metrics.temp", 0),
    "Infinity literal": (telemetry_event('{"readings": [{"ts": %d, "metrics": {"a": 1, "b": -Infinity}}]}' % NOW_MS, raw=True), 400, "invalid_request", "readings[0].metrics.b", 0),
    "overflow to infinity": (telemetry_event('{"readings": [{"ts": %d, "metrics": {"big": 1e400}}]}' % NOW_MS, raw=True), 400, "invalid_request", "readings[0].metrics.big", 0),
    "beyond DynamoDB range": (telemetry_event({"readings": [reading(huge=1e200)]}), 400, "invalid_request", "readings[0].metrics.huge", 0),
    **{f"not storable exactly: {literal}": (metric_literal(literal), 400, "invalid_request", "readings[0].metrics.x", 0)
       for literal in NOT_STORABLE_EXACTLY},
    "bad metric name": (telemetry_event({"readings": [reading(), {"ts": NOW_MS, "metrics": {"ok": 1, "bad name!": 2}}]}), 400, "invalid_request", "readings[1].metrics.bad name!", 1),
    "ts too old": (telemetry_event({"readings": [reading(), reading(NOW_MS - 3601_000)]}), 400, "invalid_request", "readings[1].ts", 1),
    "ts too far in future": (telemetry_event({"readings": [reading(NOW_MS + 61_000)]}), 400, "invalid_request", "readings[0].ts", 0),
    "oversized body": (telemetry_event({"readings": [reading(pad=1)], "deviceId": "x" * 70_000}), 413, "payload_too_large", "body", None),
    "oversized base64 body": (telemetry_event({"readings": [reading()], "deviceId": "x" * 70_000}, b64=True), 413, "payload_too_large", "body", None),
    "wrong content type": (telemetry_event({"readings": [reading()]}, content_type="text/plain"), 415, "unsupported_media_type", "content-type", None),
    "missing content type": (telemetry_event({"readings": [reading()]}, content_type=None), 415, "unsupported_media_type", "content-type", None),
    "non-utf8 charset": (telemetry_event({"readings": [reading()]}, content_type="application/json; charset=latin-1"), 415, "unsupported_media_type", "content-type", None),
    "spoofed deviceId": (telemetry_event({"deviceId": "dev-2", "readings": [reading()]}), 403, "device_mismatch", "deviceId", None),
    # A repeated key would let the body say one deviceId to a reader that keeps the first and another to us.
    "duplicate key": (telemetry_event('{"deviceId": "dev-2", "deviceId": "dev-1", "readings": [{"ts": %d, "metrics": {"t": 1}}]}' % NOW_MS, raw=True),
                      400, "invalid_json", "deviceId", None),
    "integer literal too long": (telemetry_event('{"readings": [{"ts": %d, "metrics": {"t": %s}}]}' % (NOW_MS, "9" * 5000), raw=True),
                                 400, "invalid_json", "body", None),
    "metric name with trailing newline": (telemetry_event({"readings": [{"ts": NOW_MS, "metrics": {"t\n": 1}}]}), 400, "invalid_request", "readings[0].metrics.t\n", 0),
    "ts and seq repeated": (telemetry_event({"readings": [reading(seq=0), reading(seq=1), reading(seq=0)]}), 400, "invalid_request", "readings[2].seq", 2),
    "same ts without seq": (telemetry_event({"readings": [reading(), reading()]}), 400, "invalid_request", "readings[1].seq", 1),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_rejected_naming_the_field_and_writes_nothing(
    case: str, kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig
) -> None:
    event, status, error, field, index = BAD_INPUTS[case]
    result = run(event, kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == status, body(result)
    assert result.response["headers"]["content-type"] == "application/json"
    payload = body(result)
    assert payload["error"] == error
    assert payload["field"] == field
    assert payload.get("index") == index
    assert isinstance(payload["message"], str) and payload["message"]
    assert result.rejected_request and result.accepted == 0
    assert stream_records(kinesis) == []


def test_one_bad_reading_rejects_the_whole_request(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    readings = [reading(seq=i) for i in range(10)] + [{"ts": NOW_MS, "metrics": {"t": "x"}}]
    result = run(telemetry_event({"readings": readings}), kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == 400
    assert result.rejected_readings == 11
    assert stream_records(kinesis) == []


def test_request_without_authorizer_context_is_refused(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    result = run(telemetry_event({"readings": [reading()]}, device_id=None), kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == 500
    assert stream_records(kinesis) == []


def test_float_integer_ts_is_normalised(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    event = telemetry_event('{"readings": [{"ts": %d.0, "seq": 2.0, "metrics": {"t": 1}}]}' % NOW_MS, raw=True)
    result = run(event, kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == 202
    (first,) = decode(stream_records(kinesis)[0]["Data"]).readings
    assert first.ts == NOW_MS and isinstance(first.ts, int)
    assert first.seq == 2 and isinstance(first.seq, int)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literal_is_named_in_the_message(literal: str, kinesis: Any, vtime: VirtualTime,
                                                    ingest_config: IngestConfig) -> None:
    event = telemetry_event('{"readings": [{"ts": %d, "metrics": {"t": %s}}]}' % (NOW_MS, literal), raw=True)
    result = run(event, kinesis, ingest_config, vtime)
    payload = body(result)
    assert (result.response["statusCode"], payload["field"]) == (400, "readings[0].metrics.t")
    assert literal in payload["message"] and "finite" in payload["message"], payload["message"]
    assert stream_records(kinesis) == []


def test_a_timestamp_in_seconds_is_named_as_such(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    result = run(telemetry_event({"readings": [reading(NOW_MS // 1000)]}), kinesis, ingest_config, vtime)
    payload = body(result)
    assert (result.response["statusCode"], payload["field"]) == (400, "readings[0].ts")
    assert "looks like seconds" in payload["message"]
    stale = run(telemetry_event({"readings": [reading(NOW_MS - 3601_000)]}), kinesis, ingest_config, vtime)
    assert "looks like seconds" not in body(stale)["message"]  # a stale millisecond ts gets no such hint
    assert stream_records(kinesis) == []


def test_not_storable_number_is_refused_saying_why(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    messages = {literal: body(run(metric_literal(literal), kinesis, ingest_config, vtime))["message"]
                for literal in ("1e-400", "1e126", "0.10000000000000001")}
    assert messages["1e-400"] == "readings[0].metrics.x is 1e-400, outside DynamoDB's number range 1E-130..9.99E+125"
    assert messages["1e126"] == "readings[0].metrics.x is 1e+126, outside DynamoDB's number range 1E-130..9.99E+125"
    assert messages["0.10000000000000001"].startswith(
        "readings[0].metrics.x is 0.10000000000000001, which has more precision than a 64-bit float carries "
        "(it would be stored as 0.1)")
    assert stream_records(kinesis) == []


def test_inexact_number_outside_a_metric_names_its_field(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    event = telemetry_event('{"readings": [{"ts": %d.000000000000000001, "metrics": {"t": 1}}]}' % NOW_MS, raw=True)
    payload = body(run(event, kinesis, ingest_config, vtime))
    assert payload["field"] == "readings[0].ts" and "more precision" in payload["message"]
    assert stream_records(kinesis) == []


def test_boundary_numbers_are_stored_exactly_as_sent(
    kinesis: Any, dynamodb: Any, vtime: VirtualTime, ingest_config: IngestConfig, processor_config: ProcessorConfig
) -> None:
    """Ingest accepts each literal, the processor stores the very number that was sent (as a JSON number
    inside the item's compressed readings), and the reader gives it back."""
    names = [f"m{i}" for i in range(len(STORABLE_EXACTLY))]
    metrics = ", ".join(f'"{name}": {literal}' for name, literal in zip(names, STORABLE_EXACTLY, strict=False))
    event = telemetry_event('{"readings": [{"ts": %d, "metrics": {%s}}]}' % (NOW_MS, metrics), raw=True)
    result = run(event, kinesis, ingest_config, vtime)
    assert result.response["statusCode"] == 202, body(result)
    batch = kinesis_event([(r["SequenceNumber"], r["Data"], r["PartitionKey"]) for r in stream_records(kinesis)])
    outcome = process_batch(batch, dynamodb=dynamodb, config=processor_config, new_backoff=vtime.backoff)
    assert outcome.response() == {"batchItemFailures": []}
    stored: dict[str, Decimal] = {}
    for item in dynamodb.scan(TableName=READINGS)["Items"]:
        for r in json.loads(zlib.decompress(item["readings"]["B"]), parse_float=Decimal, parse_int=Decimal):
            stored.update(r["metrics"])
    (back,) = read_readings(dynamodb, READINGS, "dev-1", NOW_MS, NOW_MS + 1)
    for name, literal in zip(names, STORABLE_EXACTLY, strict=False):
        assert stored[name] == exact_value(literal), (literal, stored[name])
        value = back.metrics[name]
        assert Decimal(repr(value) if isinstance(value, float) else value) == exact_value(literal), (literal, value)


def exact_value(literal: str) -> Decimal:
    """Decimal(literal), except that a zero with an exponent beyond Decimal's limits is 0."""
    mantissa = literal.lower().split("e")[0]
    return Decimal(0) if mantissa.strip("-0.") == "" else Decimal(literal)


