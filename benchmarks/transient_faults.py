"""`make soak`: a fleet of at least 50,000 readings under transient faults strands nothing.

Not a test (it takes a few minutes): it brings the local cloud up (dev stack), keeps
the SUSTAINED faults in place for the whole run, adds a one-second BURST of
BatchWriteItem InternalServerError every ``--burst-every`` seconds, runs the fleet
and prints what the issue that motivated it asked for: readings accepted and
stored, missing and duplicated, batches Lambda had to retry, bisect or discard,
and DLQ messages. Exit 0 only if nothing is missing, duplicated or in the DLQ.
The short version of the same check runs in `make test`
(tests/fleet/test_fleet_transient_faults.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# Sustained throttling of a tenth of DynamoDB's write calls, and a fifth of PutRecords
# calls with a failed entry (answered 200, as Kinesis does), for as long as the run lasts.
SUSTAINED: list[dict[str, Any]] = [
    {"target": "DynamoDB_20120810.BatchWriteItem", "error": "ProvisionedThroughputExceededException",
     "rate": 0.1, "seconds": 3600},
    {"target": "DynamoDB_20120810.UpdateItem", "error": "ProvisionedThroughputExceededException",
     "rate": 0.1, "seconds": 3600},
    {"target": "Kinesis_20131202.PutRecords", "failRecords": [0], "rate": 0.2, "seconds": 3600},
]
# One second in which every BatchWriteItem fails on DynamoDB's side.
BURST: dict[str, Any] = {"target": "DynamoDB_20120810.BatchWriteItem", "error": "InternalServerError",
                         "status": 500, "message": "injected: DynamoDB had a bad second", "seconds": 1.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transient_faults", description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--rate", type=float, default=40.0, help="requests/s for the whole fleet")
    parser.add_argument("--readings", type=int, default=10, help="readings per request")
    parser.add_argument("--duration", type=float, default=130.0, help="seconds of sending")
    parser.add_argument("--burst-every", type=float, default=15.0, help="seconds between 1 s 5xx bursts")
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from fleet.config import FleetConfig
    from fleet.runner import run
    from localcloud.cloud import LocalCloud

    with tempfile.TemporaryDirectory() as state, LocalCloud(stack="dev", state_dir=Path(state)) as cloud:
        outputs = cloud.stack.outputs
        for rule in SUSTAINED:
            cloud.emulator.inject_fault(rule)
        stop = threading.Event()
        bursts = 0

        def burster() -> None:
            nonlocal bursts
            while not stop.wait(args.burst_every):
                cloud.emulator.inject_fault(BURST)
                bursts += 1

        thread = threading.Thread(target=burster, daemon=True)
        thread.start()
        config = FleetConfig(
            api_url=cloud.api_url, endpoint_url=cloud.endpoint_url, region=cloud.stack.region,
            readings_table=outputs["readingsTableName"], devices_table=outputs["devicesTableName"],
            stack_file=cloud.stack_file, devices=args.devices, rate=args.rate,
            readings_per_request=args.readings, duration=args.duration, misbehaving=0.0,
            progress=False, seed=7, drain_timeout=180.0,
        ).validate()
        began = time.monotonic()
        try:
            rep = run(config)
        finally:
            stop.set()
            thread.join()
        stats: dict[str, int] = {}
        for poller in cloud.dataplane.pollers:
            for key, value in poller.stats.items():
                stats[key] = stats.get(key, 0) + value
        dlq = cloud.emulator.client("sqs").get_queue_attributes(
            QueueUrl=outputs["dlqUrl"], AttributeNames=["ApproximateNumberOfMessages"])
        dlq_messages = int(dlq["Attributes"]["ApproximateNumberOfMessages"])
    led, v = rep.ledger, rep.verification
    figures = {
        "seconds": round(time.monotonic() - began, 1), "bursts": bursts,
        "accepted_readings": led.accepted_readings, "stored": v.stored, "missing": v.missing,
        "duplicates": v.duplicates, "dlq_messages": dlq_messages,
        "batch_retries": stats.get("retries", 0), "bisections": stats.get("bisections", 0),
        "batches_discarded": stats.get("batches_discarded", 0), "invocations": stats.get("invocations", 0),
        "faults": {"sustained": SUSTAINED, "burst": BURST, "burst_every_s": args.burst_every},
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "faults"}, indent=2))
    if args.report:
        args.report.write_text(json.dumps(figures, indent=2) + "\n")
    ok = v.checked and v.missing == 0 and v.duplicates == 0 and dlq_messages == 0
    print("OK: nothing stranded" if ok else "FAILED: readings missing, duplicated or in the DLQ", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
