"""`python -m fleet demo` (what `make demo` runs): local cloud up, fleet, report, everything down.

The local cloud is stopped in `finally`, and SIGTERM is turned into
KeyboardInterrupt by the CLI, so Ctrl-C or a kill leaves no server processes or
listening ports behind. The exit code is the fleet's: 0 only if nothing
accepted was lost or duplicated.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cli import EXIT_INTERRUPTED, EXIT_USAGE, emit
from .config import ConfigError, config_from_args
from .cost import attach_cost, usage_snapshot
from .report import EXIT_NO_SERVICE
from .runner import RunError, run

REPO_ROOT = Path(__file__).resolve().parent.parent


def demo(args: argparse.Namespace) -> int:
    from localcloud.cloud import LocalCloud  # only the demo wiring depends on the local cloud

    project_dir: Path = args.project_dir or REPO_ROOT
    cloud = LocalCloud(project_dir, stack=args.stack)
    began = time.monotonic()
    try:
        print(f"starting the local cloud (stack {args.stack}) ...", flush=True)
        try:
            cloud.start()
        except Exception as exc:  # noqa: BLE001 - unknown stack, program error, emulator or port trouble: say it plainly
            print(f"fleet demo: the local cloud did not start: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_NO_SERVICE
        print(f"local cloud up in {time.monotonic() - began:.1f} s: {cloud.api_url}", flush=True)
        assert cloud.stack is not None  # start() returned, so the stack is provisioned
        outputs = cloud.stack.outputs
        stack_file: Path = cloud.stack_file
        config = config_from_args(
            args,
            api_url=cloud.api_url,
            endpoint_url=cloud.endpoint_url,
            region=getattr(cloud.stack, "region", None),
            readings_table=outputs.get("readingsTableName"),
            devices_table=outputs.get("devicesTableName"),
            stack_file=stack_file if stack_file.is_file() else None,
        )
        usage_before = usage_snapshot(cloud)
        report = run(config, before_alarm_check=cloud.dataplane.monitor.evaluate_alarms)
        attach_cost(report, cloud, usage_before, args.stack, project_dir)
        return emit(report, config)
    except ConfigError as exc:
        print(f"fleet demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"fleet demo: {exc}", file=sys.stderr)
        return EXIT_NO_SERVICE
    except KeyboardInterrupt:
        print("fleet demo: interrupted, shutting down", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        stopping = time.monotonic()
        try:
            cloud.stop()
        except KeyboardInterrupt:  # a second Ctrl-C during shutdown: try once more, then give up
            cloud.stop()
        print(f"local cloud stopped in {time.monotonic() - stopping:.1f} s "
              f"(demo total {time.monotonic() - began:.1f} s)", flush=True)
