"""Registers the fixtures of handlers_support (a uniquely named module, so tests can import its helpers)."""
from handlers_support import _aws_env, aws, dynamodb, ingest_config, kinesis, processor_config, vtime  # noqa: F401 - fixtures pytest finds by name in this module
