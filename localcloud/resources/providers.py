"""pulumi:providers:aws -> nothing to create; its inputs (defaultTags, region) are kept for the others."""
from __future__ import annotations

import uuid
from typing import Any

from .base import Context, ProvisionError, Request


def create_aws_provider(ctx: Context, req: Request) -> tuple[str, dict[str, Any]]:
    region = req.inputs.get("region")
    if region and region != ctx.region:
        raise ProvisionError(
            f"provider {req.name!r} targets region {region!r}, but the local cloud was started for {ctx.region!r}"
        )
    provider_id = str(uuid.uuid4())
    with ctx.lock:
        ctx.providers[provider_id] = dict(req.inputs)
    return provider_id, dict(req.inputs)


CREATORS = {"pulumi:providers:aws": create_aws_provider}
