"""Stream consumer: processor function, its Kinesis event source mapping and DLQ."""
from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_aws as aws

from settings import ProcessorMappingSettings

from .function import LambdaFunction, LambdaFunctionArgs, PolicyStatement

# Lambda's poller reads the stream with the function's execution role. AWS lists
# these for standard iterators (SubscribeToShard is only for enhanced fan-out
# consumers, which we do not use; ListStreams is not listed any more and would
# need Resource "*"): https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-create.html
KINESIS_READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)
# On-failure destination on SQS: https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
DLQ_ACTIONS = ("sqs:SendMessage",)
# 14 days, SQS's maximum, so failed-batch metadata outlives any stream retention.
DLQ_RETENTION_S = 1_209_600


@dataclass(frozen=True)
class StreamProcessorArgs:
    function: LambdaFunctionArgs  # the caller's statements (table writes); stream/DLQ ones are added here
    stream_arn: pulumi.Input[str]
    stream_kms_key_arn: str | None  # customer managed key: the poller must decrypt
    mapping: ProcessorMappingSettings


class StreamProcessor(pulumi.ComponentResource):
    """DLQ first (the role must name it), then the function, then the mapping."""

    dlq_url: pulumi.Output[str]
    dlq_arn: pulumi.Output[str]
    dlq_name: pulumi.Output[str]

    def __init__(self, name: str, args: StreamProcessorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iot-ingest:processor:StreamProcessor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq", sqs_managed_sse_enabled=True,
            message_retention_seconds=DLQ_RETENTION_S, opts=child,
        )
        statements = [
            *args.function.statements,
            PolicyStatement(KINESIS_READ_ACTIONS, [args.stream_arn]),
            PolicyStatement(DLQ_ACTIONS, [self.dlq.arn]),
        ]
        if args.stream_kms_key_arn:
            statements.append(PolicyStatement(("kms:Decrypt",), [args.stream_kms_key_arn]))
        self.function = LambdaFunction(
            name, replace(args.function, statements=tuple(statements)), opts=child,
        )
        m = args.mapping
        # Options: https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-mapping",
            event_source_arn=args.stream_arn,
            function_name=self.function.arn,
            starting_position=m.starting_position,
            batch_size=m.batch_size,
            maximum_batching_window_in_seconds=m.batching_window_s,
            parallelization_factor=m.parallelization_factor,
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=m.max_retry_attempts,
            maximum_record_age_in_seconds=m.max_record_age_s,
            # Without this, a returned batchItemFailures list is ignored:
            # https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
            function_response_types=["ReportBatchItemFailures"],
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=self.dlq.arn),
            ),
            # The role must already allow the reads when Lambda validates the mapping.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function.role_policy]),
        )
        self.dlq_url = self.dlq.url
        self.dlq_arn = self.dlq.arn
        self.dlq_name = self.dlq.name
        self.register_outputs({"dlqUrl": self.dlq_url, "functionName": self.function.name})
