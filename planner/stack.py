"""A stack's validated settings, read offline from Pulumi.yaml + Pulumi.<stack>.yaml.

The same files and rules the program uses: ``localcloud.stack_config`` merges them as the
Pulumi CLI would, ``settings.parse_settings`` validates them.
"""
from __future__ import annotations

from pathlib import Path

from localcloud.stack_config import load_stack_config
from settings import Settings, parse_settings
from settings.defaults import PROJECT

REPO_ROOT = Path(__file__).resolve().parent.parent


def load_stack_settings(stack: str, project_dir: Path = REPO_ROOT) -> Settings:
    """Raises ``StackConfigError`` (unknown stack, bad YAML) or ``SettingsError`` (invalid values)."""
    config = load_stack_config(Path(project_dir), stack)
    prefix = f"{PROJECT}:"
    raw = {key[len(prefix):]: value for key, value in config.values.items() if key.startswith(prefix)}
    return parse_settings(raw, config.region or "")
