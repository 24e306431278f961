"""aws:cloudwatch/logGroup:LogGroup -> a CloudWatch Logs group with retention and tags."""
from __future__ import annotations

from typing import Any

from .base import Context, Request, as_int, physical_name


def create_log_group(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    logs = ctx.client("logs")
    i = req.inputs
    name = physical_name(req, max_len=512)
    args: dict[str, Any] = {"logGroupName": name}
    if i.get("kmsKeyId"):
        args["kmsKeyId"] = i["kmsKeyId"]
    tags = ctx.tags(req)
    if tags:
        args["tags"] = tags
    logs.create_log_group(**args)
    retention = as_int(i.get("retentionInDays"), 0)
    if retention:
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
    # pulumi-aws reports the group ARN without the ":*" suffix that DescribeLogGroups adds
    # ("Any :* suffix added by the API ... is removed"): LogGroup.arn in the Pulumi AWS
    # registry docs; AWS's LogGroup.logGroupArn is the same suffix-free form:
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_LogGroup.html
    arn = ctx.arn("logs", f"log-group:{name}")
    return name, {**i, "name": name, "arn": arn, "retentionInDays": retention, "tagsAll": tags}


CREATORS = {"aws:cloudwatch/logGroup:LogGroup": create_log_group}
