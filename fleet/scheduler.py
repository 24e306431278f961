"""Open-loop send schedule: when each device sends, independent of how fast the API answers.

Open loop matters for a load test: a closed loop (send the next request when the
previous one returns) slows down exactly when the system under test does, and
hides the latency it should measure. Here each device sends every
`devices / rate` seconds, each interval stretched or shrunk by up to `jitter`,
starting at a random phase so the fleet does not fire in lock-step.

`plan()` is a pure function of its inputs (no clock), so tests can count what it
produces; `dispatch()` walks a plan against a clock and hands each due send to a
callback, which may block (bounded queue) - the lag that causes is measured,
not hidden.
"""
from __future__ import annotations

import heapq
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def plan(
    devices: Sequence[T],
    *,
    rate: float,
    duration: float,
    jitter: float,
    rng: random.Random,
) -> Iterator[tuple[float, T]]:
    """Yield `(offset_s, device)` in time order for every send in `[0, duration)`.

    The fleet's total rate is `rate` requests/s on average: each of the n devices
    sends every `n / rate` seconds (times a factor uniform in `[1 - jitter, 1 + jitter]`).
    """
    if rate <= 0 or duration <= 0 or not devices:
        return
    interval = len(devices) / rate
    heap: list[tuple[float, int]] = [(rng.uniform(0.0, interval), i) for i in range(len(devices))]
    heapq.heapify(heap)
    while heap:
        at, i = heapq.heappop(heap)
        if at >= duration:
            continue  # this device is done; the others may still have sends left
        yield at, devices[i]
        heapq.heappush(heap, (at + interval * (1.0 + rng.uniform(-jitter, jitter)), i))


@dataclass
class DispatchStats:
    scheduled: int = 0
    max_lag_s: float = 0.0  # how late the latest send went out versus its plan
    stopped_early: bool = False


def dispatch(
    schedule: Iterator[tuple[float, T]],
    send: Callable[[T], None],
    *,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DispatchStats:
    """Call `send(device)` at each planned offset from now, until the plan ends or `stop` is set."""
    stats = DispatchStats()
    start = clock()
    for offset, device in schedule:
        while True:
            if stop.is_set():
                stats.stopped_early = True
                return stats
            wait = start + offset - clock()
            if wait <= 0:
                break
            sleep(min(wait, 0.1))  # wake up regularly to notice `stop`
        stats.max_lag_s = max(stats.max_lag_s, clock() - (start + offset))
        send(device)
        stats.scheduled += 1
    return stats
