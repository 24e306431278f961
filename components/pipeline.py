"""The whole ingest pipeline as one component: what ``__main__`` composes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi

from settings import Settings

from .alarms import Monitoring, MonitoringArgs
from .api import IngestApi, IngestApiArgs
from .code_archive import build_code_archive
from .function import LambdaFunction, LambdaFunctionArgs, PolicyStatement
from .processor import StreamProcessor, StreamProcessorArgs
from .storage import Storage, StorageArgs
from .stream import Stream, StreamArgs


@dataclass(frozen=True)
class PipelineArgs:
    settings: Settings
    code_dir: Path  # handlers/, zipped (into ../build/lambda-code.zip) as the code of every function
    stack: str  # part of every physical name, so stacks can share an account


class IngestPipeline(pulumi.ComponentResource):
    """Stream, tables, three functions, HTTP API, stream processor and monitoring."""

    def __init__(self, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iot-ingest:pipeline:IngestPipeline", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{name}-{args.stack}"
        # One deterministic zip of the handlers for all three functions (see code_archive.py).
        code = pulumi.FileArchive(str(build_code_archive(args.code_dir, args.code_dir.parent / "build" / "lambda-code.zip")))

        def function_args(role: str, handler: str, environment: dict[str, pulumi.Input[str]],
                          statements: tuple[PolicyStatement, ...]) -> LambdaFunctionArgs:
            return LambdaFunctionArgs(
                role=role, function_name=f"{prefix}-{role}", handler=handler, code=code,
                settings=s.functions.by_role()[role], layers=[s.functions.powertools_layer_arn],
                log_retention_days=s.log_retention_days, log_level=s.functions.log_level,
                environment=environment, statements=statements,
            )

        self.stream = Stream(f"{name}-stream", StreamArgs(s.stream, protect=s.storage.protect), opts=child)
        self.storage = Storage(f"{name}-storage", StorageArgs(s.storage), opts=child)

        quota = s.ingest.device_daily_reading_quota
        self.authorizer = LambdaFunction(f"{name}-authorizer", function_args(
            "authorizer", "authorizer.handler",
            {
                "DEVICES_TABLE": self.storage.devices_table_name,
                "DEVICE_DAILY_READING_QUOTA": "unlimited" if quota is None else str(quota),
            },
            (PolicyStatement(("dynamodb:GetItem",), [self.storage.devices_table_arn]),),
        ), opts=child)

        ingest_statements = [PolicyStatement(("kinesis:PutRecords",), [self.stream.arn])]
        if s.stream.kms_key_arn:
            # Producers to a stream encrypted with a customer managed key need GenerateDataKey:
            # https://docs.aws.amazon.com/streams/latest/dev/permissions-user-key-KMS.html
            ingest_statements.append(PolicyStatement(("kms:GenerateDataKey",), [s.stream.kms_key_arn]))
        lim = s.ingest
        self.ingest = LambdaFunction(f"{name}-ingest", function_args(
            "ingest", "ingest.handler",
            {
                "STREAM_NAME": self.stream.name,
                "MAX_READINGS_PER_REQUEST": str(lim.max_readings_per_request),
                "MAX_BODY_BYTES": str(lim.max_body_bytes),
                "MAX_READING_AGE_SECONDS": str(lim.max_reading_age_s),
                "MAX_FUTURE_SKEW_SECONDS": str(lim.max_future_skew_s),
                "PUT_BUDGET_SECONDS": str(lim.put_budget_s),
            },
            tuple(ingest_statements),
        ), opts=child)

        self.api = IngestApi(f"{name}-api", IngestApiArgs(
            settings=s.api, ingest=self.ingest, authorizer=self.authorizer,
            access_log_group_name=f"/aws/apigateway/{prefix}-access",
            log_retention_days=s.log_retention_days,
        ), opts=child)

        self.processor = StreamProcessor(f"{name}-processor", StreamProcessorArgs(
            function=function_args(
                "processor", "processor.handler",
                {
                    "READINGS_TABLE": self.storage.readings_table_name,
                    "DEVICES_TABLE": self.storage.devices_table_name,
                    "READINGS_TTL_DAYS": str(s.storage.readings_ttl_days),
                },
                (
                    PolicyStatement(("dynamodb:BatchWriteItem",), [self.storage.readings_table_arn]),
                    PolicyStatement(("dynamodb:UpdateItem",), [self.storage.devices_table_arn]),
                ),
            ),
            stream_arn=self.stream.arn,
            stream_kms_key_arn=s.stream.kms_key_arn,
            mapping=s.processor,
        ), opts=child)

        self.function_names: dict[str, pulumi.Input[str]] = {
            "authorizer": self.authorizer.name,
            "ingest": self.ingest.name,
            "processor": self.processor.function.name,
        }
        self.monitoring = Monitoring(f"{name}-monitoring", MonitoringArgs(
            settings=s.alarms, functions=s.functions, region=s.region, physical_prefix=prefix,
            api_id=self.api.api_id, function_names=self.function_names,
            stream_name=self.stream.name, stream_arn=self.stream.arn,
            readings_table_name=self.storage.readings_table_name,
            devices_table_name=self.storage.devices_table_name,
            dlq_name=self.processor.dlq_name,
        ), opts=child)

        self.outputs: dict[str, pulumi.Input[object]] = {
            "apiUrl": self.api.url,
            "apiId": self.api.api_id,
            "streamName": self.stream.name,
            "streamArn": self.stream.arn,
            "readingsTableName": self.storage.readings_table_name,
            "devicesTableName": self.storage.devices_table_name,
            "dlqUrl": self.processor.dlq_url,
            "alarmTopicArn": self.monitoring.topic_arn,
            "dashboardName": self.monitoring.dashboard_name,
            "functionNames": self.function_names,
        }
        self.register_outputs(self.outputs)
