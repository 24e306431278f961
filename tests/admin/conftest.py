"""Registers the fixtures of admin_support (uniquely named so tests can import its helpers)."""
from admin_support import _admin_env, ddb  # noqa: F401 - fixtures pytest finds by name in this module
from replay_support import stack  # noqa: F401 - a fixture pytest finds by name in this module
