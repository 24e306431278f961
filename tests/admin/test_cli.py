"""``python -m admin``: output formats, --stack-file, and errors on stderr with exit code 2."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from admin.cli import run
from admin_support import TABLE, create_devices_table
from handlers.telemetry.device_keys import hash_key

REPO = Path(__file__).resolve().parents[2]


def cli(ddb: Any, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out=out, err=err, client=ddb)
    return code, out.getvalue(), err.getvalue()


def test_add_json_prints_id_and_key_once(ddb: Any) -> None:
    code, out, err = cli(ddb, "--table", TABLE, "add", "--device-id", "dev-9", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["deviceId"] == "dev-9"
    stored = ddb.get_item(TableName=TABLE, Key={"deviceId": {"S": "dev-9"}})["Item"]
    assert stored["keyHash"]["S"] == hash_key(doc["key"])


def test_add_text_output_shows_key_and_warns(ddb: Any) -> None:
    code, out, _ = cli(ddb, "--table", TABLE, "add")
    assert code == 0 and "key: " in out and "cannot be shown again" in out


def test_rotate_revoke_list(ddb: Any) -> None:
    cli(ddb, "--table", TABLE, "add", "--device-id", "dev-1")
    code, out, _ = cli(ddb, "--table", TABLE, "rotate", "dev-1", "--json")
    assert code == 0
    new_key = json.loads(out)["key"]
    assert ddb.get_item(TableName=TABLE, Key={"deviceId": {"S": "dev-1"}})["Item"]["keyHash"]["S"] == hash_key(new_key)
    assert cli(ddb, "--table", TABLE, "revoke", "dev-1")[0] == 0
    code, out, _ = cli(ddb, "--table", TABLE, "list", "--json")
    devices = json.loads(out)
    assert code == 0 and devices[0]["deviceId"] == "dev-1" and devices[0]["status"] == "revoked"
    assert "keyHash" not in out and new_key not in out
    code, out, _ = cli(ddb, "--table", TABLE, "list")
    assert "dev-1\trevoked" in out and "last seen never" in out
    ddb.update_item(TableName=TABLE, Key={"deviceId": {"S": "dev-1"}},
                    UpdateExpression="SET lastSeenAt = :t", ExpressionAttributeValues={":t": {"N": "1700000000123"}})
    assert "last seen 2023-11-14T22:13:20.123Z" in cli(ddb, "--table", TABLE, "list")[1]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["rotate", "ghost"], "no device 'ghost'"),
        (["revoke", "ghost"], "no device 'ghost'"),
        (["add", "--device-id", "bad id"], "invalid device id"),
    ],
)
def test_errors_go_to_stderr_with_exit_code_2(ddb: Any, argv: list[str], needle: str) -> None:
    code, out, err = cli(ddb, "--table", TABLE, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and needle in err


def test_duplicate_add_says_to_rotate(ddb: Any) -> None:
    cli(ddb, "--table", TABLE, "add", "--device-id", "dev-1")
    code, _, err = cli(ddb, "--table", TABLE, "add", "--device-id", "dev-1")
    assert code == 2 and "rotate dev-1" in err


def test_missing_table_argument_and_wrong_table(ddb: Any, tmp_path: Path) -> None:
    code, _, err = cli(ddb, "list")
    assert code == 2 and "--table" in err
    code, _, err = cli(ddb, "--table", "nope", "list")
    assert code == 2 and "ResourceNotFoundException" in err
    code, _, err = cli(ddb, "--stack-file", str(tmp_path / "missing.json"), "list")
    assert code == 2 and "not found" in err
    (tmp_path / "stack.json").write_text(json.dumps({"apiUrl": "http://x"}))
    code, _, err = cli(ddb, "--stack-file", str(tmp_path / "stack.json"), "list")
    assert code == 2 and "devicesTableName" in err


def test_module_entry_point_with_stack_file_against_an_endpoint(moto_endpoint: str, tmp_path: Path) -> None:
    create_devices_table(boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1"), "devices-local")
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({"devicesTableName": "devices-local", "endpointUrl": moto_endpoint}))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-m", "admin", "--stack-file", str(stack), "add", "--device-id", "edge-1", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["key"]
    item = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1").get_item(
        TableName="devices-local", Key={"deviceId": {"S": "edge-1"}})["Item"]
    assert item["keyHash"]["S"] == hash_key(key)
    failed = subprocess.run(
        [sys.executable, "-m", "admin", "--stack-file", str(stack), "revoke", "ghost"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert failed.returncode == 2 and "no device 'ghost'" in failed.stderr and failed.stdout == ""


def test_stack_file_works_without_configured_credentials(moto_endpoint: str, tmp_path: Path) -> None:
    """The README's local-cloud walkthrough runs on a machine with no AWS credentials at all."""
    create_devices_table(boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1"), "devices-nocreds")
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({"devicesTableName": "devices-nocreds", "endpointUrl": moto_endpoint}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    done = subprocess.run(
        [sys.executable, "-m", "admin", "--stack-file", str(stack), "add", "--device-id", "edge-2", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deviceId"] == "edge-2"
