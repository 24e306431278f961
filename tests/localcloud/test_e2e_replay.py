"""End to end on the local cloud: batches that failed because DynamoDB refused every write land in
the DLQ; once the fault is gone, `python -m admin replay` stores every reading exactly once and
empties the DLQ, and a second replay finds nothing to do.

The fault is a hard one (every BatchWriteItem refused with AccessDeniedException until it is
removed, as when a policy change locks the processor out): no retry policy of the processor can
ride it out, and it fails each invocation at once, so the batches exhaust the mapping's retries
(dev: processorMaxRetries 3) in seconds. The cloud is this module's own, so the fault touches
nothing else and the DLQ holds only this test's batches.
"""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from admin.registry import DeviceRegistry
from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    lc = LocalCloud(stack="dev", state_dir=tmp_path_factory.mktemp("replay-cloud"))
    lc.start()
    try:
        yield lc
    finally:
        lc.stop()


def post(cloud: LocalCloud, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    port = int(cloud.api_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/telemetry", body=json.dumps(body).encode(),
                     headers={"content-type": "application/json", **headers})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})
    finally:
        conn.close()


def stored_readings(cloud: LocalCloud, device_id: str) -> list[tuple[int, int]]:
    """(ts, seq) of every stored reading of the device, a reading stored twice listed twice.

    Layout-independent: through the readings table's reader (admin.readings) where it
    exists, else from items of one reading each (ts and seq attributes).
    """
    assert cloud.stack is not None
    ddb = cloud.emulator.client("dynamodb")
    table = cloud.stack.outputs["readingsTableName"]
    try:
        from admin.readings import read_readings
    except ImportError:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True, "KeyConditionExpression": "deviceId = :d",
                                  "ExpressionAttributeValues": {":d": {"S": device_id}}}
        while True:
            page = ddb.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted((int(i["ts"]["N"]), int(i["seq"]["N"])) for i in items)
    return sorted((r.ts, r.seq) for r in read_readings(ddb, table, device_id, 0, 10**13, consistent=True)
                  for _ in range(r.copies))


def dlq_messages(cloud: LocalCloud) -> dict[str, dict[str, Any]]:
    """Every DLQ message by id, peeked (VisibilityTimeout 0 leaves them visible)."""
    assert cloud.stack is not None
    sqs = cloud.emulator.client("sqs")
    found: dict[str, dict[str, Any]] = {}
    for _ in range(3):
        for message in sqs.receive_message(QueueUrl=cloud.stack.outputs["dlqUrl"], MaxNumberOfMessages=10,
                                           VisibilityTimeout=0).get("Messages", []):
            found[message["MessageId"]] = json.loads(message["Body"])
    return found


def dlq_depth(cloud: LocalCloud) -> int:
    assert cloud.stack is not None
    attributes = cloud.emulator.client("sqs").get_queue_attributes(
        QueueUrl=cloud.stack.outputs["dlqUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} not met within {timeout}s")


def admin_replay(cloud: LocalCloud, *argv: str) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_ENDPOINT_URL", None)  # the stack file's endpointUrl must be what is used
    done = subprocess.run([sys.executable, "-m", "admin", "replay", "--stack-file", str(cloud.stack_file), "--json", *argv],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    return done.returncode, (json.loads(done.stdout) if done.stdout.strip() else {}), done.stderr


def test_replay_after_storage_outage_stores_every_reading_once_and_empties_the_dlq(cloud: LocalCloud) -> None:
    assert cloud.stack is not None
    registry = DeviceRegistry(cloud.emulator.client("dynamodb"), cloud.stack.outputs["devicesTableName"])
    devices = [registry.add(f"rp-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    now = int(time.time() * 1000)
    sent: dict[str, list[tuple[int, int]]] = {device: [] for device, _ in devices}
    cloud.emulator.inject_fault({"target": "DynamoDB_20120810.BatchWriteItem", "error": "AccessDeniedException",
                                 "message": "injected: writes refused", "times": 1_000_000})
    try:
        requests = 0
        for round_ in range(3):
            for device, key in devices:
                readings = [{"ts": now - 1000 * (10 * round_ + i), "seq": 10 * round_ + i, "metrics": {"v": i + 0.5}}
                            for i in range(4)]
                status, answer = post(cloud, {"readings": readings}, {"x-device-id": device, "x-device-key": key})
                assert status == 202 and answer["accepted"] == 4, answer
                sent[device] += [(r["ts"], r["seq"]) for r in readings]
                requests += 1

        # Each request is one Kinesis record; wait until the DLQ describes all of them.
        def all_given_up() -> dict[str, dict[str, Any]] | None:
            messages = dlq_messages(cloud)
            covered = sum(m["KinesisBatchInfo"]["batchSize"] for m in messages.values())
            return messages if covered >= requests else None

        messages = wait_for(all_given_up, 180, f"{requests} records described in the DLQ")
        assert all(m["requestContext"]["condition"] == "RetryAttemptsExhausted" for m in messages.values())
        assert sum(m["KinesisBatchInfo"]["batchSize"] for m in messages.values()) == requests
        assert all(stored_readings(cloud, device) == [] for device in sent)  # nothing got through
    finally:
        cloud.emulator.clear_faults()

    code, report, err = admin_replay(cloud, "--dry-run")
    assert code == 0, err
    assert report["counts"] == {"would-replay": len(messages)} and report["deleted"] == 0
    assert all(stored_readings(cloud, device) == [] for device in sent) and dlq_depth(cloud) == len(messages)

    code, report, err = admin_replay(cloud)
    assert code == 0, (err, report)
    assert report["counts"] == {"replayed": len(messages)} and report["deleted"] == len(messages)
    assert report["recordsRead"] == requests and report["readingsStored"] == 4 * requests
    for device, expected in sent.items():
        assert stored_readings(cloud, device) == sorted(expected)  # every reading, exactly once
        latest = registry.get(device)
        assert (latest["latestTs"], latest["latestSeq"]) == max(expected)
    assert dlq_messages(cloud) == {} and dlq_depth(cloud) == 0

    code, report, err = admin_replay(cloud)
    assert code == 0, err
    assert report["messages"] == [] and report["deleted"] == 0 and report["readingsStored"] == 0
    for device, expected in sent.items():
        assert stored_readings(cloud, device) == sorted(expected)
