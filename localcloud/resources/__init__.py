"""Type token -> creator, one small module per AWS service.

Anything not listed is an error naming the token and the logical name: a
resource the local cloud silently skipped would make the local pipeline lie
about what the program deploys.
"""
from __future__ import annotations

from . import apigateway, cloudwatch, dynamodb, iam, kinesis, kms, lambda_, logs, providers, sns, sqs
from .base import Context, Creator, ProvisionError, Request

CREATORS: dict[str, Creator] = {}
for _module in (providers, kinesis, dynamodb, iam, logs, kms, sqs, sns, lambda_, apigateway, cloudwatch):
    CREATORS.update(_module.CREATORS)

__all__ = ["CREATORS", "Context", "Creator", "ProvisionError", "Request"]
