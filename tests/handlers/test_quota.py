"""Daily reading quotas on moto: the processor's counting, the authorizer's decision, ingest's 429."""
from __future__ import annotations

import json
from typing import Any

import pytest

from admin.readings import read_readings
from handlers.telemetry.auth import authorize
from handlers.telemetry.config import AuthorizerConfig, ConfigError, IngestConfig, ProcessorConfig
from handlers.telemetry.ingest_app import handle
from handlers.telemetry.process import BatchOutcome, process_batch
from handlers.telemetry.records import pack
from handlers.telemetry.usage import DAY_MS, mark, parse_quota, QuotaFormatError
from handlers.telemetry.validation import Reading
from handlers_support import DEVICES, NOW_MS, READINGS, VirtualTime, kinesis_event, reading, register, stream_records, telemetry_event

KEY = "k"
TODAY = "2025-06-15"  # NOW_MS is 2025-06-15T15:06:40Z
MIDNIGHT_MS = (NOW_MS // DAY_MS + 1) * DAY_MS
assert MIDNIGHT_MS == 1_750_032_000_000  # 2025-06-16T00:00:00Z


def record(device: str, n: int, *, ts0: int = NOW_MS, received_at: int = NOW_MS, first_seq: int = 0) -> bytes:
    readings = [Reading(ts0 + i, first_seq + i, {"temp": 20.0}) for i in range(n)]
    (data,) = pack(device, "r", received_at, readings)
    return data


class CountingDynamo:
    """The real moto client, counting UpdateItem calls (the writes the cost meter would bill)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.updates = 0

    def update_item(self, **kwargs: Any) -> Any:
        self.updates += 1
        return self.real.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def process(records: list[tuple[str, bytes, str]], dynamodb: Any, config: ProcessorConfig, vtime: VirtualTime) -> BatchOutcome:
    return process_batch(kinesis_event(records), dynamodb=dynamodb, config=config, new_backoff=vtime.backoff)


def device(dynamodb: Any, device_id: str = "dev-1") -> dict[str, Any]:
    return dynamodb.get_item(TableName=DEVICES, Key={"deviceId": {"S": device_id}}, ConsistentRead=True).get("Item", {})


def usage(dynamodb: Any, device_id: str = "dev-1") -> tuple[str | None, int | None]:
    item = device(dynamodb, device_id)
    day = item.get("usageDay", {}).get("S")
    count = item.get("usageCount", {}).get("N")
    return day, None if count is None else int(count)


# ------------------------------------------------------------------ processor counting

def test_a_batch_adds_its_readings_in_the_one_update_per_device(dynamodb: Any, processor_config: ProcessorConfig,
                                                                vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", KEY)
    register(dynamodb, "dev-2", KEY)
    counting = CountingDynamo(dynamodb)
    # the very first batch of a device: no usage attributes yet, still one write
    process([("1", record("dev-1", 3), "dev-1"), ("2", record("dev-2", 2), "dev-2"),
             ("3", record("dev-1", 4, ts0=NOW_MS + 10), "dev-1")], counting, processor_config, vtime)
    assert counting.updates == 2  # one per device, as before quotas
    assert usage(dynamodb, "dev-1") == (TODAY, 7)
    assert usage(dynamodb, "dev-2") == (TODAY, 2)
    counting.updates = 0
    process([("4", record("dev-1", 5, ts0=NOW_MS + 100), "dev-1")], counting, processor_config, vtime)
    assert counting.updates == 1
    assert usage(dynamodb, "dev-1") == (TODAY, 12)
    assert device(dynamodb)["latestTs"] == {"N": str(NOW_MS + 104)}


def test_out_of_order_readings_are_counted_and_latest_stays(dynamodb: Any, processor_config: ProcessorConfig,
                                                            vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", KEY)
    process([("1", record("dev-1", 2, ts0=NOW_MS), "dev-1")], dynamodb, processor_config, vtime)
    counting = CountingDynamo(dynamodb)
    outcome = process([("2", record("dev-1", 3, ts0=NOW_MS - 60_000), "dev-1")], counting, processor_config, vtime)
    assert outcome.failures == [] and outcome.latest_updated == 0
    assert counting.updates == 2  # the failed conditional update, then the exact one: the stated cost
    assert usage(dynamodb) == (TODAY, 5)
    assert device(dynamodb)["latestTs"] == {"N": str(NOW_MS + 1)}


def test_redelivered_records_are_not_counted_twice(dynamodb: Any, processor_config: ProcessorConfig,
                                                   vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", KEY)
    first = [("10", record("dev-1", 2), "dev-1"), ("11", record("dev-1", 3, ts0=NOW_MS + 10), "dev-1")]
    process(first, dynamodb, processor_config, vtime)
    assert usage(dynamodb) == (TODAY, 5)
    process(first, dynamodb, processor_config, vtime)  # the whole batch again (an invocation retried)
    assert usage(dynamodb) == (TODAY, 5)
    # a retry from a checkpoint: one record seen before, one new
    process([("11", record("dev-1", 3, ts0=NOW_MS + 10), "dev-1"),
             ("12", record("dev-1", 4, ts0=NOW_MS + 20), "dev-1")], dynamodb, processor_config, vtime)
    assert usage(dynamodb) == (TODAY, 9)
    assert device(dynamodb)["latestTs"] == {"N": str(NOW_MS + 23)}


def test_sequence_numbers_compare_as_numbers_not_text(dynamodb: Any, processor_config: ProcessorConfig,
                                                      vtime: VirtualTime) -> None:
    assert mark("9") < mark("10") < mark("0000011")
    register(dynamodb, "dev-1", KEY)
    process([("9", record("dev-1", 1), "dev-1")], dynamodb, processor_config, vtime)
    process([("10", record("dev-1", 1, ts0=NOW_MS + 1), "dev-1")], dynamodb, processor_config, vtime)
    assert usage(dynamodb) == (TODAY, 2)  # "10" < "9" as text would have skipped it


def test_a_new_utc_day_replaces_the_counter(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", KEY)
    process([("1", record("dev-1", 4, received_at=MIDNIGHT_MS - 1), "dev-1")], dynamodb, processor_config, vtime)
    assert usage(dynamodb) == (TODAY, 4)
    process([("2", record("dev-1", 3, ts0=MIDNIGHT_MS, received_at=MIDNIGHT_MS), "dev-1")], dynamodb, processor_config, vtime)
    assert usage(dynamodb) == ("2025-06-16", 3)
    item = device(dynamodb)
    assert sorted(k for k in item if k.startswith("usage")) == ["usageCount", "usageDay", "usageMark"]  # no old days kept


def test_a_batch_spanning_midnight_counts_the_new_day(dynamodb: Any, processor_config: ProcessorConfig,
                                                      vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", KEY)
    process([("1", record("dev-1", 4, received_at=MIDNIGHT_MS - 5), "dev-1")], dynamodb, processor_config, vtime)
    process([("2", record("dev-1", 2, ts0=NOW_MS + 10, received_at=MIDNIGHT_MS - 1), "dev-1"),
             ("3", record("dev-1", 5, ts0=MIDNIGHT_MS, received_at=MIDNIGHT_MS + 1), "dev-1")],
            dynamodb, processor_config, vtime)
    assert usage(dynamodb) == ("2025-06-16", 5)  # the old day is over; its last readings count nowhere


def test_failed_records_are_not_counted(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", KEY)
    outcome = process([("1", b"not json", "dev-1"), ("2", record("dev-1", 3), "dev-1")], dynamodb, processor_config, vtime)
    assert outcome.failures == ["1"]
    assert usage(dynamodb) == (TODAY, 3)


def test_an_unregistered_device_gets_no_phantom_item(dynamodb: Any, processor_config: ProcessorConfig,
                                                     vtime: VirtualTime) -> None:
    outcome = process([("1", record("ghost", 3), "ghost")], dynamodb, processor_config, vtime)
    assert outcome.failures == [] and outcome.stored == 3
    assert device(dynamodb, "ghost") == {}


def test_every_stored_reading_is_counted_once_across_shuffled_deliveries(dynamodb: Any, processor_config: ProcessorConfig,
                                                                          vtime: VirtualTime) -> None:
    """Out-of-order timestamps, re-deliveries and overlapping retries: the count equals the records' readings."""
    register(dynamodb, "dev-1", KEY)
    sizes = [3, 1, 4, 1, 5, 9, 2, 6]
    recs = [(str(100 + i), record("dev-1", n, ts0=NOW_MS + (-1) ** i * i * 1000, first_seq=i * 10), "dev-1")
            for i, n in enumerate(sizes)]
    for start, end in [(0, 3), (1, 3), (2, 6), (0, 8), (5, 8), (7, 8)]:
        process(recs[start:end], dynamodb, processor_config, vtime)
    assert usage(dynamodb) == (TODAY, sum(sizes))
    assert len(list(read_readings(dynamodb, READINGS, "dev-1", 0, 10**13))) == sum(sizes)  # stored, once each


# ------------------------------------------------------------------ authorizer

def auth_event(device_id: str = "dev-1") -> dict[str, Any]:
    return {"version": "2.0", "type": "REQUEST", "headers": {"x-device-id": device_id, "x-device-key": KEY}}


def set_attrs(dynamodb: Any, device_id: str, **attrs: dict[str, str]) -> None:
    names = {f"#a{i}": k for i, k in enumerate(attrs)}
    values = {f":v{i}": v for i, v in enumerate(attrs.values())}
    dynamodb.update_item(TableName=DEVICES, Key={"deviceId": {"S": device_id}},
                         UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(attrs))),
                         ExpressionAttributeNames=names, ExpressionAttributeValues=values)


def test_under_quota_is_a_plain_allow(dynamodb: Any) -> None:
    register(dynamodb, "dev-1", KEY)
    set_attrs(dynamodb, "dev-1", usageDay={"S": TODAY}, usageCount={"N": "9"})
    result = authorize(auth_event(), dynamodb, DEVICES, default_quota=10, now_ms=NOW_MS)
    assert result.response() == {"isAuthorized": True, "context": {"deviceId": "dev-1"}}


def test_at_quota_is_allowed_with_the_quota_state(dynamodb: Any) -> None:
    register(dynamodb, "dev-1", KEY)
    set_attrs(dynamodb, "dev-1", usageDay={"S": TODAY}, usageCount={"N": "10"})
    result = authorize(auth_event(), dynamodb, DEVICES, default_quota=10, now_ms=NOW_MS)
    assert result.response() == {"isAuthorized": True, "context": {
        "deviceId": "dev-1", "quotaExceeded": True, "quota": 10, "used": 10, "resetsAt": "2025-06-16T00:00:00Z"}}


def test_a_device_without_quota_fields_gets_the_stack_default(dynamodb: Any) -> None:
    register(dynamodb, "dev-1", KEY)  # registered before quotas: no usage, no override
    assert authorize(auth_event(), dynamodb, DEVICES, default_quota=0, now_ms=NOW_MS).response()["context"]["quota"] == 0
    assert "quota" not in authorize(auth_event(), dynamodb, DEVICES, default_quota=1, now_ms=NOW_MS).response()["context"]


@pytest.mark.parametrize("override, default, exceeded", [
    ({"N": "50"}, 10, False),          # the override raises the stack's limit
    ({"N": "5"}, 1000, True),          # ... or lowers it
    ({"S": "unlimited"}, 10, False),   # explicitly unlimited on a limited stack
    ({"N": "0"}, None, True),          # 0 is a real quota, even on an unlimited stack
])
def test_the_per_device_override_wins(dynamodb: Any, override: dict[str, str], default: int | None, exceeded: bool) -> None:
    register(dynamodb, "dev-1", KEY)
    set_attrs(dynamodb, "dev-1", usageDay={"S": TODAY}, usageCount={"N": "20"}, dailyReadingQuota=override)
    context = authorize(auth_event(), dynamodb, DEVICES, default_quota=default, now_ms=NOW_MS).response()["context"]
    assert context.get("quotaExceeded", False) is exceeded


def test_yesterdays_usage_does_not_count_today(dynamodb: Any) -> None:
    register(dynamodb, "dev-1", KEY)
    set_attrs(dynamodb, "dev-1", usageDay={"S": "2025-06-14"}, usageCount={"N": "99"})
    assert authorize(auth_event(), dynamodb, DEVICES, default_quota=10, now_ms=NOW_MS).quota is None


@pytest.mark.parametrize("attrs", [
    {"usageDay": {"S": TODAY}, "usageCount": {"S": "lots"}},
    {"dailyReadingQuota": {"S": "many"}},
    {"dailyReadingQuota": {"N": "-3"}},
])
def test_unreadable_quota_or_usage_denies(dynamodb: Any, attrs: dict[str, Any]) -> None:
    register(dynamodb, "dev-1", KEY)
    set_attrs(dynamodb, "dev-1", **attrs)
    result = authorize(auth_event(), dynamodb, DEVICES, default_quota=10, now_ms=NOW_MS)
    assert result.response() == {"isAuthorized": False, "context": {}}
    assert "unreadable" in result.reason


def test_a_lookup_error_still_denies_with_quotas(dynamodb: Any) -> None:
    class Broken:
        def get_item(self, **kwargs: Any) -> Any:
            raise TimeoutError("read timed out")
    result = authorize(auth_event(), Broken(), DEVICES, default_quota=None, now_ms=NOW_MS)
    assert result.allowed is False and result.reason == "lookup error"


def test_processor_counts_reach_the_authorizer(dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    register(dynamodb, "dev-1", KEY)
    process([("1", record("dev-1", 6), "dev-1")], dynamodb, processor_config, vtime)
    assert authorize(auth_event(), dynamodb, DEVICES, default_quota=7, now_ms=NOW_MS).quota is None
    process([("2", record("dev-1", 1, ts0=NOW_MS + 10), "dev-1")], dynamodb, processor_config, vtime)
    state = authorize(auth_event(), dynamodb, DEVICES, default_quota=7, now_ms=NOW_MS).quota
    assert state is not None and (state.quota, state.used) == (7, 7)


# ------------------------------------------------------------------ ingest

def over_quota_event(resets_at: str = "2025-06-16T00:00:00Z") -> dict[str, Any]:
    event = telemetry_event({"deviceId": "dev-1", "readings": [reading(NOW_MS, seq=1)]})
    event["requestContext"]["authorizer"]["lambda"].update(
        {"quotaExceeded": True, "quota": 10, "used": 12, "resetsAt": resets_at})
    return event


def test_over_quota_is_429_with_retry_after_and_writes_nothing(kinesis: Any, vtime: VirtualTime,
                                                               ingest_config: IngestConfig) -> None:
    result = handle(over_quota_event(), kinesis=kinesis, config=ingest_config, now_ms=NOW_MS, new_backoff=vtime.backoff)
    assert result.response["statusCode"] == 429 and result.over_quota and result.accepted == 0
    assert result.response["headers"]["retry-after"] == str((MIDNIGHT_MS - NOW_MS) // 1000)  # 8 h 53 min 20 s
    body = json.loads(result.response["body"])
    assert body == {"error": "quota_exceeded", "message": body["message"], "field": None,
                    "quota": 10, "used": 12, "resetsAt": "2025-06-16T00:00:00Z"}
    assert "10" in body["message"] and "2025-06-16T00:00:00Z" in body["message"]
    assert stream_records(kinesis) == []


def test_a_cached_verdict_from_a_finished_day_is_ignored(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    result = handle(over_quota_event("2025-06-15T00:00:00Z"), kinesis=kinesis, config=ingest_config, now_ms=NOW_MS,
                    new_backoff=vtime.backoff)
    assert result.response["statusCode"] == 202 and not result.over_quota
    assert len(stream_records(kinesis)) == 1


def test_retry_after_is_at_least_one_second(kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig) -> None:
    result = handle(over_quota_event(), kinesis=kinesis, config=ingest_config, now_ms=MIDNIGHT_MS - 10,
                    new_backoff=vtime.backoff)
    assert result.response["headers"]["retry-after"] == "1"


# ------------------------------------------------------------------ configuration

@pytest.mark.parametrize("raw, quota", [("200000", 200000), ("0", 0), ("unlimited", None), ("UNLIMITED", None)])
def test_authorizer_reads_the_stack_default(raw: str, quota: int | None) -> None:
    config = AuthorizerConfig.from_env({"DEVICES_TABLE": "d", "DEVICE_DAILY_READING_QUOTA": raw})
    assert config.daily_reading_quota == quota


@pytest.mark.parametrize("env", [{"DEVICES_TABLE": "d"}, {"DEVICES_TABLE": "d", "DEVICE_DAILY_READING_QUOTA": "-1"},
                                 {"DEVICES_TABLE": "d", "DEVICE_DAILY_READING_QUOTA": "1.5"}])
def test_a_missing_or_bad_stack_default_fails_at_init(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="DEVICE_DAILY_READING_QUOTA"):
        AuthorizerConfig.from_env(env)


@pytest.mark.parametrize("text", ["-1", "1.5", "", "lots", "1e3"])
def test_parse_quota_refuses_what_is_not_a_quota(text: str) -> None:
    with pytest.raises(QuotaFormatError):
        parse_quota(text)


def test_a_concurrent_count_between_failure_and_follow_up_is_not_doubled(
        dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    """The follow-up is guarded by the values it read; if they moved, it re-reads instead of adding twice."""
    register(dynamodb, "dev-1", KEY)
    process([("1", record("dev-1", 2, ts0=NOW_MS), "dev-1")], dynamodb, processor_config, vtime)

    class Racing(CountingDynamo):
        raced = False

        def update_item(self, **kwargs: Any) -> Any:
            if "#gmark" in kwargs.get("ExpressionAttributeNames", {}) and not self.raced:
                self.raced = True  # someone else counts the same record first
                self.real.update_item(TableName=DEVICES, Key={"deviceId": {"S": "dev-1"}},
                                      UpdateExpression="SET usageMark = :m ADD usageCount :n",
                                      ExpressionAttributeValues={":m": {"S": mark("2")}, ":n": {"N": "3"}})
            return super().update_item(**kwargs)

    racing = Racing(dynamodb)
    process([("2", record("dev-1", 3, ts0=NOW_MS - 60_000), "dev-1")], racing, processor_config, vtime)
    assert racing.raced and racing.updates == 2  # the one-write try, the guarded follow-up that lost; no third
    assert usage(dynamodb) == (TODAY, 5)


@pytest.mark.parametrize("where", ["first update", "follow-up"])
def test_an_update_whose_answer_was_lost_is_retried_without_counting_twice(
        where: str, dynamodb: Any, processor_config: ProcessorConfig, vtime: VirtualTime) -> None:
    """The processor retries transient UpdateItem failures; an update that landed but whose answer was
    lost must not add the batch's readings a second time on the retry."""
    from botocore.exceptions import ReadTimeoutError

    register(dynamodb, "dev-1", KEY)
    process([("1", record("dev-1", 2, ts0=NOW_MS), "dev-1")], dynamodb, processor_config, vtime)

    class LosesOneAnswer(CountingDynamo):
        lost = False

        def update_item(self, **kwargs: Any) -> Any:
            answer = super().update_item(**kwargs)  # the write lands ...
            is_follow_up = "#gmark" in kwargs.get("ExpressionAttributeNames", {})
            if not self.lost and is_follow_up == (where == "follow-up"):
                self.lost = True  # ... and the answer is lost on the way back
                raise ReadTimeoutError(endpoint_url="https://dynamodb")
            return answer

    flaky = LosesOneAnswer(dynamodb)
    ts0 = NOW_MS + 10 if where == "first update" else NOW_MS - 60_000  # in order, or out of order (follow-up)
    outcome = process([("2", record("dev-1", 3, ts0=ts0), "dev-1")], flaky, processor_config, vtime)
    assert flaky.lost and outcome.failures == []
    assert usage(dynamodb) == (TODAY, 5)
