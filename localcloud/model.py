"""What the provisioner hands the data plane.

The provisioner runs the unchanged Pulumi program under the SDK's mock runtime,
creates every declared resource in the emulator, and describes the parts that
need a data plane (functions, HTTP APIs, event source mappings) here. The data
plane serves exactly what was provisioned and nothing hard-coded, so these
classes are the only coupling between the two halves of the local cloud.
Alarms are not described here: the monitor reads them back from the
emulator's CloudWatch, where the provisioner put them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # physical function name, as created in the emulator
    arn: str
    handler: str  # "module.function", e.g. "ingest.handler"
    code_dir: Path  # directory the declared FileArchive points at
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int
    reserved_concurrency: int | None  # None or -1 in the program: unreserved


@dataclass(frozen=True)
class AuthorizerSpec:
    authorizer_id: str
    function: str  # physical name of the authorizer function
    identity_sources: tuple[str, ...]  # e.g. "$request.header.x-device-id"
    cache_ttl_s: int
    payload_format_version: str  # "1.0" or "2.0"
    simple_responses: bool


@dataclass(frozen=True)
class RouteSpec:
    route_key: str  # "POST /v1/telemetry", "GET /health", or "$default"
    function: str  # physical name of the integration's function
    payload_format_version: str
    integration_timeout_ms: int
    authorizer: AuthorizerSpec | None = None


@dataclass(frozen=True)
class ApiSpec:
    api_id: str
    name: str
    stage: str  # "$default" for the default stage
    routes: tuple[RouteSpec, ...]
    throttle_burst: int | None  # None: not set on the stage (AWS account limits apply)
    throttle_rate: float | None
    access_log_group: str | None = None  # log group *name*
    access_log_format: str | None = None
    cors: dict[str, Any] | None = None  # the declared corsConfiguration, camelCase keys


@dataclass(frozen=True)
class MappingSpec:
    uuid: str
    stream_arn: str
    stream_name: str
    function: str  # physical function name
    batch_size: int
    batching_window_s: float
    parallelization_factor: int
    starting_position: str  # TRIM_HORIZON | LATEST | AT_TIMESTAMP
    bisect_on_error: bool
    max_retry_attempts: int  # -1: until the record expires
    max_record_age_s: int  # -1: no limit
    report_batch_item_failures: bool
    on_failure_arn: str | None = None  # SQS queue ARN in the emulator
    on_failure_queue_url: str | None = None


@dataclass(frozen=True)
class ProvisionedResource:
    type: str  # Pulumi type token, e.g. "aws:kinesis/stream:Stream"
    name: str  # Pulumi logical name
    id: str  # physical id returned to the program
    inputs: dict[str, Any]
    state: dict[str, Any]


@dataclass
class ProvisionedStack:
    project: str
    stack: str
    region: str
    endpoint_url: str  # the emulator
    outputs: dict[str, Any]
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # by physical name
    apis: list[ApiSpec] = field(default_factory=list)
    mappings: list[MappingSpec] = field(default_factory=list)
    resources: list[ProvisionedResource] = field(default_factory=list)
