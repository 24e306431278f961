"""The fault plane's rate and time-window rules, in virtual time against a stand-in WSGI app.

The stand-in is the service behind the injector, not the thing under test: the
injector decides which calls never reach it.
"""
from __future__ import annotations

import io
import json
from typing import Any, Callable, Iterable

import pytest

from localcloud.emulator_faults import ADMIN_PATH, FaultInjector

TARGET = "DynamoDB_20120810.BatchWriteItem"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def service(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"UnprocessedItems": {}}']


def call(app: FaultInjector, target: str = TARGET, method: str = "POST", path: str = "/", body: Any = None) -> tuple[str, Any]:
    payload = b"" if body is None else json.dumps(body).encode()
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "HTTP_X_AMZ_TARGET": target,
               "CONTENT_LENGTH": str(len(payload)), "wsgi.input": io.BytesIO(payload)}
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"] = status

    raw = b"".join(app(environ, start_response))
    return seen["status"], json.loads(raw) if raw else None


def add_rule(app: FaultInjector, rule: dict[str, Any]) -> tuple[str, Any]:
    return call(app, target="", path=ADMIN_PATH, body=rule)


def test_rate_rule_affects_only_the_drawn_fraction_of_calls() -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95, 0.10, 0.0])
    app = FaultInjector(service, rng=lambda: next(draws), clock=Clock())
    assert add_rule(app, {"target": TARGET, "error": "ProvisionedThroughputExceededException", "rate": 0.1})[0].startswith("200")
    statuses = [call(app)[0][:3] for _ in range(6)]
    # the first draw below the rate is affected, and with the default times=1 the rule is then used up
    assert statuses == ["400", "200", "200", "200", "200", "200"]


def test_rate_rule_with_many_times_keeps_throttling_a_fraction() -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95, 0.10, 0.0])
    app = FaultInjector(service, rng=lambda: next(draws), clock=Clock())
    add_rule(app, {"target": TARGET, "error": "ThrottlingException", "rate": 0.1, "times": 1000})
    statuses = [call(app)[0][:3] for _ in range(6)]
    assert statuses == ["400", "200", "400", "200", "200", "400"]
    (rule,) = call(app, target="", method="GET", path=ADMIN_PATH)[1]["rules"]
    assert rule["times"] == 997 and rule["rate"] == 0.1


def test_seconds_rule_is_a_burst_that_ends_by_itself() -> None:
    clock = Clock()
    app = FaultInjector(service, clock=clock)
    add_rule(app, {"target": TARGET, "error": "InternalServerError", "status": 500, "seconds": 1.0})
    status, body = call(app)
    assert status.startswith("500") and body["__type"] == "InternalServerError"
    clock.now += 0.99
    assert call(app)[0].startswith("500")  # every call inside the window, not just one
    assert call(app, target="DynamoDB_20120810.UpdateItem")[0].startswith("200")  # other targets untouched
    clock.now += 0.02
    assert call(app)[0].startswith("200")
    assert call(app, target="", method="GET", path=ADMIN_PATH)[1] == {"rules": []}


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"target": TARGET, "error": "X", "rate": 0}, "'rate'"),
        ({"target": TARGET, "error": "X", "rate": 1.5}, "'rate'"),
        ({"target": TARGET, "error": "X", "rate": True}, "'rate'"),
        ({"target": TARGET, "error": "X", "seconds": 0}, "'seconds'"),
        ({"target": TARGET, "error": "X", "seconds": "1"}, "'seconds'"),
    ],
)
def test_bad_rate_or_seconds_is_refused_with_the_field(rule: dict[str, Any], message: str) -> None:
    app = FaultInjector(service, clock=Clock())
    status, body = add_rule(app, rule)
    assert status.startswith("400") and message in body["message"]
    assert call(app, target="", method="GET", path=ADMIN_PATH)[1] == {"rules": []}
