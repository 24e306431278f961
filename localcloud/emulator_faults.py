"""Fault injection in front of moto, as a WSGI middleware.

Tests need the emulator to misbehave the way AWS does (a throttled
PutRecords, a PutRecords where some entries fail while the call answers 200, a
throttled BatchWriteItem).  Doing it in the server keeps it independent of the
client (the Lambda runner's worker processes use their own boto3 clients) and
works whether moto runs in this process or in a child.

Control plane, on the emulator's own port:
  POST   /_localcloud/faults   body: one rule (JSON object) -> {"id": ...}
  GET    /_localcloud/faults   -> {"rules": [...]} with remaining counts
  DELETE /_localcloud/faults   -> removes every rule
Rule fields: ``target`` (the X-Amz-Target header, e.g.
"Kinesis_20131202.PutRecords", "DynamoDB_20120810.BatchWriteItem"), ``times``
(how many matching calls to affect, default 1; unlimited when ``seconds`` is
given without it), ``rate`` (the fraction of matching calls affected, drawn at
random per call, default 1: ``"rate": 0.1`` is sustained throttling of a tenth
of the calls), ``seconds`` (the rule ends this long after it was added: a
burst), optional ``delayMs`` (hold the call that long first: a slow
dependency), and either ``error`` (+ optional ``message``, ``status`` default
400): answer with that AWS error without calling moto, or ``failRecords``
(PutRecords only: indexes of entries that fail with ``error`` default
ProvisionedThroughputExceededException; they are not stored and the call
answers 200, as AWS does), or neither with ``delayMs``: the call then reaches
moto after the delay.
"""
from __future__ import annotations

import io
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

ADMIN_PATH = "/_localcloud/faults"
UNLIMITED = 2**62  # ``times`` of a rule bounded only by its ``seconds``
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FaultRuleError(ValueError):
    """A fault rule that cannot be applied; the message says which field."""


@dataclass
class FaultRule:
    id: int
    target: str
    times: int
    error: str | None = None
    message: str = "injected by localcloud"
    status: int = 400
    fail_records: tuple[int, ...] = field(default_factory=tuple)
    delay_ms: int = 0
    rate: float = 1.0
    expires_at: float | None = None  # time.monotonic() after which the rule is gone

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    @classmethod
    def from_json(cls, rule_id: int, raw: Any, now: float | None = None) -> "FaultRule":
        """``now`` is the injector's clock reading, from which a ``seconds`` rule's end is counted."""
        if not isinstance(raw, dict):
            raise FaultRuleError("a fault rule must be a JSON object")
        target = raw.get("target")
        if not isinstance(target, str) or "." not in target:
            raise FaultRuleError("'target' must be an X-Amz-Target such as 'Kinesis_20131202.PutRecords'")
        seconds = raw.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float))
                                    or not 0 < seconds <= 3600):
            raise FaultRuleError("'seconds' must be a number of seconds in (0, 3600]")
        times = raw.get("times", 1 if seconds is None else UNLIMITED)
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise FaultRuleError("'times' must be an integer >= 1")
        rate = raw.get("rate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise FaultRuleError("'rate' must be a fraction of calls in (0, 1]")
        fail_records = raw.get("failRecords")
        error = raw.get("error")
        delay_ms = raw.get("delayMs", 0)
        if not isinstance(delay_ms, int) or isinstance(delay_ms, bool) or not 0 <= delay_ms <= 900_000:
            raise FaultRuleError("'delayMs' must be an integer from 0 to 900000")
        if fail_records is not None:
            if not target.endswith(".PutRecords"):
                raise FaultRuleError("'failRecords' applies only to a PutRecords target")
            if not isinstance(fail_records, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in fail_records
            ):
                raise FaultRuleError("'failRecords' must be a list of record indexes >= 0")
            error = error or "ProvisionedThroughputExceededException"
        elif error is None and delay_ms > 0:
            pass  # a slow call that then succeeds
        elif not isinstance(error, str) or not error:
            raise FaultRuleError("give 'error' (an AWS error code), 'failRecords' or 'delayMs'")
        status = raw.get("status", 400)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultRuleError("'status' must be an HTTP error status (400-599)")
        return cls(
            id=rule_id,
            target=target,
            times=times,
            error=error,
            message=str(raw.get("message", "injected by localcloud")),
            status=status,
            fail_records=tuple(sorted(set(fail_records or ()))),
            delay_ms=delay_ms,
            rate=float(rate),
            expires_at=None if seconds is None else (time.monotonic() if now is None else now) + float(seconds),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "target": self.target, "times": self.times, "error": self.error}
        if self.fail_records:
            out["failRecords"] = list(self.fail_records)
        if self.delay_ms:
            out["delayMs"] = self.delay_ms
        if self.rate < 1:
            out["rate"] = self.rate
        if self.expires_at is not None:
            out["secondsLeft"] = round(max(0.0, self.expires_at - time.monotonic()), 3)
        return out


class FaultInjector:
    """WSGI middleware holding the rules; thread-safe (moto's server is threaded)."""

    def __init__(self, app: WsgiApp, rng: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._rng = rng
        self._clock = clock
        self.wrapped: Any = app  # moto's dispatcher, for warm-up
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == ADMIN_PATH:
            return self._admin(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET")
        rule = self._take(target) if target else None
        if rule is None:
            return self._app(environ, start_response)
        if rule.delay_ms:
            time.sleep(rule.delay_ms / 1000)
        if rule.error is None:
            return self._app(environ, start_response)
        if rule.fail_records:
            return self._partial_put_records(rule, environ, start_response)
        return _json_response(start_response, rule.status, {"__type": rule.error, "message": rule.message})

    def _take(self, target: str) -> FaultRule | None:
        with self._lock:
            now = self._clock()
            self._rules = [r for r in self._rules if not r.expired(now)]
            for rule in self._rules:
                if rule.target == target:
                    if rule.rate < 1 and self._rng() >= rule.rate:
                        continue  # this call is spared; a later rule for the target may still apply
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def _admin(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET":
            with self._lock:
                now = self._clock()
                self._rules = [r for r in self._rules if not r.expired(now)]
                rules = [r.to_json() for r in self._rules]
            return _json_response(start_response, 200, {"rules": rules})
        if method == "DELETE":
            with self._lock:
                self._rules.clear()
            return _json_response(start_response, 200, {"rules": []})
        if method == "POST":
            try:
                raw = json.loads(_read_body(environ) or b"null")
                with self._lock:
                    rule = FaultRule.from_json(next(self._ids), raw, self._clock())
                    self._rules.append(rule)
            except (ValueError, FaultRuleError) as exc:
                return _json_response(start_response, 400, {"error": "invalid_fault_rule", "message": str(exc)})
            return _json_response(start_response, 200, {"id": rule.id})
        return _json_response(start_response, 405, {"error": "method_not_allowed", "message": method})

    def _partial_put_records(
        self, rule: FaultRule, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = json.loads(_read_body(environ) or b"{}")
        records = body.get("Records", [])
        failed = {i for i in rule.fail_records if i < len(records)}
        kept = [r for i, r in enumerate(records) if i not in failed]
        if not kept:
            # AWS still answers 200 when every entry failed.
            entries = [{"ErrorCode": rule.error, "ErrorMessage": rule.message} for _ in records]
            return _json_response(start_response, 200, {"FailedRecordCount": len(entries), "Records": entries})
        body["Records"] = kept
        payload = json.dumps(body).encode()
        environ["wsgi.input"] = io.BytesIO(payload)
        environ["CONTENT_LENGTH"] = str(len(payload))
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda _chunk: None

        chunks = self._app(environ, capture)
        try:
            raw = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        if not str(captured.get("status", "")).startswith("200"):
            start_response(captured["status"], captured["headers"])
            return [raw]
        answer = json.loads(raw)
        stored = iter(answer.get("Records", []))
        entries = [
            {"ErrorCode": rule.error, "ErrorMessage": rule.message} if i in failed else next(stored)
            for i in range(len(records))
        ]
        answer["Records"] = entries
        answer["FailedRecordCount"] = int(answer.get("FailedRecordCount", 0)) + len(failed)
        return _json_response(start_response, 200, answer)


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def _json_response(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 405: "Method Not Allowed"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))],
    )
    return [payload]
