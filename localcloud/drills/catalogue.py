"""One drill per alarm id: the fault that must drive the alarm to ALARM.

Fault classes: the emulator's fault plane (service errors, throttling, partial PutRecords
failures, slow calls), load (requests from unknown devices), concurrency caps (reserved
concurrency 0, as an operator stops a function), crashing execution environments, a backlog
on a slow consumer, a poison batch for the DLQ, an unreachable DLQ, a disabled mapping.
Stopping a drill undoes all of it (``DrillContext.stop_fault``) plus the drill's own
``recover`` (the operator's action, e.g. emptying the DLQ after a replay).

Numbers assume the drill's time scale (runner.py): periods 1/100 of the declared ones, duration
thresholds 1/20 (a 4,000 ms authorizer threshold is 200 ms; 1/50 for the processor's duration and
the iterator ages, which would otherwise take many seconds), counts judged as per-real-period rates.
Each fault overshoots its threshold by a margin so a loaded machine still trips it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import load as traffic
from .context import DYNAMODB, KINESIS, SQS, DrillContext

Step = Callable[[DrillContext], None]


@dataclass(frozen=True)
class Drill:
    fault: str  # what the operator would call it; shown in the report and the runbook
    apply: Step
    recover: Step | None = None  # beyond undoing the fault: the operator's own action
    # The period scale this drill needs at least (None: the run's), for faults slower than a period.
    time_scale: Callable[[DrillContext], float] | None = None
    # Duration thresholds' scale for this drill (None: the run's): a processor near its 60-120 s
    # timeout would otherwise need periods of many seconds.
    threshold_scale: float | None = None
    # Config keys (besides the alarm's own override) whose value changes how this drill plays out;
    # a stack that differs from another only elsewhere need not run it again (differing_alarms).
    depends_on: tuple[str, ...] = ()


def _valid(ctx: DrillContext, clients: int = 1, interval_s: float = 0.15, readings: int = 1) -> None:
    ctx.load(traffic.valid(ctx.device, readings), clients=clients, interval_s=interval_s)


def _unknown(ctx: DrillContext, clients: int = 1, interval_s: float = 0.2, pool: int | None = None) -> None:
    ctx.load(traffic.unknown_devices(pool), clients=clients, interval_s=interval_s)


def _put_error(error: str, status: int = 400) -> Step:
    def apply(ctx: DrillContext) -> None:
        ctx.fault(f"{KINESIS}.PutRecords", error=error, status=status, message="injected by the drill")
        _valid(ctx)
    return apply


def _ddb(operation: str, error: str | None = None, status: int = 400, delay_ms: int = 0,
         load: Step | None = None) -> Step:
    def apply(ctx: DrillContext) -> None:
        rule: dict[str, object] = {"message": "injected by the drill"}
        if error:
            rule.update(error=error, status=status)
        if delay_ms:
            rule["delayMs"] = delay_ms
        ctx.fault(f"{DYNAMODB}.{operation}", **rule)
        (load or _valid)(ctx)
    return apply


def _reserved_zero(role: str, load: Step) -> Step:
    def apply(ctx: DrillContext) -> None:
        ctx.reserve(role, 0)
        load(ctx)
    return apply


def _over_timeout_fraction(ctx: DrillContext, role: str) -> int:
    """A delay (ms) 30% above the role's duration threshold: 80% of its timeout, scaled."""
    spec = ctx.runner.spec(ctx.functions[role])
    return int(spec.timeout_s * 1000 * 0.8 * ctx.monitor.time_threshold_scale * 1.3)


def _latency(ctx: DrillContext) -> None:
    """Enough requests for a p99 (1,000 a real minute) with every one slowed by the stream."""
    ctx.fault(f"{KINESIS}.PutRecords", delayMs=150)
    _valid(ctx, clients=8, interval_s=0.05)


def _slow_lookup(ctx: DrillContext) -> None:
    ctx.fault(f"{DYNAMODB}.GetItem", delayMs=_over_timeout_fraction(ctx, "authorizer"))
    _unknown(ctx, clients=2, interval_s=0.2)


def _slow_put(ctx: DrillContext) -> None:
    ctx.fault(f"{KINESIS}.PutRecords", delayMs=_over_timeout_fraction(ctx, "ingest"))
    _valid(ctx, clients=2, interval_s=0.2)


def _partial_put(ctx: DrillContext) -> None:
    ctx.fault(f"{KINESIS}.PutRecords", failRecords=[0])
    _valid(ctx)


def _authorizer_crashes(ctx: DrillContext) -> None:
    ctx.fault(f"{DYNAMODB}.GetItem", delayMs=600)  # keeps invocations in flight to be killed
    ctx.crash_workers("authorizer", every_s=0.3)
    _unknown(ctx, clients=2, interval_s=0.2)


SLOW_WRITE_MS = 50  # per readings BatchWriteItem (25 items) while the consumer is slowed


def _slow_consumer(ctx: DrillContext) -> None:
    """The processor's writes slow down while a producer writes faster than it now drains. A first
    burst fills what the mapping reads ahead (two batches per lane), so the backlog builds up on
    the stream from the start."""
    ctx.fault(f"{DYNAMODB}.BatchWriteItem", delayMs=SLOW_WRITE_MS)
    mapping = next(m for m in ctx.stack.mappings if m.function == ctx.functions["processor"])
    ctx.put_backlog(2 * mapping.batch_size * max(1, mapping.parallelization_factor))
    ctx.produce(1000)


def _room_for_slow_batches(ctx: DrillContext) -> float:
    """Both iterator ages are published once per batch (per invocation, per read), so a period
    must hold about two slowed batches or breaching periods alternate with empty ones: the
    scale at which a 60 s period lasts 2 x (writes of one batch + 0.5 s)."""
    mapping = next(m for m in ctx.stack.mappings if m.function == ctx.functions["processor"])
    batch_s = -(-mapping.batch_size // 25) * SLOW_WRITE_MS / 1000 + 0.5
    return 2 * batch_s / 60


def _processor_slow_invocations(ctx: DrillContext) -> None:
    """Each invocation writes for longer than 80% of the processor's timeout (scaled). The delay is
    split between the readings write and the device update, so that no single call outlasts the
    processor's 5 s read timeout (which would turn slowness into errors)."""
    half = _over_timeout_fraction(ctx, "processor") // 2 + 1
    ctx.fault(f"{DYNAMODB}.BatchWriteItem", delayMs=half)
    ctx.fault(f"{DYNAMODB}.UpdateItem", delayMs=half)
    _valid(ctx, interval_s=0.3)


def _room_for_slow_invocations(ctx: DrillContext) -> float:
    """A period must hold one whole slow invocation and then some, or the breaching datapoints
    land in every other period and "2 of 3" flaps: 1.5 x the invocation, as a scale of 60 s."""
    return 1.5 * _over_timeout_fraction(ctx, "processor") / 1000 / 60


def _poison_batches(ctx: DrillContext) -> None:
    """Every batch fails until the mapping's retries are used up and it goes to the DLQ."""
    ctx.fault(f"{DYNAMODB}.BatchWriteItem", error="AccessDeniedException", message="injected: writes refused")
    _valid(ctx, interval_s=0.3)


def _unreachable_dlq(ctx: DrillContext) -> None:
    ctx.fault(f"{SQS}.SendMessage", error="AWS.SimpleQueueService.NonExistentQueue",
              message="injected: the DLQ is unreachable")
    _poison_batches(ctx)


def _stalled_consumer(ctx: DrillContext) -> None:
    ctx.disable_mapping()
    _valid(ctx, interval_s=0.15)


_THROTTLE_KEYS = ("apiThrottleRate", "apiThrottleBurst")  # the stage may throttle a drill's load
# What decides how fast the processor drains a backlog.
_CONSUMER_KEYS = ("processorBatchSize", "processorBatchingWindowSeconds", "processorParallelization", "streamMode",
                  "shardCount")

DRILLS: dict[str, Drill] = {
    "api-5xx": Drill("Kinesis PutRecords refused (KMSAccessDeniedException): ingest fails, API answers 500",
                     _put_error("KMSAccessDeniedException")),
    "api-4xx": Drill("requests from unregistered devices (403), 10/s",
                     lambda ctx: _unknown(ctx, clients=2, interval_s=0.2, pool=5), depends_on=_THROTTLE_KEYS),
    "api-latency-p99": Drill("Kinesis PutRecords slowed by 150 ms under 20+ requests/s", _latency,
                             depends_on=_THROTTLE_KEYS),
    "authorizer-errors": Drill("authorizer execution environments killed mid-invocation (as by OOM)",
                               _authorizer_crashes),
    "authorizer-throttles": Drill("authorizer reserved concurrency set to 0",
                                  _reserved_zero("authorizer", lambda ctx: _unknown(ctx, pool=3))),
    "authorizer-duration": Drill("devices-table GetItem slowed to 1.3 x the duration threshold (scaled)",
                                 _slow_lookup, depends_on=("authorizerTimeoutSeconds",)),
    "ingest-errors": Drill("Kinesis PutRecords answers ResourceNotFoundException (stream gone)",
                           _put_error("ResourceNotFoundException")),
    "ingest-throttles": Drill("ingest reserved concurrency set to 0", _reserved_zero("ingest", _valid)),
    "ingest-duration": Drill("Kinesis PutRecords slowed to 1.3 x the duration threshold (scaled)",
                             _slow_put, depends_on=("ingestTimeoutSeconds", "putBudgetSeconds")),
    "processor-errors": Drill("readings BatchWriteItem refused (AccessDeniedException)",
                              _ddb("BatchWriteItem", "AccessDeniedException")),
    "processor-throttles": Drill("processor reserved concurrency set to 0", _reserved_zero("processor", _valid),
                                 depends_on=("processorReservedConcurrency",)),
    "processor-duration": Drill("readings and devices writes slowed to 1.3 x the duration threshold (scaled)",
                                _processor_slow_invocations, time_scale=_room_for_slow_invocations,
                                threshold_scale=0.02, depends_on=("processorTimeoutSeconds",)),
    "processor-iterator-age": Drill("readings writes slowed (BatchWriteItem +50 ms) while 1,000 records/s arrive",
                                    _slow_consumer, threshold_scale=0.02, time_scale=_room_for_slow_batches,
                                 depends_on=_CONSUMER_KEYS),
    "processor-destination-delivery-failures": Drill(
        "poison batches (BatchWriteItem refused) while the DLQ is unreachable (SendMessage fails)",
        _unreachable_dlq,
        depends_on=("processorMaxRetries", "processorMaxRecordAgeSeconds")),
    "stream-throttled-records": Drill("PutRecords entries throttled (partial failure, call answers 200)",
                                      _partial_put),
    "stream-write-throughput-exceeded": Drill(
        "PutRecords calls throttled (ProvisionedThroughputExceededException)",
        _put_error("ProvisionedThroughputExceededException")),
    "stream-iterator-age": Drill("readings writes slowed (BatchWriteItem +50 ms) while 1,000 records/s arrive",
                                 _slow_consumer, threshold_scale=0.02, time_scale=_room_for_slow_batches,
                                    depends_on=_CONSUMER_KEYS),
    "readings-write-throttles": Drill("readings BatchWriteItem throttled (ProvisionedThroughputExceededException)",
                                      _ddb("BatchWriteItem", "ProvisionedThroughputExceededException")),
    "readings-system-errors": Drill("readings BatchWriteItem fails server-side (InternalServerError, 500)",
                                    _ddb("BatchWriteItem", "InternalServerError", status=500)),
    "devices-write-throttles": Drill("devices UpdateItem throttled (ProvisionedThroughputExceededException)",
                                     _ddb("UpdateItem", "ProvisionedThroughputExceededException")),
    "devices-read-throttles": Drill("devices GetItem throttled, new devices calling (authorizer lookups)",
                                    _ddb("GetItem", "ProvisionedThroughputExceededException",
                                         load=lambda ctx: _unknown(ctx))),
    "devices-update-system-errors": Drill("devices UpdateItem fails server-side (InternalServerError, 500)",
                                          _ddb("UpdateItem", "InternalServerError", status=500)),
    "devices-get-system-errors": Drill("devices GetItem fails server-side (InternalServerError, 500)",
                                       _ddb("GetItem", "InternalServerError", status=500,
                                            load=lambda ctx: _unknown(ctx))),
    "processor-stalled": Drill("the processor's event source mapping disabled while devices keep sending",
                               _stalled_consumer, depends_on=("processorBatchingWindowSeconds",)),
    "dlq-messages-visible": Drill("poison batches (BatchWriteItem refused) until one lands in the DLQ",
                                  _poison_batches, recover=lambda ctx: ctx.purge_dlq(),
                                  depends_on=("processorMaxRetries", "processorMaxRecordAgeSeconds")),
}


def differing_alarms(stack: str, base: str, project_dir: Path | None = None) -> list[str]:
    """Alarm ids whose drill could play out differently on ``stack`` than on ``base``: the alarm's
    own override differs, or a config key its drill depends on does."""
    from ..provisioner import REPO_ROOT
    from ..stack_config import load_stack_config

    root = project_dir or REPO_ROOT
    one, other = load_stack_config(root, stack), load_stack_config(root, base)
    project = one.project

    def value(config: Any, key: str) -> str | None:
        return config.values.get(f"{project}:{key}")

    def override(config: Any, alarm_id: str) -> Any:
        return json.loads(value(config, "alarmOverrides") or "{}").get(alarm_id)

    return [alarm_id for alarm_id, drill in DRILLS.items()
            if override(one, alarm_id) != override(other, alarm_id)
            or any(value(one, key) != value(other, key) for key in drill.depends_on)]
