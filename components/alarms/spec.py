"""What one alarm watches, and how a spec plus its tuning becomes a MetricAlarm."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from settings import AlarmOverride

from .defaults import ALARM_DEFAULTS


@dataclass(frozen=True)
class AlarmSpec:
    alarm_id: str  # key into ALARM_DEFAULTS and iot-ingest:alarmOverrides
    namespace: str
    metric_name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    description: str
    timeout_ms: int | None = None  # for *-duration alarms


@dataclass(frozen=True)
class Tuning:
    threshold: float
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    treat_missing_data: str
    statistic: str | None
    extended_statistic: str | None
    enabled: bool
    evaluate_low_sample_count_percentiles: str | None = None


def tuning(spec: AlarmSpec, override: AlarmOverride | None) -> Tuning:
    """Defaults for ``spec.alarm_id`` with any configured override applied."""
    d = ALARM_DEFAULTS[spec.alarm_id]
    threshold = d.threshold
    if d.threshold_is_timeout_fraction:
        if spec.timeout_ms is None:
            raise ValueError(f"alarm {spec.alarm_id} needs the function timeout")
        threshold = round(d.threshold * spec.timeout_ms)
    o = override or AlarmOverride()
    evaluation = o.evaluation_periods if o.evaluation_periods is not None else d.evaluation_periods
    datapoints = o.datapoints_to_alarm if o.datapoints_to_alarm is not None else min(d.datapoints_to_alarm, evaluation)
    return Tuning(
        threshold=o.threshold if o.threshold is not None else threshold,
        period=o.period if o.period is not None else d.period,
        evaluation_periods=evaluation,
        datapoints_to_alarm=min(datapoints, evaluation),
        comparison=d.comparison,
        treat_missing_data=o.treat_missing_data or d.treat_missing_data,
        statistic=d.statistic,
        extended_statistic=d.extended_statistic,
        enabled=True if o.enabled is None else o.enabled,
        evaluate_low_sample_count_percentiles=(o.evaluate_low_sample_count_percentiles
                                               or d.evaluate_low_sample_count_percentiles),
    )


def metric_alarm(parent: pulumi.Resource, base_name: str, physical_prefix: str, spec: AlarmSpec,
                 override: AlarmOverride | None, topic_arn: pulumi.Input[str]) -> aws.cloudwatch.MetricAlarm:
    """One alarm notifying ``topic_arn`` on both ALARM and OK transitions."""
    t = tuning(spec, override)
    return aws.cloudwatch.MetricAlarm(
        f"{base_name}-{spec.alarm_id}",
        name=f"{physical_prefix}-{spec.alarm_id}",
        alarm_description=f"{spec.description} {ALARM_DEFAULTS[spec.alarm_id].rationale}",
        namespace=spec.namespace,
        metric_name=spec.metric_name,
        dimensions=dict(spec.dimensions),
        statistic=t.statistic,
        extended_statistic=t.extended_statistic,
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/percentiles-with-low-samples.html
        evaluate_low_sample_count_percentiles=t.evaluate_low_sample_count_percentiles,
        period=t.period,
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
