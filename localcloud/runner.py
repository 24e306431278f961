"""Runs the declared Lambda functions locally, one warm process pool per function.

Each function gets its own worker processes (``_worker.py``), started with the
function's declared environment plus what the Lambda runtime would set, and
with ``AWS_ENDPOINT_URL`` pointing at the emulator, so unchanged handler code
reaches the emulator through boto3. Separate processes are the only way to keep
functions that share module names (``telemetry``) and read their environment
at import time from seeing each other's state. Workers stay warm across
invocations, like reused Lambda execution environments.

Concurrency follows Lambda (``concurrency.py``): a function with reserved
concurrency N never has more than N invocations in flight and rejects the excess
as throttled (``Throttles`` metric); unreserved ones share what the reservations
leave of the account's limit (1,000). A 2-core machine cannot host hundreds of environments, so each function
gets at most ``max_workers`` processes; invocations within the concurrency
limit but beyond the workers queue for a free worker (bounded by the
function's timeout), which shows up as latency, not as throttling.

Handler output (stdout/stderr: Powertools JSON logs, START/END/REPORT lines) is
appended to ``<log_dir>/lambda/<function>.log``; lines carrying Embedded
Metric Format (``_aws`` key) are published as metrics, as CloudWatch Logs does.
Workers also observe their own Kinesis/DynamoDB calls and report the
service-side metrics the emulator does not publish (``_service_metrics.py``).
"""
from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Protocol

from .concurrency import ConcurrencyModel
from .model import FunctionSpec

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
_METRIC_MARKER = b"\x1eLOCALCLOUD_METRIC "  # _service_metrics.MARKER
FAKE_ACCOUNT = "123456789012"
# An unreserved function shares the account's pool (1,000 by default):
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
UNRESERVED_CONCURRENCY = 1000
INIT_PHASE_S = 10.0  # Lambda's limit on the init phase
INIT_TIMEOUT_S = 30.0  # generous: a cold start on a loaded 2-core machine can take seconds


class MetricSink(Protocol):
    def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float,
            unit: str = "None") -> None: ...


class NullSink:
    """Used when no monitor is attached (unit tests of other parts)."""

    def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float,
            unit: str = "None") -> None:
        return None


@dataclass(frozen=True)
class InvokeResult:
    """Outcome of one invocation. ``error_type`` is None on success."""

    request_id: str
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.error_type is None


class FunctionNotFound(KeyError):
    pass


class _Worker:
    """One warm execution environment (a child process) and its pipes."""

    def __init__(self, spec: FunctionSpec, env: dict[str, str], log: "_LogPump") -> None:
        read_fd, write_fd = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", str(WORKER_SCRIPT), str(write_fd)],
                cwd=str(spec.code_dir), env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(write_fd,),
                close_fds=True,
                # Its own session: a Ctrl-C at the terminal reaches serve, which retires workers in
                # order, instead of killing every worker mid-invocation. A worker whose parent dies
                # anyway ends by itself: its stdin closes and its request loop returns.
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._responses: IO[bytes] = os.fdopen(read_fd, "rb")
        self._buffer = b""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin = self.proc.stdin
        log.attach(self.proc.stdout)
        self._ready = False
        self.init_error: dict[str, Any] | None = None

    def wait_ready_once(self, timeout: float) -> bool:
        """The worker says hello once its handler module is imported (the init phase)."""
        if self._ready:
            return True
        line = self._read_line(timeout)
        if line is None:
            return False
        hello = json.loads(line)
        self.init_error = hello.get("initError")
        self._ready = True
        return True

    def _read_line(self, timeout: float) -> bytes | None:
        """Read one response line, or None if the deadline passes or the worker dies."""
        deadline = time.monotonic() + timeout
        fd = self._responses.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send one request; None means the worker timed out or died (it must be retired)."""
        try:
            self._stdin.write(json.dumps(request).encode() + b"\n")
            self._stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        line = self._read_line(timeout)
        return None if line is None else json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self._stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill is not ignorable
            pass
        self._responses.close()

    def terminate(self) -> None:
        """End the process only; the thread reading its pipe sees EOF and calls kill()."""
        if self.proc.poll() is None:
            self.proc.kill()

    def close_stdin(self) -> None:
        try:
            self._stdin.close()
        except OSError:
            pass

    def retire(self) -> None:
        """Graceful end: closing stdin ends the worker's request loop."""
        try:
            self._stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class _LogPump:
    """Copies every worker's output into the function's log file and lifts EMF metrics."""

    def __init__(self, path: Path, sink: MetricSink, admit: Callable[[bytes], bool] | None = None,
                 count: Any = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab", buffering=0)
        self._lock = threading.Lock()
        self._sink = sink
        self._admit = admit  # log delivery under the function's role (localcloud.log_delivery); None: all lines
        self._count = count  # called with each log line's size: CloudWatch Logs bills ingested bytes
        self._threads: list[threading.Thread] = []

    def attach(self, stream: IO[bytes]) -> None:
        thread = threading.Thread(target=self._pump, args=(stream,), daemon=True, name="lambda-log")
        thread.start()
        self._threads.append(thread)

    def _pump(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            if line.startswith(_METRIC_MARKER):
                self._publish_observation(line[len(_METRIC_MARKER):])
                continue
            if self._admit is not None and not self._admit(line):
                continue  # refused by IAM: lost with its EMF metrics, as on AWS
            if self._count is not None:
                self._count(len(line))
            with self._lock:
                if not self._file.closed:
                    self._file.write(line)
            if b'"_aws"' in line:
                self._publish_emf(line)
        stream.close()

    def _publish_observation(self, payload: bytes) -> None:
        """A service-side metric observed in the worker (see _service_metrics.py)."""
        try:
            doc = json.loads(payload)
            self._sink.put(doc["ns"], doc["n"], {str(k): str(v) for k, v in doc["d"].items()},
                           float(doc["v"]), doc.get("u", "None"))
        except (ValueError, KeyError, TypeError, AttributeError):
            return

    def _publish_emf(self, line: bytes) -> None:
        """Embedded Metric Format -> metrics, as CloudWatch Logs extracts them on AWS.

        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
        """
        try:
            doc = json.loads(line)
            directives = doc["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        for directive in directives:
            namespace = directive.get("Namespace", "")
            for dim_set in directive.get("Dimensions", []) or [[]]:
                dims = {name: str(doc.get(name, "")) for name in dim_set}
                for metric in directive.get("Metrics", []):
                    name = metric.get("Name")
                    values = doc.get(name)
                    if name is None or values is None:
                        continue
                    for value in values if isinstance(values, list) else [values]:
                        if isinstance(value, (int, float)):
                            self._sink.put(namespace, name, dims, float(value), metric.get("Unit", "None"))

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=2)
        with self._lock:
            self._file.close()


class _FunctionPool:
    """Warm workers of one function plus its concurrency accounting.

    Two separate limits: ``cap`` is the function's concurrency (reserved -> excess is
    throttled), ``max_workers`` the number of processes this machine hosts for it.
    Invocations within the concurrency but beyond the workers wait for a free worker,
    as they would for CPU on a busy host; they still count as concurrent.
    """

    def __init__(self, spec: FunctionSpec, env: dict[str, str], cap: int, reserved: bool,
                 max_workers: int, log: _LogPump) -> None:
        self.spec = spec
        self.env = env
        self.cap = cap
        self.reserved = reserved
        self.max_workers = max(1, min(max_workers, cap)) if cap > 0 else 0
        self.log = log
        self.idle: list[_Worker] = []
        self.concurrent = 0
        self.spawned = 0  # workers alive or being started
        self.cond = threading.Condition()
        self.closed = False
        self.all: set[_Worker] = set()
        self.starting: set[_Worker] = set()  # started in the background, init not finished yet

    def enter(self) -> bool:
        """Count one more concurrent invocation; False means throttled."""
        with self.cond:
            if self.closed or self.cap <= 0 or (self.reserved and self.concurrent >= self.cap):
                return False
            self.concurrent += 1
            return True

    def leave(self) -> None:
        with self.cond:
            self.concurrent -= 1

    def take_worker(self, wait_s: float) -> _Worker | None:
        """A warm worker: an idle one, or the first to become free while a new one starts in the
        background (if under max_workers). None if none is free within ``wait_s``.

        Waiting for *either* keeps a cold start off the request path when a busy worker frees
        up sooner, which is what keeps tail latency low on a small machine.
        """
        deadline = time.monotonic() + wait_s
        with self.cond:
            while True:
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive():
                        return worker
                    self._forget(worker)
                if self.closed:
                    return None
                if self.spawned < self.max_workers:
                    self.spawned += 1
                    threading.Thread(target=self._spawn_in_background, daemon=True,
                                     name=f"lambda-init-{self.spec.name}").start()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def _spawn_in_background(self) -> None:
        try:
            worker = _Worker(self.spec, self.env, self.log)
        except Exception:  # e.g. out of processes: the waiters time out or retry
            log.warning("could not start a worker for %s", self.spec.name, exc_info=True)
            with self.cond:
                self.spawned -= 1
                self.cond.notify_all()
            return
        with self.cond:
            closed = self.closed
            if not closed:
                self.starting.add(worker)  # close() kills it even while its init is still running
        ready = False if closed else worker.wait_ready_once(INIT_TIMEOUT_S)
        with self.cond:
            self.starting.discard(worker)
            if ready and not self.closed:
                self.all.add(worker)
                self.idle.append(worker)
                self.cond.notify()
                return
            self.spawned -= 1
            self.cond.notify_all()
        worker.kill()

    def give_back(self, worker: _Worker) -> None:
        with self.cond:
            if self.closed or not worker.alive():
                self._forget(worker)
                threading.Thread(target=worker.kill, daemon=True).start()
            else:
                self.idle.append(worker)
            self.cond.notify()

    def spawn(self, counted: bool = False) -> _Worker:
        if not counted:
            with self.cond:
                self.spawned += 1
        worker = _Worker(self.spec, self.env, self.log)
        with self.cond:
            self.all.add(worker)
        return worker

    def _forget(self, worker: _Worker) -> None:
        """Caller holds the lock."""
        if worker in self.all:
            self.all.discard(worker)
            self.spawned -= 1

    def discard(self, worker: _Worker) -> None:
        with self.cond:
            self._forget(worker)
            self.cond.notify()
        worker.kill()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            workers = list(self.all)
            starting = list(self.starting)
            self.all.clear()
            self.idle.clear()
            self.cond.notify_all()
        for worker in starting:  # still in its init phase: nothing to finish, end it now; its
            worker.terminate()     # starter thread then sees EOF and cleans up the pipes
        for worker in workers:  # ask every environment to end first, then wait for them together
            worker.close_stdin()
        for worker in workers:
            worker.retire()


class LambdaRunner:
    """Invokes functions of a ProvisionedStack by physical name."""

    def __init__(self, functions: dict[str, FunctionSpec], endpoint_url: str, region: str,
                 sink: MetricSink | None = None, log_dir: Path | None = None,
                 max_workers: int = 4, prewarm: bool = True, service_metrics: bool = True,
                 credentials: Callable[[str], dict[str, str]] | None = None,
                 log_gate: Callable[[str], Callable[[bytes], bool]] | None = None,
                 meter: Any = None, concurrency: ConcurrencyModel | None = None) -> None:
        self._sink = sink or NullSink()
        self._meter = meter  # localcloud.meter.UsageMeter: billable units of each invocation
        # Account, reserved and unreserved concurrency (concurrency.py); the pools below only
        # bound how many processes this machine hosts per function.
        self.concurrency = concurrency or ConcurrencyModel(
            {name: spec.reserved_concurrency for name, spec in functions.items()})
        self._region = region
        self._endpoint = endpoint_url
        self._log_dir = log_dir or default_log_dir()
        self._max_workers = max_workers
        self._service_metrics = service_metrics
        self._prewarm = prewarm
        # function name -> its role's AWS_* credentials (localcloud.iam_identity); None: the admin key
        self._credentials = credentials
        self._log_gate = log_gate  # function name -> its log delivery check; None: every line is kept
        self._specs = dict(functions)
        self._pools: dict[str, _FunctionPool] = {}
        self._logs: list[_LogPump] = []
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            for name, spec in self._specs.items():
                reserved = spec.reserved_concurrency is not None and spec.reserved_concurrency >= 0
                cap = spec.reserved_concurrency if reserved else UNRESERVED_CONCURRENCY
                count = None if self._meter is None else (lambda n, f=name: self._meter.log_bytes(f, n))
                log = _LogPump(self._log_dir / "lambda" / f"{name}.log", self._sink,
                               self._log_gate(name) if self._log_gate else None, count)
                self._logs.append(log)
                self._pools[name] = _FunctionPool(spec, self.environment_for(spec), int(cap or 0),
                                                  reserved, self._max_workers, log)
            self._started = True
        if self._prewarm:
            # Start one environment per function in parallel; init cost is paid now, not by
            # the first request (provisioned-concurrency-like, documented in the module doc).
            warm = [(pool, pool.spawn()) for pool in self._pools.values() if pool.cap > 0]
            for pool, worker in warm:
                if worker.wait_ready_once(30):
                    with pool.cond:
                        pool.idle.append(worker)
                else:
                    pool.discard(worker)

    def environment_for(self, spec: FunctionSpec) -> dict[str, str]:
        """What the Lambda runtime sets, plus the emulator endpoint and fake credentials.

        https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
        """
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "HOME",
                                                              "SYSTEMROOT", "TMPDIR")}
        env.update({
            "AWS_ENDPOINT_URL": self._endpoint,
            "AWS_REGION": self._region,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"localcloud/{uuid.uuid4().hex}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
            "LOCALCLOUD_FUNCTION_ARN": spec.arn,
            "PYTHONDONTWRITEBYTECODE": "1",
            "LOCALCLOUD_SERVICE_METRICS": "1" if self._service_metrics else "0",
            "_HANDLER": spec.handler,
        })
        if self._credentials is not None:
            env.update(self._credentials(spec.name))  # the function's execution role, as Lambda sets it
        env.update({str(k): str(v) for k, v in spec.environment.items()})
        return env

    def spec(self, function: str) -> FunctionSpec:
        try:
            return self._specs[function]
        except KeyError:
            raise FunctionNotFound(function) from None

    def invoke(self, function: str, event: Any, timeout_s: float | None = None) -> InvokeResult:
        """Synchronous (RequestResponse) invoke. ``timeout_s`` may only shorten the
        function's own timeout (API Gateway's 30 s integration cap)."""
        if not self._started:
            raise RuntimeError("LambdaRunner.start() was not called")
        spec = self.spec(function)
        pool = self._pools[function]
        dims = {"FunctionName": function}
        request_id = str(uuid.uuid4())
        function_timeout = spec.timeout_s
        wait_limit = function_timeout if timeout_s is None else min(function_timeout, timeout_s)
        entered = self.concurrency.acquire(function)
        if entered and not pool.enter():
            self.concurrency.release(function)
            entered = False
        if entered:
            # Sampled at each start; alarms and dashboards read it with Maximum, as on AWS.
            self._sink.put("AWS/Lambda", "ConcurrentExecutions", dims, float(pool.concurrent), "Count")
        if not entered:
            self._sink.put("AWS/Lambda", "Throttles", dims, 1.0, "Count")
            return InvokeResult(request_id, error_type="TooManyRequestsException",
                                error_message="Rate Exceeded.", throttled=True)
        started = time.perf_counter()
        try:
            # A cold start's init phase (up to 10 s on AWS) does not count against the timeout:
            # https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
            worker = pool.take_worker(wait_limit + INIT_PHASE_S)
            if worker is None:
                # Unreserved and every local worker stayed busy for the whole timeout: reported
                # as a throttle (the closest AWS outcome), not as a function error.
                self._sink.put("AWS/Lambda", "Throttles", dims, 1.0, "Count")
                return InvokeResult(request_id, error_type="TooManyRequestsException",
                                    error_message="Rate Exceeded. (no local worker became free)",
                                    throttled=True)
            if not worker.wait_ready_once(30):
                pool.discard(worker)
                return self._finish(dims, InvokeResult(request_id, error_type="Runtime.ExitError",
                                                       error_message="worker failed to start"), started)
            # Duration and the timeout cover execution only: neither the wait for a free local
            # worker nor a cold start's init phase count against the function's timeout on AWS.
            started = time.perf_counter()
            limit = wait_limit
            reply = worker.invoke({"requestId": request_id, "event": event,
                                   "deadlineMs": time.time() * 1000 + function_timeout * 1000}, limit)
            if reply is None:
                timed_out = worker.alive()
                pool.discard(worker)
                if timed_out:
                    message = f"Task timed out after {limit:.2f} seconds"
                    return self._finish(dims, InvokeResult(request_id, error_type="Sandbox.Timedout",
                                                           error_message=message), started)
                return self._finish(dims, InvokeResult(request_id, error_type="Runtime.ExitError",
                                                       error_message="Runtime exited unexpectedly"),
                                    started)
            pool.give_back(worker)
            if reply.get("ok"):
                result = self._finish(dims, InvokeResult(request_id, payload=reply.get("result")), started)
            else:
                result = self._finish(dims, InvokeResult(request_id, error_type=reply.get("errorType", "Error"),
                                                         error_message=reply.get("errorMessage", "")), started)
            if self._meter is not None:
                self._meter.invocation(function, spec.memory_mb, result.duration_ms, reply.get("usage"))
            return result
        finally:
            pool.leave()
            self.concurrency.release(function)

    def _finish(self, dims: dict[str, str], result: InvokeResult, started: float) -> InvokeResult:
        duration = (time.perf_counter() - started) * 1000
        self._sink.put("AWS/Lambda", "Invocations", dims, 1.0, "Count")
        self._sink.put("AWS/Lambda", "Errors", dims, 0.0 if result.ok else 1.0, "Count")
        self._sink.put("AWS/Lambda", "Duration", dims, duration, "Milliseconds")
        return InvokeResult(result.request_id, result.payload, result.error_type, result.error_message,
                            duration, result.throttled)

    def worker_pids(self, function: str) -> list[int]:
        """For tests and diagnostics: the processes currently hosting a function."""
        pool = self._pools[function]
        with pool.cond:
            return [w.proc.pid for w in pool.all if w.alive()]

    def stop(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            logs, self._logs = self._logs, []
            self._started = False
        closers = [threading.Thread(target=pool.close, daemon=True) for pool in pools]
        for thread in closers:
            thread.start()
        for thread in closers:
            thread.join(timeout=15)
        for log in logs:
            log.close()


def default_log_dir() -> Path:
    """``.localcloud/logs`` at the repository root (ignored by git)."""
    return Path(__file__).resolve().parent.parent / ".localcloud" / "logs"
