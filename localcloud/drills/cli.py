"""``python -m localcloud drill``: run the alarm drills, print the table, exit non-zero on a failure.

Exit codes: 0 every drilled alarm passed, 1 at least one failed, 2 bad arguments or a cloud
that cannot start.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from ..stack_config import StackConfigError
from .catalogue import DRILLS, differing_alarms
from .runner import DEFAULT_THRESHOLD_SCALE, DEFAULT_TIME_SCALE, DrillRun, table

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    drill = commands.add_parser("drill", help="drive every alarm to ALARM and back on the local cloud")
    drill.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default: dev)")
    drill.add_argument("--alarm", action="append", default=None, metavar="ID",
                       help="drill only this alarm id (repeatable; default: every alarm)")
    drill.add_argument("--differing-from", default=None, metavar="STACK",
                       help="drill only the alarms whose drill could play out differently than on STACK "
                            "(their override or a config key their drill depends on differs)")
    drill.add_argument("--report", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
    drill.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                       help=f"length of a period relative to the declared one (default {DEFAULT_TIME_SCALE})")


def main(args: argparse.Namespace) -> int:
    unknown = [a for a in args.alarm or [] if a not in DRILLS]
    if unknown:
        print(f"localcloud drill: --alarm {unknown[0]!r} is not an alarm id; allowed: {', '.join(DRILLS)}",
              file=sys.stderr)
        return EXIT_ERROR
    if not 0 < args.time_scale <= 1:
        print(f"localcloud drill: --time-scale must be in (0, 1], got {args.time_scale}", file=sys.stderr)
        return EXIT_ERROR
    alarm_ids = args.alarm
    if args.differing_from:
        try:
            alarm_ids = [a for a in differing_alarms(args.stack, args.differing_from)
                         if args.alarm is None or a in args.alarm]
        except StackConfigError as exc:
            print(f"localcloud drill: --differing-from: {exc}", file=sys.stderr)
            return EXIT_ERROR
        print(f"localcloud drill: {len(alarm_ids)} alarm(s) differ from {args.differing_from!r}: "
              f"{', '.join(alarm_ids) or 'none'}", flush=True)
        if not alarm_ids:
            return EXIT_OK
    run = DrillRun(args.stack, alarm_ids, time_scale=args.time_scale,
                   threshold_scale=max(args.time_scale, DEFAULT_THRESHOLD_SCALE),
                   log=lambda line: print(line, flush=True))
    print(f"localcloud drill: stack {args.stack!r}, {len(run.alarm_ids)} alarm(s), periods x{args.time_scale:g}",
          flush=True)
    began = time.monotonic()
    # The faults are deliberate: the warnings they cause (failed DLQ sends, retries) are expected.
    logging.getLogger("localcloud").setLevel(logging.ERROR)
    try:
        results = run.run()
    except Exception as exc:  # noqa: BLE001 - a cloud that cannot start is reported, not a traceback
        print(f"localcloud drill: cannot run the drills on stack {args.stack!r}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    elapsed = time.monotonic() - began
    print(table(results))
    print(f"drill time: {elapsed:.0f} s (start-up {run.startup_s or 0:.0f} s)")
    if args.report is not None:
        args.report.write_text(json.dumps({"stack": args.stack, "timeScale": args.time_scale,
                                           "seconds": round(elapsed, 1),
                                           "results": [r.to_json() for r in results]}, indent=2) + "\n")
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED
