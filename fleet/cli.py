"""`python -m fleet run ...`: the fleet against any API URL, report on stdout, exit code for CI."""
from __future__ import annotations

import signal
import sys
from types import FrameType

from .config import ConfigError, FleetConfig
from .report import EXIT_NO_SERVICE, FleetReport
from .runner import RunError, run

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def sigterm_as_interrupt() -> None:
    """Treat SIGTERM like Ctrl-C, so `finally` blocks (stopping servers, closing sockets) run on both."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def emit(report: FleetReport, config: FleetConfig) -> int:
    print(report.render(), flush=True)
    if config.report_file is not None:
        report.write_json(config.report_file)
        print(f"report written to {config.report_file}")
    return EXIT_INTERRUPTED if report.interrupted else report.exit_code()


def run_command(config: FleetConfig) -> int:
    try:
        report = run(config)
    except ConfigError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return EXIT_NO_SERVICE
    return emit(report, config)
