"""The catalogue of AWS metrics (localcloud/aws_metrics.py) against the alarms the program declares."""
from __future__ import annotations

from components.alarms import apigateway, dynamodb, kinesis, lambda_, sqs
from localcloud.aws_metrics import not_aws
from settings.alarm_catalog import FUNCTION_ROLES


def test_every_declared_alarm_watches_a_metric_aws_publishes_with_those_dimensions() -> None:
    specs = [*apigateway.api_alarms("a"), *(s for r in FUNCTION_ROLES for s in lambda_.function_alarms(r, "f", 10)),
             *lambda_.stream_consumer_alarms("f"), *kinesis.stream_alarms("s"), *dynamodb.readings_alarms("t"),
             *dynamodb.devices_alarms("t"), *sqs.dlq_alarms("q")]
    assert len(specs) >= 24
    assert not_aws((s.namespace, s.metric_name, tuple(s.dimensions)) for s in specs) == []


def test_the_catalogue_rejects_what_aws_does_not_publish() -> None:
    wrong = not_aws([("AWS/DynamoDB", "ConditionalCheckFailedRequests", ("TableName", "Operation")),
                     ("AWS/DynamoDB", "SystemErrors", ("TableName",)),
                     ("AWS/ApiGateway", "4XXError", ("ApiName",)),
                     ("IotIngest", "Anything", ("service",))])
    assert len(wrong) == 3 and all(line.startswith("AWS/") for line in wrong)
    assert not_aws([("AWS/DynamoDB", "ConditionalCheckFailedRequests", ("TableName",))]) == []
