"""IAM roles, inline policies and policy attachments (stored by moto, never enforced)."""
from __future__ import annotations

import json
from typing import Any

from .base import Context, ProvisionError, Request, as_int, physical_name, tag_list


def _policy_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def create_role(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    iam = ctx.client("iam")
    i = req.inputs
    name = physical_name(req, max_len=64)
    if not i.get("assumeRolePolicy"):
        raise ProvisionError(f"role {req.name!r}: assumeRolePolicy is required")
    args: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": _policy_text(i["assumeRolePolicy"]),
        "Path": i.get("path") or "/",
    }
    if i.get("description"):
        args["Description"] = i["description"]
    if i.get("maxSessionDuration"):
        args["MaxSessionDuration"] = as_int(i["maxSessionDuration"])
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tag_list(tags)
    role = iam.create_role(**args)["Role"]
    for inline in i.get("inlinePolicies") or []:
        if inline.get("name") and inline.get("policy"):
            iam.put_role_policy(RoleName=name, PolicyName=inline["name"], PolicyDocument=_policy_text(inline["policy"]))
    for policy_arn in i.get("managedPolicyArns") or []:
        _attach(ctx, req, name, policy_arn)
    # The role's id in Pulumi is its name (RolePolicy.role takes role.id).
    return name, {**i, "name": name, "arn": role["Arn"], "uniqueId": role["RoleId"], "tagsAll": tags}


def _role_name(value: str) -> str:
    """RolePolicy/RolePolicyAttachment accept a role name or ARN."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def create_role_policy(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    role = _role_name(str(i.get("role") or ""))
    if not role or not i.get("policy"):
        raise ProvisionError(f"role policy {req.name!r}: role and policy are required")
    name = physical_name(req, max_len=128)
    ctx.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=_policy_text(i["policy"]))
    return f"{role}:{name}", {**i, "name": name, "role": role}


def create_policy(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    if not i.get("policy"):
        raise ProvisionError(f"policy {req.name!r}: policy is required")
    name = physical_name(req, max_len=128)
    args: dict[str, Any] = {"PolicyName": name, "PolicyDocument": _policy_text(i["policy"]), "Path": i.get("path") or "/"}
    if i.get("description"):
        args["Description"] = i["description"]
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tag_list(tags)
    policy = ctx.client("iam").create_policy(**args)["Policy"]
    # A managed policy's id in Pulumi is its ARN.
    return policy["Arn"], {**i, "name": name, "arn": policy["Arn"], "policyId": policy["PolicyId"], "tagsAll": tags}


def create_role_policy_attachment(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    role = _role_name(str(i.get("role") or ""))
    policy_arn = str(i.get("policyArn") or "")
    if not role or not policy_arn:
        raise ProvisionError(f"role policy attachment {req.name!r}: role and policyArn are required")
    _attach(ctx, req, role, policy_arn)
    return f"{role}-{policy_arn}", {**i, "role": role}


def _attach(ctx: Context, req: Request, role: str, policy_arn: str) -> None:
    from botocore.exceptions import ClientError

    try:
        ctx.client("iam").attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity" and policy_arn.startswith("arn:aws:iam::aws:policy/"):
            raise ProvisionError(
                f"{req.type} {req.name!r}: AWS managed policy {policy_arn} is unknown to the emulator; "
                "start it with Emulator(load_managed_policies=True)"
            ) from exc
        raise


CREATORS = {
    "aws:iam/role:Role": create_role,
    "aws:iam/rolePolicy:RolePolicy": create_role_policy,
    "aws:iam/policy:Policy": create_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": create_role_policy_attachment,
}
