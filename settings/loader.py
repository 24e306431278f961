"""Read this stack's Pulumi config and hand it to ``parse_settings``.

The only settings module that touches Pulumi, kept thin so validation stays
testable without a Pulumi runtime.
"""
from __future__ import annotations

import json

import pulumi
from pulumi.runtime import config as pulumi_config

from .defaults import DEFAULTS, PROJECT
from .model import Settings
from .parse import parse_settings


def _project_config() -> dict[str, str]:
    """All ``iot-ingest:*`` keys set for this stack, unknown ones included (so typos are reported)."""
    prefix = f"{PROJECT}:"
    raw: dict[str, str] = {}
    # The language host sets config through set_all_config (the CONFIG context
    # variable); mocks and tools pass it in the PULUMI_CONFIG environment variable.
    sources = (pulumi.runtime.get_config_env(), pulumi_config.CONFIG.get())
    for source in sources:
        for full_key, value in source.items():
            if full_key.startswith(prefix):
                raw[full_key[len(prefix):]] = value if isinstance(value, str) else json.dumps(value)
    config = pulumi.Config(PROJECT)
    for key in DEFAULTS:  # also picks up values set through other runtime channels
        value = config.get(key)
        if value is not None:
            raw[key] = value
    return raw


def load_settings() -> Settings:
    """Settings for the running stack; raises ``SettingsError`` before any resource exists."""
    region = pulumi.Config("aws").get("region") or ""
    return parse_settings(_project_config(), region)
