"""Fixtures: the whole program run under mocks, once per stack, in subprocesses.

A subprocess per stack keeps Pulumi's process-global runtime state (and the
cached ``__main__``) from leaking between runs; the stacks run in parallel.
"""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PROJECT_DIR = HERE.parents[1]
if str(PROJECT_DIR) not in sys.path:  # settings/ and components/ are top-level packages
    sys.path.insert(0, str(PROJECT_DIR))

from infra_graph import Graph, graph_of, run_stack  # noqa: E402,F401 - after the sys.path insert; re-exported for the tests


VARIANTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "dev": ("dev", None),
    "prod": ("prod", None),
    # customer managed stream key, CORS, an alarm email and alarm overrides of
    # every field: the optional branches
    "dev-options": ("dev", {
        "streamKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "corsAllowOrigins": ["https://console.example.com"],
        "alarmEmail": "ops@example.com",
        "deviceDailyReadingQuota": "unlimited",
        "alarmOverrides": {
            "ingest-errors": {"period": 300, "evaluationPeriods": 4, "datapointsToAlarm": 4,
                              "treatMissingData": "breaching"},
            "stream-iterator-age": {"evaluationPeriods": 1},  # below the default 3 datapoints
            "processor-duration": {"threshold": 30000},
            "api-5xx": {"enabled": False},
            "api-latency-p99": {"evaluateLowSampleCountPercentiles": "evaluate"},
        },
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


@pytest.fixture(params=list(VARIANTS))
def any_graph(request: pytest.FixtureRequest, graphs: dict[str, Graph]) -> Graph:
    """Every variant, including dev-options (customer key, alarm overrides)."""
    return graphs[request.param]
