"""What each handler's cold start spends on imports, step by step (``make bench-cold``).

Each sample is a fresh interpreter, as a new Lambda container is, with the
archive root (handlers/) on sys.path and the function's environment set. The
steps are cumulative imports in the order the handler itself pulls them in, so
each figure is what that step *adds*. Absolute milliseconds move with the load
on a shared machine; the last column is the handler's whole import as a ratio
of ``import boto3`` measured in the same interpreters, which is the figure to
compare between runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ARCHIVE_ROOT = Path(__file__).resolve().parents[1] / "handlers"

# handler module -> (its telemetry module, the environment it needs at import)
HANDLERS: dict[str, tuple[str, dict[str, str]]] = {
    "authorizer": ("telemetry.auth", {"DEVICES_TABLE": "devices", "DEVICE_DAILY_READING_QUOTA": "200000"}),
    "ingest": ("telemetry.ingest_app", {"STREAM_NAME": "stream"}),
    "processor": ("telemetry.process", {"READINGS_TABLE": "readings", "DEVICES_TABLE": "devices"}),
}

STEPS = ("boto3", "powertools", "fastjsonschema", "telemetry", "handler")

_DRIVER = """
import json, sys, time
marks = [time.perf_counter()]
import boto3
marks.append(time.perf_counter())
import aws_lambda_powertools.logging, aws_lambda_powertools.metrics
marks.append(time.perf_counter())
import fastjsonschema
marks.append(time.perf_counter())
__import__(sys.argv[1])
marks.append(time.perf_counter())
__import__(sys.argv[2])
marks.append(time.perf_counter())
print(json.dumps([(b - a) * 1000 for a, b in zip(marks, marks[1:])]))
"""


def sample(handler: str) -> list[float]:
    """One fresh interpreter: milliseconds added by each step."""
    telemetry_module, extra_env = HANDLERS[handler]
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "POWERTOOLS_SERVICE_NAME": handler, **extra_env}
    out = subprocess.run([sys.executable, "-c", _DRIVER, telemetry_module, handler], cwd=ARCHIVE_ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    return [float(v) for v in json.loads(out.strip().splitlines()[-1])]


def measure(runs: int) -> dict[str, dict[str, float]]:
    """handler -> step -> median milliseconds over ``runs`` fresh interpreters (interleaved)."""
    samples: dict[str, list[list[float]]] = {h: [] for h in HANDLERS}
    for _ in range(runs):
        for handler in HANDLERS:  # interleaved, so load drifts hit every handler alike
            samples[handler].append(sample(handler))
    result: dict[str, dict[str, float]] = {}
    for handler, rows in samples.items():
        medians = {step: statistics.median(row[i] for row in rows) for i, step in enumerate(STEPS)}
        medians["total"] = statistics.median(sum(row) for row in rows)
        medians["total/boto3"] = statistics.median(sum(row) / row[0] for row in rows)
        result[handler] = medians
    return result


def table(result: dict[str, dict[str, float]]) -> str:
    names = {"boto3": "`import boto3`", "powertools": "Powertools Logger + Metrics (after boto3)",
             "fastjsonschema": "fastjsonschema (after the above)", "telemetry": "our `telemetry` modules (schema compiled)",
             "handler": "handler module: config, Logger/Metrics, boto3 client", "total": "total",
             "total/boto3": "**total / `import boto3`** (ratio, same run)"}
    lines = ["| step (ms, median) | " + " | ".join(HANDLERS) + " |", "|---|" + "---|" * len(HANDLERS)]
    for key, label in names.items():
        fmt = "{:.2f}" if key == "total/boto3" else "{:.0f}"
        lines.append(f"| {label} | " + " | ".join(fmt.format(result[h][key]) for h in HANDLERS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per handler (default 9)")
    args = parser.parse_args(argv)
    print(table(measure(args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
