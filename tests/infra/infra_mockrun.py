"""Run the unchanged Pulumi program under the SDK's mocks and record the resource graph.

Used by the infra tests, one subprocess per stack (``python tests/infra/infra_mockrun.py dev``
prints the graph as JSON), because the Pulumi runtime keeps process-global state
and ``__main__`` must be executed fresh for every stack. Also importable for
in-process component tests (``RecordingMocks``, ``stack_config``).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import runpy
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
PROJECT = "iot-ingest"
ACCOUNT = "123456789012"


def _text(value: Any) -> str:
    """Config values as Pulumi hands them to programs: text, structured values as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """PULUMI_CONFIG for ``stack``: Pulumi.yaml defaults, then Pulumi.<stack>.yaml, then overrides."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    config: dict[str, str] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            config[full] = _text(decl["default"])
    stack_file = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    for key, value in (stack_file.get("config") or {}).items():
        config[key] = _text(value)
    for key, value in (overrides or {}).items():
        config[key if ":" in key else f"{PROJECT}:{key}"] = _text(value)
    return config


def _short(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:7]


def _jsonable(value: Any) -> Any:
    """Inputs as plain JSON: archives become their path, unknowns a marker."""
    import pulumi

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, pulumi.FileArchive):
        return {"__fileArchive": value.path}
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return {"__asset": type(value).__name__}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"__unknown": repr(value)}


def _outputs_for(typ: str, name: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    """Fake physical ids and computed outputs shaped like AWS's, per resource type."""
    physical = inputs.get("name") or f"{name}-{_short(name)}"
    arn_base = f"arn:aws:{{svc}}:{region}:{ACCOUNT}:"
    state = dict(inputs)
    rid = physical
    if typ == "aws:kinesis/stream:Stream":
        state.update(name=physical, arn=arn_base.format(svc="kinesis") + f"stream/{physical}")
    elif typ == "aws:dynamodb/table:Table":
        state.update(name=physical, arn=arn_base.format(svc="dynamodb") + f"table/{physical}")
    elif typ == "aws:iam/role:Role":
        state.update(name=physical, arn=f"arn:aws:iam::{ACCOUNT}:role/{physical}")
    elif typ == "aws:iam/rolePolicy:RolePolicy":
        rid = f"{physical}:policy"
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        state.update(name=physical, arn=arn_base.format(svc="logs") + f"log-group:{physical}")
    elif typ == "aws:lambda/function:Function":
        arn = arn_base.format(svc="lambda") + f"function:{physical}"
        state.update(name=physical, arn=arn,
                     invokeArn=f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations")
    elif typ == "aws:sqs/queue:Queue":
        state.update(name=physical, arn=arn_base.format(svc="sqs") + physical,
                     url=f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{physical}")
        rid = state["url"]
    elif typ == "aws:sns/topic:Topic":
        state.update(name=physical, arn=arn_base.format(svc="sns") + physical)
        rid = state["arn"]
    elif typ == "aws:kms/key:Key":
        rid = f"key-{_short(name)}"
        state.update(keyId=rid, arn=arn_base.format(svc="kms") + f"key/{rid}")
    elif typ == "aws:apigatewayv2/api:Api":
        rid = _short(name)
        state.update(apiEndpoint=f"https://{rid}.execute-api.{region}.amazonaws.com",
                     executionArn=arn_base.format(svc="execute-api") + rid)
    elif typ == "aws:apigatewayv2/stage:Stage":
        rid = "$default"
        state.update(invokeUrl=f"https://{inputs.get('apiId')}.execute-api.{region}.amazonaws.com/")
    elif typ.startswith("aws:apigatewayv2/"):
        rid = _short(name)
    elif typ == "aws:lambda/eventSourceMapping:EventSourceMapping":
        rid = f"uuid-{_short(name)}"
        state.update(uuid=rid)
    elif typ == "aws:cloudwatch/dashboard:Dashboard":
        rid = inputs.get("dashboardName", physical)
    elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        state.update(arn=arn_base.format(svc="cloudwatch") + f"alarm:{physical}")
    return rid, state


def make_mocks(region: str = "us-east-1") -> Any:
    import pulumi

    class RecordingMocks(pulumi.runtime.Mocks):
        """Answers like AWS would, and keeps every resource's inputs."""

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.resources: list[dict[str, Any]] = []

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            rid, state = _outputs_for(args.typ, args.name, dict(args.inputs), region)
            with self.lock:  # called from several threads
                self.resources.append({"type": args.typ, "name": args.name, "custom": args.custom,
                                       "inputs": _jsonable(dict(args.inputs)), "id": rid})
            return (rid if args.custom else None), state

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            raise AssertionError(f"the program must not need invokes, got {args.token}")

    return RecordingMocks()


def make_monitor(mocks: Any) -> Any:
    from pulumi.runtime.mocks import MockMonitor

    class RecordingMonitor(MockMonitor):
        """Adds what MockResourceArgs lacks: URN, parent, dependencies, protect, provider."""

        def __init__(self, m: Any) -> None:
            super().__init__(m)
            self.lock = threading.Lock()
            self.registrations: dict[tuple[str, str], dict[str, Any]] = {}

        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC name
            response = super().RegisterResource(request)
            with self.lock:
                self.registrations[(request.type, request.name)] = {
                    "urn": response.urn,
                    "parent": request.parent,
                    "dependencies": list(request.dependencies),
                    "protect": bool(request.protect),
                    "provider": request.provider,
                }
            return response

    return RecordingMonitor(mocks)


async def _resolve(value: Any) -> Any:
    import pulumi

    out = pulumi.Output.from_input(value)
    return await out.future()


def run_callable(build: Any, stack: str, region: str = "us-east-1") -> dict[str, Any]:
    """Run ``build()`` (declares resources, may return Outputs) under fresh mocks.

    Returns {resources, outputs} or {error, resources}. Each call gets its own
    mocks, monitor and event loop, so calls can follow each other in one process.
    """
    import pulumi
    from pulumi.runtime import settings as rt_settings
    from pulumi.runtime.stack import wait_for_rpcs

    # A fresh loop and root stack first: the root's futures bind to the loop
    # that is current when set_mocks creates it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    rt_settings.ROOT.set(None)
    mocks = make_mocks(region)
    monitor = make_monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    root = rt_settings.get_root_resource()

    async def main() -> Any:
        returned = build()
        await wait_for_rpcs()
        resolved = await _resolve(returned) if returned is not None else None
        exported = await _resolve(root.outputs) if root is not None else {}
        await wait_for_rpcs()
        return resolved if returned is not None else exported

    try:
        outputs = loop.run_until_complete(main())
    except Exception as exc:  # noqa: BLE001 - reported to the caller as data
        return {"error": {"type": type(exc).__name__, "message": str(exc),
                          "traceback": traceback.format_exc()},
                "resources": _merge(mocks, monitor)}
    finally:
        loop.close()
    return {"resources": _merge(mocks, monitor), "outputs": _jsonable(outputs)}


def run_program(stack: str, config: dict[str, str]) -> dict[str, Any]:
    """Execute __main__.py for ``stack`` and return {resources, outputs} (or {error})."""
    os.environ["PULUMI_CONFIG"] = json.dumps(config)
    return run_callable(lambda: runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__") and None,
                        stack, config.get("aws:region") or "us-east-1")


def _merge(mocks: Any, monitor: Any) -> list[dict[str, Any]]:
    merged = []
    for r in mocks.resources:
        merged.append({**r, **monitor.registrations.get((r["type"], r["name"]), {})})
    return merged


def main(argv: list[str]) -> int:
    stack = argv[1]
    overrides = json.loads(argv[2]) if len(argv) > 2 else None
    result = run_program(stack, stack_config(stack, overrides))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
