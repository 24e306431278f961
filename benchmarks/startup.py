"""Start-up time of the local cloud: from the command until the API answers GET /health.

Two ways, both counted to the first 200 from /health (the moment a device could
start sending): `python -m localcloud serve` as a child process - what a user
types, interpreter and imports included - and `LocalCloud.start()` in-process.
The child process is found through the `.localcloud/stack.json` it writes
(its `apiUrl`), and is stopped with SIGTERM (which `serve` handles like Ctrl-C).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fleet.client import ApiClient


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


class ServeFailed(RuntimeError):
    """`python -m localcloud serve` did not bring up a healthy API."""


class Served:
    """A `python -m localcloud serve` child: started, timed to its first healthy answer, stopped by SIGTERM.

    Running the local cloud in its own process also keeps the load generator off
    the gateway's GIL, so the throughput measured is the local cloud's, not the
    fleet's.
    """

    def __init__(self, project_dir: Path, stack: str, state_dir: Path) -> None:
        self.project_dir, self.stack, self.state_dir = project_dir, stack, state_dir
        self.proc: "subprocess.Popen[bytes] | None" = None
        self.startup_s: float | None = None
        self.stop_s: float | None = None
        self.outputs: dict[str, Any] = {}

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def start(self, timeout_s: float = 90.0) -> "Served":
        wall_start = time.time()
        start = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "serve", "--stack", self.stack, "--state-dir", str(self.state_dir)],
            cwd=self.project_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy(),
        )
        while time.monotonic() < start + timeout_s and self.proc.poll() is None:
            url = _api_url_written_since(self.stack_file, wall_start - 1.0)
            if url is not None and healthy(url):
                self.startup_s = time.monotonic() - start
                self.outputs = json.loads(self.stack_file.read_text())
                return self
            time.sleep(0.02)
        code = self.proc.poll()
        err = self.proc.stderr.read().decode(errors="replace")[-800:] if code is not None and self.proc.stderr else ""
        self.stop()
        raise ServeFailed(f"no healthy API within {timeout_s:.0f} s (exit {code}) {err}")

    def stop(self) -> None:
        if self.proc is not None:
            self.stop_s = _stop(self.proc)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def _stop(proc: "subprocess.Popen[Any]") -> float | None:
    """SIGTERM (handled like Ctrl-C by `serve`; SIGINT is ignored in background jobs) and time the
    orderly shutdown; kill after 20 s."""
    if proc.poll() is not None:
        return None
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    return time.monotonic() - began
