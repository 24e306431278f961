"""The whole program under mocks, for dev and prod: assertions on the recorded resource graph."""
from __future__ import annotations

import json
from typing import Any

import pytest

from infra_graph import run_stack
from infra_graph import Graph
from components.alarms.defaults import ALARM_DEFAULTS
from settings.alarm_catalog import ALARM_IDS, MATH_ALARM_IDS

FN = "aws:lambda/function:Function"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
OUTPUT_KEYS = {"apiUrl", "apiId", "streamName", "streamArn", "readingsTableName", "devicesTableName",
               "dlqUrl", "alarmTopicArn", "dashboardName", "functionNames"}
KINESIS_READ = ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                "kinesis:GetShardIterator", "kinesis:ListShards"]
XRAY = {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": ["*"]}


def state_arn(g: Graph, typ: str, name: str) -> str:
    """The ARN our mocks computed for a resource (the same value the program saw)."""
    r = g.one(typ, name)
    kind = {"aws:kinesis/stream:Stream": ("kinesis", "stream/"), "aws:dynamodb/table:Table": ("dynamodb", "table/"),
            "aws:sqs/queue:Queue": ("sqs", ""), "aws:cloudwatch/logGroup:LogGroup": ("logs", "log-group:")}[typ]
    physical = r["inputs"].get("name") or (r["id"].rsplit("/", 1)[-1] if typ == "aws:sqs/queue:Queue" else r["id"])
    return f"arn:aws:{kind[0]}:us-east-1:123456789012:{kind[1]}{physical}"


# ---------------------------------------------------------------- outputs and provider

def test_exports_exactly_the_contract_outputs(graph: Graph) -> None:
    o = graph.outputs
    assert set(o) == OUTPUT_KEYS
    assert o["apiUrl"].startswith("https://") and not o["apiUrl"].endswith("/")
    assert o["apiId"] == graph.id_of("aws:apigatewayv2/api:Api", "iot-ingest-api-http")
    assert o["functionNames"] == {r: f"iot-ingest-{graph.stack}-{r}" for r in ("authorizer", "ingest", "processor")}
    assert o["streamArn"].endswith(f":stream/{o['streamName']}")
    assert o["dashboardName"] == f"iot-ingest-{graph.stack}"
    assert o["dlqUrl"].endswith("/" + graph.one("aws:sqs/queue:Queue", "iot-ingest-processor-dlq")["id"].rsplit("/", 1)[-1])


def test_provider_sets_region_and_default_tags_and_every_aws_resource_uses_it(graph: Graph) -> None:
    (provider,) = graph.of_type("pulumi:providers:aws")
    assert provider["inputs"]["region"] == "us-east-1"
    assert json.loads(provider["inputs"]["defaultTags"]) == {"tags": {"project": "iot-ingest", "stack": graph.stack}}
    aws_resources = [r for r in graph.resources if r["type"].startswith("aws:")]
    assert len(aws_resources) > 50
    for r in aws_resources:
        assert r["provider"].startswith(provider["urn"] + "::"), (r["name"], r["provider"])


def test_every_resource_sits_under_a_component_and_is_named_after_it(graph: Graph) -> None:
    for r in graph.resources:
        parent = graph.parent_of(r)
        if r["type"] in ("pulumi:providers:aws", "iot-ingest:pipeline:IngestPipeline"):
            assert parent is None  # children of the stack
            continue
        assert parent is not None and not parent["custom"], r["name"]
        assert r["name"].startswith(parent["name"] + "-") or r["name"] == parent["name"], (r["name"], parent["name"])


def test_settings_error_stops_the_program_before_any_resource() -> None:
    data = run_stack("dev", {"shardCount": 0, "processorBatchSize": 0,
                             "alarmOverrides": {"api-5xx": {"datapointsToAlarm": 1}}})
    assert data["error"]["type"] == "SettingsError"
    assert "iot-ingest:shardCount" in data["error"]["message"]
    assert "iot-ingest:processorBatchSize" in data["error"]["message"]
    assert "'datapointsToAlarm' needs 'evaluationPeriods'" in data["error"]["message"]
    assert data["resources"] == []


# ---------------------------------------------------------------- IAM

LOGS = ["logs:CreateLogStream", "logs:PutLogEvents"]
STREAM_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"  # dev-options


def allow(actions: list[str], *resources: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": list(resources)}


def expected_statements(g: Graph, role: str) -> list[dict[str, Any]]:
    """The whole policy of ``role``, in order, built from this stack's recorded resources."""
    key = g.config.get("iot-ingest:streamKmsKeyArn") or None
    stream = state_arn(g, "aws:kinesis/stream:Stream", "iot-ingest-stream-kinesis")
    readings = state_arn(g, "aws:dynamodb/table:Table", "iot-ingest-storage-readings")
    devices = state_arn(g, "aws:dynamodb/table:Table", "iot-ingest-storage-devices")
    dlq = state_arn(g, "aws:sqs/queue:Queue", "iot-ingest-processor-dlq")
    own = {
        "authorizer": [allow(["dynamodb:GetItem"], devices)],
        "ingest": [allow(["kinesis:PutRecords"], stream),
                   *([allow(["kms:GenerateDataKey"], key)] if key else [])],
        "processor": [allow(["dynamodb:BatchWriteItem"], readings), allow(["dynamodb:UpdateItem"], devices),
                      allow(KINESIS_READ, stream), allow(["sqs:SendMessage"], dlq),
                      *([allow(["kms:Decrypt"], key)] if key else [])],
    }[role]
    logs = state_arn(g, "aws:cloudwatch/logGroup:LogGroup", f"iot-ingest-{role}-logs") + ":*"
    return [*own, allow(LOGS, logs), XRAY]


@pytest.mark.parametrize("role", ["authorizer", "ingest", "processor"])
def test_each_role_policy_is_exactly_the_expected_statements(any_graph: Graph, role: str) -> None:
    doc = any_graph.role_policy(role)
    assert doc["Version"] == "2012-10-17"
    assert doc["Statement"] == expected_statements(any_graph, role)


def test_role_policies_literally(graphs: dict[str, Graph]) -> None:
    """A few ARNs spelled out, so the expectation above is not only derived from the graph."""
    dev, opts = graphs["dev"], graphs["dev-options"]
    assert opts.config["iot-ingest:streamKmsKeyArn"] == STREAM_KEY
    assert dev.role_policy("authorizer")["Statement"][:2] == [
        allow(["dynamodb:GetItem"], "arn:aws:dynamodb:us-east-1:123456789012:table/"
              + dev.outputs["devicesTableName"]),
        allow(LOGS, "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/iot-ingest-dev-authorizer:*"),
    ]
    for g in (dev, graphs["prod"]):
        assert [st["Action"] for st in g.role_policy("ingest")["Statement"]] == [
            ["kinesis:PutRecords"], LOGS, XRAY["Action"]]
        assert [st["Action"] for st in g.role_policy("processor")["Statement"]] == [
            ["dynamodb:BatchWriteItem"], ["dynamodb:UpdateItem"], KINESIS_READ, ["sqs:SendMessage"],
            LOGS, XRAY["Action"]]
        assert g.role_policy("processor")["Statement"][2]["Resource"] == [g.outputs["streamArn"]]
    assert [st["Action"] for st in opts.role_policy("ingest")["Statement"]] == [
        ["kinesis:PutRecords"], ["kms:GenerateDataKey"], LOGS, XRAY["Action"]]
    assert opts.role_policy("ingest")["Statement"][1]["Resource"] == [STREAM_KEY]
    assert opts.role_policy("processor")["Statement"][4] == allow(["kms:Decrypt"], STREAM_KEY)
    assert opts.role_policy("processor")["Statement"][5]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/iot-ingest-dev-processor:*"]


def test_no_wildcard_actions_and_star_resource_only_for_xray(any_graph: Graph) -> None:
    policies = any_graph.of_type("aws:iam/rolePolicy:RolePolicy")
    assert len(policies) == 3
    for p in policies:
        for st in json.loads(p["inputs"]["policy"])["Statement"]:
            assert st["Effect"] == "Allow"
            assert all("*" not in a for a in st["Action"]), st
            if "*" in st["Resource"]:
                assert st["Resource"] == ["*"] and set(st["Action"]) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
            assert all(r == "*" or r.startswith("arn:aws:") for r in st["Resource"]), st


def test_roles_are_assumable_by_lambda_only(graph: Graph) -> None:
    for role in graph.of_type("aws:iam/role:Role"):
        doc = json.loads(role["inputs"]["assumeRolePolicy"])
        assert doc["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                     "Action": "sts:AssumeRole"}]


def test_customer_managed_stream_key_is_used_and_granted_only_when_configured(graphs: dict[str, Graph]) -> None:
    g = graphs["dev-options"]
    assert g.one("aws:kinesis/stream:Stream", "iot-ingest-stream-kinesis")["inputs"]["kmsKeyId"] == STREAM_KEY
    kms = {(name, role): [st for st in graphs[name].role_policy(role)["Statement"]
                          if any(a.startswith("kms:") for a in st["Action"])]
           for name in graphs for role in ("authorizer", "ingest", "processor")}
    assert kms == {(name, role): ([allow([{"ingest": "kms:GenerateDataKey", "processor": "kms:Decrypt"}[role]],
                                         STREAM_KEY)]
                                  if name == "dev-options" and role != "authorizer" else [])
                   for name in graphs for role in ("authorizer", "ingest", "processor")}


# ---------------------------------------------------------------- functions and logs

ENV = {
    "authorizer": {"DEVICES_TABLE", "DEVICE_DAILY_READING_QUOTA"},
    "ingest": {"STREAM_NAME", "MAX_READINGS_PER_REQUEST", "MAX_BODY_BYTES", "MAX_READING_AGE_SECONDS",
               "MAX_FUTURE_SKEW_SECONDS", "PUT_BUDGET_SECONDS"},
    "processor": {"READINGS_TABLE", "DEVICES_TABLE", "READINGS_TTL_DAYS"},
}


@pytest.mark.parametrize("role", ["authorizer", "ingest", "processor"])
def test_function_runtime_code_layer_and_settings(graph: Graph, role: str) -> None:
    f = graph.function(role)["inputs"]
    s = graph.settings().functions.by_role()[role]
    assert f["name"] == f"iot-ingest-{graph.stack}-{role}"
    assert (f["runtime"], f["architectures"], f["handler"]) == ("python3.12", ["arm64"], f"{role}.handler")
    assert f["tracingConfig"] == {"mode": "Active"}
    assert f["code"] == {"__fileArchive": graph.code_archive}
    assert f["layers"] == [graph.settings().functions.powertools_layer_arn]
    assert (f["memorySize"], f["timeout"], f["reservedConcurrentExecutions"]) == (
        s.memory_mb, s.timeout_s, s.reserved_concurrency)
    env = f["environment"]["variables"]
    assert set(env) == ENV[role] | {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}
    assert env["POWERTOOLS_SERVICE_NAME"] == role and env["POWERTOOLS_METRICS_NAMESPACE"] == "IotIngest"
    assert env["LOG_LEVEL"] == graph.settings().functions.log_level


def test_environment_values_point_at_this_stacks_resources(graph: Graph) -> None:
    o, s = graph.outputs, graph.settings()
    assert graph.function("authorizer")["inputs"]["environment"]["variables"]["DEVICES_TABLE"] == o["devicesTableName"]
    ingest = graph.function("ingest")["inputs"]["environment"]["variables"]
    assert ingest["STREAM_NAME"] == o["streamName"]
    assert ingest["MAX_READINGS_PER_REQUEST"] == str(s.ingest.max_readings_per_request)
    assert ingest["PUT_BUDGET_SECONDS"] == str(s.ingest.put_budget_s)
    proc = graph.function("processor")["inputs"]["environment"]["variables"]
    assert (proc["READINGS_TABLE"], proc["DEVICES_TABLE"]) == (o["readingsTableName"], o["devicesTableName"])
    assert proc["READINGS_TTL_DAYS"] == str(s.storage.readings_ttl_days)


def test_the_daily_quota_reaches_the_authorizer(graphs: dict[str, Graph]) -> None:
    """The stack default, or the explicit word "unlimited", is what the authorizer reads at init."""
    def quota(variant: str) -> str:
        return graphs[variant].function("authorizer")["inputs"]["environment"]["variables"]["DEVICE_DAILY_READING_QUOTA"]
    assert quota("dev") == quota("prod") == "200000"
    assert graphs["dev"].settings().ingest.device_daily_reading_quota == 200000
    assert quota("dev-options") == "unlimited"
    from handlers.telemetry.config import AuthorizerConfig
    for variant in ("dev", "dev-options"):  # what the function itself makes of it
        env = graphs[variant].function("authorizer")["inputs"]["environment"]["variables"]
        expected = None if variant == "dev-options" else 200000
        assert AuthorizerConfig.from_env({**env, "DEVICES_TABLE": "t"}).daily_reading_quota == expected


@pytest.mark.parametrize("role", ["authorizer", "ingest", "processor"])
def test_log_group_exists_before_the_function_with_finite_retention(graph: Graph, role: str) -> None:
    fn = graph.function(role)
    logs = graph.one("aws:cloudwatch/logGroup:LogGroup", f"iot-ingest-{role}-logs")
    assert logs["inputs"]["name"] == f"/aws/lambda/{fn['inputs']['name']}"
    assert logs["inputs"]["retentionInDays"] == graph.settings().log_retention_days
    assert logs["urn"] in fn["dependencies"]
    policy = graph.one("aws:iam/rolePolicy:RolePolicy", f"iot-ingest-{role}-policy")
    assert policy["urn"] in fn["dependencies"]


def test_every_log_group_has_the_configured_retention(graph: Graph) -> None:
    groups = graph.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 4
    assert {g["inputs"]["retentionInDays"] for g in groups} == {graph.settings().log_retention_days}


# ---------------------------------------------------------------- API

def test_stage_throttles_with_both_burst_and_rate_and_logs_json(graph: Graph) -> None:
    stage = graph.one("aws:apigatewayv2/stage:Stage", "iot-ingest-api-stage")["inputs"]
    s = graph.settings().api
    assert stage["name"] == "$default" and stage["autoDeploy"] is True
    assert stage["defaultRouteSettings"] == {"throttlingBurstLimit": s.throttle_burst,
                                             "throttlingRateLimit": s.throttle_rate}
    fmt = json.loads(stage["accessLogSettings"]["format"])
    assert fmt["requestId"] == "$context.requestId" and fmt["sourceIp"] == "$context.identity.sourceIp"
    assert fmt["routeKey"] == "$context.routeKey" and fmt["status"] == "$context.status"
    assert fmt["responseLatency"] == "$context.responseLatency"
    assert fmt["integrationLatency"] == "$context.integrationLatency"
    assert fmt["integrationErrorMessage"] == "$context.integrationErrorMessage"
    assert fmt["authorizerError"] == "$context.authorizer.error"
    access = graph.one("aws:cloudwatch/logGroup:LogGroup", "iot-ingest-api-access-logs")
    assert stage["accessLogSettings"]["destinationArn"] == state_arn(
        graph, "aws:cloudwatch/logGroup:LogGroup", "iot-ingest-api-access-logs")
    assert access["inputs"]["name"] == f"/aws/apigateway/iot-ingest-{graph.stack}-access"


def test_request_authorizer(graph: Graph) -> None:
    a = graph.one("aws:apigatewayv2/authorizer:Authorizer", "iot-ingest-api-authorizer")["inputs"]
    assert a["authorizerType"] == "REQUEST" and a["authorizerPayloadFormatVersion"] == "2.0"
    assert a["enableSimpleResponses"] is True
    assert a["identitySources"] == ["$request.header.x-device-id", "$request.header.x-device-key"]
    assert a["authorizerResultTtlInSeconds"] == graph.settings().api.authorizer_cache_ttl_s
    fn = graph.function("authorizer")["inputs"]["name"]
    assert a["authorizerUri"].endswith(f":function:{fn}/invocations")
    assert a["apiId"] == graph.outputs["apiId"]


def test_routes_and_integration(graph: Graph) -> None:
    integ = graph.one("aws:apigatewayv2/integration:Integration", "iot-ingest-api-ingest-integration")
    i = integ["inputs"]
    assert (i["integrationType"], i["payloadFormatVersion"], i["timeoutMilliseconds"]) == ("AWS_PROXY", "2.0", 30000)
    assert i["integrationUri"].endswith(f":function:iot-ingest-{graph.stack}-ingest/invocations")
    auth_id = graph.id_of("aws:apigatewayv2/authorizer:Authorizer", "iot-ingest-api-authorizer")
    routes = {r["inputs"]["routeKey"]: r["inputs"] for r in graph.of_type("aws:apigatewayv2/route:Route")}
    assert set(routes) == {"POST /v1/telemetry", "GET /health"}
    assert routes["POST /v1/telemetry"]["authorizationType"] == "CUSTOM"
    assert routes["POST /v1/telemetry"]["authorizerId"] == auth_id
    assert routes["GET /health"]["authorizationType"] == "NONE" and "authorizerId" not in routes["GET /health"]
    assert {r["target"] for r in routes.values()} == {f"integrations/{integ['id']}"}


def test_invoke_permissions_are_scoped_to_this_api(graph: Graph) -> None:
    api_id = graph.outputs["apiId"]
    execution = f"arn:aws:execute-api:us-east-1:123456789012:{api_id}"
    auth_id = graph.id_of("aws:apigatewayv2/authorizer:Authorizer", "iot-ingest-api-authorizer")
    perms = {p["name"]: p["inputs"] for p in graph.of_type("aws:lambda/permission:Permission")}
    assert perms["iot-ingest-api-ingest-permission"] == {
        "action": "lambda:InvokeFunction", "function": f"iot-ingest-{graph.stack}-ingest",
        "principal": "apigateway.amazonaws.com", "sourceArn": f"{execution}/*/*"}
    assert perms["iot-ingest-api-authorizer-permission"] == {
        "action": "lambda:InvokeFunction", "function": f"iot-ingest-{graph.stack}-authorizer",
        "principal": "apigateway.amazonaws.com", "sourceArn": f"{execution}/authorizers/{auth_id}"}


def test_cors_is_closed_by_default_and_opens_from_settings(graphs: dict[str, Graph]) -> None:
    for name in ("dev", "prod"):
        api = graphs[name].one("aws:apigatewayv2/api:Api", "iot-ingest-api-http")["inputs"]
        assert api["protocolType"] == "HTTP" and "corsConfiguration" not in api
    cors = graphs["dev-options"].one("aws:apigatewayv2/api:Api", "iot-ingest-api-http")["inputs"]["corsConfiguration"]
    assert cors["allowOrigins"] == ["https://console.example.com"]
    assert set(cors["allowHeaders"]) == {"content-type", "x-device-id", "x-device-key"}


# ---------------------------------------------------------------- stream processing

def test_event_source_mapping(graph: Graph) -> None:
    m = graph.one("aws:lambda/eventSourceMapping:EventSourceMapping", "iot-ingest-processor-mapping")
    i, s = m["inputs"], graph.settings().processor
    assert i["eventSourceArn"] == graph.outputs["streamArn"]
    assert i["functionName"].endswith(f":function:iot-ingest-{graph.stack}-processor")
    assert i["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert i["bisectBatchOnFunctionError"] is True
    assert (i["batchSize"], i["maximumBatchingWindowInSeconds"], i["parallelizationFactor"]) == (
        s.batch_size, s.batching_window_s, s.parallelization_factor)
    assert i["startingPosition"] == s.starting_position
    assert i["maximumRetryAttempts"] == s.max_retry_attempts and 0 <= s.max_retry_attempts
    assert i["maximumRecordAgeInSeconds"] == s.max_record_age_s and s.max_record_age_s > 0
    assert i["destinationConfig"] == {"onFailure": {
        "destinationArn": state_arn(graph, "aws:sqs/queue:Queue", "iot-ingest-processor-dlq")}}
    policy = graph.one("aws:iam/rolePolicy:RolePolicy", "iot-ingest-processor-policy")
    assert policy["urn"] in m["dependencies"]


def test_stream_mode_and_retention(graphs: dict[str, Graph]) -> None:
    dev = graphs["dev"].one("aws:kinesis/stream:Stream", "iot-ingest-stream-kinesis")["inputs"]
    prod = graphs["prod"].one("aws:kinesis/stream:Stream", "iot-ingest-stream-kinesis")["inputs"]
    assert dev["streamModeDetails"] == {"streamMode": "PROVISIONED"} and dev["shardCount"] == 1
    assert dev["retentionPeriod"] == 24
    assert prod["streamModeDetails"] == {"streamMode": "ON_DEMAND"} and "shardCount" not in prod
    assert prod["retentionPeriod"] == 168


# ---------------------------------------------------------------- encryption and protection

def test_everything_at_rest_is_encrypted(graph: Graph) -> None:
    stream = graph.one("aws:kinesis/stream:Stream", "iot-ingest-stream-kinesis")["inputs"]
    assert stream["encryptionType"] == "KMS" and stream["kmsKeyId"] == "alias/aws/kinesis"
    for t in graph.of_type("aws:dynamodb/table:Table"):
        assert t["inputs"]["serverSideEncryption"] == {"enabled": True}
    (queue,) = graph.of_type("aws:sqs/queue:Queue")
    assert queue["inputs"]["sqsManagedSseEnabled"] is True
    (topic,) = graph.of_type("aws:sns/topic:Topic")
    (key,) = graph.of_type("aws:kms/key:Key")
    assert topic["inputs"]["kmsMasterKeyId"] == f"arn:aws:kms:us-east-1:123456789012:key/{key['id']}"


def test_alarm_topic_key_lets_cloudwatch_publish(graph: Graph) -> None:
    (key,) = graph.of_type("aws:kms/key:Key")
    assert key["inputs"]["enableKeyRotation"] is True
    statements = json.loads(key["inputs"]["policy"])["Statement"]
    assert {"Sid": "CloudWatchAlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"} in statements
    assert statements[0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_tables_schema_and_ttl(graph: Graph) -> None:
    readings = graph.one("aws:dynamodb/table:Table", "iot-ingest-storage-readings")["inputs"]
    devices = graph.one("aws:dynamodb/table:Table", "iot-ingest-storage-devices")["inputs"]
    assert (readings["hashKey"], readings["rangeKey"]) == ("deviceId", "readingKey")
    assert sorted(a["name"] + a["type"] for a in readings["attributes"]) == ["deviceIdS", "readingKeyS"]
    assert readings["ttl"] == {"attributeName": "expiresAt", "enabled": True}
    assert devices["hashKey"] == "deviceId" and "rangeKey" not in devices
    assert readings["billingMode"] == devices["billingMode"] == "PAY_PER_REQUEST"


def test_pitr_and_protection_differ_between_dev_and_prod(graphs: dict[str, Graph]) -> None:
    protected = {"aws:kinesis/stream:Stream", "aws:dynamodb/table:Table"}
    for stack, on in (("dev", False), ("prod", True)):
        g = graphs[stack]
        for t in g.of_type("aws:dynamodb/table:Table"):
            assert t["inputs"]["pointInTimeRecovery"] == {"enabled": on}
            assert t["inputs"]["deletionProtectionEnabled"] is on
        assert {r["type"] for r in g.resources if r["protect"]} == (protected if on else set())
        assert len([r for r in g.resources if r["protect"]]) == (3 if on else 0)


# ---------------------------------------------------------------- alarms and dashboard

def expected_alarms(g: Graph) -> dict[str, tuple[str, str, dict[str, str], str]]:
    """alarm id -> (namespace, metric, dimensions, statistic) with this stack's names."""
    o = g.outputs
    dlq = o["dlqUrl"].rsplit("/", 1)[-1]
    api = {"ApiId": o["apiId"], "Stage": "$default"}
    out = {
        "api-5xx": ("AWS/ApiGateway", "5xx", api, "Sum"),
        "api-4xx": ("AWS/ApiGateway", "4xx", api, "Sum"),
        "api-latency-p99": ("AWS/ApiGateway", "Latency", api, "p99"),
        "processor-iterator-age": ("AWS/Lambda", "IteratorAge", {"FunctionName": o["functionNames"]["processor"]}, "Maximum"),
        "processor-destination-delivery-failures": ("AWS/Lambda", "DestinationDeliveryFailures",
                                                    {"FunctionName": o["functionNames"]["processor"]}, "Sum"),
        "stream-throttled-records": ("AWS/Kinesis", "PutRecords.ThrottledRecords", {"StreamName": o["streamName"]}, "Sum"),
        "stream-write-throughput-exceeded": ("AWS/Kinesis", "WriteProvisionedThroughputExceeded",
                                             {"StreamName": o["streamName"]}, "Sum"),
        "stream-iterator-age": ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", {"StreamName": o["streamName"]}, "Maximum"),
        "readings-write-throttles": ("AWS/DynamoDB", "WriteThrottleEvents", {"TableName": o["readingsTableName"]}, "Sum"),
        "readings-system-errors": ("AWS/DynamoDB", "SystemErrors",
                                   {"TableName": o["readingsTableName"], "Operation": "BatchWriteItem"}, "Sum"),
        "devices-write-throttles": ("AWS/DynamoDB", "WriteThrottleEvents", {"TableName": o["devicesTableName"]}, "Sum"),
        "devices-read-throttles": ("AWS/DynamoDB", "ReadThrottleEvents", {"TableName": o["devicesTableName"]}, "Sum"),
        "devices-update-system-errors": ("AWS/DynamoDB", "SystemErrors",
                                         {"TableName": o["devicesTableName"], "Operation": "UpdateItem"}, "Sum"),
        "devices-get-system-errors": ("AWS/DynamoDB", "SystemErrors",
                                      {"TableName": o["devicesTableName"], "Operation": "GetItem"}, "Sum"),
        "dlq-messages-visible": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": dlq}, "Maximum"),
    }
    for role, fn in o["functionNames"].items():
        dims = {"FunctionName": fn}
        out[f"{role}-errors"] = ("AWS/Lambda", "Errors", dims, "Sum")
        out[f"{role}-throttles"] = ("AWS/Lambda", "Throttles", dims, "Sum")
        out[f"{role}-duration"] = ("AWS/Lambda", "Duration", dims, "Maximum")
    return out


def alarms_by_id(g: Graph) -> dict[str, dict[str, Any]]:
    return {a["name"].removeprefix("iot-ingest-monitoring-"): a["inputs"] for a in g.of_type(ALARM)}


def test_every_alarm_watches_a_real_metric_of_this_stack(graph: Graph) -> None:
    alarms, expected = alarms_by_id(graph), expected_alarms(graph)
    assert set(alarms) == set(ALARM_IDS)
    assert set(expected) == set(ALARM_IDS) - set(MATH_ALARM_IDS)
    for alarm_id, (namespace, metric, dims, stat) in expected.items():
        a = alarms[alarm_id]
        assert (a["namespace"], a["metricName"], a["dimensions"]) == (namespace, metric, dims), alarm_id
        assert (a.get("extendedStatistic") or a.get("statistic")) == stat, alarm_id
        assert not (a.get("extendedStatistic") and a.get("statistic")), alarm_id
        assert a["name"] == f"iot-ingest-{graph.stack}-{alarm_id}"


def test_stalled_consumer_alarm_compares_records_in_with_processor_invocations(any_graph: Graph) -> None:
    """processor-stalled: metric math on two metrics AWS publishes, with this stack's names, both
    read at the alarm's period; the expression counts records that came in while the processor
    never ran (an idle stream gives 0)."""
    o = any_graph.outputs
    a = alarms_by_id(any_graph)["processor-stalled"]
    assert a.get("metricName") is None and a.get("namespace") is None and a.get("statistic") is None
    queries = {q["id"]: q for q in a["metricQueries"]}
    assert set(queries) == {"incoming", "invocations", "stalled"}
    incoming, invocations = queries["incoming"]["metric"], queries["invocations"]["metric"]
    assert (incoming["namespace"], incoming["metricName"], incoming["dimensions"]) == (
        "AWS/Kinesis", "IncomingRecords", {"StreamName": o["streamName"]})
    assert (invocations["namespace"], invocations["metricName"], invocations["dimensions"]) == (
        "AWS/Lambda", "Invocations", {"FunctionName": o["functionNames"]["processor"]})
    overrides = json.loads(any_graph.config["iot-ingest:alarmOverrides"]).get("processor-stalled", {})
    period = overrides.get("period", ALARM_DEFAULTS["processor-stalled"].period)
    assert incoming["period"] == invocations["period"] == period
    assert incoming["stat"] == invocations["stat"] == "Sum"
    assert queries["stalled"]["returnData"] is True and not queries["incoming"].get("returnData")
    assert queries["stalled"]["expression"] == "IF(FILL(invocations, 0) == 0, FILL(incoming, 0), 0)"


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(any_graph: Graph) -> None:
    topic = any_graph.outputs["alarmTopicArn"]
    alarms = any_graph.of_type(ALARM)
    assert len(alarms) == len(ALARM_IDS)
    for a in alarms:
        assert a["inputs"]["alarmActions"] == [topic] and a["inputs"]["okActions"] == [topic], a["name"]


TUNING_FIELDS = ("threshold", "period", "evaluationPeriods", "datapointsToAlarm", "comparisonOperator",
                 "statistic", "extendedStatistic", "treatMissingData", "actionsEnabled",
                 "evaluateLowSampleCountPercentiles")


def expected_tuning(g: Graph) -> dict[str, dict[str, Any]]:
    """alarm id -> tuning fields, from ALARM_DEFAULTS and this stack's raw config.

    Written out here rather than calling components.alarms.spec.tuning, so a bug
    there shows up as a difference: timeouts and overrides come straight from the
    stack's config (Pulumi.yaml defaults + Pulumi.<stack>.yaml + the variant's).
    """
    overrides = json.loads(g.config["iot-ingest:alarmOverrides"])
    out = {}
    for alarm_id, d in ALARM_DEFAULTS.items():
        threshold = d.threshold
        if alarm_id.endswith("-duration"):  # a fraction of that function's timeout, in ms
            role = alarm_id.removesuffix("-duration")
            threshold = d.threshold * int(g.config[f"iot-ingest:{role}TimeoutSeconds"]) * 1000
        o = overrides.get(alarm_id, {})
        evaluation = o.get("evaluationPeriods", d.evaluation_periods)
        math = alarm_id in MATH_ALARM_IDS  # period and statistic live in its metric queries
        out[alarm_id] = {
            "threshold": o.get("threshold", threshold),
            "period": None if math else o.get("period", d.period),
            "evaluationPeriods": evaluation,
            # datapointsToAlarm may only be overridden together with evaluationPeriods;
            # a smaller evaluationPeriods alone pulls the default datapoints down to it
            "datapointsToAlarm": o["datapointsToAlarm"] if "datapointsToAlarm" in o
            else min(d.datapoints_to_alarm, evaluation),
            "comparisonOperator": d.comparison,
            "statistic": None if math else d.statistic,
            "extendedStatistic": d.extended_statistic,
            "treatMissingData": o.get("treatMissingData", d.treat_missing_data),
            "actionsEnabled": o.get("enabled", True),
            "evaluateLowSampleCountPercentiles": o.get("evaluateLowSampleCountPercentiles",
                                                       d.evaluate_low_sample_count_percentiles),
        }
    return out


def declared_tuning(g: Graph) -> dict[str, dict[str, Any]]:
    return {alarm_id: {f: a.get(f) for f in TUNING_FIELDS} for alarm_id, a in alarms_by_id(g).items()}


def test_every_alarm_is_tuned_from_the_defaults_and_this_stacks_overrides(any_graph: Graph) -> None:
    declared, expected = declared_tuning(any_graph), expected_tuning(any_graph)
    assert set(declared) == set(expected) == set(ALARM_IDS)
    for alarm_id, want in expected.items():
        got = declared[alarm_id]
        assert got == {**want, "threshold": pytest.approx(want["threshold"])}, alarm_id
        assert 1 <= got["datapointsToAlarm"] <= got["evaluationPeriods"], alarm_id  # CloudWatch refuses otherwise


# Literal values per variant, so the test above is not only the code under test run twice.
# dev/prod: Pulumi.yaml timeouts (authorizer 5 s, ingest 10 s, processor 60 s; prod processor 120 s)
# and prod's alarmOverrides; dev-options: the overrides in conftest.VARIANTS.
TUNING_LITERALS: dict[str, dict[str, dict[str, Any]]] = {
    "dev": {
        "api-4xx": {"threshold": 100, "period": 60, "evaluationPeriods": 5, "datapointsToAlarm": 3, "statistic": "Sum"},
        "api-latency-p99": {"threshold": 2000, "comparisonOperator": "GreaterThanThreshold",
                            "extendedStatistic": "p99", "statistic": None,
                            "evaluateLowSampleCountPercentiles": "ignore"},
        "api-5xx": {"threshold": 5, "comparisonOperator": "GreaterThanOrEqualToThreshold", "actionsEnabled": True,
                    "evaluateLowSampleCountPercentiles": None},
        "authorizer-duration": {"threshold": 4000, "statistic": "Maximum"},
        "ingest-duration": {"threshold": 8000},
        "processor-duration": {"threshold": 0.8 * 60_000, "comparisonOperator": "GreaterThanThreshold",
                               "evaluationPeriods": 3, "datapointsToAlarm": 2},
        "ingest-errors": {"threshold": 1, "period": 60, "evaluationPeriods": 3, "datapointsToAlarm": 2,
                          "treatMissingData": "notBreaching"},
        "stream-iterator-age": {"threshold": 120_000, "evaluationPeriods": 5, "datapointsToAlarm": 3},
        "processor-destination-delivery-failures": {"evaluationPeriods": 1, "datapointsToAlarm": 1},
        "dlq-messages-visible": {"threshold": 1, "period": 300, "statistic": "Maximum", "evaluationPeriods": 1,
                                 "datapointsToAlarm": 1},
    },
    "prod": {
        "api-4xx": {"threshold": 500, "period": 60, "evaluationPeriods": 5, "datapointsToAlarm": 3},
        "api-latency-p99": {"threshold": 1500, "extendedStatistic": "p99",
                            "evaluateLowSampleCountPercentiles": "ignore"},
        "api-5xx": {"threshold": 5},
        "processor-duration": {"threshold": 0.8 * 120_000},
        "ingest-duration": {"threshold": 8000},
        "dlq-messages-visible": {"threshold": 1, "period": 300, "statistic": "Maximum"},
    },
    "dev-options": {
        "ingest-errors": {"threshold": 1, "period": 300, "evaluationPeriods": 4, "datapointsToAlarm": 4,
                          "treatMissingData": "breaching", "actionsEnabled": True},
        "stream-iterator-age": {"threshold": 120_000, "period": 60, "evaluationPeriods": 1, "datapointsToAlarm": 1},
        "processor-duration": {"threshold": 30_000, "comparisonOperator": "GreaterThanThreshold"},
        "api-5xx": {"threshold": 5, "actionsEnabled": False},
        "api-4xx": {"threshold": 100, "actionsEnabled": True},
        "api-latency-p99": {"threshold": 2000, "evaluateLowSampleCountPercentiles": "evaluate"},
        "dlq-messages-visible": {"threshold": 1, "period": 300, "statistic": "Maximum"},
    },
}


def test_alarm_tuning_literal_values(graphs: dict[str, Graph]) -> None:
    assert set(TUNING_LITERALS) == set(graphs)
    for variant, literals in TUNING_LITERALS.items():
        declared = declared_tuning(graphs[variant])
        for alarm_id, fields in literals.items():
            assert {f: declared[alarm_id][f] for f in fields} == fields, (variant, alarm_id)


def test_alarm_email_subscription_only_when_configured(graphs: dict[str, Graph]) -> None:
    assert graphs["dev"].of_type("aws:sns/topicSubscription:TopicSubscription") == []
    (sub,) = graphs["dev-options"].of_type("aws:sns/topicSubscription:TopicSubscription")
    assert (sub["inputs"]["protocol"], sub["inputs"]["endpoint"]) == ("email", "ops@example.com")
    assert sub["inputs"]["topic"] == graphs["dev-options"].outputs["alarmTopicArn"]


def test_dashboard_graphs_the_alarmed_metrics(graph: Graph) -> None:
    (dash,) = graph.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert dash["inputs"]["dashboardName"] == graph.outputs["dashboardName"]
    widgets = json.loads(dash["inputs"]["dashboardBody"])["widgets"]
    expected = expected_alarms(graph)
    quota_title = "quota-refusals (429 quota_exceeded)"  # the one graph without an alarm (docs/alarms.md)
    expected[quota_title] = ("IotIngest", "QuotaRefusals", {"service": "ingest"}, "Sum")
    assert {w["properties"]["title"] for w in widgets} == set(expected)
    for w in widgets:
        namespace, metric, dims, stat = expected[w["properties"]["title"]]
        (line,) = w["properties"]["metrics"]
        flat_dims = dict(zip(line[2:-1:2], line[3:-1:2], strict=True))
        assert (line[0], line[1], flat_dims, line[-1]) == (namespace, metric, dims, {"stat": stat})
        assert w["properties"]["region"] == "us-east-1"
