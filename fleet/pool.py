"""A bounded pool of sender threads, each with its own keep-alive connection.

The queue between the scheduler and the senders is bounded, so a slow API
cannot make the fleet buffer unbounded work in memory: once the queue is full
the scheduler waits, and the lag it accumulates is reported.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

from .client import ApiClient, Response
from .devices import OutgoingRequest

_STOP = object()


class SenderPool:
    def __init__(
        self,
        make_client: Callable[[], ApiClient],
        workers: int,
        on_result: Callable[[OutgoingRequest, Response], None],
        *,
        queue_size: int | None = None,
    ) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size or workers * 2)
        self._make_client = make_client
        self._on_result = on_result
        self._threads = [threading.Thread(target=self._work, name=f"fleet-sender-{i}", daemon=True) for i in range(workers)]
        self.errors: list[BaseException] = []

    def start(self) -> "SenderPool":
        for t in self._threads:
            t.start()
        return self

    def submit(self, request: OutgoingRequest) -> None:
        self._queue.put(request)

    def _work(self) -> None:
        client = self._make_client()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                assert isinstance(item, OutgoingRequest)
                try:
                    self._on_result(item, client.post_telemetry(item.headers, item.body))
                except BaseException as exc:  # noqa: BLE001 - a bug in our own code: keep it, don't lose the worker silently
                    self.errors.append(exc)
        finally:
            client.close()

    def drain_and_stop(self, timeout: float | None = None) -> bool:
        """Let queued requests finish, then stop the workers; False if some did not stop in time."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def abandon(self) -> None:
        """Drop queued (not yet sent) requests, e.g. on Ctrl-C, then stop the workers."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self.drain_and_stop(timeout=5.0)
