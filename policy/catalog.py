"""The CloudWatch metrics AWS publishes that this project alarms on, read from its own alarm catalogue.

components/alarms/ holds one factory per AWS service, each documented against the AWS page
listing that service's metrics and dimensions. Calling every factory with placeholder
dimension values yields the (namespace, metric, dimension names) combinations AWS publishes;
dimensions whose value is fixed by AWS rather than by the stack (an HTTP API's ``Stage`` of
``$default``, DynamoDB's ``Operation``) keep their value. Nothing is copied here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from components.alarms import apigateway, consumer, dynamodb, kinesis, lambda_, sqs
from components.alarms.spec import AlarmSpec

PLACEHOLDER = "<stack value>"  # stands for a dimension whose value names one of the stack's resources


class PublishedMetric(NamedTuple):
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted (name, fixed value or PLACEHOLDER)


def _catalogue_specs() -> list[AlarmSpec]:
    return [
        *apigateway.api_alarms(PLACEHOLDER),
        *lambda_.function_alarms("any", PLACEHOLDER, 1),
        *lambda_.stream_consumer_alarms(PLACEHOLDER),
        *kinesis.stream_alarms(PLACEHOLDER),
        *dynamodb.readings_alarms(PLACEHOLDER),
        *dynamodb.devices_alarms(PLACEHOLDER),
        *sqs.dlq_alarms(PLACEHOLDER),
    ]


def published_metrics() -> frozenset[PublishedMetric]:
    single = [(s.namespace, s.metric_name, s.dimensions) for s in _catalogue_specs()]
    math = [(ns, metric, dims) for _id, ns, metric, dims in consumer.watched_metrics(PLACEHOLDER, PLACEHOLDER)]
    return frozenset(
        PublishedMetric(namespace, metric, tuple(sorted((k, str(v)) for k, v in dims.items())))
        for namespace, metric, dims in single + math
    )


def matches(namespace: Any, metric_name: Any, dimensions: Mapping[str, Any] | None,
            catalogue: frozenset[PublishedMetric]) -> bool:
    """Whether an alarm's metric is one the catalogue knows AWS publishes (same dimension names;
    AWS-fixed dimension values equal)."""
    dims = dict(dimensions or {})
    for m in catalogue:
        if (m.namespace, m.metric_name) != (namespace, metric_name) or {k for k, _ in m.dimensions} != set(dims):
            continue
        if all(v == PLACEHOLDER or dims[k] == v for k, v in m.dimensions):
            return True
    return False


def describe(catalogue: frozenset[PublishedMetric]) -> str:
    """The catalogue as text for violation messages."""
    return "; ".join(sorted(
        f"{m.namespace} {m.metric_name} [{', '.join(k if v == PLACEHOLDER else f'{k}={v}' for k, v in m.dimensions)}]"
        for m in catalogue))
