"""DataPlane from a hand-built ProvisionedStack: HTTP -> function -> Kinesis ->
poller -> function -> DynamoDB, with handler code reaching the emulator through
AWS_ENDPOINT_URL only; stop() leaves no worker processes behind."""
from __future__ import annotations

import http.client
import os
import time
import uuid
from pathlib import Path
from typing import Any

from localcloud.dataplane import DataPlane
from localcloud.model import ApiSpec, FunctionSpec, MappingSpec, ProvisionedStack, RouteSpec

INGEST = '''
import boto3, os
kinesis = boto3.client("kinesis")
def handler(event, context):
    kinesis.put_record(StreamName=os.environ["STREAM"], Data=event["body"].encode(), PartitionKey="k")
    return {"statusCode": 202, "body": "{}"}
'''

STORE = '''
import base64, boto3, os
table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
def handler(event, context):
    for r in event["Records"]:
        table.put_item(Item={"id": base64.b64decode(r["kinesis"]["data"]).decode()})
'''


def test_http_to_dynamodb_and_clean_stop(emulator: Any, tmp_path: Path) -> None:
    name = f"dp-{uuid.uuid4().hex[:8]}"
    kinesis, ddb = emulator.client("kinesis"), emulator.client("dynamodb")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    ddb.create_table(TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    code = tmp_path / "code"
    code.mkdir()
    (code / "ingest.py").write_text(INGEST)
    (code / "store.py").write_text(STORE)
    fns = {
        f"{name}-in": FunctionSpec(f"{name}-in", "arn:in", "ingest.handler", code, {"STREAM": name}, 5, 128, None),
        f"{name}-st": FunctionSpec(f"{name}-st", "arn:st", "store.handler", code, {"TABLE": name}, 5, 128, None),
    }
    stack = ProvisionedStack(
        project="p", stack="t", region="us-east-1", endpoint_url=emulator.endpoint_url, outputs={}, functions=fns,
        apis=[ApiSpec("apiX", "x", "$default", (RouteSpec("POST /put", f"{name}-in", "2.0", 30000),), 100, 50.0)],
        mappings=[MappingSpec(str(uuid.uuid4()), arn, name, f"{name}-st", 10, 0, 1, "TRIM_HORIZON", False, 1, -1,
                              False)])
    plane = DataPlane(stack, log_dir=tmp_path / "logs").start()
    try:
        assert plane.api_url.startswith("http://127.0.0.1:") and not plane.api_url.endswith("/")
        pids = plane.runner.worker_pids(f"{name}-in") + plane.runner.worker_pids(f"{name}-st")
        assert len(pids) == 2
        conn = http.client.HTTPConnection("127.0.0.1", plane.gateway.port, timeout=10)
        for i in range(3):
            conn.request("POST", "/put", body=f"item-{i}", headers={"content-type": "text/plain"})
            response = conn.getresponse()
            response.read()
            assert response.status == 202
        conn.close()
        deadline = time.monotonic() + 30  # generous for a loaded CI machine
        while time.monotonic() < deadline and ddb.scan(TableName=name)["Count"] < 3:
            time.sleep(0.05)
        assert sorted(i["id"]["S"] for i in ddb.scan(TableName=name)["Items"]) == ["item-0", "item-1", "item-2"]
        plane.monitor.flush()
        assert plane.monitor.total("AWS/ApiGateway", "Count", {"ApiId": "apiX", "Stage": "$default"}) == 3
        assert plane.monitor.total("AWS/Lambda", "Invocations", {"FunctionName": f"{name}-in"}) == 3
    finally:
        plane.stop()
        plane.stop()  # idempotent
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive, f"worker {pid} survived stop()"
