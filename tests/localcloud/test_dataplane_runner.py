"""LambdaRunner: isolation between functions, warm reuse, timeout, concurrency cap."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dataplane_support import RecordingSink as _Sink
from localcloud.model import FunctionSpec
from localcloud.runner import LambdaRunner


class RecordingSink(_Sink):
    def total(self, name: str, function: str) -> float:
        return sum(v for ns, n, d, v in self.points if n == name and d.get("FunctionName") == function)


HANDLER = '''
import os, time, json
import shared
CALLS = []
def handler(event, context):
    CALLS.append(1)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("boom " + event["fail"])
    if event.get("emf"):
        print(json.dumps({"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "IotIngest",
              "Dimensions": [["service"]], "Metrics": [{"Name": "ReadingsStored", "Unit": "Count"}]}]},
              "service": "proc", "ReadingsStored": 7}))
    print("hello from", os.environ["AWS_LAMBDA_FUNCTION_NAME"])
    return {"who": shared.WHO, "env": os.environ.get("ROLE"), "calls": len(CALLS), "pid": os.getpid(),
            "endpoint": os.environ["AWS_ENDPOINT_URL"], "fn": context.function_name,
            "remaining": context.get_remaining_time_in_millis(), "rid": context.aws_request_id}
'''


def make_code(tmp: Path, name: str, who: str) -> Path:
    code = tmp / name
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    (code / "shared.py").write_text(f"WHO = {who!r}\n")
    return code


def spec(name: str, code: Path, *, timeout: float = 3, reserved: int | None = None) -> FunctionSpec:
    return FunctionSpec(name=name, arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
                        handler="app.handler", code_dir=code, environment={"ROLE": name},
                        timeout_s=timeout, memory_mb=256, reserved_concurrency=reserved)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def runner(tmp_path: Path, sink: RecordingSink):
    functions = {
        "fa": spec("fa", make_code(tmp_path, "a", "A")),
        # 2 s: long enough for an ordinary pipe round trip on a loaded CI machine, still far
        # below the 120 s sleep the timeout test uses.
        "fb": spec("fb", make_code(tmp_path, "b", "B"), timeout=2),
        "fc": spec("fc", make_code(tmp_path, "c", "C"), timeout=30, reserved=1),
    }
    r = LambdaRunner(functions, "http://127.0.0.1:1", "us-east-1", sink=sink, log_dir=tmp_path / "logs")
    r.start()
    yield r
    r.stop()


def test_functions_are_isolated_and_warm(runner: LambdaRunner) -> None:
    a1 = runner.invoke("fa", {}).payload
    b1 = runner.invoke("fb", {}).payload
    a2 = runner.invoke("fa", {}).payload
    assert (a1["who"], a1["env"], b1["who"], b1["env"]) == ("A", "fa", "B", "fb")
    assert a1["pid"] != b1["pid"]
    assert a2["pid"] == a1["pid"] and a2["calls"] == 2  # warm container keeps module state
    assert a1["endpoint"] == "http://127.0.0.1:1" and a1["fn"] == "fa"
    assert 0 < a1["remaining"] <= 3000
    assert a1["rid"] != a2["rid"]


def test_handler_exception_is_an_error_result_and_counted(runner: LambdaRunner, sink: RecordingSink) -> None:
    result = runner.invoke("fa", {"fail": "x"})
    assert not result.ok and result.error_type == "ValueError" and result.error_message == "boom x"
    assert runner.invoke("fa", {}).ok  # the environment survives a handler error
    assert sink.total("Errors", "fa") == 1 and sink.total("Invocations", "fa") == 2


def test_timeout_kills_worker_and_reports_task_timed_out(runner: LambdaRunner, sink: RecordingSink) -> None:
    before = runner.invoke("fb", {}).payload["pid"]
    started = time.monotonic()
    result = runner.invoke("fb", {"sleep": 120})  # timeout 2 s: only a kill returns well before 120 s
    assert time.monotonic() - started < 60  # generous: a loaded CI machine must not make this flaky
    assert result.error_type == "Sandbox.Timedout" and "Task timed out" in (result.error_message or "")
    after = runner.invoke("fb", {}).payload
    assert after["pid"] != before and after["calls"] == 1  # a fresh environment replaced it
    assert sink.total("Errors", "fb") == 1


def test_reserved_concurrency_throttles_excess(runner: LambdaRunner, sink: RecordingSink) -> None:
    results = []
    first = threading.Thread(target=lambda: results.append(runner.invoke("fc", {"sleep": 3})))
    first.start()
    # Wait until the first invocation holds the one reserved slot (no fixed sleep: a loaded
    # machine may take long to get there); it then keeps it for its 3 s sleep.
    pool = runner._pools["fc"]
    deadline = time.monotonic() + 30
    while pool.concurrent < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.concurrent == 1
    second = runner.invoke("fc", {})
    first.join()
    assert second.throttled and second.error_type == "TooManyRequestsException"
    assert results[0].ok
    assert sink.total("Throttles", "fc") == 1 and sink.total("Invocations", "fc") == 1


def test_logs_go_to_function_log_file_and_emf_becomes_metrics(runner: LambdaRunner, sink: RecordingSink,
                                                              tmp_path: Path) -> None:
    runner.invoke("fa", {"emf": True})
    log = tmp_path / "logs" / "lambda" / "fa.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "REPORT RequestId" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.02)
    text = log.read_text()
    assert "hello from fa" in text and "START RequestId" in text
    assert any(n == "ReadingsStored" and d == {"service": "proc"} and v == 7 for _, n, d, v in sink.points)


def test_unknown_function_and_bad_handler(tmp_path: Path) -> None:
    code = tmp_path / "x"
    code.mkdir()
    r = LambdaRunner({"bad": FunctionSpec("bad", "arn", "missing.handler", code, {}, 2, 128, None)},
                     "http://127.0.0.1:1", "us-east-1", log_dir=tmp_path / "logs")
    r.start()
    try:
        result = r.invoke("bad", {})
        assert result.error_type == "Runtime.ImportModuleError"
        with pytest.raises(KeyError):
            r.invoke("nope", {})
    finally:
        r.stop()


def test_unreserved_excess_queues_for_a_bounded_number_of_workers(tmp_path: Path, sink: RecordingSink) -> None:
    functions = {"fq": spec("fq", make_code(tmp_path, "q", "Q")), "fr": spec("fr", make_code(tmp_path, "r", "R"),
                                                                            reserved=50)}
    r = LambdaRunner(functions, "http://127.0.0.1:1", "us-east-1", sink=sink, log_dir=tmp_path / "logs",
                     max_workers=2)
    r.start()
    try:
        results: list = []
        threads = [threading.Thread(target=lambda f=f: results.append(r.invoke(f, {"sleep": 0.3})))
                   for f in ["fq"] * 5 + ["fr"] * 5]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 10 and all(res.ok for res in results)  # queued, never throttled
        assert len({res.payload["pid"] for res in results if res.payload["who"] == "Q"}) <= 2
        assert len(r.worker_pids("fq")) <= 2 and len(r.worker_pids("fr")) <= 2
        assert sink.total("Throttles", "fq") == 0 and sink.total("Throttles", "fr") == 0
    finally:
        r.stop()


def slow_init_runner(tmp_path: Path, name: str, init_s: int, timeout_s: float) -> LambdaRunner:
    """A started runner (no prewarm) with one function whose init sleeps ``init_s`` seconds."""
    code = tmp_path / name
    code.mkdir()
    (code / "app.py").write_text(f"import time\ntime.sleep({init_s})\ndef handler(event, context):\n    return 'ok'\n")
    r = LambdaRunner({name: FunctionSpec(name, "arn", "app.handler", code, {}, timeout_s, 128, None)},
                     "http://127.0.0.1:1", "us-east-1", log_dir=tmp_path / "logs", prewarm=False)
    r.start()
    return r


def test_slow_init_does_not_count_against_a_short_timeout(tmp_path: Path) -> None:
    # The init phase (3 s) is longer than the function's timeout (2 s): the call only succeeds if
    # init is not counted against the timeout. 2 s leaves room for a slow round trip under load.
    r = slow_init_runner(tmp_path, "slow", init_s=3, timeout_s=2)
    try:
        result = r.invoke("slow", {})
        assert result.ok and result.payload == "ok"
    finally:
        r.stop()


def test_stop_ends_a_worker_that_is_still_in_its_init_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import localcloud.runner

    # Without stop() ending it, the worker would live out its whole 60 s init (the init timeout is
    # raised past it here), far beyond the deadline below.
    monkeypatch.setattr(localcloud.runner, "INIT_TIMEOUT_S", 120.0)
    r = slow_init_runner(tmp_path, "glacial", init_s=60, timeout_s=2)
    pool = r._pools["glacial"]
    caller = threading.Thread(target=lambda: r.invoke("glacial", {}), daemon=True)
    caller.start()  # starts a worker in the background, which sits in its 60 s init
    deadline = time.monotonic() + 30
    while not pool.starting and time.monotonic() < deadline:
        time.sleep(0.05)
    (worker,) = list(pool.starting)
    pid = worker.proc.pid
    r.stop()
    deadline = time.monotonic() + 30  # generous: stop() must not leave it running out its init
    while worker.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.proc.poll() is not None, f"worker {pid} still running after stop()"
    caller.join(timeout=30)
    assert not caller.is_alive()
