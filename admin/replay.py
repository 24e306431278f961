"""Replay the processor's DLQ: read each failed batch back from the stream and store it.

The processor's event source mapping sends a batch it gave up on to the DLQ as
an invocation record: metadata only (shard, first and last sequence number,
batch size), never the data.
https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
Replay reads that range back from the stream (admin.stream_range) and hands the
records, in the Kinesis event shape Lambda sends
(https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html), to the
processor's own ``process_batch`` with the processor's own configuration. Writes
are keyed and the latest-reading update is conditional, so a record replayed
twice (or replayed after the processor stored part of its batch) is stored once.

A DLQ message is deleted only when every record of its range was read back and
stored. Otherwise it is kept and made visible again at the end of the run, with
the reason in the report:
- ``expired``: the stream's retention already took (part of) the range; the
  readings in it are lost and the report shows the lost range. What is left is
  stored. ``discard_expired`` deletes such a message once the loss is reported.
- ``failing``: records the processor still refuses (with its reason) or a
  service error; nothing is lost while the message stays in the DLQ (but the
  stream's retention keeps running).
With ``dry_run`` nothing is written and nothing deleted: ranges are read and
reported (``would-replay``); records are not decoded, so a poison record shows
up only in a real replay.

Messages stay invisible (``VISIBILITY_TIMEOUT_S``) while a run handles them, so
two runs never replay the same message at once, and a run that dies hands them
back after that timeout.
"""
from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from handlers.telemetry.backoff import Backoff, RetryPolicy
from handlers.telemetry.config import ProcessorConfig
from handlers.telemetry.process import process_batch

from .stream_range import RangeRead, RangeReadError, read_range

VISIBILITY_TIMEOUT_S = 300
# Retries of DynamoDB throttling for one message share this budget, as one invocation's do.
STORE_BUDGET_S = 20.0
# process_batch is called with at most this many records (a range can hold more than a batch
# when the mapping's parallelization factor is above 1: the range then also holds records of
# other lanes, which are stored again harmlessly).
CHUNK = 500
RECEIVE_WAIT_S = 1  # long polling: an empty answer then means the queue has no visible message

REPLAYED, WOULD_REPLAY, EXPIRED, FAILING = "replayed", "would-replay", "expired", "failing"


class ReplaySetupError(Exception):
    """The replay cannot start (missing output, processor configuration unreadable)."""


@dataclass(frozen=True)
class BatchInfo:
    """The ``KinesisBatchInfo`` of an on-failure invocation record."""

    shard_id: str
    start: str
    end: str
    batch_size: int
    stream_arn: str
    condition: str

    @classmethod
    def from_body(cls, body: str) -> BatchInfo:
        """Parse a DLQ message body; ValueError naming what is wrong if it is not an invocation record."""
        try:
            doc = json.loads(body)
        except ValueError:
            raise ValueError("the message body is not JSON") from None
        info = doc.get("KinesisBatchInfo") if isinstance(doc, dict) else None
        if not isinstance(info, dict):
            raise ValueError("the message has no KinesisBatchInfo: not a Kinesis on-failure record")
        values: dict[str, str] = {}
        for key in ("shardId", "startSequenceNumber", "endSequenceNumber", "streamArn"):
            value = info.get(key)
            if not isinstance(value, str) or not value:
                raise ValueError(f"KinesisBatchInfo.{key} is missing")
            values[key] = value
        for key in ("startSequenceNumber", "endSequenceNumber"):
            if not values[key].isdigit():
                raise ValueError(f"KinesisBatchInfo.{key} {values[key]!r} is not a sequence number")
        if int(values["startSequenceNumber"]) > int(values["endSequenceNumber"]):
            raise ValueError("KinesisBatchInfo.startSequenceNumber is after endSequenceNumber")
        size = info.get("batchSize")
        context = doc.get("requestContext") if isinstance(doc.get("requestContext"), dict) else {}
        return cls(
            shard_id=values["shardId"], start=values["startSequenceNumber"], end=values["endSequenceNumber"],
            batch_size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
            stream_arn=values["streamArn"], condition=str(context.get("condition", "")),
        )


@dataclass
class MessageReport:
    message_id: str
    status: str = FAILING
    shard_id: str = ""
    start: str = ""
    end: str = ""
    batch_size: int = 0
    condition: str = ""
    records_read: int = 0
    readings_stored: int = 0
    expired: dict[str, Any] | None = None
    failing: list[dict[str, str]] = field(default_factory=list)
    reason: str = ""
    deleted: bool = False
    storage_failed: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReplayReport:
    dry_run: bool
    messages: list[MessageReport] = field(default_factory=list)
    stopped: str = ""  # why the run stopped before the DLQ was empty (storage failing)

    @property
    def clean(self) -> bool:
        """True when every message handled was replayed (or, dry, would be) in full."""
        return not self.stopped and all(m.status in (REPLAYED, WOULD_REPLAY) for m in self.messages)

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for m in self.messages:
            counts[m.status] = counts.get(m.status, 0) + 1
        return {"dryRun": self.dry_run, "messages": [m.to_json() for m in self.messages], "counts": counts,
                "stopped": self.stopped,
                "deleted": sum(m.deleted for m in self.messages),
                "recordsRead": sum(m.records_read for m in self.messages),
                "readingsStored": sum(m.readings_stored for m in self.messages)}


@dataclass(frozen=True)
class Target:
    """Where replay reads and writes: from the stack outputs and the processor's configuration."""

    queue_url: str
    stream_name: str
    stream_arn: str
    config: ProcessorConfig
    role_arn: str
    region: str


def processor_target(outputs: dict[str, Any], lambda_client: Any, region: str) -> Target:
    """The replay target; the processor's configuration is read from the function itself
    (lambda:GetFunctionConfiguration) so that tables and TTL are exactly the processor's."""
    missing = [k for k in ("dlqUrl", "streamName", "streamArn", "functionNames") if not outputs.get(k)]
    if missing:
        raise ReplaySetupError(f"the stack outputs lack {', '.join(missing)}; give the file of `pulumi stack output --json`"
                               " or the local cloud's .localcloud/stack.json")
    names = outputs["functionNames"]
    function = names.get("processor") if isinstance(names, dict) else None
    if not isinstance(function, str) or not function:
        raise ReplaySetupError("the stack outputs' functionNames has no processor")
    described = lambda_client.get_function_configuration(FunctionName=function)
    env = ((described.get("Environment") or {}).get("Variables")) or {}
    try:
        config = ProcessorConfig.from_env(env)
    except ValueError as exc:
        raise ReplaySetupError(f"the processor {function}'s configuration is unusable: {exc}") from None
    return Target(queue_url=outputs["dlqUrl"], stream_name=outputs["streamName"], stream_arn=outputs["streamArn"],
                  config=config, role_arn=str(described.get("Role", "")), region=region)


class _ReasonLog:
    """Stands in for the processor's logger to keep, per sequence number, why a record was not stored."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}

    def _note(self, message: str, *_args: Any, extra: dict[str, Any] | None = None, **_kw: Any) -> None:
        extra = extra or {}
        sequence = extra.get("sequenceNumber")
        if sequence and sequence not in self.reasons:
            detail = extra.get("reason") or extra.get("error") or ""
            self.reasons[str(sequence)] = f"{message}: {detail}" if detail else str(message)

    error = warning = info = debug = exception = _note


class Replayer:
    def __init__(self, target: Target, *, sqs: Any, kinesis: Any, dynamodb: Any, dry_run: bool = False,
                 discard_expired: bool = False, max_messages: int | None = None,
                 store_budget_s: float = STORE_BUDGET_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.sqs, self.kinesis, self.dynamodb = sqs, kinesis, dynamodb
        self.dry_run = dry_run
        self.discard_expired = discard_expired
        self.max_messages = max_messages
        self.store_budget_s = store_budget_s
        self.clock = clock

    def run(self, on_message: Callable[[MessageReport], None] | None = None) -> ReplayReport:
        """Handle DLQ messages until the queue shows none (or ``max_messages``); kept ones become visible again.

        When storing fails outright (DynamoDB down beyond the processor's retries, access
        denied), the run stops: every further message would wait out the same budget and fail
        the same way. The messages not handled stay in the DLQ untouched.
        """
        report = ReplayReport(dry_run=self.dry_run)
        received: dict[str, str] = {}  # message id -> receipt handle, until deleted
        try:
            for message in self._messages(received):
                result = self.handle(message)
                if result.deleted:
                    received.pop(message["MessageId"], None)
                report.messages.append(result)
                if on_message is not None:
                    on_message(result)
                if result.storage_failed:
                    report.stopped = f"stopped after message {result.message_id}: {result.reason}"
                    break
        finally:
            for handle in received.values():  # back to the queue now, not in VISIBILITY_TIMEOUT_S: the alarm and the next run see them
                try:
                    self.sqs.change_message_visibility(QueueUrl=self.target.queue_url, ReceiptHandle=handle,
                                                       VisibilityTimeout=0)
                except (ClientError, BotoCoreError):
                    pass  # it comes back by itself once the visibility timeout passes
        return report

    def _messages(self, received: dict[str, str]) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()
        handled = 0
        while self.max_messages is None or handled < self.max_messages:
            want = 10 if self.max_messages is None else min(10, self.max_messages - handled)
            batch = self.sqs.receive_message(
                QueueUrl=self.target.queue_url, MaxNumberOfMessages=want, WaitTimeSeconds=RECEIVE_WAIT_S,
                VisibilityTimeout=VISIBILITY_TIMEOUT_S,
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in seen]  # SQS delivers at least once
            if not fresh:
                return
            received.update((m["MessageId"], m["ReceiptHandle"]) for m in fresh)
            for message in fresh:
                seen.add(message["MessageId"])
                handled += 1
                yield message

    def handle(self, message: dict[str, Any]) -> MessageReport:
        """Replay one DLQ message; delete it only if every record of its range is stored."""
        result = MessageReport(message_id=message["MessageId"])
        try:
            info = BatchInfo.from_body(message.get("Body", ""))
        except ValueError as exc:
            result.reason = f"unreadable DLQ message: {exc}"
            return result
        result.shard_id, result.start, result.end = info.shard_id, info.start, info.end
        result.batch_size, result.condition = info.batch_size, info.condition
        if info.stream_arn != self.target.stream_arn:
            result.reason = f"the batch is from stream {info.stream_arn}, not this stack's {self.target.stream_arn}"
            return result
        try:
            read = read_range(self.kinesis, self.target.stream_name, info.shard_id, info.start, info.end)
        except RangeReadError as exc:
            result.reason = f"cannot read the range back: {exc}"
            return result
        except (ClientError, BotoCoreError) as exc:
            result.reason = f"cannot read the range back: {_describe(exc)}"
            return result
        result.records_read = len(read.records)
        result.expired = read.expired
        lost = _lost_text(read, info)
        if self.dry_run:
            result.status = EXPIRED if lost else WOULD_REPLAY
            result.reason = lost
            return result
        if read.records:
            problem = self._store(read.records, info.shard_id, result)
            if problem:
                result.reason = "; ".join(p for p in (problem, lost) if p)
                return result
        if lost:
            result.status, result.reason = EXPIRED, lost
            if not self.discard_expired:
                return result
        return self._delete(message, result)

    def _store(self, records: list[dict[str, Any]], shard_id: str, result: MessageReport) -> str:
        """Store the records through the processor's code; '' when all are stored, else why not."""
        deadline = self.clock() + self.store_budget_s

        def new_backoff() -> Backoff:
            return Backoff(RetryPolicy(budget_s=max(0.0, deadline - self.clock())))

        log = _ReasonLog()
        failures: list[str] = []
        for first in range(0, len(records), CHUNK):
            try:
                outcome = process_batch(self._event(records[first:first + CHUNK], shard_id), dynamodb=self.dynamodb,
                                        config=self.target.config, new_backoff=new_backoff, log=log)
            except Exception as exc:  # noqa: BLE001 - the processor raises when DynamoDB itself fails
                result.storage_failed = True
                return f"storing failed: {_describe(exc)}"
            result.readings_stored += outcome.stored
            failures.extend(outcome.failures)
        if failures:
            result.failing = [{"sequenceNumber": s, "reason": log.reasons.get(s, "not stored")} for s in failures]
            return f"{len(failures)} record(s) still refused by the processor"
        return ""

    def _event(self, records: list[dict[str, Any]], shard_id: str) -> dict[str, Any]:
        """The Kinesis event Lambda sends: https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html"""
        return {"Records": [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": r["PartitionKey"],
                "sequenceNumber": r["SequenceNumber"],
                "data": base64.b64encode(r["Data"]).decode("ascii"),
                "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{r['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self.target.role_arn,
            "awsRegion": self.target.region,
            "eventSourceARN": self.target.stream_arn,
        } for r in records]}

    def _delete(self, message: dict[str, Any], result: MessageReport) -> MessageReport:
        try:
            self.sqs.delete_message(QueueUrl=self.target.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (ClientError, BotoCoreError) as exc:
            result.status = FAILING
            result.reason = "; ".join(p for p in (result.reason, f"stored, but the message was not deleted: {_describe(exc)}") if p)
            return result
        result.deleted = True
        if result.status != EXPIRED:
            result.status = REPLAYED
        return result


def _lost_text(read: RangeRead, info: BatchInfo) -> str:
    if read.expired is None:
        return ""
    where = f"{info.shard_id} {read.start}..{read.end}"
    if read.shard_missing:
        return f"expired: the shard is gone ({read.shard_missing}); readings of {where} ({info.batch_size} record(s)) are lost"
    if "before" in read.expired:
        return (f"expired: records of {info.shard_id} from {read.start} up to (not including) {read.expired['before']}"
                f" are past the stream's retention and lost; {len(read.records)} of {info.batch_size} record(s) left")
    return f"expired: every record of {where} ({info.batch_size} record(s)) is past the stream's retention and lost"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
