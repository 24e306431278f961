"""Where the saturated phase's time went, from the local cloud's processor log.

The runner writes each invocation's output to `<state>/logs/lambda/<function>.log`:
the handler's EMF line (with `ReadingsStored`) and a `REPORT ... Duration: X ms`
line. Summing them says whether the processor was busy the whole window (then
its own speed against the emulator is the limit) or idle part of it (then the
poller, batching window or ingest side is).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DURATION = re.compile(rb"^REPORT RequestId: \S+\s+Duration: ([\d.]+) ms")


@dataclass(frozen=True)
class ProcessorActivity:
    invocations: int
    readings: int
    busy_seconds: float

    def to_json(self, window_s: float | None) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "readingsStored": self.readings,
            "busySeconds": round(self.busy_seconds, 3),
            "readingsPerBusySecond": round(self.readings / self.busy_seconds, 1) if self.busy_seconds else None,
            "busyShareOfWindow": round(self.busy_seconds / window_s, 3) if window_s else None,
        }


def processor_log(state_dir: Path) -> Path | None:
    logs = sorted((state_dir / "logs" / "lambda").glob("*processor*.log"))
    return logs[0] if logs else None


def activity(log: Path, offset: int) -> ProcessorActivity:
    """Invocations logged after byte `offset` (the log's size when the phase started)."""
    invocations = readings = 0
    busy = 0.0
    with log.open("rb") as fh:
        fh.seek(offset)
        for line in fh:
            if (m := _DURATION.match(line)) is not None:
                invocations += 1
                busy += float(m.group(1)) / 1000
            elif b'"ReadingsStored"' in line:
                try:
                    readings += int(sum(json.loads(line).get("ReadingsStored", [0])))
                except (ValueError, TypeError):
                    pass  # not an EMF line after all
    return ProcessorActivity(invocations, readings, busy)
