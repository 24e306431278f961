"""Monitoring component: alarm topic, every alarm, and the dashboard."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from settings import AlarmSettings, FunctionsSettings

from . import apigateway, consumer, dynamodb, kinesis, lambda_, sqs
from .dashboard import dashboard
from .spec import AlarmSpec, metric_alarm
from .topic import alarm_topic


@dataclass(frozen=True)
class MonitoringArgs:
    settings: AlarmSettings
    functions: FunctionsSettings  # timeouts for the duration alarms
    region: str
    physical_prefix: str  # alarm and dashboard names: f"{prefix}-<alarm id>"
    api_id: pulumi.Input[str]
    function_names: dict[str, pulumi.Input[str]]  # role -> physical function name
    stream_name: pulumi.Input[str]
    stream_arn: pulumi.Input[str]  # any ARN in the account: key policy account/partition
    readings_table_name: pulumi.Input[str]
    devices_table_name: pulumi.Input[str]
    dlq_name: pulumi.Input[str]


class Monitoring(pulumi.ComponentResource):
    """All alarms notify one topic on ALARM and on OK; dimension values come from this stack."""

    topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("iot-ingest:alarms:Monitoring", name, None, opts)
        self.key, self.topic, self.subscription = alarm_topic(self, name, args.stream_arn, args.settings.email)
        timeouts = {role: f.timeout_s for role, f in args.functions.by_role().items()}
        self.specs: list[AlarmSpec] = [
            *apigateway.api_alarms(args.api_id),
            *(s for role, fn in args.function_names.items()
              for s in lambda_.function_alarms(role, fn, timeouts[role])),
            *lambda_.stream_consumer_alarms(args.function_names["processor"]),
            *kinesis.stream_alarms(args.stream_name),
            *dynamodb.readings_alarms(args.readings_table_name),
            *dynamodb.devices_alarms(args.devices_table_name),
            *sqs.dlq_alarms(args.dlq_name),
        ]
        self.alarms = {
            spec.alarm_id: metric_alarm(self, name, args.physical_prefix, spec,
                                        args.settings.overrides.get(spec.alarm_id), self.topic.arn)
            for spec in self.specs
        }
        self.alarms[consumer.ALARM_ID] = consumer.stalled_consumer_alarm(
            self, name, args.physical_prefix, args.stream_name, args.function_names["processor"],
            args.settings.overrides.get(consumer.ALARM_ID), self.topic.arn)
        self.dashboard = dashboard(self, name, args.physical_prefix, self.specs, args.region, args.settings.overrides)
        self.topic_arn = self.topic.arn
        self.dashboard_name = self.dashboard.dashboard_name
        self.register_outputs({"alarmTopicArn": self.topic_arn, "dashboardName": self.dashboard_name})
