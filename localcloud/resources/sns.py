"""SNS topics and subscriptions (SQS subscriptions really deliver inside moto)."""
from __future__ import annotations

from typing import Any

from .base import Context, ProvisionError, Request, as_bool, physical_name, tag_list

_TOPIC_ATTRIBUTES = {"displayName": "DisplayName", "kmsMasterKeyId": "KmsMasterKeyId", "policy": "Policy"}


def create_topic(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    sns = ctx.client("sns")
    i = req.inputs
    fifo = as_bool(i.get("fifoTopic"))
    name = physical_name(req, max_len=251 if fifo else 256, suffix=".fifo" if fifo and not i.get("name") else "")
    attributes = {attr: str(i[key]) for key, attr in _TOPIC_ATTRIBUTES.items() if i.get(key)}
    if fifo:
        attributes["FifoTopic"] = "true"
    args: dict[str, Any] = {"Name": name, "Attributes": attributes}
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tag_list(tags)
    arn = sns.create_topic(**args)["TopicArn"]
    return arn, {**i, "name": name, "arn": arn, "tagsAll": tags}


def create_subscription(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    for key in ("topic", "protocol", "endpoint"):
        if not i.get(key):
            raise ProvisionError(f"topic subscription {req.name!r}: {key} is required")
    attributes: dict[str, str] = {}
    if as_bool(i.get("rawMessageDelivery")):
        attributes["RawMessageDelivery"] = "true"
    if i.get("filterPolicy"):
        attributes["FilterPolicy"] = str(i["filterPolicy"])
    answer = ctx.client("sns").subscribe(
        TopicArn=i["topic"], Protocol=i["protocol"], Endpoint=i["endpoint"], Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    arn = answer["SubscriptionArn"]
    # An email subscription stays "pending confirmation" on AWS; moto confirms it.
    return arn, {**i, "arn": arn, "pendingConfirmation": False}


CREATORS = {"aws:sns/topic:Topic": create_topic, "aws:sns/topicSubscription:TopicSubscription": create_subscription}
