"""The published JSON Schema and the Kinesis record format."""
from __future__ import annotations

import json

import fastjsonschema
import pytest

from handlers.telemetry.device_keys import DEVICE_ID_PATTERN
from handlers.telemetry.records import MAX_RECORD_BYTES, PoisonRecord, decode, pack
from handlers.telemetry.validation import SCHEMA, SCHEMA_PATH, Reading


def test_schema_is_draft7_and_matches_the_documented_example() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    validate = fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text()))
    example = {"deviceId": "dev-1", "readings": [{"ts": 1_700_000_000_000, "seq": 3, "metrics": {"temp": 21.5, "rssi": -70}}]}
    assert validate(example) == example
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate({"readings": [{"ts": 1, "metrics": {"temp": "warm"}}]})


def test_schema_device_id_pattern_matches_the_registry() -> None:
    assert SCHEMA["properties"]["deviceId"]["pattern"] == DEVICE_ID_PATTERN.pattern


def test_pack_round_trips_through_decode() -> None:
    readings = [Reading(1_700_000_000_000 + i, i, {"t": i * 0.5, "n": i}) for i in range(3)]
    (data,) = pack("dev-1", "req-9", 42, readings[::-1])
    assert data[:1] == b"\x02"  # version 2: header line + zlib of the canonical readings
    decoded = decode(data, "dev-1")
    assert (decoded.device_id, decoded.request_id, decoded.received_at) == ("dev-1", "req-9", 42)
    assert decoded.readings == readings  # sorted by (ts, seq)


def test_pack_splits_at_the_payload_unit_and_keeps_order() -> None:
    rng = __import__("random").Random(3)  # values that do not compress away
    readings = [Reading(1_700_000_000_000 + i, i, {f"metric{k}": rng.random() for k in range(40)}) for i in range(200)]
    records = pack("dev-1", "req", 1, readings)
    assert len(records) > 1
    assert all(len(r) + len("dev-1") <= MAX_RECORD_BYTES for r in records)
    assert [x.seq for r in records for x in decode(r).readings] == list(range(200))


def test_decode_rejects_device_id_that_could_not_be_a_partition_key() -> None:
    doc = {"v": 1, "deviceId": "", "requestId": "r", "receivedAt": 1, "readings": [{"ts": 1, "metrics": {"a": 1}}]}
    with pytest.raises(PoisonRecord):
        decode(json.dumps(doc).encode())
