"""Per-device daily reading quotas: counting in the processor's device update, deciding at the edge.

Why here and like this: HTTP APIs have no usage plans or per-client throttling,
and a counter written per request would double the devices-table writes. The
processor already updates each device once per batch (its latest reading), so
it adds the batch's reading count to today's usage in that same UpdateItem.

Attributes on the devices-table item (docs/architecture.md, "Devices table"):
- ``dailyReadingQuota``: a per-device override, N (>= 0) or S "unlimited";
  absent means the stack default (``iot-ingest:deviceDailyReadingQuota``).
- ``usageDay``: S, the UTC day (YYYY-MM-DD) that ``usageCount`` counts.
- ``usageCount``: N, readings counted for ``usageDay``. A new day replaces both,
  so the item never grows with old days' counters.
- ``usageMark``: S, the Kinesis sequence number of the newest record counted,
  length-prefixed so that string order is numeric order. Kinesis sequence
  numbers increase within a shard and every record of a device is on one shard
  (partition key = device id), in order, one batch at a time (even with a
  ParallelizationFactor above 1); a record at or below the mark is a
  re-delivery and is not counted again.
  https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html

Days are those of the record's ``receivedAt`` (ingest's clock): a re-delivery
counts against the same day as the first delivery, whenever it is processed.

Write cost: the usual batch makes ONE UpdateItem per device, as before. That
update is conditional on "latest moves forward, same day (or first count),
every record newer than the mark". When that fails (an out-of-order batch, the
first batch of a UTC day, a re-delivery), DynamoDB returns the current item at
no read cost (ReturnValuesOnConditionCheckFailure=ALL_OLD,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html)
and one exact follow-up UpdateItem is made, guarded by the values just read.
So extra writes happen at most once per device per UTC day plus once per
out-of-order or re-delivered batch, never per request.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .device_keys import ATTR_LAST_SEEN_AT, ATTR_LATEST_SEQ, ATTR_LATEST_TS
from .validation import Reading

ATTR_QUOTA = "dailyReadingQuota"
ATTR_USAGE_DAY = "usageDay"
ATTR_USAGE_COUNT = "usageCount"
ATTR_USAGE_MARK = "usageMark"

UNLIMITED = "unlimited"
DAY_MS = 86_400_000

# Names of the context keys the authorizer hands to ingest when a device is over quota.
CTX_EXCEEDED = "quotaExceeded"
CTX_QUOTA = "quota"
CTX_USED = "used"
CTX_RESETS_AT = "resetsAt"


class QuotaFormatError(ValueError):
    """A quota value that is neither a non-negative integer nor "unlimited"."""


# ---------------------------------------------------------------- days and quotas

def utc_day(epoch_ms: int) -> str:
    """The UTC calendar day of an epoch-milliseconds instant, as YYYY-MM-DD (sortable)."""
    return _dt.datetime.fromtimestamp(epoch_ms // 1000, tz=_dt.timezone.utc).strftime("%Y-%m-%d")


def day_end_ms(epoch_ms: int) -> int:
    """The instant the UTC day containing ``epoch_ms`` ends (next midnight), epoch ms."""
    return (epoch_ms // DAY_MS + 1) * DAY_MS


def iso_z(epoch_ms: int) -> str:
    return _dt.datetime.fromtimestamp(epoch_ms / 1000, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_quota(text: str) -> int | None:
    """A quota as configured: a non-negative integer, or "unlimited" (None).

    "unlimited" is a word on purpose: 0 is a real quota (refuse every reading),
    never a silent "no limit".
    """
    value = text.strip()
    if value.lower() == UNLIMITED:
        return None
    if not value.isdigit():
        raise QuotaFormatError(f"quota must be a whole number >= 0 or {UNLIMITED!r}, got {text!r}")
    return int(value)


def quota_attribute(quota: int | None) -> dict[str, str]:
    """The DynamoDB form of a per-device override."""
    return {"S": UNLIMITED} if quota is None else {"N": str(quota)}


def item_quota(item: Mapping[str, Any], default: int | None) -> int | None:
    """The quota that applies to a device item: its override, else the stack default.

    Raises QuotaFormatError on a malformed override, which callers must treat as
    "cannot tell" (the authorizer denies), never as "no limit".
    """
    raw = item.get(ATTR_QUOTA)
    if raw is None:
        return default
    if "S" in raw and raw["S"] == UNLIMITED:
        return None
    if "N" in raw:
        text = raw["N"]
        if text.isdigit():
            return int(text)
    raise QuotaFormatError(f"{ATTR_QUOTA} is neither a whole number >= 0 nor {UNLIMITED!r}: {raw!r}")


def item_used_today(item: Mapping[str, Any], now_ms: int) -> int:
    """Readings counted for the device today (0 when the stored counter is for another day).

    Raises QuotaFormatError on a malformed counter.
    """
    day = item.get(ATTR_USAGE_DAY)
    if day is None or day.get("S") != utc_day(now_ms):
        if day is not None and "S" not in day:
            raise QuotaFormatError(f"{ATTR_USAGE_DAY} is not a string: {day!r}")
        return 0
    count = item.get(ATTR_USAGE_COUNT, {"N": "0"})
    text = count.get("N")
    if text is None or not text.isdigit():
        raise QuotaFormatError(f"{ATTR_USAGE_COUNT} is not a whole number: {count!r}")
    return int(text)


@dataclass(frozen=True)
class QuotaState:
    quota: int | None  # None: unlimited
    used: int
    resets_at_ms: int

    @property
    def exceeded(self) -> bool:
        return self.quota is not None and self.used >= self.quota

    def context(self) -> dict[str, Any]:
        """Authorizer context entries (strings, numbers and booleans only)."""
        return {CTX_EXCEEDED: True, CTX_QUOTA: self.quota, CTX_USED: self.used, CTX_RESETS_AT: iso_z(self.resets_at_ms)}


def quota_state(item: Mapping[str, Any], default: int | None, now_ms: int) -> QuotaState:
    return QuotaState(item_quota(item, default), item_used_today(item, now_ms), day_end_ms(now_ms))


# ---------------------------------------------------------------- counting (processor)

def mark(sequence_number: str) -> str:
    """A Kinesis sequence number (decimal digits, up to 128) as a string whose order is numeric order."""
    digits = sequence_number.lstrip("0") or "0"
    return f"{len(digits):03d}{digits}"


@dataclass(frozen=True)
class CountedRecord:
    mark: str
    day: str
    readings: int


@dataclass(frozen=True)
class UsageDelta:
    """What one batch adds to one device's usage: its stored records, oldest first."""

    records: tuple[CountedRecord, ...]

    @classmethod
    def of(cls, records: Iterable[tuple[str, int, int]]) -> UsageDelta:
        """From (sequence number, receivedAt ms, readings) per stored record of the device."""
        counted = sorted((CountedRecord(mark(seq), utc_day(received), n) for seq, received, n in records),
                         key=lambda r: r.mark)
        return cls(tuple(counted))

    @property
    def day(self) -> str:
        return self.records[-1].day

    @property
    def first_mark(self) -> str:
        return self.records[0].mark

    @property
    def last_mark(self) -> str:
        return self.records[-1].mark

    def readings_on(self, day: str, after_mark: str | None = None) -> int:
        return sum(r.readings for r in self.records if r.day == day and (after_mark is None or r.mark > after_mark))


def usage_by_device(decoded: Iterable[tuple[str, Any]], failed_sequences: set[str]) -> dict[str, UsageDelta]:
    """Each device's usage delta from a batch's (sequence number, TelemetryRecord) pairs.

    Only stored records count: a record reported failed was not stored (or will
    be retried), and its readings count when a delivery stores them.
    """
    per_device: dict[str, list[tuple[str, int, int]]] = {}
    for sequence, record in decoded:
        if sequence not in failed_sequences:
            per_device.setdefault(record.device_id, []).append((sequence, record.received_at, len(record.readings)))
    return {device_id: UsageDelta.of(records) for device_id, records in per_device.items()}


def add_usage(request: dict[str, Any], delta: UsageDelta) -> dict[str, Any]:
    """The latest-reading UpdateItem request with this batch's usage folded in (the usual, one-write path).

    Adds to the update: count += readings of the newest day, mark = newest record;
    and to the condition: the stored day is that day (or none yet), and every
    record is above the stored mark. If any of it does not hold, the update
    fails as a whole and ``follow_up`` makes the exact one.
    """
    names = {**request["ExpressionAttributeNames"], "#uday": ATTR_USAGE_DAY, "#ucount": ATTR_USAGE_COUNT,
             "#umark": ATTR_USAGE_MARK}
    values = {**request["ExpressionAttributeValues"], ":uday": {"S": delta.day},
              ":un": {"N": str(delta.readings_on(delta.day))}, ":ufirst": {"S": delta.first_mark},
              ":ulast": {"S": delta.last_mark}}
    set_clause, _, rest = request["UpdateExpression"].partition(" ")
    assert set_clause == "SET" and "ADD" not in rest and "REMOVE" not in rest  # a SET-only expression
    return {
        **request,
        "UpdateExpression": f"SET {rest}, #uday = :uday, #umark = :ulast ADD #ucount :un",
        "ConditionExpression": (
            f"({request['ConditionExpression']}) AND (attribute_not_exists(#uday) OR #uday = :uday)"
            " AND (attribute_not_exists(#umark) OR #umark < :ufirst)"
        ),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if isinstance(value, dict) else None


def _n(item: Mapping[str, Any], name: str) -> int | None:
    value = item.get(name)
    text = value.get("N") if isinstance(value, dict) else None
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def _equals_or_absent(names: dict[str, str], values: dict[str, Any], placeholder: str, attr: str,
                      current: dict[str, Any] | None) -> str:
    names[f"#{placeholder}"] = attr
    if current is None:
        return f"attribute_not_exists(#{placeholder})"
    values[f":old{placeholder}"] = current
    return f"#{placeholder} = :old{placeholder}"


def follow_up(request: dict[str, Any], delta: UsageDelta, old: Mapping[str, Any],
              latest_newer: bool) -> tuple[dict[str, Any] | None, bool]:
    """The exact update after the one-write path failed, from the item DynamoDB returned.

    Returns (request or None when there is nothing to write, whether it moves latest).
    Counts only records above the stored mark; a new UTC day replaces the counter;
    records of a day older than the stored one advance the mark but count nowhere
    (that day is over). The latest reading moves only if ``latest_newer`` (computed
    by the caller from ``old``). The condition pins every value read, so a
    concurrent writer makes it fail rather than double-count.
    """
    old_mark = _s(old, ATTR_USAGE_MARK)
    old_day = _s(old, ATTR_USAGE_DAY)
    fresh = [r for r in delta.records if old_mark is None or r.mark > old_mark]
    if not fresh and not latest_newer:
        return None, False
    names: dict[str, str] = {"#id": request["ExpressionAttributeNames"]["#id"]}
    values: dict[str, Any] = {}
    sets: list[str] = []
    add = ""
    if latest_newer:
        set_clause, _, rest = request["UpdateExpression"].partition(" ")
        sets.append(rest)
        names.update(request["ExpressionAttributeNames"])
        values.update(request["ExpressionAttributeValues"])
    if fresh:
        names["#umark"] = ATTR_USAGE_MARK
        newest_day = max(r.day for r in fresh)
        values[":umark"] = {"S": fresh[-1].mark}
        sets.append("#umark = :umark")
        if old_day is None or newest_day > old_day:
            names.update({"#uday": ATTR_USAGE_DAY, "#ucount": ATTR_USAGE_COUNT})
            values[":uday"] = {"S": newest_day}
            values[":ucount"] = {"N": str(sum(r.readings for r in fresh if r.day == newest_day))}
            sets.append("#uday = :uday, #ucount = :ucount")
        else:
            n = sum(r.readings for r in fresh if r.day == old_day)
            if n:
                names["#ucount"] = ATTR_USAGE_COUNT
                values[":un"] = {"N": str(n)}
                add = " ADD #ucount :un"
    guards = ["attribute_exists(#id)"]
    for placeholder, attr in (("gday", ATTR_USAGE_DAY), ("gmark", ATTR_USAGE_MARK), ("glts", ATTR_LATEST_TS),
                              ("glseq", ATTR_LATEST_SEQ)):
        guards.append(_equals_or_absent(names, values, placeholder, attr, old.get(attr)))
    return {
        "TableName": request["TableName"],
        "Key": request["Key"],
        "UpdateExpression": "SET " + ", ".join(sets) + add,
        "ConditionExpression": " AND ".join(guards),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }, latest_newer


# The processor is the only writer of these attributes and handles a device in one
# batch at a time, so the guarded follow-up fails only if something else (an
# operator's hand edit) changed them in between; a few re-reads settle that.
FOLLOW_UP_ATTEMPTS = 3


def _is_newer(reading: Reading, seen_at: int, old: Mapping[str, Any]) -> bool:
    """The latest-reading rule of storage.update_latest: newer by (ts, seq), or the same
    (ts, seq) received later (a later request's value wins, docs/handlers.md)."""
    lts, lseq, seen = _n(old, ATTR_LATEST_TS), _n(old, ATTR_LATEST_SEQ), _n(old, ATTR_LAST_SEEN_AT)
    if lts is None:
        return True
    return (reading.ts, reading.seq, seen_at) > (lts, -1 if lseq is None else lseq, -1 if seen is None else seen)


def count_after_condition_failure(dynamodb: Any, request: dict[str, Any], delta: UsageDelta, reading: Reading,
                                  failure: ClientError) -> bool:
    """After the one-write path's condition failed: make the exact update; True if latest moved.

    No item in the failure (the device was deleted or never registered) means no
    write, as without quotas: a phantom device must not appear.
    """
    for _ in range(FOLLOW_UP_ATTEMPTS):
        old = failure.response.get("Item")
        if not old:
            return False
        seen_at = int(request["ExpressionAttributeValues"][":seen"]["N"])
        follow, moves_latest = follow_up(request, delta, old, _is_newer(reading, seen_at, old))
        if follow is None:
            return False
        try:
            dynamodb.update_item(**follow)
            return moves_latest
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            failure = exc
    raise failure
