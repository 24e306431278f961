"""Lambda entry point: GET /health and POST /v1/telemetry behind the HTTP API.

botocore's own retries are cut to one extra attempt so that the retry budget
(PUT_BUDGET_SECONDS) in telemetry.kinesis_put is what decides how long a
request may wait for the stream.
"""
from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config

from telemetry.backoff import Backoff, RetryPolicy
from telemetry.config import IngestConfig
from telemetry.ingest_app import handle
from telemetry.observability import (
    READINGS_ACCEPTED,
    READINGS_REJECTED,
    REQUESTS_REJECTED,
    count,
    make_logger,
    make_metrics,
)

CONFIG = IngestConfig.from_env()
POLICY = RetryPolicy(budget_s=CONFIG.put_budget_s)
logger = make_logger("ingest")
metrics = make_metrics("ingest")
kinesis = boto3.client(
    "kinesis",
    config=Config(connect_timeout=2, read_timeout=max(2, int(CONFIG.put_budget_s) + 1), retries={"mode": "standard", "max_attempts": 2}),
)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = handle(
        event,
        kinesis=kinesis,
        config=CONFIG,
        now_ms=int(time.time() * 1000),
        new_backoff=lambda: Backoff(POLICY),
        log=logger,
    )
    if result.accepted:
        count(metrics, READINGS_ACCEPTED, result.accepted)
    if result.rejected_request:
        count(metrics, REQUESTS_REJECTED, 1)
        count(metrics, READINGS_REJECTED, result.rejected_readings)
    return result.response
