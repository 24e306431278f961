"""aws:kinesis/stream:Stream -> a Kinesis stream in the emulator, settings as declared."""
from __future__ import annotations

from typing import Any

from .base import Context, ProvisionError, Request, as_int, physical_name


def create_stream(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    kinesis = ctx.client("kinesis")
    name = physical_name(req)
    mode = ((req.inputs.get("streamModeDetails") or {}).get("streamMode")) or "PROVISIONED"
    shard_count = as_int(req.inputs.get("shardCount"))
    args: dict[str, Any] = {"StreamName": name, "StreamModeDetails": {"StreamMode": mode}}
    if mode == "PROVISIONED":
        if shard_count is None:
            raise ProvisionError(f"stream {req.name!r}: a PROVISIONED stream needs shardCount")
        args["ShardCount"] = shard_count
    elif shard_count:
        # https://docs.aws.amazon.com/kinesis/latest/APIReference/API_CreateStream.html
        raise ProvisionError(f"stream {req.name!r}: ON_DEMAND streams take no shardCount")
    kinesis.create_stream(**args)
    retention = as_int(req.inputs.get("retentionPeriod"), 24) or 24
    if retention > 24:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=retention)
    if req.inputs.get("encryptionType") == "KMS":
        kinesis.start_stream_encryption(
            StreamName=name, EncryptionType="KMS", KeyId=req.inputs.get("kmsKeyId") or "alias/aws/kinesis"
        )
    tags = ctx.tags(req)
    if tags:
        kinesis.add_tags_to_stream(StreamName=name, Tags=tags)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    state = {
        **req.inputs,
        "name": name,
        "arn": arn,
        "shardCount": shard_count if mode == "PROVISIONED" else 0,
        "retentionPeriod": retention,
        "tagsAll": tags,
    }
    return arn, state


CREATORS = {"aws:kinesis/stream:Stream": create_stream}
