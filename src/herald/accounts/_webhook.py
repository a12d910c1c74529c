"""Webhook signing secrets, derived rather than stored.

herald must *use* an account's webhook secret (to sign each delivery), so it
cannot keep only a hash of it as it does for API keys and SMPP passwords.
Instead of storing it, it derives it when needed::

    secret = "whsec_" + base64url(HMAC-SHA256(master key, label | account id | version))

The database keeps only ``webhook_secret_version`` (bump it to rotate). The
master key is 32 random bytes in ``<data-dir>/master.key`` (mode 0600), made
on first use. A copy of the database alone (a backup, a dump, a PostgreSQL
replica) therefore reveals no secret; the master key must be backed up with
the database, or every webhook secret changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

__all__ = ["MASTER_KEY_FILENAME", "MASTER_KEY_LENGTH", "load_master_key", "webhook_secret"]

MASTER_KEY_FILENAME = "master.key"
MASTER_KEY_LENGTH = 32
_LABEL = b"herald webhook secret v1\x00"


def load_master_key(data_dir: Path, *, create: bool = True) -> bytes:
    """Read ``<data_dir>/master.key``, making it (mode 0600) if missing and ``create``.

    Raises :class:`FileNotFoundError` (missing and not ``create``) and
    :class:`ValueError` (the file is not a master key).
    """
    path = data_dir / MASTER_KEY_FILENAME
    if create and not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            try:
                os.write(fd, os.urandom(MASTER_KEY_LENGTH))
                os.fsync(fd)
            finally:
                os.close(fd)
    key = path.read_bytes()
    if len(key) != MASTER_KEY_LENGTH:
        raise ValueError(f"{path} is not a herald master key ({len(key)} bytes)")
    return key


def webhook_secret(master_key: bytes, account_id: int, version: int) -> str:
    """The signing secret of an account's webhooks, for its current ``version``."""
    message = _LABEL + account_id.to_bytes(8, "big") + version.to_bytes(4, "big")
    digest = hmac.new(master_key, message, hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
