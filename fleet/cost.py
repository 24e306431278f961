"""The run's cost per million readings, from the local cloud's cost meter (demo and benchmark only).

The meter counts what the local cloud did (localcloud/meter.py); ``planner.costing`` prices it.
Fixed monthly costs are amortised at the rate the fleet sent (accepted readings / sending time).
Anything going wrong here is reported, never fatal: the run's verdict is about the readings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import FleetReport


def usage_snapshot(cloud: Any) -> dict[str, Any] | None:
    try:
        return dict(cloud.usage())
    except Exception:  # noqa: BLE001 - an old emulator without the meter: the run goes on unpriced
        return None


def attach_cost(report: FleetReport, cloud: Any, before: dict[str, Any] | None, stack: str, project_dir: Path) -> None:
    """Price the usage between ``before`` and now and put it on the report (``report.cost``)."""
    from localcloud.meter import delta
    from planner.costing import price_usage
    from planner.prices import load_prices
    from planner.stack import load_stack_settings

    if before is None:
        report.notes.append("cost: the local cloud's meter was not reachable")
        return
    try:
        usage = delta(before, cloud.usage())
        usage["seconds"] = report.send_seconds or usage["seconds"]
        try:
            ttl_days: int | None = load_stack_settings(stack, project_dir).storage.readings_ttl_days
        except Exception as exc:  # noqa: BLE001 - storage line left out, said why
            ttl_days = None
            report.notes.append(f"cost: storage not priced, stack settings unreadable: {exc}")
        report.cost = price_usage(usage, report.ledger.accepted_readings, load_prices(), ttl_days=ttl_days)
        report.usage = usage
    except Exception as exc:  # noqa: BLE001 - the cost is an extra of the report: never fail the run over it
        report.notes.append(f"cost: not computed: {type(exc).__name__}: {exc}")
