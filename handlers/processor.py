"""Lambda entry point: Kinesis event source mapping -> DynamoDB.

Returns {"batchItemFailures": [...]} for records that cannot be stored and
raises when DynamoDB itself is failing (see telemetry.process for why).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from telemetry.backoff import Backoff, RetryPolicy, budget_within
from telemetry.config import ProcessorConfig
from telemetry.observability import READINGS_STORED, RECORDS_FAILED, count, make_logger, make_metrics
from telemetry.process import process_batch

CONFIG = ProcessorConfig.from_env()
logger = make_logger("processor")
metrics = make_metrics("processor")
# Bounded calls, and botocore's own retries off: telemetry.storage retries
# throttling, 5xx and lost connections itself, under the invocation's deadline.
# Standard mode's client-wide retry quota drains under sustained throttling and
# then stops retrying 5xx answers at all (legacy mode's 60 s read timeout and
# fixed attempts are no better). https://docs.aws.amazon.com/boto3/latest/guide/retries.html
CALL_CONNECT_TIMEOUT_S = 1
CALL_READ_TIMEOUT_S = 3
dynamodb = boto3.client(
    "dynamodb",
    config=Config(
        connect_timeout=CALL_CONNECT_TIMEOUT_S,
        read_timeout=CALL_READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    ),
)

# The retry deadline ends this long before the function's timeout: a call started
# just before the deadline can still take one call's worth of time, and the
# response must go out after it.
_RESERVE_S = CALL_CONNECT_TIMEOUT_S + CALL_READ_TIMEOUT_S + 1.0
_MAX_BUDGET_S = 20.0


def _new_backoff_factory(context: Any) -> Callable[[], Backoff]:
    """Backoffs that all end at one deadline: retries of later batches (or of items
    isolated one by one) share what is left of the invocation, never a fresh budget each."""
    budget = max(0.5, budget_within(_MAX_BUDGET_S, context.get_remaining_time_in_millis(), _RESERVE_S))
    deadline = time.monotonic() + budget
    return lambda: Backoff(RetryPolicy(budget_s=max(0.0, deadline - time.monotonic())))


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcome = process_batch(event, dynamodb=dynamodb, config=CONFIG, new_backoff=_new_backoff_factory(context), log=logger)
    count(metrics, READINGS_STORED, outcome.stored)
    count(metrics, RECORDS_FAILED, len(outcome.failures))
    return outcome.response()
