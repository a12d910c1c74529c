"""The stored form of channel chains (docs/channels.md, "Chains"): values only.

A *chain* is one customer send that tries its legs in order (WhatsApp, then
SMS...). The store keeps each chain (its status, the leg that delivered it, a
version every change increases), each leg (its state word, provider id,
error, price), the chain's fallback timers, and provider statuses that came
before their leg's provider id was known (parked). The decisions (which leg
starts when) are :mod:`herald.channels`'s; the store applies a decided
:class:`ChainChange` only when the chain is still at the version it was decided on.

Leg states are the words of ``herald.channels.LegState`` (``pending``,
``submitted``, ``accepted``, ...); ``None`` is a leg not started.

An SMS leg carries its message, prepared at intake (validated, priced) but
stored in ``messages`` only when the leg starts: then it is a message like any
other (dispatch, receipts), charged then (its CDR), never before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from herald.store._billing import Charge
from herald.store._errors import InvalidRecord
from herald.store._model import NewMessage, Status

__all__ = [
    "MAX_CHAIN_LEGS",
    "SMS",
    "ChainChange",
    "ChatChain",
    "ChatLeg",
    "ChatTemplate",
    "DueChainTimer",
    "LegSubmission",
    "LegUpdate",
    "NewChain",
    "NewChatLeg",
    "ParkedChatEvent",
    "SmsLegStatus",
]

#: Legs in one chain (WhatsApp, Viber, SMS, and a spare).
MAX_CHAIN_LEGS: Final = 4
#: The channel word of an SMS leg.
SMS: Final = "sms"


@dataclass(frozen=True, slots=True)
class NewChatLeg:
    """A leg as intake stores it. ``content`` is the chat content as JSON (the
    channel's business); an SMS leg has ``sms`` (and ``charge``, for a billed
    account) instead. ``success`` is ``delivered`` or ``read``; ``within``
    seconds after acceptance to reach it (None: no timer)."""

    channel: str
    sender: str
    content: str | None = None
    success: str = "delivered"
    within: float | None = None
    ttl: int | None = None
    sms: NewMessage | None = field(default=None, repr=False)
    charge: Charge | None = None

    def __post_init__(self) -> None:
        if (self.channel == SMS) != (self.sms is not None):
            raise InvalidRecord("channels", "an SMS leg carries its message, a chat leg none")
        if self.channel != SMS and not self.content:
            raise InvalidRecord("channels", "a chat leg carries its content")


@dataclass(frozen=True, slots=True)
class NewChain:
    """A chain as intake stores it; its first leg starts at once (``pending``)."""

    id: str
    account_id: int
    to: str
    legs: tuple[NewChatLeg, ...]
    created_at: float
    reference: str | None = None
    callback_url: str | None = None
    metadata: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.legs) <= MAX_CHAIN_LEGS:
            raise InvalidRecord("channels", f"a chain has 1..{MAX_CHAIN_LEGS} legs")


@dataclass(frozen=True, slots=True)
class ChatLeg:
    leg: int
    channel: str
    sender: str
    success: str
    within: float | None
    state: str | None  # None: not started
    provider_id: str | None
    message_id: str | None  # an SMS leg's message
    error_code: int | None
    provider_code: str | None
    price_micros: int | None  # what the leg was charged (None: nothing yet)
    price_category: str | None
    started_at: float | None
    updated_at: float | None
    #: A template leg's template: (name, language); None for text and SMS legs.
    #: (Never its parameters: an authentication template's is a code.)
    template: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ChatChain:
    id: str
    account_id: int
    to: str
    status: Status
    delivered_by: int | None
    version: int
    created_at: float
    done_at: float | None
    reference: str | None
    callback_url: str | None
    metadata: str | None
    legs: tuple[ChatLeg, ...]
    timers: Mapping[int, float]  # leg -> due time of its fallback timer
    cancelled_at: float | None = None  # the customer cancelled it: no leg starts any more


@dataclass(frozen=True, slots=True)
class LegUpdate:
    """A leg's new state and what came with it (None: keep what is stored)."""

    state: str
    provider_id: str | None = None
    error_code: int | None = None
    provider_code: str | None = None
    price_micros: int | None = None  # charged once: a leg already priced keeps its price
    price_category: str | None = None
    sms_status: int | None = None  # an SMS leg: its message's status, as seen


@dataclass(frozen=True, slots=True)
class ChainChange:
    """What one decision changes, applied only if the chain is at ``version``.

    ``start``: legs to start (``pending``; an SMS leg's message is stored and
    charged, claimable at once). ``arm``: timers to set (leg -> due);
    ``cancel``: timers to drop. ``notify``: the final status to tell the
    customer (one webhook event, naming ``delivered_by`` or the last leg).
    ``timer``: the leg whose claimed timer this change consumes."""

    chain_id: str
    version: int
    at: float
    status: Status
    delivered_by: int | None = None
    legs: Mapping[int, LegUpdate] = field(default_factory=dict)
    start: tuple[int, ...] = ()
    arm: Mapping[int, float] = field(default_factory=dict)
    cancel: tuple[int, ...] = ()
    notify: bool = False
    timer: int | None = None
    cancel_chain: bool = False  # the customer cancelled the chain (kept once: the first time)


@dataclass(frozen=True, slots=True)
class DueChainTimer:
    chain_id: str
    leg: int
    due_at: float


@dataclass(frozen=True, slots=True)
class LegSubmission:
    """A chat leg claimed for its provider request."""

    chain_id: str
    leg: int
    channel: str
    sender: str
    to: str
    content: str
    ttl: int | None
    account_id: int
    resumed: bool  # a claim of an earlier process lapsed: the request may have gone out


@dataclass(frozen=True, slots=True)
class SmsLegStatus:
    """An SMS leg whose message moved past what the leg records."""

    chain_id: str
    leg: int
    status: Status
    error_code: int | None


@dataclass(frozen=True, slots=True)
class ParkedChatEvent:
    """A provider status for a provider id no leg carries yet (or again)."""

    id: int
    channel: str
    provider_id: str
    event: str
    at: float
    error_code: int | None
    provider_code: str | None
    category: str | None
    billable: bool


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """A WhatsApp template an account submitted (``/v1/templates``): its review
    ``status`` as the provider last reported it (``submitting`` until the
    provider answered the submission)."""

    account_id: int
    name: str
    language: str
    category: str
    body: str
    status: str
    provider_id: str | None
    reason: str | None
    created_at: float
    updated_at: float
