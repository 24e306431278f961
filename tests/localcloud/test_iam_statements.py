"""Least privilege, exercised: removing any one statement of any role's policy breaks the
path that needs it, locally, the way it breaks on AWS; putting it back heals the path.

The cases come from the real program's graph (the dev stack under the Pulumi mocks,
at collection time), so a statement added to a component gets its own case, and
fails until ``PATHS`` knows a local path that needs one of its actions.

One LocalCloud (dev stack) for the module; each case swaps the role's provisioned
policy for one without the statement (as the administrator, with PutRolePolicy),
drives the path, and restores the policy. Paths:
- the authorizer's device lookup and the ingest function's PutRecords: real HTTP
  requests through the gateway and the Lambda workers (end to end);
- the mapping's stream reads: the running poller of the local cloud (end to end:
  a reading accepted while the reads are refused is stored once they are allowed);
- the processor's writes: its real ``process_batch`` with a client under its role;
- the on-failure destination: the running poller's own delivery code;
- log delivery: the runner's gate (real CreateLogStream/PutLogEvents under the role,
  about once a second); the function keeps working, its log lines are lost;
- X-Ray uploads, which the local runner does not make at all (nothing is traced
  locally): the call the X-Ray daemon would make, signed with the role's credentials.
"""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from admin.registry import DeviceRegistry
from handlers.telemetry.backoff import Backoff, RetryPolicy
from handlers.telemetry.config import ProcessorConfig
from handlers.telemetry.process import process_batch
from handlers.telemetry.records import pack
from handlers.telemetry.validation import Reading
from localcloud.cloud import LocalCloud
from localcloud.iam_enforcer import clear_refusals, fetch_refusals
from localcloud.iam_identity import Credentials, assume_role, role_client, role_of
from localcloud.poller import StreamRecord

pytestmark = pytest.mark.e2e

INFRA = Path(__file__).resolve().parents[1] / "infra"
ROLES = ("authorizer", "ingest", "processor")


def graph_statements(stack: str = "dev") -> list[tuple[str, int, tuple[str, ...]]]:
    """(role, statement index, actions) of every role policy the program declares."""
    done = subprocess.run([sys.executable, str(INFRA / "infra_mockrun.py"), stack], cwd="/",
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"mock run of {stack} failed:\n{done.stderr}")
    cases = []
    for resource in json.loads(done.stdout)["resources"]:
        if resource["type"] != "aws:iam/rolePolicy:RolePolicy":
            continue
        role = resource["name"].removeprefix("iot-ingest-").removesuffix("-policy")
        assert role in ROLES, f"a role policy of an unknown role: {resource['name']}"
        for index, statement in enumerate(json.loads(resource["inputs"]["policy"])["Statement"]):
            actions = statement["Action"]
            cases.append((role, index, tuple([actions] if isinstance(actions, str) else actions)))
    return cases


CASES = graph_statements()


# ---- the local cloud and its roles ---------------------------------------------------------------

@dataclass
class Ctx:
    cloud: LocalCloud
    registry: DeviceRegistry
    pending: list[str] = field(default_factory=list)  # devices whose readings must arrive once healed

    @property
    def outputs(self) -> dict[str, Any]:
        assert self.cloud.stack is not None
        return self.cloud.stack.outputs

    @property
    def endpoint(self) -> str:
        return self.cloud.endpoint_url

    def function(self, role: str) -> str:
        return str(self.outputs["functionNames"][role])

    def credentials(self, role: str) -> Credentials:
        return self.cloud.dataplane.identities.credentials(self.function(role))

    def role_policy(self, role: str) -> tuple[str, str, dict[str, Any]]:
        """(role name, policy name, document) as the provisioner created them."""
        assert self.cloud.stack is not None
        for resource in self.cloud.stack.resources:
            if resource.type == "aws:iam/rolePolicy:RolePolicy" and resource.name == f"iot-ingest-{role}-policy":
                policy = resource.state["policy"]
                return resource.state["role"], resource.state["name"], json.loads(policy) if isinstance(policy, str) else policy
        raise AssertionError(f"no provisioned policy for {role}")

    def session(self, role: str, name: str) -> Credentials:
        """A session of the role of its own (as another execution environment of the function has), so
        its refusals can be told from those of the running function's."""
        role_arn = role_of(self.cloud.stack, self.function(role))
        assert role_arn is not None
        return assume_role(self.endpoint, self.cloud.stack.region, role_arn, name)

    def refusals(self, role: str, actions: set[str], session: str | None = None) -> list[dict[str, Any]]:
        role_name = self.role_policy(role)[0]
        marker = f":assumed-role/{role_name}/{session or ''}"
        return [r for r in fetch_refusals(self.endpoint)
                if (r["principal"].endswith(marker) if session else marker in r["principal"])
                and r["action"] in actions]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    cloud = LocalCloud(stack="dev", state_dir=tmp_path_factory.mktemp("iam-cloud"))
    cloud.start()
    try:
        assert cloud.stack is not None
        yield Ctx(cloud, DeviceRegistry(cloud.emulator.client("dynamodb"), cloud.stack.outputs["devicesTableName"]))
    finally:
        cloud.stop()


@contextlib.contextmanager
def without_statement(ctx: Ctx, role: str, index: int) -> Iterator[dict[str, Any]]:
    role_name, policy_name, document = ctx.role_policy(role)
    reduced = {**document, "Statement": [s for i, s in enumerate(document["Statement"]) if i != index]}
    iam = ctx.cloud.emulator.client("iam")
    iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(reduced))
    try:
        yield document["Statement"][index]
    finally:
        iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(document))


# ---- helpers -------------------------------------------------------------------------------------

def post_reading(ctx: Ctx, device: str, key: str) -> int:
    port = int(ctx.cloud.api_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = json.dumps({"readings": [{"ts": int(time.time() * 1000), "metrics": {"v": 1}}]})
        conn.request("POST", "/v1/telemetry", body=body, headers={
            "content-type": "application/json", "x-device-id": device, "x-device-key": key})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def stored(ctx: Ctx, device: str) -> list[dict[str, Any]]:
    out = ctx.cloud.emulator.client("dynamodb").query(
        TableName=ctx.outputs["readingsTableName"], KeyConditionExpression="deviceId = :d",
        ExpressionAttributeValues={":d": {"S": device}}, ConsistentRead=True)
    return list(out["Items"])


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not seen within {timeout}s")


def error_code(fn: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        fn()
    return str(caught.value.response["Error"]["Code"])


# ---- paths ---------------------------------------------------------------------------------------

class DeviceLookup:
    """Authorizer: a registered device's request is refused (403) when the lookup is denied."""

    def denied(self, ctx: Ctx, role: str) -> None:
        clear_refusals(ctx.endpoint)
        device, key = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        assert post_reading(ctx, device, key) == 403
        assert len(ctx.refusals(role, {"dynamodb:GetItem"})) == 1  # not retried

    def allowed(self, ctx: Ctx, role: str) -> None:
        device, key = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        assert post_reading(ctx, device, key) == 202


class StreamPut:
    """Ingest: an authorised request fails (500, nothing accepted) when PutRecords is denied."""

    def denied(self, ctx: Ctx, role: str) -> None:
        clear_refusals(ctx.endpoint)
        device, key = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        assert post_reading(ctx, device, key) == 500
        assert len(ctx.refusals(role, {"kinesis:PutRecords"})) == 1  # a deployment error, not retried

    def allowed(self, ctx: Ctx, role: str) -> None:
        device, key = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        assert post_reading(ctx, device, key) == 202
        wait_for(lambda: stored(ctx, device), "the reading stored")


class ProcessorWrite:
    """Processor: ``process_batch`` raises AccessDeniedException (no retry of it) when a write is denied."""

    def __init__(self, action: str) -> None:
        self.action = action

    def _run(self, ctx: Ctx, role: str) -> Any:
        device, _ = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        now = int(time.time() * 1000)
        data = pack(device, str(uuid.uuid4()), now, [Reading(now, 0, {"v": 1.5})])[0]
        event = {"Records": [{"kinesis": {"sequenceNumber": "1", "partitionKey": device,
                                          "data": base64.b64encode(data).decode()}}]}
        creds = ctx.session(role, "iam-test")
        # The processor handler's own client settings (handlers/processor.py), under its role.
        dynamodb = boto3.client("dynamodb", endpoint_url=ctx.endpoint, region_name=ctx.cloud.stack.region,
                                **creds.client_kwargs(),
                                config=Config(connect_timeout=1, read_timeout=3,
                                              retries={"mode": "standard", "total_max_attempts": 1}))
        config = ProcessorConfig(ctx.outputs["readingsTableName"], ctx.outputs["devicesTableName"])
        return process_batch(event, dynamodb=dynamodb, config=config,
                             new_backoff=lambda: Backoff(RetryPolicy(budget_s=1.0)))

    def denied(self, ctx: Ctx, role: str) -> None:
        clear_refusals(ctx.endpoint)
        assert error_code(lambda: self._run(ctx, role)) == "AccessDeniedException"
        # Refused once: an AccessDenied is a deployment error, never retried as transient.
        assert len(ctx.refusals(role, {self.action}, session="iam-test")) == 1

    def allowed(self, ctx: Ctx, role: str) -> None:
        outcome = self._run(ctx, role)
        assert outcome.failures == [] and outcome.stored == 1 and outcome.latest_updated == 1


class StreamRead:
    """The mapping's poller (Lambda, under the processor's role): while its reads are refused
    an accepted reading is not processed; once allowed it is stored (nothing lost)."""

    READS = {"kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards",
             "kinesis:DescribeStream", "kinesis:DescribeStreamSummary"}

    def denied(self, ctx: Ctx, role: str) -> None:
        clear_refusals(ctx.endpoint)
        wait_for(lambda: ctx.refusals(role, self.READS), "the poller's reads refused")
        device, key = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        assert post_reading(ctx, device, key) == 202
        clear_refusals(ctx.endpoint)
        wait_for(lambda: ctx.refusals(role, self.READS), "the poller's reads refused after the put")
        assert stored(ctx, device) == []
        ctx.pending.append(device)

    def allowed(self, ctx: Ctx, role: str) -> None:
        device, key = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        assert post_reading(ctx, device, key) == 202
        for each in [*ctx.pending, device]:
            wait_for(lambda each=each: len(stored(ctx, each)) == 1, f"{each}'s reading stored once")
        ctx.pending.clear()


class FailureDestination:
    """On-failure destination (Lambda, under the processor's role): the invocation record of a
    discarded batch reaches the DLQ, or counts as a DestinationDeliveryFailure when SendMessage is denied."""

    def _discard(self, ctx: Ctx) -> tuple[Any, str]:
        poller = ctx.cloud.dataplane.pollers[0]
        sequence = str(uuid.uuid4().int)
        poller._discard([StreamRecord("shardId-000000000000", sequence, "iam-test", b"", time.time())],
                        "RetryAttemptsExhausted", 1, None)
        return poller, sequence

    def denied(self, ctx: Ctx, role: str) -> None:
        poller = ctx.cloud.dataplane.pollers[0]
        before = poller.stats["destination_failures"]
        self._discard(ctx)
        assert poller.stats["destination_failures"] == before + 1
        assert ctx.refusals(role, {"sqs:SendMessage"})

    def allowed(self, ctx: Ctx, role: str) -> None:
        _, sequence = self._discard(ctx)
        sqs = ctx.cloud.emulator.client("sqs")

        def find() -> Any:
            for message in sqs.receive_message(QueueUrl=ctx.outputs["dlqUrl"], MaxNumberOfMessages=10,
                                               VisibilityTimeout=0).get("Messages", []):
                if json.loads(message["Body"])["KinesisBatchInfo"]["startSequenceNumber"] == sequence:
                    return message
            return None

        message = wait_for(find, "the invocation record in the DLQ")
        sqs.delete_message(QueueUrl=ctx.outputs["dlqUrl"], ReceiptHandle=message["ReceiptHandle"])


class LogDelivery:
    """Lambda's log delivery under the function's role (the runner's gate, localcloud/log_delivery.py):
    while it is refused the function still works but its log lines are lost; once allowed they flow again."""

    LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}

    def _file(self, ctx: Ctx, role: str) -> Path:
        return ctx.cloud.state_dir / "logs" / "lambda" / f"{ctx.function(role)}.log"

    def _traffic(self, ctx: Ctx, role: str) -> str:
        """One request that runs the role's function; returns the device (its reading is stored)."""
        device, key = ctx.registry.add(f"iam-{uuid.uuid4().hex[:8]}")
        assert post_reading(ctx, device, key) == 202
        if role == "processor":
            wait_for(lambda: stored(ctx, device), "the reading stored")
        return device

    def denied(self, ctx: Ctx, role: str) -> None:
        delivery = ctx.cloud.dataplane.log_deliveries[ctx.function(role)]
        clear_refusals(ctx.endpoint)

        def refused() -> bool:
            self._traffic(ctx, role)
            return bool(ctx.refusals(role, self.LOGS)) and delivery.dropped > 0

        wait_for(refused, "log delivery refused")
        size, dropped = self._file(ctx, role).stat().st_size, delivery.dropped
        self._traffic(ctx, role)  # the function still works...
        wait_for(lambda: delivery.dropped >= dropped + 3, "its START/END/REPORT lines dropped")
        assert self._file(ctx, role).stat().st_size == size  # ...but nothing of it reached its log

    def allowed(self, ctx: Ctx, role: str) -> None:
        size = self._file(ctx, role).stat().st_size

        def grew() -> bool:
            self._traffic(ctx, role)
            return self._file(ctx, role).stat().st_size > size

        wait_for(grew, "log lines delivered again")


class TraceUpload:
    """Active tracing: the X-Ray daemon's PutTraceSegments under the function's role."""

    def _upload(self, ctx: Ctx, role: str) -> None:
        xray = role_client("xray", ctx.endpoint, ctx.cloud.stack.region, ctx.credentials(role))
        now = time.time()
        segment = {"name": ctx.function(role), "id": uuid.uuid4().hex[:16],
                   "trace_id": f"1-{int(now):08x}-{uuid.uuid4().hex[:24]}", "start_time": now, "end_time": now + 0.01}
        xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(segment)])

    def denied(self, ctx: Ctx, role: str) -> None:
        assert error_code(lambda: self._upload(ctx, role)) == "AccessDeniedException"

    def allowed(self, ctx: Ctx, role: str) -> None:
        self._upload(ctx, role)


#: action -> the local path that needs it. A statement is covered by the path of its first listed action.
PATHS: dict[str, Any] = {
    "dynamodb:GetItem": DeviceLookup(),
    "kinesis:PutRecords": StreamPut(),
    "dynamodb:BatchWriteItem": ProcessorWrite("dynamodb:BatchWriteItem"),
    "dynamodb:UpdateItem": ProcessorWrite("dynamodb:UpdateItem"),
    "kinesis:GetRecords": StreamRead(),
    "kinesis:ListShards": StreamRead(),
    "kinesis:GetShardIterator": StreamRead(),
    "sqs:SendMessage": FailureDestination(),
    "logs:CreateLogStream": LogDelivery(),
    "logs:PutLogEvents": LogDelivery(),
    "xray:PutTraceSegments": TraceUpload(),
}


def test_the_graph_has_every_role_policy() -> None:
    assert {role for role, _, _ in CASES} == set(ROLES)
    assert len(CASES) >= 9


@pytest.mark.parametrize(("role", "index", "actions"), CASES,
                         ids=[f"{role}-{index}-{'+'.join(a.split(':')[1] for a in actions)}" for role, index, actions in CASES])
def test_removing_a_statement_breaks_its_path(ctx: Ctx, role: str, index: int, actions: tuple[str, ...]) -> None:
    path = next((PATHS[a] for a in actions if a in PATHS), None)
    assert path is not None, f"no local path needs {role} statement {index} ({', '.join(actions)}): add one to PATHS"
    with without_statement(ctx, role, index) as removed:
        assert tuple([removed["Action"]] if isinstance(removed["Action"], str) else removed["Action"]) == actions
        path.denied(ctx, role)
    path.allowed(ctx, role)
