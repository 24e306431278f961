"""Function configuration from environment variables, read and checked once per container.

A misconfigured function should fail at init with a message naming the
variable, not reject every request with a confusing 400.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(ValueError):
    """An environment variable is missing or malformed."""


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is required")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"environment variable {name}={value} is outside [{minimum}, {maximum}]")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"environment variable {name}={value} is outside [{minimum}, {maximum}]")
    return value


# The schema's readings.maxItems: the hard ceiling a deployment may lower but not raise.
SCHEMA_MAX_READINGS = 1000


@dataclass(frozen=True)
class IngestConfig:
    stream_name: str
    max_readings: int = 500
    max_body_bytes: int = 262_144
    max_age_s: int = 7 * 86_400
    max_future_skew_s: int = 300
    put_budget_s: float = 3.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IngestConfig:
        env = os.environ if env is None else env
        return cls(
            stream_name=_require(env, "STREAM_NAME"),
            max_readings=_int(env, "MAX_READINGS_PER_REQUEST", cls.max_readings, 1, SCHEMA_MAX_READINGS),
            # 10 MB: the HTTP API payload quota.
            max_body_bytes=_int(env, "MAX_BODY_BYTES", cls.max_body_bytes, 1, 10 * 1024 * 1024),
            max_age_s=_int(env, "MAX_READING_AGE_SECONDS", cls.max_age_s, 1, 365 * 86_400),
            max_future_skew_s=_int(env, "MAX_FUTURE_SKEW_SECONDS", cls.max_future_skew_s, 0, 86_400),
            # 30 s is the HTTP API integration timeout; a budget above it could never be used.
            put_budget_s=_float(env, "PUT_BUDGET_SECONDS", cls.put_budget_s, 0.0, 29.0),
        )


@dataclass(frozen=True)
class ProcessorConfig:
    readings_table: str
    devices_table: str
    ttl_days: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProcessorConfig:
        env = os.environ if env is None else env
        return cls(
            readings_table=_require(env, "READINGS_TABLE"),
            devices_table=_require(env, "DEVICES_TABLE"),
            ttl_days=_int(env, "READINGS_TTL_DAYS", cls.ttl_days, 1, 3650),
        )


def _quota(env: Mapping[str, str], name: str) -> int | None:
    """A daily reading quota: a whole number >= 0, or "unlimited" (None). Required: the
    stack always sets it, and a missing one must not quietly mean "no limit"."""
    raw = _require(env, name)
    if raw.lower() == "unlimited":
        return None
    if not raw.isdigit():
        raise ConfigError(f"environment variable {name}={raw!r} is neither a whole number >= 0 nor 'unlimited'")
    return int(raw)


@dataclass(frozen=True)
class AuthorizerConfig:
    devices_table: str
    daily_reading_quota: int | None = None  # the stack default; None: unlimited

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthorizerConfig:
        env = os.environ if env is None else env
        return cls(
            devices_table=_require(env, "DEVICES_TABLE"),
            daily_reading_quota=_quota(env, "DEVICE_DAILY_READING_QUOTA"),
        )
