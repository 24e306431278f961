"""Shared Lambda code for the telemetry pipeline.

Importable both as ``telemetry`` (inside the Lambda archive, whose root is
``handlers/``) and as ``handlers.telemetry`` (admin CLI, tests), which is why
every import inside this package is relative.
"""
