"""Run the unchanged Pulumi program against the emulator and describe what it built.

There is no Pulumi CLI or engine here, so the program runs under the SDK's mock
runtime, and the mocks are not mocks: each ``new_resource`` creates the
resource in the emulator (``localcloud.resources``, one module per service) and
hands the emulator's real ids and ARNs back, so dependent resources and the
stack outputs carry values that work against the emulator.

By default the program runs in a child process (``python -m
localcloud.provisioner``).  The Pulumi SDK keeps its runtime state in globals
and context variables, and the program imports its own top-level packages
(``settings``, ``components``); a child gives every run a clean runtime and a
clean ``sys.modules``, whatever ran before in the calling process (pytest runs
the program's own mock tests in the same process).
"""
from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import pickle
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import ApiSpec, AuthorizerSpec, FunctionSpec, MappingSpec, ProvisionedResource, ProvisionedStack, RouteSpec
from .resources.base import Context, ProvisionError, Request, as_bool, as_int
from .stack_config import StackConfigError, load_stack_config

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REGION = "us-east-1"
STATE_DIR_NAME = ".localcloud"
STACK_JSON = "stack.json"
ERROR_FILE = "error.txt"  # next to the child's --out file

__all__ = ["ProvisionError", "ProvisionRun", "provision", "provision_in_process", "write_stack_json"]


# ---------------------------------------------------------------------------
# public entry points


def provision(
    project_dir: Path = REPO_ROOT,
    stack: str = "dev",
    *,
    endpoint_url: str,
    api_url: str,
    region: str | None = None,
    state_dir: Path | None = None,
    isolate: bool = True,
    timeout_s: float = 120.0,
) -> ProvisionedStack:
    """Provision ``stack`` of the program in ``project_dir`` into the emulator at ``endpoint_url``.

    ``api_url`` is where the data plane's gateway will listen; it becomes the
    ``apiEndpoint`` of every HTTP API, hence the program's ``apiUrl`` output.
    Writes ``<state_dir>/stack.json`` (default ``<project_dir>/.localcloud``).
    Raises ``ProvisionError`` (bad config, unsupported resource, emulator error).
    """
    if not isolate:
        project_dir = Path(project_dir).resolve()
        return provision_in_process(
            project_dir, stack, endpoint_url=endpoint_url, api_url=api_url, region=region,
            state_dir=Path(state_dir) if state_dir else project_dir / STATE_DIR_NAME,
        )
    run = ProvisionRun(project_dir, stack, api_url=api_url, region=region, state_dir=state_dir, timeout_s=timeout_s)
    return run.finish(endpoint_url)


class ProvisionRun:
    """A provisioning child started before the emulator is up.

    The child imports the Pulumi SDK, the provider's modules and botocore's
    service models (about a second of CPU) while the emulator starts on the
    other core, then waits for the emulator's URL on stdin.  ``finish`` hands
    it over and collects the result; ``cancel`` stops the child.
    """

    def __init__(
        self,
        project_dir: Path = REPO_ROOT,
        stack: str = "dev",
        *,
        api_url: str,
        region: str | None = None,
        state_dir: Path | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.stack = stack
        self.timeout_s = timeout_s
        self.state_dir = Path(state_dir) if state_dir else self.project_dir / STATE_DIR_NAME
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="provision-", dir=self.state_dir))
        self._out = self._tmp / "result.pickle"
        cmd = [
            sys.executable, "-m", "localcloud.provisioner",
            "--project-dir", str(self.project_dir), "--stack", stack,
            "--endpoint-url", "-", "--api-url", api_url,
            "--state-dir", str(self.state_dir), "--out", str(self._out),
        ]
        if region:
            cmd += ["--region", region]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._proc: subprocess.Popen[str] | None = subprocess.Popen(
            cmd, env=env, cwd=self.project_dir, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )

    def finish(self, endpoint_url: str) -> ProvisionedStack:
        proc = self._proc
        if proc is None:
            raise ProvisionError("this provisioning run was already finished or cancelled")
        try:
            try:
                _, stderr = proc.communicate(endpoint_url + "\n", timeout=self.timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise ProvisionError(
                    f"provisioning {self.stack!r} did not finish within {self.timeout_s:.0f}s") from exc
            if proc.returncode != 0 or not self._out.exists():
                raise ProvisionError(_child_error(proc.returncode, stderr, self._tmp / ERROR_FILE))
            with self._out.open("rb") as fh:
                result = pickle.load(fh)
        finally:
            self.cancel()
        if not isinstance(result, ProvisionedStack):
            raise ProvisionError(f"provisioning child returned {type(result).__name__}, not a ProvisionedStack")
        return result

    def cancel(self) -> None:
        """Stop the child if it still runs and remove its scratch directory; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        shutil.rmtree(self._tmp, ignore_errors=True)


def _child_error(returncode: int | None, stderr: str, error_file: Path) -> str:
    """The child's error message (it may span lines, e.g. every settings problem), else its stderr tail."""
    if error_file.is_file():
        return error_file.read_text(encoding="utf-8")
    tail = "\n".join((stderr or "").strip().splitlines()[-15:])
    return f"provisioning failed (exit {returncode}):\n{tail}"


def provision_in_process(
    project_dir: Path,
    stack: str = "dev",
    *,
    endpoint_url: str,
    api_url: str,
    region: str | None = None,
    state_dir: Path | None = None,
) -> ProvisionedStack:
    """Run the program in this process (what the child does); see :func:`provision`."""
    project_dir = Path(project_dir).resolve()
    state_dir = Path(state_dir) if state_dir else project_dir / STATE_DIR_NAME
    try:
        config = load_stack_config(project_dir, stack)
    except StackConfigError as exc:
        raise ProvisionError(str(exc)) from exc
    region = region or config.region or DEFAULT_REGION
    main_file = project_dir / "__main__.py"
    if not main_file.is_file():
        raise ProvisionError(f"no __main__.py in {project_dir}")
    state_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        region=region,
        endpoint_url=endpoint_url,
        api_url=api_url.rstrip("/"),
        project_dir=project_dir,
        state_dir=state_dir,
        client_factory=lambda service: _client(service, endpoint_url, region),
    )
    outputs = _in_own_thread(_run_program, ctx, config.project, stack, config.to_env(), main_file)
    result = assemble(ctx, config.project, stack, outputs)
    write_stack_json(state_dir, outputs, endpoint_url)
    return result


def write_stack_json(state_dir: Path, outputs: dict[str, Any], endpoint_url: str) -> Path:
    """``stack.json`` = the stack outputs + ``endpointUrl``; written atomically (tmp file + rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / STACK_JSON
    payload = json.dumps({**outputs, "endpointUrl": endpoint_url}, indent=2, sort_keys=True, default=str) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".stack-", suffix=".json", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# ---------------------------------------------------------------------------
# running the program under mocks


def _client(service: str, endpoint_url: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


def _make_mocks(ctx: Context) -> Any:
    import pulumi
    from botocore.exceptions import BotoCoreError, ClientError

    from .resources import CREATORS

    class EmulatorMocks(pulumi.runtime.Mocks):
        """``new_resource`` creates the real thing in the emulator."""

        def __init__(self) -> None:
            self.errors: list[ProvisionError] = []

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            try:
                return self._create(args)
            except ProvisionError as exc:
                self.errors.append(exc)
                raise
            except (ClientError, BotoCoreError) as exc:
                error = ProvisionError(f"{args.typ} {args.name!r}: the emulator rejected it: {exc}")
                self.errors.append(error)
                raise error from exc
            except Exception as exc:  # a creator bug must still name the resource
                error = ProvisionError(f"{args.typ} {args.name!r}: {type(exc).__name__}: {exc}")
                self.errors.append(error)
                raise error from exc

        def _create(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            if args.custom is None and args.resource_id:  # ReadResource, i.e. Resource.get()
                raise ProvisionError(
                    f"{args.typ} {args.name!r}: reading existing resources (.get()) is not supported locally"
                )
            if not args.custom:
                return "", {}  # a ComponentResource: nothing exists in AWS
            creator = CREATORS.get(args.typ)
            if creator is None:
                raise ProvisionError(
                    f"unsupported resource type {args.typ!r} (logical name {args.name!r}): the local cloud "
                    f"cannot create it; supported: {', '.join(sorted(CREATORS))}"
                )
            request = Request(type=args.typ, name=args.name, inputs=dict(args.inputs), provider=args.provider or None)
            physical_id, state = creator(ctx, request)
            ctx.record(request, physical_id, state)
            return physical_id, state

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]  # the SDK declares a narrower return than it accepts
            # A plain dict is the SDK's "no check failures" form.
            if args.token == "aws:index/getRegion:getRegion":
                return {"name": ctx.region, "region": ctx.region, "id": ctx.region,
                        "endpoint": f"ec2.{ctx.region}.amazonaws.com", "description": ctx.region}
            if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
                return {"accountId": ctx.account_id, "arn": f"arn:aws:iam::{ctx.account_id}:user/localcloud",
                        "userId": "localcloud", "id": ctx.account_id}
            if args.token == "aws:index/getPartition:getPartition":
                return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
                        "reverseDnsPrefix": "com.amazonaws"}
            error = ProvisionError(f"unsupported provider function {args.token!r}: the local cloud cannot answer it")
            self.errors.append(error)
            raise error

    return EmulatorMocks()


def _in_own_thread(fn: Any, *args: Any) -> Any:
    """Run ``fn`` in a new thread with its own event loop and a copy of our context.

    The SDK keeps its state in context variables (settings, root stack, config)
    and drives registrations on the thread's event loop.  A copied context keeps
    that state from leaking into the caller, and a fresh loop keeps us
    independent of the caller's (pytest may already have closed the main
    thread's loop after the program's own mock tests).
    """
    context = contextvars.copy_context()
    box: dict[str, Any] = {}

    def target() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            box["result"] = context.run(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    thread = threading.Thread(target=target, name="pulumi-program")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def _run_program(ctx: Context, project: str, stack: str, config_env: str, main_file: Path) -> dict[str, Any]:
    import pulumi
    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.stack import wait_for_rpcs
    from pulumi.runtime.sync_await import _sync_await

    previous_config = os.environ.get("PULUMI_CONFIG")
    os.environ["PULUMI_CONFIG"] = config_env  # what `pulumi up` would hand the program
    pulumi.runtime.set_all_config(json.loads(config_env))
    pulumi_settings.ROOT.set(None)  # a fresh root Stack for this run
    mocks = _make_mocks(ctx)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)

    project_dir = str(main_file.parent)
    old_cwd, old_path0 = os.getcwd(), list(sys.path)
    os.chdir(project_dir)
    sys.path.insert(0, project_dir)
    try:
        runpy.run_path(str(main_file), run_name="__main__")
        _sync_await(wait_for_rpcs())
        root = pulumi_settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        outputs = _sync_await(pulumi.Output.from_input(exported).future()) if exported else {}
    except ProvisionError:
        raise
    except Exception as exc:
        if mocks.errors:  # the first creator error is the cause; the rest is fallout
            raise mocks.errors[0] from exc
        raise ProvisionError(f"the program failed: {type(exc).__name__}: {exc}") from exc
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path0
        if previous_config is None:
            os.environ.pop("PULUMI_CONFIG", None)
        else:
            os.environ["PULUMI_CONFIG"] = previous_config
    if mocks.errors:
        raise mocks.errors[0]
    return dict(outputs or {})


# ---------------------------------------------------------------------------
# describing what was built for the data plane


@dataclass(frozen=True)
class _Record:
    request: Request
    id: str
    state: dict[str, Any]


def _records(ctx: Context, typ: str) -> list[_Record]:
    return [_Record(r, i, s) for r, i, s in ctx.by_type.get(typ, [])]


def _function_name_from_invoke_arn(invoke_arn: str) -> str:
    # arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations
    marker = "/functions/"
    if marker not in invoke_arn:
        raise ProvisionError(f"not a Lambda invoke ARN: {invoke_arn!r}")
    function_arn = invoke_arn.split(marker, 1)[1].rsplit("/invocations", 1)[0]
    return function_arn.split(":")[6]


def _plain(value: Any) -> Any:
    """Inputs/state without SDK objects (archives), so results pickle and print cleanly."""
    import pulumi

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.FileArchive):
        return {"fileArchive": str(value.path)}
    if isinstance(value, (pulumi.Archive, pulumi.Asset)):
        return {"asset": type(value).__name__}
    return value


def assemble(ctx: Context, project: str, stack: str, outputs: dict[str, Any]) -> ProvisionedStack:
    functions: dict[str, FunctionSpec] = {}
    for rec in _records(ctx, "aws:lambda/function:Function"):
        s = rec.state
        reserved = as_int(s.get("reservedConcurrentExecutions"), -1)
        functions[rec.id] = FunctionSpec(
            name=rec.id,
            arn=s["arn"],
            handler=s["handler"],
            code_dir=ctx.code_dirs[rec.id],
            environment={str(k): str(v) for k, v in ((s.get("environment") or {}).get("variables") or {}).items()},
            timeout_s=float(s["timeout"]),
            memory_mb=int(s["memorySize"]),
            reserved_concurrency=None if reserved is None or reserved < 0 else reserved,
        )

    def function_for(invoke_arn: str, what: str) -> str:
        name = _function_name_from_invoke_arn(invoke_arn)
        if name not in functions:
            raise ProvisionError(f"{what} invokes {name!r}, which the program does not declare")
        return name

    authorizers = {
        rec.id: AuthorizerSpec(
            authorizer_id=rec.id,
            function=function_for(rec.state["authorizerUri"], f"authorizer {rec.request.name!r}"),
            identity_sources=tuple(rec.state.get("identitySources") or ()),
            cache_ttl_s=as_int(rec.state.get("authorizerResultTtlInSeconds"), 300) or 0,
            payload_format_version=str(rec.state.get("authorizerPayloadFormatVersion") or "2.0"),
            simple_responses=as_bool(rec.state.get("enableSimpleResponses")),
        )
        for rec in _records(ctx, "aws:apigatewayv2/authorizer:Authorizer")
    }
    integrations = {rec.id: rec for rec in _records(ctx, "aws:apigatewayv2/integration:Integration")}
    stages = _records(ctx, "aws:apigatewayv2/stage:Stage")
    routes = _records(ctx, "aws:apigatewayv2/route:Route")

    apis: list[ApiSpec] = []
    for api in _records(ctx, "aws:apigatewayv2/api:Api"):
        api_stages = [s for s in stages if s.state.get("apiId") == api.id]
        if not api_stages:
            raise ProvisionError(f"HTTP API {api.request.name!r} has no stage, so nothing could invoke it")
        stage = next((s for s in api_stages if s.id == "$default"), api_stages[0])
        route_specs = []
        for route in (r for r in routes if r.state.get("apiId") == api.id):
            integration = integrations.get(str(route.state["target"]).split("/", 1)[1])
            if integration is None:
                raise ProvisionError(f"route {route.request.name!r} targets an integration the program does not declare")
            authorizer = None
            if route.state.get("authorizationType") == "CUSTOM":
                authorizer = authorizers.get(route.state["authorizerId"])
                if authorizer is None:
                    raise ProvisionError(f"route {route.request.name!r} uses an undeclared authorizer")
            route_specs.append(RouteSpec(
                route_key=route.state["routeKey"],
                function=function_for(integration.state["integrationUri"], f"integration {integration.request.name!r}"),
                payload_format_version=str(integration.state.get("payloadFormatVersion") or "1.0"),
                integration_timeout_ms=as_int(integration.state.get("timeoutMilliseconds"), 30000) or 30000,
                authorizer=authorizer,
            ))
        settings = stage.state.get("defaultRouteSettings") or {}
        access = stage.state.get("accessLogSettings") or {}
        destination = str(access.get("destinationArn") or "")
        apis.append(ApiSpec(
            api_id=api.id,
            name=api.state["name"],
            stage=stage.id,
            routes=tuple(route_specs),
            throttle_burst=as_int(settings.get("throttlingBurstLimit")),
            throttle_rate=float(settings["throttlingRateLimit"]) if settings.get("throttlingRateLimit") is not None else None,
            access_log_group=_log_group_name(destination) if destination else None,
            access_log_format=access.get("format") if destination else None,
            cors=api.state.get("corsConfiguration") or None,
        ))

    queues_by_arn = {rec.state["arn"]: rec.state["url"] for rec in _records(ctx, "aws:sqs/queue:Queue")}
    mappings: list[MappingSpec] = []
    for rec in _records(ctx, "aws:lambda/eventSourceMapping:EventSourceMapping"):
        s = rec.state
        from .resources.lambda_ import function_name_of

        function = function_name_of(str(s["functionName"]))
        if function not in functions:
            raise ProvisionError(f"event source mapping {rec.request.name!r} targets undeclared function {function!r}")
        on_failure = (((s.get("destinationConfig") or {}).get("onFailure")) or {}).get("destinationArn")
        if on_failure and on_failure not in queues_by_arn:
            raise ProvisionError(
                f"event source mapping {rec.request.name!r}: on-failure destination {on_failure!r} is not an SQS "
                "queue of this program (only SQS destinations are served locally)"
            )
        stream_arn = str(s["eventSourceArn"])
        mappings.append(MappingSpec(
            uuid=rec.id,
            stream_arn=stream_arn,
            stream_name=stream_arn.split(":stream/", 1)[-1],
            function=function,
            batch_size=as_int(s.get("batchSize"), 100) or 100,
            batching_window_s=as_int(s.get("maximumBatchingWindowInSeconds"), 0) or 0,
            parallelization_factor=as_int(s.get("parallelizationFactor"), 1) or 1,
            starting_position=str(s["startingPosition"]),
            bisect_on_error=as_bool(s.get("bisectBatchOnFunctionError")),
            max_retry_attempts=_int_or(s.get("maximumRetryAttempts"), -1),
            max_record_age_s=_int_or(s.get("maximumRecordAgeInSeconds"), -1),
            report_batch_item_failures="ReportBatchItemFailures" in (s.get("functionResponseTypes") or []),
            on_failure_arn=on_failure or None,
            on_failure_queue_url=queues_by_arn.get(on_failure) if on_failure else None,
        ))

    resources = [
        ProvisionedResource(type=r.type, name=r.name, id=i, inputs=_plain(r.inputs), state=_plain(s))
        for typ in ctx.by_type
        for r, i, s in ctx.by_type[typ]
    ]
    return ProvisionedStack(
        project=project,
        stack=stack,
        region=ctx.region,
        endpoint_url=ctx.endpoint_url,
        outputs=outputs,
        functions=functions,
        apis=apis,
        mappings=mappings,
        resources=resources,
    )


def _int_or(value: Any, default: int) -> int:
    parsed = as_int(value)
    return default if parsed is None else parsed


def _log_group_name(arn: str) -> str:
    # arn:aws:logs:{region}:{account}:log-group:{name}[:*]
    name = arn.split(":log-group:", 1)[-1]
    return name[:-2] if name.endswith(":*") else name


# ---------------------------------------------------------------------------
# child process entry point


#: pulumi_aws modules and botocore service models of the resources we create.
PRELOAD_MODULES = ("kinesis", "dynamodb", "iam", "lambda_", "apigatewayv2", "sqs", "sns", "cloudwatch", "kms")
PRELOAD_SERVICES = ("kinesis", "dynamodb", "iam", "lambda", "apigatewayv2", "sqs", "sns", "cloudwatch", "kms", "logs")


def _preload() -> None:
    """Do the program-independent imports before the emulator URL arrives (pure speed, no state)."""
    import importlib

    import boto3
    import pulumi  # noqa: F401 - preloaded: the import itself is the point (see the docstring)

    for module in PRELOAD_MODULES:
        # pulumi_aws registers its submodules as lazy modules: importing one only creates a
        # placeholder, and the code (about a second for these) runs on first attribute access,
        # which would otherwise happen inside the program run, after the emulator is up.
        getattr(importlib.import_module(f"pulumi_aws.{module}"), "__all__", None)
    session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
    for service in PRELOAD_SERVICES:
        session._session.get_service_model(service)  # cached by the session's loader


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.provisioner")
    parser.add_argument("--project-dir", type=Path, default=REPO_ROOT)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--endpoint-url", required=True, help="the emulator's URL, or '-': read it from stdin")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--region")
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="where to pickle the ProvisionedStack")
    args = parser.parse_args(argv)
    if args.endpoint_url == "-":
        _preload()
        args.endpoint_url = sys.stdin.readline().strip()
        if not args.endpoint_url:
            args.out.with_name(ERROR_FILE).write_text("no emulator URL on stdin (parent gone?)", encoding="utf-8")
            return 2
    started = time.perf_counter()
    try:
        result = provision_in_process(
            args.project_dir, args.stack, endpoint_url=args.endpoint_url, api_url=args.api_url,
            region=args.region, state_dir=args.state_dir,
        )
    except ProvisionError as exc:
        args.out.with_name(ERROR_FILE).write_text(str(exc), encoding="utf-8")
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - reported to the parent with the trace on stderr
        traceback.print_exc()
        args.out.with_name(ERROR_FILE).write_text(f"{type(exc).__name__}: {exc}", encoding="utf-8")
        return 2
    with args.out.open("wb") as fh:
        pickle.dump(result, fh)
    print(f"provisioned {len(result.resources)} resources in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
