"""``python -m localcloud serve``: run the local cloud in the foreground until Ctrl-C or SIGTERM.

Exit codes: 0 after a clean shutdown, 2 when the cloud cannot start (unknown
stack, a settings error in the program, an unsupported resource or API payload
format, a port in use).
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .cloud import LocalCloud
from .emulator import EmulatorError
from .gateway import UnsupportedApi
from .provisioner import REPO_ROOT
from .resources.base import ProvisionError

EXIT_OK = 0
EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description="The iot-ingest local cloud.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="provision a stack into the emulator and serve its HTTP API")
    serve.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default: dev)")
    serve.add_argument("--port", type=int, default=0, help="HTTP API port (default: a free port)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--project-dir", type=Path, default=REPO_ROOT, help="the Pulumi project (default: this repo)")
    serve.add_argument("--state-dir", type=Path, default=None,
                       help="where stack.json and logs go (default: <project-dir>/.localcloud)")
    from .drills.cli import add_parser as add_drill_parser

    add_drill_parser(commands)
    return parser


def serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        print(f"localcloud: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return EXIT_ERROR
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    cloud = LocalCloud(Path(args.project_dir), stack=args.stack, host=args.host, api_port=args.port,
                       state_dir=args.state_dir)
    try:
        print(f"localcloud: starting stack {args.stack!r} ...", flush=True)
        try:
            cloud.start()
        except (ProvisionError, EmulatorError, UnsupportedApi, OSError) as exc:
            if stop.is_set():  # Ctrl-C reached the provisioner child too: not an error
                print("localcloud: interrupted while starting", file=sys.stderr)
                return EXIT_OK
            print(f"localcloud: cannot start stack {args.stack!r}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        if stop.is_set():  # Ctrl-C while starting
            return EXIT_OK
        print(f"localcloud: up in {cloud.startup_seconds:.1f} s", flush=True)
        print(f"  API URL:      {cloud.api_url}")
        print(f"  emulator URL: {cloud.endpoint_url}")
        print(f"  stack file:   {cloud.stack_file}")
        print(f"  try:          curl -s {cloud.api_url}/health")
        print("localcloud: serving until Ctrl-C", flush=True)
        stop.wait()
        print("localcloud: shutting down ...", flush=True)
        return EXIT_OK
    finally:
        cloud.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "drill":
        from .drills.cli import main as drill

        return drill(args)
    return EXIT_ERROR  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
