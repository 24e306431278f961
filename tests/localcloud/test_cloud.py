"""LocalCloud and `python -m localcloud serve`: the whole local cloud up on loopback and down again."""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest

from localcloud.cloud import LocalCloud
from localcloud.provisioner import ProvisionError

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def child_pids() -> set[int]:
    """Direct children of this process (read from /proc, no extra dependency)."""
    me, out = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                out.add(int(entry.name))
    return out


def port_open(url: str) -> bool:
    host, port = url.split("//", 1)[1].split(":")
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, int(port))) == 0


def get_json(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=30) as response:  # generous: CI machines can be very busy
        return response.status, json.loads(response.read())


def test_local_cloud_serves_health_and_stops_cleanly(tmp_path: Path) -> None:
    before = child_pids()
    cloud = LocalCloud(REPO, stack="dev", state_dir=tmp_path / "state")
    with cloud:
        assert get_json(f"{cloud.api_url}/health") == (200, {"status": "ok"})
        # measured and reported; how fast is a benchmark's concern (make bench), not a test's
        assert cloud.startup_seconds is not None and cloud.startup_seconds > 0
        assert cloud.stack is not None and cloud.stack.outputs["apiUrl"] == cloud.api_url
        stack_json = json.loads((tmp_path / "state" / "stack.json").read_text())
        assert stack_json["apiUrl"] == cloud.api_url and stack_json["endpointUrl"] == cloud.endpoint_url
        api_url, endpoint_url = cloud.api_url, cloud.endpoint_url
        assert port_open(api_url) and port_open(endpoint_url)
    cloud.stop()  # idempotent
    assert cloud.dataplane is None and not cloud.emulator.running
    assert not port_open(api_url) and not port_open(endpoint_url)
    deadline = time.monotonic() + 30  # generous: a loaded CI machine may be slow to reap
    while child_pids() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child_pids() - before == set()


def test_failed_start_leaves_nothing_running(tmp_path: Path) -> None:
    before = child_pids()
    cloud = LocalCloud(REPO, stack="no-such-stack", state_dir=tmp_path)
    with pytest.raises(ProvisionError, match="unknown stack 'no-such-stack'"):
        cloud.start()
    assert not cloud.emulator.running and cloud.dataplane is None
    assert child_pids() - before == set()


class PipeReader:
    """Reads a child's pipe line by line in a thread: the test can wait for a line with a
    deadline, and a chatty pipe never fills up and stalls the child."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._seen: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe: IO[str]) -> None:
        for line in iter(pipe.readline, ""):
            self._seen.append(line)
            self.lines.put(line)
        self.lines.put(None)  # end of file

    def readline(self, deadline: float) -> str | None:
        """The next line, None at end of file; raises queue.Empty once the deadline passes."""
        return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))

    def text(self, timeout: float = 0.0) -> str:
        """Everything read so far, after waiting up to ``timeout`` for end of file."""
        self._thread.join(timeout)
        return "".join(self._seen)


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localcloud", "serve", *args], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_serve_unknown_stack_exits_2_with_a_message(tmp_path: Path) -> None:
    proc = serve("--stack", "nope", "--state-dir", str(tmp_path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "unknown stack 'nope'" in err and "dev, prod" in err
    assert "Traceback" not in err


def test_serve_prints_urls_answers_and_shuts_down_on_sigterm(tmp_path: Path) -> None:
    proc = serve("--stack", "dev", "--state-dir", str(tmp_path))
    try:
        lines: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        out, err = PipeReader(proc.stdout), PipeReader(proc.stderr)
        deadline = time.monotonic() + 120  # generous: a loaded CI machine may start slowly
        while not any("try:" in line for line in lines):
            try:
                line = out.readline(deadline)
            except queue.Empty:
                proc.kill()
                proc.wait()
                pytest.fail(f"serve printed no 'try:' line within 120 s\nstdout: {''.join(lines)}\n"
                            f"stderr: {err.text(timeout=10)[-4000:]}")
            if line is None:
                pytest.fail(f"serve exited early: {proc.wait(timeout=60)}\nstdout: {''.join(lines)}\n"
                            f"stderr: {err.text(timeout=10)[-4000:]}")
            lines.append(line)
        text = "".join(lines)
        api_url = next(ln.split()[-1] for ln in lines if "API URL:" in ln)
        assert "emulator URL: http://127.0.0.1:" in text
        assert str(tmp_path / "stack.json") in text and f"curl -s {api_url}/health" in text
        assert get_json(f"{api_url}/health") == (200, {"status": "ok"})
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        stderr = err.text(timeout=30)  # the readers own the pipes: no communicate()
        assert proc.returncode == 0, stderr[-2000:]
        assert not port_open(api_url), stderr[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_port_in_use_fails_before_provisioning(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cloud = LocalCloud(REPO, stack="dev", api_port=port, state_dir=tmp_path)
        with pytest.raises(OSError, match=f"cannot use 127.0.0.1:{port}"):
            cloud.start()
    assert not (tmp_path / "stack.json").exists() and not cloud.emulator.running


def test_reserved_port_is_not_handed_out_but_the_gateway_can_bind_it() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from localcloud.cloud import reserve_port

    reservation = reserve_port("127.0.0.1")
    port = reservation.getsockname()[1]
    try:
        others = []
        for _ in range(200):
            with socket.socket() as other:
                other.bind(("127.0.0.1", 0))
                others.append(other.getsockname()[1])
        assert port not in others
        server = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
        server.server_close()
    finally:
        reservation.close()
