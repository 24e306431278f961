"""Which metrics AWS publishes under ``AWS/*`` for the services the local cloud stands in
for, and with which dimension sets: what the local cloud may publish and alarms may watch.

CloudWatch accepts any name and any dimension set, so a metric published under a name or
dimension set AWS never uses looks fine locally and is silent on AWS (and an alarm on it never
fires). Tests compare everything the monitor received after a run against this table. It lists
the metrics of our services, not every metric those services have. Sources:
- API Gateway HTTP APIs: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html
- Lambda: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
- Kinesis: https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html
- DynamoDB: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
- SQS: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
"""
from __future__ import annotations

from typing import Final, Iterable

DimensionSet = frozenset[str]


def _sets(*sets: tuple[str, ...]) -> frozenset[DimensionSet]:
    return frozenset(frozenset(s) for s in sets)


_API = _sets(("ApiId",), ("ApiId", "Stage"), ("ApiId", "Stage", "Resource", "Method"), ("ApiId", "Stage", "Route"))
_FUNCTION = _sets(("FunctionName",), ("FunctionName", "Resource"), ("FunctionName", "ExecutedVersion"))
_STREAM = _sets(("StreamName",))
_TABLE = _sets(("TableName",), ("TableName", "GlobalSecondaryIndexName"))
_TABLE_OP = _sets(("TableName", "Operation"))
_QUEUE = _sets(("QueueName",))

#: (namespace, metric name) -> the dimension sets AWS publishes it with.
CATALOGUE: Final[dict[tuple[str, str], frozenset[DimensionSet]]] = {
    **{("AWS/ApiGateway", m): _API for m in ("4xx", "5xx", "Count", "Latency", "IntegrationLatency", "DataProcessed")},
    **{("AWS/Lambda", m): _FUNCTION for m in (
        "Invocations", "Errors", "Throttles", "Duration", "IteratorAge", "DestinationDeliveryFailures",
        "DeadLetterErrors", "OffsetLag")},
    # Account-wide (no dimension) or per function: https://docs.aws.amazon.com/lambda/latest/dg/monitoring-concurrency.html
    ("AWS/Lambda", "ConcurrentExecutions"): _FUNCTION | _sets(()),
    ("AWS/Lambda", "UnreservedConcurrentExecutions"): _sets(()),
    **{("AWS/Kinesis", m): _STREAM for m in (
        "IncomingRecords", "IncomingBytes", "PutRecords.TotalRecords", "PutRecords.SuccessfulRecords",
        "PutRecords.FailedRecords", "PutRecords.ThrottledRecords", "PutRecords.Success", "PutRecords.Bytes",
        "PutRecords.Latency", "PutRecord.Success", "PutRecord.Bytes", "PutRecord.Latency",
        "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
        "GetRecords.IteratorAgeMilliseconds", "GetRecords.Records", "GetRecords.Bytes", "GetRecords.Success",
        "GetRecords.Latency")},
    **{("AWS/DynamoDB", m): _TABLE for m in (
        "ConditionalCheckFailedRequests", "ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits",
        "ReadThrottleEvents", "WriteThrottleEvents")},
    **{("AWS/DynamoDB", m): _TABLE_OP for m in (
        "SuccessfulRequestLatency", "SystemErrors", "ThrottledRequests", "ReturnedItemCount")},
    ("AWS/DynamoDB", "UserErrors"): _sets(()),  # account and Region wide
    **{("AWS/SQS", m): _QUEUE for m in (
        "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent", "NumberOfMessagesReceived",
        "NumberOfMessagesDeleted")},
}


#: Metrics whose values are durations: under a time-scaled local cloud their alarm thresholds
#: shrink with the clock (``Monitor(time_threshold_scale=...)``).
TIME_METRICS: Final[frozenset[tuple[str, str]]] = frozenset({
    ("AWS/ApiGateway", "Latency"), ("AWS/ApiGateway", "IntegrationLatency"), ("AWS/Lambda", "Duration"),
    ("AWS/Lambda", "IteratorAge"), ("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds"),
    ("AWS/DynamoDB", "SuccessfulRequestLatency"), ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
})


def not_aws(published: Iterable[tuple[str, str, Iterable[str]]]) -> list[str]:
    """Each published (namespace, metric, dimension names) under AWS/* that AWS does not publish
    with that dimension set, as readable lines (empty when all are AWS's)."""
    wrong: list[str] = []
    for namespace, name, dims in published:
        if not namespace.startswith("AWS/"):
            continue
        allowed = CATALOGUE.get((namespace, name))
        shown = f"{namespace} {name} [{', '.join(sorted(dims)) or 'no dimension'}]"
        if allowed is None:
            wrong.append(f"{shown}: not a metric AWS publishes (or missing from localcloud/aws_metrics.py)")
        elif frozenset(dims) not in allowed:
            wrong.append(f"{shown}: AWS uses {sorted(sorted(s) for s in allowed)}")
    return sorted(set(wrong))
