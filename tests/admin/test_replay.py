"""`admin replay` against moto: failed batches are re-stored once and their DLQ messages deleted;
expired ranges and records still refused are reported and their messages kept."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from admin.cli import run
from admin.replay import Replayer, processor_target
from admin.stream_range import read_range
from replay_support import DEVICES, NOW_MS, PROCESSOR, READINGS, SHARD, STREAM, DownDynamo, Stack, TrimmedKinesis


def replay(stack: Stack, *argv: str) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["replay", "--stack-file", str(stack.stack_file), "--json", *argv], out=out, err=err)
    return code, (json.loads(out.getvalue()) if out.getvalue() else {}), err.getvalue()


def replayer(stack: Stack, **kwargs: Any) -> Replayer:
    import boto3

    target = processor_target(stack.outputs, boto3.client("lambda", region_name="us-east-1"), "us-east-1")
    clients = {"sqs": stack.sqs, "kinesis": stack.kinesis, "dynamodb": stack.dynamodb}
    clients.update({k: kwargs.pop(k) for k in list(kwargs) if k in clients})
    return Replayer(target, **clients, **kwargs)


def test_processor_configuration_comes_from_the_function(stack: Stack) -> None:
    import boto3

    target = processor_target(stack.outputs, boto3.client("lambda", region_name="us-east-1"), "us-east-1")
    assert (target.config.readings_table, target.config.devices_table, target.config.ttl_days) == (READINGS, DEVICES, 7)
    assert target.role_arn.endswith(":role/replay-processor-role") and target.stream_name == STREAM


def test_replay_stores_each_reading_once_deletes_the_message_and_a_second_run_does_nothing(stack: Stack) -> None:
    stack.register("dev-a")
    first = stack.put("dev-a", 3)
    stack.put("dev-b", 2)
    last = stack.put("dev-a", 2, first_seq=3)
    stack.fail(first, last, 3)
    stack.fail(first, last, 3)  # the same range twice (e.g. two bisected halves overlapping a retry): stored once

    code, report, err = replay(stack)
    assert (code, err) == (0, "")
    assert report["counts"] == {"replayed": 2} and report["deleted"] == 2
    first_message = report["messages"][0]
    assert (first_message["start"], first_message["end"], first_message["records_read"]) == (first, last, 3)
    assert first_message["readings_stored"] == 7
    assert stack.stored("dev-a") == [(NOW_MS + i, i) for i in range(5)]
    assert stack.stored("dev-b") == [(NOW_MS + i, i) for i in range(2)]
    ttl = {int(i["expiresAt"]["N"]) - NOW_MS // 1000 for i in stack.items()}
    assert ttl == {7 * 86_400}  # the processor's own TTL (readings are within a second), read from its configuration
    device = stack.dynamodb.get_item(TableName=DEVICES, Key={"deviceId": {"S": "dev-a"}})["Item"]
    assert int(device["latestSeq"]["N"]) == 4  # the latest reading moved forward as the processor would
    assert stack.dlq_depth() == 0

    code, report, _ = replay(stack)
    assert code == 0 and report["messages"] == [] and report["deleted"] == 0
    assert stack.stored("dev-a") == [(NOW_MS + i, i) for i in range(5)]


def test_dry_run_reads_and_reports_but_writes_and_deletes_nothing(stack: Stack) -> None:
    first = stack.put("dev-a", 2)
    stack.fail(first, first, 1)
    code, report, _ = replay(stack, "--dry-run")
    assert code == 0 and report["dryRun"] is True
    assert report["counts"] == {"would-replay": 1} and report["messages"][0]["records_read"] == 1
    assert stack.stored("dev-a") == [] and len(stack.dlq_bodies()) == stack.dlq_depth() == 1  # kept, and visible again at once


def test_expired_prefix_is_reported_with_its_range_and_the_message_kept(stack: Stack) -> None:
    gone = stack.put("dev-a", 1)
    also_gone = stack.put("dev-a", 1, first_seq=1)
    left = stack.put("dev-a", 1, first_seq=2)
    end = stack.put("dev-a", 1, first_seq=3)
    stack.fail(gone, end, 4)
    trimmed = TrimmedKinesis(stack.kinesis, trim_before=left)
    report = replayer(stack, kinesis=trimmed).run()
    (message,) = report.messages
    assert message.status == "expired" and not message.deleted and not report.clean
    assert message.expired == {"from": gone, "before": left}
    assert also_gone not in (message.expired or {}).values()
    assert "2 of 4 record(s) left" in message.reason and gone in message.reason
    assert [seq for _, seq in stack.stored("dev-a")] == [2, 3]  # what is left is stored
    assert len(stack.dlq_bodies()) == stack.dlq_depth() == 1

    report = replayer(stack, kinesis=trimmed, discard_expired=True).run()
    assert report.messages[0].status == "expired" and report.messages[0].deleted
    assert stack.dlq_depth() == 0


def test_a_fully_expired_range_is_found_whether_kinesis_refuses_or_skips_the_trimmed_start(stack: Stack) -> None:
    first = stack.put("dev-a", 1)
    last = stack.put("dev-a", 1, first_seq=1)
    newer = stack.put("dev-b", 1)
    for refuse in (False, True):
        read = read_range(TrimmedKinesis(stack.kinesis, trim_before=newer, refuse_trimmed=refuse), STREAM, SHARD, first, last)
        assert read.records == [] and read.expired == {"from": first, "to": last}
    assert [r["SequenceNumber"] for r in read_range(stack.kinesis, STREAM, SHARD, first, newer).records] == [first, last, newer]


def test_a_vanished_shard_is_reported_as_expired(stack: Stack) -> None:
    stack.fail("100", "200", 5, shard="shardId-000000000009")
    code, report, _ = replay(stack)
    (message,) = report["messages"]
    assert code == 1 and message["status"] == "expired" and message["expired"] == {"from": "100", "to": "200"}
    assert "shard is gone" in message["reason"] and not message["deleted"]
    assert len(stack.dlq_bodies()) == stack.dlq_depth() == 1


def test_a_poison_record_keeps_the_message_with_the_processors_reason(stack: Stack) -> None:
    good = stack.put("dev-a", 2)
    poison = stack.put_raw(b"\x00not json", "dev-a")
    stack.fail(good, poison, 2)
    code, report, _ = replay(stack)
    (message,) = report["messages"]
    assert code == 1 and message["status"] == "failing" and not message["deleted"]
    assert message["failing"] == [{"sequenceNumber": poison, "reason": message["failing"][0]["reason"]}]
    assert "poison record" in message["failing"][0]["reason"] and "JSON" in message["failing"][0]["reason"]
    assert len(stack.stored("dev-a")) == 2  # the good record of the batch is stored anyway
    assert len(stack.dlq_bodies()) == stack.dlq_depth() == 1


def test_storage_still_down_keeps_the_messages_and_stops_the_run(stack: Stack) -> None:
    first = stack.put("dev-a", 2)
    second = stack.put("dev-b", 1)
    stack.fail(first, first, 1)
    stack.fail(second, second, 1)
    down = DownDynamo(stack.dynamodb)
    report = replayer(stack, dynamodb=down).run()
    (message,) = report.messages  # the second is not tried: it would fail the same way
    assert message.status == "failing" and not message.deleted and down.calls >= 1
    assert "AccessDeniedException" in message.reason and "AccessDeniedException" in report.stopped
    assert not report.clean
    assert stack.stored("dev-a") == [] and len(stack.dlq_bodies()) == stack.dlq_depth() == 2
    report = replayer(stack).run()  # once storage is back
    assert [m.status for m in report.messages] == ["replayed", "replayed"] and report.clean
    assert len(stack.stored("dev-a")) == 2 and len(stack.stored("dev-b")) == 1 and stack.dlq_depth() == 0


def test_transient_5xx_is_ridden_out_by_the_processors_retries(stack: Stack) -> None:
    first = stack.put("dev-a", 3)
    stack.fail(first, first, 1)
    flaky = DownDynamo(stack.dynamodb, code="InternalServerError", status=500, times=3)
    report = replayer(stack, dynamodb=flaky).run()
    assert [m.status for m in report.messages] == ["replayed"] and flaky.calls == 4
    assert len(stack.stored("dev-a")) == 3 and stack.dlq_depth() == 0


def test_foreign_and_unreadable_messages_are_kept_with_a_reason(stack: Stack) -> None:
    first = stack.put("dev-a", 1)
    stack.fail(first, first, 1, stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/other")
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="hello")
    code, report, _ = replay(stack)
    reasons = sorted(m["reason"] for m in report["messages"])
    assert code == 1 and report["counts"] == {"failing": 2}
    assert "not this stack's" in reasons[0] and "not JSON" in reasons[1]
    assert stack.stored("dev-a") == [] and len(stack.dlq_bodies()) == stack.dlq_depth() == 2


def test_max_limits_the_messages_handled(stack: Stack) -> None:
    for device in ("a", "b", "c"):
        seq = stack.put(f"dev-{device}", 1)
        stack.fail(seq, seq, 1)
    code, report, _ = replay(stack, "--max", "2")
    assert code == 0 and len(report["messages"]) == 2 and len(stack.dlq_bodies()) == stack.dlq_depth() == 1


def test_text_report_names_each_message_and_the_summary(stack: Stack) -> None:
    seq = stack.put("dev-a", 1)
    stack.fail(seq, seq, 1)
    out, err = io.StringIO(), io.StringIO()
    assert run(["replay", "--stack-file", str(stack.stack_file)], out=out, err=err) == 0
    text = out.getvalue()
    assert text.startswith("replayed ") and f"{SHARD} {seq}..{seq}" in text and "deleted" in text
    assert text.rstrip().endswith("1 message(s): 1 replayed; 1 deleted")


@pytest.mark.parametrize("argv, needle", [
    (["--max", "0"], "--max: must be an integer >= 1"),
    (["--max", "x"], "--max: must be an integer >= 1"),
])
def test_bad_flags_exit_2_naming_the_flag(stack: Stack, argv: list[str], needle: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["replay", "--stack-file", str(stack.stack_file), *argv])
    assert exit_info.value.code == 2 and needle in capsys.readouterr().err


def test_setup_errors_exit_2(stack: Stack, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(["replay"], out=out, err=err) == 2 and "--stack-file" in err.getvalue()
    err = io.StringIO()
    assert run(["replay", "--stack-file", str(tmp_path / "none.json")], out=out, err=err) == 2
    assert "not found" in err.getvalue()
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({k: v for k, v in stack.outputs.items() if k != "dlqUrl"}))
    err = io.StringIO()
    assert run(["replay", "--stack-file", str(partial)], out=out, err=err) == 2 and "dlqUrl" in err.getvalue()
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**stack.outputs, "functionNames": {"processor": "missing-fn"}}))
    err = io.StringIO()
    assert run(["replay", "--stack-file", str(wrong)], out=out, err=err) == 2
    assert "GetFunctionConfiguration" in err.getvalue() and "ResourceNotFoundException" in err.getvalue()
    assert out.getvalue() == "" and PROCESSOR


def test_the_calls_replay_makes_are_the_permissions_the_readme_lists(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every AWS call of a run (one message replayed, one kept) is an action of the README's
    permission table, and every action there (but the optional kms:Decrypt) is used."""
    import re

    import admin.replay_cli as replay_cli

    calls: set[str] = set()
    make = replay_cli.aws_client

    def recording_client(service: str, *args: Any, **kwargs: Any) -> Any:
        client = make(service, *args, **kwargs)
        prefix = client.meta.service_model.signing_name
        client.meta.events.register("before-call", lambda model, **_: calls.add(f"{prefix}:{model.name}"))
        return client

    monkeypatch.setattr(replay_cli, "aws_client", recording_client)
    stack.register("dev-a")
    good = stack.put("dev-a", 2)
    stack.fail(good, good, 1)
    stack.fail("100", "200", 5, shard="shardId-000000000009")  # kept: its visibility is given back
    code, report, _ = replay(stack)
    assert code == 1 and sorted(m["status"] for m in report["messages"]) == ["expired", "replayed"]

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("### Replaying the DLQ", 1)[1].split("| action | resource |", 1)[1].split("\n\n", 1)[0]
    documented = {action for row in table.splitlines() for action in re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", row.split("|")[1] if "|" in row else "")}
    assert calls == documented - {"kms:Decrypt"}, (calls, documented)
