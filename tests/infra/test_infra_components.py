"""Components one at a time (in-process mocks), plus the pure helpers they use."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pulumi
import pytest

from components.alarms.dashboard import dashboard_body
from components.alarms.defaults import ALARM_DEFAULTS
from components.alarms.spec import AlarmSpec, tuning
from components.alarms.topic import key_policy
from components.arns import arn_account, arn_partition, with_children
from components.function import LambdaFunction, LambdaFunctionArgs, PolicyStatement
from components.processor import StreamProcessor, StreamProcessorArgs
from components.storage import Storage, StorageArgs
from components.stream import Stream, StreamArgs
from infra_mockrun import run_callable
from settings import (
    AlarmOverride,
    FunctionSettings,
    ProcessorMappingSettings,
    StorageSettings,
    StreamSettings,
    parse_settings,
)
from settings.alarm_catalog import ALARM_IDS

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s"


def declare(build: Callable[[], Any]) -> list[dict[str, Any]]:
    result = run_callable(build, "unit")
    assert "error" not in result, result.get("error", {}).get("traceback")
    return result["resources"]


def only(resources: list[dict[str, Any]], typ: str) -> dict[str, Any]:
    (found,) = [r for r in resources if r["type"] == typ]
    return found


def fn_args(**changes: Any) -> LambdaFunctionArgs:
    base = LambdaFunctionArgs(
        role="ingest", function_name="unit-ingest", handler="ingest.handler",
        code=pulumi.AssetArchive({}), settings=FunctionSettings(256, 7, -1),
        layers=["arn:aws:lambda:us-east-1:017000801446:layer:L:1"], log_retention_days=5, log_level="WARNING",
        environment={"A": "1"},
        statements=(PolicyStatement(("kinesis:PutRecords",), [STREAM_ARN]),),
    )
    return replace(base, **changes)


def test_lambda_function_puts_caller_statements_first_then_logs_then_xray() -> None:
    resources = declare(lambda: LambdaFunction("unit", fn_args()) and None)
    policy = json.loads(only(resources, "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    assert [st["Action"] for st in policy["Statement"]] == [
        ["kinesis:PutRecords"], ["logs:CreateLogStream", "logs:PutLogEvents"],
        ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]]
    assert policy["Statement"][1]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/unit-ingest:*"]
    fn = only(resources, "aws:lambda/function:Function")["inputs"]
    assert fn["environment"]["variables"] == {
        "A": "1", "POWERTOOLS_SERVICE_NAME": "ingest", "POWERTOOLS_METRICS_NAMESPACE": "IotIngest", "LOG_LEVEL": "WARNING"}
    assert (fn["memorySize"], fn["timeout"], fn["reservedConcurrentExecutions"]) == (256, 7, -1)
    assert only(resources, "aws:cloudwatch/logGroup:LogGroup")["inputs"]["retentionInDays"] == 5
    assert {r["name"] for r in resources} == {"unit", "unit-logs", "unit-role", "unit-policy", "unit-function"}


def test_stream_on_demand_has_no_shard_count_and_uses_a_customer_key() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"
    settings = StreamSettings(mode="ON_DEMAND", shard_count=4, retention_hours=48, kms_key_arn=key)
    resources = declare(lambda: Stream("s", StreamArgs(settings, protect=True)) and None)
    stream = only(resources, "aws:kinesis/stream:Stream")
    assert stream["inputs"] == {"streamModeDetails": {"streamMode": "ON_DEMAND"}, "retentionPeriod": 48,
                                "encryptionType": "KMS", "kmsKeyId": key}
    assert stream["protect"] is True


def test_storage_pitr_and_protection_are_independent() -> None:
    resources = declare(lambda: Storage("st", StorageArgs(StorageSettings(30, True, False))) and None)
    tables = [r for r in resources if r["type"] == "aws:dynamodb/table:Table"]
    assert len(tables) == 2
    for t in tables:
        assert t["inputs"]["pointInTimeRecovery"] == {"enabled": True}
        assert t["inputs"]["deletionProtectionEnabled"] is False and t["protect"] is False


def test_stream_processor_grants_stream_reads_and_dlq_and_declares_dlq_policy_function_mapping_in_order() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    mapping = ProcessorMappingSettings(10, 0, 3, "LATEST", -1, -1)
    args = StreamProcessorArgs(
        function=fn_args(role="processor", function_name="unit-processor",
                         statements=(PolicyStatement(("dynamodb:BatchWriteItem",), [table]),)),
        stream_arn=STREAM_ARN, stream_kms_key_arn=None, mapping=mapping)
    resources = declare(lambda: StreamProcessor("p", args) and None)
    names = [r["name"] for r in resources]
    esm = only(resources, "aws:lambda/eventSourceMapping:EventSourceMapping")
    assert (esm["inputs"]["startingPosition"], esm["inputs"]["parallelizationFactor"], esm["inputs"]["batchSize"]) == (
        "LATEST", 3, 10)
    assert (esm["inputs"]["maximumRetryAttempts"], esm["inputs"]["maximumRecordAgeInSeconds"]) == (-1, -1)
    assert esm["inputs"]["eventSourceArn"] == STREAM_ARN
    queue = only(resources, "aws:sqs/queue:Queue")
    assert queue["inputs"]["sqsManagedSseEnabled"] is True and queue["inputs"]["messageRetentionSeconds"] == 1209600
    dlq_arn = f"arn:aws:sqs:us-east-1:123456789012:{queue['id'].rsplit('/', 1)[-1]}"
    assert esm["inputs"]["destinationConfig"] == {"onFailure": {"destinationArn": dlq_arn}}
    policy = only(resources, "aws:iam/rolePolicy:RolePolicy")
    assert json.loads(policy["inputs"]["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": ["dynamodb:BatchWriteItem"], "Resource": [table]},  # the caller's first
        {"Effect": "Allow", "Action": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                                       "kinesis:GetShardIterator", "kinesis:ListShards"], "Resource": [STREAM_ARN]},
        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": [dlq_arn]},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": ["arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/unit-processor:*"]},
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": ["*"]},
    ]
    # the role names the DLQ, the function needs the role, Lambda validates the mapping against the role
    assert names.index("p-dlq") < names.index("p-policy") < names.index("p-function") < names.index("p-mapping")
    assert policy["urn"] in esm["dependencies"]


def test_stream_processor_with_a_customer_key_may_decrypt_it_and_nothing_else() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"
    args = StreamProcessorArgs(function=fn_args(role="processor", function_name="unit-processor", statements=()),
                               stream_arn=STREAM_ARN, stream_kms_key_arn=key,
                               mapping=ProcessorMappingSettings(10, 0, 1, "LATEST", 3, 3600))
    policy = json.loads(only(declare(lambda: StreamProcessor("p", args) and None),
                             "aws:iam/rolePolicy:RolePolicy")["inputs"]["policy"])
    assert [(st["Action"], st["Resource"]) for st in policy["Statement"]][2] == (["kms:Decrypt"], [key])
    assert [st["Action"][0] for st in policy["Statement"]] == [
        "kinesis:DescribeStream", "sqs:SendMessage", "kms:Decrypt", "logs:CreateLogStream", "xray:PutTraceSegments"]


# ---------------------------------------------------------------- pure helpers

def test_policy_statement_resources_keep_their_order_across_statements() -> None:
    from components.function import policy_document

    def build() -> pulumi.Output[str]:
        return policy_document([PolicyStatement(("a:B",), ["r1", pulumi.Output.from_input("r2")]),
                                PolicyStatement(("c:D",), [pulumi.Output.from_input("r3")])])
    doc = json.loads(run_callable(build, "unit")["outputs"])
    assert [(s["Action"], s["Resource"]) for s in doc["Statement"]] == [(["a:B"], ["r1", "r2"]), (["c:D"], ["r3"])]


def test_tuning_applies_overrides_and_keeps_datapoints_within_evaluation() -> None:
    spec = AlarmSpec("ingest-duration", "AWS/Lambda", "Duration", {"FunctionName": "f"}, "d", timeout_ms=10_000)
    assert tuning(spec, None).threshold == 8000
    t = tuning(spec, AlarmOverride(threshold=9500, evaluation_periods=1, enabled=False, treat_missing_data="breaching"))
    assert (t.threshold, t.evaluation_periods, t.datapoints_to_alarm, t.enabled, t.treat_missing_data) == (
        9500, 1, 1, False, "breaching")


def test_duration_alarm_without_timeout_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="needs the function timeout"):
        tuning(AlarmSpec("ingest-duration", "AWS/Lambda", "Duration", {}, "d"), None)


def test_every_alarm_default_is_consistent_and_explained() -> None:
    assert set(ALARM_DEFAULTS) == set(ALARM_IDS)
    for alarm_id, d in ALARM_DEFAULTS.items():
        assert (d.statistic is None) != (d.extended_statistic is None), alarm_id
        assert 1 <= d.datapoints_to_alarm <= d.evaluation_periods, alarm_id
        assert d.period in (10, 20, 30) or d.period % 60 == 0, alarm_id
        assert len(d.rationale) > 20, alarm_id
        assert d.threshold_is_timeout_fraction == alarm_id.endswith("-duration")


def test_disabled_override_turns_alarm_actions_off_in_the_program() -> None:
    from components.alarms.spec import metric_alarm

    override = parse_settings({"alarmOverrides": '{"api-5xx": {"enabled": false, "period": 300}}'},
                              "us-east-1").alarms.overrides["api-5xx"]
    spec = AlarmSpec("api-5xx", "AWS/ApiGateway", "5xx", {"ApiId": "a", "Stage": "$default"}, "d")

    def build() -> None:
        parent = pulumi.ComponentResource("unit:test:Parent", "m")
        metric_alarm(parent, "m", "unit-dev", spec, override, "arn:aws:sns:us-east-1:123456789012:t")
    alarm = only(declare(build), "aws:cloudwatch/metricAlarm:MetricAlarm")["inputs"]
    assert alarm["actionsEnabled"] is False and alarm["period"] == 300 and alarm["name"] == "unit-dev-api-5xx"


def test_dashboard_body_lays_out_one_widget_per_alarm() -> None:
    specs = [AlarmSpec("api-5xx", "AWS/ApiGateway", "5xx", {}, "d"),
             AlarmSpec("stream-iterator-age", "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {}, "d")]
    body = json.loads(dashboard_body(specs, [{"ApiId": "x", "Stage": "$default"}, {"StreamName": "s"}], "eu-west-1"))
    first, second, quota = body["widgets"]
    assert quota["properties"]["metrics"] == [["IotIngest", "QuotaRefusals", "service", "ingest", {"stat": "Sum"}]]
    assert quota["x"] == 16 and quota["properties"]["title"].startswith("quota-refusals")
    assert first["properties"]["metrics"] == [["AWS/ApiGateway", "5xx", "ApiId", "x", "Stage", "$default", {"stat": "Sum"}]]
    assert second["properties"]["metrics"][0][-1] == {"stat": "Maximum"}
    assert (first["x"], second["x"]) == (0, 8) and first["properties"]["region"] == "eu-west-1"


def test_dashboard_graphs_each_metric_at_its_alarms_overridden_period() -> None:
    specs = [AlarmSpec("api-5xx", "AWS/ApiGateway", "5xx", {}, "d"),
             AlarmSpec("dlq-messages-visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", {}, "d")]
    dims = [{"ApiId": "x", "Stage": "$default"}, {"QueueName": "q"}]
    body = json.loads(dashboard_body(specs, dims, "eu-west-1", {"api-5xx": AlarmOverride(period=300)}))
    assert [w["properties"]["period"] for w in body["widgets"]] == [300, 300, 60]
    default = json.loads(dashboard_body(specs, dims, "eu-west-1"))
    assert [w["properties"]["period"] for w in default["widgets"]] == [60, 300, 60]


def test_key_policy_takes_account_and_partition_from_an_arn() -> None:
    doc = json.loads(key_policy("arn:aws-cn:kinesis:cn-north-1:111122223333:stream/x"))
    assert doc["Statement"][0]["Principal"] == {"AWS": "arn:aws-cn:iam::111122223333:root"}


def test_arn_helpers() -> None:
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f"
    assert (arn_partition(arn), arn_account(arn)) == ("aws", "123456789012")
    assert with_children(arn) == arn + ":*" and with_children(arn + ":*") == arn + ":*"
    with pytest.raises(ValueError, match="not an ARN"):
        arn_account("alias/aws/sns")


def test_tables_use_current_not_deprecated_key_arguments() -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        declare(lambda: Storage("st", StorageArgs(StorageSettings(30, False, False))) and None)
    mine = [w for w in caught if issubclass(w.category, DeprecationWarning) and "dynamodb" in str(w.filename)]
    assert mine == [], [str(w.message) for w in mine]
