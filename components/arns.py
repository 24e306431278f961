"""Small helpers for ARN-shaped strings, shared by components."""
from __future__ import annotations


def arn_part(arn: str, index: int) -> str:
    """Field ``index`` of ``arn:partition:service:region:account:resource``."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[index]


def arn_partition(arn: str) -> str:
    return arn_part(arn, 1)


def arn_account(arn: str) -> str:
    return arn_part(arn, 4)


def with_children(arn: str) -> str:
    """``arn`` plus ``:*`` - CloudWatch Logs log-stream ARNs live under their group's ARN."""
    return arn if arn.endswith(":*") else f"{arn}:*"
