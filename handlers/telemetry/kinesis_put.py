"""PutRecords that retries only what failed, within a time budget.

PutRecords answers HTTP 200 even when some entries failed: the response's
FailedRecordCount and each entry's ErrorCode (ProvisionedThroughputExceededException
or InternalFailure) say which, and only those must be sent again
(https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html).
A whole call can also be throttled (a 400 ProvisionedThroughputExceededException
and friends); that is retried the same way. When the budget runs out the
caller answers 503 + Retry-After: re-sending is safe because readings are
keyed by (deviceId, ts, seq). Retried entries may land after later ones; order
does not matter downstream because the processor only moves a device's
"latest" forward.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .backoff import Backoff

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024

# How long one PutRecords call may take before the client gives up: the ingest
# client's connect + read timeouts, with botocore's own retries off so that
# put_records' budget alone decides how often to try. A call that starts just
# before the budget runs out can last this long, so the function needs the
# budget + this + time to answer (settings enforce it; the handler caps the
# budget by the invocation's remaining time too).
CALL_CONNECT_TIMEOUT_S = 1
CALL_READ_TIMEOUT_S = 2
CALL_MAX_S = CALL_CONNECT_TIMEOUT_S + CALL_READ_TIMEOUT_S

# Whole-call errors worth retrying; anything else (missing stream, access denied,
# validation) is a deployment bug and is raised.
RETRYABLE_CALL_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
    }
)


class PutBudgetExhausted(Exception):
    """Some entries were still unwritten when the retry budget ran out."""

    def __init__(self, unwritten: int, last_error: str) -> None:
        super().__init__(f"{unwritten} record(s) unwritten after retries; last error {last_error}")
        self.unwritten = unwritten
        self.last_error = last_error


@dataclass(frozen=True)
class Entry:
    data: bytes
    partition_key: str

    def size(self) -> int:
        return len(self.data) + len(self.partition_key.encode("utf-8"))


@dataclass
class PutStats:
    records: int = 0
    calls: int = 0
    retried_entries: int = 0
    throttled_calls: int = 0


def _chunks(entries: list[Entry]) -> list[list[Entry]]:
    """Split into calls of at most 500 entries and 5 MiB."""
    chunks: list[list[Entry]] = []
    current: list[Entry] = []
    size = 0
    for entry in entries:
        if current and (len(current) >= MAX_RECORDS_PER_CALL or size + entry.size() > MAX_BYTES_PER_CALL):
            chunks.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry.size()
    if current:
        chunks.append(current)
    return chunks


def put_records(kinesis: Any, stream_name: str, entries: list[Entry], backoff: Backoff) -> PutStats:
    """Write every entry or raise PutBudgetExhausted; never reports success for a lost entry."""
    stats = PutStats(records=len(entries))
    pending = list(entries)
    last_error = ""
    while pending:
        failed: list[Entry] = []
        for chunk in _chunks(pending):
            stats.calls += 1
            try:
                response = kinesis.put_records(
                    StreamName=stream_name,
                    Records=[{"Data": e.data, "PartitionKey": e.partition_key} for e in chunk],
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in RETRYABLE_CALL_ERRORS:
                    raise
                stats.throttled_calls += 1
                last_error = code
                failed.extend(chunk)
                continue
            except (BotoConnectionError, HTTPClientError) as exc:
                # Connect/read timeout or a reset: the outcome is unknown, so retry (a
                # duplicate record is harmless, readings are keyed). Other BotoCoreErrors
                # (bad parameters, no credentials) are bugs and are raised.
                last_error = type(exc).__name__
                failed.extend(chunk)
                continue
            results = response.get("Records", [])
            if response.get("FailedRecordCount", 0) == 0 and len(results) == len(chunk):
                continue
            for entry, result in zip(chunk, results, strict=False):
                if result.get("ErrorCode"):
                    last_error = str(result["ErrorCode"])
                    failed.append(entry)
            failed.extend(chunk[len(results):])  # a short answer: treat missing results as failed
        if failed:
            stats.retried_entries += len(failed)
            if not backoff.wait():
                raise PutBudgetExhausted(len(failed), last_error)
        pending = failed
    return stats
