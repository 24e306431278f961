"""Start-up time of the local cloud: from the command until the API answers GET /health.

Two ways, both counted to the first 200 from /health (the moment a device could
start sending): `python -m localcloud serve` as a child process - what a user
types, interpreter and imports included - and `LocalCloud.start()` in-process.
The child process is found through the `.localcloud/stack.json` it writes
(its `apiUrl`), and is stopped with SIGINT like a Ctrl-C.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.client import ApiClient


@dataclass(frozen=True)
class Startup:
    seconds: float
    stop_seconds: float | None = None
    error: str | None = None


def healthy(api_url: str) -> bool:
    client = ApiClient(api_url, timeout=1.0, retries=0)
    try:
        return client.health().status == 200
    finally:
        client.close()


def wait_healthy(api_url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if healthy(api_url):
            return True
        time.sleep(0.02)
    return False


def _api_url_written_since(stack_file: Path, since: float) -> str | None:
    try:
        if stack_file.stat().st_mtime < since:
            return None
        url = json.loads(stack_file.read_text()).get("apiUrl")
        return url if isinstance(url, str) else None
    except (OSError, ValueError):
        return None  # not there yet, or half-written


def subprocess_startup(project_dir: Path, stack: str, timeout_s: float = 60.0) -> Startup:
    stack_file = project_dir / ".localcloud" / "stack.json"
    wall_start = time.time()
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "serve", "--stack", stack],
        cwd=project_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
    )
    deadline = start + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            url = _api_url_written_since(stack_file, wall_start - 1.0)
            if url is not None and healthy(url):
                up = time.monotonic() - start
                return Startup(up, _stop(proc))
            time.sleep(0.02)
        err = proc.stderr.read().decode(errors="replace")[-500:] if proc.poll() is not None and proc.stderr else ""
        return Startup(float("nan"), _stop(proc), f"no healthy API within {timeout_s:.0f} s (exit {proc.poll()}) {err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stop(proc: "subprocess.Popen[Any]") -> float | None:
    """SIGINT (Ctrl-C) and time the orderly shutdown; kill after 20 s."""
    if proc.poll() is not None:
        return None
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    return time.monotonic() - began
