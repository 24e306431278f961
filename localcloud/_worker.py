"""One Lambda execution environment: a process that imports one handler once and
serves invocations for as long as the runner keeps it warm.

Run as a script (``python _worker.py <response-fd>``) with cwd = the function's
code directory and the function's environment, so the handler's module state
and environment can never leak into another function's workers. Requests
arrive as one JSON line each on stdin; responses leave as one JSON line each on
the response fd. stdout/stderr belong to the handler (its logs), exactly like
in Lambda, where everything printed goes to the function's log stream.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any, TextIO


class LambdaContext:
    """The subset of the Lambda context object handlers and Powertools read.

    https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
    """

    def __init__(self, request_id: str, deadline_ms: float) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("LOCALCLOUD_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _load_handler(spec: str) -> Any:
    module_name, _, func_name = spec.rpartition(".")
    if not module_name or not func_name:
        raise ValueError(f"handler {spec!r} is not of the form module.function")
    module = importlib.import_module(module_name)
    return getattr(module, func_name)


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-10:],
    }


def serve(requests: TextIO, responses: TextIO, usage: Any = None) -> None:
    """Loop until stdin closes: the runner closes it to retire the environment.

    ``usage``: the ``_invocation_usage`` module; each response then carries what the invocation
    used (CPU time, AWS calls) for the cost meter."""
    sys.path.insert(0, os.getcwd())
    handler: Any = None
    init_error: dict[str, Any] | None = None
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except BaseException as exc:  # noqa: BLE001 - an init error is reported per invoke, like Lambda
        init_error = _error(exc)
        init_error["errorType"] = "Runtime.ImportModuleError"
    responses.write(json.dumps({"ready": True, "initError": init_error}) + "\n")
    responses.flush()
    for line in requests:
        request = json.loads(line)
        request_id = request["requestId"]
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.perf_counter()
        invocation = usage.Invocation() if usage is not None else None
        if init_error is not None:
            encoded = json.dumps(init_error)
        else:
            try:
                result = handler(request["event"], LambdaContext(request_id, request["deadlineMs"]))
                reply: dict[str, Any] = {"ok": True, "result": result}
            except BaseException as exc:  # noqa: BLE001 - every handler failure becomes an error result
                reply = _error(exc)
                print(json.dumps({"errorMessage": reply["errorMessage"], "errorType": reply["errorType"],
                                  "requestId": request_id}), flush=True)
            if invocation is not None:
                reply["usage"] = invocation.finish()
            encoded = json.dumps(reply)
        sys.stdout.flush()
        sys.stderr.flush()
        duration = (time.perf_counter() - started) * 1000
        print(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\t"
              f"Duration: {duration:.2f} ms", flush=True)
        responses.write(encoded + "\n")
        responses.flush()


def main() -> None:
    response_fd = int(sys.argv[1])
    if os.environ.get("LOCALCLOUD_SERVICE_METRICS") == "1":
        import _service_metrics  # type: ignore[import-not-found]  # from this directory, before it leaves sys.path

        _service_metrics.install()
    import _invocation_usage  # type: ignore[import-not-found]  # from this directory too: what each invocation used, for the cost meter

    _invocation_usage.install()
    # The runner's module path must not shadow handler modules of the same name.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # stdout is a TextIOWrapper here
    with os.fdopen(response_fd, "w", encoding="utf-8") as responses:
        serve(sys.stdin, responses, _invocation_usage)


if __name__ == "__main__":
    main()
