"""HTTP API alarms.

HTTP APIs (v2) publish ``4xx``, ``5xx`` and ``Latency`` under AWS/ApiGateway with
dimensions ApiId (+ Stage) - not the REST API names 4XXError/5XXError/ApiName:
https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-metrics.html
"""
from __future__ import annotations

import pulumi

from .spec import AlarmSpec

NAMESPACE = "AWS/ApiGateway"
STAGE = "$default"


def api_alarms(api_id: pulumi.Input[str]) -> list[AlarmSpec]:
    dims = {"ApiId": api_id, "Stage": STAGE}
    return [
        AlarmSpec("api-5xx", NAMESPACE, "5xx", dims, "HTTP API server errors."),
        AlarmSpec("api-4xx", NAMESPACE, "4xx", dims, "HTTP API client errors (incl. 429 throttles, denied devices)."),
        AlarmSpec("api-latency-p99", NAMESPACE, "Latency", dims, "HTTP API p99 end-to-end latency (ms)."),
    ]
