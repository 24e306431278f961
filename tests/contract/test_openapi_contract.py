"""docs/openapi.yaml against the code: valid OpenAPI 3.1, the published body schema by reference,
and every status (with its error code) the ingest function and the gateway answer documented."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from contract_support import BODY_REF, BODY_SCHEMA, OPENAPI, PROJECT_DIR, load_doc, response_validator
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

TELEMETRY = ("/v1/telemetry", "post")
HEALTH = ("/health", "get")
HANDLER_SOURCES = sorted((PROJECT_DIR / "handlers").rglob("*.py"))
# API Gateway's answers, as the local cloud mirrors them: gateway_error(...) and framing Refusal(...) calls.
GATEWAY_SOURCES = [PROJECT_DIR / "localcloud" / "gateway.py", PROJECT_DIR / "localcloud" / "http_framing.py"]
# Answers only the local gateway gives (see localcloud/gateway.py's docstring and docs/architecture.md).
# Error bodies with more than {error, message, field[, index]} (handlers/telemetry/quota_refusal.py).
EXTRA_FIELDS: dict[str, dict[str, Any]] = {"quota_exceeded": {"quota": 1000, "used": 1000, "resetsAt": "2026-12-02T00:00:00Z"}}
LOCAL_ONLY = {
    411: "the local gateway needs Content-Length; API Gateway also takes chunked bodies",
    408: "the local gateway's slow-body cut-off; API Gateway publishes no such timeout for HTTP APIs",
}


def _int(node: ast.AST, constants: dict[str, int] | None = None) -> int | None:
    if isinstance(node, ast.Name) and constants and node.id in constants:
        return constants[node.id]
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, int) else None


def _module_ints(path: Path) -> dict[str, int]:
    """Module-level NAME = <int> constants (e.g. QUOTA_STATUS = 429)."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _int(node.value)
            if value is not None:
                found[node.targets[0].id] = value
    return found


def _str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _calls(path: Path, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == name or getattr(n.func, "attr", None) == name)]


def handler_answers() -> set[tuple[int, str | None]]:
    """(status, error code) of every RequestError and json_response the handlers build from literals."""
    found: set[tuple[int, str | None]] = set()
    for path in HANDLER_SOURCES:
        constants = _module_ints(path)
        for call in _calls(path, "RequestError"):
            status = _int(call.args[0], constants) if call.args else None
            if status is not None:
                found.add((status, _str(call.args[1])))
        for call in _calls(path, "json_response"):
            status = _int(call.args[0], constants) if call.args else None
            if status is None:
                continue
            body = call.args[1] if len(call.args) > 1 else None
            code = None
            if isinstance(body, ast.Name):  # body = {...} just before the call
                body = next((n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Assign)
                             and any(isinstance(t, ast.Name) and t.id == body.id for t in n.targets)
                             and isinstance(n.value, ast.Dict) and _dict_error(n.value)), body)
            if isinstance(body, ast.Dict):
                code = _dict_error(body)
            found.add((status, code))
    return found


def _dict_error(node: ast.Dict) -> str | None:
    return next((_str(v) for k, v in zip(node.keys, node.values, strict=True) if k and _str(k) == "error"), None)


def error_codes_in_handlers() -> set[str]:
    """Every literal "error": "<code>" the handlers put in a body."""
    codes = set()
    for path in HANDLER_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if k is not None and _str(k) == "error" and _str(v):
                        codes.add(str(_str(v)))
    return codes | {str(c) for _, c in handler_answers() if c}


def gateway_answers() -> set[tuple[int, str]]:
    found = set()
    for path in GATEWAY_SOURCES:
        for call in [*_calls(path, "gateway_error"), *_calls(path, "Refusal")]:
            status = _int(call.args[0]) if call.args else None
            message = _str(call.args[1]) if len(call.args) > 1 else None
            if status is not None and message is not None:
                found.add((status, message))
    return found


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load_doc()


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    spec, base_uri = read_from_filename(str(OPENAPI))
    validate(spec, base_uri=base_uri)  # raises on any violation of the OpenAPI 3.1 schema


def test_body_is_the_published_schema_by_reference(doc: dict[str, Any]) -> None:
    body = doc["paths"]["/v1/telemetry"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"] == {"application/json": {"schema": {"$ref": BODY_REF}}}
    assert (OPENAPI.parent / BODY_REF).resolve() == BODY_SCHEMA.resolve()
    # no second copy: nothing in the document spells out the readings or their metrics
    assert not any(key in json.dumps(doc) for key in ('"readings":', '"metrics":', '"ts":'))


def test_security_is_the_device_headers(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert {(s["type"], s["in"], s["name"]) for s in schemes.values()} == {
        ("apiKey", "header", "x-device-id"), ("apiKey", "header", "x-device-key")}
    assert doc["paths"]["/v1/telemetry"]["post"]["security"] == [{name: [] for name in schemes}]
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_every_handler_answer_is_documented_with_its_body(doc: dict[str, Any]) -> None:
    answers = handler_answers()
    assert {s for s, _ in answers} >= {200, 202, 400, 403, 404, 413, 415, 500}  # the scan sees the handlers
    for status, code in answers:
        route = HEALTH if status == 200 else TELEMETRY
        validator = response_validator(doc, *route, status)
        assert validator is not None, f"{status} ({code}) is answered by the handlers but not documented"
        if code is not None:
            body = {"error": code, "message": "m", "field": None, **EXTRA_FIELDS.get(code, {})}
            assert not list(validator.iter_errors(body)), f"{status} {code}: body not allowed by the document"
    unavailable = doc["paths"]["/v1/telemetry"]["post"]["responses"]["503"]
    assert unavailable["headers"]["retry-after"]["required"] is True
    validator = response_validator(doc, *TELEMETRY, 503)
    assert validator is not None and validator.is_valid({"error": "unavailable", "message": "busy", "field": None})


def test_every_error_code_is_documented_somewhere(doc: dict[str, Any]) -> None:
    documented = {c for name, s in doc["components"]["schemas"].items() if name.startswith("Error")
                  for part in [s, *s.get("allOf", [])] for c in part.get("properties", {}).get("error", {}).get("enum", [])}
    assert error_codes_in_handlers() == documented


def test_every_gateway_answer_is_documented_with_its_body(doc: dict[str, Any]) -> None:
    answers = gateway_answers()
    assert {s for s, _ in answers} >= {401, 403, 404, 413, 429, 500, 504}
    for status, message in answers:
        if status in LOCAL_ONLY:
            continue
        validator = response_validator(doc, *TELEMETRY, status)
        assert validator is not None, f"gateway answers {status} {message!r}, not documented"
        assert validator.is_valid({"message": message}), f"{status} {message!r} not allowed by the document"


def test_nothing_documented_that_nobody_answers(doc: dict[str, Any]) -> None:
    answered = {s for s, _ in handler_answers()} | {s for s, _ in gateway_answers()}
    for path, method in (TELEMETRY, HEALTH):
        documented = {int(s) for s in doc["paths"][path][method]["responses"]}
        assert documented <= answered, f"{method.upper()} {path}: {sorted(documented - answered)} never answered"


def test_documented_bodies_refuse_what_the_api_never_sends(doc: dict[str, Any]) -> None:
    validator = response_validator(doc, *TELEMETRY, 400)
    assert validator is not None
    assert not validator.is_valid({"error": "unavailable", "message": "m", "field": None})  # a 503 code
    assert not validator.is_valid({"error": "invalid_json", "message": "m"})  # field is always present
    accepted = response_validator(doc, *TELEMETRY, 202)
    assert accepted is not None and accepted.is_valid({"accepted": 2, "records": 1, "requestId": "r"})
    assert not accepted.is_valid({"accepted": 2})
