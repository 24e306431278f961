"""The Lambda code archive: only what the handlers need, byte-identical for the same code."""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

from infra_graph import run_stack
from infra_mockrun import PROJECT_DIR

from components.code_archive import archive_bytes, build_code_archive

HANDLERS = PROJECT_DIR / "handlers"


def _handler_files() -> set[str]:
    """Every .py/.json under handlers/ outside caches, except the tools-only root __init__.py."""
    return {p.relative_to(HANDLERS).as_posix() for p in HANDLERS.rglob("*")
            if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in p.parts} - {"__init__.py"}


def _copy_with_clutter(dst: Path) -> Path:
    """A copy of handlers/ plus what must never ship: caches, tests, stray files."""
    code = dst / "handlers"
    shutil.copytree(HANDLERS, code, ignore=shutil.ignore_patterns("__pycache__"))
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "ingest.cpython-312.pyc").write_bytes(b"\x00cache")
    (code / "telemetry" / "__pycache__").mkdir()
    (code / "telemetry" / "__pycache__" / "auth.cpython-312.pyc").write_bytes(b"\x00cache")
    (code / "tests").mkdir()
    (code / "tests" / "conftest.py").write_text("import pytest\n")
    (code / "telemetry" / "test_auth.py").write_text("def test_x(): pass\n")
    (code / "notes.md").write_text("scratch\n")
    return code


def test_archive_holds_only_handler_code(tmp_path: Path) -> None:
    code = _copy_with_clutter(tmp_path)
    with zipfile.ZipFile(build_code_archive(code, tmp_path / "out" / "code.zip")) as zf:
        names = zf.namelist()
        assert names == sorted(_handler_files())
        assert {"ingest.py", "authorizer.py", "processor.py", "telemetry/telemetry.schema.json"} <= set(names)
        assert zf.read("telemetry/auth.py") == (HANDLERS / "telemetry" / "auth.py").read_bytes()
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_archive_bytes_ignore_mtimes_caches_and_build_order(tmp_path: Path) -> None:
    first = archive_bytes(_copy_with_clutter(tmp_path / "a"))
    code = _copy_with_clutter(tmp_path / "b")
    for i, p in enumerate(sorted(code.rglob("*.py"), reverse=True)):
        os.utime(p, (1_700_000_000 + i * 3600, 1_700_000_000 + i * 3600))
    (code / "__pycache__" / "processor.cpython-312.pyc").write_bytes(b"\x01another cache")
    assert archive_bytes(code) == first
    (code / "ingest.py").write_text((code / "ingest.py").read_text() + "\n# changed\n")
    assert archive_bytes(code) != first  # and a real change does change it


def test_build_leaves_an_identical_archive_untouched(tmp_path: Path) -> None:
    code = _copy_with_clutter(tmp_path)
    target = build_code_archive(code, tmp_path / "code.zip")
    os.utime(target, (1, 1))
    assert build_code_archive(code, target) == target and target.stat().st_mtime == 1


def test_two_program_runs_point_every_function_at_the_same_bytes() -> None:
    digests = []
    for _ in range(2):
        data = run_stack("dev")
        codes = {r["inputs"]["code"]["__fileArchive"] for r in data["resources"]
                 if r["type"] == "aws:lambda/function:Function"}
        assert len(codes) == 1, codes
        path = Path(codes.pop())
        assert path == PROJECT_DIR / "build" / "lambda-code.zip"
        with zipfile.ZipFile(path) as zf:
            assert not [n for n in zf.namelist() if "__pycache__" in n or n.endswith(".pyc") or "test" in n.split("/")[0]]
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
