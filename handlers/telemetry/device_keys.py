"""Device identity: key generation, hashing and the devices-table attribute names.

Only the SHA-256 of a key is ever stored, so a leaked table does not leak
credentials. Keys are 256-bit random tokens, which is why a plain (unsalted)
SHA-256 is enough: there is nothing to brute-force with a dictionary.
Shared by the authorizer and the admin CLI so both agree byte for byte.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# Devices table attribute names (docs/architecture.md, "Devices table").
ATTR_DEVICE_ID = "deviceId"
ATTR_KEY_HASH = "keyHash"
ATTR_STATUS = "status"
ATTR_CREATED_AT = "createdAt"
ATTR_ROTATED_AT = "rotatedAt"
ATTR_LAST_SEEN_AT = "lastSeenAt"
ATTR_LATEST_TS = "latestTs"
ATTR_LATEST_SEQ = "latestSeq"
ATTR_LATEST = "latest"

STATUS_ACTIVE = "active"
STATUS_REVOKED = "revoked"

# Same pattern as the "deviceId" property of telemetry.schema.json; also a valid
# Kinesis partition key (1-256 characters).
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

KEY_BYTES = 32


def generate_key() -> str:
    """A new URL-safe device key with 256 bits of entropy."""
    return secrets.token_urlsafe(KEY_BYTES)


def generate_device_id() -> str:
    """A new random device id, short enough to type, valid under DEVICE_ID_PATTERN."""
    return "dev-" + secrets.token_hex(8)


def hash_key(key: str) -> str:
    """Hex SHA-256 of the key: the only form in which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    """Compare in constant time so response timing reveals nothing about the hash."""
    return hmac.compare_digest(hash_key(key).encode("ascii"), stored_hash.encode("ascii", "replace"))


def is_valid_device_id(device_id: str) -> bool:
    return isinstance(device_id, str) and DEVICE_ID_PATTERN.fullmatch(device_id) is not None
