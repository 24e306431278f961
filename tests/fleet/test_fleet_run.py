"""A whole fleet run (CLI included) against the fake contract API, with storage in a real emulated table."""
from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from fleet.__main__ import main
from fleet.config import FleetConfig
from fleet.report import EXIT_INTEGRITY, EXIT_NO_SERVICE, EXIT_OK
from fleet.runner import run
from fleet_fake_api import FakeApi, Faults, dynamo_store
from handlers.telemetry.device_keys import key_matches


def keys_file(tmp_path: Path, n: int) -> tuple[Path, dict[str, str]]:
    keys = {f"dev-{i}": f"key-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)}
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"deviceId": d, "key": k} for d, k in keys.items()]))
    return path, keys


def stack_file(tmp_path: Path, endpoint: str, readings: str, devices: str | None = None) -> Path:
    path = tmp_path / "stack.json"
    outputs = {"endpointUrl": endpoint, "readingsTableName": readings,
               "alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:none"}
    if devices:
        outputs["devicesTableName"] = devices
    path.write_text(json.dumps(outputs))
    return path


def config(api: FakeApi, tmp_path: Path, keys: Path, stack: Path, **kw: Any) -> FleetConfig:
    base: dict[str, Any] = dict(api_url=api.url, devices=5, rate=60.0, duration=1.0, misbehaving=0.4,
                                keys_file=keys, stack_file=stack, progress=False, seed=11, drain_timeout=2.0, workers=4)
    base.update(kw)
    return FleetConfig(**base).validate()


def test_clean_run_stores_everything_and_counts_rejections(
    tmp_path: Path, fake_api_factory: Callable[..., FakeApi], dynamodb: Any, readings_table: str, moto_endpoint: str
) -> None:
    keys_path, keys = keys_file(tmp_path, 5)
    api = fake_api_factory(keys, dynamo_store(dynamodb, readings_table))
    rep = run(config(api, tmp_path, keys_path, stack_file(tmp_path, moto_endpoint, readings_table)))
    led, v = rep.ledger, rep.verification
    # No wall-clock bound: a loaded machine may fall behind and stop at the run's deadline. Either the
    # whole seeded plan (~60 req/s for 1 s, jittered) went out, or the report accounts for what did not.
    assert 50 <= rep.planned_requests <= 70 and led.requests > 0  # the plan's own length, jitter included
    not_sent = [int(m.group(1)) for note in rep.notes
                if (m := re.search(r"could not keep up: (-?\d+) planned requests were not sent", note))]
    if not_sent:
        assert not_sent[0] > 0 and led.requests + not_sent[0] == rep.planned_requests, rep.notes
    else:
        assert led.requests == rep.planned_requests, rep.notes
    # Every request sent was answered by the API (and counted there) and classified in the ledger.
    assert api.posts == led.requests + led.retries
    assert led.accepted_requests + sum(led.expected_rejections.values()) == led.requests
    assert led.accepted_readings == api.accepted_readings  # every reading the API acknowledged is accounted
    assert v.checked and v.expected == led.accepted_readings == v.stored > 0
    assert (v.missing, v.duplicates, v.unexpected, v.corrupted) == (0, 0, 0, 0)
    assert sum(led.expected_rejections.values()) > 0 and led.unexpected_total == 0
    assert rep.misbehaving_devices == 2
    assert rep.alarm_changes == []  # reachable, nothing changed
    assert rep.exit_code() == EXIT_OK
    assert rep.first_post_to_last_stored_s is not None and rep.first_post_to_last_stored_s > 0


def test_lost_readings_fail_the_run(
    tmp_path: Path, fake_api_factory: Callable[..., FakeApi], dynamodb: Any, readings_table: str, moto_endpoint: str
) -> None:
    keys_path, keys = keys_file(tmp_path, 3)
    api = fake_api_factory(keys, dynamo_store(dynamodb, readings_table), faults=Faults(drop_every=7))
    rep = run(config(api, tmp_path, keys_path, stack_file(tmp_path, moto_endpoint, readings_table),
                     misbehaving=0.0, drain_timeout=0.5, readings_per_request=3))
    assert rep.verification.missing == api.accepted_readings // 7 > 0
    assert rep.exit_code() == EXIT_INTEGRITY
    assert rep.verification.waited_s >= 0.5  # it waited for the processor before giving up


def test_cli_registers_devices_through_the_admin_registry_and_writes_json(
    tmp_path: Path, fake_api_factory: Callable[..., FakeApi], dynamodb: Any, readings_table: str, moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    devices_table = f"devices-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=devices_table, KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")

    def authorize(device: str, key: str) -> bool:  # what the real authorizer checks
        item = dynamodb.get_item(TableName=devices_table, Key={"deviceId": {"S": device}}).get("Item")
        return bool(item) and item["status"]["S"] == "active" and key_matches(key, item["keyHash"]["S"])

    api = fake_api_factory(authorize, dynamo_store(dynamodb, readings_table, devices_table))
    stack = stack_file(tmp_path, moto_endpoint, readings_table, devices_table)
    out = tmp_path / "report.json"
    saved = tmp_path / "keys-out.json"
    code = main(["run", "--api-url", api.url, "--stack-file", str(stack), "--devices", "4", "--rate", "40",
                 "--duration", "1", "--misbehaving", "0.25", "--report", str(out), "--save-keys", str(saved),
                 "--no-progress", "--drain-timeout", "3", "--seed", "3"])  # seeded: which device misbehaves, and how
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert code == EXIT_OK == data["exitCode"], printed
    assert dynamodb.scan(TableName=devices_table)["Count"] == 4
    assert len(json.loads(saved.read_text())) == 4 and (saved.stat().st_mode & 0o777) == 0o600
    assert data["storage"]["missing"] == 0 and data["storage"]["stored"] == data["readingsAccepted"] > 0
    assert data["misbehavingDevices"] == 1
    assert data["expectedRejections"] and not data["unexpected"]
    assert "result: OK" in printed


def test_cli_rejects_bad_options_before_sending(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--api-url", "http://127.0.0.1:9", "--keys", str(tmp_path / "nope.json")]) == 2
    assert "--keys" in capsys.readouterr().err
    assert main(["run", "--api-url", "ftp://x", "--no-progress"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"deviceId": "a"}]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["run", "--api-url", f"http://127.0.0.1:{port}", "--keys", str(bad), "--retries", "0"]) == EXIT_NO_SERVICE
    assert "/health" in capsys.readouterr().err  # the API is down: said before the keys are even read


def test_bad_keys_file_names_the_entry(tmp_path: Path, fake_api_factory: Callable[..., FakeApi],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    api = fake_api_factory({})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"deviceId": "a", "key": "k"}, {"deviceId": "b"}]))
    assert main(["run", "--api-url", api.url, "--keys", str(bad), "--no-progress"]) == 2
    assert "entry [1]" in capsys.readouterr().err
    assert api.posts == 0


def test_a_slow_api_cannot_stretch_the_run_past_its_deadline(
    tmp_path: Path, fake_api_factory: Callable[..., FakeApi], dynamodb: Any, readings_table: str, moto_endpoint: str
) -> None:
    keys_path, keys = keys_file(tmp_path, 2)
    api = fake_api_factory(keys, dynamo_store(dynamodb, readings_table), faults=Faults(stall_s=0.25))
    rep = run(config(api, tmp_path, keys_path, stack_file(tmp_path, moto_endpoint, readings_table),
                     rate=100.0, duration=1.0, workers=1, misbehaving=0.0))
    # One connection at 0.25 s per answer serves ~8 requests before the 2 s deadline, of 100 planned.
    assert rep.ledger.requests < 20 and 90 <= rep.planned_requests <= 110
    assert any("could not keep up" in n for n in rep.notes)
    assert rep.verification.missing == 0 and rep.exit_code() == EXIT_OK  # slow is not lossy
