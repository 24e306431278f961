"""The stalled-consumer alarm: records keep arriving on the stream, the processor never runs.

No single AWS metric shows a consumer that silently stopped (a disabled event source mapping,
a removed permission): IteratorAge is published only while the mapping reads, so it simply
stops, and missing data is not breaching. Two metrics AWS does publish together do show it,
in metric math: Kinesis ``IncomingRecords`` (StreamName) and Lambda ``Invocations``
(FunctionName). Per period the expression is the number of records that came in while the
processor ran zero times; an idle stream gives 0, not a false alarm.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html
(``FILL``, ``IF``, comparison operators). The local monitor evaluates it (localcloud/metric_math.py).
"""
from __future__ import annotations

import pulumi
import pulumi_aws as aws

from settings import AlarmOverride

from .defaults import ALARM_DEFAULTS
from .spec import AlarmSpec, tuning

ALARM_ID = "processor-stalled"
EXPRESSION = "IF(FILL(invocations, 0) == 0, FILL(incoming, 0), 0)"


def watched_metrics(stream_name: pulumi.Input[str], function_name: pulumi.Input[str]) -> (
        list[tuple[str, str, str, dict[str, pulumi.Input[str]]]]):
    """(query id, namespace, metric, dimensions) of the metrics the expression reads: one place,
    used by the alarm below and by the policy pack's catalogue of metrics AWS publishes."""
    return [
        ("incoming", "AWS/Kinesis", "IncomingRecords", {"StreamName": stream_name}),
        ("invocations", "AWS/Lambda", "Invocations", {"FunctionName": function_name}),
    ]


def stalled_consumer_alarm(parent: pulumi.Resource, base_name: str, physical_prefix: str,
                           stream_name: pulumi.Input[str], function_name: pulumi.Input[str],
                           override: AlarmOverride | None, topic_arn: pulumi.Input[str]) -> aws.cloudwatch.MetricAlarm:
    """Records in, zero processor invocations, in M of N periods; notifies on ALARM and OK."""
    t = tuning(AlarmSpec(ALARM_ID, "", "", {}, ""), override)
    stat = ALARM_DEFAULTS[ALARM_ID].statistic or "Sum"

    def query(query_id: str, namespace: str, metric: str, dims: dict[str, pulumi.Input[str]]) -> (
            aws.cloudwatch.MetricAlarmMetricQueryArgs):
        return aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=query_id, return_data=False,
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=namespace, metric_name=metric, dimensions=dims, period=t.period, stat=stat))

    return aws.cloudwatch.MetricAlarm(
        f"{base_name}-{ALARM_ID}",
        name=f"{physical_prefix}-{ALARM_ID}",
        alarm_description=("Records arrive on the stream but the processor is not invoked (disabled mapping, "
                           f"lost permission). {ALARM_DEFAULTS[ALARM_ID].rationale}"),
        metric_queries=[
            *(query(query_id, namespace, metric, dims)
              for query_id, namespace, metric, dims in watched_metrics(stream_name, function_name)),
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="stalled", expression=EXPRESSION, label="records in while the processor never ran",
                return_data=True),
        ],
        evaluation_periods=t.evaluation_periods,
        datapoints_to_alarm=t.datapoints_to_alarm,
        threshold=t.threshold,
        comparison_operator=t.comparison,
        treat_missing_data=t.treat_missing_data,
        actions_enabled=t.enabled,
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        opts=pulumi.ResourceOptions(parent=parent),
    )
