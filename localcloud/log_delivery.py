"""Lambda's log delivery under the function's role, as a gate on the runner's log lines.

On AWS, Lambda sends a function's output to CloudWatch Logs with the function's
execution role (``logs:CreateLogStream`` once per execution environment,
``logs:PutLogEvents`` for every batch); if the role may not, the function still
runs but its log lines, and the Embedded Metric Format metrics CloudWatch Logs
would have extracted from them, are lost:
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
The runner writes output to ``.localcloud/logs/lambda/<function>.log`` instead;
this gate makes those writes depend on the same permissions: about once a
second (``recheck_s``) it delivers the current line to the emulator's CloudWatch
Logs with the role's credentials, through the IAM enforcer, and while that is
refused every line is dropped (neither written nor turned into metrics).
Lines between two checks share the last answer, so a policy change shows
within about a second. Any other error (emulator busy, log group missing in a
hand-built stack) lets lines through: only IAM decides what is lost.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from .iam_identity import Credentials, role_client

log = logging.getLogger(__name__)

_DENIED = {"AccessDeniedException", "AccessDenied"}


class LogDelivery:
    def __init__(self, endpoint_url: str, region: str, credentials: Credentials, function: str,
                 recheck_s: float = 1.0) -> None:
        self.group = f"/aws/lambda/{function}"
        self.stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.recheck_s = recheck_s
        self.delivered = 0
        self.dropped = 0
        # Made here, on the runner's starting thread: creating boto3 clients from the default
        # session is not thread-safe, and every pump thread calls admit().
        self._client: Any = role_client("logs", endpoint_url, region, credentials)
        self._stream_created = False
        self._allowed = True
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def admit(self, line: bytes) -> bool:
        """Whether ``line`` reaches the function's log (and its metrics); called by the log pump."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= self.recheck_s:
                self._checked_at = now
                allowed = self._check(line)
                if allowed != self._allowed:
                    (log.info if allowed else log.warning)(
                        "log delivery for %s %s", self.group,
                        "allowed again" if allowed else "refused by IAM: its log lines and EMF metrics are dropped")
                self._allowed = allowed
            if self._allowed:
                self.delivered += 1
            else:
                self.dropped += 1
            return self._allowed

    def _check(self, line: bytes) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if not self._stream_created:
                try:
                    self._client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                        raise
                self._stream_created = True
            message = line.decode("utf-8", "replace").rstrip("\n") or " "
            self._client.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                        logEvents=[{"timestamp": int(time.time() * 1000), "message": message}])
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _DENIED:
                return False
            log.debug("log delivery check for %s failed (%s); lines kept", self.group, code)
            return True
        except (BotoCoreError, Exception) as exc:  # noqa: BLE001 - the pump thread must never die here
            log.debug("log delivery check for %s failed (%r); lines kept", self.group, exc)
            return True
