"""The local gateway's front door: request framing and the limits that keep slow clients from exhausting it.

API Gateway refuses a request whose body length cannot be determined exactly before any route,
authorizer or function sees it; this module makes the same decision from the request headers:
- RFC 9112 §6.3 (https://www.rfc-editor.org/rfc/rfc9112#section-6.3): a Transfer-Encoding whose
  final coding is not ``chunked`` makes the length unknowable -> 400; ``Content-Length`` values that
  differ, or one that is not a valid number -> 400 ("unrecoverable error"); fewer body bytes than
  announced before the client closes -> incomplete message, never processed.
- RFC 9110 §8.6 (https://www.rfc-editor.org/rfc/rfc9110#section-8.6): ``Content-Length = 1*DIGIT``,
  so ``+84``, ``8_3``, ``-1``, `` `` or ``٣`` (Python's ``int()`` accepts all but the last two) are not
  lengths. Identical repeated values (``5, 5``) may be taken as one; they are.
Chunked request bodies are not emulated (411, as before).

Reads run against deadlines (``DeadlineReader``), not the socket's per-``recv`` timeout, so a client
trickling one byte at a time is cut off at the limit as surely as a silent one.
"""
from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

_DIGITS = re.compile(r"[0-9]+")  # not str.isdigit(): that accepts "²" and "٣"
# A body length with more digits is far beyond any payload quota; no need to build the int.
_MAX_LENGTH_DIGITS = 18


@dataclass(frozen=True)
class FrontDoorLimits:
    """How long a client may take, and how many may be connected at once.

    AWS publishes no header/body read timeouts or connection cap for HTTP APIs (its front door
    scales); these values are the local gateway's own, chosen to be generous for a device and
    finite for an attacker (docs/architecture.md, "Local gateway limits").
    """

    header_timeout_s: float = 10.0  # request line + headers, from connection (or first byte on keep-alive)
    body_timeout_s: float = 30.0  # the whole announced body, from the end of the headers
    idle_timeout_s: float = 60.0  # a keep-alive connection waiting for its next request
    write_timeout_s: float = 30.0  # sending a response to a client that does not read it
    max_connections: int = 1024  # more wait unaccepted (no thread) until one closes

    def __post_init__(self) -> None:
        for name in ("header_timeout_s", "body_timeout_s", "idle_timeout_s", "write_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FrontDoorLimits.{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_connections < 1:
            raise ValueError(f"FrontDoorLimits.max_connections must be >= 1, got {self.max_connections!r}")


class Refusal(Exception):
    """The request cannot be framed; answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.message = message
        self.reason = reason


def _list_items(values: list[str]) -> list[str]:
    return [item.strip(" \t") for value in values for item in value.split(",")]


def body_length(headers: Message, max_bytes: int) -> int:
    """The announced body length (0 without one), or raise Refusal."""
    codings = headers.get_all("Transfer-Encoding") or []
    if codings:
        items = [item.lower() for item in _list_items(codings)]
        if items and items[-1] == "chunked":
            raise Refusal(411, "Length Required", "chunked request bodies are not emulated")
        raise Refusal(400, "Bad Request", f"Transfer-Encoding {', '.join(items)!r} does not end in chunked")
    values = headers.get_all("Content-Length") or []
    if not values:
        return 0
    items = _list_items(values)
    bad = [item for item in items if not _DIGITS.fullmatch(item)]
    if bad:
        raise Refusal(400, "Bad Request", f"Content-Length {bad[0]!r} is not a decimal number")
    lengths = {item.lstrip("0") or "0" for item in items}
    if len(lengths) > 1:
        raise Refusal(400, "Bad Request", f"conflicting Content-Length values {sorted(lengths)}")
    (digits,) = lengths
    if len(digits) > _MAX_LENGTH_DIGITS or int(digits) > max_bytes:
        raise Refusal(413, "Request Entity Too Large", f"Content-Length {digits} is over {max_bytes}")
    return int(digits)


class DeadlineReader(io.RawIOBase):
    """A socket reader that fails with TimeoutError once ``deadline`` (a ``clock()`` value) has passed.

    Each ``recv`` waits at most the time left, so the deadline bounds the whole phase however the
    bytes trickle in. Wrap it in ``io.BufferedReader`` for ``readline``/``read(n)``.
    """

    def __init__(self, sock: socket.socket, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._sock = sock
        self._clock = clock
        self.deadline = float("inf")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # typeshed declares a wider buffer type
        remaining = self.deadline - self._clock()
        if remaining <= 0:
            raise TimeoutError("read deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)
