"""Which IAM action on which resource ARN each API call needs.

The table covers the calls made under a function's role: the handlers'
(authorizer GetItem, ingest PutRecords, processor BatchWriteItem/UpdateItem),
the Lambda service's on a function's behalf (the Kinesis mapping's reads, the
on-failure destination's SendMessage/Publish, log delivery), and the nearby
calls a handler could plausibly grow into. A call that is not in the table is
an error naming the call (:class:`UnmappedCall`), never silently allowed: add
it here, with its resource, when a handler starts making it.

Action and resource types are those of the Service Authorization Reference:
- DynamoDB: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
  (table ``arn:aws:dynamodb:R:A:table/T``, index ``.../table/T/index/I``;
  BatchWriteItem/BatchGetItem need the action on every table they name)
- Kinesis: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonkinesis.html
  (stream ``arn:aws:kinesis:R:A:stream/S``; ListStreams has no resource type: ``*``)
- SQS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsqs.html
  (queue ``arn:aws:sqs:R:A:Q``; the *Batch calls are authorised as their single-message action)
- SNS: https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html
  (``sns:Publish`` covers Publish and PublishBatch)
- KMS: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
- CloudWatch Logs: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
  (log streams ``arn:aws:logs:R:A:log-group:G:log-stream:S``, which ``log-group:G:*`` grants)
- X-Ray: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse


class UnmappedCall(Exception):
    """A call made under a role that the table does not know: refused, never allowed by default."""

    def __init__(self, call: "ApiCall", why: str = "") -> None:
        detail = f" ({why})" if why else ""
        super().__init__(
            f"localcloud IAM: no action/resource mapping for {call.service} {call.operation}{detail}; "
            "add it to localcloud/iam_actions.py"
        )
        self.call = call


@dataclass(frozen=True)
class ApiCall:
    service: str  # signing name from the SigV4 credential scope: dynamodb, kinesis, sqs, sns, logs, kms...
    operation: str  # API operation name, e.g. "BatchWriteItem"
    params: dict[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"
    account: str = "123456789012"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def param(self, name: str) -> str:
        value = self.params.get(name)
        if not isinstance(value, str) or not value:
            raise UnmappedCall(self, f"no {name} parameter to name the resource")
        return value


@dataclass(frozen=True)
class Authorization:
    """One check the call must pass: ``action`` on ``resource``."""

    action: str
    resource: str


Resolver = Callable[[ApiCall], list[str]]


# ---- DynamoDB ---------------------------------------------------------------------------------

def _table(call: ApiCall, name: str) -> str:
    # TableName also accepts a table ARN (2024 API change).
    return name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")


def _ddb_table(call: ApiCall) -> list[str]:
    table = _table(call, call.param("TableName"))
    index = call.params.get("IndexName")
    return [f"{table}/index/{index}"] if isinstance(index, str) and index else [table]


def _ddb_request_items(call: ApiCall) -> list[str]:
    items = call.params.get("RequestItems")
    if not isinstance(items, dict) or not items:
        raise UnmappedCall(call, "no RequestItems to name the tables")
    return [_table(call, str(name)) for name in items]


def _everything(_call: ApiCall) -> list[str]:
    return ["*"]


# ---- Kinesis ----------------------------------------------------------------------------------

def _stream(call: ApiCall) -> list[str]:
    arn = call.params.get("StreamARN")
    if isinstance(arn, str) and arn:
        return [arn]
    return [call.arn("kinesis", f"stream/{call.param('StreamName')}")]


def _stream_of_iterator(call: ApiCall) -> list[str]:
    """GetRecords names its stream only through the iterator (or StreamARN).

    The emulator's iterators are base64 of ``stream:shard:sequence`` (moto's
    ``compose_shard_iterator``); AWS's are opaque, but AWS authorises GetRecords
    on the iterator's stream all the same.
    """
    arn = call.params.get("StreamARN")
    if isinstance(arn, str) and arn:
        return [arn]
    iterator = call.param("ShardIterator")
    try:
        stream = base64.b64decode(iterator, validate=False).decode("utf-8").split(":", 1)[0]
    except (binascii.Error, UnicodeDecodeError, ValueError):
        stream = ""
    if not stream:
        raise UnmappedCall(call, "the shard iterator names no stream")
    return [call.arn("kinesis", f"stream/{stream}")]


# ---- SQS --------------------------------------------------------------------------------------

def _queue(call: ApiCall) -> list[str]:
    url = call.params.get("QueueUrl")
    if isinstance(url, str) and url:
        parts = [p for p in urlparse(url).path.split("/") if p]
        if len(parts) != 2:
            raise UnmappedCall(call, f"QueueUrl {url!r} is not .../<account>/<queue>")
        account, name = parts
        return [f"arn:aws:sqs:{call.region}:{account}:{name}"]
    return [call.arn("sqs", call.param("QueueName"))]


# ---- SNS --------------------------------------------------------------------------------------

def _topic(call: ApiCall) -> list[str]:
    for name in ("TopicArn", "TargetArn"):
        value = call.params.get(name)
        if isinstance(value, str) and value:
            return [value]
    raise UnmappedCall(call, "publishing to a phone number (no TopicArn/TargetArn) is not modelled")


# ---- KMS --------------------------------------------------------------------------------------

def _key(call: ApiCall) -> list[str]:
    key = call.params.get("KeyId")
    if not isinstance(key, str) or not key:
        # Decrypt of symmetric ciphertext may omit KeyId: the key is inside the blob.
        raise UnmappedCall(call, "no KeyId: the key is only inside the ciphertext")
    if key.startswith("arn:"):
        return [key]
    if key.startswith("alias/"):
        raise UnmappedCall(call, "a key named by alias must be resolved to its key ARN first")
    return [call.arn("kms", f"key/{key}")]


# ---- CloudWatch Logs ----------------------------------------------------------------------------

def _log_stream(call: ApiCall) -> list[str]:
    group, stream = call.param("logGroupName"), call.param("logStreamName")
    return [call.arn("logs", f"log-group:{group}:log-stream:{stream}")]


def _log_group(call: ApiCall) -> list[str]:
    return [call.arn("logs", f"log-group:{call.param('logGroupName')}")]


#: (signing service, operation) -> (IAM action, resource resolver)
ACTIONS: dict[tuple[str, str], tuple[str, Resolver]] = {
    **{("dynamodb", op): (f"dynamodb:{op}", _ddb_table) for op in (
        "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable",
        "DescribeTimeToLive", "DescribeContinuousBackups")},
    ("dynamodb", "BatchWriteItem"): ("dynamodb:BatchWriteItem", _ddb_request_items),
    ("dynamodb", "BatchGetItem"): ("dynamodb:BatchGetItem", _ddb_request_items),
    ("dynamodb", "ListTables"): ("dynamodb:ListTables", _everything),
    **{("kinesis", op): (f"kinesis:{op}", _stream) for op in (
        "PutRecord", "PutRecords", "GetShardIterator", "ListShards", "DescribeStream",
        "DescribeStreamSummary", "ListTagsForStream")},
    ("kinesis", "GetRecords"): ("kinesis:GetRecords", _stream_of_iterator),
    ("kinesis", "ListStreams"): ("kinesis:ListStreams", _everything),
    ("sqs", "SendMessage"): ("sqs:SendMessage", _queue),
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage", _queue),
    ("sqs", "ReceiveMessage"): ("sqs:ReceiveMessage", _queue),
    ("sqs", "DeleteMessage"): ("sqs:DeleteMessage", _queue),
    ("sqs", "DeleteMessageBatch"): ("sqs:DeleteMessage", _queue),
    ("sqs", "ChangeMessageVisibility"): ("sqs:ChangeMessageVisibility", _queue),
    ("sqs", "ChangeMessageVisibilityBatch"): ("sqs:ChangeMessageVisibility", _queue),
    ("sqs", "GetQueueAttributes"): ("sqs:GetQueueAttributes", _queue),
    ("sqs", "GetQueueUrl"): ("sqs:GetQueueUrl", _queue),
    ("sns", "Publish"): ("sns:Publish", _topic),
    ("sns", "PublishBatch"): ("sns:Publish", _topic),
    ("kms", "Decrypt"): ("kms:Decrypt", _key),
    ("kms", "Encrypt"): ("kms:Encrypt", _key),
    ("kms", "GenerateDataKey"): ("kms:GenerateDataKey", _key),
    ("logs", "CreateLogStream"): ("logs:CreateLogStream", _log_stream),
    ("logs", "PutLogEvents"): ("logs:PutLogEvents", _log_stream),
    ("logs", "CreateLogGroup"): ("logs:CreateLogGroup", _log_group),
    # X-Ray is REST-JSON: the operation is known by method and path. No resource types: "*".
    ("xray", "POST /TraceSegments"): ("xray:PutTraceSegments", _everything),
    ("xray", "POST /TelemetryRecords"): ("xray:PutTelemetryRecords", _everything),
}


def authorizations(call: ApiCall) -> list[Authorization]:
    """Every (action, resource) ``call`` needs; raises :class:`UnmappedCall` for an unknown call."""
    entry = ACTIONS.get((call.service, call.operation))
    if entry is None:
        raise UnmappedCall(call)
    action, resolve = entry
    return [Authorization(action, resource) for resource in resolve(call)]
