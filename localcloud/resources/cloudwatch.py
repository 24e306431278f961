"""CloudWatch metric alarms (every declared field) and dashboards.

moto stores alarms but never evaluates them; the data plane's monitor reads
them back with DescribeAlarms and evaluates them itself.
"""
from __future__ import annotations

import json
from typing import Any

from .base import Context, ProvisionError, Request, as_bool, as_int, drop_none, physical_name, tag_list


def _dimensions(raw: Any) -> list[dict[str, str]]:
    return [{"Name": str(k), "Value": str(v)} for k, v in (raw or {}).items()]


def _metric_query(raw: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = drop_none({
        "Id": raw.get("id"),
        "Expression": raw.get("expression"),
        "Label": raw.get("label"),
        "ReturnData": raw.get("returnData"),
        "Period": as_int(raw.get("period")),
        "AccountId": raw.get("accountId"),
    })
    metric = raw.get("metric")
    if metric:
        query["MetricStat"] = drop_none({
            "Metric": {
                "Namespace": metric.get("namespace"),
                "MetricName": metric.get("metricName"),
                "Dimensions": _dimensions(metric.get("dimensions")),
            },
            "Period": as_int(metric.get("period")),
            "Stat": metric.get("stat"),
            "Unit": metric.get("unit"),
        })
    return query


def create_metric_alarm(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    for key in ("comparisonOperator", "evaluationPeriods"):
        if i.get(key) is None:
            raise ProvisionError(f"metric alarm {req.name!r}: {key} is required")
    name = physical_name(req, max_len=255)
    args: dict[str, Any] = drop_none({
        "AlarmName": name,
        "AlarmDescription": i.get("alarmDescription"),
        "ActionsEnabled": as_bool(i.get("actionsEnabled"), default=True),
        "OKActions": list(i.get("okActions") or []),
        "AlarmActions": list(i.get("alarmActions") or []),
        "InsufficientDataActions": list(i.get("insufficientDataActions") or []),
        "MetricName": i.get("metricName"),
        "Namespace": i.get("namespace"),
        "Statistic": i.get("statistic") or None,
        "ExtendedStatistic": i.get("extendedStatistic") or None,
        "Dimensions": _dimensions(i.get("dimensions")) if i.get("dimensions") else None,
        "Period": as_int(i.get("period")),
        "Unit": i.get("unit"),
        "EvaluationPeriods": as_int(i.get("evaluationPeriods")),
        "DatapointsToAlarm": as_int(i.get("datapointsToAlarm")),
        "Threshold": float(i["threshold"]) if i.get("threshold") is not None else None,
        "ComparisonOperator": i.get("comparisonOperator"),
        "TreatMissingData": i.get("treatMissingData") or "missing",
        "EvaluateLowSampleCountPercentile": i.get("evaluateLowSampleCountPercentiles"),
        "ThresholdMetricId": i.get("thresholdMetricId"),
    })
    if i.get("metricQueries"):
        args["Metrics"] = [_metric_query(q) for q in i["metricQueries"]]
    if not args.get("Metrics") and not (args.get("MetricName") and args.get("Namespace")):
        raise ProvisionError(f"metric alarm {req.name!r}: give metricName+namespace or metricQueries")
    if "Metrics" not in args and not (args.get("Statistic") or args.get("ExtendedStatistic")):
        raise ProvisionError(f"metric alarm {req.name!r}: statistic or extendedStatistic is required")
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tag_list(tags)
    ctx.client("cloudwatch").put_metric_alarm(**args)
    arn = ctx.arn("cloudwatch", f"alarm:{name}")
    return name, {**i, "name": name, "arn": arn, "treatMissingData": args["TreatMissingData"], "tagsAll": tags}


def create_dashboard(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    body = i.get("dashboardBody")
    if not body:
        raise ProvisionError(f"dashboard {req.name!r}: dashboardBody is required")
    text = body if isinstance(body, str) else json.dumps(body)
    try:
        json.loads(text)
    except ValueError as exc:  # CloudWatch rejects it too (InvalidParameterInput)
        raise ProvisionError(f"dashboard {req.name!r}: dashboardBody is not JSON: {exc}") from exc
    name = physical_name(req, key="dashboardName", max_len=255)
    ctx.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=text)
    arn = ctx.arn("cloudwatch", f"dashboard/{name}", region=False)
    return name, {**i, "dashboardName": name, "dashboardArn": arn}


CREATORS = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": create_metric_alarm,
    "aws:cloudwatch/dashboard:Dashboard": create_dashboard,
}
