"""Fixtures: the whole program run under mocks, once per stack, in subprocesses.

A subprocess per stack keeps Pulumi's process-global runtime state (and the
cached ``__main__``) from leaking between runs; the stacks run in parallel.
"""
from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PROJECT_DIR = HERE.parents[1]
if str(PROJECT_DIR) not in sys.path:  # settings/ and components/ are top-level packages
    sys.path.insert(0, str(PROJECT_DIR))

from infra_graph import Graph  # noqa: E402


def run_stack(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recorded graph of ``stack`` (optionally with config overrides) as JSON data."""
    cmd = [sys.executable, str(HERE / "infra_mockrun.py"), stack]
    if overrides:
        cmd.append(json.dumps(overrides))
    done = subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"mock run of {stack} crashed:\n{done.stderr}")
    return json.loads(done.stdout)


def graph_of(stack: str, overrides: dict[str, Any] | None = None) -> Graph:
    data = run_stack(stack, overrides)
    if "error" in data:
        raise AssertionError(f"program failed for {stack}: {data['error']['traceback']}")
    return Graph(stack, data)


VARIANTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "dev": ("dev", None),
    "prod": ("prod", None),
    # customer managed stream key, CORS and an alarm email: the optional branches
    "dev-options": ("dev", {
        "streamKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "corsAllowOrigins": ["https://console.example.com"],
        "alarmEmail": "ops@example.com",
    }),
}


@pytest.fixture(scope="session")
def graphs() -> dict[str, Graph]:
    with ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
        futures = {k: pool.submit(graph_of, s, o) for k, (s, o) in VARIANTS.items()}
        return {k: f.result() for k, f in futures.items()}


@pytest.fixture(params=["dev", "prod"])
def graph(request: pytest.FixtureRequest, graphs: dict[str, Graph]) -> Graph:
    return graphs[request.param]
