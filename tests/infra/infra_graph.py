"""Query helpers over a recorded resource graph (see infra_mockrun.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from infra_mockrun import PROJECT_DIR, stack_config

from settings import Settings, parse_settings


class Graph:
    def __init__(self, stack: str, data: dict[str, Any], overrides: dict[str, Any] | None = None) -> None:
        self.stack = stack
        self.resources: list[dict[str, Any]] = data["resources"]
        self.outputs: dict[str, Any] = data["outputs"]
        self.by_urn = {r["urn"]: r for r in self.resources}
        self.config = stack_config(stack, overrides)  # what the program ran with, variant overrides included

    def settings(self, overrides: dict[str, str] | None = None) -> Settings:
        raw = {k.split(":", 1)[1]: v for k, v in self.config.items() if k.startswith("iot-ingest:")}
        return parse_settings({**raw, **(overrides or {})}, self.config["aws:region"])

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == typ]

    def one(self, typ: str, name: str) -> dict[str, Any]:
        found = [r for r in self.of_type(typ) if r["name"] == name]
        assert len(found) == 1, f"expected one {typ} named {name}, found {[r['name'] for r in self.of_type(typ)]}"
        return found[0]

    def parent_of(self, r: dict[str, Any]) -> dict[str, Any] | None:
        return self.by_urn.get(r.get("parent", ""))

    def function(self, role: str) -> dict[str, Any]:
        return self.one("aws:lambda/function:Function", f"iot-ingest-{role}-function")

    def role_policy(self, role: str) -> dict[str, Any]:
        r = self.one("aws:iam/rolePolicy:RolePolicy", f"iot-ingest-{role}-policy")
        return json.loads(r["inputs"]["policy"])

    def id_of(self, typ: str, name: str) -> str:
        return self.one(typ, name)["id"]

    @property
    def code_archive(self) -> str:
        return str(PROJECT_DIR / "build" / "lambda-code.zip")


def arn(kind: str, resource: str, region: str = "us-east-1", account: str = "123456789012") -> str:
    return f"arn:aws:{kind}:{region}:{account}:{resource}"


HERE = Path(__file__).resolve().parent


def run_stack(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recorded graph of ``stack`` (optionally with config overrides) as JSON data."""
    cmd = [sys.executable, str(HERE / "infra_mockrun.py"), stack]
    if overrides:
        cmd.append(json.dumps(overrides))
    done = subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"mock run of {stack} crashed:\n{done.stderr}")
    return json.loads(done.stdout)


def graph_of(stack: str, overrides: dict[str, Any] | None = None) -> Graph:
    data = run_stack(stack, overrides)
    if "error" in data:
        raise AssertionError(f"program failed for {stack}: {data['error']['traceback']}")
    return Graph(stack, data, overrides)
