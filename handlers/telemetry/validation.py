"""Request-body checks for POST /v1/telemetry.

The JSON Schema (telemetry.schema.json) is the published contract and is
compiled once per container. This module adds what a schema cannot say:
content type, body size, finite numbers, numbers stored exactly as sent (or
refused), the accepted ts window and the per-deployment readings limit. Every rejection is a
RequestError naming the field (``readings[3].metrics.temp``) and the reading
index, so a device can tell exactly what to fix.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import fastjsonschema

from .responses import RequestError

SCHEMA_PATH = Path(__file__).with_name("telemetry.schema.json")
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
_validate_schema = fastjsonschema.compile(SCHEMA)

# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 .. 9.9999999999999999999999999999999999999E+125.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number
# A float is stored as the decimal repr() gives (storage.number). float(1e126) is the double nearest
# 10**126 and float(1e-130) the one nearest 10**-130, so comparing floats with them gives the same
# answer as comparing those decimals with 10**126 and 10**-130 exactly.
_DDB_MAX_ABS = 1e126  # exclusive
_DDB_MIN_ABS = 1e-130
_DDB_MAX_INT = 10**38
_DDB_RANGE = "DynamoDB's number range 1E-130..9.99E+125"


class NonFinite:
    """Stands in for a NaN/Infinity literal so the schema rejects it *at its path*.

    Python's json.loads accepts NaN, Infinity and -Infinity although JSON does
    not; parse_constant turns them into this marker, which is not a number, so
    the type check reports the exact field.
    """

    def __init__(self, literal: str) -> None:
        self.literal = literal

    def __repr__(self) -> str:
        return self.literal


class Inexact:
    """Stands in for a number literal that would not be stored as sent, so the schema rejects it *at its path*.

    Readings travel as 64-bit floats (Kinesis record JSON, then the decimal repr() gives). A literal
    whose value differs from its float's is refused rather than changed: ``1e-400`` (underflows to 0),
    ``1e400`` (overflows to infinity), ``0.10000000000000001`` (17 digits, stored as 0.1).
    """

    def __init__(self, literal: str, nearest: float) -> None:
        self.literal = literal
        self.nearest = nearest

    def __repr__(self) -> str:
        return self.literal

    def problem(self) -> str:
        exact = _decimal(self.literal)
        if exact is None or (exact and not Decimal("1E-130") <= abs(exact) < Decimal("1E+126")):
            return f"is {self.literal}, outside {_DDB_RANGE}"
        return (f"is {self.literal}, which has more precision than a 64-bit float carries (it would be "
                f"stored as {self.nearest!r}); send the shortest decimal that reads back as the same double, "
                "as JSON encoders in Python, JavaScript, Java and Go print it")


def _exact_float(literal: str) -> float | Inexact:
    """json.loads' parse_float: the float, or an Inexact marker if that float is not the literal's value."""
    value = float(literal)
    text = repr(value)
    if text == literal:  # what JSON encoders print: the common case costs no Decimal
        return value
    if math.isfinite(value):
        exact = _decimal(literal)
        if exact is None:  # an exponent beyond 10**18 digits: only an all-zero literal is a finite value
            if value == 0 and not re.search(r"[1-9]", re.split(r"[eE]", literal)[0]):
                return value
        elif Decimal(text) == exact:
            return value
    return Inexact(literal, value)


def _decimal(literal: str) -> Decimal | None:
    """The exact value of a JSON number literal, or None if its exponent is beyond what Decimal holds."""
    try:
        return Decimal(literal)
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class Reading:
    ts: int
    seq: int
    metrics: dict[str, int | float]

    def as_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "seq": self.seq, "metrics": self.metrics}


def header(headers: dict[str, str] | None, name: str) -> str | None:
    """Header lookup; payload 2.0 lowercases names, but tolerate others too."""
    if not headers:
        return None
    if name in headers:
        return headers[name]
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def check_content_type(headers: dict[str, str] | None) -> None:
    raw = header(headers, "content-type")
    if raw is None:
        raise RequestError(415, "unsupported_media_type", "content-type header is required: application/json", "content-type")
    media_type, *params = [part.strip() for part in raw.split(";")]
    if media_type.lower() != "application/json":
        raise RequestError(415, "unsupported_media_type", f"content-type must be application/json, got {media_type!r}", "content-type")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestError(415, "unsupported_media_type", "JSON bodies must be UTF-8 (charset=utf-8)", "content-type")


def body_bytes(event: dict[str, Any], max_bytes: int) -> bytes:
    """The request body as bytes, base64-decoded if API Gateway encoded it."""
    body = event.get("body")
    if body is None:
        raise RequestError(400, "invalid_json", "request body is empty; send a JSON object", "body")
    if event.get("isBase64Encoded"):
        # Cheap pre-check: base64 is 4 chars per 3 bytes; don't decode something far too big.
        if len(body) // 4 * 3 > max_bytes + 3:
            raise RequestError(413, "payload_too_large", f"body exceeds {max_bytes} bytes", "body")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "invalid_json", "body is marked base64 but is not valid base64", "body") from None
    else:
        raw = body.encode("utf-8", "surrogatepass")  # a lone surrogate then fails UTF-8 decoding with a clear 400
    if len(raw) > max_bytes:
        raise RequestError(413, "payload_too_large", f"body is {len(raw)} bytes; the limit is {max_bytes}", "body")
    return raw


def parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, "invalid_json", f"body is not valid UTF-8 (byte {exc.start})", "body") from None
    if not text.strip():
        raise RequestError(400, "invalid_json", "request body is empty; send a JSON object", "body")
    try:
        return json.loads(text, parse_constant=NonFinite, parse_float=_exact_float, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise RequestError(400, "invalid_json", f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "body") from None
    except DuplicateKey as exc:
        raise RequestError(400, "invalid_json", f"key {exc.key!r} appears more than once in one JSON object", exc.key) from None
    except RecursionError:
        raise RequestError(400, "invalid_json", "JSON is nested too deeply", "body") from None
    except ValueError:
        # Python refuses integer literals over 4,300 digits with a plain ValueError
        # (https://docs.python.org/3/library/stdtypes.html#int-max-str-digits).
        raise RequestError(400, "invalid_json", "a number in the body has too many digits", "body") from None


class DuplicateKey(ValueError):
    """JSON allows a repeated key and Python keeps the last; we refuse it, so a
    body cannot say one deviceId to a reader that keeps the first and another to us."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return out


def _field_path(parts: list[Any]) -> tuple[str, int | None]:
    """['data', 'readings', '3', 'metrics', 'temp'] -> ('readings[3].metrics.temp', 3)."""
    out = ""
    index: int | None = None
    previous = None
    for part in parts[1:]:  # parts[0] is fastjsonschema's "data"
        text = str(part)
        if text.isdigit() and previous is not None:
            out += f"[{text}]"
            if previous == "readings" and index is None:
                index = int(text)
        else:
            out += ("." if out else "") + text
        previous = text
    return out, index


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _schema_error(exc: fastjsonschema.JsonSchemaValueException) -> RequestError:
    path, index = _field_path(list(exc.path or ["data"]))
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    value = exc.value
    message = exc.message.replace(exc.name, path or "body", 1) if exc.name else exc.message
    if exc.rule == "type" and isinstance(value, NonFinite):
        message = f"{path} is {value.literal}; only finite numbers are allowed"
    elif exc.rule == "type" and isinstance(value, Inexact) and definition.get("type") in ("number", "integer"):
        message = f"{path} {value.problem()}"
    elif exc.rule == "required" and isinstance(value, dict):
        missing = [key for key in definition.get("required", []) if key not in value]
        if missing:
            path = _join(path, missing[0])
            message = f"{path} is required"
    elif exc.rule == "additionalProperties" and isinstance(value, dict):
        extra = [key for key in value if key not in definition.get("properties", {})]
        if extra:
            path = _join(path, str(extra[0]))
            message = f"{path} is not an allowed property"
    elif exc.rule == "propertyNames" and isinstance(value, dict):
        pattern = re.compile(definition.get("propertyNames", {}).get("pattern", ".*"))
        bad = [key for key in value if not pattern.fullmatch(key)]  # "$" alone would accept a trailing newline
        if bad:
            path = _join(path, bad[0])
            message = f"metric name {bad[0]!r} must match {pattern.pattern}"
    return RequestError(400, "invalid_request", message, path or "body", index)


def number_problem(value: int | float) -> str | None:
    """Why DynamoDB could not store this number, or None if it can (shared with the processor)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "is not finite; only finite numbers are allowed"
        if value != 0 and not _DDB_MIN_ABS <= abs(value) < _DDB_MAX_ABS:
            return f"is {value!r}, outside {_DDB_RANGE}"
    elif abs(value) >= _DDB_MAX_INT:
        return "has more than 38 digits (DynamoDB's number precision)"
    return None


def _check_number(value: int | float, field: str, index: int) -> None:
    problem = number_problem(value)
    if problem is not None:
        raise RequestError(400, "invalid_request", f"{field} {problem}", field, index)


def validate_document(
    doc: Any,
    *,
    authorised_device_id: str,
    max_readings: int,
    now_ms: int,
    max_age_s: int,
    max_future_skew_s: int,
) -> list[Reading]:
    """Check a parsed body completely; return normalised readings or raise RequestError."""
    readings = doc.get("readings") if isinstance(doc, dict) else None
    if isinstance(readings, list) and len(readings) > max_readings:
        raise RequestError(400, "invalid_request", f"{len(readings)} readings in one request; the limit is {max_readings}", "readings")
    try:
        _validate_schema(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _schema_error(exc) from None
    claimed = doc.get("deviceId")
    if claimed is not None and claimed != authorised_device_id:
        raise RequestError(403, "device_mismatch", "deviceId in the body differs from the authenticated device", "deviceId")
    oldest = now_ms - max_age_s * 1000
    newest = now_ms + max_future_skew_s * 1000
    out: list[Reading] = []
    first_index: dict[tuple[int, int], int] = {}
    for i, item in enumerate(doc["readings"]):
        ts = int(item["ts"])  # the schema allows 5.0 as an integer; store it as 5
        if ts < oldest:
            hint = ""
            if oldest // 1000 - max_age_s <= ts <= newest // 1000:  # right as seconds: say so
                hint = "; ts is epoch milliseconds, and this looks like seconds"
            raise RequestError(400, "invalid_request", f"readings[{i}].ts is more than {max_age_s} s in the past{hint}",
                               f"readings[{i}].ts", i)
        if ts > newest:
            raise RequestError(400, "invalid_request", f"readings[{i}].ts is more than {max_future_skew_s} s in the future", f"readings[{i}].ts", i)
        for name, value in item["metrics"].items():
            _check_number(value, f"readings[{i}].metrics.{name}", i)
        seq = int(item.get("seq", 0))
        earlier = first_index.setdefault((ts, seq), i)
        if earlier != i:
            # Both would be stored under one key and one would silently vanish.
            raise RequestError(400, "invalid_request", f"readings[{i}] has the same ts and seq as readings[{earlier}]; "
                               "give readings with the same ts distinct seq values", f"readings[{i}].seq", i)
        out.append(Reading(ts=ts, seq=seq, metrics=dict(item["metrics"])))
    return out
