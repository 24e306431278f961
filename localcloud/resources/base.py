"""What every resource creator gets, and the helpers they share.

A creator turns one declared Pulumi resource into the real thing in the
emulator and returns ``(physical id, state)``; the state is what the program
reads back (``stream.arn``, ``function.invoke_arn``...), so it must carry the
emulator's real names and ARNs.  Inputs arrive in Pulumi's wire form:
camelCase keys, integers as floats, nested provider args sometimes as JSON text.
"""
from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ACCOUNT_ID = "123456789012"


class ProvisionError(Exception):
    """A declared resource could not be created; the message names it."""


@dataclass
class Request:
    """One ``new_resource`` call, in the form creators want."""

    type: str
    name: str  # logical name
    inputs: dict[str, Any]
    provider: str | None  # provider reference "urn::id", None for the default provider


@dataclass
class Context:
    """Shared, thread-safe state of one provisioning run."""

    region: str
    endpoint_url: str
    api_url: str  # where the data plane's gateway will listen (apiEndpoint of HTTP APIs)
    project_dir: Path
    state_dir: Path  # <project>/.localcloud
    client_factory: Callable[[str], Any]
    account_id: str = ACCOUNT_ID
    lock: threading.RLock = field(default_factory=threading.RLock)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider id -> inputs
    # Bookkeeping read back after the program finished (see provisioner.assemble).
    by_type: dict[str, list[tuple[Request, str, dict[str, Any]]]] = field(default_factory=dict)
    code_dirs: dict[str, Path] = field(default_factory=dict)  # function name -> code directory
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """One boto3 client per service; creation is not thread-safe, calls are."""
        with self.lock:
            if service not in self._clients:
                self._clients[service] = self.client_factory(service)
            return self._clients[service]

    def record(self, request: Request, physical_id: str, state: dict[str, Any]) -> None:
        with self.lock:
            self.by_type.setdefault(request.type, []).append((request, physical_id, state))

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account_id}:{resource}"

    # -- tags ------------------------------------------------------------
    def default_tags(self, request: Request) -> dict[str, str]:
        """The provider's ``defaultTags`` for this resource (explicit provider only)."""
        if not request.provider:
            return {}
        provider_id = request.provider.rsplit("::", 1)[-1]
        inputs = self.providers.get(provider_id, {})
        raw = as_object(inputs.get("defaultTags")) or {}
        return {str(k): str(v) for k, v in (as_object(raw.get("tags")) or {}).items()}

    def tags(self, request: Request, key: str = "tags") -> dict[str, str]:
        """Default tags merged with the resource's own (which win), as AWS's provider does."""
        own = {str(k): str(v) for k, v in (as_object(request.inputs.get(key)) or {}).items()}
        return {**self.default_tags(request), **own}


def as_object(value: Any) -> Any:
    """Provider inputs carry nested objects as JSON text; resource inputs as dicts."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.loads(value)
    return value


def as_int(value: Any, default: int | None = None) -> int | None:
    """Pulumi hands integers over as floats."""
    if value is None or value == "":
        return default
    return int(value)


def as_bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def physical_name(request: Request, key: str = "name", max_len: int | None = None, suffix: str = "") -> str:
    """The declared name, or Pulumi-style auto-naming: logical name + '-' + 7 random hex chars."""
    explicit = request.inputs.get(key)
    if explicit:
        return str(explicit)
    prefix = request.inputs.get("namePrefix")
    if prefix:
        name = f"{prefix}{secrets.token_hex(13)}"[: max_len or 64]
    else:
        name = f"{request.name}-{secrets.token_hex(4)[:7]}"
        if max_len is not None and len(name) > max_len:
            name = f"{request.name[: max_len - 8]}-{secrets.token_hex(4)[:7]}"
    return name + suffix


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in tags.items()]


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


Creator = Callable[[Context, Request], "tuple[str, dict[str, Any]]"]
