"""End to end: the fleet's greedy device is cut off with 429 quota_exceeded on the local cloud, while
every other device's accepted readings are stored exactly once and nothing refused is stored."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fleet.config import FleetConfig
from fleet.report import EXIT_OK
from fleet.runner import run

REPO = Path(__file__).resolve().parents[2]


def program_with_short_cache(target: Path, ttl_s: int) -> Path:
    """The program with a stack like dev but a short authorizer cache, so the cut-off happens in seconds."""
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy2(REPO / name, target / name)
    for folder in ("settings", "components", "handlers"):
        shutil.copytree(REPO / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    dev = (REPO / "Pulumi.dev.yaml").read_text()
    short = dev.replace("iot-ingest:authorizerCacheTtlSeconds: 15", f"iot-ingest:authorizerCacheTtlSeconds: {ttl_s}")
    assert short != dev
    (target / "Pulumi.greedy.yaml").write_text(short)
    return target


@pytest.mark.e2e
def test_greedy_device_is_cut_off_and_the_others_lose_nothing(tmp_path: Path) -> None:
    from localcloud.cloud import LocalCloud

    (tmp_path / "program").mkdir()
    program = program_with_short_cache(tmp_path / "program", ttl_s=2)
    with LocalCloud(program, stack="greedy", state_dir=tmp_path / "localcloud") as cloud:
        outputs = cloud.stack.outputs
        config = FleetConfig(
            api_url=cloud.api_url, endpoint_url=cloud.endpoint_url, region=cloud.stack.region,
            readings_table=outputs["readingsTableName"], devices_table=outputs["devicesTableName"],
            stack_file=cloud.stack_file, devices=5, duration=8.0, rate=10.0, misbehaving=0.2,
            greedy=1, greedy_quota=20, greedy_factor=10.0, progress=False, seed=7, drain_timeout=30.0,
        ).validate()
        rep = run(config, before_alarm_check=cloud.dataplane.monitor.evaluate_alarms)
    led, v = rep.ledger, rep.verification
    (greedy,) = rep.greedy_summary()
    print("\n" + rep.render())
    assert greedy["quotaRefusals"] > 0, rep.render()
    assert greedy["firstRefusal"]["error"] == "quota_exceeded" and greedy["firstRefusal"]["quota"] == 20
    assert greedy["readingsAccepted"] >= 20  # a request that crosses the quota is still accepted
    assert led.expected_rejections["greedy -> 429 quota_exceeded"] == greedy["quotaRefusals"]
    assert v.checked and (v.missing, v.duplicates, v.unexpected, v.corrupted, led.accepted_twice) == (0, 0, 0, 0, 0)
    assert v.stored == v.expected == led.accepted_readings
    others = [d for d in led.accepted if d != greedy["deviceId"]]
    assert len(others) >= 3  # the well-behaved devices were served throughout
    assert led.unexpected_total == 0, rep.render()
    assert rep.exit_code() == EXIT_OK
