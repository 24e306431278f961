"""Read one shard's sequence-number range back from a Kinesis stream (for DLQ replay).

A Lambda on-failure record describes a failed batch by shard and first/last
sequence number only, never its data
(https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html);
the data stays in the stream until its retention period passes.

Kinesis trims a shard from its oldest end, so the records of a range that are
lost to retention are always a *prefix* of it: if the first record read is
after ``start``, everything from ``start`` up to that record is gone, and if
nothing of the range is left, all of it is. How Kinesis answers
GetShardIterator(AT_SEQUENCE_NUMBER) for a trimmed sequence number is not
documented (for AT_TIMESTAMP before the trim horizon it documents an iterator
at TRIM_HORIZON: https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html),
so both answers are handled: an iterator that starts later, and an
InvalidArgumentException, after which the shard is read from TRIM_HORIZON.

Reading is bounded: at most ``max_calls`` GetRecords calls, each of at most
``limit`` records. GetRecords may answer an empty page while the iterator is
still behind the tip (MillisBehindLatest > 0); reading then goes on. A page
that is empty at the tip (MillisBehindLatest 0) or a closed shard's last page
(no NextShardIterator) ends the range: nothing more of it will ever appear.
https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# A shard serves 5 GetRecords calls a second, shared with the processor's own reader.
PAUSE_S = 0.2
THROTTLED = frozenset({"ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException"})


class RangeReadError(Exception):
    """The range could not be read now (throttled beyond retries, call bound reached); try again later."""


@dataclass
class RangeRead:
    """What is left of ``[start, end]`` in the shard, in order, plus what retention took."""

    start: str
    end: str
    records: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    shard_missing: str = ""  # the service's message when the shard (or stream) no longer exists

    @property
    def expired(self) -> dict[str, Any] | None:
        """The trimmed prefix: ``{"from": start, "to": end}`` when nothing is left, ``{"from": start,
        "before": first record left}`` when only the start is gone; None when the range is whole."""
        if not self.records:
            return {"from": self.start, "to": self.end}
        first = self.records[0]["SequenceNumber"]
        if int(first) > int(self.start):
            return {"from": self.start, "before": first}
        return None


def read_range(
    kinesis: Any,
    stream_name: str,
    shard_id: str,
    start: str,
    end: str,
    *,
    limit: int = 1000,
    max_calls: int = 200,
    sleep: Callable[[float], None] = time.sleep,
) -> RangeRead:
    """Every record of ``shard_id`` with ``start <= SequenceNumber <= end`` that the stream still holds.

    Sequence numbers are compared as integers (they are decimal strings of varying length).
    Raises RangeReadError when the range cannot be read to its end within the bound.
    """
    low, high = int(start), int(end)
    result = RangeRead(start=start, end=end)
    try:
        iterator = _iterator(kinesis, stream_name, shard_id, "AT_SEQUENCE_NUMBER", start)
    except ClientError as exc:
        code, message = _error(exc)
        if code == "ResourceNotFoundException":
            result.shard_missing = message or code  # a shard is deleted once its records have all expired
            return result
        if code != "InvalidArgumentException":
            raise RangeReadError(f"GetShardIterator: {code}: {message}") from None
        iterator = _iterator(kinesis, stream_name, shard_id, "TRIM_HORIZON", None)
    last_read: str | None = None
    throttled = 0
    while result.calls < max_calls:
        result.calls += 1
        try:
            page = kinesis.get_records(ShardIterator=iterator, Limit=limit)
        except ClientError as exc:
            code, message = _error(exc)
            if code in THROTTLED:
                throttled += 1
                sleep(min(2.0, PAUSE_S * 2 ** throttled))
                continue
            if code == "ExpiredIteratorException":  # iterators live 5 minutes
                iterator = (_iterator(kinesis, stream_name, shard_id, "AFTER_SEQUENCE_NUMBER", last_read)
                            if last_read else _iterator(kinesis, stream_name, shard_id, "AT_SEQUENCE_NUMBER", start))
                continue
            raise RangeReadError(f"GetRecords: {code}: {message}") from None
        throttled = 0
        records = page.get("Records") or []
        for record in records:
            number = int(record["SequenceNumber"])
            last_read = record["SequenceNumber"]
            if number > high:
                return result
            if number >= low:
                result.records.append(record)
            if number == high:
                return result
        iterator = page.get("NextShardIterator")
        if not iterator:
            return result  # closed shard, read to its end
        if not records:
            if int(page.get("MillisBehindLatest") or 0) == 0:
                return result  # at the tip: the rest of the range does not exist
            sleep(PAUSE_S)
    raise RangeReadError(f"the range {start}..{end} of {shard_id} was not read to its end within {max_calls} GetRecords calls")


def _iterator(kinesis: Any, stream_name: str, shard_id: str, kind: str, sequence: str | None) -> str:
    kwargs: dict[str, Any] = {"StreamName": stream_name, "ShardId": shard_id, "ShardIteratorType": kind}
    if sequence is not None:
        kwargs["StartingSequenceNumber"] = sequence
    return str(kinesis.get_shard_iterator(**kwargs)["ShardIterator"])


def _error(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", ""))
