"""Pulumi.yaml defaults + Pulumi.<stack>.yaml values -> the PULUMI_CONFIG map the program reads.

Without the Pulumi CLI nobody else merges the two files, and under mocks the
program sees config only through ``PULUMI_CONFIG`` (a JSON object of
``"project:key": "text"``), so this reproduces the CLI's rules: project keys
may be written bare in Pulumi.yaml, stack files write them with the project
prefix, every value is handed over as text (arrays/objects as JSON).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class StackConfigError(Exception):
    """The project or stack file is missing or unusable; the message says which and why."""


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    values: dict[str, str]  # "project:key" / "aws:region" -> text

    @property
    def region(self) -> str | None:
        return self.values.get("aws:region") or None

    def to_env(self) -> str:
        return json.dumps(self.values, sort_keys=True)


def _text(value: Any) -> str:
    """How the Pulumi CLI hands a config value to the program."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise StackConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise StackConfigError(f"{path}: expected a mapping at the top level")
    return data


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    project_file = project_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise StackConfigError(f"no Pulumi.yaml in {project_dir}")
    project_data = _load_yaml(project_file)
    project = project_data.get("name")
    if not isinstance(project, str) or not project:
        raise StackConfigError(f"{project_file}: 'name' is missing")
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackConfigError(
            f"unknown stack {stack!r}: no {stack_file.name} in {project_dir} (stacks here: {', '.join(known) or 'none'})"
        )

    values: dict[str, str] = {}
    for key, spec in (project_data.get("config") or {}).items():
        full = _full_key(project, str(key))
        if isinstance(spec, dict):
            if "default" in spec:
                values[full] = _text(spec["default"])
            elif "value" in spec:
                values[full] = _text(spec["value"])
        elif spec is not None:
            values[full] = _text(spec)

    for key, value in (_load_yaml(stack_file).get("config") or {}).items():
        full = _full_key(project, str(key))
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise StackConfigError(
                f"{stack_file.name}: {full} is an encrypted secret; the local cloud cannot decrypt it "
                "(set a plain value in a local stack file)"
            )
        values[full] = _text(value)
    return StackConfig(project=project, stack=stack, values=values)
