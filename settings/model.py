"""The typed, frozen shape of a stack's configuration.

Split by concern so each component receives only the part it needs, and
frozen so nothing downstream can "fix up" a value after validation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StreamMode = Literal["PROVISIONED", "ON_DEMAND"]
StartingPosition = Literal["TRIM_HORIZON", "LATEST"]


@dataclass(frozen=True)
class StreamSettings:
    mode: StreamMode
    shard_count: int  # used only when mode == "PROVISIONED"
    retention_hours: int
    kms_key_arn: str | None  # None: AWS managed key alias/aws/kinesis


@dataclass(frozen=True)
class StorageSettings:
    readings_ttl_days: int
    point_in_time_recovery: bool
    protect: bool  # Pulumi protect + DynamoDB deletion protection (and on the stream)


@dataclass(frozen=True)
class FunctionSettings:
    memory_mb: int
    timeout_s: int
    reserved_concurrency: int  # -1: unreserved


@dataclass(frozen=True)
class FunctionsSettings:
    authorizer: FunctionSettings
    ingest: FunctionSettings
    processor: FunctionSettings
    powertools_layer_arn: str
    log_level: str

    def by_role(self) -> dict[str, FunctionSettings]:
        return {"authorizer": self.authorizer, "ingest": self.ingest, "processor": self.processor}


@dataclass(frozen=True)
class ApiSettings:
    throttle_burst: int
    throttle_rate: float
    authorizer_cache_ttl_s: int
    cors_allow_origins: tuple[str, ...]  # empty: no CORS configuration at all


@dataclass(frozen=True)
class ProcessorMappingSettings:
    batch_size: int
    batching_window_s: int
    parallelization_factor: int
    starting_position: StartingPosition
    max_retry_attempts: int
    max_record_age_s: int


@dataclass(frozen=True)
class IngestLimits:
    max_readings_per_request: int
    max_body_bytes: int
    max_reading_age_s: int
    max_future_skew_s: int
    put_budget_s: int
    device_daily_reading_quota: int | None = None  # None: "unlimited"


@dataclass(frozen=True)
class AlarmOverride:
    threshold: float | None = None
    period: int | None = None
    evaluation_periods: int | None = None
    datapoints_to_alarm: int | None = None
    treat_missing_data: str | None = None
    enabled: bool | None = None
    evaluate_low_sample_count_percentiles: str | None = None


@dataclass(frozen=True)
class AlarmSettings:
    email: str | None
    overrides: dict[str, AlarmOverride] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    region: str
    stream: StreamSettings
    storage: StorageSettings
    functions: FunctionsSettings
    api: ApiSettings
    processor: ProcessorMappingSettings
    ingest: IngestLimits
    alarms: AlarmSettings
    log_retention_days: int
