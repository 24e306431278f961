"""``python -m planner``: monthly cost and capacity checks of a fleet on a stack; the README's cost section.

    python -m planner plan --stack prod --devices 1000 --interval 60 --readings 10 [--reading-bytes 200]
    python -m planner memory --stack prod
    python -m planner readme [--write | --check]

Exit codes: 0 fine; 1 ``plan``: a capacity check does not fit / ``readme --check``: the README
differs; 2 bad input (the message names the flag and what is allowed).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: same one-line form, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m planner", description="Cost planner for iot-ingest stacks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("plan", help="monthly cost by line item, $ per million readings, capacity checks")
    p.add_argument("--stack", required=True, help="stack whose Pulumi.<stack>.yaml is read (dev, prod, ...)")
    p.add_argument("--devices", type=int, required=True, help="devices in the fleet (>= 1)")
    p.add_argument("--interval", type=float, required=True, help="seconds between a device's requests (> 0)")
    p.add_argument("--readings", type=int, required=True, help="readings per request (1-500)")
    p.add_argument("--reading-bytes", type=int, default=200, help="JSON bytes per reading (default 200)")
    p.add_argument("--peak-factor", type=float, default=2.0, help="peak / average request rate for capacity (default 2)")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--project-dir", type=Path, default=None, help="repository root (default: this checkout)")
    p.add_argument("--calibration", type=Path, default=None, help="per-request figures (default docs/cost-calibration.json)")
    p.add_argument("--prices", type=Path, default=None, help="price list (default docs/prices-us-east-1.json)")
    m = sub.add_parser("memory", help="each function's compute cost and cold start at each memory size (measured CPU)")
    m.add_argument("--stack", required=True)
    r = sub.add_parser("readme", help="print, --write or --check the README's generated cost section")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="replace the section in README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md's section is out of date")
    r.add_argument("--project-dir", type=Path, default=None)
    return parser


def _plan(args: argparse.Namespace) -> int:
    from localcloud.stack_config import StackConfigError
    from settings import SettingsError

    from .calibration import CALIBRATION_FILE, CalibrationError, load_calibration
    from .capacity import checks
    from .model import PlanInputError, Workload, plan
    from .prices import PRICES_FILE, PricesError, load_prices
    from .report import failed, render_markdown, render_text, to_json
    from .stack import REPO_ROOT, load_stack_settings

    try:
        workload = Workload(args.devices, args.interval, args.readings, args.reading_bytes, args.peak_factor).validate()
        try:
            settings = load_stack_settings(args.stack, args.project_dir or REPO_ROOT)
        except StackConfigError as exc:
            raise PlanInputError(f"--stack {args.stack}: {exc}") from exc
        except SettingsError as exc:
            raise PlanInputError(f"--stack {args.stack}: its config is invalid: {exc}") from exc
        result = plan(args.stack, settings, workload, load_calibration(args.stack, args.calibration or CALIBRATION_FILE),
                      load_prices(args.prices or PRICES_FILE))
    except (PlanInputError, CalibrationError, PricesError) as exc:
        print(f"planner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        print(json.dumps(to_json(result), indent=2))
    elif args.format == "markdown":
        print(render_markdown([result]), end="")
    else:
        print(render_text(result))
    return 1 if failed(checks(result)) else 0


def _readme(args: argparse.Namespace) -> int:
    from .readme import ReadmeError, current_section, render_section, replace_section
    from .stack import REPO_ROOT

    root = args.project_dir or REPO_ROOT
    section = render_section(root)
    if not (args.write or args.check):
        print(section)
        return 0
    path = Path(root) / "README.md"
    text = path.read_text(encoding="utf-8")
    try:
        if args.check:
            same = current_section(text) == section
            print("README cost section is up to date" if same else
                  "README cost section differs from the planner: run `make readme-cost`")
            return 0 if same else 1
        path.write_text(replace_section(text, section), encoding="utf-8")
    except ReadmeError as exc:
        print(f"planner: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote the cost section of {path}")
    return 0


def _memory(args: argparse.Namespace) -> int:
    from .calibration import CalibrationError
    from .memory import main as memory_main
    from .prices import load_prices

    try:
        print(memory_main(args.stack, load_prices()))
    except CalibrationError as exc:
        print(f"planner: --stack {args.stack}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"plan": _plan, "memory": _memory, "readme": _readme}[args.command](args)
