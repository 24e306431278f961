"""Registers the fixtures of admin_support (uniquely named so tests can import its helpers)."""
from admin_support import _admin_env, ddb  # noqa: F401
from replay_support import stack  # noqa: F401,E402
