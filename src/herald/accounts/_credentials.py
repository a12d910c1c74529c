"""Credential formats: API keys, SMPP passwords, names, and the errors about them.

API key: ``hk_<key id>_<secret>``. The prefix makes a leaked key easy to
recognise (secret scanners, log scrubbers); the key id (12 characters, stored
in clear, indexed) finds the one stored hash to verify against, so a
verification costs one argon2 computation whatever the number of keys; the
secret is 40 characters of base62 from :mod:`secrets` (about 238 bits).

SMPP password: 8 characters of base62 by default (about 47.6 bits). SMPP 3.4
§5.2.2 bounds ``password`` to 9 octets including the NUL, and widely used
clients enforce it: smpplib 2.2.4 silently cuts a password to 8 characters
and then fails to bind. Interoperating with the customer's client matters
more here than length, and an online guess costs an argon2 verification and
a TCP bind; operators who know their customers' clients can issue longer ones
(``password_length`` up to :data:`MAX_SMPP_PASSWORD_LENGTH`), and herald
verifies any length up to that limit.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "API_KEY_PREFIX",
    "DEFAULT_SMPP_PASSWORD_LENGTH",
    "MAX_API_KEY_LENGTH",
    "MAX_SMPP_PASSWORD_LENGTH",
    "MAX_SYSTEM_ID_LENGTH",
    "AccountsError",
    "InvalidCredentials",
    "InvalidName",
    "IssuedApiKey",
    "IssuedSmppPassword",
    "Principal",
    "SmppBindStatus",
    "check_account_name",
    "check_system_id",
    "new_api_key",
    "new_smpp_password",
    "parse_api_key",
]

API_KEY_PREFIX = "hk"
KEY_ID_LENGTH = 12
SECRET_LENGTH = 40
#: The whole key; anything longer is refused before any work is done.
MAX_API_KEY_LENGTH = len(API_KEY_PREFIX) + 1 + KEY_ID_LENGTH + 1 + SECRET_LENGTH
#: SMPP 3.4 §5.2.2 allows 8; see the module docstring for why 8 is the default.
DEFAULT_SMPP_PASSWORD_LENGTH = 8
#: Longest SMPP password herald issues or verifies (bounds the hashing work a
#: bind can ask for; real providers use up to 16-32).
MAX_SMPP_PASSWORD_LENGTH = 64
#: SMPP 3.4 §5.2.1: system_id is a C-string of at most 16 octets with the NUL.
MAX_SYSTEM_ID_LENGTH = 15
MAX_ACCOUNT_NAME_LENGTH = 64

_BASE62 = string.ascii_letters + string.digits
_KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
_API_KEY_RE = re.compile(
    rf"{API_KEY_PREFIX}_([a-z0-9]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9]{{{SECRET_LENGTH}}})"
)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SYSTEM_ID_RE = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space


class SmppBindStatus(IntEnum):
    """SMPP 3.4 §5.1.3 command_status values a failed bind is answered with."""

    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F


class AccountsError(Exception):
    """Base of the errors of :mod:`herald.accounts`."""

    http_status = 400
    smpp_status = SmppBindStatus.ESME_RBINDFAIL


class InvalidCredentials(AccountsError):
    """The credentials do not open any account. Answer 401 / the bind's ``smpp_status``.

    One type for every reason (malformed, unknown, wrong secret, revoked), so
    callers answer them alike; ``reason`` is for the log line, which names
    the key id or system_id and never the secret.
    """

    http_status = 401

    def __init__(self, reason: str, smpp_status: SmppBindStatus = SmppBindStatus.ESME_RINVPASWD):
        super().__init__(reason)
        self.reason = reason
        self.smpp_status = smpp_status


class InvalidName(AccountsError, ValueError):
    """An account name or system_id breaks its format (operator input; 400)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified credential speaks for: the account, and which credential."""

    account_id: int
    credential: str  # the API key id or the SMPP system_id
    issued_at: float = 0.0  # when that credential was issued (an SMPP password: its reset)


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new API key, to show its owner once. ``repr`` never shows ``key``."""

    key_id: str
    key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class IssuedSmppPassword:
    """A new SMPP login, to show its owner once. ``repr`` never shows ``password``."""

    system_id: str
    password: str = field(repr=False)


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_api_key() -> tuple[IssuedApiKey, str]:
    """A fresh key and its secret part (the part to hash)."""
    key_id = _random(_KEY_ID_ALPHABET, KEY_ID_LENGTH)
    secret = _random(_BASE62, SECRET_LENGTH)
    return IssuedApiKey(key_id, f"{API_KEY_PREFIX}_{key_id}_{secret}"), secret


def parse_api_key(presented: str) -> tuple[str, str]:
    """Split a presented key into (key id, secret); :class:`InvalidCredentials` if malformed."""
    match = _API_KEY_RE.fullmatch(presented) if len(presented) <= MAX_API_KEY_LENGTH else None
    if match is None:
        raise InvalidCredentials("malformed API key")
    return match[1], match[2]


def new_smpp_password(length: int = DEFAULT_SMPP_PASSWORD_LENGTH) -> str:
    if not DEFAULT_SMPP_PASSWORD_LENGTH <= length <= MAX_SMPP_PASSWORD_LENGTH:
        raise InvalidName(
            f"password length must be {DEFAULT_SMPP_PASSWORD_LENGTH}..{MAX_SMPP_PASSWORD_LENGTH}"
        )
    return _random(_BASE62, length)


def check_account_name(name: str) -> str:
    if len(name) > MAX_ACCOUNT_NAME_LENGTH or not _NAME_RE.fullmatch(name):
        raise InvalidName(
            "an account name is 1..64 letters, digits, '.', '_' or '-', starting with"
            " a letter or digit"
        )
    return name


def check_system_id(system_id: str) -> str:
    if len(system_id) > MAX_SYSTEM_ID_LENGTH or not _SYSTEM_ID_RE.fullmatch(system_id):
        raise InvalidName(
            f"a system_id is 1..{MAX_SYSTEM_ID_LENGTH} printable ASCII characters without spaces"
        )
    return system_id
