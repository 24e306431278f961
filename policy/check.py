"""Offline policy run: every policy of the pack against a stack's resource graph, without the Pulumi CLI.

    python -m policy.check --stack dev          # the program run under Pulumi's mocks (tests/infra/infra_mockrun.py)
    python -m policy.check --graph state.json   # a saved graph: that runner's JSON, or `pulumi stack export` output

Exit 0 when nothing is violated, 1 naming each violation and its resource, 2 on bad usage.
The mocks accept any input, so this checks what the program *declares*, as `pulumi preview
--policy-pack policy` would, with every value known.
"""
from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .policies import POLICIES

PROJECT_DIR = Path(__file__).resolve().parent.parent
MOCK_RUNNER = PROJECT_DIR / "tests" / "infra" / "infra_mockrun.py"
EXIT_VIOLATIONS, EXIT_USAGE = 1, 2


@dataclass(frozen=True)
class Violation:
    policy: str
    resource_type: str
    resource_name: str
    message: str

    def __str__(self) -> str:
        return f"[{self.policy}] {self.resource_type} {self.resource_name}: {self.message}"


def mock_graph(stack: str) -> list[dict[str, Any]]:
    """The resources the program declares for ``stack`` (Pulumi.<stack>.yaml), run under mocks."""
    done = subprocess.run([sys.executable, str(MOCK_RUNNER), stack], cwd="/", capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the mock run of stack {stack!r} crashed:\n{done.stderr}")
    data = json.loads(done.stdout)
    if "error" in data:
        raise RuntimeError(f"the program failed for stack {stack!r}:\n{data['error']['traceback']}")
    return list(data["resources"])


def graph_from_file(path: Path) -> list[dict[str, Any]]:
    """Resources from the mock runner's JSON or from `pulumi stack export` (inputs are what policies read)."""
    data = json.loads(path.read_text())
    if "deployment" in data:
        return [{"type": r["type"], "urn": r["urn"], "name": r["urn"].rsplit("::", 1)[-1],
                 "inputs": r.get("inputs") or {}, "protect": bool(r.get("protect")), "parent": r.get("parent")}
                for r in data["deployment"].get("resources") or []]
    return list(data["resources"])


def _options(r: dict[str, Any]) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=bool(r.get("protect")), ignore_changes=[], delete_before_replace=None,
                                 aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                                 additional_secret_outputs=[], parent=r.get("parent") or None)


def _settle(result: Any) -> None:
    if result is not None and inspect.isawaitable(result):
        asyncio.run(_await(result))


async def _await(result: Any) -> None:
    await result


def evaluate(resources: Sequence[dict[str, Any]]) -> list[Violation]:
    """Run every policy the way the policy server would, collecting what they report."""
    violations: list[Violation] = []
    by_urn = {r["urn"]: r for r in resources}
    policy_resources = [PolicyResource(r["type"], r.get("inputs") or {}, r["urn"], r["name"], _options(r),
                                       None, None, [], {}) for r in resources]
    for policy in POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                def report(message: str, urn: str | None = None, r: dict[str, Any] = r, name: str = policy.name) -> None:
                    violations.append(Violation(name, r["type"], r["name"], message))
                args = ResourceValidationArgs(r["type"], r.get("inputs") or {}, r["urn"], r["name"], _options(r), None)
                _settle(policy.validate(args, report))
        elif isinstance(policy, StackValidationPolicy):
            def report_stack(message: str, urn: str | None = None, name: str = policy.name) -> None:
                r = by_urn.get(urn or "")
                violations.append(Violation(name, r["type"] if r else "stack", r["name"] if r else "(stack)", message))
            _settle(policy.validate(StackValidationArgs(policy_resources), report_stack))
    return violations


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policy.check", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="run the program under mocks with Pulumi.<stack>.yaml (dev, prod, ...)")
    source.add_argument("--graph", type=Path, help="a saved graph (mock runner JSON or `pulumi stack export`)")
    args = parser.parse_args(argv)
    if args.stack is not None and not (PROJECT_DIR / f"Pulumi.{args.stack}.yaml").is_file():
        stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))
        parser.error(f"--stack: no Pulumi.{args.stack}.yaml; one of {', '.join(stacks)}")
    if args.graph is not None and not args.graph.is_file():
        parser.error(f"--graph: no such file: {args.graph}")
    resources = mock_graph(args.stack) if args.stack else graph_from_file(args.graph)
    violations = evaluate(resources)
    where = f"stack {args.stack}" if args.stack else str(args.graph)
    for v in violations:
        print(v)
    if violations:
        print(f"policy check: {len(violations)} violation(s) in {where}", file=sys.stderr)
        return EXIT_VIOLATIONS
    print(f"policy check: {len(POLICIES)} policies passed on {where} ({len(resources)} resources)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
