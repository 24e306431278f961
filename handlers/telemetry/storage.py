"""DynamoDB writes of the processor: readings items in batches, a device's latest reading conditionally.

The readings items themselves are built by telemetry.compact (many readings per item).

BatchWriteItem takes at most 25 items, rejects a call that names the same key
twice, and may leave items in UnprocessedItems when throttled; those are
retried with backoff. https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html
The devices table's "latest" moves only forward: a conditional UpdateItem
whose ConditionalCheckFailedException simply means "this reading is older"
(or the device no longer exists), which is the normal case for out-of-order
delivery, not an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from .backoff import Backoff
from .device_keys import (
    ATTR_DEVICE_ID,
    ATTR_LAST_SEEN_AT,
    ATTR_LATEST,
    ATTR_LATEST_SEQ,
    ATTR_LATEST_TS,
)
from .usage import UsageDelta, add_usage, count_after_condition_failure
from .validation import Reading

MAX_BATCH_ITEMS = 25

# Transient answers: a call refused whole for capacity, or failed on DynamoDB's
# side (HTTP 5xx: InternalServerError, ServiceUnavailable). Nothing or only some
# of a BatchWriteItem was written, and every write here is idempotent (a put of
# the same item, a conditional update to the same values), so the same requests
# are retried within the processor's own budget, exactly like UnprocessedItems.
# The processor's client has botocore's retries off: standard mode's client-wide
# retry quota (500 tokens, 5 per throttling retry and 14 per other retry, none
# back on failure) drains under sustained throttling, after which 5xx answers are
# not retried at all. https://docs.aws.amazon.com/boto3/latest/guide/retries.html
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html#API_BatchWriteItem_Errors
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
THROTTLING_CODES = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
})
SERVER_ERROR_CODES = frozenset({"InternalServerError", "ServiceUnavailable", "InternalFailure"})
# A call that may or may not have reached DynamoDB; repeating it is safe for the same reason.
TRANSIENT_TRANSPORT_ERRORS = (BotoConnectionError, ConnectTimeoutError, ReadTimeoutError)


class StorageUnavailable(Exception):
    """DynamoDB kept refusing writes after all retries: the whole invocation must fail."""


def is_transient(exc: Exception) -> bool:
    """Worth another try within the budget: throttling, a DynamoDB-side 5xx, a lost connection.

    Anything else (validation, access denied, a missing table) is a bug or a
    deployment fault that no retry can cure, so it is raised at once.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.get("Code") in THROTTLING_CODES or error.get("Code") in SERVER_ERROR_CODES or int(status) >= 500
    return isinstance(exc, TRANSIENT_TRANSPORT_ERRORS)


def _retry_or_raise(exc: Exception, backoff: Backoff, what: str) -> None:
    """Sleep before the next attempt of a transient failure, or raise: the error itself
    when it is not transient, StorageUnavailable once the budget is spent."""
    if not is_transient(exc):
        raise exc
    if not backoff.wait():
        raise StorageUnavailable(f"{what} still failing after retries: {exc}") from exc


def number(value: int | float) -> dict[str, str]:
    """A DynamoDB N attribute. repr() of a float round-trips exactly."""
    text = str(value) if isinstance(value, int) else str(Decimal(repr(value)))
    return {"N": text}


def metrics_map(metrics: dict[str, int | float]) -> dict[str, Any]:
    return {"M": {name: number(value) for name, value in metrics.items()}}


def item_key(item: dict[str, Any]) -> tuple[str, str]:
    return item["deviceId"]["S"], item["readingKey"]["S"]


def dedupe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the last item per key: a later record of the same reading wins, as an overwrite would."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        by_key.pop(item_key(item), None)  # re-insert so the surviving copy keeps the later position
        by_key[item_key(item)] = item
    return list(by_key.values())


@dataclass
class WriteStats:
    items: int = 0
    calls: int = 0
    unprocessed_retries: int = 0
    throttled_calls: int = 0  # calls refused whole by a transient error (throttling, 5xx, transport)


def batch_write(dynamodb: Any, table: str, items: list[dict[str, Any]], backoff: Backoff) -> WriteStats:
    """Write all items (deduplicated) in calls of <= 25, retrying UnprocessedItems and
    transiently failed calls (throttling, 5xx, transport) within the budget.

    Raises StorageUnavailable when the budget is spent, and lets any other
    ClientError through unchanged so the caller can tell item-specific
    ValidationExceptions from a failing service.
    """
    unique = dedupe(items)
    stats = WriteStats(items=len(unique))
    for start in range(0, len(unique), MAX_BATCH_ITEMS):
        requests = [{"PutRequest": {"Item": item}} for item in unique[start : start + MAX_BATCH_ITEMS]]
        while requests:
            stats.calls += 1
            try:
                response = dynamodb.batch_write_item(RequestItems={table: requests})
            except (ClientError, BotoCoreError) as exc:
                _retry_or_raise(exc, backoff, f"BatchWriteItem of {len(requests)} item(s) to {table}")
                stats.throttled_calls += 1
                continue
            requests = response.get("UnprocessedItems", {}).get(table, [])
            if requests:
                stats.unprocessed_retries += 1
                if not backoff.wait():
                    raise StorageUnavailable(f"{len(requests)} item(s) still unprocessed in {table} after retries")
    return stats


def update_latest(dynamodb: Any, table: str, device_id: str, reading: Reading, seen_at: int,
                  backoff: Backoff, usage: UsageDelta | None = None) -> bool:
    """Record the reading as the device's latest if it is newer by (ts, seq), or is the same
    (ts, seq) received later (a later request's value wins, as on read-back); False if not.

    attribute_exists(deviceId) stops an UpdateItem from creating a phantom device
    that was deleted (or never registered) after its readings were accepted.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
    Transient failures are retried within ``backoff``; a retry after a lost answer
    whose update did land fails the condition and returns False, which is harmless.
    With ``usage``, the batch's reading count is added in the same UpdateItem;
    telemetry.usage explains the rare follow-up write and when it happens (a retry
    after a lost answer is recognised by the counted sequence number: no double count).
    """
    while True:
        try:
            return _update_latest_once(dynamodb, table, device_id, reading, seen_at, usage)
        except (ClientError, BotoCoreError) as exc:
            _retry_or_raise(exc, backoff, f"UpdateItem of device {device_id} in {table}")


def _update_latest_once(dynamodb: Any, table: str, device_id: str, reading: Reading, seen_at: int,
                        usage: UsageDelta | None) -> bool:
    request: dict[str, Any] = {
        "TableName": table,
        "Key": {ATTR_DEVICE_ID: {"S": device_id}},
        "UpdateExpression": "SET #lts = :ts, #lseq = :seq, #latest = :latest, #seen = :seen",
        "ConditionExpression": (
            "attribute_exists(#id) AND (attribute_not_exists(#lts) OR #lts < :ts"
            " OR (#lts = :ts AND (attribute_not_exists(#lseq) OR #lseq < :seq"
            " OR (#lseq = :seq AND (attribute_not_exists(#seen) OR #seen < :seen)))))"
        ),
        "ExpressionAttributeNames": {
            "#id": ATTR_DEVICE_ID,
            "#lts": ATTR_LATEST_TS,
            "#lseq": ATTR_LATEST_SEQ,
            "#latest": ATTR_LATEST,
            "#seen": ATTR_LAST_SEEN_AT,
        },
        "ExpressionAttributeValues": {
            ":ts": number(reading.ts),
            ":seq": number(reading.seq),
            ":latest": {"M": {"ts": number(reading.ts), "seq": number(reading.seq), "metrics": metrics_map(reading.metrics)}},
            ":seen": number(seen_at),
        },
    }
    try:
        dynamodb.update_item(**(request if usage is None else add_usage(request, usage)))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False if usage is None else count_after_condition_failure(dynamodb, request, usage, reading, exc)
        raise
    return True
