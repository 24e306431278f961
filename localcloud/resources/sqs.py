"""aws:sqs/queue:Queue -> an SQS queue with the declared attributes; its id is the URL, as in pulumi-aws."""
from __future__ import annotations

import json
from typing import Any

from .base import Context, Request, as_bool, as_int, physical_name

# Pulumi input -> SQS attribute name (integers and booleans become strings).
_ATTRIBUTES = {
    "delaySeconds": "DelaySeconds",
    "maxMessageSize": "MaximumMessageSize",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
    "fifoQueue": "FifoQueue",
    "contentBasedDeduplication": "ContentBasedDeduplication",
    "policy": "Policy",
    "redrivePolicy": "RedrivePolicy",
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def create_queue(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    sqs = ctx.client("sqs")
    i = req.inputs
    fifo = as_bool(i.get("fifoQueue"))
    name = physical_name(req, max_len=75 if fifo else 80, suffix=".fifo" if fifo and not i.get("name") else "")
    attributes = {
        attr: _text(i[key]) for key, attr in _ATTRIBUTES.items() if i.get(key) not in (None, "") and (
            key != "fifoQueue" or fifo)
    }
    args: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    tags = ctx.tags(req)
    if tags:
        args["tags"] = tags
    url = sqs.create_queue(**args)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    retention = as_int(i.get("messageRetentionSeconds"), 345600)
    return url, {**i, "name": name, "arn": arn, "url": url, "messageRetentionSeconds": retention, "tagsAll": tags}


CREATORS = {"aws:sqs/queue:Queue": create_queue}
