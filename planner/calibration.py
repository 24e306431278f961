"""Per-request unit figures measured by the cost meter (``make bench-cost``), for the planner.

The planner does not guess what one request costs in CPU, AWS calls, Kinesis bytes or DynamoDB
items: it reads what the meter counted at the reference workload on each stack, written here by
the benchmark to docs/cost-calibration.json (committed, so the README's cost section can be
regenerated and tested without running the pipeline). Re-run ``make bench-cost`` after a change
to the handlers or the storage layout, then ``make readme-cost``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .costing import function_role, table_role

CALIBRATION_FILE = Path(__file__).resolve().parent.parent / "docs" / "cost-calibration.json"


class CalibrationError(ValueError):
    """No calibration for a stack, or an unreadable file; the message says which and how to make one."""


def _per(n: float, d: float) -> float:
    return n / d if d else 0.0


def derive(usage: dict[str, Any], *, stack: str, requests: int, readings: int, reading_bytes: float,
           devices: int, measured_at: str, commit: str) -> dict[str, Any]:
    """Unit figures per request / invocation / record from one metered run (``localcloud.meter.delta``)."""
    dataplane, emulator = usage["dataplane"], usage["emulator"]
    functions: dict[str, Any] = {}
    logs = dataplane.get("logs", {})
    for name, f in dataplane.get("lambda", {}).items():
        n, measured = f.get("invocations", 0), max(1, f.get("measured", 0))
        functions[function_role(name)] = {
            "logBytesPerInvocation": _per(logs.get(name, 0), n),
            "memoryMb": f["memoryMb"],
            "invocationsPerRequest": _per(n, requests),
            "cpuMsPerInvocation": f["cpuMs"] / measured,
            "callsPerInvocation": {op: c / measured for op, c in sorted(f.get("calls", {}).items())},
            "wallMsPerInvocation": _per(f["wallMs"], n),
            "modelledMsPerInvocation": f["modelledMs"] / measured,
            "maxRssMb": f["maxRssMb"],
        }
    kinesis_records = kinesis_bytes = 0.0
    for by_stream in emulator.get("kinesis", {}).values():
        for k in by_stream.values():
            kinesis_records += k.get("records", 0)
            kinesis_bytes += k.get("bytes", 0)
    if "processor" in functions:
        p = functions["processor"]
        invocations = p["invocationsPerRequest"] * requests
        p["recordsPerInvocation"] = _per(kinesis_records, invocations)
    tables: dict[str, Any] = {}
    for name, t in emulator.get("dynamodb", {}).get("pipeline", {}).items():
        writes = t.get("writes", 0)
        tables[table_role(name)] = {
            "writesPerRequest": _per(writes, requests),
            "writeUnitsPerWrite": _per(t.get("writeUnits", 0), writes),
            "bytesPerWrite": _per(t.get("writtenBytes", 0), writes),
            "readsPerRequest": _per(t.get("reads", 0), requests),
            "readUnitsPerRead": _per(t.get("readUnits", 0), t.get("reads", 0)),
            "storedBytesPerReading": _per(t.get("storedBytesDelta", 0) + 100 * t.get("storedItemsDelta", 0), readings),
        }
    fixed = usage["fixed"]
    return {
        "stack": stack, "measuredAt": measured_at, "commit": commit,
        "workload": {"devices": devices, "requests": requests, "readings": readings,
                     "readingsPerRequest": _per(readings, requests), "readingBytes": round(reading_bytes, 1),
                     "seconds": round(usage.get("seconds", 0.0), 1)},
        "httpBilledPerRequest": _per(dataplane.get("http", {}).get("billedRequests", 0), requests),
        "accessLogBytesPerRequest": _per(sum(n for g, n in logs.items() if g.startswith("api-access")),
                                         dataplane.get("http", {}).get("requests", 0)),
        "kinesisRecordsPerRequest": _per(kinesis_records, requests),
        "kinesisBytesPerRecord": _per(kinesis_bytes, kinesis_records),
        "functions": functions,
        "tables": tables,
        "fixed": {"alarmMetrics": fixed.get("alarmMetrics", 0), "kmsKeys": fixed.get("kmsKeys", 0),
                  "dashboards": fixed.get("dashboards", 0)},
    }


def load_calibration(stack: str, path: Path = CALIBRATION_FILE) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: {exc} (run `make bench-cost` to measure one)") from exc
    stacks = data.get("stacks") or {}
    if stack not in stacks:
        raise CalibrationError(f"{path} has no measurement for stack {stack!r} (has: {', '.join(sorted(stacks)) or 'none'}); "
                               f"run `make bench-cost` to measure one")
    return dict(stacks[stack])


def save_calibration(entry: dict[str, Any], path: Path = CALIBRATION_FILE) -> None:
    """Replace one stack's entry, keeping the others."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data.setdefault("about", "Per-request unit figures counted by the cost meter at the reference workload; "
                             "written by `make bench-cost` (benchmarks/cost.py), read by the planner.")
    data.setdefault("stacks", {})[entry["stack"]] = entry
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
