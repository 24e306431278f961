"""The cost meter: billable units AWS would charge for what the local cloud actually did.

Three sources, combined by :func:`collect` into one JSON-able snapshot:

* this process's data plane (:class:`UsageMeter`, fed by the gateway and the Lambda runner):
  HTTP API requests (metered per 512 KB), bytes written to each log group (Lambda output and the
  API's access log: CloudWatch Logs ingestion), and per function the invocations, the local
  wall-clock duration and the *modelled AWS duration*: the invocation's CPU time, stretched by
  the function's CPU share (memory / 1,769 MB), plus a stated latency per AWS call
  (:data:`localcloud.billing_units.SERVICE_LATENCY_MS`), each rounded up to 1 ms, times the
  declared memory = GB-seconds. Both figures are kept, so a report can show them side by side;
* the emulator process (:mod:`localcloud.meter_emulator`, read over HTTP): DynamoDB write and
  read units by item size, Kinesis records / PUT payload units / on-demand bytes, SQS requests;
* the provisioned stack (:func:`fixed_resources`): what bills by the hour or month whatever the
  traffic: stream shards or on-demand stream hours, alarm metrics, KMS keys, dashboards, and
  which tables have point-in-time recovery.

Prices are applied elsewhere (``planner.costing``): this module only counts.
A run's usage is ``delta(collect() before, collect() after)``.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

from . import billing_units as units
from .meter_emulator import USAGE_PATH
from .model import ProvisionedStack


class UsageMeter:
    """Counts the data plane's billable units; thread-safe (the gateway serves from many threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: dict[str, float] = {"requests": 0, "billedRequests": 0, "requestBytes": 0}
        self._functions: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, int] = {}  # log group -> bytes written (Lambda output, API access log)

    def http_request(self, request_bytes: int) -> None:
        """Every answered request, errors included (whether AWS bills a throttled 429 or a denied
        401/403 on HTTP APIs was not confirmed: counting them errs on the expensive side)."""
        with self._lock:
            self._http["requests"] += 1
            self._http["billedRequests"] += units.http_api_requests(request_bytes)
            self._http["requestBytes"] += request_bytes

    def log_bytes(self, group: str, n: int) -> None:
        """Bytes a function (or the API's access log) wrote to its log: CloudWatch Logs ingestion.
        Locally the platform lines (START/END/REPORT) are shorter than AWS's, so this undercounts."""
        if n:
            with self._lock:
                self._logs[group] = self._logs.get(group, 0) + n

    def invocation(self, function: str, memory_mb: int, wall_ms: float, usage: dict[str, Any] | None) -> None:
        """One finished invocation (errors included: AWS bills them too)."""
        gb = memory_mb / 1024
        with self._lock:
            f = self._functions.setdefault(function, {
                "memoryMb": memory_mb, "invocations": 0, "wallMs": 0.0, "wallGbSeconds": 0.0,
                "measured": 0, "cpuMs": 0.0, "serviceWaitMs": 0.0, "modelledMs": 0.0,
                "modelledGbSeconds": 0.0, "calls": {}, "maxRssMb": 0.0,
            })
            f["invocations"] += 1
            f["wallMs"] += wall_ms
            f["wallGbSeconds"] += gb * units.lambda_billed_ms(wall_ms) / 1000
            if not usage:
                return
            calls = {str(k): int(v) for k, v in (usage.get("calls") or {}).items()}
            cpu_ms = float(usage.get("cpuMs") or 0.0)
            wait_ms = units.service_wait_ms(calls)
            modelled = units.modelled_duration_ms(cpu_ms, wait_ms, memory_mb)
            f["measured"] += 1
            f["cpuMs"] += cpu_ms
            f["serviceWaitMs"] += wait_ms
            f["modelledMs"] += modelled
            f["modelledGbSeconds"] += gb * units.lambda_billed_ms(modelled) / 1000
            for op, n in calls.items():
                f["calls"][op] = f["calls"].get(op, 0) + n
            f["maxRssMb"] = max(f["maxRssMb"], float(usage.get("maxRssMb") or 0.0))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps({"http": self._http, "lambda": self._functions, "logs": self._logs}))


def fetch_emulator_usage(endpoint_url: str, reset: bool = False, timeout_s: float = 10.0) -> dict[str, Any]:
    """The emulator's counters (GET), or reset them (DELETE)."""
    request = urllib.request.Request(endpoint_url + USAGE_PATH, method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return dict(json.loads(response.read()))


def _alarm_metrics(inputs: dict[str, Any]) -> int:
    """CloudWatch bills an alarm per metric it evaluates: a metric-math alarm per metric it reads."""
    queries = inputs.get("metricQueries") or []
    if queries:
        return max(1, sum(1 for q in queries if q.get("metric")))
    return 1


def fixed_resources(stack: ProvisionedStack) -> dict[str, Any]:
    """What the stack bills by the hour or month, from the resources actually provisioned."""
    streams: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    alarms = alarm_metrics = kms_keys = dashboards = 0
    for resource in stack.resources:
        inputs = resource.inputs or {}
        if resource.type == "aws:kinesis/stream:Stream":
            mode = ((inputs.get("streamModeDetails") or {}).get("streamMode") or "PROVISIONED").upper()
            streams[str(resource.id).rsplit("/", 1)[-1]] = {
                "mode": mode, "shards": int(inputs.get("shardCount") or 0) if mode == "PROVISIONED" else 0,
                "retentionHours": int(inputs.get("retentionPeriod") or 24),
            }
        elif resource.type == "aws:dynamodb/table:Table":
            pitr = bool((inputs.get("pointInTimeRecovery") or {}).get("enabled"))
            tables[str(inputs.get("name") or resource.id)] = {"pointInTimeRecovery": pitr}
        elif resource.type == "aws:cloudwatch/metricAlarm:MetricAlarm":
            alarms += 1
            alarm_metrics += _alarm_metrics(inputs)
        elif resource.type == "aws:kms/key:Key":
            kms_keys += 1
        elif resource.type == "aws:cloudwatch/dashboard:Dashboard":
            dashboards += 1
    return {"streams": streams, "tables": tables, "alarms": alarms, "alarmMetrics": alarm_metrics,
            "kmsKeys": kms_keys, "dashboards": dashboards,
            "functions": {name: {"memoryMb": f.memory_mb} for name, f in stack.functions.items()}}


def collect(stack: ProvisionedStack, meter: UsageMeter) -> dict[str, Any]:
    """One snapshot of every counter, stamped with the time it was taken."""
    return {"takenAt": time.time(), "dataplane": meter.snapshot(),
            "emulator": fetch_emulator_usage(stack.endpoint_url), "fixed": fixed_resources(stack)}


def _subtract(after: Any, before: Any) -> Any:
    if isinstance(after, dict):
        before = before if isinstance(before, dict) else {}
        return {k: _subtract(v, before.get(k)) for k, v in after.items()}
    if isinstance(after, (int, float)) and not isinstance(after, bool):
        return after - (before if isinstance(before, (int, float)) and not isinstance(before, bool) else 0)
    return after


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Usage between two snapshots: counters subtracted; the stack description and the per-function
    memory and peak RSS are taken from ``after``; ``seconds`` is the time between them."""
    out = {"seconds": after["takenAt"] - before["takenAt"],
           "dataplane": _subtract(after["dataplane"], before["dataplane"]),
           "emulator": _subtract(after["emulator"], before["emulator"]),
           "fixed": after["fixed"]}
    for name, f in out["dataplane"].get("lambda", {}).items():
        f["memoryMb"] = after["dataplane"]["lambda"][name]["memoryMb"]
        f["maxRssMb"] = after["dataplane"]["lambda"][name]["maxRssMb"]
    return out
