"""StreamPoller against the emulator: event shape, checkpointing with
ReportBatchItemFailures, bisect, retries, record age, on-failure records, order."""
from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from localcloud.model import FunctionSpec, MappingSpec
from localcloud.poller import StreamPoller, StreamRecord, lane_of
from localcloud.runner import LambdaRunner

PROCESSOR = '''
import base64, json, os
def handler(event, context):
    failures = []
    with open(os.environ["SEEN"], "a") as f:
        for r in event["Records"]:
            body = base64.b64decode(r["kinesis"]["data"]).decode()
            f.write(json.dumps({"body": body, "seq": r["kinesis"]["sequenceNumber"], "n": len(event["Records"]),
                                "pk": r["kinesis"]["partitionKey"]}) + "\\n")
    for r in event["Records"]:
        body = base64.b64decode(r["kinesis"]["data"]).decode()
        if body.startswith("slow"):
            # held until the test releases it (the cap, well below the 30 s function timeout, only
            # keeps a broken test from hanging; it must outlast a slow CI machine's other lane)
            import time
            release = os.environ["SEEN"] + ".release"
            deadline = time.monotonic() + 25
            while not os.path.exists(release) and time.monotonic() < deadline:
                time.sleep(0.01)
        if body.startswith("poison"):
            raise ValueError("poison pill " + body)
        if body.startswith("partial"):
            failures.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
        if body.startswith("nullid"):
            failures.append({"itemIdentifier": None})
    return {"batchItemFailures": failures}
'''


class Sink:
    def __init__(self) -> None:
        self.points: list[tuple[str, str, dict[str, str], float]] = []

    def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float, unit: str = "None") -> None:
        self.points.append((namespace, name, dict(dimensions), value))


@pytest.fixture
def setup(emulator: Any, tmp_path: Path) -> Iterator[Callable[..., dict[str, Any]]]:
    made: list[tuple[StreamPoller, LambdaRunner]] = []
    code = tmp_path / "code"
    code.mkdir()
    (code / "proc.py").write_text(PROCESSOR)

    def make(**overrides: Any) -> dict[str, Any]:
        name = f"s-{uuid.uuid4().hex[:8]}"
        kinesis, sqs = emulator.client("kinesis"), emulator.client("sqs")
        kinesis.create_stream(StreamName=name, ShardCount=1)
        arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        queue = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        seen = tmp_path / f"{name}.jsonl"
        fn = FunctionSpec(f"{name}-proc", f"arn:aws:lambda:us-east-1:123456789012:function:{name}-proc",
                          "proc.handler", code, {"SEEN": str(seen)}, 30, 128, None)
        fields = dict(uuid=str(uuid.uuid4()), stream_arn=arn, stream_name=name, function=fn.name, batch_size=10,
                      batching_window_s=0, parallelization_factor=1, starting_position="TRIM_HORIZON",
                      bisect_on_error=True, max_retry_attempts=2, max_record_age_s=-1,
                      report_batch_item_failures=True, on_failure_arn=f"arn:aws:sqs:us-east-1:123456789012:{name}-dlq",
                      on_failure_queue_url=queue)
        fields.update(overrides)
        mapping = MappingSpec(**fields)
        sink = Sink()
        runner = LambdaRunner({fn.name: fn}, emulator.endpoint_url, "us-east-1", sink=sink, log_dir=tmp_path / "logs")
        runner.start()
        poller = StreamPoller(mapping, runner, endpoint_url=emulator.endpoint_url, region="us-east-1", sink=sink,
                              retry_backoff_s=0.01)
        made.append((poller, runner))
        return {"name": name, "arn": arn, "queue": queue, "seen": seen, "poller": poller, "sink": sink,
                "kinesis": kinesis, "sqs": sqs, "fn": fn}

    yield make
    for poller, runner in made:
        poller.stop()
        runner.stop()


def put(ctx: dict[str, Any], bodies: list[str], key: str = "dev-1") -> None:
    ctx["kinesis"].put_records(StreamName=ctx["name"], Records=[{"Data": b.encode(), "PartitionKey": key}
                                                                 for b in bodies])


def seen(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    path: Path = ctx["seen"]
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split the handler's log into invocations: each logs its ``n`` records in a row (one
    lane, so invocations never interleave)."""
    out, i = [], 0
    while i < len(rows):
        batch = rows[i:i + rows[i]["n"]]
        assert len(batch) == rows[i]["n"] and all(r["n"] == rows[i]["n"] for r in batch), rows
        out.append(batch)
        i += len(batch)
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def dlq(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    while True:
        msgs = ctx["sqs"].receive_message(QueueUrl=ctx["queue"], MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            ctx["sqs"].delete_message(QueueUrl=ctx["queue"], ReceiptHandle=m["ReceiptHandle"])


def test_event_shape(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup()
    poller: StreamPoller = ctx["poller"]
    record = StreamRecord("shardId-000000000000", "4959", "dev-7", b"hi", 1_700_000_000.25)
    event = poller.event([record])
    assert event == {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "dev-7", "sequenceNumber": "4959",
                    "data": base64.b64encode(b"hi").decode(), "approximateArrivalTimestamp": 1_700_000_000.25},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": "shardId-000000000000:4959",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": poller.role_arn, "awsRegion": "us-east-1",
        "eventSourceARN": ctx["arn"]}]}


def test_in_order_batches_and_metrics(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=4)
    put(ctx, [f"r{i}" for i in range(10)])
    ctx["poller"].start()
    wait_for(lambda: len(seen(ctx)) == 10)
    rows = seen(ctx)
    assert [r["body"] for r in rows] == [f"r{i}" for i in range(10)]
    assert max(r["n"] for r in rows) == 4
    names = {n for _, n, _, _ in ctx["sink"].points}
    assert {"IteratorAge", "GetRecords.IteratorAgeMilliseconds", "Invocations"} <= names
    # IncomingRecords is published where records are put (the workers), never by the reader.
    assert "IncomingRecords" not in names


def test_poison_pill_bisected_to_dlq_and_does_not_block(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=8, max_retry_attempts=1)
    put(ctx, ["a", "b", "c", "poison-1", "d", "e", "f", "g"])
    ctx["poller"].start()
    wait_for(lambda: ctx["poller"].stats["batches_discarded"] == 1)
    put(ctx, ["after"])
    wait_for(lambda: any(r["body"] == "after" for r in seen(ctx)))
    records = dlq(ctx)
    assert len(records) == 1
    record = records[0]
    poison_seq = [r["seq"] for r in seen(ctx) if r["body"] == "poison-1"][0]
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (poison_seq, poison_seq, 1)
    assert info["shardId"] == "shardId-000000000000" and info["streamArn"] == ctx["arn"]
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"] == ctx["fn"].arn
    assert record["requestContext"]["approximateInvokeCount"] == 2  # first try + 1 retry
    assert record["responseContext"]["functionError"] == "Unhandled" and record["version"] == "1.0"
    # Every record but the poison pill succeeded: counted as ok by the poller, and each one was
    # delivered in some batch without the poison pill (the only kind of batch that succeeds).
    wait_for(lambda: ctx["poller"].stats["records_ok"] == 8)
    assert ctx["poller"].stats["records_discarded"] == 1
    ok_bodies = {r["body"] for batch in batches(seen(ctx)) if "poison-1" not in {r["body"] for r in batch}
                 for r in batch}
    assert ok_bodies == {"a", "b", "c", "d", "e", "f", "g", "after"}


def test_report_batch_item_failures_checkpoint(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=5, bisect_on_error=False, max_retry_attempts=2)
    put(ctx, ["x1", "x2", "partial-3", "x4", "x5"])
    ctx["poller"].start()
    wait_for(lambda: ctx["poller"].stats["batches_discarded"] == 1)
    bodies = [r["body"] for r in seen(ctx)]
    # first invoke sees all 5; the two retries restart at the failed record (partial-3, x4, x5)
    assert bodies == ["x1", "x2", "partial-3", "x4", "x5"] + ["partial-3", "x4", "x5"] * 2
    info = dlq(ctx)[0]["KinesisBatchInfo"]
    assert info["batchSize"] == 3


def test_discard_is_counted_only_after_the_destination_has_the_record(
        setup: Callable[..., dict[str, Any]]) -> None:
    """A reader who sees ``batches_discarded`` go up must find the record in the destination
    (CI once read an empty queue: the count used to go up before SendMessage)."""
    ctx = setup(batch_size=1, max_retry_attempts=0)
    poller: StreamPoller = ctx["poller"]
    counts_at_send: list[int] = []

    class Recording:
        def __init__(self, real: Any) -> None:
            self.real = real

        def send_message(self, **kwargs: Any) -> Any:
            counts_at_send.append(poller.stats["batches_discarded"])
            return self.real.send_message(**kwargs)

    poller._sqs = Recording(poller._sqs)
    put(ctx, ["poison-1"])
    poller.start()
    wait_for(lambda: poller.stats["batches_discarded"] == 1)
    assert counts_at_send == [0]
    assert [r["KinesisBatchInfo"]["batchSize"] for r in dlq(ctx)] == [1]


def test_null_identifier_fails_whole_batch_and_list_ignored_without_flag(
        setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=3, bisect_on_error=False, max_retry_attempts=0)
    put(ctx, ["y1", "nullid", "y3"])
    ctx["poller"].start()
    wait_for(lambda: ctx["poller"].stats["batches_discarded"] == 1)
    assert dlq(ctx)[0]["KinesisBatchInfo"]["batchSize"] == 3
    plain = setup(batch_size=3, report_batch_item_failures=False, max_retry_attempts=0)
    put(plain, ["z1", "partial-z", "z3"])
    plain["poller"].start()
    wait_for(lambda: plain["poller"].stats["records_ok"] == 3)
    assert plain["poller"].stats["batches_discarded"] == 0 and dlq(plain) == []


def test_record_age_exceeded(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=2, max_record_age_s=0, max_retry_attempts=-1)
    put(ctx, ["old-1", "old-2"])
    time.sleep(0.05)
    ctx["poller"].start()
    wait_for(lambda: ctx["poller"].stats["batches_discarded"] >= 1)
    record = dlq(ctx)[0]
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert seen(ctx) == []


def test_failed_destination_delivery_is_counted(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=1, max_retry_attempts=0,
                on_failure_queue_url="http://127.0.0.1:1/123456789012/missing-queue")
    # the queue does not exist: SendMessage fails, the failure is counted and the shard moves on
    put(ctx, ["poison-x", "fine"])
    ctx["poller"].start()
    wait_for(lambda: any(r["body"] == "fine" for r in seen(ctx)))
    wait_for(lambda: ctx["poller"].stats["destination_failures"] == 1)
    assert any(n == "DestinationDeliveryFailures" and v == 1 for _, n, _, v in ctx["sink"].points)


def test_latest_sees_records_put_right_after_start(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(starting_position="LATEST")
    put(ctx, ["before-start"])
    ctx["poller"].start()
    put(ctx, ["right-after-start"])
    wait_for(lambda: len(seen(ctx)) >= 1)
    time.sleep(0.3)
    assert [r["body"] for r in seen(ctx)] == ["right-after-start"]


def test_parallelization_factor_keeps_per_key_order_and_isolates_a_slow_key(
        setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=2, parallelization_factor=2)
    keys = [f"key-{i}" for i in range(20)]
    slow_key = next(k for k in keys if lane_of(k, 2) == 0)
    fast_key = next(k for k in keys if lane_of(k, 2) == 1)
    put(ctx, ["slow-0"], key=slow_key)
    for i in range(6):
        put(ctx, [f"fast-{i}"], key=fast_key)
        put(ctx, [f"after-slow-{i}"], key=slow_key)
    ctx["poller"].start()
    # 20 s: generous for 3 small batches and a second cold start, and still inside the slow
    # handler's 25 s hold cap, so a timeout here is reported as such.
    wait_for(lambda: [r["body"] for r in seen(ctx) if r["pk"] == fast_key] == [f"fast-{i}" for i in range(6)],
             timeout=20)
    # ... while the other lane is still held in its first batch ("slow-0", "after-slow-0"; the
    # handler logs a batch before processing it), released only now: no timed window
    assert [r["body"] for r in seen(ctx) if r["pk"] == slow_key] == ["slow-0", "after-slow-0"]
    Path(str(ctx["seen"]) + ".release").touch()
    wait_for(lambda: len(seen(ctx)) == 13)
    assert [r["body"] for r in seen(ctx) if r["pk"] == slow_key] == ["slow-0"] + [f"after-slow-{i}" for i in range(6)]


def test_stream_iterator_age_is_the_age_of_the_last_record_read() -> None:
    """GetRecords.IteratorAgeMilliseconds as Kinesis computes it (not moto's MillisBehindLatest,
    which stays 0): now minus the arrival of the call's last record; 0 for an empty read."""
    from localcloud.poller import read_age_ms

    old = StreamRecord("s", "1", "k", b"", 1_000.0)
    newer = StreamRecord("s", "2", "k", b"", 1_100.0)
    assert read_age_ms([old, newer], now=1_250.0) == 150_000.0
    assert read_age_ms([], now=1_250.0) == 0.0


def test_a_disabled_mapping_reads_nothing_and_resumes_where_it_stopped(setup: Callable[..., dict[str, Any]]) -> None:
    ctx = setup(batch_size=4)
    poller: StreamPoller = ctx["poller"]
    poller.start()
    put(ctx, ["before"])
    wait_for(lambda: [r["body"] for r in seen(ctx)] == ["before"])
    poller.set_enabled(False)
    put(ctx, ["while-1", "while-2"])
    time.sleep(1.0)  # several polls: a disabled mapping must not deliver them
    assert [r["body"] for r in seen(ctx)] == ["before"]
    poller.set_enabled(True)
    wait_for(lambda: [r["body"] for r in seen(ctx)] == ["before", "while-1", "while-2"])
