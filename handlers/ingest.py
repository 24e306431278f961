"""Lambda entry point: GET /health and POST /v1/telemetry behind the HTTP API.

botocore's own retries are off and each call is capped by short timeouts, so
that the retry budget (PUT_BUDGET_SECONDS, further capped by the invocation's
remaining time) in telemetry.kinesis_put alone decides how long a request may
wait for the stream, and the device always gets our 503 + Retry-After rather
than a timed-out invocation.
https://docs.aws.amazon.com/boto3/latest/guide/retries.html (total_max_attempts counts the first call)
"""
from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config

from telemetry.backoff import Backoff, RetryPolicy, budget_within
from telemetry.config import IngestConfig
from telemetry.ingest_app import handle
from telemetry.kinesis_put import CALL_CONNECT_TIMEOUT_S, CALL_MAX_S, CALL_READ_TIMEOUT_S
from telemetry.observability import (
    QUOTA_REFUSALS,
    READINGS_ACCEPTED,
    READINGS_REJECTED,
    REQUESTS_REJECTED,
    count,
    make_logger,
    make_metrics,
)

CONFIG = IngestConfig.from_env()
# Time kept back from the budget: one PutRecords call that starts at the last moment, then the answer.
_RESERVE_S = CALL_MAX_S + 1.0
logger = make_logger("ingest")
metrics = make_metrics("ingest")
kinesis = boto3.client(
    "kinesis",
    config=Config(
        connect_timeout=CALL_CONNECT_TIMEOUT_S,
        read_timeout=CALL_READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    ),
)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    policy = RetryPolicy(budget_s=budget_within(CONFIG.put_budget_s, context.get_remaining_time_in_millis(), _RESERVE_S))
    result = handle(
        event,
        kinesis=kinesis,
        config=CONFIG,
        now_ms=int(time.time() * 1000),
        new_backoff=lambda: Backoff(policy),
        log=logger,
    )
    if result.accepted:
        count(metrics, READINGS_ACCEPTED, result.accepted)
    if result.over_quota:
        count(metrics, QUOTA_REFUSALS, 1)
    if result.rejected_request:
        count(metrics, REQUESTS_REJECTED, 1)
        count(metrics, READINGS_REJECTED, result.rejected_readings)
    return result.response
