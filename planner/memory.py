"""What each function's memory setting would cost, from the meter's measured CPU and AWS calls
(``python -m planner memory --stack prod``): the evidence for the memory sizes in the stack files.

Lambda gives CPU in proportion to memory (1,769 MB = one vCPU), so below 1,769 MB the CPU part of
an invocation costs the same GB-seconds at any size, while the time spent waiting for AWS costs
more the more memory is declared: the cheapest size is the smallest that fits. What a smaller size
costs instead is latency, above all the cold start: the handlers' imports take about 260 ms of CPU
on one core (docs/handlers.md, `make bench-cold`), stretched by the same factor.
"""
from __future__ import annotations

from typing import Any

from localcloud import billing_units as units

from .calibration import load_calibration
from .prices import Prices

SIZES = (128, 256, 512, 1024, 1769)
COLD_IMPORT_CPU_MS = 260.0  # docs/handlers.md: median cold import of each handler, one core


def memory_table(calibration: dict[str, Any], prices: Prices) -> list[dict[str, Any]]:
    readings_per_request = float(calibration["workload"]["readingsPerRequest"])
    rows = []
    for role, f in calibration["functions"].items():
        cpu, calls = float(f["cpuMsPerInvocation"]), {k: float(v) for k, v in f["callsPerInvocation"].items()}
        wait = sum(units.SERVICE_LATENCY_MS.get(op, units.DEFAULT_SERVICE_LATENCY_MS) * n for op, n in calls.items())
        invocations_per_million = float(f["invocationsPerRequest"]) / readings_per_request * 1e6
        for size in SIZES:
            ms = units.lambda_billed_ms(units.modelled_duration_ms(cpu, wait, size))
            gb_s = size / 1024 * ms / 1000
            rows.append({"function": role, "memoryMb": size, "modelledMs": ms, "gbSecondsPerInvocation": gb_s,
                         "perMillionReadings": gb_s * invocations_per_million * prices["lambda_per_gb_second_arm64"],
                         "coldImportMs": COLD_IMPORT_CPU_MS * max(1.0, units.LAMBDA_MB_PER_VCPU / size),
                         "maxRssMb": f.get("maxRssMb"), "declaredMb": f.get("memoryMb")})
    return rows


def render(stack: str, calibration: dict[str, Any], prices: Prices) -> str:
    out = [f"stack {stack}: compute cost by memory size, from the meter's figures of {calibration['measuredAt']} "
           f"(commit {calibration['commit']})",
           "  function    MB  modelled ms/inv  GB-s/inv   $/M readings  cold import (ms)  peak RSS MB (declared)"]
    for r in memory_table(calibration, prices):
        out.append(f"  {r['function']:<10} {r['memoryMb']:>5}  {r['modelledMs']:>15,.0f}  {r['gbSecondsPerInvocation']:>8.4f}"
                   f"   {r['perMillionReadings']:>12.4f}  {r['coldImportMs']:>16,.0f}  {r['maxRssMb']} ({r['declaredMb']})")
    return "\n".join(out)


def main(stack: str, prices: Prices) -> str:
    return render(stack, load_calibration(stack), prices)
