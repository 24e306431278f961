"""The emulator's own ceiling: how fast it takes the pipeline's writes when nothing else is in the way.

The pipeline's work, minus the HTTP API, the Lambdas and the poller, is:
PutRecords of the packed records, then BatchWriteItem of the readings. Doing
exactly that directly against the same emulator, in one thread (moto's Kinesis
is not safe under concurrent PutRecords), gives the rate the local pipeline
could at best reach. The records are packed by the ingest function's own
`pack()` and the items built by the processor's own `record_items()` (many
readings per item), so both sides write the same bytes. A fresh stream and table are used, so the
pipeline's stream (whose shard scan grows with its size in moto) and its
processor are not disturbed.
"""
from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from handlers.telemetry.process import record_items
from handlers.telemetry.records import decode, pack
from handlers.telemetry.validation import Reading

from fleet.devices import make_sensors

PUT_RECORDS_MAX = 500  # entries per PutRecords call
BATCH_WRITE_MAX = 25  # items per BatchWriteItem call


@dataclass(frozen=True)
class Ceiling:
    readings: int
    records: int
    items: int
    put_seconds: float
    write_seconds: float

    @property
    def readings_per_s(self) -> float:
        return self.readings / (self.put_seconds + self.write_seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "readings": self.readings,
            "records": self.records,
            "items": self.items,
            "putRecordsSeconds": round(self.put_seconds, 3),
            "batchWriteSeconds": round(self.write_seconds, 3),
            "putRecordsReadingsPerSecond": round(self.readings / self.put_seconds, 1),
            "batchWriteReadingsPerSecond": round(self.readings / self.write_seconds, 1),
            "readingsPerSecond": round(self.readings_per_s, 1),
        }


def _requests(readings: int, devices: int, per_request: int, metrics: int) -> list[tuple[str, list[Reading]]]:
    """The same shape the fleet sends: `per_request` consecutive readings per device request."""
    rng = random.Random(42)
    sensors = {f"bench-{i:03d}": make_sensors(metrics, rng) for i in range(devices)}
    seq = dict.fromkeys(sensors, 0)
    now = int(time.time() * 1000)
    out: list[tuple[str, list[Reading]]] = []
    ids = list(sensors)
    made = 0
    while made < readings:
        device = ids[len(out) % devices]
        batch = []
        for _ in range(min(per_request, readings - made)):
            batch.append(Reading(now, seq[device], {s.name: s.next(rng) for s in sensors[device]}))
            seq[device] += 1
            made += 1
        out.append((device, batch))
    return out


def measure(
    kinesis: Any, dynamodb: Any, *, readings: int, devices: int, per_request: int, metrics: int, shards: int
) -> Ceiling:
    stream, table = f"bench-{uuid.uuid4().hex[:8]}", f"bench-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "deviceId", "KeyType": "HASH"}, {"AttributeName": "readingKey", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "deviceId", "AttributeType": "S"},
                              {"AttributeName": "readingKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        reqs = _requests(readings, devices, per_request, metrics)
        now = int(time.time() * 1000)
        entries = [
            {"Data": data, "PartitionKey": device}
            for i, (device, batch) in enumerate(reqs)
            for data in pack(device, f"req-{i}", now, batch)
        ]
        items = [item for entry in entries for item in record_items(decode(entry["Data"]), 30)]

        started = time.perf_counter()
        for i in range(0, len(entries), PUT_RECORDS_MAX):
            chunk = entries[i : i + PUT_RECORDS_MAX]
            while chunk:
                resp = kinesis.put_records(StreamName=stream, Records=chunk)
                chunk = [e for e, r in zip(chunk, resp["Records"], strict=False) if "ErrorCode" in r]
        put_s = time.perf_counter() - started

        started = time.perf_counter()
        for i in range(0, len(items), BATCH_WRITE_MAX):
            pending: dict[str, Any] = {table: [{"PutRequest": {"Item": it}} for it in items[i : i + BATCH_WRITE_MAX]]}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        write_s = time.perf_counter() - started
        return Ceiling(readings=sum(len(batch) for _, batch in reqs), records=len(entries), items=len(items),
                       put_seconds=put_s, write_seconds=write_s)
    finally:
        kinesis.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
        dynamodb.delete_table(TableName=table)
