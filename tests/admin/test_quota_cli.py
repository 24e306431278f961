"""``python -m admin quota`` / ``usage`` / ``list``: per-device quotas, today's usage, bad input exits 2."""
from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest

from admin.cli import run
from admin_support import TABLE


def cli(ddb: Any, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out=out, err=err, client=ddb)
    return code, out.getvalue(), err.getvalue()


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")


def next_midnight() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return (now.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def item(ddb: Any, device_id: str = "dev-1") -> dict[str, Any]:
    return ddb.get_item(TableName=TABLE, Key={"deviceId": {"S": device_id}})["Item"]


@pytest.fixture
def device(ddb: Any) -> Any:
    assert cli(ddb, "--table", TABLE, "add", "--device-id", "dev-1")[0] == 0
    ddb.update_item(TableName=TABLE, Key={"deviceId": {"S": "dev-1"}}, UpdateExpression="SET usageDay = :d, usageCount = :n",
                    ExpressionAttributeValues={":d": {"S": today()}, ":n": {"N": "42"}})
    return ddb


def usage(ddb: Any, *extra: str) -> dict[str, Any]:
    code, out, err = cli(ddb, "--table", TABLE, *extra, "usage", "dev-1", "--json")
    assert code == 0 and err == "", err
    return json.loads(out)


def test_a_device_without_an_override_follows_the_stack_default(device: Any) -> None:
    assert usage(device) == {"deviceId": "dev-1", "quota": 200000, "quotaSource": "stack default", "used": 42,
                             "remaining": 199958, "resetsAt": next_midnight()}
    assert usage(device, "--default-quota", "40")["remaining"] == 0
    assert usage(device, "--default-quota", "unlimited")["quota"] is None


def test_quota_sets_the_override_and_default_removes_it(device: Any) -> None:
    code, out, _ = cli(device, "--table", TABLE, "quota", "dev-1", "100")
    assert code == 0 and "100 readings" in out
    assert item(device)["dailyReadingQuota"] == {"N": "100"}
    assert usage(device, "--default-quota", "5")[("quota")] == 100  # the device's own wins over the stack's
    assert usage(device)["quotaSource"] == "device"
    assert cli(device, "--table", TABLE, "quota", "dev-1", "unlimited")[0] == 0
    assert item(device)["dailyReadingQuota"] == {"S": "unlimited"} and usage(device)["quota"] is None
    assert cli(device, "--table", TABLE, "quota", "dev-1", "0")[0] == 0
    assert usage(device)["quota"] == 0
    code, out, _ = cli(device, "--table", TABLE, "quota", "dev-1", "default")
    assert code == 0 and "stack default" in out
    assert "dailyReadingQuota" not in item(device)
    assert usage(device)["quotaSource"] == "stack default"


def test_usage_text_and_list_show_count_quota_and_reset(device: Any) -> None:
    cli(device, "--table", TABLE, "quota", "dev-1", "50")
    code, out, _ = cli(device, "--table", TABLE, "usage", "dev-1")
    assert code == 0 and out == f"dev-1: 42 of 50 readings (device), resets {next_midnight()}\n"
    code, out, _ = cli(device, "--table", TABLE, "list")
    assert code == 0 and f"today 42 of 50 readings (device), resets {next_midnight()}" in out
    code, out, _ = cli(device, "--table", TABLE, "list", "--json")
    assert json.loads(out)[0]["quotaToday"]["used"] == 42


def test_yesterdays_count_is_not_todays(device: Any) -> None:
    device.update_item(TableName=TABLE, Key={"deviceId": {"S": "dev-1"}}, UpdateExpression="SET usageDay = :d",
                       ExpressionAttributeValues={":d": {"S": "2001-01-01"}})
    assert usage(device)["used"] == 0


@pytest.mark.parametrize("argv, fragment", [
    (("quota", "dev-1", "-1"), "whole number >= 0"),
    (("quota", "dev-1", "1.5"), "whole number >= 0"),
    (("quota", "dev-1", "lots"), "'unlimited', or 'default'"),
    (("quota", "nobody", "10"), "no device 'nobody'"),
    (("quota", "bad id!", "10"), "invalid device id"),
    (("usage", "nobody"), "no device 'nobody'"),
    (("--default-quota", "-3", "usage", "dev-1"), "--default-quota must be"),
])
def test_bad_input_exits_2_with_one_line(device: Any, argv: tuple[str, ...], fragment: str) -> None:
    before = item(device)
    code, out, err = cli(device, "--table", TABLE, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err
    assert item(device) == before  # nothing changed
    assert cli(device, "--table", TABLE, "usage", "nobody")[0] == 2  # and no phantom device was created
    with pytest.raises(KeyError):
        item(device, "nobody")


def test_an_unreadable_counter_is_reported_not_guessed(device: Any) -> None:
    device.update_item(TableName=TABLE, Key={"deviceId": {"S": "dev-1"}}, UpdateExpression="SET usageCount = :n",
                       ExpressionAttributeValues={":n": {"S": "many"}})
    code, out, _ = cli(device, "--table", TABLE, "usage", "dev-1")
    assert code == 0 and "unreadable" in out and "denies" in out
