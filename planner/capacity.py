"""Capacity checks of a plan against the stack's config: each says the number it compares, the
limit, and what to change. Rates are the average times ``--peak-factor`` (devices are not evenly
spread in time; 2 by default).

Limits (aws-facts.md section 2, from AWS's documentation):
- Kinesis shard write: 1 MB/s or 1,000 records/s per shard; on-demand starts at 4 MB/s and
  4,000 records/s and scales to twice the previous 30-day peak.
- HTTP API stage throttle: ``apiThrottleRate`` requests/s sustained, ``apiThrottleBurst`` at once.
- Lambda concurrency = rate x duration; reserved concurrency caps a function (unreserved ones
  share the account's 1,000). The processor runs one batch per shard x parallelization factor.
- DynamoDB partition: 1,000 write units/s (on-demand tables included); a device's readings
  share one partition key, so the busiest device must stay below it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .model import Plan

MB = 1024 * 1024
SHARD_BYTES_PER_S = 1 * MB
SHARD_RECORDS_PER_S = 1000
ACCOUNT_CONCURRENCY = 1000
PARTITION_WCU = 1000


@dataclass(frozen=True)
class Check:
    name: str
    compares: str  # what the number is
    value: float
    limit: float
    unit: str
    advice: str  # what to change when it does not fit (or how close it is)
    advisory: bool = False  # a warning only: exceeding it degrades gracefully (e.g. 429 + device retry)

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    @property
    def use(self) -> float:
        return self.value / self.limit if self.limit else math.inf


def checks(p: Plan) -> list[Check]:
    s, d, peak = p.settings, p.derived, p.workload.peak_factor
    out: list[Check] = []
    provisioned = s.stream.mode == "PROVISIONED"
    bytes_s = d.record_rate * d.record_bytes * peak
    records_s = d.record_rate * peak
    stream_what = f"{d.shards} shard(s)" if provisioned else "on-demand (initial 4 MB/s)"
    need_bytes = math.ceil(bytes_s / SHARD_BYTES_PER_S)
    need_records = math.ceil(records_s / SHARD_RECORDS_PER_S)
    fix = (f"needs shardCount >= {max(need_bytes, need_records, 1)}, or streamMode ON_DEMAND" if provisioned
           else "on-demand grows to twice its previous peak; above that, PROVISIONED with enough shards")
    out.append(Check("Kinesis write throughput", f"peak bytes/s into the stream vs {stream_what} x 1 MB/s",
                     bytes_s, d.shards * SHARD_BYTES_PER_S, "B/s", fix))
    out.append(Check("Kinesis write records", f"peak records/s vs {stream_what} x 1,000 records/s",
                     records_s, d.shards * SHARD_RECORDS_PER_S, "records/s", fix))
    out.append(Check("HTTP API stage throttle (rate)", "peak requests/s vs apiThrottleRate",
                     d.request_rate * peak, s.api.throttle_rate, "req/s",
                     f"needs apiThrottleRate >= {math.ceil(d.request_rate * peak)} (the account allows 10,000)"))
    out.append(Check("HTTP API stage throttle (burst)", "devices sending at the same instant (e.g. after an outage) "
                     "vs apiThrottleBurst", p.workload.devices, s.api.throttle_burst, "requests",
                     f"beyond it devices get 429 and retry; apiThrottleBurst >= {p.workload.devices} "
                     "accepts them all at once", advisory=True))
    fs = s.functions.by_role()
    for role in ("ingest", "authorizer"):
        load = d.functions[role]
        needed = load.invocations_per_s * peak * load.modelled_ms / 1000
        reserved = fs[role].reserved_concurrency
        limit = reserved if reserved >= 0 else ACCOUNT_CONCURRENCY
        out.append(Check(f"Lambda {role} concurrency",
                         f"peak invocations/s x modelled {load.modelled_ms:.0f} ms vs "
                         + (f"reserved {reserved}" if reserved >= 0 else "the account's unreserved 1,000"),
                         needed, limit, "concurrent",
                         f"needs {role}ReservedConcurrency >= {math.ceil(needed)} (or -1, unreserved)"))
    processor_needed = d.shards * s.processor.parallelization_factor
    reserved = fs["processor"].reserved_concurrency
    out.append(Check("Lambda processor concurrency", "shards x processorParallelization vs "
                     + (f"reserved {reserved}" if reserved >= 0 else "the account's unreserved 1,000"),
                     processor_needed, reserved if reserved >= 0 else ACCOUNT_CONCURRENCY, "concurrent",
                     f"needs processorReservedConcurrency >= {processor_needed}, or a lower processorParallelization"))
    throughput = (d.shards * s.processor.parallelization_factor * 1000 / d.processor_ms_per_record
                  if d.processor_ms_per_record else math.inf)
    out.append(Check("Lambda processor throughput",
                     f"peak records/s vs shards x processorParallelization x 1000 / modelled "
                     f"{d.processor_ms_per_record:.1f} ms per record", records_s, throughput, "records/s",
                     "if short: more processorMemoryMb (CPU), processorParallelization or shards"))
    readings_wcu = d.readings_writes_per_request * d.readings_wru_per_write / p.workload.interval_s * peak
    out.append(Check("DynamoDB readings partition (busiest device)",
                     "write units/s into one device's partition vs 1,000 WCU per partition",
                     readings_wcu, PARTITION_WCU, "WCU/s",
                     f"a device sending more often than every "
                     f"{d.readings_writes_per_request * d.readings_wru_per_write * peak / PARTITION_WCU:.3f} s "
                     "would need its readings spread over more partition keys"))
    out.append(Check("DynamoDB devices item (busiest device)", "latest-reading updates/s of one device vs 1,000 WCU",
                     d.devices_wru_per_update / d.devices_update_interval_s * peak, PARTITION_WCU, "WCU/s",
                     "at most one update per device per processor batch: nothing to change"))
    memory_checks = []
    for role, load in d.functions.items():
        memory_checks.append(Check(f"Lambda {role} memory", "peak RSS measured by the meter vs declared memory",
                                   load.max_rss_mb, fs[role].memory_mb, "MB",
                                   f"needs {role}MemoryMb >= {math.ceil(load.max_rss_mb * 1.25)} (peak + 25 %)"))
    return out + memory_checks
