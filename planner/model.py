"""A fleet's monthly bill on one stack: line items, $ per million readings, storage over the TTL.

Inputs: the stack's own settings (``planner.stack``), the fleet (devices, interval, readings per
request, bytes per reading), the meter's per-request figures measured on that stack
(``planner.calibration``) and the dated prices. How each line is derived (a month = 730 h):

- HTTP API: one request per device per interval, metered per 512 KB of body.
- Lambda ingest: one invocation per request. Authorizer: one per device per cache period
  (``authorizerCacheTtlSeconds``; every request when 0 or when the interval is longer).
  Processor: per shard, one invocation per batching window (at least one poll a second) or per
  full batch, whichever is more often; on-demand streams are taken as 4 shards (their initial
  4 MB/s write capacity). Duration is modelled as the meter does: the measured CPU time per
  invocation (processor: per record) stretched by memory / 1,769 MB, plus the stated latency of
  each AWS call, rounded up to 1 ms, at the stack's declared memory.
- Kinesis: the measured records per request and bytes per record, bytes scaled with
  readings x bytes per reading.
- DynamoDB readings table: the measured item writes and bytes per request; an item-per-reading
  layout (about one write per reading measured) scales its writes with readings per request,
  any other layout scales its item size; WRUs by the 1 KB rule. Devices table: one update per
  device per processor batch (per max(interval, batching window)); authorizer reads per cache miss.
- CloudWatch Logs: the measured log bytes per invocation of each function and per request of
  the API's access log (the stack's log level decides them), at the ingestion price.
- Fixed: shard-hours or on-demand stream-hours from the settings; alarm metrics, KMS keys and
  dashboards as provisioned in the measured run.
- Storage: the measured stored bytes per reading (scaled with bytes per reading) for the TTL,
  with PITR when the stack enables it.
The measured figures are exact only at the measured shape (10 readings of about 200 B); other
shapes are extrapolated as above.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from localcloud import billing_units as units
from settings import Settings

from .breakdown import GB, HOURS_PER_MONTH, SECONDS_PER_MONTH, Breakdown, Line, storage_cost
from .prices import Prices

ENVELOPE_BYTES = 60  # {"deviceId":"...","readings":[...]} around the readings
ON_DEMAND_SHARDS = 4  # on-demand starts at 4 MB/s / 4,000 records/s write capacity (aws-facts.md section 2)


class PlanInputError(ValueError):
    """An impossible input; the message names the command-line flag."""


@dataclass(frozen=True)
class Workload:
    devices: int
    interval_s: float
    readings: int
    reading_bytes: int = 200
    peak_factor: float = 2.0

    def validate(self) -> "Workload":
        checks = [
            (self.devices >= 1, "--devices must be at least 1"),
            (self.interval_s > 0, "--interval must be > 0 seconds"),
            (1 <= self.readings <= 500, "--readings must be between 1 and 500 (the ingest limit per request)"),
            (1 <= self.reading_bytes <= 100_000, "--reading-bytes must be between 1 and 100000"),
            (self.peak_factor >= 1, "--peak-factor must be >= 1 (peak request rate / average)"),
        ]
        for ok, message in checks:
            if not ok:
                raise PlanInputError(message)
        return self


@dataclass(frozen=True)
class FunctionLoad:
    role: str
    memory_mb: int
    invocations_per_s: float
    modelled_ms: float  # per invocation
    max_rss_mb: float


@dataclass(frozen=True)
class Derived:
    """The rates the cost lines and the capacity checks share."""

    request_rate: float  # requests/s, average
    record_rate: float  # Kinesis records/s
    record_bytes: float
    shards: int  # provisioned shards, or ON_DEMAND_SHARDS
    functions: dict[str, FunctionLoad]
    readings_writes_per_request: float
    readings_wru_per_write: int
    devices_update_interval_s: float
    devices_wru_per_update: float
    processor_ms_per_record: float  # modelled, at the processor's memory


@dataclass
class Plan:
    stack: str
    workload: Workload
    settings: Settings
    breakdown: Breakdown
    derived: Derived
    calibration: dict[str, Any]


def _function(calibration: dict[str, Any], role: str) -> dict[str, Any]:
    try:
        return dict(calibration["functions"][role])
    except KeyError:
        raise PlanInputError(f"the calibration has no figures for the {role} function; run `make bench-cost`") from None


def _modelled_ms(cpu_ms: float, calls: dict[str, float], memory_mb: int) -> float:
    wait = sum(units.SERVICE_LATENCY_MS.get(op, units.DEFAULT_SERVICE_LATENCY_MS) * n for op, n in calls.items())
    return units.lambda_billed_ms(units.modelled_duration_ms(cpu_ms, wait, memory_mb))


def plan(stack: str, settings: Settings, workload: Workload, calibration: dict[str, Any], prices: Prices) -> Plan:
    w = workload.validate()
    cal_workload = calibration["workload"]
    r0, b0 = float(cal_workload["readingsPerRequest"]), float(cal_workload["readingBytes"])
    payload_ratio = (w.readings * w.reading_bytes) / (r0 * b0)
    month = SECONDS_PER_MONTH
    request_rate = w.devices / w.interval_s
    requests_m = request_rate * month
    readings_m = requests_m * w.readings
    lines: list[Line] = []

    # HTTP API
    http_units = units.http_api_requests(w.readings * w.reading_bytes + ENVELOPE_BYTES)
    lines.append(Line("HTTP API requests", requests_m * http_units, "requests",
                      requests_m * http_units * prices["http_api_per_million_requests"] / 1e6,
                      note="metered per 512 KB"))

    # Kinesis records
    cal_records = float(calibration["kinesisRecordsPerRequest"]) or 1.0
    bytes_per_request = float(calibration["kinesisBytesPerRecord"]) * cal_records * payload_ratio
    # Ingest packs a request's readings into records of up to 25 KB: more records only when the bytes need them.
    records_per_request = max(cal_records, math.ceil(bytes_per_request / units.KINESIS_PUT_UNIT_BYTES))
    record_bytes = bytes_per_request / records_per_request
    record_rate = request_rate * records_per_request
    provisioned = settings.stream.mode == "PROVISIONED"
    shards = settings.stream.shard_count if provisioned else ON_DEMAND_SHARDS

    # Lambda
    fs = settings.functions.by_role()
    window = max(settings.processor.batching_window_s, 1)
    per_shard = record_rate / shards
    proc_rate_per_shard = min(per_shard, max(per_shard / settings.processor.batch_size, 1.0 / window))
    records_per_proc = per_shard / proc_rate_per_shard if proc_rate_per_shard else 0.0
    cache_ttl = settings.api.authorizer_cache_ttl_s
    miss_rate = request_rate if cache_ttl <= 0 else w.devices / max(cache_ttl, w.interval_s)
    rates = {"ingest": request_rate, "authorizer": min(request_rate, miss_rate), "processor": proc_rate_per_shard * shards}
    functions: dict[str, FunctionLoad] = {}
    processor_ms_per_record = 0.0
    log_bytes = requests_m * float(calibration.get("accessLogBytesPerRequest") or 0.0)
    for role in ("authorizer", "ingest", "processor"):
        cal = _function(calibration, role)
        memory = fs[role].memory_mb
        if role == "processor":
            per_record = 1.0 / max(float(cal.get("recordsPerInvocation") or 1.0), 1e-9)
            cpu = cal["cpuMsPerInvocation"] * per_record * records_per_proc
            calls = {op: n * per_record * records_per_proc for op, n in cal["callsPerInvocation"].items()}
            processor_ms_per_record = units.modelled_duration_ms(
                cal["cpuMsPerInvocation"] * per_record,
                units.service_wait_ms({op: n * per_record for op, n in cal["callsPerInvocation"].items()}), memory)
        else:
            cpu, calls = cal["cpuMsPerInvocation"], dict(cal["callsPerInvocation"])
        ms = _modelled_ms(cpu, calls, memory)
        invocations = rates[role] * month
        log_bytes += invocations * float(cal.get("logBytesPerInvocation") or 0.0)
        functions[role] = FunctionLoad(role, memory, rates[role], ms, float(cal.get("maxRssMb") or 0.0))
        lines.append(Line(f"Lambda {role} requests", invocations, "invocations",
                          invocations * prices["lambda_per_million_requests"] / 1e6))
        gb_s = invocations * memory / 1024 * ms / 1000
        lines.append(Line(f"Lambda {role} compute", gb_s, "GB-s", gb_s * prices["lambda_per_gb_second_arm64"],
                          note=f"{memory} MB x {ms:.0f} ms modelled"))

    lines.append(Line("CloudWatch Logs ingestion", log_bytes / GB, "GB",
                      log_bytes / GB * prices["cloudwatch_logs_ingestion_per_gb"],
                      note="function output + API access log, bytes per call as measured"))

    # Kinesis per-use
    records_m = record_rate * month
    if provisioned:
        put_units = records_m * units.kinesis_put_units(math.ceil(record_bytes))
        lines.append(Line("Kinesis PUT payload units", put_units, "units",
                          put_units * prices["kinesis_provisioned_per_million_put_units"] / 1e6,
                          note=f"{record_bytes:.0f} B per record"))
    else:
        gb_in = records_m * units.kinesis_on_demand_bytes(math.ceil(record_bytes)) / GB
        gb_out = records_m * record_bytes / GB
        lines.append(Line("Kinesis on-demand data in", gb_in, "GB", gb_in * prices["kinesis_on_demand_per_gb_in"],
                          note=f"{record_bytes:.0f} B per record, rounded up to 1 KB"))
        lines.append(Line("Kinesis on-demand data out", gb_out, "GB", gb_out * prices["kinesis_on_demand_per_gb_out"]))

    # DynamoDB
    tables = calibration["tables"]
    readings_cal = tables["readings"]
    w0, bw0 = float(readings_cal["writesPerRequest"]), float(readings_cal["bytesPerWrite"])
    item_bytes_per_request = w0 * bw0 * payload_ratio
    writes_per_request = (w0 / r0 * w.readings) if w0 >= 0.9 * r0 else max(w0 * records_per_request / cal_records, 1e-9)
    wru_per_write = units.write_units(0, math.ceil(item_bytes_per_request / writes_per_request))
    wru_m = requests_m * writes_per_request * wru_per_write
    lines.append(Line("DynamoDB readings writes", wru_m, "WRU", wru_m * prices["dynamodb_on_demand_per_million_wru"] / 1e6,
                      note=f"{writes_per_request:.2f} items x {wru_per_write} WRU per request"))
    devices_cal = tables.get("devices", {})
    update_interval = max(w.interval_s, window)
    wru_per_update = max(1.0, float(devices_cal.get("writeUnitsPerWrite") or 1.0))
    updates_m = w.devices * month / update_interval
    lines.append(Line("DynamoDB devices writes", updates_m * wru_per_update, "WRU",
                      updates_m * wru_per_update * prices["dynamodb_on_demand_per_million_wru"] / 1e6,
                      note="latest reading, once per device per batch"))
    rru_m = rates["authorizer"] * month * float(devices_cal.get("readUnitsPerRead") or 1.0)
    lines.append(Line("DynamoDB devices reads", rru_m, "RRU", rru_m * prices["dynamodb_on_demand_per_million_rru"] / 1e6,
                      note="authorizer cache misses, strongly consistent"))

    # Fixed
    if provisioned:
        monthly = shards * HOURS_PER_MONTH * prices["kinesis_provisioned_per_shard_hour"]
        lines.append(Line("Kinesis shard-hours", shards * HOURS_PER_MONTH, "shard-h", monthly, "fixed", f"{shards} shard(s)"))
    else:
        monthly = HOURS_PER_MONTH * prices["kinesis_on_demand_per_stream_hour"]
        lines.append(Line("Kinesis on-demand stream-hours", HOURS_PER_MONTH, "h", monthly, "fixed"))
    fixed = calibration.get("fixed", {})
    for item, count, unit, key in (
        ("CloudWatch alarms", fixed.get("alarmMetrics", 0), "alarm metrics", "cloudwatch_alarm_per_metric_month"),
        ("KMS keys", fixed.get("kmsKeys", 0), "keys", "kms_key_per_month"),
        ("CloudWatch dashboards", fixed.get("dashboards", 0), "dashboards", "cloudwatch_dashboard_per_month"),
    ):
        if count:
            lines.append(Line(item, count, unit, count * prices[key], "fixed"))

    storage_bytes = float(readings_cal["storedBytesPerReading"]) * w.reading_bytes / b0
    storage = storage_cost(storage_bytes, settings.storage.readings_ttl_days, settings.storage.point_in_time_recovery,
                           prices["dynamodb_storage_per_gb_month"], prices["dynamodb_pitr_per_gb_month"])
    breakdown = Breakdown(readings=readings_m, lines=lines, period="month", monthly_readings=readings_m, storage=storage)
    derived = Derived(request_rate=request_rate, record_rate=record_rate, record_bytes=record_bytes, shards=shards,
                      functions=functions, readings_writes_per_request=writes_per_request,
                      readings_wru_per_write=wru_per_write, devices_update_interval_s=update_interval,
                      devices_wru_per_update=wru_per_update, processor_ms_per_record=processor_ms_per_record)
    return Plan(stack=stack, workload=w, settings=settings, breakdown=breakdown, derived=derived,
                calibration=calibration)
