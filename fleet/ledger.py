"""What the fleet sent and what the API answered, classified as it happens.

Worker threads record every outcome here; the read-back check and the report
read it afterwards. Classification follows the HTTP contract:

- a good request answered 202 -> its readings are *accepted* and must be stored exactly once;
- a bad request answered with the status its kind promises -> *expected rejection*;
- anything else -> *unexpected* (by status, or by transport error), including a bad
  request that was accepted;
- a greedy device's good request answered 429 quota_exceeded -> *expected rejection*
  (the quota cut-off; any other 429 for it is unexpected, as for every good request);
- 4xx answers mean nothing was stored (their readings are kept as *rejected*, so
  the read-back can prove it); transport errors and 5xx leave the outcome
  *unknown*, and those readings are neither required nor forbidden in storage.
"""
from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from typing import Any

from .client import Response, is_quota_refusal
from .devices import OutgoingRequest, ReadingId


@dataclass
class Ledger:
    requests: int = 0
    readings: int = 0
    retries: int = 0
    good_accepted: int = 0  # good requests answered 202
    by_status: Counter[str] = field(default_factory=Counter)  # "202", "403", "error:Timeout"
    expected_rejections: Counter[str] = field(default_factory=Counter)  # "wrong_key -> 403"
    unexpected: Counter[str] = field(default_factory=Counter)  # "good -> 500", "nan_value -> 202"
    latencies_s: list[float] = field(default_factory=list)
    accepted: dict[str, dict[ReadingId, dict[str, float]]] = field(default_factory=lambda: defaultdict(dict))
    accepted_twice: int = 0  # the API acknowledged the same (ts, seq) in two responses
    count_mismatches: int = 0  # 202 whose "accepted" differs from the readings sent
    rejected: dict[str, set[ReadingId]] = field(default_factory=lambda: defaultdict(set))
    unknown: dict[str, set[ReadingId]] = field(default_factory=lambda: defaultdict(set))
    quota_refusals: Counter[str] = field(default_factory=Counter)  # device -> 429 quota_exceeded answers
    first_quota_refusal: dict[str, Any] = field(default_factory=dict)  # device -> body of its first one
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, request: OutgoingRequest, response: Response) -> None:
        with self._lock:
            self._record(request, response)

    def _record(self, request: OutgoingRequest, response: Response) -> None:
        self.requests += 1
        self.readings += len(request.readings)
        self.retries += response.attempts - 1
        status_key = str(response.status) if response.status is not None else f"error:{_short(response.error)}"
        self.by_status[status_key] += 1
        if response.status is not None:
            self.latencies_s.append(response.latency_s)
        kind = request.misbehaviour.value if request.misbehaviour else ("greedy" if request.greedy else "good")
        device = request.device_id

        if request.greedy and response.status == 429:
            self.rejected[device].update(request.readings)  # the read-back proves none was stored
            if is_quota_refusal(response):
                self.expected_rejections["greedy -> 429 quota_exceeded"] += 1
                self.quota_refusals[device] += 1
                self.first_quota_refusal.setdefault(device, response.json())
            else:
                self.unexpected[f"{kind} -> 429"] += 1
            return

        if response.status is None or response.status >= 500:
            self.unknown[device].update(request.readings)
            if response.status not in request.expected_statuses:
                self.unexpected[f"{kind} -> {status_key}"] += 1
            return
        if response.status == 202 and request.misbehaviour is None:
            self.good_accepted += 1
            stored = self.accepted[device]
            for rid, metrics in request.readings.items():
                if rid in stored:
                    self.accepted_twice += 1
                stored[rid] = metrics
            body = response.json()
            if not isinstance(body, dict) or body.get("accepted") != len(request.readings):
                self.count_mismatches += 1
            return
        if response.status == 202:  # bad input accepted: whatever it carried may be stored
            self.unknown[device].update(request.readings)
            self.unexpected[f"{kind} -> 202"] += 1
            return
        self.rejected[device].update(request.readings)
        if response.status in request.expected_statuses:
            self.expected_rejections[f"{kind} -> {status_key}"] += 1
        else:
            self.unexpected[f"{kind} -> {status_key}"] += 1

    @property
    def accepted_readings(self) -> int:
        return sum(len(v) for v in self.accepted.values())

    @property
    def accepted_requests(self) -> int:
        return self.good_accepted

    @property
    def unexpected_total(self) -> int:
        return sum(self.unexpected.values())


def _short(error: str | None) -> str:
    return (error or "unknown").split(":", 1)[0]
