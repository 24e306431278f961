"""The HTTP API's data plane: serves the provisioned ApiSpec over real HTTP.

Order of processing, as API Gateway does it: stage throttle (token bucket,
429) -> route match (404) -> payload cap (413) -> Lambda authorizer with cache
(401/403/500) -> Lambda proxy integration (payload format 2.0) -> response
mapping. Status codes of the gateway's own errors:
- function error, throttled function, malformed response: 500 Internal Server Error
  (https://repost.aws/knowledge-center/api-gateway-5xx-error)
- integration timeout (route timeout, at most 30 s): 504
  (https://repost.aws/knowledge-center/api-gateway-504-errors), body
  {"message":"Service Unavailable"} as HTTP APIs send it.
Stage throttling: both burst and rate unset -> no local limit (AWS account
limits); exactly one unset -> that value is 0 and every request gets 429, the
documented pitfall (aws-facts.md section 2).

Access log: one line per request in the stage's access_log_format, with
$context variables substituted ("-" when unknown), appended to
``<log_dir>/access.log``. Metrics: AWS/ApiGateway Count, 4xx, 5xx, Latency,
IntegrationLatency, DataProcessed with dimensions ApiId + Stage.
Named stages are not emulated: paths are matched as on the ``$default`` stage
(the program declares only ``$default``).
Request bodies must carry Content-Length (chunked uploads get 411 locally); framing is
strict (localcloud/http_framing.py): a request whose body length is not exactly known gets
400 and reaches no authorizer or function. Slow clients are cut off at FrontDoorLimits
(header, body, keep-alive idle and write timeouts) and at most ``max_connections`` are served
at once. Events carry x-forwarded-for/-port/-proto as API Gateway adds them.
Only payload format 2.0 (integrations and authorizers) is emulated; an API
declaring 1.0 is refused at start-up with UnsupportedApi.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from socketserver import _SocketWriter  # type: ignore[attr-defined]  # what StreamRequestHandler uses

from . import apigw_events as ev
from .http_framing import DeadlineReader, FrontDoorLimits, Refusal, body_length
from .model import ApiSpec, AuthorizerSpec, FunctionSpec
from .runner import LambdaRunner, MetricSink, NullSink, default_log_dir

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # HTTP API quota
MAX_INTEGRATION_TIMEOUT_S = 30.0
AUTHORIZER_TIMEOUT_S = 10.0
ACCOUNT_ID = "123456789012"
log = logging.getLogger(__name__)


class TokenBucket:
    """Stage throttle: capacity ``burst`` tokens refilled at ``rate`` per second."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate = max(0.0, float(rate))
        self.burst = max(0, int(burst))
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class AuthorizerCache:
    """Authorizer results by identity-source values, for cache_ttl_s seconds."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[tuple[str, tuple[str, ...]], tuple[float, bool, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, authorizer_id: str, identity: list[str]) -> tuple[bool, dict[str, Any]] | None:
        with self._lock:
            entry = self._entries.get((authorizer_id, tuple(identity)))
            if entry is None:
                return None
            expires, allowed, context = entry
            if self._clock() >= expires:
                del self._entries[(authorizer_id, tuple(identity))]
                return None
            return allowed, context

    def put(self, authorizer_id: str, identity: list[str], ttl_s: int, allowed: bool,
            context: dict[str, Any]) -> None:
        if ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) > 100_000:
                self._entries.clear()
            self._entries[(authorizer_id, tuple(identity))] = (self._clock() + ttl_s, allowed, context)


class AccessLog:
    """Writes the stage's access log format with $context variables substituted."""

    VARIABLE = re.compile(r"\$context\.([A-Za-z0-9_.]+)")

    def __init__(self, path: Path, fmt: str | None) -> None:
        self.fmt = fmt
        self._lock = threading.Lock()
        self._file = None
        if fmt:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8", buffering=1)

    def write(self, variables: dict[str, Any]) -> int:
        """Append one line; returns its size in bytes (0 when the stage has no access log)."""
        if self._file is None or self.fmt is None:
            return 0
        line = self.VARIABLE.sub(lambda m: _fmt(variables.get(m.group(1))), self.fmt).replace("\n", " ") + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
        return len(line.encode())

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()


def _fmt(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


class UnsupportedApi(ValueError):
    """The API declares something this local gateway does not emulate."""


def _check_supported(api: ApiSpec) -> None:
    """Fail at start-up rather than serve a payload shape the functions were not written for."""
    for route in api.routes:
        if route.payload_format_version != "2.0":
            raise UnsupportedApi(f"route {route.route_key!r} of API {api.api_id}: payload format "
                                 f"{route.payload_format_version} is not emulated locally (only 2.0)")
        if route.authorizer is not None and route.authorizer.payload_format_version != "2.0":
            raise UnsupportedApi(f"authorizer {route.authorizer.authorizer_id} of API {api.api_id}: payload "
                                 f"format {route.authorizer.payload_format_version} is not emulated (only 2.0)")


def _request_id() -> str:
    """HTTP API request ids look like 'JKJaXmPLvHcESHA=' (also sent as apigw-requestid)."""
    return base64.b64encode(os.urandom(10)).decode()[:15] + "="


class Gateway:
    """One HTTP server per ApiSpec (its $default stage)."""

    def __init__(self, api: ApiSpec, runner: LambdaRunner, functions: dict[str, FunctionSpec], *,
                 region: str, host: str = "127.0.0.1", port: int = 0, sink: MetricSink | None = None,
                 log_dir: Path | None = None, account_id: str = ACCOUNT_ID,
                 clock: Callable[[], float] = time.monotonic, limits: FrontDoorLimits | None = None,
                 meter: Any = None) -> None:
        _check_supported(api)
        self.limits = limits or FrontDoorLimits()
        self.meter = meter  # localcloud.meter.UsageMeter: every answered request is a billed one
        self.api = api
        self.runner = runner
        self.functions = functions
        self.region = region
        self.account_id = account_id
        self.sink = sink or NullSink()
        self.cache = AuthorizerCache(clock)
        self.bucket: TokenBucket | None = None
        if api.throttle_burst is not None or api.throttle_rate is not None:
            self.bucket = TokenBucket(api.throttle_rate or 0.0, api.throttle_burst or 0, clock)
        self.access_log = AccessLog((log_dir or default_log_dir()) / "access.log", api.access_log_format)
        self._dims = {"ApiId": api.api_id, "Stage": api.stage}
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._server = _FrontDoorServer((host, port), _make_handler(self), self.limits.max_connections)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def open_connections(self) -> int:
        """Connections being served now (each holds one thread)."""
        with self._connections_lock:
            return len(self._connections)

    @property
    def waiting_connections(self) -> int:
        """Accepted connections waiting for a free slot (no thread yet)."""
        return self._server.waiting

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}"  # type: ignore[str-bytes-safe]  # AF_INET: the host is a str

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                            name=f"gateway-{self.api.api_id}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._server.closing = True  # connections waiting for a slot give up
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:  # keep-alive clients must not hang on a stopped gateway
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.access_log.close()

    # ---- request processing ----------------------------------------------------------------
    def handle(self, request: ev.HttpRequest) -> ev.HttpResponse:
        started = time.perf_counter()
        variables = self._variables(request)
        return self._account(request, variables, self._process(request, variables), started)

    def refuse(self, request: ev.HttpRequest, status: int, message: str, reason: str | None = None) -> ev.HttpResponse:
        """A request refused before it is complete (chunked, a bad or short length, over 10 MB, too slow):
        it is logged and counted like any other, so the 4xx alarm sees it as it would on AWS."""
        started = time.perf_counter()
        variables = self._variables(request)
        variables["error.message"] = message  # AWS's text; the detail goes to the local log only
        if reason:
            log.info("refused %s %s with %d: %s", request.method, request.raw_path, status, reason)
        return self._account(request, variables, ev.gateway_error(status, message), started)

    def _variables(self, request: ev.HttpRequest) -> dict[str, Any]:
        request.request_id = request.request_id or _request_id()
        return {
            "requestId": request.request_id, "extendedRequestId": request.request_id,
            "apiId": self.api.api_id, "stage": self.api.stage, "httpMethod": request.method,
            "path": request.raw_path, "protocol": request.protocol,
            "identity.sourceIp": request.source_ip,
            "identity.userAgent": request.header_map().get("user-agent"),
            "requestTime": ev.request_time(request.time_epoch_ms), "requestTimeEpoch": request.time_epoch_ms // 1000,
            "domainName": request.header_map().get("host"),
        }

    def _account(self, request: ev.HttpRequest, variables: dict[str, Any], response: ev.HttpResponse,
                 started: float) -> ev.HttpResponse:
        """Access-log line and AWS/ApiGateway metrics for one answered request."""
        latency_ms = (time.perf_counter() - started) * 1000
        response.headers.append(("apigw-requestid", request.request_id))
        variables.update({"status": response.status, "responseLength": len(response.body),
                          "responseLatency": round(latency_ms)})
        logged = self.access_log.write(variables)
        if self.meter is not None:
            self.meter.http_request(len(request.body))
            self.meter.log_bytes(f"api-access-{self.api.api_id}", logged)
        self.sink.put("AWS/ApiGateway", "Count", self._dims, 1.0, "Count")
        self.sink.put("AWS/ApiGateway", "4xx", self._dims, 1.0 if 400 <= response.status < 500 else 0.0, "Count")
        self.sink.put("AWS/ApiGateway", "5xx", self._dims, 1.0 if response.status >= 500 else 0.0, "Count")
        self.sink.put("AWS/ApiGateway", "Latency", self._dims, latency_ms, "Milliseconds")
        self.sink.put("AWS/ApiGateway", "DataProcessed", self._dims,
                      float(len(request.body) + len(response.body)), "Bytes")
        return response

    def _process(self, request: ev.HttpRequest, variables: dict[str, Any]) -> ev.HttpResponse:
        if self.bucket is not None and not self.bucket.take():
            variables["error.message"] = "Too Many Requests"
            variables["error.responseType"] = "THROTTLED"
            return ev.gateway_error(429, "Too Many Requests")
        cors = self._cors_preflight(request)
        if cors is not None:
            return cors
        match = ev.match_route(self.api.routes, request.method, request.raw_path)
        if match is None:
            variables["error.message"] = "Not Found"
            return ev.gateway_error(404, "Not Found")
        variables["routeKey"] = match.route.route_key
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return ev.gateway_error(413, "Request Entity Too Large")
        authorizer_context: dict[str, Any] | None = None
        if match.route.authorizer is not None:
            denied, authorizer_context = self._authorize(match.route.authorizer, request, match, variables)
            if denied is not None:
                return denied
        response = self._integrate(request, match, authorizer_context, variables)
        self._add_cors_headers(request, response)
        return response

    def _authorize(self, spec: AuthorizerSpec, request: ev.HttpRequest, match: ev.RouteMatch,
                   variables: dict[str, Any]) -> tuple[ev.HttpResponse | None, dict[str, Any] | None]:
        identity = ev.identity_values(spec.identity_sources, request)
        if identity is None:
            variables["error.message"] = "Unauthorized"
            return ev.gateway_error(401, "Unauthorized"), None
        cached = self.cache.get(spec.authorizer_id, identity)
        if cached is None:
            event = ev.build_authorizer_event(request, match, identity, api_id=self.api.api_id,
                                              stage=self.api.stage, account_id=self.account_id, region=self.region)
            started = time.perf_counter()
            result = self.runner.invoke(spec.function, event, timeout_s=AUTHORIZER_TIMEOUT_S)
            variables["authorizer.latency"] = round((time.perf_counter() - started) * 1000)
            if not result.ok:
                variables["authorizer.error"] = result.error_message
                return ev.gateway_error(500, "Internal Server Error"), None
            try:
                allowed, context = ev.authorizer_decision(result.payload, simple=spec.simple_responses,
                                                          route_arn=event["routeArn"])
            except ev.MalformedAuthorizerResponse as exc:
                variables["authorizer.error"] = str(exc)
                return ev.gateway_error(500, "Internal Server Error"), None
            self.cache.put(spec.authorizer_id, identity, spec.cache_ttl_s, allowed, context)
        else:
            allowed, context = cached
        variables["authorizer.status"] = 200 if allowed else 403
        for key, value in context.items():
            variables[f"authorizer.{key}"] = value
        if not allowed:
            variables["error.message"] = "Forbidden"
            return ev.gateway_error(403, "Forbidden"), None
        return None, context

    def _integrate(self, request: ev.HttpRequest, match: ev.RouteMatch, authorizer_context: dict[str, Any] | None,
                   variables: dict[str, Any]) -> ev.HttpResponse:
        route = match.route
        event = ev.build_event(request, match, api_id=self.api.api_id, stage=self.api.stage,
                               account_id=self.account_id, authorizer_context=authorizer_context)
        integration_limit = min(MAX_INTEGRATION_TIMEOUT_S, (route.integration_timeout_ms or 30000) / 1000)
        function_timeout = self.runner.spec(route.function).timeout_s
        started = time.perf_counter()
        result = self.runner.invoke(route.function, event, timeout_s=integration_limit)
        latency = (time.perf_counter() - started) * 1000
        self.sink.put("AWS/ApiGateway", "IntegrationLatency", self._dims, latency, "Milliseconds")
        variables["integrationLatency"] = variables["integration.latency"] = round(latency)
        variables["integration.requestId"] = result.request_id
        if result.error_type == "Sandbox.Timedout" and integration_limit < function_timeout:
            variables["integrationErrorMessage"] = variables["integration.error"] = "integration timeout"
            return ev.gateway_error(504, "Service Unavailable")
        if not result.ok:
            variables["integrationStatus"] = 200 if not result.throttled else 429
            variables["integrationErrorMessage"] = variables["integration.error"] = result.error_message
            return ev.gateway_error(500, "Internal Server Error")
        variables["integrationStatus"] = 200
        try:
            response = ev.map_lambda_response(result.payload)
        except ev.MalformedLambdaResponse as exc:
            variables["integrationErrorMessage"] = variables["integration.error"] = str(exc)
            return ev.gateway_error(500, "Internal Server Error")
        variables["integration.status"] = response.status
        return response

    # ---- CORS (only when the API declares corsConfiguration) --------------------------------
    def _cors_preflight(self, request: ev.HttpRequest) -> ev.HttpResponse | None:
        cors = self.api.cors
        headers = request.header_map()
        if not cors or request.method != "OPTIONS" or "origin" not in headers \
                or "access-control-request-method" not in headers:
            return None
        response = ev.HttpResponse(204, [], b"")
        self._add_cors_headers(request, response)
        methods = cors.get("allowMethods") or []
        allow_headers = cors.get("allowHeaders") or []
        if methods:
            response.headers.append(("Access-Control-Allow-Methods", ",".join(methods)))
        if allow_headers:
            response.headers.append(("Access-Control-Allow-Headers", ",".join(allow_headers)))
        if cors.get("maxAge") is not None:
            response.headers.append(("Access-Control-Max-Age", str(int(cors["maxAge"]))))
        return response

    def _add_cors_headers(self, request: ev.HttpRequest, response: ev.HttpResponse) -> None:
        cors = self.api.cors
        origin = request.header_map().get("origin")
        if not cors or not origin:
            return
        allowed = cors.get("allowOrigins") or []
        if "*" in allowed or origin in allowed:
            response.headers.append(("Access-Control-Allow-Origin", "*" if "*" in allowed else origin))
            if cors.get("allowCredentials"):
                response.headers.append(("Access-Control-Allow-Credentials", "true"))
            expose = cors.get("exposeHeaders") or []
            if expose:
                response.headers.append(("Access-Control-Expose-Headers", ",".join(expose)))


class _FrontDoorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer serving at most ``max_connections`` connections at once.

    A connection over the cap is accepted by the kernel but gets no thread until a slot frees:
    the accept loop waits for one, so further clients queue in the listen backlog. API Gateway
    itself refuses no connection (it scales); waiting, rather than an invented status code, is the
    closest local behaviour, and the timeouts make sure every slot is freed in bounded time.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self.waiting = 0
        self.closing = False
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.waiting += 1  # only the accept thread changes it
        try:
            while not self._slots.acquire(timeout=0.1):
                if self.closing:
                    self.shutdown_request(request)
                    return
        finally:
            self.waiting -= 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _make_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    limits = gateway.limits

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so device clients can reuse connections
        # Headers and body leave in separate writes; without TCP_NODELAY the body waits for the
        # client's delayed ACK (~40 ms per request on keep-alive connections).
        disable_nagle_algorithm = True
        server_version = "localcloud-apigw"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return None  # the access log is the record of requests

        def setup(self) -> None:
            # StreamRequestHandler.setup, with reads bounded by deadlines instead of a per-recv timeout.
            self.connection = self.request
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            self._reader = DeadlineReader(self.connection)
            self._reader.deadline = time.monotonic() + limits.header_timeout_s  # a silent new client
            self._first = True
            self.rfile = io.BufferedReader(self._reader)
            self.wfile = _SocketWriter(self.connection)
            with gateway._connections_lock:
                gateway._connections.add(self.connection)

        def finish(self) -> None:
            with gateway._connections_lock:
                gateway._connections.discard(self.connection)
            super().finish()

        def handle_one_request(self) -> None:
            """One request; a read deadline that passes before the headers are in closes the connection."""
            try:
                if not self._first:  # keep-alive: wait for the next request's first byte, then time its headers
                    self._reader.deadline = time.monotonic() + limits.idle_timeout_s
                    if not self.rfile.peek(1):  # type: ignore[attr-defined]  # rfile is a BufferedReader here
                        self.close_connection = True
                        return
                    self._reader.deadline = time.monotonic() + limits.header_timeout_s
                self._first = False
                super().handle_one_request()  # closes the connection on TimeoutError
            except (TimeoutError, ConnectionError):
                self.close_connection = True

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")

            def request_with(body: bytes) -> ev.HttpRequest:
                headers = ev.with_forwarded_headers(list(self.headers.items()), source_ip=self.client_address[0],
                                                    port=gateway.port, proto="http")
                return ev.HttpRequest(method=self.command, raw_path=path or "/", raw_query=query,
                                      headers=headers, body=body,
                                      source_ip=self.client_address[0], protocol=self.request_version)

            try:
                length = body_length(self.headers, MAX_PAYLOAD_BYTES)
            except Refusal as refusal:  # the body is not read, so the connection cannot be reused
                self._refuse(request_with(b""), refusal)
                return
            body = b""
            if length:
                self._reader.deadline = time.monotonic() + limits.body_timeout_s
                try:
                    body = self.rfile.read(length)
                except TimeoutError:
                    self._refuse(request_with(b""), Refusal(
                        408, "Request Timeout", f"body not received within {limits.body_timeout_s:g} s"))
                    return
                except ConnectionError:
                    body = b""
                if len(body) < length:  # the client hung up early: an incomplete request is never processed
                    self._refuse(request_with(b""), Refusal(
                        400, "Bad Request", f"body ended after {len(body)} of {length} announced bytes"))
                    return
            request = request_with(body)
            try:
                response = gateway.handle(request)
            except Exception:  # a bug here must still answer like API Gateway does
                log.exception("gateway failed on %s %s", self.command, path)
                response = ev.gateway_error(500, "Internal Server Error")
            self._send(response)

        def _refuse(self, request: ev.HttpRequest, refusal: Refusal) -> None:
            response = gateway.refuse(request, refusal.status, refusal.message, refusal.reason)
            try:
                self._send(response, close=True)
            except OSError:  # the client is gone; the refusal is still logged and counted
                self.close_connection = True

        def _send(self, response: ev.HttpResponse, close: bool = False) -> None:
            self.connection.settimeout(limits.write_timeout_s)  # a client that never reads is cut off too
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815 - http.server dispatches on these names

    return Handler
