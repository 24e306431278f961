"""The provisioner on small programs of our own: generic behaviour, independent of the real program."""
from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from localcloud.emulator import Emulator
from localcloud.provisioner import ProvisionError, provision, write_stack_json

API_URL = "http://127.0.0.1:9"  # never contacted: only becomes the APIs' endpoint


def make_project(root: Path, body: str, *, project_config: str = "", stack_config: str = "",
                 stack: str = "dev") -> Path:
    """A Pulumi project dir: Pulumi.yaml, Pulumi.<stack>.yaml, __main__.py, code/app.py."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Pulumi.yaml").write_text(f"name: tinyproj\nruntime: python\n{project_config}")
    (root / f"Pulumi.{stack}.yaml").write_text(stack_config or "config: {}\n")
    (root / "code").mkdir(exist_ok=True)
    (root / "code" / "app.py").write_text("def handler(event, context):\n    return {'ok': True}\n")
    (root / "__main__.py").write_text(
        "import json\nimport pulumi\nimport pulumi_aws as aws\n\n" + textwrap.dedent(body)
    )
    return root


@pytest.fixture()
def suffix() -> str:
    return uuid.uuid4().hex[:6]


def test_stream_table_function_are_created_with_declared_settings(emulator: Emulator, tmp_path: Path, suffix: str) -> None:
    project = make_project(
        tmp_path / "proj",
        f"""
        cfg = pulumi.Config()
        provider = aws.Provider("aws", region="us-east-1",
                                default_tags=aws.ProviderDefaultTagsArgs(tags={{"team": "iot", "env": "t"}}))
        opts = pulumi.ResourceOptions(provider=provider)
        stream = aws.kinesis.Stream("events", shard_count=cfg.require_int("shards"), retention_period=48,
            stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(stream_mode="PROVISIONED"),
            encryption_type="KMS", kms_key_id="alias/aws/kinesis", tags={{"env": "override"}}, opts=opts)
        table = aws.dynamodb.Table("readings", billing_mode="PAY_PER_REQUEST", hash_key="pk", range_key="sk",
            attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S"),
                        aws.dynamodb.TableAttributeArgs(name="sk", type="S")],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name="expiresAt", enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True), opts=opts)
        role = aws.iam.Role("fn-role", assume_role_policy=json.dumps({{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Principal": {{"Service": "lambda.amazonaws.com"}}, "Action": "sts:AssumeRole"}}]}}),
            opts=opts)
        fn = aws.lambda_.Function("fn", name="tiny-fn-{suffix}", role=role.arn, runtime="python3.12",
            handler="app.handler", code=pulumi.FileArchive("./code"), timeout=7, memory_size=256,
            reserved_concurrent_executions=3,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={{"STREAM": stream.name, "TABLE": table.name}}),
            opts=opts)
        pulumi.export("streamName", stream.name)
        pulumi.export("tableName", table.name)
        pulumi.export("fn", {{"name": fn.name, "invokeArn": fn.invoke_arn}})
        pulumi.export("shardsSeen", cfg.require_int("shards"))
        pulumi.export("colour", cfg.get("colour"))
        """,
        project_config="config:\n  shards:\n    type: integer\n    default: 1\n  colour: blue\n",
        stack_config="config:\n  tinyproj:shards: 2\n",
    )
    result = provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)

    out = result.outputs
    # Config: the stack file overrides the Pulumi.yaml default; a bare default key is read too.
    assert out["shardsSeen"] == 2 and out["colour"] == "blue"
    # Auto-naming: logical name + "-" + 7 hex characters.
    assert out["streamName"].startswith("events-") and len(out["streamName"]) == len("events-") + 7

    kinesis = emulator.client("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=out["streamName"])["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 2
    assert summary["RetentionPeriodHours"] == 48
    assert summary["EncryptionType"] == "KMS" and summary["KeyId"] == "alias/aws/kinesis"
    tags = {t["Key"]: t["Value"] for t in kinesis.list_tags_for_stream(StreamName=out["streamName"])["Tags"]}
    assert tags == {"team": "iot", "env": "override"}  # provider default tags, resource tags win

    dynamodb = emulator.client("dynamodb")
    table = dynamodb.describe_table(TableName=out["tableName"])["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [("pk", "HASH"), ("sk", "RANGE")]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=out["tableName"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")
    backups = dynamodb.describe_continuous_backups(TableName=out["tableName"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    lam = emulator.client("lambda")
    fn = lam.get_function(FunctionName=f"tiny-fn-{suffix}")
    config = fn["Configuration"]
    assert (config["Handler"], config["Timeout"], config["MemorySize"], config["Runtime"]) == (
        "app.handler", 7, 256, "python3.12")
    assert config["Environment"]["Variables"] == {"STREAM": out["streamName"], "TABLE": out["tableName"]}
    assert fn["Concurrency"]["ReservedConcurrentExecutions"] == 3
    assert out["fn"]["invokeArn"] == (
        f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{config['FunctionArn']}/invocations"
    )

    spec = result.functions[f"tiny-fn-{suffix}"]
    assert spec.code_dir == (project / "code").resolve()
    assert (spec.handler, spec.timeout_s, spec.memory_mb, spec.reserved_concurrency) == ("app.handler", 7.0, 256, 3)
    assert spec.environment == {"STREAM": out["streamName"], "TABLE": out["tableName"]}
    assert {r.type for r in result.resources} >= {
        "pulumi:providers:aws", "aws:kinesis/stream:Stream", "aws:dynamodb/table:Table", "aws:lambda/function:Function"}

    stack_json = json.loads((project / ".localcloud" / "stack.json").read_text())
    assert stack_json == {**out, "endpointUrl": emulator.endpoint_url}


def test_unsupported_resource_type_is_an_error_naming_type_and_name(emulator: Emulator, tmp_path: Path) -> None:
    project = make_project(tmp_path / "ec2", """
        queue = aws.sqs.Queue("fine")
        aws.ec2.Instance("web-server", ami="ami-123", instance_type="t4g.nano")
        """)
    with pytest.raises(ProvisionError) as raised:
        provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)
    message = str(raised.value)
    assert "aws:ec2/instance:Instance" in message and "'web-server'" in message
    assert not (project / ".localcloud" / "stack.json").exists()


def test_emulator_rejection_names_the_resource(emulator: Emulator, tmp_path: Path) -> None:
    # A role policy on a role that does not exist: moto answers NoSuchEntity.
    project = make_project(tmp_path / "bad", """
        aws.iam.RolePolicy("orphan-policy", role="no-such-role-anywhere",
                           policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
        """)
    with pytest.raises(ProvisionError, match=r"aws:iam/rolePolicy:RolePolicy 'orphan-policy'.*NoSuchEntity"):
        provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)


def test_function_code_must_exist(emulator: Emulator, tmp_path: Path) -> None:
    project = make_project(tmp_path / "nocode", """
        aws.lambda_.Function("fn", role="arn:aws:iam::123456789012:role/x", runtime="python3.12",
                             handler="app.handler", code=pulumi.FileArchive("./missing"))
        """)
    with pytest.raises(ProvisionError, match=r"function 'fn': code archive './missing'"):
        provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)


def test_program_exception_is_reported_with_its_message(emulator: Emulator, tmp_path: Path) -> None:
    project = make_project(tmp_path / "raises", """
        cfg = pulumi.Config()
        cfg.require("mustBeSet")
        """)
    with pytest.raises(ProvisionError, match=r"the program failed: .*mustBeSet"):
        provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)


def test_unknown_stack_lists_the_known_ones(emulator: Emulator, tmp_path: Path) -> None:
    project = make_project(tmp_path / "stacks", "pass\n")
    with pytest.raises(ProvisionError, match=r"unknown stack 'staging'.*stacks here: dev"):
        provision(project, "staging", endpoint_url=emulator.endpoint_url, api_url=API_URL)


def test_in_process_runs_do_not_leak_between_programs(emulator: Emulator, tmp_path: Path) -> None:
    """isolate=False runs in this process; two programs in a row keep their own outputs and config."""
    first = make_project(tmp_path / "one", 'pulumi.export("who", pulumi.Config().require("name"))\n'
                         'aws.sqs.Queue("q1")\n', stack_config="config:\n  tinyproj:name: one\n")
    second = make_project(tmp_path / "two", 'pulumi.export("who", pulumi.Config().require("name"))\n',
                          stack_config="config:\n  tinyproj:name: two\n")
    a = provision(first, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL, isolate=False)
    b = provision(second, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL, isolate=False)
    assert a.outputs == {"who": "one"} and b.outputs == {"who": "two"}
    assert [r.type for r in a.resources] == ["aws:sqs/queue:Queue"] and b.resources == []


def test_stack_json_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_stack_json(state, {"apiUrl": "http://x"}, "http://emu")
    write_stack_json(state, {"apiUrl": "http://y"}, "http://emu")
    assert json.loads((state / "stack.json").read_text()) == {"apiUrl": "http://y", "endpointUrl": "http://emu"}
    assert sorted(p.name for p in state.iterdir()) == ["stack.json"]


def test_managed_policy_attachment_explains_the_emulator_switch(emulator: Emulator, tmp_path: Path, suffix: str) -> None:
    project = make_project(tmp_path / "managed", f"""
        role = aws.iam.Role("r", name="managed-{suffix}", assume_role_policy=json.dumps(
            {{"Version": "2012-10-17", "Statement": []}}))
        aws.iam.RolePolicyAttachment("basic", role=role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
        """)
    with pytest.raises(ProvisionError, match=r"RolePolicyAttachment 'basic'.*load_managed_policies=True"):
        provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)


def test_provider_functions_answered_locally_or_refused_by_name(emulator: Emulator, tmp_path: Path) -> None:
    project = make_project(tmp_path / "calls", """
        region = aws.get_region()
        identity = aws.get_caller_identity()
        pulumi.export("where", f"{region.region}/{identity.account_id}")
        """)
    assert provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL).outputs == {
        "where": "us-east-1/123456789012"}
    refused = make_project(tmp_path / "azs", "aws.get_availability_zones()\n")
    with pytest.raises(ProvisionError, match=r"aws:index/getAvailabilityZones:getAvailabilityZones"):
        provision(refused, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)


def test_kms_sns_sqs_iam_logs_and_metric_math_alarm(emulator: Emulator, tmp_path: Path, suffix: str) -> None:
    project = make_project(tmp_path / "misc", f"""
        key = aws.kms.Key("key", description="test key", enable_key_rotation=True)
        alias = aws.kms.Alias("alias", name="alias/tiny-{suffix}", target_key_id=key.key_id)
        topic = aws.sns.Topic("alerts")
        queue = aws.sqs.Queue("inbox", visibility_timeout_seconds=45, message_retention_seconds=3600)
        aws.sns.TopicSubscription("to-queue", topic=topic.arn, protocol="sqs", endpoint=queue.arn,
                                  raw_message_delivery=True)
        policy = aws.iam.Policy("read", policy=json.dumps({{"Version": "2012-10-17", "Statement": [
            {{"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}}]}}))
        role = aws.iam.Role("worker", assume_role_policy=json.dumps({{"Version": "2012-10-17", "Statement": []}}))
        aws.iam.RolePolicyAttachment("attach", role=role.name, policy_arn=policy.arn)
        logs = aws.cloudwatch.LogGroup("logs", name="/tiny/{suffix}", retention_in_days=3)
        aws.cloudwatch.MetricAlarm("ratio", name="tiny-ratio-{suffix}", comparison_operator="GreaterThanThreshold",
            evaluation_periods=2, datapoints_to_alarm=1, threshold=0.05, treat_missing_data="notBreaching",
            alarm_actions=[topic.arn], metric_queries=[
                aws.cloudwatch.MetricAlarmMetricQueryArgs(id="e", expression="errors / requests", return_data=True),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(id="errors", metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/ApiGateway", metric_name="5xx", period=60, stat="Sum", dimensions={{"ApiId": "x"}})),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(id="requests", metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace="AWS/ApiGateway", metric_name="Count", period=60, stat="Sum", dimensions={{"ApiId": "x"}})),
            ])
        pulumi.export("topic", topic.arn)
        pulumi.export("queue", queue.url)
        pulumi.export("role", role.name)
        pulumi.export("policy", policy.arn)
        pulumi.export("keyArn", key.arn)
        """)
    out = provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL).outputs

    kms = emulator.client("kms")
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases[f"alias/tiny-{suffix}"] == out["keyArn"].rsplit("/", 1)[-1]
    assert kms.get_key_rotation_status(KeyId=out["keyArn"])["KeyRotationEnabled"] is True

    sqs = emulator.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=out["queue"], AttributeNames=["All"])["Attributes"]
    assert (attrs["VisibilityTimeout"], attrs["MessageRetentionPeriod"]) == ("45", "3600")
    emulator.client("sns").publish(TopicArn=out["topic"], Message="hello")
    messages = sqs.receive_message(QueueUrl=out["queue"], WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]  # subscription exists and delivers raw

    attached = emulator.client("iam").list_attached_role_policies(RoleName=out["role"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [out["policy"]]
    (group,) = emulator.client("logs").describe_log_groups(logGroupNamePrefix=f"/tiny/{suffix}")["logGroups"]
    assert group["retentionInDays"] == 3

    (alarm,) = emulator.client("cloudwatch").describe_alarms(AlarmNames=[f"tiny-ratio-{suffix}"])["MetricAlarms"]
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"], alarm["Threshold"]) == (2, 1, 0.05)
    assert alarm["TreatMissingData"] == "notBreaching" and alarm["AlarmActions"] == [out["topic"]]
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    assert queries["e"]["Expression"] == "errors / requests"
    assert queries["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xx"
    assert queries["requests"]["MetricStat"]["Stat"] == "Sum"


def test_in_process_run_restores_the_callers_environment(emulator: Emulator, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("PULUMI_CONFIG", '{"other:key": "kept"}')
    cwd = os.getcwd()
    project = make_project(tmp_path / "env", 'pulumi.export("n", pulumi.Config().get("n"))\n',
                           stack_config="config:\n  tinyproj:n: '1'\n")
    result = provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL, isolate=False)
    assert result.outputs == {"n": "1"}
    assert os.environ["PULUMI_CONFIG"] == '{"other:key": "kept"}' and os.getcwd() == cwd


def test_provision_run_cancel_stops_the_child_and_cleans_up(tmp_path: Path) -> None:
    from localcloud.provisioner import ProvisionRun

    project = make_project(tmp_path / "cancel", "pass\n")
    run = ProvisionRun(project, "dev", api_url=API_URL, state_dir=tmp_path / "state")
    child = run._proc
    assert child is not None and child.poll() is None  # waiting for the emulator URL
    run.cancel()
    run.cancel()
    assert child.returncode is not None
    assert list((tmp_path / "state").iterdir()) == []  # scratch dir removed
    with pytest.raises(ProvisionError, match="already finished or cancelled"):
        run.finish("http://127.0.0.1:1")


def test_in_process_run_survives_a_closed_event_loop(emulator: Emulator, tmp_path: Path) -> None:
    """Pulumi mock tests that ran earlier may leave the caller's event loop closed."""
    import asyncio
    import threading

    project = make_project(tmp_path / "loop", 'pulumi.export("ok", True)\naws.sqs.Queue("q")\n')
    box: dict[str, object] = {}

    def caller() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.close()
        try:
            box["outputs"] = provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL,
                                       isolate=False).outputs
        except BaseException as exc:  # noqa: BLE001 - asserted below
            box["error"] = exc

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join()
    assert box == {"outputs": {"ok": True}}


def test_zip_code_archive_is_unpacked_for_the_runner(emulator: Emulator, tmp_path: Path, suffix: str) -> None:
    import zipfile

    project = make_project(tmp_path / "zipped", f"""
        role = aws.iam.Role("r", assume_role_policy=json.dumps({{"Version": "2012-10-17", "Statement": []}}))
        aws.lambda_.Function("fn", name="zipped-{suffix}", role=role.arn, runtime="python3.12",
                             handler="app.handler", code=pulumi.FileArchive("./bundle.zip"))
        """)
    with zipfile.ZipFile(project / "bundle.zip", "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 'zipped'\n")
    stale = project / ".localcloud" / "code" / "fn" / "stale.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("left over\n")
    result = provision(project, "dev", endpoint_url=emulator.endpoint_url, api_url=API_URL)
    code_dir = result.functions[f"zipped-{suffix}"].code_dir
    assert sorted(p.name for p in code_dir.iterdir()) == ["app.py"]
    assert "zipped" in (code_dir / "app.py").read_text()
