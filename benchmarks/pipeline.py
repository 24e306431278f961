"""Benchmark of the local pipeline: start-up, sustained throughput, and the emulator's ceiling.

    python -m benchmarks.pipeline [--stack dev] [--duration 20] [--rate 1000] [--no-subprocess]

- start-up: command -> first 200 from GET /health (target < 5 s);
- pipeline: readings confirmed stored in the readings table per second of wall
  time, from the first POST to the moment the read-back finds the last one,
  with the fleet of 50 devices offered more than the pipeline can take;
- ceiling: the same number of readings written straight to the same emulator
  (PutRecords + BatchWriteItem, see ceiling.py); ratio = pipeline / ceiling
  (target >= 0.5).

Prints a markdown table and writes JSON to benchmarks/results/. Not a test: it
asserts nothing and always exits 0 unless the pipeline itself failed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from fleet.config import FleetConfig
from fleet.runner import run
from fleet.targets import Targets, client

from . import ceiling
from .startup import Startup, subprocess_startup, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
STARTUP_TARGET_S = 5.0
RATIO_TARGET = 0.5


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n")[0])
    p.add_argument("--stack", default="dev")
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
    p.add_argument("--rate", type=float, default=1000.0, help="offered requests/s (above capacity: saturating)")
    p.add_argument("--readings-per-request", type=int, default=5)
    p.add_argument("--payload-metrics", type=int, default=4)
    p.add_argument("--workers", type=int, default=32, help="concurrent HTTP connections of the fleet")
    p.add_argument("--no-subprocess", dest="subprocess", action="store_false",
                   help="skip the `python -m localcloud serve` start-up measurement")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def _fmt(x: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}{unit}"


def markdown(r: dict[str, Any]) -> str:
    pipe, ceil = r["pipeline"], r["ceiling"]
    rows = [
        ("start-up, `python -m localcloud serve` -> /health 200", _fmt(r["startup"]["subprocessSeconds"], " s"), f"< {STARTUP_TARGET_S:.0f} s"),
        ("start-up, `LocalCloud.start()` in-process -> /health 200", _fmt(r["startup"]["inProcessSeconds"], " s"), f"< {STARTUP_TARGET_S:.0f} s"),
        ("pipeline: readings stored / s (first POST -> last stored)", _fmt(pipe["readingsPerSecond"], "", 0), ""),
        ("pipeline: requests / s accepted", _fmt(pipe["requestsPerSecond"], "", 0), ""),
        ("pipeline: latency p50 / p95 / p99", " / ".join(_fmt(pipe["latencyMs"][k], " ms", 1) for k in ("p50", "p95", "p99")), ""),
        ("emulator ceiling: PutRecords + BatchWriteItem, readings / s", _fmt(ceil.get("readingsPerSecond"), "", 0), ""),
        ("  of which PutRecords alone, readings / s", _fmt(ceil.get("putRecordsReadingsPerSecond"), "", 0), ""),
        ("  of which BatchWriteItem alone, readings / s", _fmt(ceil.get("batchWriteReadingsPerSecond"), "", 0), ""),
        ("pipeline / ceiling", _fmt(r["ratio"]), f">= {RATIO_TARGET}"),
        ("lost / duplicated readings", f"{pipe['missing']} / {pipe['duplicates']}", "0 / 0"),
    ]
    head = f"| measure | value | target |\n|---|---|---|\n"
    return head + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from localcloud.cloud import LocalCloud  # benchmarks may import the local cloud

    result: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(), "platform": platform.platform()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    sub = subprocess_startup(ROOT, args.stack) if args.subprocess else Startup(float("nan"))
    print(f"start-up (subprocess): {_fmt(sub.seconds, ' s')}" + (f"  [{sub.error}]" if sub.error else ""), flush=True)

    began = time.monotonic()
    cloud = LocalCloud(ROOT, stack=args.stack)
    try:
        cloud.start()
        wait_healthy(cloud.api_url, began + 60)
        in_process = time.monotonic() - began
        print(f"start-up (in-process): {in_process:.2f} s", flush=True)
        result["startup"] = {"subprocessSeconds": None if sub.seconds != sub.seconds else round(sub.seconds, 3),
                             "subprocessStopSeconds": sub.stop_seconds, "subprocessError": sub.error,
                             "inProcessSeconds": round(in_process, 3)}
        outputs = cloud.stack.outputs
        config = FleetConfig(
            api_url=cloud.api_url, endpoint_url=cloud.endpoint_url, region=getattr(cloud.stack, "region", None),
            readings_table=outputs["readingsTableName"], devices_table=outputs["devicesTableName"],
            devices=args.devices, rate=args.rate, duration=args.duration, misbehaving=0.0, jitter=0.2,
            readings_per_request=args.readings_per_request, payload_metrics=args.payload_metrics,
            workers=args.workers, progress=sys.stderr.isatty(), drain_timeout=120.0, seed=1,
        ).validate()
        print(f"pipeline: {args.devices} devices offering {args.rate:.0f} req/s for {args.duration:.0f} s ...", flush=True)
        report = run(config)
        led, v = report.ledger, report.verification
        window = report.first_post_to_last_stored_s
        result["pipeline"] = {
            "requests": led.requests, "requestsAccepted": led.accepted_requests,
            "readingsAccepted": led.accepted_readings, "readingsStored": v.stored,
            "missing": v.missing, "duplicates": v.duplicates + led.accepted_twice,
            "unexpected": dict(led.unexpected), "sendSeconds": round(report.send_seconds, 3),
            "firstPostToLastStoredSeconds": None if window is None else round(window, 3),
            "readingsPerSecond": None if not window else round(v.stored / window, 1),
            "requestsPerSecond": round(led.accepted_requests / report.send_seconds, 1),
            "latencyMs": report.latency_ms(), "notes": report.notes,
        }
        targets = Targets(cloud.api_url, cloud.endpoint_url, config.region or "us-east-1", None, None, None)
        shards = client("kinesis", targets).describe_stream_summary(
            StreamName=outputs["streamName"])["StreamDescriptionSummary"]["OpenShardCount"]
        print(f"ceiling: {max(v.stored, 1000)} readings straight into the emulator ({shards} shard(s)) ...", flush=True)
        ceil = ceiling.measure(client("kinesis", targets), client("dynamodb", targets), readings=max(v.stored, 1000),
                               devices=args.devices, per_request=args.readings_per_request,
                               metrics=args.payload_metrics, shards=shards)
        result["ceiling"] = ceil.to_json()
    finally:
        cloud.stop()
    pipe_rate = result["pipeline"]["readingsPerSecond"]
    result["ratio"] = None if not pipe_rate else round(pipe_rate / result["ceiling"]["readingsPerSecond"], 3)
    table = markdown(result)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"pipeline-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({**result, "markdown": table}, indent=2) + "\n")
    print(f"\nresults written to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if result["pipeline"]["missing"] == 0 and result["pipeline"]["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
