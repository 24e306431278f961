"""Lambda entry point: HTTP API REQUEST authorizer (payload 2.0, simple responses).

Clients and configuration are created once per container; the decision
itself lives in telemetry.auth so tests can call it with any client.
"""
from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from telemetry.auth import authorize
from telemetry.config import AuthorizerConfig
from telemetry.observability import AUTH_DENIED, count, make_logger, make_metrics

CONFIG = AuthorizerConfig.from_env()
logger = make_logger("authorizer")
metrics = make_metrics("authorizer")
# Short timeouts: a slow lookup must end in a deny well before API Gateway gives up.
dynamodb = boto3.client("dynamodb", config=Config(connect_timeout=2, read_timeout=2, retries={"mode": "standard", "max_attempts": 2}))


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = authorize(event, dynamodb, CONFIG.devices_table, logger, default_quota=CONFIG.daily_reading_quota)
    count(metrics, AUTH_DENIED, 0 if result.allowed else 1)
    return result.response()
