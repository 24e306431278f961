"""End to end: a tiny fleet against the whole local cloud (gateway, authorizer, ingest, Kinesis, processor, DynamoDB)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fleet.config import FleetConfig
from fleet.report import EXIT_OK
from fleet.runner import run


@pytest.mark.e2e
def test_tiny_fleet_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    from localcloud.cloud import LocalCloud

    with LocalCloud(stack="dev", state_dir=tmp_path / "localcloud") as cloud:
        outputs = cloud.stack.outputs
        config = FleetConfig(
            api_url=cloud.api_url, endpoint_url=cloud.endpoint_url, region=cloud.stack.region,
            readings_table=outputs["readingsTableName"], devices_table=outputs["devicesTableName"],
            stack_file=cloud.stack_file, devices=5, duration=1.5, rate=15.0, misbehaving=0.2,
            progress=False, seed=5, drain_timeout=30.0,
        ).validate()
        rep = run(config, before_alarm_check=cloud.dataplane.monitor.evaluate_alarms)
    led, v = rep.ledger, rep.verification
    assert led.accepted_readings > 0 and v.checked
    assert (v.missing, v.duplicates, v.unexpected, v.corrupted, led.accepted_twice) == (0, 0, 0, 0, 0), rep.render()
    assert v.stored == v.expected == led.accepted_readings
    assert sum(led.expected_rejections.values()) > 0  # the misbehaving device was turned away ...
    assert led.unexpected_total == 0, rep.render()  # ... with exactly the statuses the contract promises
    assert rep.alarm_changes is not None  # the emulator's alarms were reachable
    assert rep.exit_code() == EXIT_OK
