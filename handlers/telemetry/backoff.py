"""Full-jitter exponential backoff bounded by a time budget.

Full jitter (sleep uniformly in [0, min(cap, base * 2**attempt)]) spreads
retries of many concurrent callers instead of having them collide again:
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
The budget makes the caller give up in time to answer (ingest must answer
well inside the HTTP API's 30 s integration timeout).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    budget_s: float
    base_delay_s: float = 0.05
    max_delay_s: float = 1.0
    max_attempts: int = 50


@dataclass
class Backoff:
    """One retry sequence. ``sleep``/``clock``/``rng`` are injectable so tests run in virtual time."""

    policy: RetryPolicy
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = random.random
    attempt: int = 0
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = self.clock() + self.policy.budget_s

    def wait(self) -> bool:
        """Sleep before the next attempt; False (without sleeping) once the budget is spent."""
        self.attempt += 1
        if self.attempt >= self.policy.max_attempts:
            return False
        cap = min(self.policy.max_delay_s, self.policy.base_delay_s * (2 ** (self.attempt - 1)))
        delay = self.rng() * cap
        if self.clock() + delay > self.deadline:
            return False
        self.sleep(delay)
        return True

    def remaining(self) -> float:
        return max(0.0, self.deadline - self.clock())


def budget_within(configured_s: float, remaining_ms: int, reserve_s: float) -> float:
    """The retry budget, shortened so that ``reserve_s`` of the invocation is left to answer in.

    A budget that outlives the function's timeout ends the invocation mid-retry,
    and the caller then gets the platform's bare error instead of our 503.
    """
    return max(0.0, min(configured_s, remaining_ms / 1000 - reserve_s))
