"""End to end on the local cloud: real HTTP -> authorizer -> ingest -> Kinesis ->
processor -> DynamoDB, plus throttling, the DLQ and an alarm reaching its topic.

One LocalCloud (dev stack) for the module. Alarms run with a time scale of
0.02 (a declared 60 s period lasts 1.2 s) so the processor-errors alarm can be
driven by real failures in seconds. "Nothing was written" is checked with a
marker: the dev stream has one shard and per-key order is kept, so once a later
marker reading is stored, every earlier record has been processed.
"""
from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import Any, Callable, Iterator

import pytest

from admin.readings import StoredReading, read_readings
from admin.registry import DeviceRegistry
from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state = tmp_path_factory.mktemp("e2e-cloud")
    lc = LocalCloud(stack="dev", state_dir=state,
                    dataplane_options={"alarm_time_scale": 0.02, "evaluation_interval_s": 0.25})
    lc.start()
    try:
        yield lc
    finally:
        lc.stop()


@pytest.fixture(scope="module")
def registry(cloud: LocalCloud) -> DeviceRegistry:
    assert cloud.stack is not None
    return DeviceRegistry(cloud.emulator.client("dynamodb"), cloud.stack.outputs["devicesTableName"])


def post(cloud: LocalCloud, path: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    port = int(cloud.api_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", path, body=raw, headers={"content-type": "application/json", **headers})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})
    finally:
        conn.close()


def readings(cloud: LocalCloud, device_id: str) -> list[StoredReading]:
    """The device's readings of the last hour and the next, through the operators' reader."""
    assert cloud.stack is not None
    ddb = cloud.emulator.client("dynamodb")
    return list(read_readings(ddb, cloud.stack.outputs["readingsTableName"], device_id,
                              now_ms() - 3_600_000, now_ms() + 3_600_000, consistent=True))


def items(cloud: LocalCloud, device_id: str) -> list[dict[str, Any]]:
    assert cloud.stack is not None
    return cloud.emulator.client("dynamodb").query(
        TableName=cloud.stack.outputs["readingsTableName"], KeyConditionExpression="deviceId = :d",
        ExpressionAttributeValues={":d": {"S": device_id}}, ConsistentRead=True)["Items"]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {timeout}s")


def now_ms() -> int:
    return int(time.time() * 1000)


def marker(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    """Post one reading from a fresh device and wait until it is stored."""
    device, key = registry.add(f"marker-{uuid.uuid4().hex[:8]}")
    status, _ = post(cloud, "/v1/telemetry", {"readings": [{"ts": now_ms(), "metrics": {"m": 1}}]},
                     {"x-device-id": device, "x-device-key": key})
    assert status == 202
    wait_for(lambda: readings(cloud, device), what="marker stored")


def test_readings_land_exactly_once_and_resend_is_idempotent(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    device, key = registry.add(f"dev-{uuid.uuid4().hex[:8]}")
    ts = now_ms()
    body = {"deviceId": device, "readings": [{"ts": ts - i * 1000, "seq": i, "metrics": {"temp": 20.5 + i}}
                                             for i in range(3)]}
    auth = {"x-device-id": device, "x-device-key": key}
    status, answer = post(cloud, "/v1/telemetry", body, auth)
    assert status == 202 and answer["accepted"] == 3 and answer["requestId"]
    wait_for(lambda: len(readings(cloud, device)) == 3, what="3 readings stored")
    status, _ = post(cloud, "/v1/telemetry", body, auth)  # the device retries the same request
    assert status == 202
    marker(cloud, registry)
    stored = readings(cloud, device)
    assert [(r.ts, r.seq, r.metrics, r.copies) for r in stored] == [
        (ts - i * 1000, i, {"temp": 20.5 + i}, 1) for i in (2, 1, 0)]
    assert len(items(cloud, device)) == 1  # one request, one compact item, written twice under one key


def test_a_later_request_for_the_same_ts_seq_wins(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    device, key = registry.add(f"rep-{uuid.uuid4().hex[:8]}")
    auth = {"x-device-id": device, "x-device-key": key}
    ts = now_ms()
    first = {"readings": [{"ts": ts, "seq": 1, "metrics": {"v": 1}}, {"ts": ts + 1, "seq": 0, "metrics": {"v": 2}}]}
    assert post(cloud, "/v1/telemetry", first, auth)[0] == 202
    wait_for(lambda: len(readings(cloud, device)) == 2, what="first request stored")
    time.sleep(0.01)  # a later receivedAt
    assert post(cloud, "/v1/telemetry", {"readings": [{"ts": ts, "seq": 1, "metrics": {"v": 9}}]}, auth)[0] == 202
    wait_for(lambda: len(items(cloud, device)) == 2, what="second request stored")
    assert [(r.ts, r.metrics, r.copies) for r in readings(cloud, device)] == [(ts, {"v": 9}, 2), (ts + 1, {"v": 2}, 1)]


def test_bad_credentials_and_spoofed_device_write_nothing(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    good, good_key = registry.add(f"good-{uuid.uuid4().hex[:8]}")
    revoked, revoked_key = registry.add(f"rev-{uuid.uuid4().hex[:8]}")
    registry.revoke(revoked)
    body = {"readings": [{"ts": now_ms(), "metrics": {"v": 1}}]}
    assert post(cloud, "/v1/telemetry", body, {"x-device-id": good}) == (401, {"message": "Unauthorized"})
    assert post(cloud, "/v1/telemetry", body, {}) == (401, {"message": "Unauthorized"})
    assert post(cloud, "/v1/telemetry", body, {"x-device-id": good, "x-device-key": "wrong-key"}) == \
        (403, {"message": "Forbidden"})
    assert post(cloud, "/v1/telemetry", body, {"x-device-id": revoked, "x-device-key": revoked_key}) == \
        (403, {"message": "Forbidden"})
    nobody = "nobody-" + uuid.uuid4().hex[:6]
    assert post(cloud, "/v1/telemetry", body, {"x-device-id": nobody, "x-device-key": good_key})[0] == 403
    status, answer = post(cloud, "/v1/telemetry", {**body, "deviceId": revoked},
                          {"x-device-id": good, "x-device-key": good_key})
    assert status == 403 and answer["error"] == "device_mismatch"
    marker(cloud, registry)
    assert readings(cloud, good) == [] and readings(cloud, revoked) == [] and readings(cloud, nobody) == []


def test_badly_framed_requests_write_nothing(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    """Valid credentials and a valid body, framed so that API Gateway would refuse the request before any
    function: 400 and nothing stored (the gateway used to deliver the first five, and 7 readings were stored)."""
    import socket

    device, key = registry.add(f"frame-{uuid.uuid4().hex[:8]}")
    body = json.dumps({"readings": [{"ts": now_ms(), "metrics": {"v": 1}}]}).encode()
    n = len(body)
    port = int(cloud.api_url.rsplit(":", 1)[1])
    cases = [([f"Content-Length: +{n}"], False), ([f"Content-Length: {n // 10}_{n % 10}"], False),
             (["Content-Length: -1"], True), ([f"Content-Length: {n}", f"Content-Length: {n + 1}"], False),
             ([f"Content-Length: {n + 5}"], True), (["Transfer-Encoding: identity", f"Content-Length: {n}"], False)]
    for framing, hang_up in cases:
        head = ["POST /v1/telemetry HTTP/1.1", "Host: gw", f"x-device-id: {device}", f"x-device-key: {key}",
                "content-type: application/json", "Connection: close", *framing]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            if hang_up:
                sock.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 400 "), (framing, reply[:100])
    marker(cloud, registry)
    assert readings(cloud, device) == []
    # The same body, framed correctly, is stored: the refusals were about framing alone.
    assert post(cloud, "/v1/telemetry", body, {"x-device-id": device, "x-device-key": key})[0] == 202
    wait_for(lambda: readings(cloud, device), what="the correctly framed reading stored")


def test_poison_pill_goes_to_dlq_without_blocking(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    assert cloud.stack is not None
    outputs = cloud.stack.outputs
    kinesis, sqs = cloud.emulator.client("kinesis"), cloud.emulator.client("sqs")
    device, key = registry.add(f"pp-{uuid.uuid4().hex[:8]}")
    put = kinesis.put_record(StreamName=outputs["streamName"], Data=b"\x00not json at all", PartitionKey=device)
    poison_seq = put["SequenceNumber"]
    status, _ = post(cloud, "/v1/telemetry", {"readings": [{"ts": now_ms(), "metrics": {"after": 1}}]},
                     {"x-device-id": device, "x-device-key": key})
    assert status == 202
    wait_for(lambda: readings(cloud, device), what="reading after the poison pill stored")

    def poison_in_dlq() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=outputs["dlqUrl"], MaxNumberOfMessages=10,
                                           VisibilityTimeout=0).get("Messages", []):
            record = json.loads(message["Body"])
            info = record["KinesisBatchInfo"]
            if int(info["startSequenceNumber"]) <= int(poison_seq) <= int(info["endSequenceNumber"]):
                return record
        return None

    record = wait_for(poison_in_dlq, what="poison pill in the DLQ")
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 4  # first try + processorMaxRetries (3)
    assert record["KinesisBatchInfo"]["streamArn"] == outputs["streamArn"]


def test_processor_errors_alarm_notifies_topic(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    assert cloud.stack is not None
    outputs = cloud.stack.outputs
    sns, sqs = cloud.emulator.client("sns"), cloud.emulator.client("sqs")
    inbox = sqs.create_queue(QueueName=f"alarm-inbox-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=outputs["alarmTopicArn"], Protocol="sqs", Endpoint=inbox_arn,
                  Attributes={"RawMessageDelivery": "true"})
    # The program names functions "<prefix>-<role>" and alarms "<prefix>-<alarm id>", so the
    # processor's errors alarm is "<processor function name>-errors".
    alarm_name = f"{outputs['functionNames']['processor']}-errors"
    device, key = registry.add(f"al-{uuid.uuid4().hex[:8]}")
    cloud.emulator.inject_fault({"target": "DynamoDB_20120810.BatchWriteItem", "error": "AccessDeniedException",
                                 "message": "injected: writes refused", "times": 100000})
    found: dict[str, Any] | None = None
    notes: list[dict[str, Any]] = []  # every notification of this alarm, in arrival order
    try:
        deadline = time.monotonic() + 30
        while found is None and time.monotonic() < deadline:
            post(cloud, "/v1/telemetry", {"readings": [{"ts": now_ms(), "metrics": {"x": 1}}]},
                 {"x-device-id": device, "x-device-key": key})
            for message in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
                note = json.loads(message["Body"])
                if note.get("AlarmName") == alarm_name:
                    notes.append(note)
                if found is None and note.get("AlarmName") == alarm_name and note.get("NewStateValue") == "ALARM":
                    found = note
            time.sleep(0.1)
    finally:
        cloud.emulator.clear_faults()
    assert found is not None, "processor errors alarm did not notify the topic"
    assert found["Trigger"]["MetricName"] == "Errors" and found["Trigger"]["Namespace"] == "AWS/Lambda"
    assert found["Trigger"]["Dimensions"] == [{"value": outputs["functionNames"]["processor"], "name": "FunctionName"}]
    assert found["OldStateValue"] == "OK"
    # With the fault cleared the errors stop, and the alarm (2 of 3 periods, missing data not
    # breaching) must go back to OK: in CloudWatch, and with an OK notification whose old state,
    # read from CloudWatch, proves the ALARM state was recorded there too, not only notified.
    cw = cloud.emulator.client("cloudwatch")
    def recovered() -> dict[str, Any] | None:
        return next((n for n in reversed(notes) if n.get("NewStateValue") == "OK"), None)

    state: dict[str, Any] = {}
    deadline = time.monotonic() + 60  # generous: periods are 1.2 s, but a loaded machine lags
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
            note = json.loads(message["Body"])
            if note.get("AlarmName") == alarm_name:
                notes.append(note)
        state = cw.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
        if recovered() is not None and state["StateValue"] == "OK":
            break
        time.sleep(0.1)
    last_ok = recovered()
    assert last_ok is not None, f"no OK notification after the fault was cleared; state: {state.get('StateValue')}"
    assert last_ok["OldStateValue"] == "ALARM" and state["StateValue"] == "OK"


def test_metrics_and_access_log_use_aws_names(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    """What the alarms watch reaches the emulator's CloudWatch under AWS's names and dimensions."""
    from datetime import datetime, timedelta, timezone

    assert cloud.stack is not None and cloud.dataplane is not None
    outputs = cloud.stack.outputs
    # Everything below is produced here, so the test passes alone as well as after the others.
    assert post(cloud, "/v1/telemetry", {"readings": []}, {"x-device-id": "nobody", "x-device-key": "k"})[0] == 403
    marker(cloud, registry)
    cw = cloud.emulator.client("cloudwatch")
    now = datetime.now(timezone.utc)

    def total(namespace: str, name: str, dims: dict[str, str]) -> float:
        points = cw.get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
            StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1), Period=3600,
            Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    api = {"ApiId": outputs["apiId"], "Stage": "$default"}
    stream = {"StreamName": outputs["streamName"]}
    expected = [("AWS/ApiGateway", "Count", api), ("AWS/ApiGateway", "4xx", api),
                *[("AWS/Lambda", "Invocations", {"FunctionName": outputs["functionNames"][role]})
                  for role in ("authorizer", "ingest", "processor")],
                ("AWS/Kinesis", "IncomingRecords", stream), ("AWS/Kinesis", "PutRecords.TotalRecords", stream),
                ("IotIngest", "ReadingsStored", {"service": "processor"})]  # EMF from the handler

    def missing() -> list[str]:
        # The processor's EMF line reaches the monitor after the item is stored (it is printed
        # when the handler returns), and a background flush may hold the batch: poll.
        cloud.dataplane.monitor.flush()
        return [f"{ns} {name}" for ns, name, dims in expected if not total(ns, name, dims) > 0]

    deadline = time.monotonic() + 30
    while missing() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert missing() == []
    lines = [json.loads(line) for line in (cloud.state_dir / "logs" / "access.log").read_text().splitlines()]
    assert {"requestId", "status", "routeKey", "integrationLatency"} <= set(lines[-1])
    assert any(line["status"] == "202" and line["routeKey"] == "POST /v1/telemetry" for line in lines)


def test_stage_throttle_returns_429_beyond_burst_and_rate(cloud: LocalCloud) -> None:
    """dev declares burst 100, rate 50/s: 8 clients offering far more must see 429s, and
    never more successes than burst + rate x elapsed (nor fewer than the burst).

    The clients keep sending until 20 requests were throttled (deadline 60 s) rather than a
    fixed 320, so a slow, loaded machine takes longer instead of failing."""
    import threading

    port = int(cloud.api_url.rsplit(":", 1)[1])
    statuses: list[int] = []
    bodies: list[bytes] = []
    lock = threading.Lock()
    stop_at = [0.0]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while True:
                with lock:
                    if statuses.count(429) >= 20 or time.monotonic() > stop_at[0]:
                        return
                conn.request("GET", "/health")
                response = conn.getresponse()
                body = response.read()
                with lock:
                    statuses.append(response.status)
                    if response.status == 429:
                        bodies.append(body)
        finally:
            conn.close()

    time.sleep(2.5)  # earlier tests may have used tokens: let the bucket refill to its burst
    started = time.monotonic()
    stop_at[0] = started + 60
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ok, throttled = statuses.count(200), statuses.count(429)
    assert ok + throttled == len(statuses) and throttled > 0
    assert 100 <= ok <= 100 + 50 * elapsed + 1
    assert all(json.loads(b) == {"message": "Too Many Requests"} for b in bodies)


def test_every_aws_metric_published_is_aws_shaped_and_counted_once(cloud: LocalCloud, registry: DeviceRegistry) -> None:
    """After the module's run (traffic, throttling, a DLQ, injected faults), everything the local
    cloud published under AWS/* is a metric AWS publishes, with a dimension set AWS uses for it
    (localcloud/aws_metrics.py); and a record put is one IncomingRecords, not one per observer."""
    from localcloud.aws_metrics import not_aws

    assert cloud.dataplane is not None and cloud.stack is not None
    monitor = cloud.dataplane.monitor
    time.sleep(2.5)  # the throttle test may have emptied the stage's token bucket: let it refill
    marker(cloud, registry)  # traffic of its own, so the test also passes alone
    published = monitor.published()
    assert {("AWS/Kinesis", "IncomingRecords"), ("AWS/Lambda", "Invocations"),
            ("AWS/ApiGateway", "Count")} <= {(ns, n) for ns, n, _ in published}
    assert not_aws(published) == []
    stream = {"StreamName": cloud.stack.outputs["streamName"]}

    def put_vs_incoming() -> tuple[float, float]:
        put = (monitor.total("AWS/Kinesis", "PutRecords.SuccessfulRecords", stream)
               + monitor.total("AWS/Kinesis", "PutRecord.Success", stream))
        return put, monitor.total("AWS/Kinesis", "IncomingRecords", stream)

    deadline = time.monotonic() + 20  # metrics travel through the workers' log pumps: let them land
    while put_vs_incoming()[0] != put_vs_incoming()[1] and time.monotonic() < deadline:
        time.sleep(0.1)
    put, incoming = put_vs_incoming()
    assert put > 0 and incoming == put
