"""Rate control, by counting what the schedule produces (no wall-clock assertions)."""
from __future__ import annotations

import random
import threading
from collections import Counter

import pytest

from fleet.scheduler import dispatch, plan


@pytest.mark.parametrize("devices,rate,duration,jitter", [(50, 50.0, 30.0, 0.2), (10, 200.0, 20.0, 0.5), (7, 3.5, 100.0, 0.0)])
def test_total_rate_matches_request(devices: int, rate: float, duration: float, jitter: float) -> None:
    sends = list(plan(list(range(devices)), rate=rate, duration=duration, jitter=jitter, rng=random.Random(1)))
    expected = rate * duration
    assert abs(len(sends) - expected) <= max(0.03 * expected, devices)
    offsets = [t for t, _ in sends]
    assert offsets == sorted(offsets) and 0 <= offsets[0] and offsets[-1] < duration


def test_load_is_spread_evenly_over_devices() -> None:
    sends = list(plan(list(range(20)), rate=100.0, duration=60.0, jitter=0.2, rng=random.Random(2)))
    per_device = Counter(d for _, d in sends)
    assert set(per_device) == set(range(20))
    assert max(per_device.values()) - min(per_device.values()) <= 0.1 * (6000 / 20)


def test_rate_is_steady_within_the_run_not_front_loaded() -> None:
    sends = list(plan(list(range(50)), rate=50.0, duration=30.0, jitter=0.2, rng=random.Random(3)))
    per_second = Counter(int(t) for t, _ in sends)
    assert all(35 <= per_second[s] <= 65 for s in range(1, 30)), per_second


def test_zero_jitter_is_exactly_periodic_per_device() -> None:
    sends = list(plan(["a", "b"], rate=4.0, duration=5.0, jitter=0.0, rng=random.Random(4)))
    a = [t for t, d in sends if d == "a"]
    gaps = {round(y - x, 9) for x, y in zip(a, a[1:], strict=False)}
    assert gaps == {0.5}


def test_jitter_varies_intervals_within_bounds() -> None:
    sends = list(plan(["a"], rate=1.0, duration=500.0, jitter=0.3, rng=random.Random(5)))
    gaps = [y - x for (x, _), (y, _) in zip(sends, sends[1:], strict=False)]
    assert all(0.7 - 1e-9 <= g <= 1.3 + 1e-9 for g in gaps)
    assert max(gaps) - min(gaps) > 0.4


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_dispatch_sends_everything_in_order_on_a_fake_clock() -> None:
    clock = FakeClock()
    schedule = [(0.0, "a"), (0.25, "b"), (1.0, "c"), (2.5, "d")]
    sent: list[tuple[float, str]] = []
    stats = dispatch(iter(schedule), lambda d: sent.append((clock.now - 100.0, d)), stop=threading.Event(),
                     clock=clock, sleep=clock.sleep)
    assert [d for _, d in sent] == ["a", "b", "c", "d"]
    assert all(at >= planned for (at, _), (planned, _) in zip(sent, schedule, strict=False))
    assert stats.scheduled == 4 and not stats.stopped_early and stats.max_lag_s < 0.11


def test_dispatch_reports_lag_when_sending_blocks() -> None:
    clock = FakeClock()

    def slow_send(_: str) -> None:
        clock.now += 2.0  # a full queue blocks the scheduler

    stats = dispatch(iter([(0.0, "a"), (0.5, "b"), (1.0, "c")]), slow_send, stop=threading.Event(),
                     clock=clock, sleep=clock.sleep)
    assert stats.scheduled == 3
    assert stats.max_lag_s == pytest.approx(3.0)  # "c" was due at 1.0, went out at 4.0


def test_dispatch_stops_when_asked() -> None:
    clock = FakeClock()
    stop = threading.Event()
    sent: list[str] = []

    def send(d: str) -> None:
        sent.append(d)
        if len(sent) == 2:
            stop.set()

    stats = dispatch(iter([(float(i), str(i)) for i in range(10)]), send, stop=stop, clock=clock, sleep=clock.sleep)
    assert sent == ["0", "1"] and stats.stopped_early and stats.scheduled == 2
