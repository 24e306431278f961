"""A write-only X-Ray for the emulator: accepts trace segments and telemetry, keeps a count.

Functions run with active tracing, so on AWS their role must allow
``xray:PutTraceSegments``/``xray:PutTelemetryRecords``. moto's X-Ray backend
imports ``aws_xray_sdk``, which the project does not install, so an allowed
upload would fail inside moto; this stand-in answers the two write calls the
way X-Ray does (``UnprocessedTraceSegments: []``) and passes everything else on.
IAM is checked before it (``localcloud.iam_enforcer``), so a role without the
X-Ray statement is still refused.
https://docs.aws.amazon.com/xray/latest/api/API_PutTraceSegments.html
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

_ANSWERS: dict[str, dict[str, Any]] = {"/TraceSegments": {"UnprocessedTraceSegments": []}, "/TelemetryRecords": {}}


class XRaySink:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self.wrapped: Any = getattr(app, "wrapped", app)
        self.segments = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._app, name)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (path in _ANSWERS and environ.get("REQUEST_METHOD") == "POST"
                and "/xray/aws4_request" in environ.get("HTTP_AUTHORIZATION", "")):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            if path == "/TraceSegments":
                try:
                    count = len(json.loads(body or b"{}").get("TraceSegmentDocuments") or [])
                except (ValueError, AttributeError):
                    count = 0
                with self._lock:
                    self.segments += count
            payload = json.dumps(_ANSWERS[path]).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        return self._app(environ, start_response)
