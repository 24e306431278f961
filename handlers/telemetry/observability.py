"""Powertools Logger and Metrics, created once per container.

Metrics are EMF lines on stdout, which CloudWatch turns into metrics with no
PutMetricData call (no extra latency, no extra IAM permission).
https://docs.aws.amazon.com/powertools/python/latest/core/metrics/
The service name and namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE; the defaults only matter outside Lambda.
"""
from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "IotIngest")

# Metric names: docs/architecture.md ("Custom metrics"). No alarm reads them (the dashboard graphs
# QuotaRefusals); every alarm watches a metric AWS publishes (components/alarms), which still reports when
# a function cannot run at all.
READINGS_ACCEPTED = "ReadingsAccepted"
READINGS_REJECTED = "ReadingsRejected"
REQUESTS_REJECTED = "RequestsRejected"
READINGS_STORED = "ReadingsStored"
RECORDS_FAILED = "RecordsFailed"
AUTH_DENIED = "AuthDenied"
# Requests ingest answered 429 quota_exceeded (docs/alarms.md says why it has no alarm).
QUOTA_REFUSALS = "QuotaRefusals"


def make_logger(service: str) -> Logger:
    return Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", service))


def make_metrics(service: str) -> Metrics:
    metrics = Metrics(namespace=NAMESPACE, service=os.environ.get("POWERTOOLS_SERVICE_NAME", service))
    return metrics


def count(metrics: Metrics, name: str, value: int) -> None:
    """Add a Count metric; zero values are emitted too so dashboards show 0 rather than gaps."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
