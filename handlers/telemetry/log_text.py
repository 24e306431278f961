"""Text from a request, made safe to put in a log line.

A JSON body may spell a lone UTF-16 surrogate ("\\ud800"); Python decodes it into a str that
UTF-8 cannot encode, so the log handler's write fails and the logging module drops the whole
line ("--- Logging error ---"). Every rejection must leave its log line, so request-supplied
text goes through ``log_safe`` first: surrogates become ``\\ud800`` escapes and long values are
cut, so a garbage field cannot flood the log either.
"""
from __future__ import annotations

MAX_LOGGED_CHARS = 256


def log_safe(text: str | None, limit: int = MAX_LOGGED_CHARS) -> str | None:
    """``text`` with unencodable characters backslash-escaped and cut to ``limit`` characters."""
    if text is None:
        return None
    cut = text[:limit]
    if cut.isascii():  # the common case costs one check
        return cut
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")
