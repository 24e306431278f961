"""The run's report: numbers, a human-readable table, JSON, and the exit code.

The exit code is the contract with `make demo` and CI:

- 0: every accepted reading is stored exactly once and no rejected reading is stored;
- 1: integrity failure (missing, duplicated, altered or rejected-but-stored readings);
- 3: nothing was accepted although good requests were sent (the pipeline is down),
  or the read-back could not be made although it was asked for.
Expected rejections from misbehaving devices never fail a run; unexpected
answers are shown but do not, by themselves, fail it (a 503 under overload is
the contract working).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .alarms import AlarmChange
from .ledger import Ledger
from .verify import Verification

EXIT_OK = 0
EXIT_INTEGRITY = 1
EXIT_NO_SERVICE = 3


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least p% of values at or below it)."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class FleetReport:
    ledger: Ledger
    verification: Verification
    devices: int
    misbehaving_devices: int
    send_seconds: float  # first planned send to last answer
    planned_requests: int
    max_schedule_lag_s: float = 0.0
    interrupted: bool = False
    alarm_changes: list[AlarmChange] | None = None  # None: alarms not reachable
    alarm_error: str | None = None
    first_post_to_last_stored_s: float | None = None
    notes: list[str] = field(default_factory=list)
    verify_requested: bool = True
    cost: Any = None  # planner.breakdown.Breakdown: $ per million readings, when a cost meter was there
    usage: dict[str, Any] | None = None  # the meter's raw counts behind ``cost``
    greedy_quota: int | None = None  # the greedy devices' daily quota; None: no greedy devices
    greedy_devices: list[str] = field(default_factory=list)

    def greedy_summary(self) -> list[dict[str, Any]]:
        """Per greedy device: quota, readings accepted (all before the cut-off), refusals, the first 429 body."""
        led = self.ledger
        out = []
        for device in self.greedy_devices:
            accepted = len(led.accepted.get(device, {}))
            out.append({
                "deviceId": device,
                "quota": self.greedy_quota,
                "readingsAccepted": accepted,
                "overshoot": None if self.greedy_quota is None else max(0, accepted - self.greedy_quota),
                "quotaRefusals": led.quota_refusals.get(device, 0),
                "firstRefusal": led.first_quota_refusal.get(device),
            })
        return out

    def latency_ms(self) -> dict[str, float | None]:
        lat = self.ledger.latencies_s
        return {f"p{p}": (None if (v := percentile(lat, p)) is None else round(v * 1000, 1)) for p in (50, 95, 99)}

    def exit_code(self) -> int:
        v = self.verification
        if v.checked and (v.missing or v.duplicates or v.unexpected or v.corrupted or self.ledger.accepted_twice):
            return EXIT_INTEGRITY
        good_sent = self.ledger.requests - sum(self.ledger.expected_rejections.values())
        if good_sent > 0 and self.ledger.accepted_requests == 0:
            return EXIT_NO_SERVICE
        if self.verify_requested and not v.checked and self.ledger.accepted_readings:
            return EXIT_NO_SERVICE
        return EXIT_OK

    def to_json(self) -> dict[str, Any]:
        led, v = self.ledger, self.verification
        return {
            "devices": self.devices,
            "misbehavingDevices": self.misbehaving_devices,
            "interrupted": self.interrupted,
            "sendSeconds": round(self.send_seconds, 3),
            "plannedRequests": self.planned_requests,
            "maxScheduleLagSeconds": round(self.max_schedule_lag_s, 3),
            "requests": led.requests,
            "readingsSent": led.readings,
            "requestsAccepted": led.accepted_requests,
            "readingsAccepted": led.accepted_readings,
            "retries": led.retries,
            "byStatus": dict(sorted(led.by_status.items())),
            "expectedRejections": dict(sorted(led.expected_rejections.items())),
            "unexpected": dict(sorted(led.unexpected.items())),
            "acceptedCountMismatches": led.count_mismatches,
            "acceptedTwice": led.accepted_twice,
            "latencyMs": self.latency_ms(),
            "storage": {
                "checked": v.checked,
                "expected": v.expected,
                "stored": v.stored,
                "missing": v.missing,
                "duplicates": v.duplicates,
                "rejectedButStored": v.unexpected,
                "corrupted": v.corrupted,
                "waitedSeconds": round(v.waited_s, 3),
                "polls": v.polls,
                "missingExamples": v.missing_examples,
                "error": v.error,
            },
            "firstPostToLastStoredSeconds": (
                None if self.first_post_to_last_stored_s is None else round(self.first_post_to_last_stored_s, 3)
            ),
            "alarmChanges": None if self.alarm_changes is None else [c.to_json() for c in self.alarm_changes],
            "alarmError": self.alarm_error,
            "greedy": self.greedy_summary(),
            "notes": self.notes,
            "cost": None if self.cost is None else {**self.cost.to_json(), "usage": self.usage},
            "exitCode": self.exit_code(),
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def render(self) -> str:
        led, v = self.ledger, self.verification
        rows: list[tuple[str, str]] = [
            ("devices (misbehaving)", f"{self.devices} ({self.misbehaving_devices})"),
            ("sending time", f"{self.send_seconds:.1f} s" + (" (interrupted)" if self.interrupted else "")),
            ("requests sent / planned", f"{led.requests} / {self.planned_requests}"),
            ("request rate", f"{led.requests / self.send_seconds:.1f} req/s" if self.send_seconds > 0 else "-"),
            ("readings sent", str(led.readings)),
            ("accepted (202)", f"{led.accepted_requests} requests, {led.accepted_readings} readings"),
            ("retries", str(led.retries)),
        ]
        for status, n in sorted(led.by_status.items()):
            if status != "202":
                rows.append((f"  answered {status}", str(n)))
        for key, n in sorted(led.expected_rejections.items()):
            rows.append((f"  expected: {key}", str(n)))
        for key, n in sorted(led.unexpected.items()):
            rows.append((f"  UNEXPECTED: {key}", str(n)))
        lat = self.latency_ms()
        rows.append(("latency p50/p95/p99", " / ".join("-" if x is None else f"{x:.1f} ms" for x in lat.values())))
        rows.append(("max schedule lag", f"{self.max_schedule_lag_s * 1000:.0f} ms"))
        if v.checked:
            rows += [
                ("stored / accepted", f"{v.stored} / {v.expected} (waited {v.waited_s:.1f} s, {v.polls} polls)"),
                ("missing", str(v.missing)),
                ("duplicates", str(v.duplicates + led.accepted_twice)),
                ("rejected but stored", str(v.unexpected)),
                ("metrics differ", str(v.corrupted)),
            ]
            if self.first_post_to_last_stored_s:
                rows.append(("stored throughput", f"{v.stored / self.first_post_to_last_stored_s:.0f} readings/s"))
        else:
            rows.append(("storage check", f"not made ({v.error or 'no readings table'})"))
        for g in self.greedy_summary():
            if g["quotaRefusals"]:
                first = g["firstRefusal"] or {}
                rows.append((f"greedy {g['deviceId']}",
                             f"quota {g['quota']}/day: {g['readingsAccepted']} readings accepted (overshoot "
                             f"{g['overshoot']}), then {g['quotaRefusals']} requests refused 429 quota_exceeded "
                             f"(used {first.get('used')}, resets {first.get('resetsAt')})"))
            else:
                rows.append((f"greedy {g['deviceId']}",
                             f"quota {g['quota']}/day: {g['readingsAccepted']} readings accepted, not cut off yet "
                             "(the cut-off lags by up to authorizerCacheTtlSeconds + processor lag)"))
        if led.count_mismatches:
            rows.append(("UNEXPECTED: 202 'accepted' != readings sent", str(led.count_mismatches)))
        if self.alarm_changes is None:
            rows.append(("alarms", f"not checked ({self.alarm_error or 'not reachable'})"))
        elif not self.alarm_changes:
            rows.append(("alarms changed", "none"))
        else:
            for c in self.alarm_changes:
                rows.append((f"  alarm {c.name}", f"{c.before} -> {c.after}" + (f" ({len(c.transitions)} transitions)" if c.transitions else "")))
        width = max(len(k) for k, _ in rows)
        lines = ["Fleet report", "=" * (width + 30)] + [f"{k.ljust(width)}  {val}" for k, val in rows]
        if self.cost is not None:
            lines.append(self.cost.render("$ per million readings"))
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"missing e.g. {m}" for m in v.missing_examples]
        code = self.exit_code()
        verdict = {EXIT_OK: "OK: nothing accepted was lost or duplicated",
                   EXIT_INTEGRITY: "FAIL: accepted readings lost, duplicated or altered, or rejected ones stored",
                   EXIT_NO_SERVICE: "FAIL: the pipeline accepted nothing or could not be checked"}[code]
        lines.append(f"result: {verdict} (exit {code})")
        return "\n".join(lines)
