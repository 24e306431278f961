"""The processor's logic: Kinesis batch -> readings table + each device's latest reading.

Failure policy (the event source mapping must have ReportBatchItemFailures,
bounded retries, bisect-on-error and an on-failure destination):
- A record that can never succeed (undecodable, wrong version or shape, or an
  item DynamoDB rejects with ValidationException) is logged with its sequence
  number and returned in batchItemFailures. Lambda checkpoints just before the
  lowest failed sequence number and retries from there a bounded number of
  times (settings refuse infinite retries and record age), then sends the
  batch's metadata (shard, sequence range, not the data) to the on-failure
  destination and moves on: the shard is held only for those bounded retries.
  Valid records of the same batch are written on the first attempt (re-writing
  them on a retry is harmless: an item's key is derived from its readings, see
  telemetry.compact), and
  the poison record's sequence number and reason are in the log.
  https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html
- Transient DynamoDB trouble (throttling, UnprocessedItems, 5xx, a lost
  connection) is retried inside the invocation, with jittered backoff, until one
  deadline shared by every call of the invocation (see storage.is_transient).
  Relying on Lambda's retries of the batch instead would spend them: Lambda
  documents no delay between them, bisect splits the batch down to single
  records, and after MaximumRetryAttempts the batch goes to the DLQ.
- If DynamoDB is still failing at that deadline, or fails in a way no retry
  cures (access or table errors), the function raises. The invocation then
  counts in the Lambda Errors metric, which the "processor Errors" alarm watches;
  reporting every record as failed instead would look like a healthy function
  to that alarm.
"""
from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .backoff import Backoff
from .config import ProcessorConfig
from .compact import build_item, canonical, compress, groups
from .records import PoisonRecord, TelemetryRecord, decode
from .storage import batch_write, item_key, update_latest
from .usage import usage_by_device
from .validation import Reading

_log = logging.getLogger("telemetry.process")


@dataclass
class BatchOutcome:
    failures: list[str] = field(default_factory=list)
    stored: int = 0  # readings in the items written
    latest_updated: int = 0
    items: int = 0  # readings-table items written (one write request each)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failures]}


def _is_validation_error(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ValidationException")


def process_batch(
    event: dict[str, Any],
    *,
    dynamodb: Any,
    config: ProcessorConfig,
    new_backoff: Callable[[], Backoff],
    log: Any = _log,
) -> BatchOutcome:
    outcome = BatchOutcome()
    decoded: list[tuple[str, TelemetryRecord]] = []
    for raw in event.get("Records") or []:
        kinesis = raw.get("kinesis") or {}
        sequence = str(kinesis.get("sequenceNumber") or "")
        if not sequence:
            # An empty identifier fails the whole batch; nothing more precise is possible.
            raise ValueError("Kinesis record without sequenceNumber")
        try:
            data = base64.b64decode(kinesis.get("data") or "", validate=True)
            decoded.append((sequence, decode(data, kinesis.get("partitionKey"))))
        except (PoisonRecord, binascii.Error, ValueError) as exc:
            log.error("poison record", extra={"sequenceNumber": sequence, "reason": str(exc)})
            outcome.failures.append(sequence)

    origin: dict[tuple[str, str], str] = {}
    counts: dict[tuple[str, str], int] = {}
    items: list[dict[str, Any]] = []
    for sequence, record in decoded:
        for item in record_items(record, config.ttl_days):
            origin[item_key(item)] = sequence  # the last record naming a key is the one that wins
            counts[item_key(item)] = int(item["count"]["N"])
            items.append(item)
    failed_keys = _write_readings(dynamodb, config.readings_table, items, new_backoff, log)
    failed_sequences = {origin[key] for key in failed_keys}
    outcome.items = len(counts) - len(failed_keys)
    outcome.stored = sum(n for key, n in counts.items() if key not in failed_keys)

    latest: dict[str, tuple[Reading, int, str]] = {}
    for sequence, record in decoded:
        if sequence in failed_sequences:
            continue
        for reading in record.readings:
            best = latest.get(record.device_id)
            # (ts, seq) first; for the same (ts, seq) the later arrival wins, as on read-back.
            if best is None or (reading.ts, reading.seq, record.received_at) > (best[0].ts, best[0].seq, best[1]):
                latest[record.device_id] = (reading, record.received_at, sequence)
    usage = usage_by_device(decoded, failed_sequences)
    for device_id, (reading, received_at, sequence) in latest.items():
        try:
            if update_latest(dynamodb, config.devices_table, device_id, reading, received_at, new_backoff(),
                             usage[device_id]):
                outcome.latest_updated += 1
        except ClientError as exc:
            if not _is_validation_error(exc):
                raise
            log.error("latest update rejected", extra={"deviceId": device_id, "sequenceNumber": sequence, "error": str(exc)})
            failed_sequences.add(sequence)

    for sequence in sorted(failed_sequences, key=lambda s: (len(s), s)):  # numeric order of digit strings
        log.error("record not stored", extra={"sequenceNumber": sequence})
        outcome.failures.append(sequence)
    return outcome


def record_items(record: TelemetryRecord, ttl_days: int) -> list[dict[str, Any]]:
    """The readings-table items of one record: one per group (telemetry.compact).

    A version-2 record from ingest is exactly one group in canonical form; its zlib
    bytes are stored as received (compressed once, at ingest). Anything else (a
    version-1 record, or a record cut differently) is regrouped and compressed here.
    """
    parts = groups(record.readings)
    if record.raw is not None and record.blob is not None and len(parts) == 1 and canonical(parts[0]) == record.raw:
        return [build_item(record.device_id, parts[0], record.raw, record.blob, record.received_at, ttl_days)]
    out = []
    for group in parts:
        raw = canonical(group)
        out.append(build_item(record.device_id, group, raw, compress(raw), record.received_at, ttl_days))
    return out


def _write_readings(
    dynamodb: Any,
    table: str,
    items: list[dict[str, Any]],
    new_backoff: Callable[[], Backoff],
    log: Any,
) -> set[tuple[str, str]]:
    """Write all items; return the keys DynamoDB rejected as invalid (item-specific failures)."""
    if not items:
        return set()
    try:
        batch_write(dynamodb, table, items, new_backoff())
        return set()
    except ClientError as exc:
        if not _is_validation_error(exc):
            raise
        log.warning("batch rejected as invalid; isolating the bad items", extra={"error": str(exc)})
    failed: set[tuple[str, str]] = set()
    for item in {item_key(i): i for i in items}.values():
        try:
            batch_write(dynamodb, table, [item], new_backoff())
        except ClientError as exc:
            if not _is_validation_error(exc):
                raise
            failed.add(item_key(item))
    return failed
