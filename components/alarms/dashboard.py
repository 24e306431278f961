"""A CloudWatch dashboard showing the metrics the alarms watch, one graph per alarm."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from settings import AlarmOverride

from ..function import METRICS_NAMESPACE
from .spec import AlarmSpec, tuning

WIDTH, HEIGHT, COLUMNS = 8, 6, 3

#: Graphs of metrics that have no alarm (docs/alarms.md says why): (title, namespace, metric,
#: dimensions, statistic, period). EMF metrics from Powertools carry the dimension service=<role>;
#: the metric names are those of handlers/telemetry/observability.py.
EXTRA_GRAPHS: tuple[tuple[str, str, str, dict[str, str], str, int], ...] = (
    ("quota-refusals (429 quota_exceeded)", METRICS_NAMESPACE, "QuotaRefusals", {"service": "ingest"}, "Sum", 60),
)


def dashboard_body(specs: Sequence[AlarmSpec], resolved_dims: Sequence[dict[str, str]], region: str,
                   overrides: Mapping[str, AlarmOverride] | None = None) -> str:
    """Dashboard JSON: the same namespace/metric/dimensions/statistic and period as each alarm,
    overrides included, so a graph shows what its alarm evaluates."""
    graphs: list[tuple[str, str, str, dict[str, str], str | None, int]] = []
    for spec, dims in zip(specs, resolved_dims, strict=True):
        t = tuning(spec, (overrides or {}).get(spec.alarm_id))
        graphs.append((spec.alarm_id, spec.namespace, spec.metric_name, dims, t.extended_statistic or t.statistic,
                       t.period))
    graphs.extend(EXTRA_GRAPHS)
    widgets = []
    for i, (title, namespace, metric_name, dims, stat, period) in enumerate(graphs):
        metric: list[object] = [namespace, metric_name]
        for k, v in dims.items():
            metric += [k, v]
        metric.append({"stat": stat})
        widgets.append({
            "type": "metric",
            "x": (i % COLUMNS) * WIDTH,
            "y": (i // COLUMNS) * HEIGHT,
            "width": WIDTH,
            "height": HEIGHT,
            "properties": {
                "title": title,
                "region": region,
                "metrics": [metric],
                "period": period,
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
