"""Admin keys: issued from the shell, shown once, stored as argon2id hashes.

Format: ``ha_<key id>_<secret>``, the account keys' shape (see
:mod:`herald.accounts`) with its own prefix, so neither kind can be taken
for the other: an admin key is malformed as an account key and the admin
API refuses an account key by its prefix alone (403, before any hashing).

Verification
------------
Every request reads the key's record (one indexed row): a key revoked by
any process (``herald admin keys revoke``, another node) is refused from the
next request on. The argon2 verification is skipped for a key that verified
within :data:`VERIFIED_TTL` seconds *and* whose record is unchanged (same
hash, not revoked): the cache is keyed by HMAC-SHA256 of the presented key
under a per-process random key, as the accounts' cache is, and holds no
secret. Hashing runs on one dedicated thread: admin requests are few, and a
flood of wrong keys then takes one core and 64 MiB at most (the API also
throttles failed logins per address, as it does for account keys).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import string
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from herald.accounts import InvalidCredentials
from herald.store import AdminKeyRecord, AdminScope, AdminStore

__all__ = [
    "ADMIN_KEY_PREFIX",
    "VERIFIED_TTL",
    "AdminKeys",
    "AdminPrincipal",
    "IssuedAdminKey",
    "check_key_name",
    "looks_like_admin_key",
]

T = TypeVar("T")

ADMIN_KEY_PREFIX: Final = "ha"
KEY_ID_LENGTH: Final = 12
SECRET_LENGTH: Final = 40
MAX_ADMIN_KEY_LENGTH: Final = len(ADMIN_KEY_PREFIX) + 1 + KEY_ID_LENGTH + 1 + SECRET_LENGTH
MAX_KEY_NAME_LENGTH: Final = 64
#: Seconds a verified admin key skips argon2 (its record is still read every time).
VERIFIED_TTL: Final = 300.0
#: Verified admin keys remembered at most.
MAX_VERIFIED: Final = 1000

_BASE62 = string.ascii_letters + string.digits
_ID_ALPHABET = string.ascii_lowercase + string.digits
_KEY_RE = re.compile(
    rf"{ADMIN_KEY_PREFIX}_([a-z0-9]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9]{{{SECRET_LENGTH}}})"
)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """Who a verified admin key speaks for."""

    name: str
    key_id: str
    scope: AdminScope

    @property
    def actor(self) -> str:
        """How the audit log names it."""
        return f"key:{self.name}"


@dataclass(frozen=True, slots=True)
class IssuedAdminKey:
    """A new admin key, to show once. ``repr`` never shows ``key``."""

    name: str
    key_id: str
    scope: AdminScope
    key: str = field(repr=False)


def check_key_name(name: str) -> str:
    """An admin key's name (who the audit log says acted); ``ValueError`` if malformed."""
    if len(name) > MAX_KEY_NAME_LENGTH or not _NAME_RE.fullmatch(name):
        raise ValueError(f"an admin key name is 1..{MAX_KEY_NAME_LENGTH} letters, digits,"
                         " '.', '_', '@' or '-', starting with a letter or digit")
    return name


def looks_like_admin_key(presented: str) -> bool:
    return presented.startswith(ADMIN_KEY_PREFIX + "_")


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class AdminKeys:
    """Issues, lists, revokes and verifies admin keys. Close with :meth:`close`."""

    def __init__(self, store: AdminStore, *, hasher: PasswordHasher | None = None) -> None:
        self._store = store
        self._hasher = hasher or PasswordHasher()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="herald-admin-argon2")
        self._mac_key = os.urandom(32)
        self._verified: dict[bytes, tuple[str, float]] = {}  # digest -> (key hash, expiry)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def issue(self, name: str, scope: AdminScope, now: float) -> IssuedAdminKey:
        """A new key named ``name``. Raises ``ValueError`` (name),
        :class:`~herald.store.CredentialExists` (an active key has that name)."""
        check_key_name(name)
        key_id = _random(_ID_ALPHABET, KEY_ID_LENGTH)
        secret = _random(_BASE62, SECRET_LENGTH)
        key_hash = await self._run(self._hasher.hash, secret)
        await self._store.add_admin_key(AdminKeyRecord(key_id, name, scope, key_hash, now))
        return IssuedAdminKey(name, key_id, scope, f"{ADMIN_KEY_PREFIX}_{key_id}_{secret}")

    async def active(self, name: str) -> AdminKeyRecord | None:
        """The key named ``name`` that is not revoked, if any."""
        for record in await self._store.list_admin_keys():
            if record.name == name and not record.revoked:
                return record
        return None

    async def principal(self, key_id: str) -> AdminPrincipal:
        """The principal of an admin key verified earlier (a console session names
        its key id): read again, so a key revoked since is refused. Raises
        :class:`~herald.accounts.InvalidCredentials`."""
        record = await self._store.get_admin_key(key_id)
        if record is None or record.revoked:
            raise InvalidCredentials(f"admin key {key_id} is unknown or revoked")
        return AdminPrincipal(record.name, record.key_id, record.scope)

    def _verify_blocking(self, encoded: str, secret: str) -> bool:
        try:
            return self._hasher.verify(encoded, secret)
        except (VerificationError, InvalidHashError):
            return False

    async def authenticate(self, presented: str, now: float) -> AdminPrincipal:
        """The admin key's principal. Raises :class:`~herald.accounts.InvalidCredentials`
        (answer 401; its ``reason`` names the key id, never the secret)."""
        match = _KEY_RE.fullmatch(presented) if len(presented) <= MAX_ADMIN_KEY_LENGTH else None
        if match is None:
            raise InvalidCredentials("malformed admin key")
        key_id, secret = match[1], match[2]
        record = await self._store.get_admin_key(key_id)
        if record is None:
            raise InvalidCredentials(f"unknown admin key {key_id}")
        if record.revoked:
            raise InvalidCredentials(f"admin key {key_id} ({record.name}) is revoked")
        digest = hmac.new(self._mac_key, presented.encode(), hashlib.sha256).digest()
        cached = self._verified.get(digest)
        if cached is None or cached[0] != record.key_hash or cached[1] <= now:
            if not await self._run(self._verify_blocking, record.key_hash, secret):
                raise InvalidCredentials(f"wrong secret for admin key {key_id}")
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified[digest] = (record.key_hash, now + VERIFIED_TTL)
        return AdminPrincipal(record.name, record.key_id, record.scope)
