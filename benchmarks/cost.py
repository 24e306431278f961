"""Cost benchmark: $ per million readings at the reference workload, counted by the cost meter.

    python -m benchmarks.cost [--stacks dev,prod] [--duration 55] [--rate 40] [--no-calibration]

Reference workload (issue 7): 50 devices, 10 readings of about 200 B of JSON per request
(``--payload-metrics 10`` makes the fleet's readings 190-200 B), well-behaved devices, at least
20,000 readings (40 requests/s for 55 s = 22,000). For each stack: the local cloud starts
in this process, the fleet runs, the meter's counts are priced (planner.costing), and the
per-request figures are written to docs/cost-calibration.json for the planner (unless
``--no-calibration``). Prints one table per stack and writes JSON to benchmarks/results/.
Not a test: it fails (exit 1) only if the pipeline lost or duplicated readings.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fleet.config import FleetConfig
from fleet.cost import attach_cost, usage_snapshot
from fleet.report import EXIT_OK, FleetReport
from fleet.runner import run
from planner.calibration import derive, save_calibration

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_PER_MILLION = 0.30
STORAGE_TARGET_PER_MILLION = 0.50


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.split("\n")[0])
    p.add_argument("--stacks", default="dev,prod")
    p.add_argument("--devices", type=int, default=50)
    p.add_argument("--rate", type=float, default=40.0, help="requests/s for the fleet (dev stage throttle: 50)")
    p.add_argument("--duration", type=float, default=55.0, help="seconds of sending")
    p.add_argument("--readings-per-request", type=int, default=10)
    p.add_argument("--payload-metrics", type=int, default=10, help="10 metrics = about 200 B of JSON per reading")
    p.add_argument("--no-calibration", dest="calibration", action="store_false",
                   help="do not update docs/cost-calibration.json")
    return p.parse_args(argv)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_stack(stack: str, args: argparse.Namespace) -> tuple[FleetReport, dict[str, Any] | None]:
    from localcloud.cloud import LocalCloud

    with tempfile.TemporaryDirectory(prefix=f"bench-cost-{stack}-") as state:
        cloud = LocalCloud(ROOT, stack=stack, state_dir=Path(state))
        cloud.start()
        try:
            outputs = cloud.stack.outputs
            config = FleetConfig(
                api_url=cloud.api_url, devices=args.devices, rate=args.rate,
                readings_per_request=args.readings_per_request, payload_metrics=args.payload_metrics,
                duration=args.duration, misbehaving=0.0, endpoint_url=cloud.endpoint_url, region=cloud.stack.region,
                readings_table=outputs.get("readingsTableName"), devices_table=outputs.get("devicesTableName"),
                progress=False, seed=7,
            ).validate()
            before = usage_snapshot(cloud)
            report = run(config)
            attach_cost(report, cloud, before, stack, ROOT)
        finally:
            cloud.stop()
    calibration = None
    if report.usage is not None and report.ledger.accepted_requests:
        http = report.usage["dataplane"]["http"]
        calibration = derive(
            report.usage, stack=stack, requests=report.ledger.accepted_requests,
            readings=report.ledger.accepted_readings,
            reading_bytes=(http["requestBytes"] / max(1, http["requests"]) - 60) / args.readings_per_request,
            devices=args.devices, measured_at=dt.date.today().isoformat(), commit=_commit())
    return report, calibration


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress when piped to a file
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results: dict[str, Any] = {"startedAt": dt.datetime.now(dt.timezone.utc).isoformat(), "loadAverage1m": load,
                               "commit": _commit(), "workload": vars(args), "stacks": {}}
    exit_code = 0
    for stack in [s.strip() for s in args.stacks.split(",") if s.strip()]:
        began = time.monotonic()
        report, calibration = run_stack(stack, args)
        if report.exit_code() != EXIT_OK:
            exit_code = 1
        cost = report.cost
        print(f"\n## stack {stack}: {report.ledger.accepted_readings:,} readings accepted, "
              f"{report.verification.stored:,} stored, integrity exit {report.exit_code()} "
              f"({time.monotonic() - began:.0f} s)")
        if cost is None:
            print("no cost: " + "; ".join(report.notes))
            continue
        print(cost.render(f"$ per million readings, stack {stack}"))
        per_m = cost.total("usage")
        print(f"{stack}: ${per_m:.4f} per million readings per-use (target <= ${TARGET_PER_MILLION:.2f}: "
              f"{'met' if per_m <= TARGET_PER_MILLION else 'NOT met'}), ${cost.total():.4f} with fixed costs "
              f"amortised at the run's rate")
        if cost.storage is not None:
            print(f"{stack}: storage over TTL ${cost.storage.per_million:.4f} per million readings "
                  f"(target <= ${STORAGE_TARGET_PER_MILLION:.2f}: "
                  f"{'met' if cost.storage.per_million <= STORAGE_TARGET_PER_MILLION else 'NOT met'})")
        results["stacks"][stack] = {"report": report.to_json(), "calibration": calibration}
        if calibration is not None and args.calibration:
            save_calibration(calibration)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"cost-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {out}" + ("; per-request figures to docs/cost-calibration.json" if args.calibration else ""))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
