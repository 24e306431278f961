"""Lambda's concurrency accounting (localcloud/concurrency.py) and the runner throttling by it."""
from __future__ import annotations

from pathlib import Path

import pytest

from localcloud.concurrency import ConcurrencyError, ConcurrencyModel, mapping_cap
from localcloud.model import FunctionSpec
from localcloud.runner import LambdaRunner


def test_reserved_concurrency_caps_its_function_and_zero_stops_it() -> None:
    model = ConcurrencyModel({"a": 2, "b": None})
    assert [model.acquire("a") for _ in range(3)] == [True, True, False]
    model.release("a")
    assert model.acquire("a")
    model.set_reserved("a", 0)
    assert not model.acquire("a")
    model.set_reserved("a", None)  # DeleteFunctionConcurrency: back to the unreserved pool
    assert model.acquire("a")


def test_unreserved_functions_share_what_reservations_leave() -> None:
    model = ConcurrencyModel({"r": 100, "u1": None, "u2": None}, account_limit=103, min_unreserved=3)
    assert model.unreserved_pool() == 3
    assert [model.acquire(f) for f in ("u1", "u2", "u1", "u2")] == [True, True, True, False]
    assert model.acquire("r")  # the reservation is its own, whatever the unreserved load
    model.release("u1")
    assert model.acquire("u2")


def test_a_reservation_leaving_under_the_minimum_unreserved_is_refused() -> None:
    model = ConcurrencyModel({"a": None}, account_limit=1000)
    with pytest.raises(ConcurrencyError, match="below the minimum of 100"):
        model.set_reserved("a", 901)
    with pytest.raises(ConcurrencyError, match=">= 0"):
        model.set_reserved("a", -2)


def test_mapping_cap_is_shards_times_parallelization() -> None:
    assert mapping_cap(4, 2) == 8 and mapping_cap(1, 1) == 1 and mapping_cap(2, 50) == 20


def test_runner_throttles_a_function_whose_reservation_is_zero(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 'ok'\n")
    sink_points: list[tuple[str, float]] = []

    class Sink:
        def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float, unit: str = "None") -> None:
            sink_points.append((name, value))

    runner = LambdaRunner({"fn": FunctionSpec("fn", "arn:fn", "app.handler", code, {}, 5, 128, None)},
                          "http://127.0.0.1:1", "us-east-1", sink=Sink(), log_dir=tmp_path / "logs",
                          service_metrics=False)
    runner.start()
    try:
        assert runner.invoke("fn", {}).payload == "ok"
        runner.concurrency.set_reserved("fn", 0)
        result = runner.invoke("fn", {})
        assert result.throttled and result.error_type == "TooManyRequestsException"
        assert ("Throttles", 1.0) in sink_points
        runner.concurrency.set_reserved("fn", None)
        assert runner.invoke("fn", {}).payload == "ok"
        assert runner.concurrency.in_flight("fn") == 0
    finally:
        runner.stop()
