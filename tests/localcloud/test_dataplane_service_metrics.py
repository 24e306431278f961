"""Service-side metrics observed in the workers: Kinesis PutRecords.* and DynamoDB
throttles/errors, with the emulator's fault injection standing in for AWS misbehaving."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from localcloud.model import FunctionSpec
from localcloud.runner import LambdaRunner

HANDLER = '''
import boto3, os
kinesis = boto3.client("kinesis")
ddb = boto3.client("dynamodb")
def handler(event, context):
    print("line before")
    out = kinesis.put_records(StreamName=os.environ["STREAM"],
                              Records=[{"Data": b"x", "PartitionKey": str(i)} for i in range(4)])
    ddb.batch_write_item(RequestItems={os.environ["TABLE"]: [{"PutRequest": {"Item": {"id": {"S": "a"}}}}]})
    try:
        ddb.get_item(TableName="does-not-exist-" + os.environ["TABLE"], Key={"id": {"S": "a"}})
    except Exception:
        pass
    print("line after")
    return out["FailedRecordCount"]
'''


class Sink:
    def __init__(self) -> None:
        self.points: list[tuple[str, str, dict[str, str], float]] = []
        self.lock = threading.Lock()

    def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float, unit: str = "None") -> None:
        with self.lock:
            self.points.append((namespace, name, dict(dimensions), value))

    def total(self, namespace: str, name: str, dims: dict[str, str]) -> float:
        with self.lock:
            return sum(v for ns, n, d, v in self.points if (ns, n, d) == (namespace, name, dims))


def test_kinesis_and_dynamodb_metrics_from_worker_calls(emulator: Any, clean_faults: Any, tmp_path: Path) -> None:
    name = f"sm-{uuid.uuid4().hex[:8]}"
    emulator.client("kinesis").create_stream(StreamName=name, ShardCount=1)
    emulator.client("dynamodb").create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    sink = Sink()
    fn = FunctionSpec(name, "arn:fn", "app.handler", code, {"STREAM": name, "TABLE": name}, 20, 128, None)
    runner = LambdaRunner({name: fn}, emulator.endpoint_url, "us-east-1", sink=sink, log_dir=tmp_path / "logs")
    runner.start()
    try:
        emulator.inject_fault({"target": "Kinesis_20131202.PutRecords", "failRecords": [1, 3], "times": 1})
        emulator.inject_fault({"target": "DynamoDB_20120810.BatchWriteItem",
                               "error": "ProvisionedThroughputExceededException", "times": 1})
        result = runner.invoke(name, {})
        assert result.ok and result.payload == 2
        stream, table = {"StreamName": name}, {"TableName": name}
        op = {"TableName": name, "Operation": "BatchWriteItem"}
        log_path = tmp_path / "logs" / "lambda" / f"{name}.log"

        def log_text() -> str:
            return log_path.read_text() if log_path.exists() else ""

        # Generous: metrics and log lines arrive through the log pump, which may lag the reply.
        # Wait for the last metric and for the invocation's REPORT line (written after the
        # handler's own output), so every later assertion reads complete data.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (sink.total("AWS/DynamoDB", "UserErrors", {})
                                                   and "REPORT RequestId" in log_text()):
            time.sleep(0.02)
        assert sink.total("AWS/Kinesis", "PutRecords.TotalRecords", stream) == 4
        assert sink.total("AWS/Kinesis", "PutRecords.ThrottledRecords", stream) == 2
        assert sink.total("AWS/Kinesis", "PutRecords.SuccessfulRecords", stream) == 2
        assert sink.total("AWS/Kinesis", "WriteProvisionedThroughputExceeded", stream) == 2
        assert sink.total("AWS/Kinesis", "IncomingRecords", stream) == 2  # the stored ones, once
        assert sink.total("AWS/Kinesis", "IncomingBytes", stream) == 2 * (1 + 1)  # data b"x" + key "0" or "2"
        assert sink.total("AWS/DynamoDB", "ThrottledRequests", op) == 1  # first attempt; botocore's retry succeeded
        assert sink.total("AWS/DynamoDB", "WriteThrottleEvents", table) == 1
        assert any(n == "SuccessfulRequestLatency" and d == op for _, n, d, _ in sink.points)
        assert sink.total("AWS/DynamoDB", "UserErrors", {}) >= 1  # GetItem on a missing table
        log = log_text()
        assert "line before" in log and "line after" in log and "LOCALCLOUD_METRIC" not in log
    finally:
        runner.stop()
