"""The local cloud's data plane: everything that makes the provisioned resources
*run*, built only from a ProvisionedStack and the emulator endpoint.

Start order is monitor -> runner (warm workers) -> gateways -> stream pollers,
so nothing produces work before its consumer exists; stop is the reverse and
idempotent. Logs: ``<log_dir>/lambda/<function>.log`` (handler output),
``<log_dir>/access.log`` (HTTP API access log); ``log_dir`` defaults to
``.localcloud/logs`` at the repository root.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from .gateway import Gateway
from .iam_identity import ADMIN, FunctionIdentities
from .log_delivery import LogDelivery
from .meter import UsageMeter
from .model import ProvisionedStack
from .monitor import Monitor
from .poller import StreamPoller
from .runner import LambdaRunner, default_log_dir

log = logging.getLogger(__name__)


class DataPlane:
    def __init__(self, stack: ProvisionedStack, host: str = "127.0.0.1", port: int = 0, *,
                 log_dir: Path | None = None, max_workers_per_function: int = 4,
                 evaluation_interval_s: float = 10.0, flush_interval_s: float = 1.0,
                 poll_interval_s: float = 0.1, alarm_time_scale: float = 1.0,
                 alarm_count_rates: bool = False, alarm_time_threshold_scale: float = 1.0) -> None:
        self.stack = stack
        self.host = host
        self.port = port
        self.log_dir = log_dir or default_log_dir()
        queues = [m.on_failure_queue_url for m in stack.mappings if m.on_failure_queue_url]
        if isinstance(stack.outputs.get("dlqUrl"), str):
            queues.append(stack.outputs["dlqUrl"])
        self.monitor = Monitor(stack.endpoint_url, stack.region, flush_interval_s=flush_interval_s,
                               evaluation_interval_s=evaluation_interval_s, time_scale=alarm_time_scale,
                               queue_urls=tuple(queues), count_rates=alarm_count_rates,
                               time_threshold_scale=alarm_time_threshold_scale)
        # Each function, and the Lambda service on its behalf, calls the emulator under its own role.
        self.identities = FunctionIdentities(stack)
        self.log_deliveries: dict[str, LogDelivery] = {}
        self.meter = UsageMeter()  # the cost meter's data-plane half (localcloud/meter.py)
        self.runner = LambdaRunner(stack.functions, stack.endpoint_url, stack.region, sink=self.monitor,
                                   log_dir=self.log_dir, max_workers=max_workers_per_function,
                                   credentials=self.identities.env, log_gate=self._log_delivery,
                                   meter=self.meter)
        self.gateways: list[Gateway] = []
        self.pollers: list[StreamPoller] = []
        self._poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._state = "new"

    @property
    def gateway(self) -> Gateway:
        """The gateway serving the stack's (first) HTTP API: the one behind ``apiUrl``."""
        if not self.gateways:
            raise RuntimeError("no HTTP API is being served (not started, or the stack declares none)")
        return self.gateways[0]

    @property
    def api_url(self) -> str:
        return self.gateway.url

    def _log_delivery(self, function: str) -> Any:
        """Log lines reach the function's log only while its role may deliver them (log_delivery.py)."""
        if self.identities.credentials(function) is ADMIN:
            return None  # no declared role (hand-built stacks): nothing to check
        delivery = LogDelivery(self.stack.endpoint_url, self.stack.region, self.identities.credentials(function),
                               function)
        self.log_deliveries[function] = delivery
        return delivery.admit

    def _role_of(self, function: str) -> str | None:
        for resource in self.stack.resources:
            if resource.type == "aws:lambda/function:Function" and resource.id == function:
                role = resource.state.get("role") or resource.inputs.get("role")
                return str(role) if role else None
        return None

    def start(self) -> "DataPlane":
        with self._lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise RuntimeError("a stopped DataPlane cannot be restarted; create a new one")
            self._state = "running"
        try:
            self.monitor.start()
            self.runner.start()
            for index, api in enumerate(self.stack.apis):
                gateway = Gateway(api, self.runner, self.stack.functions, region=self.stack.region,
                                  host=self.host, port=self.port if index == 0 else 0, sink=self.monitor,
                                  log_dir=self.log_dir, meter=self.meter)
                self.gateways.append(gateway)
                gateway.start()
            observed: set[str] = set()
            for mapping in self.stack.mappings:
                poller = StreamPoller(mapping, self.runner, endpoint_url=self.stack.endpoint_url,
                                      region=self.stack.region, sink=self.monitor,
                                      role_arn=self._role_of(mapping.function),
                                      credentials=self.identities.credentials(mapping.function),
                                      observe_stream=mapping.stream_arn not in observed,
                                      poll_interval_s=self._poll_interval_s)
                observed.add(mapping.stream_arn)
                self.pollers.append(poller)
                poller.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        for poller in self.pollers:
            _quietly(poller.stop)
        for gateway in self.gateways:
            _quietly(gateway.stop)
        _quietly(self.runner.stop)
        _quietly(self.monitor.stop)

    def __enter__(self) -> "DataPlane":
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()


def _quietly(stop: Any) -> None:
    """Stopping must go on even if one part fails to stop cleanly."""
    try:
        stop()
    except Exception:  # keep stopping the other parts; logged with its trace
        log.warning("error while stopping %r", stop, exc_info=True)
