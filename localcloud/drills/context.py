"""What a drill can do to the running local cloud: faults, load, concurrency caps, the DLQ.

Everything a drill starts is registered here and undone by ``stop_fault()``, so a drill only
says what to break.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from typing import Any, Callable

from ..cloud import LocalCloud
from .load import Device, Load

KINESIS = "Kinesis_20131202"
DYNAMODB = "DynamoDB_20120810"
SQS = "AmazonSQS"
FOREVER = 10**9  # a fault rule's ``times`` for "until the drill stops it"


class DrillContext:
    def __init__(self, cloud: LocalCloud, device: Device) -> None:
        assert cloud.stack is not None and cloud.dataplane is not None
        self.cloud = cloud
        self.stack = cloud.stack
        self.outputs: dict[str, Any] = cloud.stack.outputs
        self.dataplane = cloud.dataplane
        self.runner = cloud.dataplane.runner
        self.monitor = cloud.dataplane.monitor
        self.port = int(cloud.api_url.rsplit(":", 1)[1])
        self.device = device
        self.functions: dict[str, str] = dict(self.outputs["functionNames"])
        self._loads: list[Load] = []
        self._reserved: dict[str, int | None] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._paused: list[Any] = []

    # ---- faults --------------------------------------------------------------------------
    def fault(self, target: str, **rule: Any) -> None:
        """A fault-plane rule (localcloud/emulator_faults.py) until the drill stops."""
        self.cloud.emulator.inject_fault({"target": target, "times": FOREVER, **rule})

    def load(self, request: Callable[[], tuple[str, bytes, dict[str, str]]], *, clients: int = 1,
             interval_s: float = 0.1) -> Load:
        load = Load(self.port, request, clients=clients, interval_s=interval_s).start()
        self._loads.append(load)
        return load

    def reserve(self, role: str, value: int) -> None:
        """PutFunctionConcurrency on the role's function (concurrency.py)."""
        function = self.functions[role]
        if function not in self._reserved:
            self._reserved[function] = self.runner.concurrency.reserved(function)
        self.runner.concurrency.set_reserved(function, value)

    def crash_workers(self, role: str, every_s: float = 0.25) -> None:
        """The function's execution environments die mid-invocation (as an out-of-memory kill
        does): every ``every_s`` each of its worker processes is killed."""
        function = self.functions[role]

        def loop() -> None:
            while not self._stop.wait(every_s):
                for pid in self.runner.worker_pids(function):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

        thread = threading.Thread(target=loop, daemon=True, name=f"drill-crash-{role}")
        thread.start()
        self._threads.append(thread)

    def disable_mapping(self) -> None:
        """UpdateEventSourceMapping Enabled=false on the processor's mappings."""
        for poller in self.dataplane.pollers:
            if poller.mapping.function == self.functions["processor"]:
                poller.set_enabled(False)
                self._paused.append(poller)

    def produce(self, records_per_s: int) -> None:
        """A producer writing valid records straight to the stream, ``records_per_s`` a second
        (500 per PutRecords call), until the drill stops: faster than a slowed consumer drains."""
        def loop() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                self.put_backlog(records_per_s)
                self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

        thread = threading.Thread(target=loop, daemon=True, name="drill-producer")
        thread.start()
        self._threads.append(thread)

    def put_backlog(self, records: int) -> None:
        """A burst of valid telemetry records written straight to the stream (500 per call)."""
        from handlers.telemetry.records import pack
        from handlers.telemetry.validation import Reading

        kinesis = self.cloud.emulator.client("kinesis")
        now = int(time.time() * 1000)
        entries = []
        for i in range(records):
            reading = Reading(ts=now - i, seq=i, metrics={"drill": 1.0})
            data = pack(self.device.device_id, str(uuid.uuid4()), now, [reading])[0]
            entries.append({"Data": data, "PartitionKey": self.device.device_id})
        for start in range(0, len(entries), 500):
            kinesis.put_records(StreamName=self.outputs["streamName"], Records=entries[start:start + 500])

    def dlq_messages(self) -> int:
        sqs = self.cloud.emulator.client("sqs")
        attrs = sqs.get_queue_attributes(QueueUrl=self.outputs["dlqUrl"],
                                         AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0))

    def purge_dlq(self) -> None:
        """What the operator does once the failed batches are replayed: empty the DLQ."""
        sqs = self.cloud.emulator.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.outputs["dlqUrl"], MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return
            for message in messages:
                json.loads(message["Body"])  # an invocation record, as Lambda sends it
                sqs.delete_message(QueueUrl=self.outputs["dlqUrl"], ReceiptHandle=message["ReceiptHandle"])

    def stop_fault(self) -> None:
        """Undo everything the drill started: loads, fault rules, reservations, crash loops."""
        self._stop.set()
        for load in self._loads:  # no new requests from here on
            load.stop(wait=False)
        self.cloud.emulator.clear_faults()
        # Requests already in flight (held by a slow call, say) still produce breaching data when
        # they finish: the fault has stopped only once they have.
        for load in self._loads:
            load.stop(wait=True)
        self._loads = []
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        for function, value in self._reserved.items():
            self.runner.concurrency.set_reserved(function, value)
        self._reserved = {}
        for poller in self._paused:
            poller.set_enabled(True)
        self._paused = []
        self._stop = threading.Event()


    def close(self) -> None:
        """Undo whatever a drill that raised left behind (before the cloud stops)."""
        self.stop_fault()
