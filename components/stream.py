"""The Kinesis data stream that decouples ingest from storage."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from settings import StreamSettings

# AWS managed key for Kinesis server-side encryption.
# https://docs.aws.amazon.com/streams/latest/dev/what-is-sse.html
AWS_MANAGED_KINESIS_KEY = "alias/aws/kinesis"


@dataclass(frozen=True)
class StreamArgs:
    settings: StreamSettings
    protect: bool


class Stream(pulumi.ComponentResource):
    """Encrypted stream; PROVISIONED takes a shard count, ON_DEMAND must not."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: StreamArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iot-ingest:stream:Stream", name, None, opts)
        s = args.settings
        provisioned = s.mode == "PROVISIONED"
        self.kms_key_arn: str | None = s.kms_key_arn
        self.stream = aws.kinesis.Stream(
            f"{name}-kinesis",
            stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(stream_mode=s.mode),
            shard_count=s.shard_count if provisioned else None,
            retention_period=s.retention_hours,
            encryption_type="KMS",
            kms_key_id=s.kms_key_arn or AWS_MANAGED_KINESIS_KEY,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.name = self.stream.name
        self.arn = self.stream.arn
        self.register_outputs({"name": self.name, "arn": self.arn})
