"""Lambda entry point: Kinesis event source mapping -> DynamoDB.

Returns {"batchItemFailures": [...]} for records that cannot be stored and
raises when DynamoDB itself is failing (see telemetry.process for why).
"""
from __future__ import annotations

from typing import Any

import boto3

from telemetry.backoff import Backoff, RetryPolicy
from telemetry.config import ProcessorConfig
from telemetry.observability import READINGS_STORED, RECORDS_FAILED, count, make_logger, make_metrics
from telemetry.process import process_batch

CONFIG = ProcessorConfig.from_env()
logger = make_logger("processor")
metrics = make_metrics("processor")
dynamodb = boto3.client("dynamodb")

# Leave this much of the function timeout for the conditional updates and the response.
_RESERVE_MS = 5_000
_MAX_BUDGET_S = 20.0


def _policy(context: Any) -> RetryPolicy:
    remaining_ms = getattr(context, "get_remaining_time_in_millis", lambda: 30_000)()
    return RetryPolicy(budget_s=max(0.5, min(_MAX_BUDGET_S, (remaining_ms - _RESERVE_MS) / 1000)))


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    policy = _policy(context)
    outcome = process_batch(event, dynamodb=dynamodb, config=CONFIG, new_backoff=lambda: Backoff(policy), log=logger)
    count(metrics, READINGS_STORED, outcome.stored)
    count(metrics, RECORDS_FAILED, len(outcome.failures))
    return outcome.response()
