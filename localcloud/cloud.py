"""LocalCloud: emulator + provisioned stack + data plane, started and stopped as one.

Order matters: the gateway's port is chosen *before* provisioning, because the
program's ``apiUrl`` output is computed from the API's endpoint at
provisioning time and must be the address the data plane then serves.  The
provisioning child is started before the emulator, so its imports overlap
with moto's start-up.
"""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from .emulator import DEFAULT_REGION, Emulator, Mode
from .model import ProvisionedStack
from .provisioner import REPO_ROOT, STATE_DIR_NAME, ProvisionRun


def reserve_port(host: str, port: int = 0) -> socket.socket:
    """Hold ``port`` (0: one the OS picks) until the gateway binds it.

    The socket is bound with SO_REUSEADDR but never listens: the OS then hands
    the port to nobody else (no other port-0 bind gets it), while the gateway's
    own SO_REUSEADDR bind still succeeds.  Closing it afterwards frees nothing
    the gateway needs.  A port someone already listens on fails here, before
    provisioning, with EADDRINUSE.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot use {host}:{port} for the HTTP API: {exc.strerror}") from exc
    return sock


def free_port(host: str) -> int:
    """A port nothing listens on right now (racy: prefer :func:`reserve_port`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalCloud:
    """The whole local cloud for one stack; ``start()``/``stop()`` or ``with LocalCloud() as cloud:``."""

    def __init__(
        self,
        project_dir: Path = REPO_ROOT,
        stack: str = "dev",
        host: str = "127.0.0.1",
        api_port: int = 0,
        state_dir: Path | None = None,
        *,
        region: str | None = None,
        emulator_mode: Mode = "subprocess",
        dataplane_options: dict[str, Any] | None = None,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.stack_name = stack
        self.host = host
        self.api_port = api_port
        self.state_dir = Path(state_dir) if state_dir else self.project_dir / STATE_DIR_NAME
        self.region = region
        self.dataplane_options = dict(dataplane_options or {})
        self.emulator = Emulator(host=host, region=region or DEFAULT_REGION, mode=emulator_mode)
        self.stack: ProvisionedStack | None = None
        self.dataplane: Any = None
        self.startup_seconds: float | None = None
        self._lock = threading.Lock()
        self._started = False

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    @property
    def api_url(self) -> str:
        if self.dataplane is not None:
            return str(self.dataplane.api_url)
        if self.stack is not None:
            return str(self.stack.outputs.get("apiUrl", ""))
        return ""

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    def start(self) -> "LocalCloud":
        """Emulator -> gateway port -> provision -> data plane. On any failure everything started is stopped."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        began = time.monotonic()
        run: ProvisionRun | None = None
        reservation: socket.socket | None = None
        try:
            reservation = reserve_port(self.host, self.api_port)
            port = int(reservation.getsockname()[1])
            # The provisioning child imports the SDK while moto starts (2 cores).
            run = ProvisionRun(
                self.project_dir, self.stack_name, api_url=f"http://{self.host}:{port}",
                region=self.region, state_dir=self.state_dir,
            )
            self.emulator.start()
            self.stack = run.finish(self.emulator.endpoint_url)
            from .dataplane import DataPlane  # lazy: the provisioner does not depend on the data plane

            options = {"log_dir": self.state_dir / "logs", **self.dataplane_options}
            self.dataplane = DataPlane(self.stack, self.host, port, **options)
            self.dataplane.start()
        except BaseException:
            if run is not None:
                run.cancel()
            self.stop()
            raise
        finally:
            if reservation is not None:
                reservation.close()
        self.startup_seconds = time.monotonic() - began
        return self

    def usage(self) -> dict[str, Any]:
        """A snapshot of the cost meter (localcloud/meter.py); a run's usage is the delta of two."""
        from .meter import collect

        if self.stack is None or self.dataplane is None:
            raise RuntimeError("the local cloud is not started")
        return collect(self.stack, self.dataplane.meter)

    def stop(self) -> None:
        """Data plane first (it still talks to the emulator), then the emulator. Idempotent."""
        dataplane, self.dataplane = self.dataplane, None
        try:
            if dataplane is not None:
                dataplane.stop()
        finally:
            self.emulator.stop()
            with self._lock:
                self._started = False

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
