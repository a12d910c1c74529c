"""Codes and their keyed hashes (see the package docstring for why keyed)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

__all__ = [
    "CODE_KEY_LABEL", "SALT_OCTETS", "code_hash", "code_key", "code_matches", "new_code",
    "new_salt",
]

#: Separates the code key from every other key derived from the master key.
CODE_KEY_LABEL: Final = b"herald verify code key v1"
SALT_OCTETS: Final = 16


def code_key(master_key: bytes) -> bytes:
    """The key of the code hashes, derived from ``<data-dir>/master.key``."""
    return hmac.new(master_key, CODE_KEY_LABEL, hashlib.sha256).digest()


def new_code(length: int) -> str:
    """``length`` decimal digits, each uniform (:func:`secrets.randbelow`)."""
    return "".join(str(secrets.randbelow(10)) for _ in range(length))


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_OCTETS)


def code_hash(key: bytes, salt: bytes, code: str) -> bytes:
    return hmac.new(key, salt + code.encode("ascii"), hashlib.sha256).digest()


def code_matches(key: bytes, salt: bytes, stored: bytes, code: str) -> bool:
    """Whether ``code`` is the one hashed as ``stored``, in constant time."""
    return hmac.compare_digest(code_hash(key, salt, code), stored)
