"""What the pumping defence is fed and what it answers (issue 11).

Times are integers: milliseconds since the epoch, always passed in by the
caller (the engine reads no clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Action", "Decision", "Reason", "Receipt", "Request", "Verification"]


@dataclass(frozen=True, slots=True)
class Request:
    """A one-time code about to be sent; every field but the first five may be missing."""

    id: str
    ts: int
    account: str
    use_case: str
    to: str  # E.164
    country: str | None = None  # ISO 3166 alpha-2
    mcc_mnc: str | None = None
    ip_type: str | None = None  # mobile | residential | vpn | hosting
    device_id: str | None = None
    ip: str | None = None  # the client's address (IPv4 or IPv6)


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: DELIVRD, UNDELIV or EXPIRED."""

    request_id: str
    ts: int
    status: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The code of ``request_id`` was entered correctly."""

    request_id: str
    ts: int


class Action(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why: a code (``cell_blocked``, ``loss_budget``, ``trusted_number``, ...), the
    cell it is about (``country:GB/23430/+4477001``) and the figures behind it."""

    code: str
    cell: str = ""
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """``action``: send the code or not. A *throttle* is a block with ``throttle_ms``
    > 0: not now, ask again after that long (never sent, never billed). In monitor
    mode ``action`` is always allow and ``would`` says what enforce would have done."""

    request_id: str
    action: Action
    reasons: tuple[Reason, ...]
    price: float  # what the code costs if sent (account currency, one segment)
    would: Action | None = None  # monitor mode only
    throttle_ms: int = 0

    @property
    def step(self) -> str:
        """The graduated action: ``allow``, ``throttle`` or ``block`` (what enforce did
        or, in monitor mode, would have done)."""
        action = self.would or self.action
        if action is Action.ALLOW:
            return "allow"
        return "throttle" if self.throttle_ms else "block"
