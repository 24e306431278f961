"""Turn raw config text into a validated ``Settings`` - pure Python, no Pulumi.

Every check appends to one list of problems instead of raising, so a stack
file with five mistakes is fixed in one round trip, not five. Each message
names the config key and what would have been accepted.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .alarm_catalog import (ALARM_IDS, LOW_SAMPLE_COUNT_PERCENTILES, OVERRIDE_FIELDS, PERCENTILE_ALARM_IDS,
                            TREAT_MISSING_DATA)
from .defaults import DEFAULTS, PROJECT, powertools_layer_arn
from .errors import SettingsError
from .model import (
    AlarmOverride,
    AlarmSettings,
    ApiSettings,
    FunctionSettings,
    FunctionsSettings,
    IngestLimits,
    ProcessorMappingSettings,
    Settings,
    StorageSettings,
    StreamSettings,
)

# CloudWatch Logs accepts only these retention values.
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
# API Gateway HTTP APIs stop waiting for an integration after 30 s, whatever the
# function's own timeout: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
HTTP_INTEGRATION_TIMEOUT_S = 30
# Lambda's hard maximum timeout: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_MAX_TIMEOUT_S = 900
# Synchronous invocation payload limit, 6 MB (Lambda counts 6,291,456 bytes) for the whole event:
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
# What the payload format 2.0 event adds around the body: HTTP APIs cap the request line plus headers at
# 10,240 bytes (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html); the event
# carries them up to three times over (headers, rawPath/rawQueryString repeated in requestContext.http and
# queryStringParameters, JSON escaping), plus requestContext and the authorizer's context (about 2 KiB).
# 3 x 10,240 + 2 KiB = 32 KiB, doubled as a margin for what the event gains in future versions.
EVENT_ENVELOPE_BYTES = 64 * 1024
# API Gateway may hand the body to Lambda base64-encoded (isBase64Encoded), 4 bytes per 3: the largest body
# whose event still fits is 3/4 of what the envelope leaves, 4,669,440 bytes (about 4.45 MiB). A larger
# maxBodyBytes would let a body that ingest should answer 413 fail in Lambda before the handler runs
# (the device would see API Gateway's 500 instead).
MAX_BODY_BYTES = (LAMBDA_SYNC_PAYLOAD_BYTES - EVENT_ENVELOPE_BYTES) // 4 * 3
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# handlers/telemetry/telemetry.schema.json: readings.maxItems.
SCHEMA_MAX_READINGS = 1000
# How long a stored reading must at least outlive the latest moment it can be stored.
RETENTION_MARGIN_S = 86_400
# What ingest keeps back from its PutRecords budget: one last call (1 s connect +
# 2 s read timeout, handlers/telemetry/kinesis_put.py) and 1 s to answer.
PUT_RESERVE_S = 4

_INT = re.compile(r"^[+-]?\d+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


class _Reader:
    """Reads keys from raw text (falling back to DEFAULTS) and collects problems."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def text(self, key: str) -> str:
        value = self.raw.get(key)
        return DEFAULTS[key] if value is None else str(value)

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{PROJECT}:{key} {message}")

    def integer(self, key: str, lo: int | None = None, hi: int | None = None,
                also: tuple[int, ...] = ()) -> int:
        text = self.text(key).strip()
        allowed = _range_text(lo, hi, also)
        if not _INT.match(text):
            self.fail(key, f"must be an integer ({allowed}), got {text!r}")
            return int(DEFAULTS[key])
        value = int(text)
        if value in also:
            return value
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(key, f"must be {allowed}, got {value}")
        return value

    def number(self, key: str, lo_exclusive: float, hi: float | None = None) -> float:
        text = self.text(key).strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        allowed = f"a number > {lo_exclusive:g}" + (f" and <= {hi:g}" if hi is not None else "")
        if not math.isfinite(value) or value <= lo_exclusive or (hi is not None and value > hi):
            self.fail(key, f"must be {allowed}, got {text!r}")
            return float(DEFAULTS[key])
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key).strip()
        if value not in allowed:
            self.fail(key, f"must be one of {'|'.join(allowed)}, got {value!r}")
            return DEFAULTS[key]
        return value

    def boolean(self, key: str) -> bool:
        value = self.text(key).strip().lower()
        if value not in ("true", "false"):
            self.fail(key, f"must be true or false, got {self.text(key)!r}")
            return DEFAULTS[key] == "true"
        return value == "true"

    def json_value(self, key: str) -> Any:
        text = self.text(key)
        try:
            return json.loads(text) if text.strip() else json.loads(DEFAULTS[key])
        except json.JSONDecodeError as exc:
            self.fail(key, f"must be valid JSON ({exc.msg} at position {exc.pos})")
            return json.loads(DEFAULTS[key])


def _range_text(lo: int | None, hi: int | None, also: tuple[int, ...]) -> str:
    if lo is not None and hi is not None:
        core = f"from {lo} to {hi}"
    elif lo is not None:
        core = f">= {lo}"
    elif hi is not None:
        core = f"<= {hi}"
    else:
        core = "any integer"
    return " or ".join([*(str(a) for a in also), core])


def _unknown_keys(raw: Mapping[str, str], r: _Reader) -> None:
    for key in raw:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            r.fail(key, f"is not a known key{hint}; known keys: {', '.join(sorted(DEFAULTS))}")


def _stream(r: _Reader) -> StreamSettings:
    mode = r.choice("streamMode", ("PROVISIONED", "ON_DEMAND"))
    shards = r.integer("shardCount", 1, None)
    # Kinesis retention: 24 hours to 365 days.
    # https://docs.aws.amazon.com/kinesis/latest/APIReference/API_IncreaseStreamRetentionPeriod.html
    retention = r.integer("streamRetentionHours", 24, 8760)
    key = r.text("streamKmsKeyArn").strip()
    if key and not _KMS_KEY_ARN.match(key):
        r.fail("streamKmsKeyArn", "must be empty (AWS managed key alias/aws/kinesis) or a KMS key ARN "
               f"arn:aws:kms:<region>:<account>:key/<id>, got {key!r}")
    return StreamSettings(mode=mode, shard_count=shards, retention_hours=retention,  # type: ignore[arg-type]  # mode is one of choice()'s literals
                          kms_key_arn=key or None)


def _storage(r: _Reader) -> StorageSettings:
    return StorageSettings(
        readings_ttl_days=r.integer("readingsTtlDays", 1, 3650),
        point_in_time_recovery=r.boolean("pointInTimeRecovery"),
        protect=r.boolean("protect"),
    )


def _function(r: _Reader, role: str, max_timeout: int) -> FunctionSettings:
    # Memory 128..10240 MB: https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html
    return FunctionSettings(
        memory_mb=r.integer(f"{role}MemoryMb", 128, 10240),
        timeout_s=r.integer(f"{role}TimeoutSeconds", 1, max_timeout),
        reserved_concurrency=r.integer(f"{role}ReservedConcurrency", 1, None, also=(-1,)),
    )


def _functions(r: _Reader, region: str) -> FunctionsSettings:
    layer = r.text("powertoolsLayerArn").strip()
    if layer and not _LAYER_ARN.match(layer):
        r.fail("powertoolsLayerArn", "must be empty (the AWS-managed Powertools V3 python3.12 arm64 layer) "
               f"or a layer version ARN arn:aws:lambda:<region>:<account>:layer:<name>:<version>, got {layer!r}")
    return FunctionsSettings(
        authorizer=_function(r, "authorizer", HTTP_INTEGRATION_TIMEOUT_S),
        ingest=_function(r, "ingest", HTTP_INTEGRATION_TIMEOUT_S),
        processor=_function(r, "processor", LAMBDA_MAX_TIMEOUT_S),
        powertools_layer_arn=layer or powertools_layer_arn(region),
        log_level=r.choice("logLevel", LOG_LEVELS),
    )


def _api(r: _Reader) -> ApiSettings:
    burst = r.integer("apiThrottleBurst", 1, None)
    rate = r.number("apiThrottleRate", 0.0)
    if burst < rate:
        r.fail("apiThrottleBurst", f"must be >= iot-ingest:apiThrottleRate ({rate:g}), got {burst}: "
               "a bucket smaller than the refill rate throttles steady traffic")
    origins_raw = r.json_value("corsAllowOrigins")
    origins: tuple[str, ...] = ()
    if not isinstance(origins_raw, list) or not all(isinstance(o, str) and o for o in origins_raw):
        r.fail("corsAllowOrigins", f"must be a list of origin strings such as [\"https://app.example.com\"], got {origins_raw!r}")
    else:
        origins = tuple(origins_raw)
    return ApiSettings(
        throttle_burst=burst,
        throttle_rate=rate,
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
        authorizer_cache_ttl_s=r.integer("authorizerCacheTtlSeconds", 0, 3600),
        cors_allow_origins=origins,
    )


def _processor(r: _Reader) -> ProcessorMappingSettings:
    # Ranges: https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
    return ProcessorMappingSettings(
        batch_size=r.integer("processorBatchSize", 1, 10000),
        batching_window_s=r.integer("processorBatchingWindowSeconds", 0, 300),
        parallelization_factor=r.integer("processorParallelization", 1, 10),
        starting_position=r.choice("processorStartingPosition", ("TRIM_HORIZON", "LATEST")),  # type: ignore[arg-type]  # one of these literals
        # Both finite on purpose (AWS allows -1, "until the record expires"): a poison
        # record must reach the on-failure destination after bounded retries instead
        # of holding its shard for the whole stream retention.
        max_retry_attempts=r.integer("processorMaxRetries", 0, 10000),
        max_record_age_s=r.integer("processorMaxRecordAgeSeconds", 60, 604800),
    )


def _ingest(r: _Reader, ingest_timeout_s: int) -> IngestLimits:
    budget = r.integer("putBudgetSeconds", 1, None)
    if budget + PUT_RESERVE_S > ingest_timeout_s:
        r.fail("putBudgetSeconds", f"must be at most iot-ingest:ingestTimeoutSeconds - {PUT_RESERVE_S} "
               f"({ingest_timeout_s - PUT_RESERVE_S}), got {budget}: after the budget one more PutRecords call "
               f"may take up to {PUT_RESERVE_S - 1} s and the function needs time left to answer")
    return IngestLimits(
        # The published schema's readings.maxItems is the ceiling; a deployment may only lower it.
        max_readings_per_request=r.integer("maxReadingsPerRequest", 1, SCHEMA_MAX_READINGS),
        max_body_bytes=r.integer("maxBodyBytes", 1, MAX_BODY_BYTES),
        max_reading_age_s=r.integer("maxReadingAgeSeconds", 1, None),
        max_future_skew_s=r.integer("maxFutureSkewSeconds", 0, None),
        put_budget_s=budget,
        device_daily_reading_quota=_quota(r),
    )


def _quota(r: _Reader) -> int | None:
    """A whole number >= 1, or the word "unlimited": 0 would refuse the whole fleet, and
    "no limit" must be said, never reached by an empty or zero value."""
    key = "deviceDailyReadingQuota"
    text = r.text(key).strip()
    if text == "unlimited":
        return None
    if not _INT.match(text) or int(text) < 1:
        r.fail(key, f"must be a whole number >= 1 (readings per device per UTC day) or \"unlimited\", got {text!r}")
        return int(DEFAULTS[key])
    return int(text)


def _override(r: _Reader, alarm_id: str, fields: Any) -> AlarmOverride | None:
    key = "alarmOverrides"
    if not isinstance(fields, dict):
        r.fail(key, f"entry {alarm_id!r} must be an object of fields ({', '.join(OVERRIDE_FIELDS)}), got {fields!r}")
        return None
    ok = True
    for name in fields:
        if name not in OVERRIDE_FIELDS:
            r.fail(key, f"entry {alarm_id!r} has unknown field {name!r}; allowed fields: {', '.join(OVERRIDE_FIELDS)}")
            ok = False

    def num(name: str) -> float | None:
        v = fields.get(name)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            r.fail(key, f"entry {alarm_id!r} field {name!r} must be {OVERRIDE_FIELDS[name]}, got {v!r}")
            return None
        return float(v)

    def whole(name: str, lo: int) -> int | None:
        v = fields.get(name)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            r.fail(key, f"entry {alarm_id!r} field {name!r} must be {OVERRIDE_FIELDS[name]}, got {v!r}")
            return None
        return v

    threshold = num("threshold")
    period = whole("period", 1)
    # CloudWatch: 10, 20, 30 (high resolution) or a multiple of 60.
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
    if period is not None and not (period in (10, 20, 30) or period % 60 == 0):
        r.fail(key, f"entry {alarm_id!r} field 'period' must be {OVERRIDE_FIELDS['period']}, got {period}")
        period = None
    evaluation = whole("evaluationPeriods", 1)
    datapoints = whole("datapointsToAlarm", 1)
    if datapoints is not None and evaluation is None:
        # Checked here, before any resource exists, rather than silently clamped to the default later.
        r.fail(key, f"entry {alarm_id!r} field 'datapointsToAlarm' needs 'evaluationPeriods' in the same entry "
               "(datapointsToAlarm must be <= evaluationPeriods)")
    elif datapoints is not None and evaluation is not None and datapoints > evaluation:
        r.fail(key, f"entry {alarm_id!r} field 'datapointsToAlarm' ({datapoints}) must be <= evaluationPeriods ({evaluation})")
    missing = fields.get("treatMissingData")
    if missing is not None and missing not in TREAT_MISSING_DATA:
        r.fail(key, f"entry {alarm_id!r} field 'treatMissingData' must be {OVERRIDE_FIELDS['treatMissingData']}, got {missing!r}")
        missing = None
    enabled = fields.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        r.fail(key, f"entry {alarm_id!r} field 'enabled' must be {OVERRIDE_FIELDS['enabled']}, got {enabled!r}")
        enabled = None
    low_sample = fields.get("evaluateLowSampleCountPercentiles")
    if low_sample is not None and (low_sample not in LOW_SAMPLE_COUNT_PERCENTILES
                                   or alarm_id not in PERCENTILE_ALARM_IDS):
        field_name = "evaluateLowSampleCountPercentiles"
        r.fail(key, f"entry {alarm_id!r} field {field_name!r} must be {OVERRIDE_FIELDS[field_name]}, got {low_sample!r}")
        low_sample = None
    if not ok:
        return None
    return AlarmOverride(threshold=threshold, period=period, evaluation_periods=evaluation,
                         datapoints_to_alarm=datapoints, treat_missing_data=missing, enabled=enabled,
                         evaluate_low_sample_count_percentiles=low_sample)


def _alarms(r: _Reader) -> AlarmSettings:
    email = r.text("alarmEmail").strip()
    if email and not _EMAIL.match(email):
        r.fail("alarmEmail", f"must be empty (no subscription) or an email address, got {email!r}")
    raw = r.json_value("alarmOverrides")
    overrides: dict[str, AlarmOverride] = {}
    if not isinstance(raw, dict):
        r.fail("alarmOverrides", f'must be a JSON object such as {{"api-5xx": {{"threshold": 5}}}}, got {raw!r}')
        raw = {}
    for alarm_id, fields in raw.items():
        if alarm_id not in ALARM_IDS:
            r.fail("alarmOverrides", f"names unknown alarm {alarm_id!r}; allowed alarm ids: {', '.join(ALARM_IDS)}")
            continue
        parsed = _override(r, alarm_id, fields)
        if parsed is not None:
            overrides[alarm_id] = parsed
    return AlarmSettings(email=email or None, overrides=overrides)


def parse_settings(raw: Mapping[str, str], region: str) -> Settings:
    """Validate ``raw`` (config key -> text, no project prefix) for ``region``.

    Raises ``SettingsError`` listing every problem found; returns a frozen
    ``Settings`` only when there are none.
    """
    r = _Reader(raw)
    _unknown_keys(raw, r)
    if not region or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
        r.problems.append(f"aws:region must be set to an AWS Region such as us-east-1, got {region!r}")
    functions = _functions(r, region)
    settings = Settings(
        region=region,
        stream=_stream(r),
        storage=_storage(r),
        functions=functions,
        api=_api(r),
        processor=_processor(r),
        ingest=_ingest(r, functions.ingest.timeout_s),
        alarms=_alarms(r),
        log_retention_days=_log_retention(r),
    )
    _retention_covers_accepted_window(r, settings)
    if r.problems:
        raise SettingsError(r.problems)
    return settings


def _retention_covers_accepted_window(r: _Reader, s: Settings) -> None:
    """The readings TTL counts from a reading's ts, and ingest accepts a ts up to
    maxReadingAgeSeconds old; the processor may store it as late as the stream keeps
    the record (streamRetentionHours). A TTL not covering both plus a day would store
    such a reading with an expiry in the past or seconds after it is written, so
    DynamoDB deletes an accepted reading almost at once (dev did: 7 days and 604800 s).
    """
    keys = ("readingsTtlDays", "maxReadingAgeSeconds", "streamRetentionHours")
    if any(p.startswith(f"{PROJECT}:{k} ") for p in r.problems for k in keys):
        return  # one of them is already wrong on its own; report that first
    age_s, stream_s = s.ingest.max_reading_age_s, s.stream.retention_hours * 3600
    need_s = age_s + stream_s + RETENTION_MARGIN_S
    if s.storage.readings_ttl_days * 86_400 < need_s:
        r.fail("readingsTtlDays", f"must be at least {-(-need_s // 86_400)} with iot-ingest:maxReadingAgeSeconds "
               f"{age_s} and iot-ingest:streamRetentionHours {s.stream.retention_hours}, got "
               f"{s.storage.readings_ttl_days}: readingsTtlDays x 86400 must cover maxReadingAgeSeconds + "
               f"streamRetentionHours x 3600 + {RETENTION_MARGIN_S} s, or a reading accepted at the oldest allowed ts "
               "expires (TTL counts from ts) about when it is stored; raise readingsTtlDays or lower maxReadingAgeSeconds")


def _log_retention(r: _Reader) -> int:
    text = r.text("logRetentionDays").strip()
    allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
    if not _INT.match(text) or int(text) not in LOG_RETENTION_DAYS:
        r.fail("logRetentionDays", f"must be one of CloudWatch Logs' retention values ({allowed}), got {text!r}")
        return int(DEFAULTS["logRetentionDays"])
    return int(text)
