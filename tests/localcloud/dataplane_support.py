"""Helpers shared by the data-plane tests."""
from __future__ import annotations

import threading


class RecordingSink:
    """A metrics sink (the monitor's put interface) that keeps every point for assertions."""

    def __init__(self) -> None:
        self.points: list[tuple[str, str, dict[str, str], float]] = []
        self._lock = threading.Lock()

    def put(self, namespace: str, name: str, dimensions: dict[str, str], value: float,
            unit: str = "None") -> None:
        with self._lock:
            self.points.append((namespace, name, dict(dimensions), value))
