"""The whole program under mocks, for dev and prod: assertions on the recorded resource graph."""
from __future__ import annotations

import json
from typing import Any

import pytest

from infra_graph import run_stack
from infra_graph import Graph
from settings.alarm_catalog import ALARM_IDS

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
    data = run_stack("dev", {"shardCount": 0, "processorBatchSize": 0})
    assert data["error"]["type"] == "SettingsError"
    assert "iot-ingest:shardCount" in data["error"]["message"]
    assert "iot-ingest:processorBatchSize" in data["error"]["message"]
    assert data["resources"] == []


# ---------------------------------------------------------------- IAM

def test_authorizer_policy_is_exactly_getitem_on_devices(graph: Graph) -> None:
    doc = graph.role_policy("authorizer")
    assert doc["Statement"] == [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"],
         "Resource": [state_arn(graph, "aws:dynamodb/table:Table", "iot-ingest-storage-devices")]},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [state_arn(graph, "aws:cloudwatch/logGroup:LogGroup", "iot-ingest-authorizer-logs") + ":*"]},
        XRAY,
    ]


def test_ingest_policy_is_exactly_putrecords_on_the_stream(graph: Graph) -> None:
    doc = graph.role_policy("ingest")
    assert doc["Statement"][0] == {"Effect": "Allow", "Action": ["kinesis:PutRecords"],
                                   "Resource": [graph.outputs["streamArn"]]}
    assert doc["Statement"][1]["Resource"] == [
        state_arn(graph, "aws:cloudwatch/logGroup:LogGroup", "iot-ingest-ingest-logs") + ":*"]
    assert doc["Statement"][2] == XRAY and len(doc["Statement"]) == 3


def test_processor_policy_covers_tables_stream_reads_and_dlq_only(graph: Graph) -> None:
    doc = graph.role_policy("processor")
    assert doc["Statement"][:4] == [
        {"Effect": "Allow", "Action": ["dynamodb:BatchWriteItem"],
         "Resource": [state_arn(graph, "aws:dynamodb/table:Table", "iot-ingest-storage-readings")]},
        {"Effect": "Allow", "Action": ["dynamodb:UpdateItem"],
         "Resource": [state_arn(graph, "aws:dynamodb/table:Table", "iot-ingest-storage-devices")]},
        {"Effect": "Allow", "Action": KINESIS_READ, "Resource": [graph.outputs["streamArn"]]},
        {"Effect": "Allow", "Action": ["sqs:SendMessage"],
         "Resource": [state_arn(graph, "aws:sqs/queue:Queue", "iot-ingest-processor-dlq")]},
    ]
    assert doc["Statement"][5] == XRAY and len(doc["Statement"]) == 6


def test_no_wildcard_actions_and_star_resource_only_for_xray(graph: Graph) -> None:
    policies = graph.of_type("aws:iam/rolePolicy:RolePolicy")
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


def test_customer_managed_stream_key_adds_kms_grants(graphs: dict[str, Graph]) -> None:
    g = graphs["dev-options"]
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert g.one("aws:kinesis/stream:Stream", "iot-ingest-stream-kinesis")["inputs"]["kmsKeyId"] == key
    assert {"Effect": "Allow", "Action": ["kms:GenerateDataKey"], "Resource": [key]} in g.role_policy("ingest")["Statement"]
    assert {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key]} in g.role_policy("processor")["Statement"]
    assert not any("kms:" in a for st in graphs["dev"].role_policy("processor")["Statement"] for a in st["Action"])


# ---------------------------------------------------------------- functions and logs

ENV = {
    "authorizer": {"DEVICES_TABLE"},
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
    assert f["code"] == {"__fileArchive": graph.code_dir}
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
    assert set(alarms) == set(expected) == set(ALARM_IDS)
    for alarm_id, (namespace, metric, dims, stat) in expected.items():
        a = alarms[alarm_id]
        assert (a["namespace"], a["metricName"], a["dimensions"]) == (namespace, metric, dims), alarm_id
        assert (a.get("extendedStatistic") or a.get("statistic")) == stat, alarm_id
        assert not (a.get("extendedStatistic") and a.get("statistic")), alarm_id
        assert a["name"] == f"iot-ingest-{graph.stack}-{alarm_id}"


def test_every_alarm_notifies_the_topic_on_alarm_and_ok(graph: Graph) -> None:
    topic = graph.outputs["alarmTopicArn"]
    for a in graph.of_type(ALARM):
        i = a["inputs"]
        assert i["alarmActions"] == [topic] and i["okActions"] == [topic], a["name"]
        assert i["actionsEnabled"] is True
        assert 1 <= i["datapointsToAlarm"] <= i["evaluationPeriods"]
        assert i["treatMissingData"] in ("notBreaching", "breaching", "ignore", "missing")


def test_duration_alarms_fire_at_80_percent_of_each_timeout(graph: Graph) -> None:
    alarms, fns = alarms_by_id(graph), graph.settings().functions.by_role()
    for role, f in fns.items():
        assert alarms[f"{role}-duration"]["threshold"] == 0.8 * f.timeout_s * 1000
        assert alarms[f"{role}-duration"]["comparisonOperator"] == "GreaterThanThreshold"


def test_prod_alarm_overrides_are_applied(graphs: dict[str, Graph]) -> None:
    dev, prod = alarms_by_id(graphs["dev"]), alarms_by_id(graphs["prod"])
    assert (dev["api-4xx"]["threshold"], prod["api-4xx"]["threshold"]) == (100, 500)
    assert (dev["api-latency-p99"]["threshold"], prod["api-latency-p99"]["threshold"]) == (2000, 1500)
    assert dev["api-5xx"]["threshold"] == prod["api-5xx"]["threshold"] == 5


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
    assert {w["properties"]["title"] for w in widgets} == set(expected)
    for w in widgets:
        namespace, metric, dims, stat = expected[w["properties"]["title"]]
        (line,) = w["properties"]["metrics"]
        flat_dims = dict(zip(line[2:-1:2], line[3:-1:2], strict=True))
        assert (line[0], line[1], flat_dims, line[-1]) == (namespace, metric, dims, {"stat": stat})
        assert w["properties"]["region"] == "us-east-1"
