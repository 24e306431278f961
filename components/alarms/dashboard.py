"""A CloudWatch dashboard showing the metrics the alarms watch, one graph per alarm."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from settings import AlarmOverride

from .spec import AlarmSpec, tuning

WIDTH, HEIGHT, COLUMNS = 8, 6, 3


def dashboard_body(specs: Sequence[AlarmSpec], resolved_dims: Sequence[dict[str, str]], region: str,
                   overrides: Mapping[str, AlarmOverride] | None = None) -> str:
    """Dashboard JSON: the same namespace/metric/dimensions/statistic and period as each alarm,
    overrides included, so a graph shows what its alarm evaluates."""
    widgets = []
    for i, (spec, dims) in enumerate(zip(specs, resolved_dims, strict=True)):
        t = tuning(spec, (overrides or {}).get(spec.alarm_id))
        metric: list[object] = [spec.namespace, spec.metric_name]
        for k, v in dims.items():
            metric += [k, v]
        metric.append({"stat": t.extended_statistic or t.statistic})
        widgets.append({
            "type": "metric",
            "x": (i % COLUMNS) * WIDTH,
            "y": (i // COLUMNS) * HEIGHT,
            "width": WIDTH,
            "height": HEIGHT,
            "properties": {
                "title": spec.alarm_id,
                "region": region,
                "metrics": [metric],
                "period": t.period,
                "view": "timeSeries",
            },
        })
    return json.dumps({"widgets": widgets})


def dashboard(parent: pulumi.Resource, name: str, dashboard_name: str, specs: Sequence[AlarmSpec],
              region: str, overrides: Mapping[str, AlarmOverride]) -> aws.cloudwatch.Dashboard:
    dims = [pulumi.Output.all(**dict(s.dimensions)) for s in specs]
    body = pulumi.Output.all(*dims).apply(lambda resolved: dashboard_body(specs, resolved, region, overrides))
    return aws.cloudwatch.Dashboard(
        f"{name}-dashboard", dashboard_name=dashboard_name, dashboard_body=body,
        opts=pulumi.ResourceOptions(parent=parent),
    )
