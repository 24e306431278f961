"""Customer managed KMS keys and aliases (moto stores them; nothing is encrypted)."""
from __future__ import annotations

from typing import Any

from .base import Context, ProvisionError, Request, as_bool, physical_name, tag_list


def create_key(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    kms = ctx.client("kms")
    i = req.inputs
    args: dict[str, Any] = {
        "KeyUsage": i.get("keyUsage") or "ENCRYPT_DECRYPT",
        "KeySpec": i.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT",
    }
    if i.get("description"):
        args["Description"] = i["description"]
    if i.get("policy"):
        args["Policy"] = i["policy"]
    tags = ctx.tags(req)
    if tags:
        args["Tags"] = tag_list(tags, "TagKey", "TagValue")
    meta = kms.create_key(**args)["KeyMetadata"]
    if as_bool(i.get("enableKeyRotation")):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return meta["KeyId"], {**i, "arn": meta["Arn"], "keyId": meta["KeyId"], "tagsAll": tags}


def create_alias(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    i = req.inputs
    target = i.get("targetKeyId")
    if not target:
        raise ProvisionError(f"kms alias {req.name!r}: targetKeyId is required")
    name = physical_name(req)
    if not name.startswith("alias/"):
        raise ProvisionError(f"kms alias {req.name!r}: name must start with 'alias/' (got {name!r})")
    ctx.client("kms").create_alias(AliasName=name, TargetKeyId=target)
    return name, {**i, "name": name, "arn": ctx.arn("kms", name), "targetKeyArn": target}


CREATORS = {"aws:kms/key:Key": create_key, "aws:kms/alias:Alias": create_alias}
