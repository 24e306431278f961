"""Pulumi.yaml + Pulumi.<stack>.yaml -> PULUMI_CONFIG, the way the Pulumi CLI would hand it over."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud.stack_config import StackConfigError, load_stack_config

REPO = Path(__file__).resolve().parents[2]


def write(root: Path, project: str, stack: str = "config: {}\n", name: str = "dev") -> Path:
    (root / "Pulumi.yaml").write_text(project)
    (root / f"Pulumi.{name}.yaml").write_text(stack)
    return root


def test_defaults_are_text_and_the_stack_file_wins(tmp_path: Path) -> None:
    write(tmp_path, """name: proj
config:
  count: {type: integer, default: 3}
  flag: {type: boolean, default: false}
  origins: {type: array, items: {type: string}, default: ["a", "b"]}
  nodefault: {type: string}
  plain: hello
  proj:prefixed: 1
""", "config:\n  aws:region: eu-west-1\n  proj:count: 5\n  proj:obj: {\"x\": 1}\n")
    config = load_stack_config(tmp_path, "dev")
    assert config.project == "proj" and config.region == "eu-west-1"
    assert config.values == {
        "proj:count": "5", "proj:flag": "false", "proj:origins": '["a", "b"]', "proj:plain": "hello",
        "proj:prefixed": "1", "proj:obj": '{"x": 1}', "aws:region": "eu-west-1",
    }
    assert json.loads(config.to_env()) == config.values


def test_encrypted_values_are_refused_with_the_key(tmp_path: Path) -> None:
    write(tmp_path, "name: proj\n", "config:\n  proj:token:\n    secure: AAABAxyz\n")
    with pytest.raises(StackConfigError, match="proj:token is an encrypted secret"):
        load_stack_config(tmp_path, "dev")


@pytest.mark.parametrize("project, stack, message", [
    (None, "config: {}\n", "no Pulumi.yaml"),
    ("description: x\n", "config: {}\n", "'name' is missing"),
    ("name: proj\n", "config: [unclosed\n", "not valid YAML"),
    ("name: proj\n", "- a list\n", "expected a mapping"),
])
def test_broken_files_are_named(tmp_path: Path, project: str | None, stack: str, message: str) -> None:
    if project is not None:
        (tmp_path / "Pulumi.yaml").write_text(project)
    (tmp_path / "Pulumi.dev.yaml").write_text(stack)
    with pytest.raises(StackConfigError, match=message):
        load_stack_config(tmp_path, "dev")


def test_real_project_dev_config() -> None:
    config = load_stack_config(REPO, "dev")
    assert config.project == "iot-ingest" and config.region == "us-east-1"
    assert config.values["iot-ingest:shardCount"] == "1"
    assert config.values["iot-ingest:logLevel"] == "DEBUG"  # stack file over the INFO default
    assert config.values["iot-ingest:corsAllowOrigins"] == "[]"  # array default as JSON text
    assert config.values["iot-ingest:pointInTimeRecovery"] == "false"


def test_preload_really_loads_the_lazy_provider_modules() -> None:
    """pulumi_aws registers submodules lazily; a preload that only imports them leaves their code
    (about a second) to run inside the program, after the emulator is up. Checked in a fresh
    interpreter, since this test process has long since loaded them."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, types\n"
        "import localcloud.provisioner as P\n"
        "P._preload()\n"
        "lazy = [m for m in P.PRELOAD_MODULES if type(sys.modules['pulumi_aws.' + m]) is not types.ModuleType]\n"
        "print(lazy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip().splitlines()[-1] == "[]"
