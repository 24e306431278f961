"""PutRecords retries: only failed entries, whole-call throttling, budget -> 503 + Retry-After."""
from __future__ import annotations

import json
import random
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError, ReadTimeoutError

from handlers.telemetry.backoff import Backoff, RetryPolicy, budget_within
from handlers.telemetry.config import IngestConfig
from handlers.telemetry.ingest_app import handle
from handlers.telemetry.kinesis_put import CALL_MAX_S, Entry, PutBudgetExhausted, put_records
from handlers.telemetry.records import decode
from handlers_support import NOW_MS, STREAM, VirtualTime, reading, stream_records, telemetry_event
from kinesis_faults import FlakyKinesis, throttling_error


def entries(n: int) -> list[Entry]:
    return [Entry(json.dumps({"n": i}).encode(), f"dev-{i % 3}") for i in range(n)]


def written(kinesis: Any) -> list[int]:
    return sorted(json.loads(r["Data"])["n"] for r in stream_records(kinesis))


def test_only_failed_entries_are_retried(kinesis: Any, vtime: VirtualTime) -> None:
    flaky = FlakyKinesis(kinesis, fail_plan=[{1, 4, 7}, {0}])
    stats = put_records(flaky, STREAM, entries(10), vtime.backoff())
    assert flaky.calls == [10, 3, 1]
    assert written(kinesis) == list(range(10))  # every entry exactly once
    assert stats.calls == 3 and len(vtime.sleeps) == 2


def test_whole_call_throttling_is_retried(kinesis: Any, vtime: VirtualTime) -> None:
    flaky = FlakyKinesis(kinesis, throttle_calls=2)
    stats = put_records(flaky, STREAM, entries(4), vtime.backoff())
    assert flaky.calls == [4, 4, 4]
    assert stats.throttled_calls == 2
    assert written(kinesis) == [0, 1, 2, 3]


def test_budget_exhaustion_raises_and_reports_unwritten(kinesis: Any, vtime: VirtualTime) -> None:
    flaky = FlakyKinesis(kinesis, fail_plan=[{2}] + [{0}] * 1000)  # entry 2 fails on every attempt
    start = vtime.now
    with pytest.raises(PutBudgetExhausted) as info:
        put_records(flaky, STREAM, entries(3), vtime.backoff(budget_s=2.0))
    assert info.value.unwritten == 1
    assert info.value.last_error == "ProvisionedThroughputExceededException"
    assert vtime.now - start <= 2.0  # never sleeps past the budget
    assert written(kinesis) == [0, 1]


def test_calls_respect_500_record_limit(kinesis: Any, vtime: VirtualTime) -> None:
    flaky = FlakyKinesis(kinesis)
    put_records(flaky, STREAM, entries(1200), vtime.backoff())
    assert flaky.calls == [500, 500, 200]
    assert len(stream_records(kinesis)) == 1200


def test_non_retryable_error_is_raised_not_swallowed(aws: None, vtime: VirtualTime) -> None:
    import boto3

    client = boto3.client("kinesis", region_name="us-east-1")  # no stream: ResourceNotFoundException
    with pytest.raises(ClientError) as info:
        put_records(client, "missing-stream", entries(1), vtime.backoff())
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_backoff_is_full_jitter_capped_and_bounded_by_budget(vtime: VirtualTime) -> None:
    backoff = Backoff(RetryPolicy(budget_s=3.0, base_delay_s=0.1, max_delay_s=1.0), sleep=vtime.sleep, clock=vtime.clock, rng=lambda: 1.0)
    while backoff.wait():
        pass
    assert vtime.sleeps == [0.1, 0.2, 0.4, 0.8, 1.0]  # next 1.0 would pass the 3 s budget
    half = Backoff(RetryPolicy(budget_s=3.0, base_delay_s=0.1), sleep=vtime.sleep, clock=vtime.clock, rng=lambda: 0.5)
    vtime.sleeps.clear()
    half.wait()
    assert vtime.sleeps == [0.05]


def test_ingest_answers_503_with_retry_after_when_throttled_throughout(
    kinesis: Any, vtime: VirtualTime, ingest_config: IngestConfig
) -> None:
    flaky = FlakyKinesis(kinesis, throttle_calls=10_000)
    result = handle(telemetry_event({"readings": [reading()]}), kinesis=flaky, config=ingest_config, now_ms=NOW_MS, new_backoff=vtime.backoff)
    response = result.response
    assert response["statusCode"] == 503
    assert int(response["headers"]["retry-after"]) >= 1
    assert json.loads(response["body"])["error"] == "unavailable"
    assert result.accepted == 0 and result.rejected_request
    assert len(flaky.calls) > 1  # it did retry before giving up
    assert stream_records(kinesis) == []


def test_ingest_succeeds_after_partial_failures(kinesis: Any, vtime: VirtualTime) -> None:
    config = IngestConfig(stream_name=STREAM, max_readings=1000, max_body_bytes=2_000_000, max_age_s=3600)
    rng = random.Random(5)  # values that do not compress away, so the request needs several records
    readings = [reading(NOW_MS - i, seq=i, **{f"m{k}": rng.random() for k in range(20)}) for i in range(400)]
    flaky = FlakyKinesis(kinesis, fail_plan=[{0, 2}, {1}])
    result = handle(telemetry_event({"readings": readings}), kinesis=flaky, config=config, now_ms=NOW_MS, new_backoff=vtime.backoff)
    assert result.response["statusCode"] == 202
    n_records = json.loads(result.response["body"])["records"]
    assert n_records >= 3 and flaky.calls == [n_records, 2, 1]
    stored = [decode(r["Data"]) for r in stream_records(kinesis)]
    assert len(stored) == n_records
    assert sorted(r.seq for rec in stored for r in rec.readings) == list(range(400))


def test_a_timed_out_call_is_retried_and_nothing_is_lost(kinesis: Any, vtime: VirtualTime) -> None:
    class TimesOutOnce:
        calls = 0

        def put_records(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                raise ReadTimeoutError(endpoint_url="https://kinesis.us-east-1.amazonaws.com")
            return kinesis.put_records(**kwargs)

    client = TimesOutOnce()
    put_records(client, STREAM, entries(3), vtime.backoff())
    assert client.calls == 2
    assert written(kinesis) == [0, 1, 2]


def test_a_parameter_bug_is_raised_at_once_not_retried_into_a_503(kinesis: Any, vtime: VirtualTime) -> None:
    with pytest.raises(ParamValidationError):  # botocore refuses an empty partition key before sending
        put_records(kinesis, STREAM, [Entry(b"{}", "")], vtime.backoff())
    assert vtime.sleeps == []


def test_slow_calls_end_within_the_budget_plus_one_call(vtime: VirtualTime) -> None:
    """Each call takes as long as the client's timeouts allow: the budget still bounds the retries."""

    class SlowAndThrottled:
        calls = 0

        def put_records(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            vtime.now += CALL_MAX_S
            raise throttling_error()

    client = SlowAndThrottled()
    start = vtime.now
    with pytest.raises(PutBudgetExhausted):
        put_records(client, STREAM, entries(1), vtime.backoff(budget_s=5.0))
    assert client.calls >= 2
    assert vtime.now - start <= 5.0 + CALL_MAX_S


@pytest.mark.parametrize(("configured", "remaining_ms", "reserve", "expected"), [
    (5.0, 10_000, 4.0, 5.0),  # plenty of time: the configured budget
    (5.0, 6_000, 4.0, 2.0),   # a short invocation shortens it
    (5.0, 3_000, 4.0, 0.0),   # nothing left: one call, no retry
])
def test_budget_is_capped_by_the_invocation_time_left(configured: float, remaining_ms: int, reserve: float, expected: float) -> None:
    assert budget_within(configured, remaining_ms, reserve) == pytest.approx(expected)
