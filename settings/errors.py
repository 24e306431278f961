"""The one exception type a bad stack configuration produces."""
from __future__ import annotations


class SettingsError(Exception):
    """Every configuration problem found, reported at once.

    Raised before any resource is declared, so a bad stack file never leaves a
    half-built deployment behind. ``problems`` keeps the individual messages so
    callers (and tests) can inspect them one by one.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid configuration value(s) for iot-ingest:\n{lines}")
