"""Credentials under which each function (and the Lambda service on its behalf) calls the emulator.

On AWS a function's code runs with temporary credentials of its execution role,
which Lambda obtains with STS AssumeRole and puts in the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); the event source
mapping's poller and the on-failure destination use the same role:
https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html
The data plane does the same against the emulator's STS, so the emulator's
IAM enforcer (:mod:`localcloud.iam_enforcer`) knows every call's role. The
AssumeRole calls themselves, and everything else the local cloud does for its
own bookkeeping (provisioner, monitor, gateway), use the administrator key.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from .model import ProvisionedStack

log = logging.getLogger(__name__)

#: The account administrator's key: the provisioner, admin CLI, fleet, monitor and tests use it.
ADMIN_KEY = "testing"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def env(self) -> dict[str, str]:
        """What Lambda puts in a function's environment."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token}

    def client_kwargs(self) -> dict[str, str]:
        return {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key,
                "aws_session_token": self.session_token}


ADMIN = Credentials(ADMIN_KEY, ADMIN_KEY, ADMIN_KEY)


def role_of(stack: ProvisionedStack, function: str) -> str | None:
    """The execution role ARN the program declared for ``function`` (physical name)."""
    for resource in stack.resources:
        if resource.type == "aws:lambda/function:Function" and resource.id == function:
            role = resource.state.get("role") or resource.inputs.get("role")
            return str(role) if role else None
    return None


def assume_role(endpoint_url: str, region: str, role_arn: str, session_name: str) -> Credentials:
    """STS AssumeRole against the emulator (as the administrator); the keys name the role."""
    import boto3

    sts = boto3.client("sts", endpoint_url=endpoint_url, region_name=region, **ADMIN.client_kwargs())
    # Session names are 2-64 characters of [\w+=,.@-]; function names fit.
    found = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
    return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])


class FunctionIdentities:
    """Each function's role credentials, assumed once on first use and shared by its workers and poller.

    A function without a declared role (only hand-built stacks in tests have
    none; the Pulumi provider requires ``role``) runs as the administrator, and
    a warning names it.
    """

    def __init__(self, stack: ProvisionedStack) -> None:
        self._stack = stack
        self._cache: dict[str, Credentials] = {}
        self._lock = threading.Lock()

    def credentials(self, function: str) -> Credentials:
        with self._lock:
            if function in self._cache:
                return self._cache[function]
        role = role_of(self._stack, function)
        if role is None:
            log.warning("function %s declares no execution role: it runs as the administrator, unchecked", function)
            creds = ADMIN
        else:
            creds = assume_role(self._stack.endpoint_url, self._stack.region, role, function)
        with self._lock:
            return self._cache.setdefault(function, creds)

    def env(self, function: str) -> dict[str, str]:
        return self.credentials(function).env()


def role_client(service: str, endpoint_url: str, region: str, credentials: Credentials | None = None) -> Any:
    """A boto3 client bound to the emulator under ``credentials`` (administrator if None);
    same retries and timeouts as the monitor's clients."""
    import boto3
    from botocore.config import Config

    creds = credentials or ADMIN
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **creds.client_kwargs(),
                        config=Config(retries={"max_attempts": 2, "mode": "standard"},
                                      connect_timeout=5, read_timeout=30))
