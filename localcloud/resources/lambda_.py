"""Lambda functions, permissions and event source mappings.

Functions are created in moto (so ARNs, configuration and GetFunction are real)
from a zip of the declared code directory; the data plane's runner executes
the same directory.  Event source mappings are deliberately *not* created in
moto: moto 5.2.5 invokes the function through docker synchronously inside
every PutRecords on the stream.  They get a UUID here and the data plane's
poller serves them (see provisioner.assemble -> MappingSpec).
"""
from __future__ import annotations

import io
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any

from .base import Context, ProvisionError, Request, as_bool, as_int, physical_name

DEFAULT_TIMEOUT_S = 3  # Lambda's defaults, as pulumi-aws leaves them to the service
DEFAULT_MEMORY_MB = 128


def code_directory(ctx: Context, req: Request) -> Path:
    """The directory the function's code comes from (the runner imports from it)."""
    import pulumi

    code = req.inputs.get("code")
    if isinstance(code, pulumi.FileArchive):
        path = (ctx.project_dir / code.path).resolve()
        if path.is_dir():
            return path
        if path.is_file() and zipfile.is_zipfile(path):
            target = ctx.state_dir / "code" / req.name
            shutil.rmtree(target, ignore_errors=True)  # no files left over from an earlier archive
            with zipfile.ZipFile(path) as archive:
                archive.extractall(target)
            return target
        raise ProvisionError(f"function {req.name!r}: code archive {code.path!r} is neither a directory nor a zip")
    if code is None and (req.inputs.get("imageUri") or req.inputs.get("s3Bucket")):
        raise ProvisionError(
            f"function {req.name!r}: only code=pulumi.FileArchive(<dir or zip>) runs on the local cloud "
            "(container images and S3 code do not)"
        )
    raise ProvisionError(
        f"function {req.name!r}: code must be a pulumi.FileArchive, got {type(code).__name__}"
    )


def zip_directory(path: Path) -> bytes:
    """Zip a code directory as Pulumi would upload it (without bytecode caches).

    Not cached: the directory may change between runs of a long-lived process,
    and zipping the handlers takes milliseconds.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


def invoke_arn(region: str, function_arn: str) -> str:
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def create_function(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    lam = ctx.client("lambda")
    i = req.inputs
    name = physical_name(req, max_len=64)
    for key in ("role", "handler", "runtime"):
        if not i.get(key):
            raise ProvisionError(f"function {req.name!r}: {key} is required")
    code_dir = code_directory(ctx, req)
    variables = {str(k): str(v) for k, v in ((i.get("environment") or {}).get("variables") or {}).items()}
    timeout = as_int(i.get("timeout"), DEFAULT_TIMEOUT_S) or DEFAULT_TIMEOUT_S
    memory = as_int(i.get("memorySize"), DEFAULT_MEMORY_MB) or DEFAULT_MEMORY_MB
    args: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": i["runtime"],
        "Role": i["role"],
        "Handler": i["handler"],
        "Code": {"ZipFile": zip_directory(code_dir)},
        "Timeout": timeout,
        "MemorySize": memory,
        "Publish": as_bool(i.get("publish")),
        "Environment": {"Variables": variables},
    }
    if i.get("architectures"):
        args["Architectures"] = list(i["architectures"])
    if i.get("description"):
        args["Description"] = i["description"]
    if (i.get("tracingConfig") or {}).get("mode"):
        args["TracingConfig"] = {"Mode": i["tracingConfig"]["mode"]}
    # Layers (the AWS-managed Powertools layer) are left out in the emulator:
    # moto 5.2.5 rejects a layer it does not hold (verified: ResourceNotFoundException
    # "One or more LayerVersion does not exist"), and the runner imports
    # Powertools from venv/ instead (docs/architecture.md, "Lambda functions").
    # The declared layers stay in the returned state.
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tags
    config = lam.create_function(**args)
    reserved = as_int(i.get("reservedConcurrentExecutions"), -1)
    if reserved is not None and reserved >= 0:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
    arn = config["FunctionArn"]
    state = {
        **i,
        "name": name,
        "arn": arn,
        "qualifiedArn": f"{arn}:$LATEST",
        "invokeArn": invoke_arn(ctx.region, arn),
        "qualifiedInvokeArn": invoke_arn(ctx.region, f"{arn}:$LATEST"),
        "version": "$LATEST",
        "timeout": timeout,
        "memorySize": memory,
        "reservedConcurrentExecutions": -1 if reserved is None else reserved,
        "layers": list(i.get("layers") or []),
        "sourceCodeHash": config.get("CodeSha256", ""),
        "tagsAll": tags,
    }
    with ctx.lock:
        ctx.code_dirs[name] = code_dir
    return name, state


def function_name_of(value: str) -> str:
    """Lambda accepts a name, a function ARN or a qualified ARN wherever a function is named."""
    if value.startswith("arn:"):
        parts = value.split(":")
        return parts[6] if len(parts) > 6 else value
    return value


def create_permission(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    for key in ("action", "function", "principal"):
        if not i.get(key):
            raise ProvisionError(f"lambda permission {req.name!r}: {key} is required")
    statement_id = i.get("statementId") or physical_name(req)
    args: dict[str, Any] = {
        "FunctionName": function_name_of(str(i["function"])),
        "StatementId": statement_id,
        "Action": i["action"],
        "Principal": i["principal"],
    }
    if i.get("sourceArn"):
        args["SourceArn"] = i["sourceArn"]
    if i.get("sourceAccount"):
        args["SourceAccount"] = i["sourceAccount"]
    ctx.client("lambda").add_permission(**args)
    return statement_id, {**i, "statementId": statement_id}


def create_event_source_mapping(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    if not i.get("functionName") or not i.get("eventSourceArn"):
        raise ProvisionError(f"event source mapping {req.name!r}: functionName and eventSourceArn are required")
    source = str(i["eventSourceArn"])
    if ":kinesis:" not in source:
        raise ProvisionError(
            f"event source mapping {req.name!r}: only Kinesis sources run on the local cloud, got {source!r}"
        )
    if not i.get("startingPosition"):
        raise ProvisionError(f"event source mapping {req.name!r}: startingPosition is required for Kinesis")
    mapping_uuid = str(uuid.uuid4())
    name = function_name_of(str(i["functionName"]))
    state = {
        **i,
        "uuid": mapping_uuid,
        "functionArn": ctx.arn("lambda", f"function:{name}"),
        "state": "Enabled",
        "stateTransitionReason": "USER_INITIATED",
        "arn": ctx.arn("lambda", f"event-source-mapping:{mapping_uuid}"),
    }
    return mapping_uuid, state


CREATORS = {
    "aws:lambda/function:Function": create_function,
    "aws:lambda/permission:Permission": create_permission,
    "aws:lambda/eventSourceMapping:EventSourceMapping": create_event_source_mapping,
}
