"""What every admin command shares: operator errors, the stack outputs file, AWS clients."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

EXIT_USAGE = 2


class CliError(Exception):
    """A problem the operator can fix; printed without a traceback."""


def load_stack_file(path: Path) -> dict[str, Any]:
    """The stack outputs: the local cloud's .localcloud/stack.json or `pulumi stack output --json`."""
    try:
        stack = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"stack file {path} not found; start the local cloud first (make serve)"
                       " or write `pulumi stack output --json` to a file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"cannot read stack file {path}: {exc}") from None
    if not isinstance(stack, dict):
        raise CliError(f"stack file {path} is not a JSON object of stack outputs")
    return stack


def aws_client(service: str, endpoint_url: str | None, region: str | None, config: Any = None) -> Any:
    """A client with the default credential chain; against an explicit endpoint (an emulator)
    with no credentials configured, placeholder ones, because emulators accept any and boto3
    refuses to sign without."""
    session = boto3.session.Session()
    region = region or session.region_name or "us-east-1"
    kwargs: dict[str, Any] = {"endpoint_url": endpoint_url, "region_name": region}
    if config is not None:
        kwargs["config"] = config
    if endpoint_url and session.get_credentials() is None:
        kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client(service, **kwargs)
