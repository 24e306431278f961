"""IAM enforcement in the emulator: every call signed with a role's credentials is
checked against that role's identity policies before moto sees it.

Who is who: a caller's identity is the access key id in its SigV4
``Authorization`` header (``Credential=<key>/<date>/<region>/<service>/aws4_request``).
Keys issued by the emulator's STS ``AssumeRole`` (the data plane assumes each
function's execution role, see :mod:`localcloud.iam_identity`) are that role; any
other key (``testing``: the provisioner, admin CLI, fleet, monitor, tests) is the
account's administrator and is not checked. Signatures are not verified: the
emulator trusts the key id, as moto does.

For a role, the call is mapped to its IAM action(s) and resource ARN(s)
(:mod:`localcloud.iam_actions`), the role's policies are read from moto's IAM
(inline policies and attached managed policies, as the provisioner created
them), and :mod:`localcloud.iam_policy` decides. A refused call gets the
AccessDenied error the service's protocol returns on AWS:
- JSON services (DynamoDB, Kinesis, Logs, KMS): HTTP 400, ``AccessDeniedException``
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
- SQS (JSON protocol, query-compatible): HTTP 403, ``x-amzn-query-error: AccessDenied;Sender``,
  so SDKs report the query error code ``AccessDenied``
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-json-api-responses.html
- SNS (query/XML): HTTP 403, ``AuthorizationError``
  https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html
- other query/XML services (CloudWatch, STS...): HTTP 403, ``AccessDenied``;
  REST-JSON services (X-Ray): HTTP 403, ``AccessDeniedException``.
A call of a role that the mapping does not know is refused with
``LocalCloudUnmappedIamCall`` (HTTP 400) naming the call: never silently allowed.

Control plane (diagnostics, used by tests): ``GET /_localcloud/iam`` lists the
recent denials and unmapped calls, ``DELETE`` clears them.
"""
from __future__ import annotations

import collections
import io
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from .iam_actions import ApiCall, UnmappedCall, authorizations
from .iam_policy import PolicyError, Statement, evaluate, parse_policy

log = logging.getLogger("localcloud.iam")

ADMIN_PATH = "/_localcloud/iam"
DEFAULT_ACCOUNT = "123456789012"
UNMAPPED_CODE = "LocalCloudUnmappedIamCall"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_JSON_SERVICES_400 = {"dynamodb", "kinesis", "logs", "kms", "lambda"}
_XML_NAMESPACES = {
    "sns": "http://sns.amazonaws.com/doc/2010-03-31/",
    "sqs": "http://queue.amazonaws.com/doc/2012-11-05/",
    "monitoring": "http://monitoring.amazonaws.com/doc/2010-08-01/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Principal:
    """A caller running under a role (an STS assumed-role session)."""

    role_name: str
    role_arn: str
    arn: str  # arn:aws:sts::<account>:assumed-role/<role>/<session>
    account: str


@dataclass(frozen=True)
class Refusal:
    principal: str
    call: str  # "dynamodb BatchWriteItem"
    action: str
    resource: str
    message: str
    code: str  # AccessDenied code sent, or UNMAPPED_CODE


class RoleDirectory:
    """Principals and policies, read from moto's STS and IAM backends in this process."""

    def __init__(self, account: str = DEFAULT_ACCOUNT) -> None:
        self.account = account
        self._principals: dict[str, Principal] = {}
        self._lock = threading.Lock()

    def principal(self, access_key: str) -> Principal | None:
        """The role behind an access key issued by AssumeRole; None for any other key (administrator)."""
        if not access_key.startswith("ASIA"):
            # Temporary (STS) keys start with ASIA, long-term ones with AKIA; moto follows suit:
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids
            return None
        with self._lock:
            known = self._principals.get(access_key)
        if known is not None:
            return known
        from moto.sts.models import sts_backends

        for account in {self.account, *sts_backends.keys()}:
            assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
            if assumed is not None:
                principal = Principal(
                    role_name=assumed.role_arn.rsplit("/", 1)[-1], role_arn=assumed.role_arn,
                    arn=assumed.arn, account=assumed.account_id,
                )
                with self._lock:
                    self._principals[access_key] = principal
                return principal
        return None

    def policies(self, principal: Principal) -> list[tuple[str, tuple[Statement, ...]]]:
        """The role's inline and attached managed policies, parsed (cached by document text)."""
        from moto.iam.models import iam_backends

        backend = iam_backends[principal.account]["aws"]
        try:
            role = backend.get_role(principal.role_name)
        except Exception:  # noqa: BLE001 - moto's NotFoundException: the role is gone, nothing is allowed
            return []
        out: list[tuple[str, tuple[Statement, ...]]] = []
        for name, document in list(role.policies.items()):
            out.append((name, parse_policy(_document_text(document), name)))
        for arn, managed in list(role.managed_policies.items()):
            default = next((v for v in managed.versions if v.is_default), None)
            if default is not None:
                out.append((arn, parse_policy(_document_text(default.document), arn)))
        return out


def _document_text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


class IamEnforcer:
    """WSGI middleware: checks role-signed calls, passes everything else through unchanged."""

    def __init__(self, app: WsgiApp, directory: RoleDirectory | None = None, keep: int = 200) -> None:
        self._app = app
        self.wrapped: Any = getattr(app, "wrapped", app)  # moto's dispatcher, for the emulator's warm-up
        self.directory = directory or RoleDirectory()
        self._refusals: collections.deque[Refusal] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Whatever the inner app offers (the fault injector's API) stays reachable through us.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._app, name)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == ADMIN_PATH:
            return self._admin(environ, start_response)
        found = _credential(environ)
        if found is None:
            return self._app(environ, start_response)
        access_key, region, service = found
        principal = self.directory.principal(access_key)
        if principal is None:
            return self._app(environ, start_response)
        body = _buffer_body(environ)
        call = _api_call(environ, body, service, region, principal.account)
        try:
            checks = authorizations(call)
        except UnmappedCall as exc:
            self._remember(Refusal(principal.arn, f"{call.service} {call.operation}", "", "", str(exc), UNMAPPED_CODE))
            log.error("%s (caller %s)", exc, principal.arn)
            return _error(start_response, environ, service, UNMAPPED_CODE, str(exc), status=400)
        try:
            policies = self.directory.policies(principal)
        except PolicyError as exc:
            policies = []
            log.error("role %s has a policy the evaluator cannot read: %s", principal.role_name, exc)
        for check in checks:
            decision = evaluate(policies, check.action, check.resource)
            if decision.denied:
                message = (f"User: {principal.arn} is not authorized to perform: {check.action} "
                           f"on resource: {check.resource} {decision.reason}")
                code = _denied_code(service, environ)
                self._remember(Refusal(principal.arn, f"{call.service} {call.operation}", check.action,
                                       check.resource, message, code))
                log.warning("AccessDenied: %s", message)
                return _error(start_response, environ, service, code, message, status=_denied_status(service, environ))
        return self._app(environ, start_response)

    # -- diagnostics ---------------------------------------------------------------------------
    def _remember(self, refusal: Refusal) -> None:
        with self._lock:
            self._refusals.append(refusal)

    def refusals(self) -> list[Refusal]:
        with self._lock:
            return list(self._refusals)

    def _admin(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "DELETE":
            with self._lock:
                self._refusals.clear()
        elif method != "GET":
            return _json(start_response, 405, {"error": "method_not_allowed", "message": method})
        return _json(start_response, 200, {"refusals": [asdict(r) for r in self.refusals()]})


# ---- request parsing ------------------------------------------------------------------------------

def _credential(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key id, region, signing service) of a SigV4-signed request, header or presigned query."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    match = _CREDENTIAL.search(header)
    if match is None:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        scope = (query.get("X-Amz-Credential") or [""])[0]
        parts = scope.split("/")
        if len(parts) != 5:
            return None
        return parts[0], parts[2], parts[3]
    return match.group(1), match.group(2), match.group(3)


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the body once and put it back, so moto still reads it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    body = stream.read(length) if length > 0 else (stream.read() if environ.get("wsgi.input_terminated") else b"")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _api_call(environ: dict[str, Any], body: bytes, service: str, region: str, account: str) -> ApiCall:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:  # JSON protocol: X-Amz-Target: DynamoDB_20120810.BatchWriteItem
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {}
        return ApiCall(service, target.rsplit(".", 1)[-1], params if isinstance(params, dict) else {}, region, account)
    path = environ.get("PATH_INFO", "")
    if environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":  # /service/<Service>/operation/<Op>
        return ApiCall(service, path.rsplit("/", 1)[-1], {}, region, account)
    content_type = environ.get("CONTENT_TYPE", "")
    form: dict[str, list[str]] = parse_qs(environ.get("QUERY_STRING", ""))
    if "x-www-form-urlencoded" in content_type and body:
        form.update(parse_qs(body.decode("utf-8", "replace")))
    if "Action" in form:  # query protocol: Action=Publish&TopicArn=...
        params = {k: v[0] for k, v in form.items()}
        return ApiCall(service, params.pop("Action"), params, region, account)
    # REST-JSON/XML services (Lambda, API Gateway...): not modelled, so unmapped by name.
    return ApiCall(service, f"{environ.get('REQUEST_METHOD', 'GET')} {path}", {}, region, account)


# ---- error responses ------------------------------------------------------------------------------

def _is_json(environ: dict[str, Any]) -> bool:
    """JSON or REST-JSON, i.e. anything but the query protocol's form-encoded Action calls."""
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in environ.get("CONTENT_TYPE", ""):
        return True
    return not (_is_cbor(environ) or _is_query(environ))


def _is_query(environ: dict[str, Any]) -> bool:
    return ("x-www-form-urlencoded" in environ.get("CONTENT_TYPE", "")
            or "Action=" in environ.get("QUERY_STRING", ""))


def _is_cbor(environ: dict[str, Any]) -> bool:
    return environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor"


def _denied_code(service: str, environ: dict[str, Any]) -> str:
    if service == "sns":
        return "AuthorizationError"
    if service in ("sqs", "monitoring") or _is_query(environ):
        return "AccessDenied"  # query protocol, or JSON/CBOR that is query-compatible
    return "AccessDeniedException"


def _denied_status(service: str, environ: dict[str, Any]) -> int:
    """400 for awsJson services (DynamoDB, Kinesis...); 403 for query, query-compatible and REST ones."""
    if environ.get("HTTP_X_AMZ_TARGET") and service != "sqs":
        return 400
    return 403


def _error(start_response: Callable[..., Any], environ: dict[str, Any], service: str, code: str,
           message: str, status: int) -> list[bytes]:
    request_id = str(uuid.uuid4())
    if _is_cbor(environ):
        payload = _cbor_map({"__type": code, "message": message})
        return _respond(start_response, status, payload, [("Content-Type", "application/cbor"),
                                                          ("smithy-protocol", "rpc-v2-cbor"),
                                                          ("x-amzn-query-error", f"{code};Sender")], request_id)
    if _is_json(environ):
        version = "1.0" if service in ("dynamodb", "sqs") else "1.1"
        headers = [("Content-Type", f"application/x-amz-json-{version}"), ("x-amzn-ErrorType", code)]
        if service == "sqs":
            # Query-compatible JSON service: SDKs take the error code from this header.
            headers.append(("x-amzn-query-error", f"{code};Sender"))
            code_type = "com.amazon.coral.service#AccessDeniedException" if code == "AccessDenied" else code
        else:
            code_type = f"com.amazon.coral.service#{code}"
        payload = json.dumps({"__type": code_type, "message": message, "Message": message}).encode()
        return _respond(start_response, status, payload, headers, request_id)
    namespace = _XML_NAMESPACES.get(service, "")
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    payload = (f'<ErrorResponse{xmlns}><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
               f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
               "</ErrorResponse>").encode()
    return _respond(start_response, status, payload, [("Content-Type", "text/xml")], request_id)


def _respond(start_response: Callable[..., Any], status: int, payload: bytes, headers: list[tuple[str, str]],
             request_id: str) -> list[bytes]:
    reason = {400: "Bad Request", 403: "Forbidden"}.get(status, "Error")
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(payload))),
                                          ("x-amzn-RequestId", request_id)])
    return [payload]


def _json(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _cbor_text(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _cbor_head(3, len(raw)) + raw


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | info]) + length.to_bytes(size, "big")
    raise ValueError("too long for CBOR")


def _cbor_map(values: dict[str, str]) -> bytes:
    """A CBOR map of text to text (RFC 8949): all an rpc-v2-cbor error body needs."""
    out = _cbor_head(5, len(values))
    for key, value in values.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


# ---- client side (tests, diagnostics): the refusals the emulator at ``endpoint_url`` recorded ----------

def fetch_refusals(endpoint_url: str) -> list[dict[str, Any]]:
    import urllib.request

    with urllib.request.urlopen(endpoint_url + ADMIN_PATH, timeout=10) as response:
        return list(json.loads(response.read())["refusals"])


def clear_refusals(endpoint_url: str) -> None:
    import urllib.request

    request = urllib.request.Request(endpoint_url + ADMIN_PATH, method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
