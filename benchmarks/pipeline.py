"""Benchmark of the local pipeline: start-up, sustained throughput, and the emulator's ceiling.

    python -m benchmarks.pipeline [--stack dev] [--duration 20] [--heavy-readings 40]

- start-up: command -> first 200 from GET /health (target < 5 s), for
  `python -m localcloud serve` (a child process: interpreter, imports,
  emulator, provisioning, data plane) and for `LocalCloud.start()` in-process;
- default fleet: 50 devices, one request per second each, 5 readings per request
  (what `make demo` offers): readings confirmed stored per second from the first
  POST to the moment the read-back finds the last one, and whether it keeps up;
- saturated: the same 50 devices at the same request rate (the dev stage
  throttles at 50 req/s) with more readings per request, so the stream
  processor and DynamoDB, not the HTTP throttle, set the pace;
- ceiling: the saturated run's number of readings written straight to the same
  emulator (PutRecords + BatchWriteItem, see ceiling.py);
  ratio = saturated pipeline / ceiling (target >= 0.5).

The fleet runs in this process and the local cloud in a `localcloud serve`
child, so the load generator does not share the gateway's GIL. Prints a
markdown table and writes JSON to benchmarks/results/. Not a test: it fails
(exit 1) only if the pipeline lost or duplicated readings.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet.config import FleetConfig
from fleet.report import FleetReport
from fleet.runner import run
from fleet.targets import client, resolve

from . import ceiling, processor_log
from .startup import Served, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
STARTUP_TARGET_S = 5.0
RATIO_TARGET = 0.5


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n")[0])
    p.add_argument("--stack", default="dev")
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--rate", type=float, default=50.0, help="requests/s for the fleet (dev stage throttle: 50)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of sending, default-fleet phase")
    p.add_argument("--heavy-duration", type=float, default=10.0,
                   help="seconds of sending, saturated phase (its read-back costs ~1 ms per reading on moto)")
    p.add_argument("--readings-per-request", type=int, default=5, help="default-fleet phase")
    p.add_argument("--heavy-readings", type=int, default=60, help="readings per request in the saturated phase")
    p.add_argument("--payload-metrics", type=int, default=4)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def _fmt(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}{unit}"


def phase(report: FleetReport, offered_readings_s: float) -> dict[str, Any]:
    led, v = report.ledger, report.verification
    window = report.first_post_to_last_stored_s
    return {
        "offeredReadingsPerSecond": offered_readings_s,
        "requests": led.requests, "requestsAccepted": led.accepted_requests,
        "readingsAccepted": led.accepted_readings, "readingsStored": v.stored,
        "missing": v.missing, "duplicates": v.duplicates + led.accepted_twice,
        "unexpected": dict(led.unexpected), "sendSeconds": round(report.send_seconds, 3),
        "firstPostToLastStoredSeconds": None if window is None else round(window, 3),
        "drainSeconds": None if window is None else round(window - report.send_seconds, 3),
        "readingsPerSecond": None if not window else round(v.stored / window, 1),
        "requestsPerSecond": round(led.accepted_requests / report.send_seconds, 1),
        "latencyMs": report.latency_ms(), "notes": report.notes,
    }


def markdown(r: dict[str, Any]) -> str:
    s, d, h, c = r["startup"], r["default"], r["saturated"], r["ceiling"]
    lat = lambda p: " / ".join(_fmt(p["latencyMs"][k], " ms", 0) for k in ("p50", "p95", "p99"))  # noqa: E731 - a one-line formatter next to its only use
    rows = [
        ("start-up: `python -m localcloud serve` -> GET /health 200", _fmt(s["serveSeconds"], " s"), f"< {STARTUP_TARGET_S:.0f} s"),
        ("start-up: `LocalCloud.start()` in-process -> GET /health 200", _fmt(s["inProcessSeconds"], " s"), f"< {STARTUP_TARGET_S:.0f} s"),
        ("shutdown: SIGTERM -> `serve` exited", _fmt(s["serveStopSeconds"], " s"), ""),
        (f"default fleet ({r['settings']['devices']} dev, {r['settings']['rate']:.0f} req/s x {r['settings']['readings_per_request']}): "
         "readings stored / s", f"{_fmt(d['readingsPerSecond'], '', 0)} of {d['offeredReadingsPerSecond']:.0f} offered", "keeps up"),
        ("default fleet: drain after last POST", _fmt(d["drainSeconds"], " s", 1), ""),
        ("default fleet: latency p50 / p95 / p99", lat(d), ""),
        (f"saturated (x {r['settings']['heavy_readings']} readings/request): readings stored / s",
         f"{_fmt(h['readingsPerSecond'], '', 0)} of {h['offeredReadingsPerSecond']:.0f} offered", ""),
        ("saturated: latency p50 / p95 / p99", lat(h), ""),
        ("saturated: processor busy share of the window / readings per busy second",
         f"{_fmt(h.get('processor', {}).get('busyShareOfWindow'))} / "
         f"{_fmt(h.get('processor', {}).get('readingsPerBusySecond'), '', 0)}", ""),
        ("emulator ceiling: PutRecords + BatchWriteItem, readings / s", _fmt(c["readingsPerSecond"], "", 0), ""),
        ("  PutRecords alone / BatchWriteItem alone, readings / s",
         f"{_fmt(c['putRecordsReadingsPerSecond'], '', 0)} / {_fmt(c['batchWriteReadingsPerSecond'], '', 0)}", ""),
        ("saturated pipeline / ceiling", _fmt(r["ratio"]), f">= {RATIO_TARGET}"),
        ("lost / duplicated readings (both phases)", f"{d['missing'] + h['missing']} / {d['duplicates'] + h['duplicates']}", "0 / 0"),
    ]
    return "| measure | value | target |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {t} |" for a, b, t in rows)


def fleet_phase(args: argparse.Namespace, served: Served, per_request: int, duration: float) -> dict[str, Any]:
    config = FleetConfig(
        api_url=served.outputs["apiUrl"], stack_file=served.stack_file, devices=args.devices, rate=args.rate,
        duration=duration, misbehaving=0.0, readings_per_request=per_request,
        payload_metrics=args.payload_metrics, workers=args.workers, progress=sys.stderr.isatty(),
        drain_timeout=180.0, seed=per_request,
    ).validate()
    print(f"  {args.devices} devices, {args.rate:.0f} req/s x {per_request} readings for {duration:.0f} s ...", flush=True)
    return phase(run(config), args.rate * per_request)


def in_process_startup(args: argparse.Namespace) -> float:
    from localcloud.cloud import LocalCloud  # benchmarks may import the local cloud

    with tempfile.TemporaryDirectory(prefix="bench-inproc-") as state:
        began = time.monotonic()
        cloud = LocalCloud(ROOT, stack=args.stack, state_dir=Path(state))
        try:
            cloud.start()
            wait_healthy(cloud.api_url, began + 90)
            return time.monotonic() - began
        finally:
            cloud.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    load = os.getloadavg()[0]
    result: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "loadAverage1mAtStart": load},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    if load > (os.cpu_count() or 1):
        print(f"warning: load average {load:.1f} on {os.cpu_count()} CPUs - figures will be pessimistic", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as state:
        served = Served(ROOT, args.stack, Path(state))
        print("start-up: python -m localcloud serve ...", flush=True)
        served.start()
        try:
            print(f"  healthy after {served.startup_s:.2f} s", flush=True)
            print("default fleet:", flush=True)
            result["default"] = fleet_phase(args, served, args.readings_per_request, args.duration)
            print("saturated:", flush=True)
            log = processor_log.processor_log(served.state_dir)
            offset = log.stat().st_size if log else 0
            result["saturated"] = fleet_phase(args, served, args.heavy_readings, args.heavy_duration)
            if log is not None:
                result["saturated"]["processor"] = processor_log.activity(log, offset).to_json(
                    result["saturated"]["firstPostToLastStoredSeconds"])
            targets = resolve(FleetConfig(api_url=served.outputs["apiUrl"], stack_file=served.stack_file))
            kinesis, dynamodb = client("kinesis", targets), client("dynamodb", targets)
            shards = kinesis.describe_stream_summary(
                StreamName=served.outputs["streamName"])["StreamDescriptionSummary"]["OpenShardCount"]
            n = max(result["saturated"]["readingsStored"], 1000)
            print(f"ceiling: {n} readings straight into the same emulator ({shards} shard(s)) ...", flush=True)
            result["ceiling"] = ceiling.measure(kinesis, dynamodb, readings=n, devices=args.devices,
                                                per_request=args.heavy_readings, metrics=args.payload_metrics,
                                                shards=shards).to_json()
        finally:
            served.stop()
    print("start-up: LocalCloud.start() in-process ...", flush=True)
    result["startup"] = {"serveSeconds": round(served.startup_s or 0, 3), "serveStopSeconds": served.stop_s,
                         "inProcessSeconds": round(in_process_startup(args), 3)}
    sat = result["saturated"]["readingsPerSecond"]
    result["ratio"] = None if not sat else round(sat / result["ceiling"]["readingsPerSecond"], 3)
    table = markdown(result)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"pipeline-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({**result, "markdown": table}, indent=2) + "\n")
    print(f"\nresults written to {out}")
    lost = sum(result[p]["missing"] + result[p]["duplicates"] for p in ("default", "saturated"))
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
