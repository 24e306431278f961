"""Where the fleet sends and checks: the API URL plus the AWS resources behind it.

Values come from the command line first, then from a stack file (the local
cloud's `.localcloud/stack.json`, or any JSON of the stack outputs in
docs/architecture.md), so the same fleet runs against the local cloud and a real
deployment. AWS clients use the default credential chain; against an emulator
endpoint with no credentials configured, dummy ones are supplied (moto accepts any).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, FleetConfig

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class Targets:
    api_url: str
    endpoint_url: str | None
    region: str
    devices_table: str | None
    readings_table: str | None
    alarm_topic_arn: str | None


def load_stack_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--stack-file {path}: cannot read stack outputs ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--stack-file {path}: expected a JSON object of stack outputs")
    return data


def resolve(config: FleetConfig) -> Targets:
    outputs = load_stack_file(config.stack_file) if config.stack_file else {}
    region = (
        config.region
        or outputs.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    return Targets(
        api_url=config.api_url.rstrip("/"),
        endpoint_url=config.endpoint_url or outputs.get("endpointUrl"),
        region=str(region),
        devices_table=config.devices_table or outputs.get("devicesTableName"),
        readings_table=config.readings_table or outputs.get("readingsTableName"),
        alarm_topic_arn=outputs.get("alarmTopicArn"),
    )


def client(service: str, targets: Targets, *, max_attempts: int = 5) -> Any:
    """A boto3 client for `service` at the targets' endpoint (or real AWS).

    `max_attempts=1` is for optional calls an emulator may not implement (it answers 500,
    which botocore would otherwise retry with backoff for about a second).
    """
    import boto3  # deferred: `fleet run --no-verify --keys ...` needs no AWS SDK at all
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        "region_name": targets.region,
        "config": Config(retries={"max_attempts": max_attempts, "mode": "standard"}, max_pool_connections=8),
    }
    if targets.endpoint_url:
        kwargs["endpoint_url"] = targets.endpoint_url
        session = boto3.session.Session()
        if session.get_credentials() is None:
            kwargs["aws_access_key_id"] = "testing"
            kwargs["aws_secret_access_key"] = "testing"
    return boto3.client(service, **kwargs)
