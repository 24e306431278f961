"""parse_settings: every bad value is rejected by name with its allowed values, all at once."""
from __future__ import annotations

import json

import pytest
import yaml

from infra_mockrun import PROJECT_DIR, stack_config
from settings import SettingsError, load_settings, parse_settings
from settings.alarm_catalog import ALARM_IDS
from settings.defaults import DEFAULTS

REGION = "us-east-1"


def problems(raw: dict[str, str], region: str = REGION) -> tuple[str, ...]:
    with pytest.raises(SettingsError) as info:
        parse_settings(raw, region)
    return info.value.problems


def test_defaults_parse_and_build_the_powertools_layer_for_the_region() -> None:
    s = parse_settings({}, "eu-west-1")
    assert s.functions.powertools_layer_arn == (
        "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:27")
    assert s.stream.mode == "PROVISIONED" and s.stream.shard_count == 1 and s.stream.kms_key_arn is None
    assert s.api.cors_allow_origins == () and s.alarms.email is None and s.alarms.overrides == {}


@pytest.mark.parametrize(("key", "value", "fragments"), [
    ("shardCount", "0", [">= 1", "got 0"]),
    ("shardCount", "-3", [">= 1"]),
    ("shardCount", "two", ["must be an integer"]),
    ("streamMode", "BURST", ["PROVISIONED|ON_DEMAND", "'BURST'"]),
    ("streamRetentionHours", "12", ["from 24 to 8760"]),
    ("streamKmsKeyArn", "alias/mine", ["KMS key ARN"]),
    ("readingsTtlDays", "0", ["from 1 to 3650"]),
    ("pointInTimeRecovery", "yes", ["true or false"]),
    ("logRetentionDays", "10", ["1, 3, 5, 7, 14, 30", "'10'"]),
    ("logLevel", "LOUD", ["DEBUG|INFO|WARNING|ERROR|CRITICAL"]),
    ("authorizerCacheTtlSeconds", "3601", ["from 0 to 3600"]),
    ("authorizerCacheTtlSeconds", "-1", ["from 0 to 3600"]),
    ("processorBatchSize", "0", ["from 1 to 10000"]),
    ("processorBatchSize", "10001", ["from 1 to 10000"]),
    ("processorBatchingWindowSeconds", "301", ["from 0 to 300"]),
    ("processorParallelization", "0", ["from 1 to 10"]),
    ("processorParallelization", "11", ["from 1 to 10"]),
    ("processorMaxRetries", "-1", ["from 0 to 10000"]),
    ("processorMaxRetries", "10001", ["from 0 to 10000"]),
    ("processorMaxRecordAgeSeconds", "59", ["from 60 to 604800"]),
    ("processorMaxRecordAgeSeconds", "604801", ["from 60 to 604800"]),
    ("processorMaxRecordAgeSeconds", "-1", ["from 60 to 604800"]),
    ("maxReadingsPerRequest", "1001", ["from 1 to 1000"]),
    ("maxReadingsPerRequest", "0", ["from 1 to 1000"]),
    ("processorStartingPosition", "AT_TIMESTAMP", ["TRIM_HORIZON|LATEST"]),
    ("ingestTimeoutSeconds", "31", ["from 1 to 30"]),
    ("authorizerTimeoutSeconds", "60", ["from 1 to 30"]),
    ("processorTimeoutSeconds", "901", ["from 1 to 900"]),
    ("ingestMemoryMb", "64", ["from 128 to 10240"]),
    ("ingestReservedConcurrency", "0", ["-1 or >= 1"]),
    ("apiThrottleRate", "0", ["a number > 0"]),
    ("maxBodyBytes", "7000000", ["from 1 to 4669440"]),
    ("maxBodyBytes", "6291456", ["from 1 to 4669440"]),  # 6 MiB: base64 would push the event past Lambda's 6 MB
    ("maxBodyBytes", "4669441", ["from 1 to 4669440"]),
    ("maxBodyBytes", "0", ["from 1 to 4669440"]),
    ("corsAllowOrigins", '"https://x"', ["list of origin strings"]),
    ("alarmEmail", "ops-at-example", ["email address"]),
    ("powertoolsLayerArn", "arn:aws:lambda:us-east-1:017000801446:layer:x", ["layer version ARN"]),
    ("alarmOverrides", "{not json", ["valid JSON"]),
    ("alarmOverrides", "[]", ["JSON object"]),
    ("deviceDailyReadingQuota", "0", ['>= 1', '"unlimited"', "'0'"]),
    ("deviceDailyReadingQuota", "-5", ['>= 1', '"unlimited"']),
    ("deviceDailyReadingQuota", "1.5", ['>= 1', '"unlimited"']),
    ("deviceDailyReadingQuota", "", ['>= 1', '"unlimited"']),
    ("deviceDailyReadingQuota", "none", ['>= 1', '"unlimited"']),
])
def test_bad_value_is_rejected_naming_key_and_allowed_values(key: str, value: str, fragments: list[str]) -> None:
    found = problems({key: value})
    assert len(found) == 1, found
    assert found[0].startswith(f"iot-ingest:{key} ")
    for fragment in fragments:
        assert fragment in found[0], (fragment, found[0])


@pytest.mark.parametrize("value, quota", [("unlimited", None), ("1", 1), ("200000", 200000), (" 5000 ", 5000)])
def test_daily_quota_is_a_positive_integer_or_the_word_unlimited(value: str, quota: int | None) -> None:
    assert parse_settings({"deviceDailyReadingQuota": value}, REGION).ingest.device_daily_reading_quota == quota
    assert parse_settings({}, REGION).ingest.device_daily_reading_quota == 200000


def test_burst_below_rate_is_rejected() -> None:
    (msg,) = problems({"apiThrottleBurst": "10", "apiThrottleRate": "20"})
    assert "iot-ingest:apiThrottleBurst" in msg and "apiThrottleRate (20)" in msg


def test_put_budget_must_leave_time_within_the_ingest_timeout() -> None:
    (msg,) = problems({"ingestTimeoutSeconds": "8", "putBudgetSeconds": "5"})
    assert msg.startswith("iot-ingest:putBudgetSeconds must be at most iot-ingest:ingestTimeoutSeconds - 4 (4), got 5"), msg
    assert parse_settings({"ingestTimeoutSeconds": "9", "putBudgetSeconds": "5"}, REGION).ingest.put_budget_s == 5


@pytest.mark.parametrize(("raw", "least"), [
    ({"readingsTtlDays": "7"}, 9),  # the dev stack's old value: 604800 s of accepted past, 24 h stream
    ({"readingsTtlDays": "30", "maxReadingAgeSeconds": str(29 * 86_400)}, 31),
    ({"readingsTtlDays": "10", "streamRetentionHours": "168"}, 15),
])
def test_readings_ttl_must_cover_the_accepted_past_and_the_stream(raw: dict[str, str], least: int) -> None:
    (msg,) = problems(raw)
    assert msg.startswith(f"iot-ingest:readingsTtlDays must be at least {least} with iot-ingest:maxReadingAgeSeconds "), msg
    assert "streamRetentionHours" in msg and "raise readingsTtlDays or lower maxReadingAgeSeconds" in msg
    fixed = parse_settings({**raw, "readingsTtlDays": str(least)}, REGION)
    assert fixed.storage.readings_ttl_days * 86_400 >= (fixed.ingest.max_reading_age_s
                                                       + fixed.stream.retention_hours * 3600 + 86_400)


def test_readings_limit_ceiling_is_the_published_schema_maximum() -> None:
    schema = json.loads((PROJECT_DIR / "handlers" / "telemetry" / "telemetry.schema.json").read_text())
    ceiling = schema["properties"]["readings"]["maxItems"]
    assert parse_settings({"maxReadingsPerRequest": str(ceiling)}, REGION).ingest.max_readings_per_request == ceiling
    (msg,) = problems({"maxReadingsPerRequest": str(ceiling + 1)})
    assert msg.startswith("iot-ingest:maxReadingsPerRequest must be from 1 to "), msg


def test_unknown_key_is_reported_with_a_suggestion() -> None:
    (msg,) = problems({"shardCont": "2"})
    assert "iot-ingest:shardCont is not a known key (did you mean shardCount?)" in msg


def test_unknown_alarm_override_id_lists_allowed_ids() -> None:
    (msg,) = problems({"alarmOverrides": json.dumps({"api-500": {"threshold": 1}})})
    assert "'api-500'" in msg
    assert all(alarm_id in msg for alarm_id in ALARM_IDS)


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"thresold": 1}, "unknown field 'thresold'; allowed fields: threshold, period"),
    ({"threshold": "high"}, "field 'threshold' must be a number"),
    ({"period": 45}, "field 'period' must be 10, 20, 30 or a positive multiple of 60"),
    ({"evaluationPeriods": 0}, "field 'evaluationPeriods' must be an integer >= 1"),
    ({"evaluationPeriods": 2, "datapointsToAlarm": 3}, "'datapointsToAlarm' (3) must be <= evaluationPeriods (2)"),
    ({"datapointsToAlarm": 5}, "'datapointsToAlarm' needs 'evaluationPeriods' in the same entry"),
    ({"treatMissingData": "zero"}, "breaching, notBreaching, ignore, missing"),
    ({"enabled": "no"}, "field 'enabled' must be true or false"),
    # ingest-errors is a Sum alarm: CloudWatch uses the setting only for percentiles
    ({"evaluateLowSampleCountPercentiles": "ignore"}, "must be evaluate or ignore, on a percentile alarm only "
                                                      "(api-latency-p99), got 'ignore'"),
])
def test_bad_alarm_override_field_is_rejected(fields: dict[str, object], fragment: str) -> None:
    (msg,) = problems({"alarmOverrides": json.dumps({"ingest-errors": fields})})
    assert msg.startswith("iot-ingest:alarmOverrides entry 'ingest-errors'") and fragment in msg, msg


def test_low_sample_count_setting_takes_only_evaluate_or_ignore() -> None:
    (msg,) = problems({"alarmOverrides": json.dumps({"api-latency-p99": {"evaluateLowSampleCountPercentiles": "skip"}})})
    assert msg == ("iot-ingest:alarmOverrides entry 'api-latency-p99' field 'evaluateLowSampleCountPercentiles' "
                   "must be evaluate or ignore, on a percentile alarm only (api-latency-p99), got 'skip'")
    ok = parse_settings({"alarmOverrides": json.dumps({"api-latency-p99": {"evaluateLowSampleCountPercentiles":
                                                                           "evaluate"}})}, "us-east-1")
    assert ok.alarms.overrides["api-latency-p99"].evaluate_low_sample_count_percentiles == "evaluate"


def test_all_problems_are_reported_together() -> None:
    found = problems({
        "shardCount": "0", "streamMode": "X", "readingsTtlDays": "0", "logRetentionDays": "2",
        "processorBatchSize": "0", "alarmOverrides": '{"nope": {}}',
    }, region="")
    keys = ["shardCount", "streamMode", "readingsTtlDays", "logRetentionDays", "processorBatchSize", "alarmOverrides"]
    assert len(found) == len(keys) + 1
    for key in keys:
        assert any(p.startswith(f"iot-ingest:{key} ") for p in found), key
    assert any(p.startswith("aws:region must be set") for p in found)
    with pytest.raises(SettingsError, match=r"^7 invalid configuration value\(s\)"):
        parse_settings({"shardCount": "0", "streamMode": "X", "readingsTtlDays": "0", "logRetentionDays": "2",
                        "processorBatchSize": "0", "alarmOverrides": '{"nope": {}}'}, "")


@pytest.mark.parametrize(("key", "value"), [
    ("processorMaxRetries", "0"), ("processorMaxRetries", "10000"),
    ("processorMaxRecordAgeSeconds", "60"),
    ("processorMaxRecordAgeSeconds", "604800"), ("authorizerCacheTtlSeconds", "0"),
    ("authorizerCacheTtlSeconds", "3600"), ("processorBatchingWindowSeconds", "300"),
    ("processorParallelization", "10"), ("ingestTimeoutSeconds", "30"), ("logRetentionDays", "3653"),
    ("maxBodyBytes", "4669440"), ("maxBodyBytes", "1"),
])
def test_boundary_values_are_accepted(key: str, value: str) -> None:
    where = {
        "processorMaxRetries": "processor.max_retry_attempts",
        "processorMaxRecordAgeSeconds": "processor.max_record_age_s",
        "authorizerCacheTtlSeconds": "api.authorizer_cache_ttl_s",
        "processorBatchingWindowSeconds": "processor.batching_window_s",
        "processorParallelization": "processor.parallelization_factor",
        "ingestTimeoutSeconds": "functions.ingest.timeout_s",
        "logRetentionDays": "log_retention_days",
        "maxBodyBytes": "ingest.max_body_bytes",
    }[key]
    parsed: object = parse_settings({key: value}, REGION)
    for attr in where.split("."):
        parsed = getattr(parsed, attr)
    assert parsed == int(value)  # accepted *and* kept as given (not clamped or replaced by a default)


def test_overrides_are_parsed_into_typed_values() -> None:
    s = parse_settings({"alarmOverrides": json.dumps(
        {"api-5xx": {"threshold": 7, "period": 300, "evaluationPeriods": 2, "datapointsToAlarm": 1,
                     "treatMissingData": "breaching", "enabled": False}})}, REGION)
    o = s.alarms.overrides["api-5xx"]
    assert (o.threshold, o.period, o.evaluation_periods, o.datapoints_to_alarm, o.treat_missing_data, o.enabled) == (
        7.0, 300, 2, 1, "breaching", False)


def test_settings_error_is_an_exception_with_each_problem() -> None:
    err = SettingsError(["a", "b"])
    assert isinstance(err, Exception) and err.problems == ("a", "b") and "  - a\n  - b" in str(err)


def test_pulumi_yaml_declares_every_key_with_type_description_and_the_same_default() -> None:
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    assert project["name"] == "iot-ingest"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    declared = project["config"]
    assert set(declared) == set(DEFAULTS)
    for key, decl in declared.items():
        assert decl["type"] in ("string", "integer", "boolean", "array") and decl["description"], key
        default = decl["default"]
        text = json.dumps(default) if isinstance(default, list) else (
            str(default).lower() if isinstance(default, bool) else str(default))
        assert text == DEFAULTS[key], (key, text, DEFAULTS[key])
    assert not any(k.startswith("aws:") for k in declared)  # provider keys take no default


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_set_the_region_and_only_known_keys(stack: str) -> None:
    data = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert data["aws:region"] == "us-east-1"
    for key in data:
        assert key == "aws:region" or (key.startswith("iot-ingest:") and key.split(":", 1)[1] in DEFAULTS), key


def test_dev_is_small_and_prod_is_durable() -> None:
    def load(stack: str):
        cfg = stack_config(stack)
        return parse_settings({k.split(":", 1)[1]: v for k, v in cfg.items() if k.startswith("iot-ingest:")},
                              cfg["aws:region"])
    dev, prod = load("dev"), load("prod")
    assert (dev.stream.mode, dev.stream.shard_count, dev.stream.retention_hours) == ("PROVISIONED", 1, 24)
    assert not dev.storage.point_in_time_recovery and not dev.storage.protect
    assert prod.stream.mode == "ON_DEMAND" and prod.storage.point_in_time_recovery and prod.storage.protect
    assert prod.log_retention_days > dev.log_retention_days
    assert prod.functions.ingest.reserved_concurrency > 0 and dev.functions.ingest.reserved_concurrency == -1
    for stack in (dev, prod):  # a reading accepted at the past bound outlives its storage by at least a day
        assert stack.storage.readings_ttl_days * 86_400 >= (stack.ingest.max_reading_age_s
                                                            + stack.stream.retention_hours * 3600 + 86_400)


def test_load_settings_reads_pulumi_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(
        {"aws:region": "eu-central-1", "iot-ingest:shardCount": "3", "other:key": "ignored"}))
    s = load_settings()
    assert s.region == "eu-central-1" and s.stream.shard_count == 3


def test_load_settings_rejects_typos_in_pulumi_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aws:region": "us-east-1", "iot-ingest:shardCuont": "3"}))
    with pytest.raises(SettingsError, match="shardCuont is not a known key"):
        load_settings()


def test_reference_docs_list_every_key_and_every_alarm() -> None:
    config_doc = (PROJECT_DIR / "docs" / "config.md").read_text()
    alarms_doc = (PROJECT_DIR / "docs" / "alarms.md").read_text()
    for key, default in DEFAULTS.items():
        assert f"| `iot-ingest:{key}` |" in config_doc, key
        assert f"| `{default or chr(34) * 2}` |" in config_doc, key
    for alarm_id in ALARM_IDS:
        assert f"| `{alarm_id}` |" in alarms_doc, alarm_id


def test_readme_lists_every_key_and_every_alarm() -> None:
    """The README's config and alarm tables are what operators read first; they must not drift."""
    readme = (PROJECT_DIR / "README.md").read_text()
    for key in DEFAULTS:
        assert f"| `iot-ingest:{key}` |" in readme, key
    for alarm_id in ALARM_IDS:
        assert f"| `{alarm_id}` |" in readme, alarm_id


def test_put_reserve_matches_the_ingest_client_bounds() -> None:
    """settings/ may not import handlers/, so the reserve is written twice; this keeps the two in step."""
    from handlers.telemetry.kinesis_put import CALL_MAX_S
    from settings.parse import PUT_RESERVE_S

    assert PUT_RESERVE_S == CALL_MAX_S + 1  # one last call after the budget, then a second to answer
