"""Device credentials for the run: registered fresh, or read from a keys file.

Registration goes through `admin.registry.DeviceRegistry`, the same code the
operators' CLI uses, so the fleet exercises the real provisioning path and never
learns how keys are hashed or stored.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from .config import ConfigError
from .devices import Credentials


def load_keys(path: Path) -> list[Credentials]:
    """Read `[{"deviceId": ..., "key": ...}, ...]`, rejecting anything else with the offending index."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--keys {path}: not readable JSON ({exc})") from exc
    if not isinstance(data, list) or not data:
        raise ConfigError(f"--keys {path}: expected a non-empty JSON list of {{deviceId, key}}")
    out: list[Credentials] = []
    seen: set[str] = set()
    for i, entry in enumerate(data):
        if not (isinstance(entry, dict) and isinstance(entry.get("deviceId"), str) and isinstance(entry.get("key"), str)
                and entry["deviceId"] and entry["key"]):
            raise ConfigError(f"--keys {path}: entry [{i}] must be an object with non-empty string deviceId and key")
        if entry["deviceId"] in seen:
            raise ConfigError(f"--keys {path}: entry [{i}] repeats deviceId {entry['deviceId']!r}")
        seen.add(entry["deviceId"])
        out.append(Credentials(entry["deviceId"], entry["key"]))
    return out


def save_keys(path: Path, credentials: list[Credentials]) -> None:
    """Write keys readable only by the owner: they are device secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump([{"deviceId": c.device_id, "key": c.key} for c in credentials], fh, indent=1)


def register(
    dynamodb_client: Any,
    table_name: str,
    count: int,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> list[Credentials]:
    """Register `count` new devices through the admin registry."""
    from admin.registry import DeviceRegistry  # the admin library is the only owner of the devices table

    registry = DeviceRegistry(dynamodb_client, table_name)
    out: list[Credentials] = []
    for i in range(count):
        device_id, key = registry.add()
        out.append(Credentials(device_id, key))
        if on_progress is not None:
            on_progress(i + 1)
    return out
