"""The provisioner on the real program (dev and prod): what lands in the emulator is what the stacks declare."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from localcloud.emulator import Emulator
from localcloud.model import ProvisionedStack
from localcloud.provisioner import ProvisionError, provision
from settings.alarm_catalog import ALARM_IDS

REPO = Path(__file__).resolve().parents[2]
API_URL = "http://127.0.0.1:9"
CONTRACT_OUTPUTS = {"apiUrl", "apiId", "streamName", "streamArn", "readingsTableName", "devicesTableName",
                    "dlqUrl", "alarmTopicArn", "dashboardName", "functionNames"}


def copy_program(target: Path) -> Path:
    """The program without tests/venv: what `pulumi up` would see."""
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy2(REPO / name, target / name)
    for folder in ("settings", "components", "handlers"):
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_program(tmp_path_factory.mktemp("program"))


def _provisioned(program_dir: Path, stack: str) -> Iterator[tuple[Emulator, ProvisionedStack]]:
    # Own emulator per stack: function and dashboard names are fixed per stack.
    with Emulator() as emu:
        yield emu, provision(program_dir, stack, endpoint_url=emu.endpoint_url, api_url=API_URL)


@pytest.fixture(scope="module")
def dev(program_dir: Path) -> Iterator[tuple[Emulator, ProvisionedStack]]:
    yield from _provisioned(program_dir, "dev")


@pytest.fixture(scope="module")
def prod(program_dir: Path) -> Iterator[tuple[Emulator, ProvisionedStack]]:
    yield from _provisioned(program_dir, "prod")


def test_dev_outputs_and_stack_json(dev: tuple[Emulator, ProvisionedStack], program_dir: Path) -> None:
    emu, stack = dev
    assert set(stack.outputs) == CONTRACT_OUTPUTS
    assert stack.outputs["apiUrl"] == API_URL
    assert set(stack.outputs["functionNames"]) == {"authorizer", "ingest", "processor"}
    written = json.loads((program_dir / ".localcloud" / "stack.json").read_text())
    assert written["endpointUrl"] == emu.endpoint_url
    assert {k: v for k, v in written.items() if k != "endpointUrl"} == stack.outputs


def test_dev_stream_and_tables(dev: tuple[Emulator, ProvisionedStack]) -> None:
    emu, stack = dev
    out = stack.outputs
    summary = emu.client("kinesis").describe_stream_summary(StreamName=out["streamName"])["StreamDescriptionSummary"]
    assert summary["StreamARN"] == out["streamArn"]
    assert summary["StreamModeDetails"]["StreamMode"] == "PROVISIONED" and summary["OpenShardCount"] == 1
    assert summary["RetentionPeriodHours"] == 24 and summary["EncryptionType"] == "KMS"
    dynamodb = emu.client("dynamodb")
    readings = dynamodb.describe_table(TableName=out["readingsTableName"])["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in readings["KeySchema"]] == [
        ("deviceId", "HASH"), ("readingKey", "RANGE")]
    assert dynamodb.describe_time_to_live(TableName=out["readingsTableName"])["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    devices = dynamodb.describe_table(TableName=out["devicesTableName"])["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in devices["KeySchema"]] == [("deviceId", "HASH")]
    pitr = dynamodb.describe_continuous_backups(TableName=out["devicesTableName"])["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "DISABLED"  # dev: off


def test_dev_functions_match_declarations(dev: tuple[Emulator, ProvisionedStack]) -> None:
    emu, stack = dev
    names = stack.outputs["functionNames"]
    lam = emu.client("lambda")
    ingest = lam.get_function(FunctionName=names["ingest"])
    config = ingest["Configuration"]
    assert (config["Handler"], config["Timeout"], config["MemorySize"], config["Runtime"]) == (
        "ingest.handler", 10, 256, "python3.12")  # Pulumi.dev.yaml: ingestMemoryMb 256
    env = config["Environment"]["Variables"]
    assert env["STREAM_NAME"] == stack.outputs["streamName"] and env["LOG_LEVEL"] == "DEBUG"
    assert "Concurrency" not in ingest  # dev: unreserved
    spec = stack.functions[names["processor"]]
    # the program's deterministic code zip, unpacked: the handlers, without bytecode caches
    assert (spec.code_dir / "processor.py").is_file() and (spec.code_dir / "telemetry" / "telemetry.schema.json").is_file()
    assert not list(spec.code_dir.rglob("__pycache__"))
    assert spec.environment["READINGS_TABLE"] == stack.outputs["readingsTableName"]
    assert spec.environment["READINGS_TTL_DAYS"] == "9" and spec.reserved_concurrency is None  # Pulumi.dev.yaml
    assert stack.functions[names["authorizer"]].environment["DEVICES_TABLE"] == stack.outputs["devicesTableName"]


def test_dev_api_and_mapping_specs(dev: tuple[Emulator, ProvisionedStack]) -> None:
    emu, stack = dev
    names = stack.outputs["functionNames"]
    (api,) = stack.apis
    assert api.api_id == stack.outputs["apiId"] and api.stage == "$default"
    assert (api.throttle_burst, api.throttle_rate) == (100, 50.0)
    assert api.access_log_group and api.access_log_format and "$context.requestId" in api.access_log_format
    routes = {r.route_key: r for r in api.routes}
    assert set(routes) == {"POST /v1/telemetry", "GET /health"}
    assert routes["GET /health"].authorizer is None and routes["GET /health"].function == names["ingest"]
    auth = routes["POST /v1/telemetry"].authorizer
    assert auth is not None and auth.function == names["authorizer"]
    assert auth.identity_sources == ("$request.header.x-device-id", "$request.header.x-device-key")
    assert (auth.cache_ttl_s, auth.payload_format_version, auth.simple_responses) == (15, "2.0", True)
    assert routes["POST /v1/telemetry"].integration_timeout_ms == 30000
    moto_routes = emu.client("apigatewayv2").get_routes(ApiId=api.api_id)["Items"]
    assert {r["RouteKey"] for r in moto_routes} == set(routes)

    (mapping,) = stack.mappings
    assert mapping.function == names["processor"] and mapping.stream_arn == stack.outputs["streamArn"]
    assert (mapping.batch_size, mapping.batching_window_s, mapping.parallelization_factor) == (100, 1, 1)
    assert (mapping.max_retry_attempts, mapping.max_record_age_s, mapping.starting_position) == (3, 3600, "TRIM_HORIZON")
    assert mapping.bisect_on_error and mapping.report_batch_item_failures
    assert mapping.on_failure_queue_url == stack.outputs["dlqUrl"]
    # Never created in moto (it would run docker inside every PutRecords).
    assert emu.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []


def test_dev_alarms_dashboard_topic_and_dlq(dev: tuple[Emulator, ProvisionedStack]) -> None:
    emu, stack = dev
    out = stack.outputs
    alarms = emu.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert len(alarms) == len(ALARM_IDS)
    assert all(a["AlarmActions"] == [out["alarmTopicArn"]] == a["OKActions"] for a in alarms)
    api_5xx = next(a for a in alarms if a["AlarmName"].endswith("-api-5xx"))
    assert (api_5xx["Namespace"], api_5xx["MetricName"]) == ("AWS/ApiGateway", "5xx")
    assert {d["Name"]: d["Value"] for d in api_5xx["Dimensions"]}.get("ApiId") == out["apiId"]
    p99 = next(a for a in alarms if a["AlarmName"].endswith("-api-latency-p99"))
    assert p99.get("ExtendedStatistic") == "p99" and "Statistic" not in p99
    assert p99["EvaluateLowSampleCountPercentile"] == "ignore"  # what the local monitor honours
    assert all(a["TreatMissingData"] in ("breaching", "notBreaching", "ignore", "missing") for a in alarms)
    body = json.loads(emu.client("cloudwatch").get_dashboard(DashboardName=out["dashboardName"])["DashboardBody"])
    assert body["widgets"]
    assert emu.client("sns").get_topic_attributes(TopicArn=out["alarmTopicArn"])["Attributes"]["KmsMasterKeyId"]
    attrs = emu.client("sqs").get_queue_attributes(QueueUrl=out["dlqUrl"], AttributeNames=["All"])["Attributes"]
    assert attrs["MessageRetentionPeriod"] == "1209600" and attrs["SqsManagedSseEnabled"] == "true"


def test_prod_stack_settings(prod: tuple[Emulator, ProvisionedStack]) -> None:
    emu, stack = prod
    out = stack.outputs
    summary = emu.client("kinesis").describe_stream_summary(StreamName=out["streamName"])["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND" and summary["RetentionPeriodHours"] == 168
    dynamodb = emu.client("dynamodb")
    for table in (out["readingsTableName"], out["devicesTableName"]):
        backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"] is True
    names = out["functionNames"]
    reserved = {role: stack.functions[name].reserved_concurrency for role, name in names.items()}
    assert reserved == {"authorizer": 100, "ingest": 200, "processor": 50}
    lam = emu.client("lambda")
    assert lam.get_function_concurrency(FunctionName=names["ingest"])["ReservedConcurrentExecutions"] == 200
    (mapping,) = stack.mappings
    assert (mapping.batch_size, mapping.parallelization_factor, mapping.max_retry_attempts) == (500, 2, 10)
    alarms = {a["AlarmName"]: a for a in emu.client("cloudwatch").describe_alarms()["MetricAlarms"]}
    api_4xx = next(a for n, a in alarms.items() if n.endswith("-api-4xx"))
    assert api_4xx["Threshold"] == 500.0  # from iot-ingest:alarmOverrides in Pulumi.prod.yaml


def test_settings_error_from_the_program_is_reported(program_dir: Path, emulator: Emulator) -> None:
    (program_dir / "Pulumi.broken.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  iot-ingest:shardCount: 0\n  iot-ingest:noSuchKey: 1\n")
    with pytest.raises(ProvisionError) as raised:
        provision(program_dir, "broken", endpoint_url=emulator.endpoint_url, api_url=API_URL)
    message = str(raised.value)
    assert "SettingsError" in message and "shardCount" in message and "noSuchKey" in message
