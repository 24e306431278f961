"""Typed, validated stack settings: ``load_settings()`` under Pulumi, ``parse_settings()`` anywhere."""
from .errors import SettingsError
from .loader import load_settings
from .model import (
    AlarmOverride,
    AlarmSettings,
    ApiSettings,
    FunctionSettings,
    FunctionsSettings,
    IngestLimits,
    ProcessorMappingSettings,
    Settings,
    StorageSettings,
    StreamSettings,
)
from .parse import LOG_RETENTION_DAYS, parse_settings

__all__ = [
    "AlarmOverride", "AlarmSettings", "ApiSettings", "FunctionSettings", "FunctionsSettings",
    "IngestLimits", "LOG_RETENTION_DAYS", "ProcessorMappingSettings", "Settings", "SettingsError",
    "StorageSettings", "StreamSettings", "load_settings", "parse_settings",
]
