"""Service-side metrics the emulator does not publish, observed from inside the
Lambda workers (every pipeline call to Kinesis and DynamoDB comes from there).

Installed by ``_worker.py`` on boto3's default session before the handler is
imported, so unchanged handler code is observed. botocore emits
``response-received`` once per HTTP attempt (retries included), which is where
AWS would count a throttled or failed request. Each observation is written to
stdout as one line starting with ``MARKER``; the runner's log pump turns those
lines into metrics and keeps them out of the function's log.

Published (names and dimensions as in aws-facts.md section 1):
- AWS/Kinesis (StreamName): PutRecords.TotalRecords/SuccessfulRecords/
  FailedRecords/ThrottledRecords, PutRecords.Success, PutRecord.Success,
  WriteProvisionedThroughputExceeded (records rejected for throughput),
  IncomingRecords/IncomingBytes (records stored, at arrival; published only here).
- AWS/DynamoDB: ThrottledRequests and SystemErrors (TableName+Operation),
  WriteThrottleEvents/ReadThrottleEvents (TableName; a partly throttled
  BatchWriteItem counts its UnprocessedItems here only), UserErrors (no
  dimension), SuccessfulRequestLatency (TableName+Operation),
  ConditionalCheckFailedRequests (TableName).
Gap: calls made outside the workers (tests, the admin CLI) are not observed.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

MARKER = "\x1eLOCALCLOUD_METRIC "

_THROTTLE_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                   "ThrottlingError"}
_READ_OPS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


def _emit(namespace: str, name: str, dims: dict[str, str], value: float, unit: str = "Count") -> None:
    line = MARKER + json.dumps({"ns": namespace, "n": name, "d": dims, "v": value, "u": unit}) + "\n"
    sys.stdout.flush()  # never split a handler's half-written log line
    os.write(1, line.encode())


def _error_code(kwargs: dict[str, Any]) -> tuple[str | None, int]:
    response = kwargs.get("response_dict") or {}
    parsed = kwargs.get("parsed_response") or {}
    status = int(response.get("status_code") or 0)
    code = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
    if kwargs.get("exception") is not None and not status:
        return "ConnectionError", 0
    return code, status


def _stream_name(params: dict[str, Any]) -> str:
    if params.get("StreamName"):
        return str(params["StreamName"])
    arn = str(params.get("StreamARN", ""))
    return arn.rsplit("/", 1)[-1] if arn else ""


def _before_call(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["localcloud_params"] = params
    context["localcloud_started"] = time.perf_counter()


def _kinesis(event_name: str, **kwargs: Any) -> None:
    operation = event_name.rsplit(".", 1)[-1]
    context = kwargs.get("context") or {}
    params = context.get("localcloud_params") or {}
    dims = {"StreamName": _stream_name(params)}
    code, status = _error_code(kwargs)
    parsed = kwargs.get("parsed_response") or {}
    if operation == "PutRecords":
        total = len(params.get("Records") or [])
        if code is None and 200 <= status < 300:
            results = parsed.get("Records") or []
            throttled = sum(1 for r in results if r.get("ErrorCode") == "ProvisionedThroughputExceededException")
            failed = sum(1 for r in results if r.get("ErrorCode") and
                         r.get("ErrorCode") != "ProvisionedThroughputExceededException")
            ok = total - throttled - failed
            _emit("AWS/Kinesis", "PutRecords.Success", dims, 1.0)
            stored = [entry for entry, result in zip(params.get("Records") or [], results, strict=False)
                      if not result.get("ErrorCode")]
            _incoming(dims, stored)
        else:
            throttled = total if code == "ProvisionedThroughputExceededException" else 0
            failed, ok = total - throttled, 0
            _emit("AWS/Kinesis", "PutRecords.Success", dims, 0.0)
        _emit("AWS/Kinesis", "PutRecords.TotalRecords", dims, float(total))
        _emit("AWS/Kinesis", "PutRecords.SuccessfulRecords", dims, float(ok))
        _emit("AWS/Kinesis", "PutRecords.FailedRecords", dims, float(failed))
        _emit("AWS/Kinesis", "PutRecords.ThrottledRecords", dims, float(throttled))
        if throttled:
            _emit("AWS/Kinesis", "WriteProvisionedThroughputExceeded", dims, float(throttled))
    elif operation == "PutRecord":
        success = code is None and 200 <= status < 300
        _emit("AWS/Kinesis", "PutRecord.Success", dims, 1.0 if success else 0.0)
        if success:
            _incoming(dims, [params])
        if code == "ProvisionedThroughputExceededException":
            _emit("AWS/Kinesis", "WriteProvisionedThroughputExceeded", dims, 1.0)


def _incoming(dims: dict[str, str], entries: list[dict[str, Any]]) -> None:
    """IncomingRecords/IncomingBytes: records successfully put, counted once, when they arrive
    (a stream is counted whether or not anything reads it). Bytes are data plus partition key,
    the size Kinesis counts against a record's limit."""
    if not entries:
        return
    size = 0
    for entry in entries:
        data = entry.get("Data", b"")
        size += len(data if isinstance(data, (bytes, bytearray)) else str(data).encode())
        size += len(str(entry.get("PartitionKey", "")).encode())
    _emit("AWS/Kinesis", "IncomingRecords", dims, float(len(entries)))
    _emit("AWS/Kinesis", "IncomingBytes", dims, float(size), "Bytes")


def _tables(params: dict[str, Any]) -> list[tuple[str, int]]:
    """(table, item count) the call touches."""
    if params.get("TableName"):
        return [(str(params["TableName"]), 1)]
    items = params.get("RequestItems") or {}
    return [(str(table), len(requests) if isinstance(requests, list) else 1) for table, requests in items.items()]


def _dynamodb(event_name: str, **kwargs: Any) -> None:
    operation = event_name.rsplit(".", 1)[-1]
    context = kwargs.get("context") or {}
    params = context.get("localcloud_params") or {}
    code, status = _error_code(kwargs)
    parsed = kwargs.get("parsed_response") or {}
    throttle_metric = "ReadThrottleEvents" if operation in _READ_OPS else "WriteThrottleEvents"
    for table, count in _tables(params):
        op_dims = {"TableName": table, "Operation": operation}
        if code is None and 200 <= status < 300:
            started = context.get("localcloud_started")
            if started is not None:
                _emit("AWS/DynamoDB", "SuccessfulRequestLatency", op_dims,
                      (time.perf_counter() - started) * 1000, "Milliseconds")
            unprocessed = (parsed.get("UnprocessedItems") or parsed.get("UnprocessedKeys") or {}).get(table)
            if unprocessed:
                n = len(unprocessed) if isinstance(unprocessed, list) else len(unprocessed.get("Keys", []))
                _emit("AWS/DynamoDB", throttle_metric, {"TableName": table}, float(n))
        elif code in _THROTTLE_CODES:
            _emit("AWS/DynamoDB", "ThrottledRequests", op_dims, 1.0)
            _emit("AWS/DynamoDB", throttle_metric, {"TableName": table}, float(count))
        elif status >= 500:
            _emit("AWS/DynamoDB", "SystemErrors", op_dims, 1.0)
        elif 400 <= status < 500 and code != "ConditionalCheckFailedException":
            _emit("AWS/DynamoDB", "UserErrors", {}, 1.0)
        elif code == "ConditionalCheckFailedException":
            # TableName only: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
            _emit("AWS/DynamoDB", "ConditionalCheckFailedRequests", {"TableName": table}, 1.0)


def install() -> None:
    """Register the observers on boto3's default session (before handler import)."""
    import boto3

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    events = boto3.DEFAULT_SESSION.events
    events.register("before-parameter-build.kinesis", _before_call)
    events.register("before-parameter-build.dynamodb", _before_call)
    events.register("response-received.kinesis", _kinesis)
    events.register("response-received.dynamodb", _dynamodb)
