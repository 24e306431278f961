"""The cost meter's half inside the emulator process: counts what AWS would bill for each call
moto actually served, by AWS's rules (:mod:`localcloud.billing_units`).

Two hooks, both installed by :func:`localcloud.emulator.build_app`:

* :class:`MeterApp`, a WSGI middleware directly in front of moto (behind the fault injector,
  so a call the injector refused, which AWS would not have billed, is not counted). For
  DynamoDB it reads the request, looks up the stored size of every item the call touches
  before and after moto runs it, and applies the unit rules: a write costs
  ``ceil(max(before, after) / 1 KB)`` per item (BatchWriteItem per item; a conditional write
  that fails is still charged, on the item's size), GetItem/BatchGetItem ``ceil(size / 4 KB)``
  per item (on the whole item, as AWS charges whatever the projection), Query/Scan
  ``ceil(total returned / 4 KB)`` (of the items as returned: a projection or filter would make
  AWS's figure larger), halved unless ``ConsistentRead``. It
  also counts SQS actions (except GetQueueAttributes, which only the local monitor calls to
  emulate CloudWatch's free SQS metrics) and serves the counters on ``GET /_localcloud/meter``
  (``DELETE`` resets them).
* wrappers around moto's Kinesis ``Stream.put_record`` and backend ``get_records``: records
  stored, their size (data + partition key), PUT payload units (25 KB) and on-demand bytes
  (each record rounded up to 1 KB), and bytes read back.

Every count is attributed to a caller: ``pipeline`` when the request came from a Lambda
worker (botocore puts ``exec-env/AWS_Lambda_...`` in the User-Agent because the runner sets
``AWS_EXECUTION_ENV``), ``other`` for the fleet's registration and read-back, tests and the
local data plane's own calls. Only the pipeline's calls are priced as the pipeline's cost.

Known gaps: a size read before/after an item write is not atomic with the write (two
concurrent writes of one item can each see the other's size; the 1 KB rounding hides it
almost always); transactions and PartiQL are counted as calls in ``unmetered``, not priced
(the pipeline uses neither); no table here has a secondary index, so index writes are not
modelled.
"""
from __future__ import annotations

import io
import json
import re
import threading
from typing import Any, Callable, Iterable

from . import billing_units as units

USAGE_PATH = "/_localcloud/meter"
ACCOUNT_ID = "123456789012"
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
_WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
_READ_OPS = {"GetItem", "BatchGetItem", "Query", "Scan"}
_UNMETERED_OPS = {"TransactWriteItems", "TransactGetItems", "ExecuteStatement", "BatchExecuteStatement",
                  "ExecuteTransaction"}
_SQS_FREE = {"GetQueueAttributes"}  # only the local monitor calls it (CloudWatch's SQS metrics are free)
_context = threading.local()
_INSTALLED = False


class Counters:
    """Thread-safe nested counters: ``add(("dynamodb", "pipeline", "table", "writeUnits"), 3)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}

    def add(self, path: tuple[str, ...], value: float) -> None:
        with self._lock:
            node = self._data
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = node.get(path[-1], 0) + value

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._data))

    def reset(self) -> None:
        with self._lock:
            self._data = {}


COUNTERS = Counters()


def caller() -> str:
    return getattr(_context, "caller", None) or "other"


# ---- Kinesis: wrappers around moto's backend -----------------------------------------------------
def _b64_len(text: str) -> int:
    """Decoded length of a base64 string without decoding it."""
    return len(text) * 3 // 4 - text[-2:].count("=") if text else 0


def _stream(stream_arn: str | None, stream_name: str | None) -> str:
    return stream_name or (stream_arn or "").rsplit("/", 1)[-1] or "?"


def count_put(stream: str, record_bytes: int) -> None:
    base = ("kinesis", caller(), stream)
    COUNTERS.add(base + ("records",), 1)
    COUNTERS.add(base + ("bytes",), record_bytes)
    COUNTERS.add(base + ("putUnits",), units.kinesis_put_units(record_bytes))
    COUNTERS.add(base + ("onDemandBytes",), units.kinesis_on_demand_bytes(record_bytes))


def install() -> None:
    """Wrap moto's Kinesis models (idempotent).

    Records are counted in ``Stream.put_record``, which both PutRecord and PutRecords call once per
    stored record, below the backend lock that emulator_patches adds (so that lock, and tests that
    remove it, see moto's backend methods unchanged). Reads are counted in the backend's
    ``get_records``. moto also calls ``Stream.put_record`` when it reshards a stream
    (UpdateShardCount), which the pipeline never does.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.kinesis.models import KinesisBackend, Stream
    from moto.kinesis.utils import decompose_shard_iterator

    put_record, get_records = Stream.put_record, KinesisBackend.get_records

    def metered_put_record(self: Any, partition_key: str, explicit_hash_key: str, data: str) -> Any:
        result = put_record(self, partition_key, explicit_hash_key, data)
        count_put(self.stream_name, _b64_len(data) + len(partition_key.encode()))
        return result

    def metered_get_records(self: Any, stream_arn: str | None, shard_iterator: str, limit: int | None) -> Any:
        result = get_records(self, stream_arn, shard_iterator, limit)
        records = result[1]
        if records:
            stream = _stream(stream_arn, None if stream_arn else decompose_shard_iterator(shard_iterator)[0])
            base = ("kinesis", caller(), stream)
            COUNTERS.add(base + ("readRecords",), len(records))
            COUNTERS.add(base + ("readBytes",), sum(_b64_len(r.data) + len(r.partition_key.encode())
                                                     for r in records))
        return result

    Stream.put_record = metered_put_record  # type: ignore[method-assign]  # the meter wraps moto's own method
    KinesisBackend.get_records = metered_get_records  # type: ignore[method-assign]  # likewise
    _INSTALLED = True


# ---- DynamoDB and SQS: WSGI middleware in front of moto ---------------------------------------------
class _ItemPeek:
    """Reads stored item sizes straight from moto's backend (no request, no billing)."""

    def __init__(self, region: str) -> None:
        from moto.dynamodb.models import dynamodb_backends

        self._backend = dynamodb_backends[ACCOUNT_ID][region]

    def size(self, table_name: str, key: dict[str, Any]) -> int | None:
        """Stored size of the item with ``key`` (which may be a whole item); 0 if absent, None if
        the table or key is unusable (moto will answer the call with its own error)."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        try:
            table = self._backend.get_table(table_name.rsplit("/", 1)[-1])
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            item = table.get_item(hash_value, range_value)
        except Exception:  # noqa: BLE001 - unknown table, missing key: not billable, moto says why
            return None
        return units.item_size(item.to_json()["Attributes"]) if item is not None else 0


def _table(name: str) -> str:
    return name.rsplit("/", 1)[-1]  # a table ARN is accepted wherever a name is


class MeterApp:
    """WSGI middleware in front of moto; attribute access falls through to moto's dispatcher
    (the emulator's warm-up reads its app cache through the fault injector's ``wrapped``)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") == USAGE_PATH:
            return self._admin(environ, start_response)
        agent = environ.get("HTTP_USER_AGENT", "")
        _context.caller = "pipeline" if "exec-env/AWS_Lambda" in agent else "other"
        try:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            service, _, operation = target.partition(".")
            if service.startswith("DynamoDB_") and (operation in _WRITE_OPS or operation in _READ_OPS):
                return self._dynamodb(operation, environ, start_response)
            if service.startswith("DynamoDB_") and operation in _UNMETERED_OPS:
                COUNTERS.add(("unmetered", f"dynamodb.{operation}"), 1)
            elif service == "AmazonSQS" and operation not in _SQS_FREE:
                return self._sqs(operation, environ, start_response)
            return self._app(environ, start_response)
        finally:
            _context.caller = None

    # -- DynamoDB -------------------------------------------------------------------------------
    def _dynamodb(self, operation: str, environ: dict[str, Any],
                  start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = _read_body(environ)
        try:
            request = json.loads(body or b"{}")
            match = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
            peek = _ItemPeek(match.group(1) if match else "us-east-1")
        except Exception:  # noqa: BLE001 - malformed: moto answers it, nothing to bill
            return self._app(environ, start_response)
        writes = _write_targets(operation, request)
        before = [peek.size(table, key) for table, key in writes]
        status, headers, raw = _call(self._app, environ, start_response)
        who = caller()
        if status == 200:
            if writes:
                for (table, key), size_before in zip(writes, before, strict=False):
                    if size_before is None:
                        continue
                    size_after = peek.size(table, key) or 0
                    self._write(who, table, size_before, size_after)
            else:
                self._read(who, operation, request, raw, peek)
        elif status == 400 and b"ConditionalCheckFailed" in raw and len(writes) == 1:
            # A failed conditional write still consumes write units, on the existing item's size (at
            # least 1): https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
            table, _key = writes[0]
            if before[0] is not None:
                self._write(who, table, before[0], before[0])
                COUNTERS.add(("dynamodb", who, _table(table), "conditionalFailures"), 1)
        start_response(_status_line(status), headers)
        return [raw]

    @staticmethod
    def _write(who: str, table: str, size_before: int, size_after: int) -> None:
        base = ("dynamodb", who, _table(table))
        COUNTERS.add(base + ("writeUnits",), units.write_units(size_before, size_after))
        COUNTERS.add(base + ("writes",), 1)
        COUNTERS.add(base + ("writtenBytes",), size_after)
        COUNTERS.add(base + ("storedBytesDelta",), size_after - size_before)
        COUNTERS.add(base + ("storedItemsDelta",), (size_after > 0) - (size_before > 0))

    @staticmethod
    def _read(who: str, operation: str, request: dict[str, Any], raw: bytes, peek: _ItemPeek) -> None:
        if operation == "GetItem":
            size = peek.size(request["TableName"], request["Key"]) or 0
            reads = [(request["TableName"], units.read_units(size, bool(request.get("ConsistentRead"))))]
        elif operation == "BatchGetItem":
            reads = []
            for table, spec in (request.get("RequestItems") or {}).items():
                for key in spec.get("Keys", []):
                    size = peek.size(table, key) or 0
                    reads.append((table, units.read_units(size, bool(spec.get("ConsistentRead")))))
        else:  # Query / Scan: the total size of what was returned, rounded once
            answer = json.loads(raw or b"{}")
            total = sum(units.item_size(item) for item in answer.get("Items", []))
            reads = [(request.get("TableName", "?"), units.read_units(total, bool(request.get("ConsistentRead"))))]
        for table, read_units in reads:
            base = ("dynamodb", who, _table(table))
            COUNTERS.add(base + ("readUnits",), read_units)
            COUNTERS.add(base + ("reads",), 1)

    # -- SQS --------------------------------------------------------------------------------------
    def _sqs(self, operation: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = _read_body(environ)
        status, headers, raw = _call(self._app, environ, start_response)
        if status == 200:
            payload = len(body) if operation.startswith("SendMessage") else 0
            COUNTERS.add(("sqs", caller(), "requests"), units.sqs_requests(payload))
            COUNTERS.add(("sqs", caller(), "byAction", operation), 1)
        start_response(_status_line(status), headers)
        return [raw]

    # -- control ----------------------------------------------------------------------------------
    @staticmethod
    def _admin(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "DELETE":
            COUNTERS.reset()
        payload = json.dumps(COUNTERS.snapshot()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def _write_targets(operation: str, request: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, key-or-item) of every item a write call touches; [] for reads."""
    if operation == "PutItem":
        return [(request.get("TableName", ""), request.get("Item") or {})]
    if operation in ("UpdateItem", "DeleteItem"):
        return [(request.get("TableName", ""), request.get("Key") or {})]
    if operation == "BatchWriteItem":
        out = []
        for table, requests in (request.get("RequestItems") or {}).items():
            for entry in requests:
                if "PutRequest" in entry:
                    out.append((table, entry["PutRequest"].get("Item") or {}))
                elif "DeleteRequest" in entry:
                    out.append((table, entry["DeleteRequest"].get("Key") or {}))
        return out
    return []


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back so moto can read it again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any],
          start_response: Callable[..., Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, headers
        return lambda _chunk: None

    chunks = app(environ, capture)
    try:
        raw = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return int(str(captured.get("status", "500")).split()[0]), list(captured.get("headers", [])), raw


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Error"
