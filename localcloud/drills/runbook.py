"""Render the runbook section of docs/alarms.md from a drill report (``--report FILE``), so the
notification text documented there is what a drill really received.

    python -m localcloud.drills.runbook report.json > section.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _reason(note: dict[str, Any]) -> str:
    return str(note.get("NewStateReason", "")).replace("|", "\\|")


def render(report: dict[str, Any]) -> str:
    lines = [f"| alarm id | drill fault | time to ALARM / OK (stack {report['stack']}) "
             "| ALARM notification: `NewStateReason` |",
             "|---|---|---|---|"]
    for r in report["results"]:
        timing = ("-" if r["time_to_alarm_s"] is None else f"{r['time_to_alarm_s']:.1f} s") + " / " + \
                 ("-" if r["time_to_ok_s"] is None else f"{r['time_to_ok_s']:.1f} s")
        lines.append(f"| `{r['alarm_id']}` | {r['fault']} | {timing} | {_reason(r.get('notification') or {}) or '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m localcloud.drills.runbook REPORT.json", file=sys.stderr)
        return 2
    sys.stdout.write(render(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
