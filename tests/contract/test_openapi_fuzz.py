"""schemathesis against the local cloud, from docs/openapi.yaml, with a bounded number of examples.

Every generated request goes through the real local gateway, authorizer and ingest function.
Checks: no 5xx, the status is documented, the body and headers conform to the document; and,
once everything is processed, the device's stored readings are exactly those of the requests
answered 202 - nothing from a rejected request was written, nothing accepted was lost.
Examples are derandomized, so a CI run is repeatable.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from contract_support import OPENAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from admin.readings import read_readings
from admin.registry import DeviceRegistry
from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e

EXAMPLES = {GenerationMode.POSITIVE: 40, GenerationMode.NEGATIVE: 20}  # per mode, for POST /v1/telemetry
HEALTH_EXAMPLES = 5
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@dataclass
class Ledger:
    device: str = ""
    key: str = ""
    accepted: set[tuple[int, int]] = field(default_factory=set)  # (ts, seq) of readings answered 202
    rejected_requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    lc = LocalCloud(stack="dev", state_dir=tmp_path_factory.mktemp("fuzz-cloud"))
    lc.start()
    try:
        yield lc
    finally:
        lc.stop()


@pytest.fixture(scope="module")
def ledger(cloud: LocalCloud) -> Ledger:
    assert cloud.stack is not None
    registry = DeviceRegistry(cloud.emulator.client("dynamodb"), cloud.stack.outputs["devicesTableName"])
    device, key = registry.add(f"fuzz-{uuid.uuid4().hex[:8]}")
    return Ledger(device, key)


def _readings_of(body: Any) -> list[tuple[int, int]]:
    return [(r["ts"], r.get("seq", 0)) for r in body["readings"]]


def _steer(body: Any, salt: int) -> None:
    """Move half of the well-formed batches' timestamps into the accepted window (the schema allows
    0..9999999999999 ms but the API takes only the last week), so the accept path is fuzzed too."""
    if salt % 2 or not isinstance(body, dict) or not isinstance(body.get("readings"), list):
        return
    now = int(time.time() * 1000)
    for i, r in enumerate(body["readings"]):
        if isinstance(r, dict) and isinstance(r.get("ts"), int) and not isinstance(r.get("ts"), bool):
            r["ts"] = now - 60_000 - (r["ts"] % 3_600_000) - i


def _run(cloud: LocalCloud, operation: Any, mode: GenerationMode, examples: int,
         prepare: Callable[[Any], None], after: Callable[[Any, requests.Response], None]) -> None:
    session = requests.Session()

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        prepare(case)
        response = case.call(base_url=cloud.api_url, session=session, timeout=30)
        case.validate_response(response, checks=CHECKS)
        after(case, response)

    check()


@pytest.fixture(scope="module")
def schema() -> Any:
    return schemathesis.openapi.from_path(str(OPENAPI))


def test_health_conforms(cloud: LocalCloud, schema: Any) -> None:
    seen: list[int] = []
    _run(cloud, schema["/health"]["GET"], GenerationMode.POSITIVE, HEALTH_EXAMPLES, lambda case: None,
         lambda case, response: seen.append(response.status_code))
    assert seen and set(seen) == {200}


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_telemetry_conforms(cloud: LocalCloud, schema: Any, ledger: Ledger, mode: GenerationMode) -> None:
    def prepare(case: Any) -> None:
        salt = len(json.dumps(case.body, default=str))
        _steer(case.body, salt)
        headers = dict(case.headers or {})
        if salt % 5:  # most requests authenticate; the rest keep the generated (unknown) credentials
            headers.update({"x-device-id": ledger.device, "x-device-key": ledger.key})
        case.headers = headers

    def after(case: Any, response: requests.Response) -> None:
        ledger.statuses[response.status_code] = ledger.statuses.get(response.status_code, 0) + 1
        if response.status_code == 202:
            ledger.accepted.update(_readings_of(case.body))
        else:
            ledger.rejected_requests += 1

    _run(cloud, schema["/v1/telemetry"]["POST"], mode, EXAMPLES[mode], prepare, after)


def test_nothing_written_for_rejected_requests(cloud: LocalCloud, ledger: Ledger) -> None:
    """Runs after the fuzzing above (same module): stored readings == readings answered 202."""
    assert ledger.rejected_requests > 0 and ledger.statuses, "the fuzz tests above did not run"
    assert 202 in ledger.statuses and len(ledger.statuses) >= 3, ledger.statuses  # accept and reject paths both hit
    assert cloud.stack is not None
    ddb = cloud.emulator.client("dynamodb")
    # a last reading from the same device; the dev stream has one shard and keeps order, so once it
    # is stored every earlier record has been processed
    marker = (int(time.time() * 1000), 4_242_424_242)
    response = requests.post(f"{cloud.api_url}/v1/telemetry", timeout=30,
                             headers={"x-device-id": ledger.device, "x-device-key": ledger.key},
                             json={"readings": [{"ts": marker[0], "seq": marker[1], "metrics": {"m": 1}}]})
    assert response.status_code == 202, response.text

    def stored() -> set[tuple[int, int]]:
        """Every (ts, seq) stored for the device, through the project's own reader."""
        until = int(time.time() * 1000) + 10**9  # beyond any accepted future skew
        return {(r.ts, r.seq) for r in read_readings(ddb, cloud.stack.outputs["readingsTableName"],  # type: ignore[union-attr]  # checked above
                                                    ledger.device, 0, until, consistent=True)}

    deadline = time.monotonic() + 60
    while marker not in (keys := stored()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker in keys, "the marker reading was not stored within 60 s"
    assert keys - {marker} == ledger.accepted
