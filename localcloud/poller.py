"""A Kinesis event source mapping: reads the stream shard by shard and invokes the
function with Kinesis events, with Lambda's batching and error handling.

Semantics (https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html,
services-kinesis-batchfailurereporting.html, kinesis-on-failure-destination.html):
- One reader per shard, batches of up to ``batch_size`` records (and under the
  6 MB invoke payload); with a batching window the reader waits up to that long
  for a full batch.
- Function error (or timeout): the whole batch failed. With
  ``bisect_on_error`` the batch is split in two and each half retried; splitting
  does not use up retries. Otherwise the batch is retried until
  ``max_retry_attempts`` (-1: no limit) or ``max_record_age_s`` (-1: no limit).
- With ``report_batch_item_failures`` a returned ``batchItemFailures`` list
  checkpoints at the lowest failed sequence number and retries from there; an
  empty or null/unknown ``itemIdentifier`` fails the whole batch. Without it the
  returned list is ignored.
- A batch that fails for good is described (not copied) to the on-failure
  destination with Lambda's invocation-record shape, and the shard moves on.
  A failed send counts as ``DestinationDeliveryFailures``.
- Throttled invocations are retried with back-off and do not use up retries.
- AWS documents no delay between retries of a failed batch, so a failed batch is
  retried after a short fixed pause (``retry_backoff_s``): the processor must ride
  out transient DynamoDB faults inside its invocation, not by Lambda's spacing.
- ``parallelization_factor`` N: each shard's reader deals records to N lanes by
  a hash of the partition key; lanes invoke concurrently, each strictly in
  order, so per-partition-key order holds and one stuck key blocks only its lane.
Local limits: ``AT_TIMESTAMP`` starts at TRIM_HORIZON because the spec carries no timestamp;
shards are re-listed every ``relist_interval_s`` so resharding is followed.
Metrics: AWS/Lambda IteratorAge (age of the last record of each batch) and
DestinationDeliveryFailures; AWS/Kinesis GetRecords.IteratorAgeMilliseconds, observed
by the reader when ``observe_stream`` is set (one mapping per stream, to count once):
as Kinesis computes it, the age of the last record a GetRecords call returned, 0 for a
call that found nothing new (caught up). A reader that stops reading publishes nothing.
IncomingRecords/IncomingBytes are published where records are put (_service_metrics.py),
not here, so they are counted once and also while nothing reads the stream.
"""
from __future__ import annotations

import base64
import collections
import itertools
import json
import logging
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .model import MappingSpec
from .iam_identity import Credentials, role_client
from .runner import LambdaRunner, MetricSink, NullSink

log = logging.getLogger(__name__)

MAX_INVOKE_PAYLOAD = 6 * 1024 * 1024
RECORD_OVERHEAD = 600  # bytes of JSON around each record's data in the event
WINDOW_POLL_S = 0.25  # how often a shard is read while a batching window fills


@dataclass(frozen=True)
class StreamRecord:
    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds


def lane_of(partition_key: str, lanes: int) -> int:
    """Stable lane for a partition key, so one key's records always share a lane (and its order)."""
    return zlib.crc32(partition_key.encode("utf-8")) % lanes if lanes > 1 else 0


class _Lane:
    """Records of one shard's share of partition keys, waiting to be batched."""

    def __init__(self) -> None:
        self._records: collections.deque[StreamRecord] = collections.deque()
        self._cond = threading.Condition()
        self._first_at = 0.0
        self._closed = False

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: StreamRecord) -> None:
        with self._cond:
            if not self._records:
                self._first_at = time.monotonic()
            self._records.append(record)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def next_batch(self, batch_size: int, window: float, take: Any, stop: threading.Event) -> list[StreamRecord] | None:
        """The next batch once full or its window passed; [] to re-check, None when closed and empty."""
        with self._cond:
            if not self._records:
                if self._closed:
                    return None
                self._cond.wait(0.2)
                return []
            waited = time.monotonic() - self._first_at
            if len(self._records) < batch_size and waited < window and not self._closed and not stop.is_set():
                self._cond.wait(min(WINDOW_POLL_S, window - waited))
                return []
            batch = take(self._records)
            for _ in batch:
                self._records.popleft()
            self._first_at = time.monotonic()
            return batch


def read_age_ms(records: list[StreamRecord], now: float | None = None) -> float:
    """GetRecords.IteratorAgeMilliseconds for one call: "the difference between the current time
    and when the last record of the GetRecords call was written to the stream"; 0 when the call
    returned nothing (the reader is at the tip).
    https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html
    (moto's MillisBehindLatest stays 0 however far behind a reader is, so it is not used.)"""
    if not records:
        return 0.0
    return max(0.0, ((time.time() if now is None else now) - records[-1].arrival) * 1000)


def _iso_ms(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class StreamPoller:
    def __init__(self, mapping: MappingSpec, runner: LambdaRunner, *, endpoint_url: str, region: str,
                 sink: MetricSink | None = None, role_arn: str | None = None, observe_stream: bool = True,
                 credentials: Credentials | None = None,
                 poll_interval_s: float = 0.1, retry_backoff_s: float = 0.05,
                 relist_interval_s: float = 10.0, max_idle_poll_s: float = 0.5) -> None:
        self.mapping = mapping
        self.runner = runner
        self.region = region
        self.sink = sink or NullSink()
        self.role_arn = role_arn or f"arn:aws:iam::123456789012:role/{mapping.function}-role"
        self.observe_stream = observe_stream
        self.poll_interval_s = poll_interval_s
        self.retry_backoff_s = retry_backoff_s
        self.relist_interval_s = relist_interval_s
        self.max_idle_poll_s = max(poll_interval_s, max_idle_poll_s)
        # Lambda reads the stream and sends to the on-failure destination with the function's role.
        self._kinesis = role_client("kinesis", endpoint_url, region, credentials)
        self._sqs = role_client("sqs", endpoint_url, region, credentials)
        self._sns = role_client("sns", endpoint_url, region, credentials)
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._initial: dict[str, str] = {}
        self._supervisor: threading.Thread | None = None
        self.function_arn = runner.spec(mapping.function).arn
        self._lambda_dims = {"FunctionName": mapping.function}
        self._stream_dims = {"StreamName": mapping.stream_name}
        self.stats: collections.Counter[str] = collections.Counter()
        self._stats_lock = threading.Lock()
        self._enabled = threading.Event()  # UpdateEventSourceMapping Enabled (set_enabled)
        self._enabled.set()

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._supervisor is None:
            self._stop.clear()
            # Open the shards' iterators before returning, so that with LATEST a record put right
            # after start() is not missed (the mapping exists from this moment on, as on AWS).
            try:
                for shard_id in self._list_shards():
                    self._initial[shard_id] = self._iterator(shard_id, None)
            except Exception:  # the supervisor retries listing
                log.warning("could not open %s at start", self.mapping.stream_name, exc_info=True)
            self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                                name=f"esm-{self.mapping.uuid[:8]}")
            self._supervisor.start()

    def stop(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
            self._supervisor = None
        for thread in list(self._threads.values()):
            thread.join(timeout=10)
        self._threads.clear()

    def set_enabled(self, enabled: bool) -> None:
        """UpdateEventSourceMapping ``Enabled``: a disabled mapping neither reads nor invokes (a
        batch being invoked finishes); enabling it resumes where it stopped, as on AWS."""
        if enabled:
            self._enabled.set()
        else:
            self._enabled.clear()

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                for shard_id in self._list_shards():
                    if shard_id not in self._threads:
                        thread = threading.Thread(target=self._run_shard, args=(shard_id,), daemon=True,
                                                  name=f"esm-{self.mapping.stream_name}-{shard_id}")
                        self._threads[shard_id] = thread
                        thread.start()
            except Exception:  # emulator hiccup; try again next round
                log.warning("list_shards failed for %s", self.mapping.stream_name, exc_info=True)
            self._stop.wait(self.relist_interval_s)

    def _list_shards(self) -> list[str]:
        shards: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self.mapping.stream_name}
        while True:
            page = self._kinesis.list_shards(**kwargs)
            shards.extend(s["ShardId"] for s in page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    # ---- reading -------------------------------------------------------------------------
    def _iterator(self, shard_id: str, after: str | None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.mapping.stream_name, "ShardId": shard_id}
        if after is not None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after)
        elif self.mapping.starting_position == "LATEST":
            kwargs["ShardIteratorType"] = "LATEST"
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def _run_shard(self, shard_id: str) -> None:
        """Read one shard and deal its records to ``parallelization_factor`` lanes by partition key."""
        factor = max(1, min(10, int(self.mapping.parallelization_factor or 1)))
        lanes = [_Lane() for _ in range(factor)]
        for index, lane in enumerate(lanes):
            thread = threading.Thread(target=self._run_lane, args=(lane,), daemon=True,
                                      name=f"esm-{self.mapping.stream_name}-{shard_id}-lane{index}")
            self._threads[f"{shard_id}#lane{index}"] = thread
            thread.start()
        try:
            self._read_shard(shard_id, lanes)
        finally:
            for lane in lanes:
                lane.close()

    def _read_shard(self, shard_id: str, lanes: list["_Lane"]) -> None:
        iterator: str | None = self._initial.pop(shard_id, None)
        last_read: str | None = None
        idle_wait = self.poll_interval_s
        # Read ahead at most two batches per lane, as Lambda's poller reads a batch at a time: a
        # consumer that falls behind leaves its backlog on the stream, where it is old when read.
        backlog_cap = max(100, 2 * self.mapping.batch_size) * len(lanes)
        window = float(self.mapping.batching_window_s or 0)
        while not self._stop.is_set():
            if not self._enabled.is_set():
                self._stop.wait(self.poll_interval_s)
                continue
            backlog = sum(len(lane) for lane in lanes)
            if backlog >= backlog_cap:
                self._stop.wait(self.poll_interval_s)  # the function is behind: stop reading ahead
                continue
            try:
                if iterator is None:
                    iterator = self._iterator(shard_id, last_read)
                # Read no more than there is room for: a reader that is behind then reads old
                # records, and their age is the stream's iterator age, as on AWS.
                response = self._kinesis.get_records(ShardIterator=iterator,
                                                     Limit=max(1, min(10000, backlog_cap - backlog)))
                iterator = response.get("NextShardIterator")
                fresh = [StreamRecord(shard_id, r["SequenceNumber"], r["PartitionKey"], r["Data"],
                                      r["ApproximateArrivalTimestamp"].timestamp())
                         for r in response.get("Records", [])]
                if self.observe_stream:
                    self.sink.put("AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", self._stream_dims,
                                  read_age_ms(fresh), "Milliseconds")
            except Exception:
                log.warning("reading %s/%s failed", self.mapping.stream_name, shard_id, exc_info=True)
                iterator = None
                self._stop.wait(0.5)
                continue
            if fresh:
                last_read = fresh[-1].sequence_number
                for record in fresh:
                    lanes[lane_of(record.partition_key, len(lanes))].add(record)
            if iterator is None:
                return  # closed shard: everything read; the lanes drain and stop
            if not fresh:
                # Every GetRecords costs the single-process emulator ~3 ms, so an idle shard is
                # polled less and less often (AWS polls each shard about once a second).
                self._stop.wait(idle_wait)
                idle_wait = min(idle_wait * 2, self.max_idle_poll_s)
                continue
            idle_wait = self.poll_interval_s
            if len(fresh) < self.mapping.batch_size:
                self._stop.wait(min(WINDOW_POLL_S, window) if window > 0 else self.poll_interval_s)

    def _run_lane(self, lane: "_Lane") -> None:
        """Batches of one lane, strictly in order: per-partition-key order is kept."""
        window = float(self.mapping.batching_window_s or 0)
        while not self._stop.is_set():
            if not self._enabled.is_set():
                self._stop.wait(self.poll_interval_s)
                continue
            batch = lane.next_batch(self.mapping.batch_size, window, self._take_batch, self._stop)
            if batch is None:
                return
            if batch:
                self.process_batch(batch)

    def _take_batch(self, buffer: "collections.deque[StreamRecord]") -> list[StreamRecord]:
        """Up to batch_size records from the front, within the 6 MB invoke payload."""
        size = 0
        batch: list[StreamRecord] = []
        for record in itertools.islice(buffer, self.mapping.batch_size):
            cost = len(record.data) * 4 // 3 + RECORD_OVERHEAD
            if batch and size + cost > MAX_INVOKE_PAYLOAD:
                break
            size += cost
            batch.append(record)
        return batch

    # ---- invoking ------------------------------------------------------------------------
    def event(self, records: list[StreamRecord]) -> dict[str, Any]:
        """The Kinesis event Lambda sends: https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html"""
        return {"Records": [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": r.partition_key,
                "sequenceNumber": r.sequence_number,
                "data": base64.b64encode(r.data).decode("ascii"),
                "approximateArrivalTimestamp": r.arrival,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{r.shard_id}:{r.sequence_number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self.role_arn,
            "awsRegion": self.region,
            "eventSourceARN": self.mapping.stream_arn,
        } for r in records]}

    def process_batch(self, records: list[StreamRecord]) -> None:
        """Deliver one batch until it succeeds or is discarded; blocks the shard meanwhile."""
        m = self.mapping
        pending: collections.deque[tuple[list[StreamRecord], int, int]] = collections.deque([(records, 0, 0)])
        while pending and not self._stop.is_set():
            segment, retries, invokes = pending.popleft()
            if m.max_record_age_s is not None and m.max_record_age_s >= 0:
                now = time.time()
                expired = 0
                while expired < len(segment) and now - segment[expired].arrival > m.max_record_age_s:
                    expired += 1
                if expired:
                    self._discard(segment[:expired], "RecordAgeExceeded", invokes, None)
                    segment = segment[expired:]
                    if not segment:
                        continue
            self.sink.put("AWS/Lambda", "IteratorAge", self._lambda_dims,
                          max(0.0, (time.time() - segment[-1].arrival) * 1000), "Milliseconds")
            result = self.runner.invoke(m.function, self.event(segment))
            if result.throttled:
                self._count("throttled")
                pending.appendleft((segment, retries, invokes))
                self._stop.wait(min(1.0, self.retry_backoff_s * 4))
                continue
            invokes += 1
            self._count("invocations")
            failed_from = self._failed_from(segment, result)
            if failed_from is None:
                self._count("records_ok", len(segment))
                continue
            self._count("records_ok", failed_from)
            remaining = segment[failed_from:]
            if not result.ok and m.bisect_on_error and len(remaining) > 1:
                half = len(remaining) // 2
                pending.appendleft((remaining[half:], retries, 0))
                pending.appendleft((remaining[:half], retries, 0))
                self._count("bisections")
                continue
            retries += 1
            if m.max_retry_attempts is not None and 0 <= m.max_retry_attempts < retries:
                self._discard(remaining, "RetryAttemptsExhausted", invokes, result)
                continue
            self._count("retries")
            pending.appendleft((remaining, retries, invokes))
            self._stop.wait(self.retry_backoff_s)

    def _failed_from(self, segment: list[StreamRecord], result: Any) -> int | None:
        """Index of the first record to retry, or None when the batch succeeded."""
        if not result.ok:
            return 0
        if not self.mapping.report_batch_item_failures:
            return None
        payload = result.payload
        if not isinstance(payload, dict) or not payload.get("batchItemFailures"):
            return None  # null, {} and [] all mean success
        failures = payload["batchItemFailures"]
        if not isinstance(failures, list):
            return 0
        index = {r.sequence_number: i for i, r in enumerate(segment)}
        positions: list[int] = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or identifier not in index:
                return 0  # empty, null or unknown identifier: the whole batch failed
            positions.append(index[identifier])
        return min(positions)

    def invocation_record(self, records: list[StreamRecord], condition: str, invokes: int,
                          result: Any | None) -> dict[str, Any]:
        """What Lambda sends to the on-failure destination: metadata only, no record data.

        https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
        """
        if result is None:
            response_context: dict[str, Any] = {"statusCode": 0, "executedVersion": "", "functionError": ""}
        else:
            response_context = {"statusCode": 200, "executedVersion": "$LATEST"}
            if not result.ok:
                response_context["functionError"] = "Unhandled"
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": condition,
                "approximateInvokeCount": invokes,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": _iso_ms(time.time()),
            "KinesisBatchInfo": {
                "shardId": records[0].shard_id,
                "startSequenceNumber": records[0].sequence_number,
                "endSequenceNumber": records[-1].sequence_number,
                "approximateArrivalOfFirstRecord": _iso_ms(records[0].arrival),
                "approximateArrivalOfLastRecord": _iso_ms(records[-1].arrival),
                "batchSize": len(records),
                "streamArn": self.mapping.stream_arn,
            },
        }

    def _discard(self, records: list[StreamRecord], condition: str, invokes: int, result: Any | None) -> None:
        # Counted only once the destination step is over, so that anyone who sees the count
        # (tests, `serve`'s stats) can also find the invocation record in the destination.
        try:
            self._deliver_discarded(records, condition, invokes, result)
        finally:
            self._count("records_discarded", len(records))
            self._count("batches_discarded")

    def _deliver_discarded(self, records: list[StreamRecord], condition: str, invokes: int,
                           result: Any | None) -> None:
        body = json.dumps(self.invocation_record(records, condition, invokes, result))
        target = self.mapping.on_failure_arn or ""
        try:
            if self.mapping.on_failure_queue_url:
                self._sqs.send_message(QueueUrl=self.mapping.on_failure_queue_url, MessageBody=body)
            elif target.startswith("arn:aws:sns:"):
                self._sns.publish(TopicArn=target, Message=body)
            else:
                log.warning("discarded %d records of %s (no destination): %s", len(records),
                            self.mapping.stream_name, condition)
                return
            self._count("destination_deliveries")
        except Exception:  # as on AWS, a failed delivery is counted and the shard moves on
            log.warning("on-failure delivery failed", exc_info=True)
            self.sink.put("AWS/Lambda", "DestinationDeliveryFailures", self._lambda_dims, 1.0, "Count")
            self._count("destination_failures")
