"""What one invocation used, measured inside the Lambda worker, for the cost meter's model of
AWS duration (:func:`localcloud.billing_units.modelled_duration_ms`).

Local wall-clock durations include the emulator's own latency, so they are not what AWS would
bill. The worker reports instead the invocation's CPU time (``time.process_time``, every thread
of the worker) and the AWS calls it made, by ``service.Operation``; the runner turns the calls
into a stated per-call service latency. Peak RSS is reported to check the declared memory.

Calls are counted on botocore's ``before-send`` event, once per HTTP attempt (a retry is
another call AWS answers and the function waits for). Installed on boto3's default session
before the handler is imported, so unchanged handler code is observed.
"""
from __future__ import annotations

import resource
import sys
import time
from collections import Counter
from typing import Any

_calls: Counter[str] = Counter()


def _before_send(request: Any = None, **kwargs: Any) -> None:
    event_name = str(kwargs.get("event_name", ""))  # before-send.<service>.<Operation>
    parts = event_name.split(".")
    if len(parts) >= 3:
        _calls[f"{parts[1]}.{parts[2]}"] += 1


def install() -> None:
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-send", _before_send)


class Invocation:
    """Start at construction, ``finish()`` returns the usage dict sent back with the response."""

    def __init__(self) -> None:
        _calls.clear()
        self._cpu = time.process_time()

    def finish(self) -> dict[str, Any]:
        cpu_ms = (time.process_time() - self._cpu) * 1000
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
        rss_mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
        return {"cpuMs": round(cpu_ms, 3), "calls": dict(_calls), "maxRssMb": round(rss_mb, 1)}
