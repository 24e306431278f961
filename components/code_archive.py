"""The Lambda code archive: only what the handlers import, byte-identical for identical code.

A FileArchive of the handlers/ directory would also ship __pycache__/ (which appears
whenever tests or tools import the handlers) and hash differently whenever it changes,
so `pulumi up` would update every function after any local test run. Instead the program
writes one zip with fixed timestamps, permissions and entry order, of the .py and .json
files only, and points every function at it: same code in, same bytes out.
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

# What the runtime needs from handlers/: the three entry modules and the telemetry package
# (its code and the JSON Schema it loads). Everything else stays out.
INCLUDED_SUFFIXES = (".py", ".json")
EXCLUDED_DIRS = ("__pycache__", "tests", "test")
# handlers/__init__.py only lets tools import `handlers.telemetry`; Lambda never imports it
# (the archive root is handlers/ itself).
EXCLUDED_ROOT_FILES = ("__init__.py",)
# ZIP's earliest representable date: the same for every build, wherever it runs.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--


def archive_members(source: Path) -> list[str]:
    """Archive names (posix, relative to ``source``), sorted, of the files the handlers need."""
    names = []
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if not path.is_file() or path.suffix not in INCLUDED_SUFFIXES:
            continue
        if any(part in EXCLUDED_DIRS or part.startswith("test_") for part in rel.parts):
            continue
        if len(rel.parts) == 1 and rel.name in EXCLUDED_ROOT_FILES:
            continue
        names.append(rel.as_posix())
    return sorted(names)


def archive_bytes(source: Path) -> bytes:
    """The zip of ``source``'s handler files; depends only on their names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in archive_members(source):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the mode on every OS
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, (source / name).read_bytes(), compresslevel=9)
    return buffer.getvalue()


def build_code_archive(source: Path, target: Path) -> Path:
    """Write the archive of ``source`` to ``target`` (atomically; untouched if already identical)."""
    data = archive_bytes(source)
    if target.is_file() and target.read_bytes() == data:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)  # stacks run in parallel (tests, local clouds) may build at once
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
