"""IAM identity-policy evaluation: does a set of policy documents allow an action on a resource?

The subset of IAM's evaluation logic the local cloud enforces, kept pure so it
can be tested without an emulator:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- default deny; an Allow statement that matches grants; an explicit Deny that
  matches wins over every Allow;
- ``Action``/``NotAction`` and ``Resource``/``NotResource`` (a string or a list);
- wildcards ``*`` (any run of characters) and ``?`` (one character) in actions,
  matched case-insensitively, and in resource ARNs, matched case-sensitively.
  A ``*`` in a resource may span ``:`` and ``/``, which is how
  ``arn:...:log-group:NAME:*`` grants the group's log streams:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- ``Condition`` blocks are not evaluated. They fail closed: an Allow with a
  Condition grants nothing, a Deny with a Condition always applies. The program
  declares no conditions; the documentation says so.
Not modelled: resource-based policies, permission boundaries, session
policies, SCPs, KMS key policies, policy variables (``${aws:username}``).
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


class PolicyError(ValueError):
    """A policy document the evaluator cannot read; the message says what is wrong."""


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, case_insensitive: bool) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if case_insensitive else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, case_insensitive: bool = False) -> bool:
    """IAM's glob: ``*`` any run of characters (also none), ``?`` exactly one; the rest literal."""
    return _pattern(pattern, case_insensitive).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Actions (``service:Operation``) compare case-insensitively, wildcards included."""
    return wildcard_match(pattern, action, case_insensitive=True)


def resource_matches(pattern: str, resource: str) -> bool:
    """Resource ARNs compare case-sensitively; ``*`` alone matches every resource."""
    return pattern == "*" or wildcard_match(pattern, resource)


def _strings(value: Any, field: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{where}: {field} must be a string or a non-empty list of strings, not {value!r}")


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    has_condition: bool
    sid: str = ""

    @classmethod
    def parse(cls, raw: Any, where: str) -> "Statement":
        if not isinstance(raw, dict):
            raise PolicyError(f"{where}: a statement must be an object")
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be 'Allow' or 'Deny', not {effect!r}")
        if ("Action" in raw) == ("NotAction" in raw):
            raise PolicyError(f"{where}: give exactly one of Action and NotAction")
        if ("Resource" in raw) == ("NotResource" in raw):
            raise PolicyError(f"{where}: give exactly one of Resource and NotResource")
        return cls(
            effect=effect,
            actions=_strings(raw["Action"], "Action", where) if "Action" in raw else (),
            not_actions=_strings(raw["NotAction"], "NotAction", where) if "NotAction" in raw else (),
            resources=_strings(raw["Resource"], "Resource", where) if "Resource" in raw else (),
            not_resources=_strings(raw["NotResource"], "NotResource", where) if "NotResource" in raw else (),
            has_condition=bool(raw.get("Condition")),
            sid=str(raw.get("Sid") or ""),
        )

    def covers(self, action: str, resource: str) -> bool:
        """Action and resource both match (Condition aside)."""
        if self.actions:
            if not any(action_matches(p, action) for p in self.actions):
                return False
        elif any(action_matches(p, action) for p in self.not_actions):
            return False
        if self.resources:
            return any(resource_matches(p, resource) for p in self.resources)
        return not any(resource_matches(p, resource) for p in self.not_resources)


@functools.lru_cache(maxsize=256)
def parse_policy(document: str, name: str = "policy") -> tuple[Statement, ...]:
    """Statements of a JSON policy document (cached by its text: documents are immutable strings)."""
    try:
        raw = json.loads(document)
    except ValueError as exc:
        raise PolicyError(f"{name}: not JSON: {exc}") from exc
    if not isinstance(raw, dict) or "Statement" not in raw:
        raise PolicyError(f"{name}: a policy document is an object with a Statement")
    statements = raw["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError(f"{name}: Statement must be an object or a list")
    return tuple(Statement.parse(s, f"{name} statement {i}") for i, s in enumerate(statements))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool
    reason: str  # for AccessDenied messages, in AWS's wording

    @property
    def denied(self) -> bool:
        return not self.allowed


def evaluate(policies: Iterable[tuple[str, Sequence[Statement]]], action: str, resource: str) -> Decision:
    """Decide ``action`` on ``resource`` under named, parsed policies: explicit Deny > Allow > default deny."""
    allowed = False
    for _name, statements in policies:
        for statement in statements:
            if not statement.covers(action, resource):
                continue
            if statement.effect == "Deny":
                # A Deny with a condition we cannot evaluate applies: fail closed.
                return Decision(False, True, "with an explicit deny in an identity-based policy")
            if not statement.has_condition:
                allowed = True
    if allowed:
        return Decision(True, False, "")
    return Decision(False, False, f"because no identity-based policy allows the {action} action")
