"""How AWS turns one request into billable units: pure functions, no I/O, no prices.

The cost meter (:mod:`localcloud.meter`, :mod:`localcloud.meter_emulator`) counts
what the local cloud saw with these rules, and the planner uses the same rules
for its estimates, so the two can never disagree about a rounding.

Sources (read 2026-12-01):
- DynamoDB item size: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
  (attribute names + values; numbers ~1 byte per two significant digits + 1; binary by raw bytes;
  null/bool 1 byte; List/Map 3 bytes + 1 byte per element).
- DynamoDB units: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
  (write: 1 KB per unit rounded up per item, PutItem/UpdateItem/DeleteItem on the larger of the item
  before and after; read: 4 KB per unit, eventually consistent half; BatchGetItem rounds each item;
  Query rounds the total size returned).
- Kinesis: https://aws.amazon.com/kinesis/data-streams/pricing/ (provisioned: a PUT payload unit per
  25 KB chunk of a record; on-demand: each record rounded up to 1 KB = 1,024 bytes).
- HTTP API: https://aws.amazon.com/api-gateway/pricing/ (metered in 512 KB increments: 513 KB = 2 requests).
- Lambda: https://aws.amazon.com/lambda/pricing/ (duration rounded up to 1 ms);
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html (1,769 MB = one vCPU).
"""
from __future__ import annotations

import base64
import math
from decimal import Decimal, InvalidOperation
from collections.abc import Mapping
from typing import Any

KB = 1024
WRITE_UNIT_BYTES = 1 * KB
READ_UNIT_BYTES = 4 * KB
KINESIS_PUT_UNIT_BYTES = 25 * KB
KINESIS_ON_DEMAND_ROUNDING_BYTES = 1 * KB
HTTP_API_METERING_BYTES = 512 * KB
SQS_CHUNK_BYTES = 64 * KB
DYNAMODB_STORAGE_OVERHEAD_BYTES = 100  # per item, "for indexing" (CapacityUnitCalculations.html)
LAMBDA_MB_PER_VCPU = 1769


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: 1 byte per two significant digits, plus 1.

    Leading and trailing zeroes are trimmed, sign and decimal point are not digits.
    AWS calls this "approximately"; it is the rule AWS documents, applied exactly.
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        return 1 + math.ceil(len(text) / 2)
    digits = value.normalize().as_tuple().digits if value != 0 else (0,)
    significant = "".join(map(str, digits)).lstrip("0").rstrip("0") or "0"
    return 1 + math.ceil(len(significant) / 2)


def _binary_size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    return len(base64.b64decode(value))  # on the wire and in moto's JSON, B is base64


def value_size(attribute: dict[str, Any]) -> int:
    """Size of one typed value in DynamoDB JSON ({"S": ...}, {"N": ...}, {"M": {...}}, ...), name excluded."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return _utf8(value)
    if kind == "N":
        return number_size(str(value))
    if kind == "B":
        return _binary_size(value)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(v) for v in value)
    if kind == "NS":
        return sum(number_size(str(v)) for v in value)
    if kind == "BS":
        return sum(_binary_size(v) for v in value)
    if kind == "M":
        return 3 + sum(_utf8(name) + value_size(v) + 1 for name, v in value.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in value)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: dict[str, dict[str, Any]] | None) -> int:
    """Bytes of an item in DynamoDB JSON: the sum of attribute-name and value sizes. None (absent) is 0."""
    if not item:
        return 0
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def write_units(size_before: int, size_after: int) -> int:
    """WRUs of one standard (non-transactional) item write: the larger size, per started KB, at least 1."""
    return max(1, math.ceil(max(size_before, size_after) / WRITE_UNIT_BYTES))


def read_units(total_size: int, consistent: bool) -> float:
    """RRUs of one read of ``total_size`` bytes (one item, or a Query's whole result): per started 4 KB,
    at least one 4 KB block even when nothing was found; eventually consistent costs half."""
    blocks = max(1, math.ceil(total_size / READ_UNIT_BYTES))
    return float(blocks) if consistent else blocks / 2.0


def kinesis_put_units(record_bytes: int) -> int:
    """Provisioned streams: one PUT payload unit per started 25 KB of a record."""
    return max(1, math.ceil(record_bytes / KINESIS_PUT_UNIT_BYTES))


def kinesis_on_demand_bytes(record_bytes: int) -> int:
    """On-demand streams: the record's size rounded up to the next 1 KB (1,024 bytes)."""
    return max(1, math.ceil(record_bytes / KINESIS_ON_DEMAND_ROUNDING_BYTES)) * KINESIS_ON_DEMAND_ROUNDING_BYTES


def http_api_requests(request_bytes: int) -> int:
    """HTTP API billing requests for one call: one per started 512 KB of the request, at least 1."""
    return max(1, math.ceil(request_bytes / HTTP_API_METERING_BYTES))


def sqs_requests(payload_bytes: int) -> int:
    """SQS billing requests for one API action: one per started 64 KB chunk of its payload, at least 1."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def lambda_billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond (at least 1 ms)."""
    return max(1, math.ceil(duration_ms - 1e-9))


def modelled_duration_ms(cpu_ms: float, service_wait_ms: float, memory_mb: int) -> float:
    """What the invocation would last on AWS: its CPU time stretched by the function's CPU share,
    plus the time spent waiting for AWS services.

    Lambda gives a function CPU in proportion to memory, one vCPU at 1,769 MB; below that, CPU-bound
    work runs proportionally slower. The local CPU time is measured on one full core (assumed as fast
    as a Graviton core), and the wait is a stated latency per AWS call, because the local wait is the
    emulator's, not AWS's.
    """
    share = min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)
    return cpu_ms / share + service_wait_ms


#: Stated AWS service latency per call (ms) for the duration model: local calls wait for the
#: emulator, not for AWS. Assumptions, not measurements: typical in-region figures (DynamoDB
#: single-item operations "single-digit milliseconds"; a 25-item BatchWriteItem and a Kinesis
#: PutRecords take longer). Change them here; the meter and the planner both read this table.
SERVICE_LATENCY_MS: dict[str, float] = {
    "dynamodb.GetItem": 5.0,
    "dynamodb.PutItem": 5.0,
    "dynamodb.UpdateItem": 5.0,
    "dynamodb.DeleteItem": 5.0,
    "dynamodb.Query": 8.0,
    "dynamodb.BatchWriteItem": 10.0,
    "dynamodb.BatchGetItem": 8.0,
    "kinesis.PutRecords": 15.0,
    "kinesis.PutRecord": 10.0,
}
DEFAULT_SERVICE_LATENCY_MS = 10.0


def service_wait_ms(calls: Mapping[str, float]) -> float:
    """Modelled time an invocation waits for AWS: the stated latency of each call it made."""
    return sum(SERVICE_LATENCY_MS.get(op, DEFAULT_SERVICE_LATENCY_MS) * n for op, n in calls.items())
