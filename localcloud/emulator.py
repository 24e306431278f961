"""The AWS emulator: moto's server on loopback, with our fixes and fault injection.

By default moto runs in a child process (``python -m localcloud.emulator``):
on this 2-core machine it then gets its own core and its own GIL, instead of
competing with the gateway and stream pollers of the data plane.  Measured
(4 client threads x PutRecords of 100 records, 2 shards, busy machine):
subprocess 12.0-14.2k records/s, thread 10.6-10.8k records/s, and in the
thread mode every request also takes GIL time from the data plane.  Start-up
is 0.3 s vs 0.1 s.  ``mode="thread"`` runs the same WSGI app in a thread of
this process (handy in tests that want to poke moto's backends directly).

Either way the app is ``FaultInjector(moto)`` with :mod:`emulator_patches`
applied, so both modes behave identically towards clients.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

from .emulator_faults import ADMIN_PATH, FaultInjector

DEFAULT_REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
READY_PREFIX = "LOCALCLOUD_EMULATOR_READY"
Mode = Literal["subprocess", "thread"]


class EmulatorError(RuntimeError):
    """The emulator could not be started or reached."""


def client_env(endpoint_url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Environment that points any boto3 client (also in child processes) at the emulator.

    ``AWS_ENDPOINT_URL`` is honoured by botocore >= 1.31 for every service, so
    unchanged handler code (``boto3.client("kinesis")``) reaches the emulator.
    """
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
    }


def build_app(apply_fixes: bool = True) -> Any:
    """The emulator's WSGI app: moto's dispatcher behind the cost meter, behind the fault injector,
    behind IAM enforcement. A call IAM refuses never reaches fault rules or moto, as on AWS; a call
    the injector refuses never reaches moto, so AWS would not bill it and neither does the meter."""
    from . import meter_emulator

    meter_emulator.install()
    if apply_fixes:
        from . import emulator_patches

        emulator_patches.apply()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from .iam_enforcer import IamEnforcer
    from .xray_sink import XRaySink

    return IamEnforcer(XRaySink(FaultInjector(meter_emulator.MeterApp(DomainDispatcherApplication(create_backend_app)))))


#: moto backends the pipeline uses; names as in moto.backend_index.
WARM_SERVICES = ("kinesis", "dynamodb", "iam", "logs", "awslambda", "apigateway", "sqs", "sns", "cloudwatch", "kms", "sts")


def warm_up(app: Any, region: str = DEFAULT_REGION) -> float:
    """Build moto's per-service apps and backends ahead of the first request.

    moto does both lazily on a service's first request, under the dispatcher's
    lock: about 1.1 s in total for our services (lambda 0.27 s, apigatewayv2
    0.33 s), which otherwise lands on the provisioner's critical path.  Run in
    a background thread of the emulator process it overlaps with the
    provisioner starting up on the other core.  Returns the seconds spent.
    """
    from moto.backends import get_backend

    started = time.perf_counter()
    dispatcher = app.wrapped
    for service in WARM_SERVICES:
        with dispatcher.lock:
            if service not in dispatcher.app_instances:
                dispatcher.app_instances[service] = dispatcher.create_app(service)
        try:
            get_backend(service)[ACCOUNT_ID][region]  # type: ignore[call-overload]  # moto's backend dict is typed by service literal
        except (KeyError, ValueError):
            pass  # a global service keyed differently (iam: "aws"); its app is warm anyway
    return time.perf_counter() - started


def _make_server(host: str, port: int, app: Any) -> Any:
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    return make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)


class Emulator:
    """Start/stop moto on ``host``; ``endpoint_url`` is valid after :meth:`start`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        mode: Mode = "subprocess",
        apply_fixes: bool = True,
        start_timeout_s: float = 30.0,
        load_managed_policies: bool = False,
    ) -> None:
        if mode not in ("subprocess", "thread"):
            raise ValueError(f"unknown emulator mode {mode!r}: use 'subprocess' or 'thread'")
        self.host = host
        self.port = port
        self.region = region
        self.mode: Mode = mode
        self.apply_fixes = apply_fixes
        self.start_timeout_s = start_timeout_s
        # AWS managed IAM policies (arn:aws:iam::aws:policy/...) exist in moto only
        # with this set; it costs ~0.6 s on the first IAM call, and the program
        # uses inline policies only, so it is off unless asked for.
        self.load_managed_policies = load_managed_policies
        self._proc: subprocess.Popen[str] | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.endpoint_url: str = ""

    # -- lifecycle -------------------------------------------------------
    def start(self) -> "Emulator":
        if self.running:
            return self
        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_subprocess()
        self.endpoint_url = f"http://{self.host}:{self.port}"
        return self

    @property
    def running(self) -> bool:
        return self._server is not None or (self._proc is not None and self._proc.poll() is None)

    def _start_thread(self) -> None:
        if self.load_managed_policies:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        self._server = _make_server(self.host, self.port, build_app(self.apply_fixes))
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="localcloud-emulator", daemon=True
        )
        self._thread.start()

    def _start_subprocess(self) -> None:
        cmd = [sys.executable, "-m", "localcloud.emulator", "--host", self.host, "--port", str(self.port)]
        if not self.apply_fixes:
            cmd.append("--no-fixes")
        env = dict(os.environ)
        if self.load_managed_policies:
            env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        # The child must import localcloud from this checkout whatever our cwd is.
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        # stdin stays an open pipe: the child exits when it reads EOF, so it
        # cannot outlive us even if we are killed without running stop().  Its
        # own session keeps a terminal's Ctrl-C (sent to the whole foreground
        # group) from stopping moto before the data plane has shut down.
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True, env=env,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise EmulatorError(f"emulator did not start within {self.start_timeout_s:.0f}s")
            ready, _, _ = select.select([self._proc.stdout], [], [], remaining)
            if not ready:
                continue
            line = self._proc.stdout.readline()
            if not line:
                code = self._proc.wait()
                self._proc = None
                raise EmulatorError(f"emulator process exited with code {code} before it was ready")
            if line.startswith(READY_PREFIX):
                self.port = int(line.split()[1])
                return

    def stop(self) -> None:
        """Stop the server and wait for it; safe to call more than once."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------
    def client_env(self) -> dict[str, str]:
        return client_env(self.endpoint_url, self.region)

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` bound to this emulator (explicit fake credentials)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            config=kwargs.pop("config", Config(retries={"max_attempts": 2, "mode": "standard"})),
            **kwargs,
        )

    # -- fault injection -------------------------------------------------
    def inject_fault(self, rule: dict[str, Any]) -> int:
        """Add a fault rule (see :mod:`localcloud.emulator_faults`); returns its id."""
        return int(self._admin("POST", rule)["id"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self._admin("GET")["rules"])

    def clear_faults(self) -> None:
        self._admin("DELETE")

    def _admin(self, method: str, body: Any = None) -> dict[str, Any]:
        if not self.endpoint_url:
            raise EmulatorError("the emulator is not started")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint_url + ADMIN_PATH, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise EmulatorError(f"fault rule rejected: {detail}") from exc


def _serve(host: str, port: int, apply_fixes: bool, warm: bool) -> None:
    app = build_app(apply_fixes)
    server = _make_server(host, port, app)

    def shutdown(*_args: object) -> None:
        # serve_forever runs on the main thread; shutdown() must come from another.
        threading.Thread(target=server.shutdown, daemon=True).start()

    def watch_parent() -> None:
        while sys.stdin.read(65536):
            pass
        shutdown()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    print(f"{READY_PREFIX} {server.server_address[1]}", flush=True)
    if warm:
        threading.Thread(target=warm_up, args=(app,), name="warm-up", daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.1)  # shutdown() waits up to one poll interval
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-fixes", action="store_true", help="serve unpatched moto (to measure the fixes)")
    parser.add_argument("--no-warm-up", action="store_true", help="build moto's service apps lazily")
    args = parser.parse_args(argv)
    _serve(args.host, args.port, apply_fixes=not args.no_fixes, warm=not args.no_warm_up)
    return 0


if __name__ == "__main__":
    sys.exit(main())
