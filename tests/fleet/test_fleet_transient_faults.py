"""End to end: a fleet run under transient DynamoDB and Kinesis faults strands nothing.

The faults are the ones that used to send accepted readings to the DLQ: a tenth of
DynamoDB's BatchWriteItem and UpdateItem calls throttled for the whole run, a fifth
of PutRecords calls with failed entries, and a one-second burst of BatchWriteItem
InternalServerError while the fleet is sending. A longer version (50,000+ readings)
is `make soak` (benchmarks/transient_faults.py, which defines the faults).
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from benchmarks.transient_faults import BURST, SUSTAINED
from fleet.config import FleetConfig
from fleet.runner import run

@pytest.mark.e2e
def test_transient_faults_strand_nothing_in_the_dlq(tmp_path: Path) -> None:
    from localcloud.cloud import LocalCloud

    with LocalCloud(stack="dev", state_dir=tmp_path / "localcloud") as cloud:
        outputs = cloud.stack.outputs
        for rule in SUSTAINED:
            cloud.emulator.inject_fault(rule)
        burst = threading.Timer(0.5, cloud.emulator.inject_fault, args=(BURST,))
        burst.start()
        config = FleetConfig(
            api_url=cloud.api_url, endpoint_url=cloud.endpoint_url, region=cloud.stack.region,
            readings_table=outputs["readingsTableName"], devices_table=outputs["devicesTableName"],
            stack_file=cloud.stack_file, devices=5, duration=3.0, rate=20.0, misbehaving=0.0,
            progress=False, seed=11, drain_timeout=60.0,
        ).validate()
        try:
            rep = run(config)
        finally:
            burst.cancel()
        refused = [r for r in cloud.emulator.faults() if r["target"] == "DynamoDB_20120810.BatchWriteItem"]
        stats = [dict(p.stats) for p in cloud.dataplane.pollers]
        dlq = cloud.emulator.client("sqs").get_queue_attributes(
            QueueUrl=outputs["dlqUrl"], AttributeNames=["ApproximateNumberOfMessages"])
    led, v = rep.ledger, rep.verification
    assert burst.finished.is_set() and refused, "the faults were in place during the run"
    assert led.accepted_readings > 0 and v.checked
    assert (v.missing, v.duplicates, v.unexpected, v.corrupted) == (0, 0, 0, 0), rep.render()
    assert v.stored == v.expected == led.accepted_readings
    # Every fault was absorbed inside the invocation that met it: Lambda never had to retry or
    # bisect a batch (a retried batch is one step from the DLQ), and nothing was discarded.
    assert sum(s.get("retries", 0) + s.get("bisections", 0) + s.get("batches_discarded", 0) for s in stats) == 0, stats
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"
