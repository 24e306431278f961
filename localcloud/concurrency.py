"""Lambda's concurrency accounting, so the local cloud throttles a function where AWS would.

AWS (https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html):
- An account has a concurrency limit per Region (1,000 by default).
- A function with *reserved* concurrency N never runs more than N invocations at once, and
  those N are taken out of the account's pool. N = 0 throttles every invocation (how an
  operator stops a function).
- Functions without reservation share what is left (the *unreserved* pool); AWS keeps at
  least 100 unreserved, so a reservation that would leave less is refused.
- A stream event source mapping runs at most shards x ParallelizationFactor batches at once
  (``mapping_cap``), so a reservation above that cap can never throttle the mapping: the
  poller's lanes (one per shard x factor) already enforce it.
An invocation over the limit is throttled: ``Throttles`` is counted and the caller gets 429
(API Gateway) or retries (stream mappings). The runner asks ``acquire`` before every
invocation and calls ``release`` after it; drills change reservations and the account limit
while the cloud runs.
"""
from __future__ import annotations

import threading
from typing import Mapping

ACCOUNT_CONCURRENCY = 1000
MIN_UNRESERVED = 100


class ConcurrencyError(ValueError):
    """A reservation AWS would refuse; the message names the function and the limit."""


def mapping_cap(shards: int, parallelization_factor: int) -> int:
    """Most batches a Kinesis mapping processes at once: one per shard and parallelization lane."""
    return max(1, shards) * max(1, min(10, parallelization_factor))


class ConcurrencyModel:
    """In-flight invocations per function against reserved and unreserved concurrency."""

    def __init__(self, reserved: Mapping[str, int | None], account_limit: int = ACCOUNT_CONCURRENCY,
                 min_unreserved: int = MIN_UNRESERVED) -> None:
        self._lock = threading.Lock()
        self.account_limit = account_limit
        self.min_unreserved = min_unreserved
        self._reserved: dict[str, int] = {}
        self._in_flight: dict[str, int] = {name: 0 for name in reserved}
        for name, value in reserved.items():
            if value is not None and value >= 0:
                self.set_reserved(name, value)

    def set_reserved(self, function: str, value: int | None) -> None:
        """PutFunctionConcurrency (an int >= 0) or DeleteFunctionConcurrency (None)."""
        with self._lock:
            others = sum(v for f, v in self._reserved.items() if f != function)
            if value is not None:
                if value < 0:
                    raise ConcurrencyError(f"{function}: reserved concurrency must be >= 0, got {value}")
                if self.account_limit - others - value < self.min_unreserved:
                    raise ConcurrencyError(
                        f"{function}: reserving {value} would leave {self.account_limit - others - value} "
                        f"unreserved, below the minimum of {self.min_unreserved}")
                self._reserved[function] = value
            else:
                self._reserved.pop(function, None)
            self._in_flight.setdefault(function, 0)

    def reserved(self, function: str) -> int | None:
        with self._lock:
            return self._reserved.get(function)

    def set_account_limit(self, limit: int, min_unreserved: int | None = None) -> None:
        """The account's limit (a drill lowers it to exhaust the unreserved pool)."""
        with self._lock:
            self.account_limit = limit
            if min_unreserved is not None:
                self.min_unreserved = min_unreserved

    def unreserved_pool(self) -> int:
        with self._lock:
            return self._unreserved_pool()

    def _unreserved_pool(self) -> int:
        return max(0, self.account_limit - sum(self._reserved.values()))

    def acquire(self, function: str) -> bool:
        """Count one more invocation of ``function``; False means throttled."""
        with self._lock:
            running = self._in_flight.get(function, 0)
            reserved = self._reserved.get(function)
            if reserved is not None:
                allowed = running < reserved
            else:
                unreserved_running = sum(n for f, n in self._in_flight.items() if f not in self._reserved)
                allowed = unreserved_running < self._unreserved_pool()
            if allowed:
                self._in_flight[function] = running + 1
            return allowed

    def release(self, function: str) -> None:
        with self._lock:
            self._in_flight[function] = max(0, self._in_flight.get(function, 0) - 1)

    def in_flight(self, function: str) -> int:
        with self._lock:
            return self._in_flight.get(function, 0)
