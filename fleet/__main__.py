"""Entry point: `python -m fleet run ...` or `python -m fleet demo ...`."""
from __future__ import annotations

import sys

from .cli import EXIT_USAGE, run_command, sigterm_as_interrupt
from .config import ConfigError, config_from_args, parse


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sigterm_as_interrupt()
    if args.command == "demo":
        from .demo import demo

        return demo(args)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_command(config)


if __name__ == "__main__":
    sys.exit(main())
