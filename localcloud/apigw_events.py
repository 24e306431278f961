"""HTTP API (API Gateway v2) shapes: route matching, payload format 2.0 events,
authorizer events and responses, and Lambda-proxy response mapping.

Pure functions, so every shape can be checked without a server. Sources:
- events and responses: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
- authorizers: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html
- routes: https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html
"""
from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .model import RouteSpec

TEXT_TYPES = re.compile(r"^(text/.*|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded))$")


@dataclass
class HttpRequest:
    """What the gateway read off the wire, before any API Gateway processing."""

    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # as received, in order
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"
    request_id: str = ""
    time_epoch_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def header_map(self) -> dict[str, str]:
        """Lowercase names; repeated headers joined with commas (payload 2.0 rule)."""
        out: dict[str, str] = {}
        for name, value in self.headers:
            key = name.lower()
            if key == "cookie":
                continue  # cookies travel in their own field
            out[key] = f"{out[key]},{value}" if key in out else value
        return out

    def cookies(self) -> list[str]:
        found: list[str] = []
        for name, value in self.headers:
            if name.lower() == "cookie":
                found.extend(c.strip() for c in value.split(";") if c.strip())
        return found

    def query_parameters(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.raw_query, keep_blank_values=True):
            out[key] = f"{out[key]},{value}" if key in out else value
        return out


FORWARDED = ("x-forwarded-for", "x-forwarded-port", "x-forwarded-proto")


def with_forwarded_headers(headers: list[tuple[str, str]], *, source_ip: str, port: int,
                           proto: str) -> list[tuple[str, str]]:
    """The request's headers as API Gateway passes them on: it appends the caller's address to any
    x-forwarded-for the client sent (which is why that header is untrustworthy, and sourceIp is not),
    and sets x-forwarded-port and x-forwarded-proto to the listener the client reached (443 and
    https on AWS; the local gateway's own port and http here, as SAM local sends them). Client-sent
    port/proto are replaced. Sample events: https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway.html
    """
    claimed = [value.strip() for name, value in headers if name.lower() == "x-forwarded-for" and value.strip()]
    out = [(name, value) for name, value in headers if name.lower() not in FORWARDED]
    out.append(("x-forwarded-for", ", ".join([*claimed, source_ip])))
    out.append(("x-forwarded-port", str(port)))
    out.append(("x-forwarded-proto", proto))
    return out


@dataclass(frozen=True)
class RouteMatch:
    route: RouteSpec
    path_parameters: dict[str, str]


def _route_pattern(path: str) -> tuple[re.Pattern[str], int]:
    """Compile a route path; the score orders matches from most to least specific."""
    parts = [p for p in path.strip("/").split("/") if p] if path != "/" else []
    regex = ""
    literal = 0
    for part in parts:
        greedy = re.fullmatch(r"\{(\w+)\+\}", part)
        param = re.fullmatch(r"\{(\w+)\}", part)
        if greedy:
            regex += rf"/(?P<{greedy.group(1)}>.+)"
        elif param:
            regex += rf"/(?P<{param.group(1)}>[^/]+)"
        else:
            regex += "/" + re.escape(part)
            literal += 1
    greedy_penalty = 1 if "+}" in path else 0
    return re.compile(f"^{regex or '/'}/?$" if regex else "^/$"), literal * 10 - greedy_penalty


def match_route(routes: tuple[RouteSpec, ...], method: str, path: str) -> RouteMatch | None:
    """Most specific route for method + path, then ``$default``, else None (404)."""
    best: tuple[int, int, RouteMatch] | None = None
    default: RouteSpec | None = None
    for route in routes:
        if route.route_key == "$default":
            default = route
            continue
        route_method, _, route_path = route.route_key.partition(" ")
        if route_method not in (method, "ANY"):
            continue
        pattern, score = _route_pattern(route_path)
        found = pattern.match(path)
        if not found:
            continue
        rank = (score, 1 if route_method == method else 0)
        if best is None or rank > best[:2]:
            best = (rank[0], rank[1], RouteMatch(route, {k: v for k, v in found.groupdict().items()}))
    if best is not None:
        return best[2]
    if default is not None:
        return RouteMatch(default, {})
    return None


def request_time(epoch_ms: int) -> str:
    """requestContext.time, e.g. 25/Nov/2026:03:40:59 +0000."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


def _body_fields(request: HttpRequest, headers: dict[str, str]) -> dict[str, Any]:
    if not request.body:
        return {"isBase64Encoded": False}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if TEXT_TYPES.match(content_type):
        try:
            return {"body": request.body.decode("utf-8"), "isBase64Encoded": False}
        except UnicodeDecodeError:
            pass
    return {"body": base64.b64encode(request.body).decode("ascii"), "isBase64Encoded": True}


def request_context(request: HttpRequest, *, api_id: str, stage: str, route_key: str, account_id: str,
                    authorizer: dict[str, Any] | None) -> dict[str, Any]:
    headers = request.header_map()
    domain = headers.get("host", f"{api_id}.execute-api.localhost")
    context: dict[str, Any] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request.request_id,
        "routeKey": route_key,
        "stage": stage,
        "time": request_time(request.time_epoch_ms),
        "timeEpoch": request.time_epoch_ms,
    }
    if authorizer:
        context["authorizer"] = authorizer
    return context


def _drop_empty(event: dict[str, Any]) -> dict[str, Any]:
    """Payload 2.0 omits parts that are empty."""
    return {k: v for k, v in event.items() if v not in (None, {}, [])}


def build_event(request: HttpRequest, match: RouteMatch, *, api_id: str, stage: str, account_id: str,
                authorizer_context: dict[str, Any] | None = None,
                stage_variables: dict[str, str] | None = None) -> dict[str, Any]:
    """The payload format 2.0 event for a Lambda proxy integration."""
    headers = request.header_map()
    authorizer = {"lambda": authorizer_context} if authorizer_context is not None else None
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "cookies": request.cookies(),
        "headers": headers,
        "queryStringParameters": request.query_parameters(),
        "pathParameters": match.path_parameters,
        "stageVariables": stage_variables or {},
        "requestContext": request_context(request, api_id=api_id, stage=stage, route_key=match.route.route_key,
                                          account_id=account_id, authorizer=authorizer),
    }
    event = _drop_empty(event)
    event["rawQueryString"] = request.raw_query  # always present, possibly ""
    event.update(_body_fields(request, headers))
    return event


def build_authorizer_event(request: HttpRequest, match: RouteMatch, identity: list[str], *, api_id: str,
                           stage: str, account_id: str, region: str) -> dict[str, Any]:
    """The REQUEST authorizer event, payload format 2.0."""
    route_method, _, route_path = match.route.route_key.partition(" ")
    arn_path = request.raw_path if match.route.route_key == "$default" else route_path
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{request.method}{arn_path}",
        "identitySource": identity,
        "routeKey": match.route.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "cookies": request.cookies(),
        "headers": request.header_map(),
        "queryStringParameters": request.query_parameters(),
        "requestContext": request_context(request, api_id=api_id, stage=stage, route_key=match.route.route_key,
                                          account_id=account_id, authorizer=None),
        "pathParameters": match.path_parameters,
        "stageVariables": {},
    }
    event = _drop_empty(event)
    event["rawQueryString"] = request.raw_query
    return event


def identity_values(sources: tuple[str, ...], request: HttpRequest) -> list[str] | None:
    """Values of the identity sources, or None if any is missing or empty (-> 401)."""
    headers = request.header_map()
    query = request.query_parameters()
    values: list[str] = []
    for source in sources:
        if source.startswith("$request.header."):
            value = headers.get(source[len("$request.header."):].lower())
        elif source.startswith("$request.querystring."):
            value = query.get(source[len("$request.querystring."):])
        elif source == "$request.body" or source.startswith("$context.") or source.startswith("$stageVariables."):
            value = None  # not emulated; treated as missing
        else:
            value = None
        if not value:
            return None
        values.append(value)
    return values


class MalformedAuthorizerResponse(ValueError):
    pass


def authorizer_decision(payload: Any, *, simple: bool, route_arn: str) -> tuple[bool, dict[str, Any]]:
    """(authorized, context) from an authorizer's response; raises on a malformed one (-> 500)."""
    if not isinstance(payload, dict):
        raise MalformedAuthorizerResponse("authorizer response is not a JSON object")
    context = payload.get("context") or {}
    if not isinstance(context, dict):
        raise MalformedAuthorizerResponse("context is not an object")
    if simple:
        allowed = payload.get("isAuthorized")
        if not isinstance(allowed, bool):
            raise MalformedAuthorizerResponse("isAuthorized is missing or not a boolean")
        return allowed, context
    document = payload.get("policyDocument")
    if not isinstance(document, dict) or not payload.get("principalId"):
        raise MalformedAuthorizerResponse("IAM policy response needs principalId and policyDocument")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise MalformedAuthorizerResponse("policyDocument.Statement is missing")
    allowed = False
    for statement in statements:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            continue
        if not any(_arn_matches(r, route_arn) for r in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False, context
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed, {**context, "principalId": payload["principalId"]}


def _arn_matches(pattern: str, arn: str) -> bool:
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(regex, arn) is not None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedLambdaResponse(ValueError):
    pass


def map_lambda_response(payload: Any) -> HttpResponse:
    """Payload 2.0 response rules: an object with statusCode is a response; anything
    else valid is a 200 whose body is the payload (strings as they are)."""
    if isinstance(payload, dict) and "statusCode" in payload:
        status = payload["statusCode"]
        if isinstance(status, str) and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise MalformedLambdaResponse(f"invalid statusCode {payload['statusCode']!r}")
        headers_in = payload.get("headers") or {}
        if not isinstance(headers_in, dict):
            raise MalformedLambdaResponse("headers is not an object")
        headers = [(str(k), str(v)) for k, v in headers_in.items()]
        multi = payload.get("multiValueHeaders") or {}
        if isinstance(multi, dict):
            for k, values in multi.items():
                for v in values if isinstance(values, list) else [values]:
                    headers.append((str(k), str(v)))
        cookies = payload.get("cookies") or []
        if not isinstance(cookies, list):
            raise MalformedLambdaResponse("cookies is not a list")
        headers.extend(("Set-Cookie", str(c)) for c in cookies)
        body = payload.get("body")
        if body is None:
            raw = b""
        elif not isinstance(body, str):
            raw = json.dumps(body).encode()
        elif payload.get("isBase64Encoded"):
            try:
                raw = base64.b64decode(body, validate=True)
            except ValueError as exc:
                raise MalformedLambdaResponse("body is not valid base64") from exc
        else:
            raw = body.encode("utf-8")
        if not any(k.lower() == "content-type" for k, _ in headers) and raw:
            headers.append(("Content-Type", "application/json"))
        return HttpResponse(status, headers, raw)
    if isinstance(payload, str):
        return HttpResponse(200, [("Content-Type", "application/json")], payload.encode("utf-8"))
    return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(payload).encode("utf-8"))


def gateway_error(status: int, message: str) -> HttpResponse:
    """API Gateway's own error responses: JSON {"message": ...}."""
    return HttpResponse(status, [("Content-Type", "application/json")],
                        json.dumps({"message": message}, separators=(",", ":")).encode())
