"""Gateway: payload 2.0 events, authorizer (401/403/500, cache), response mapping,
stage throttling, 404, access log and metrics, over real HTTP on loopback."""
from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from dataplane_support import RecordingSink as _Sink
from localcloud import apigw_events as ev
from localcloud.gateway import Gateway, TokenBucket
from localcloud.http_framing import FrontDoorLimits
from localcloud.model import ApiSpec, AuthorizerSpec, FunctionSpec, RouteSpec
from localcloud.runner import LambdaRunner

AUTHORIZER = '''
import json, os
CALLS = 0
def handler(event, context):
    global CALLS
    CALLS += 1
    device = event["headers"].get("x-device-id")
    key = event["headers"].get("x-device-key")
    with open(os.environ["AUTH_LOG"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    if key == "explode":
        raise RuntimeError("authorizer bug")
    if key == "garbage":
        return {"nope": 1}
    return {"isAuthorized": key == "good", "context": {"deviceId": device, "calls": CALLS}}
'''

APP = '''
import base64, json, os, time
def handler(event, context):
    if os.environ.get("APP_LOG"):
        with open(os.environ["APP_LOG"], "a") as f:
            f.write(json.dumps(event) + "\\n")
    mode = event.get("queryStringParameters", {}).get("mode", "echo")
    if mode == "echo":
        return {"statusCode": 202, "headers": {"x-extra": "1"}, "cookies": ["a=b"], "body": json.dumps(event)}
    if mode == "plain":
        return {"hello": "world"}
    if mode == "string":
        return "just text"
    if mode == "binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(b"\\x00\\x01").decode(), "isBase64Encoded": True}
    if mode == "bad":
        return {"statusCode": "abc"}
    if mode == "fail":
        raise ValueError("integration bug")
    if mode == "slow":
        time.sleep(3)
    return {"statusCode": 200}
'''

FORMAT = '{"requestId":"$context.requestId","status":"$context.status","routeKey":"$context.routeKey",' \
         '"ip":"$context.identity.sourceIp","device":"$context.authorizer.deviceId","err":"$context.error.message"}'


class RecordingSink(_Sink):
    def total(self, name: str) -> float:
        return sum(v for ns, n, d, v in self.points if n == name and ns == "AWS/ApiGateway"
                   and d == {"ApiId": "api1", "Stage": "$default"})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("gw")
    code = tmp / "code"
    code.mkdir()
    (code / "auth.py").write_text(AUTHORIZER)
    (code / "app.py").write_text(APP)
    auth_log = tmp / "auth-events.jsonl"
    app_log = tmp / "app-events.jsonl"
    functions = {
        "auth": FunctionSpec("auth", "arn:auth", "auth.handler", code, {"AUTH_LOG": str(auth_log)}, 3, 128, None),
        "app": FunctionSpec("app", "arn:app", "app.handler", code, {"APP_LOG": str(app_log)}, 5, 128, None),
    }
    authorizer = AuthorizerSpec("authz1", "auth", ("$request.header.x-device-id", "$request.header.x-device-key"),
                                cache_ttl_s=300, payload_format_version="2.0", simple_responses=True)
    api = ApiSpec(api_id="api1", name="t", stage="$default", routes=(
        RouteSpec("POST /v1/telemetry", "app", "2.0", 30000, authorizer),
        RouteSpec("GET /health", "app", "2.0", 30000),
        RouteSpec("GET /items/{id}", "app", "2.0", 30000),
        RouteSpec("GET /slow/{id}", "app", "2.0", 1000),  # only for the 504: a success never waits on 1 s
    ), throttle_burst=None, throttle_rate=None, access_log_group="/aws/apigw/t", access_log_format=FORMAT)
    sink = RecordingSink()
    runner = LambdaRunner(functions, "http://127.0.0.1:1", "us-east-1", sink=sink, log_dir=tmp / "logs")
    runner.start()
    gateway = Gateway(api, runner, functions, region="us-east-1", sink=sink, log_dir=tmp / "logs")
    gateway.start()
    yield {"gateway": gateway, "sink": sink, "auth_log": auth_log, "app_log": app_log, "tmp": tmp, "runner": runner,
           "api": api, "functions": functions}
    gateway.stop()
    runner.stop()


def request(gw: Gateway, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


GOOD = {"x-device-id": "dev-1", "x-device-key": "good", "content-type": "application/json"}


def test_event_shape_payload_v2(env: dict[str, Any]) -> None:
    status, headers, body = request(env["gateway"], "POST", "/v1/telemetry?a=1&a=2&b=",
                                    b'{"readings":[]}', {**GOOD, "cookie": "c1=v1; c2=v2", "x-multi": "one",
                                                         "user-agent": "dev/1.0"})
    assert status == 202 and headers["x-extra"] == "1" and headers["set-cookie"] == "a=b"
    assert headers["apigw-requestid"]
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "POST /v1/telemetry"
    assert event["rawPath"] == "/v1/telemetry" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-device-id"] == "dev-1" and "cookie" not in event["headers"]
    assert event["body"] == '{"readings":[]}' and event["isBase64Encoded"] is False
    assert "pathParameters" not in event and "stageVariables" not in event  # empty parts are absent
    ctx = event["requestContext"]
    assert ctx["authorizer"]["lambda"]["deviceId"] == "dev-1"
    assert ctx["apiId"] == "api1" and ctx["stage"] == "$default" and ctx["routeKey"] == "POST /v1/telemetry"
    assert ctx["http"] == {"method": "POST", "path": "/v1/telemetry", "protocol": "HTTP/1.1",
                           "sourceIp": "127.0.0.1", "userAgent": "dev/1.0"}
    assert ctx["requestId"] == headers["apigw-requestid"] and ctx["accountId"] == "123456789012"
    assert time.strptime(ctx["time"], "%d/%b/%Y:%H:%M:%S +0000")
    assert abs(ctx["timeEpoch"] - time.time() * 1000) < 10_000
    assert ctx["domainName"].startswith("127.0.0.1") and ctx["domainPrefix"]


def test_binary_body_is_base64_and_path_parameters(env: dict[str, Any]) -> None:
    status, _, body = request(env["gateway"], "GET", "/items/42", b"\x00\xff", {"content-type": "application/octet-stream"})
    event = json.loads(body)
    assert status == 202 and event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"
    assert event["pathParameters"] == {"id": "42"} and event["routeKey"] == "GET /items/{id}"


def test_authorizer_401_403_500_and_cache(env: dict[str, Any]) -> None:
    gw, log = env["gateway"], env["auth_log"]
    calls_before = len(log.read_text().splitlines()) if log.exists() else 0
    assert request(gw, "POST", "/v1/telemetry", b"{}", {"x-device-id": "dev-2"})[:1] == (401,)
    status, _, body = request(gw, "POST", "/v1/telemetry", b"{}", {"x-device-id": "dev-2", "x-device-key": ""})
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    assert (len(log.read_text().splitlines()) if log.exists() else 0) == calls_before  # never called
    status, _, body = request(gw, "POST", "/v1/telemetry", b"{}", {"x-device-id": "dev-2", "x-device-key": "bad"})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    status, _, body = request(gw, "POST", "/v1/telemetry", b"{}", {"x-device-id": "dev-2", "x-device-key": "explode"})
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert request(gw, "POST", "/v1/telemetry", b"{}", {"x-device-id": "dev-2", "x-device-key": "garbage"})[0] == 500
    # Cache: the same identity is answered without calling the authorizer again.
    for _ in range(3):
        assert request(gw, "POST", "/v1/telemetry", b"{}", {"x-device-id": "dev-3", "x-device-key": "good"})[0] == 202
    events = [json.loads(line) for line in log.read_text().splitlines()]
    dev3 = [e for e in events if e["headers"].get("x-device-id") == "dev-3"]
    assert len(dev3) == 1
    auth_event = dev3[0]
    assert auth_event["type"] == "REQUEST" and auth_event["version"] == "2.0"
    assert auth_event["identitySource"] == ["dev-3", "good"]
    assert auth_event["routeArn"] == "arn:aws:execute-api:us-east-1:123456789012:api1/$default/POST/v1/telemetry"


def test_response_mapping_rules(env: dict[str, Any]) -> None:
    gw = env["gateway"]
    status, headers, body = request(gw, "GET", "/health?mode=plain")
    assert (status, json.loads(body), headers["content-type"]) == (200, {"hello": "world"}, "application/json")
    status, _, body = request(gw, "GET", "/health?mode=string")
    assert (status, body) == (200, b"just text")
    status, headers, body = request(gw, "GET", "/health?mode=binary")
    assert (status, body, headers["content-type"]) == (200, b"\x00\x01", "application/octet-stream")
    assert request(gw, "GET", "/health?mode=bad")[0] == 500
    status, _, body = request(gw, "GET", "/health?mode=fail")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    status, _, body = request(gw, "GET", "/slow/1?mode=slow")  # route timeout 1 s < function timeout 5 s
    assert status == 504
    status, _, body = request(gw, "GET", "/nowhere")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert request(gw, "DELETE", "/health")[0] == 404


def test_access_log_and_metrics(env: dict[str, Any]) -> None:
    gw, sink = env["gateway"], env["sink"]
    before_count, before_4xx = sink.total("Count"), sink.total("4xx")
    status, headers, _ = request(gw, "POST", "/v1/telemetry", b"{}", {"x-device-id": "dev-9", "x-device-key": "good"})
    request(gw, "GET", "/missing")
    assert sink.total("Count") == before_count + 2 and sink.total("4xx") == before_4xx + 1
    assert any(n == "IntegrationLatency" for _, n, _, _ in sink.points)
    lines = [json.loads(line) for line in (env["tmp"] / "logs" / "access.log").read_text().splitlines()]
    mine = [line for line in lines if line["requestId"] == headers["apigw-requestid"]][0]
    assert mine == {"requestId": headers["apigw-requestid"], "status": "202", "routeKey": "POST /v1/telemetry",
                    "ip": "127.0.0.1", "device": "dev-9", "err": "-"}
    assert any(line["status"] == "404" and line["err"] == "Not Found" for line in lines)


def test_stage_throttle_429_at_burst_then_rate(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    functions = {"app": FunctionSpec("app", "arn:app", "app.handler", code, {}, 5, 128, None)}
    api = ApiSpec("api2", "t", "$default", (RouteSpec("GET /health", "app", "2.0", 30000),),
                  throttle_burst=5, throttle_rate=0.5)  # one token per 2 s
    # The stage's clock stands still unless the test moves it, so a slow machine cannot refill
    # a token between requests and the refill needs no real 10 s wait.
    now = [1000.0]
    runner = LambdaRunner(functions, "http://127.0.0.1:1", "us-east-1", log_dir=tmp_path / "logs")
    runner.start()
    gw = Gateway(api, runner, functions, region="us-east-1", log_dir=tmp_path / "logs", clock=lambda: now[0])
    gw.start()
    try:
        statuses = [request(gw, "GET", "/health?mode=ok")[0] for _ in range(8)]
        assert statuses == [200] * 5 + [429] * 3
        status, _, body = request(gw, "GET", "/health?mode=ok")
        assert (status, json.loads(body)) == (429, {"message": "Too Many Requests"})
        now[0] += 1.5  # 0.75 of a token (steps exact in binary floating point)
        assert request(gw, "GET", "/health?mode=ok")[0] == 429
        now[0] += 0.5  # 2 s at 0.5/s: exactly one token, and a 429 never took one
        assert [request(gw, "GET", "/health?mode=ok")[0] for _ in range(2)] == [200, 429]
    finally:
        gw.stop()
        runner.stop()


def test_token_bucket_math_and_half_configured_stage() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.1
    assert bucket.take() and not bucket.take()
    zero = TokenBucket(rate=100, burst=0, clock=lambda: now[0])  # burst unset -> 0: everything throttled
    assert not zero.take()


def test_route_matching_precedence() -> None:
    routes = (RouteSpec("ANY /a/{x}", "f1", "2.0", 1), RouteSpec("GET /a/b", "f2", "2.0", 1),
              RouteSpec("GET /p/{proxy+}", "f3", "2.0", 1), RouteSpec("$default", "f4", "2.0", 1))
    assert ev.match_route(routes, "GET", "/a/b").route.function == "f2"
    assert ev.match_route(routes, "POST", "/a/b").route.function == "f1"
    greedy = ev.match_route(routes, "GET", "/p/x/y/z")
    assert greedy.route.function == "f3" and greedy.path_parameters == {"proxy": "x/y/z"}
    assert ev.match_route(routes, "GET", "/zzz").route.function == "f4"
    assert ev.match_route(routes[:3], "GET", "/zzz") is None


def test_iam_policy_authorizer_responses() -> None:
    arn = "arn:aws:execute-api:us-east-1:1:api/$default/POST/v1/telemetry"
    allow = {"principalId": "d", "policyDocument": {"Version": "2012-10-17", "Statement": [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:us-east-1:1:api/*"}]}}
    assert ev.authorizer_decision(allow, simple=False, route_arn=arn)[0] is True
    deny = json.loads(json.dumps(allow).replace("Allow", "Deny"))
    assert ev.authorizer_decision(deny, simple=False, route_arn=arn)[0] is False
    with pytest.raises(ev.MalformedAuthorizerResponse):
        ev.authorizer_decision({"isAuthorized": "yes"}, simple=True, route_arn=arn)


def test_payload_over_10_mb_is_413_without_reading_it(env: dict[str, Any]) -> None:
    errors_before = env["sink"].total("4xx")
    with socket.create_connection(("127.0.0.1", env["gateway"].port), timeout=10) as sock:
        sock.sendall(b"POST /v1/telemetry HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):  # the gateway closes the connection after a 413
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413") and b'{"message":"Request Entity Too Large"}' in reply
    # Refused before the body is read, it is still logged and counted, so the 4xx alarm sees it.
    request_id = reply.split(b"apigw-requestid: ", 1)[1].split(b"\r\n", 1)[0].decode()
    lines = [json.loads(line) for line in (env["tmp"] / "logs" / "access.log").read_text().splitlines()]
    (line,) = [line for line in lines if line["requestId"] == request_id]
    assert line["status"] == "413" and "Request Entity Too Large" in line["err"]
    assert env["sink"].total("4xx") == errors_before + 1


def test_payload_format_1_0_is_refused_at_start(tmp_path: Path) -> None:
    from localcloud.gateway import UnsupportedApi
    api = ApiSpec("api3", "t", "$default", (RouteSpec("GET /x", "app", "1.0", 30000),), None, None)
    with pytest.raises(UnsupportedApi, match="payload format 1.0"):
        Gateway(api, LambdaRunner({}, "http://127.0.0.1:1", "us-east-1", log_dir=tmp_path), {}, region="us-east-1",
                log_dir=tmp_path)


def test_stop_closes_keep_alive_connections(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    functions = {"app": FunctionSpec("app", "arn:app", "app.handler", code, {}, 5, 128, None)}
    api = ApiSpec("api4", "t", "$default", (RouteSpec("GET /health", "app", "2.0", 30000),), None, None)
    runner = LambdaRunner(functions, "http://127.0.0.1:1", "us-east-1", log_dir=tmp_path / "logs")
    runner.start()
    gw = Gateway(api, runner, functions, region="us-east-1", log_dir=tmp_path / "logs")
    gw.start()
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    try:
        conn.request("GET", "/health?mode=ok")
        assert conn.getresponse().read() is not None
        gw.stop()
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn.request("GET", "/health?mode=ok")
            conn.getresponse().read()
    finally:
        conn.close()
        runner.stop()


# ---- strict framing, slow clients and the connection cap (raw sockets) ---------------------------------

def seen_by_a_function(env: dict[str, Any], probe: str) -> bool:
    """Whether any authorizer or integration event carried the probe (each function logs every event)."""
    return any(log.exists() and probe in log.read_text() for log in (env["auth_log"], env["app_log"]))


def raw_exchange(port: int, data: bytes, *, hang_up: bool = False) -> bytes:
    """Send bytes as they are; optionally half-close (the client hangs up); read until the gateway closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if hang_up:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def telemetry_request(probe: str, body: bytes, framing: list[str]) -> bytes:
    head = ["POST /v1/telemetry HTTP/1.1", "Host: gw", "x-device-id: dev-1", "x-device-key: good",
            "content-type: application/json", f"x-probe: {probe}", "Connection: close", *framing]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


BODY = b'{"readings":[{"ts":1,"metrics":{"t":1}}]}'  # 41 bytes
N = len(BODY)

# Each case: (framing header lines, hang up after sending, expected status). None of them may reach a function:
# the stdlib's int() took "+41", "4_1" and "-1" (which read to the end), the first of two lengths, a short
# body once the client hung up, and ignored a Transfer-Encoding that was not exactly "chunked".
BAD_FRAMING: dict[str, tuple[list[str], bool, int]] = {
    "plus sign": ([f"Content-Length: +{N}"], False, 400),
    "underscore": ([f"Content-Length: {N // 10}_{N % 10}"], False, 400),
    "negative": (["Content-Length: -1"], True, 400),
    "non-numeric": (["Content-Length: forty-one"], False, 400),
    "hex": ([f"Content-Length: {hex(N)}"], False, 400),
    "decimal point": ([f"Content-Length: {N}.0"], False, 400),
    "empty": (["Content-Length: "], False, 400),
    "two different values": ([f"Content-Length: {N}", f"Content-Length: {N + 1}"], False, 400),
    "two values in one field": ([f"Content-Length: {N}, {N + 1}"], False, 400),
    "shorter body than announced": ([f"Content-Length: {N + 10}"], True, 400),
    "transfer-encoding not ending in chunked": (["Transfer-Encoding: gzip", f"Content-Length: {N}"], False, 400),
    "chunked (not emulated)": (["Transfer-Encoding: chunked"], False, 411),
    "chunked last of two codings": (["Transfer-Encoding: gzip, chunked", f"Content-Length: {N}"], False, 411),
    "over 10 MB": (["Content-Length: 99999999999999999999999"], False, 413),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMING))
def test_bad_framing_is_refused_before_any_function(case: str, env: dict[str, Any]) -> None:
    framing, hang_up, status = BAD_FRAMING[case]
    probe = uuid.uuid4().hex
    errors_before = env["sink"].total("4xx")
    reply = raw_exchange(env["gateway"].port, telemetry_request(probe, BODY, framing), hang_up=hang_up)
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:200]
    assert b"Connection: close" in reply  # the body was not read, so the connection cannot be reused
    assert not seen_by_a_function(env, probe)
    assert env["sink"].total("4xx") == errors_before + 1  # logged and counted like any refusal


@pytest.mark.parametrize("framing", [[f"Content-Length: {N}"], [f"Content-Length: {N}", f"Content-Length: {N}"],
                                     [f"Content-Length: {N}, 0{N}"], [f"Content-Length:  {N} "]])
def test_exact_lengths_reach_the_function(framing: list[str], env: dict[str, Any]) -> None:
    """The control group: the same request with a length that is plain digits (repeated identically is allowed,
    RFC 9112 §6.3) is delivered, so the refusals above are about framing and nothing else."""
    probe = uuid.uuid4().hex
    reply = raw_exchange(env["gateway"].port, telemetry_request(probe, BODY, framing))
    assert reply.startswith(b"HTTP/1.1 202 ")
    event = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert event["body"] == BODY.decode()
    assert seen_by_a_function(env, probe)


def test_forwarded_headers_are_added_as_api_gateway_does(env: dict[str, Any]) -> None:
    gw = env["gateway"]
    status, _, body = request(gw, "POST", "/v1/telemetry", b"{}",
                              {**GOOD, "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "gopher",
                               "x-forwarded-port": "1"})
    headers = json.loads(body)["headers"]
    assert status == 202
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"  # appended: the claimed address is not trusted
    assert (headers["x-forwarded-port"], headers["x-forwarded-proto"]) == (str(gw.port), "http")
    status, _, body = request(gw, "GET", "/health")
    headers = json.loads(body)["headers"]
    assert (headers["x-forwarded-for"], headers["x-forwarded-port"], headers["x-forwarded-proto"]) == \
        ("127.0.0.1", str(gw.port), "http")
    events = [json.loads(line) for line in env["auth_log"].read_text().splitlines()]
    assert all(e["headers"]["x-forwarded-for"].endswith("127.0.0.1") for e in events)  # the authorizer sees them too


LIMITS = FrontDoorLimits(header_timeout_s=0.5, body_timeout_s=0.5, idle_timeout_s=0.5, write_timeout_s=2.0,
                         max_connections=64)


@pytest.fixture(scope="module")
def strict(env: dict[str, Any]):
    """A second gateway on the same functions, with short limits so cut-offs happen in well under a second."""
    gw = Gateway(env["api"], env["runner"], env["functions"], region="us-east-1", sink=env["sink"],
                 log_dir=env["tmp"] / "logs-strict", limits=LIMITS)
    gw.start()
    yield gw
    gw.stop()


def wait_for(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.02)


def closed_after(sock: socket.socket, started: float, trickle: bytes = b"") -> tuple[bytes, float]:
    """Read (sending one byte of ``trickle`` every 50 ms) until the gateway closes; (reply, seconds since
    ``started``, taken before the gateway could start its clock, so the cut-off can be no earlier than the limit)."""
    sock.settimeout(0.05)
    reply = b""
    while time.monotonic() - started < 10:
        if trickle:
            try:
                sock.send(trickle[:1])
                trickle = trickle[1:]
            except OSError:
                pass
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        reply += chunk
    else:
        raise AssertionError("the gateway kept a slow client for 10 s")
    return reply, time.monotonic() - started


def test_silent_client_is_cut_off_at_the_header_timeout(strict: Gateway) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        reply, took = closed_after(sock, started)
    assert reply == b"" and took >= LIMITS.header_timeout_s
    wait_for(lambda: strict.open_connections == 0, "connection slot freed")


def test_trickled_headers_are_cut_off_at_the_header_timeout(env: dict[str, Any], strict: Gateway) -> None:
    """One byte every 50 ms would reset a per-recv timeout forever; the deadline covers the whole header."""
    probe = uuid.uuid4().hex
    request_bytes = telemetry_request(probe, BODY, [f"Content-Length: {N}", "x-pad: " + "a" * 400])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        reply, took = closed_after(sock, started, trickle=request_bytes)
    assert reply == b"" and took >= LIMITS.header_timeout_s
    assert not seen_by_a_function(env, probe)
    wait_for(lambda: strict.open_connections == 0, "connection slot freed")


@pytest.mark.parametrize("trickle", [False, True])
def test_slow_body_is_cut_off_at_the_body_timeout_with_408(env: dict[str, Any], strict: Gateway, trickle: bool) -> None:
    probe = uuid.uuid4().hex
    request_bytes = telemetry_request(probe, BODY, [f"Content-Length: {N + 400}"])
    head, body = request_bytes.split(b"\r\n\r\n", 1)
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        started = time.monotonic()  # before the gateway has the headers, so before its body clock starts
        sock.sendall(head + b"\r\n\r\n" + body[:5])
        reply, took = closed_after(sock, started, trickle=(body[5:] + b" " * 400) if trickle else b"")
    assert reply.startswith(b"HTTP/1.1 408 ") and b'{"message":"Request Timeout"}' in reply
    assert took >= LIMITS.body_timeout_s
    assert not seen_by_a_function(env, probe)
    wait_for(lambda: strict.open_connections == 0, "connection slot freed")


def test_idle_keep_alive_connection_is_closed_at_the_idle_timeout(strict: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        started = time.monotonic()  # before the request, so before the gateway's idle clock starts
        sock.sendall(b"GET /health?mode=ok HTTP/1.1\r\nHost: gw\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(65536)
        head, rest = reply.split(b"\r\n\r\n", 1)
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        while len(rest) < length:
            rest += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 ")
        tail, took = closed_after(sock, started)
    assert tail == b"" and took >= LIMITS.idle_timeout_s
    wait_for(lambda: strict.open_connections == 0, "connection slot freed")


def test_connections_over_the_cap_wait_for_a_free_slot(env: dict[str, Any], tmp_path: Path) -> None:
    limits = FrontDoorLimits(header_timeout_s=60, max_connections=2)  # slots are freed only by the test
    gw = Gateway(env["api"], env["runner"], env["functions"], region="us-east-1", log_dir=tmp_path, limits=limits)
    gw.start()
    silent = [socket.create_connection(("127.0.0.1", gw.port), timeout=10) for _ in range(2)]
    try:
        wait_for(lambda: gw.open_connections == 2, "two connections served")
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as third:
            third.sendall(b"GET /health?mode=ok HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            wait_for(lambda: gw.waiting_connections == 1, "the third connection waiting for a slot")
            assert gw.open_connections == 2  # no thread was started for it
            silent.pop().close()  # a slot frees: the waiting request is served
            reply = b""
            while chunk := third.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in silent:
            sock.close()
        gw.stop()
