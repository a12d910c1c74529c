"""The Verify API's records: verifications and their sends.

A verification holds a one-time code only as a keyed hash (``code_hash``,
HMAC-SHA256 over ``salt`` and the code; the key never reaches the store: see
:mod:`herald.verify`). Its status as stored is ``pending`` until a check
approves it or finds it expired; readers also treat a pending verification
past ``expires_at`` as expired (:meth:`Verification.status_at`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Final

from herald.store._errors import Conflict, InvalidRecord, StoreError

__all__ = [
    "MAX_CLIENT_HINT_LENGTH",
    "SendLimitExceeded",
    "Verification",
    "VerificationSend",
    "VerificationStatus",
    "checked",
    "require_pending",
    "resent",
]

#: A client hint (ip, device_id, platform, user_id) is at most this long.
MAX_CLIENT_HINT_LENGTH: Final = 128
#: A code hash and its salt: HMAC-SHA256 output, and 16 random octets.
_HASH_OCTETS: Final = 32
_SALT_OCTETS: Final = 16


class VerificationStatus(IntEnum):
    """Where a verification stands (stored as the number)."""

    PENDING = 0
    APPROVED = 1
    EXPIRED = 2
    CANCELED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class SendLimitExceeded(StoreError):
    """The number had ``limit`` verification sends in the window already:
    nothing was written. Answer 429 with Retry-After ``retry_at - now``."""

    http_status = 429

    def __init__(self, limit: int, retry_at: float) -> None:
        super().__init__(f"{limit} verification sends to this number in the window already")
        self.limit = limit
        self.retry_at = retry_at


@dataclass(frozen=True, slots=True)
class Verification:
    """One verification of one number for one account."""

    id: str
    account_id: int
    to: str
    use_case: str
    app: str
    locale: str
    code_length: int
    status: VerificationStatus
    created_at: float
    expires_at: float
    salt: bytes
    code_hash: bytes
    sends: int = 1  # SMS sent (the first and each resend)
    checks: int = 0  # codes checked against it
    client: Mapping[str, str] = field(default_factory=dict)  # ip, device_id, platform, user_id

    def __post_init__(self) -> None:
        if len(self.code_hash) != _HASH_OCTETS:
            raise InvalidRecord("code_hash", f"must be {_HASH_OCTETS} octets")
        if len(self.salt) != _SALT_OCTETS:
            raise InvalidRecord("salt", f"must be {_SALT_OCTETS} octets")
        if not 4 <= self.code_length <= 10:
            raise InvalidRecord("code_length", "must be 4 to 10")
        if self.expires_at <= self.created_at:
            raise InvalidRecord("expires_at", "must be after created_at")
        for name, value in self.client.items():
            if not isinstance(value, str) or len(value) > MAX_CLIENT_HINT_LENGTH:
                raise InvalidRecord("client", f"{name}: a string of at most"
                                    f" {MAX_CLIENT_HINT_LENGTH} characters")

    def status_at(self, now: float) -> VerificationStatus:
        """The status at ``now``: a pending verification past its time is expired."""
        if self.status is VerificationStatus.PENDING and now >= self.expires_at:
            return VerificationStatus.EXPIRED
        return self.status


@dataclass(frozen=True, slots=True)
class VerificationSend:
    """One SMS of a verification: its attempt number (1 = the first) and message."""

    verification_id: str
    attempt: int
    message_id: str
    sent_at: float


# -- the rules of the VerifyStore methods, shared by the stores -----------------------


def require_pending(v: Verification, now: float) -> None:
    """Raise :class:`Conflict` unless ``v`` is pending at ``now`` (a resend, a cancel)."""
    if v.status_at(now) is not VerificationStatus.PENDING:
        raise Conflict(f"verification {v.id} is {v.status_at(now).label}")


def resent(v: Verification, *, salt: bytes, code_hash: bytes, expires_at: float) -> Verification:
    """``v`` with a new code and expiry, one send more."""
    return replace(v, salt=salt, code_hash=code_hash, expires_at=expires_at, sends=v.sends + 1)


def checked(v: Verification, *, sends: int, matched: bool, now: float,
            max_checks: int) -> Verification:  # fmt: skip
    """``v`` after one check of the code sent by attempt ``sends`` (the rules of
    ``VerifyStore.record_check``); ``v`` itself when nothing changes."""
    if v.status is not VerificationStatus.PENDING or v.sends != sends:
        return v  # settled already, or a resend changed the code: not counted
    if now >= v.expires_at:
        return replace(v, status=VerificationStatus.EXPIRED)
    if v.checks >= max_checks:
        return v
    status = VerificationStatus.APPROVED if matched else VerificationStatus.PENDING
    return replace(v, status=status, checks=v.checks + 1)
