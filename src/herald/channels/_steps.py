"""A stored chain's next step: the chain rules (:mod:`._chain`) over the store's rows (pure).

Each function takes a chain as the store read it (``herald.store.ChatChain``),
one input (a provider status, the provider's answer to a submission, a timer,
an SMS leg's message status) and ``now``, and returns the
``herald.store.ChainChange`` that carries the decision out, or None when the
input changes nothing (a duplicate, older news). The store applies a change only
at the version it was decided on; the caller reads again and decides again
when it is refused. A timer's change always consumes the timer, even when it
decides nothing (a timer fires once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from herald.channels._chain import (
    Action,
    ArmTimer,
    CancelTimer,
    ChainState,
    LegPlan,
    Notify,
    StartLeg,
    on_cancel,
    on_leg,
    on_timer,
)
from herald.channels._codes import ChannelErrorCode, ErrorClass
from herald.channels._legs import LegEvent, LegState
from herald.channels._port import Accepted, Pricing, Rejected, SubmitResult
from herald.store import ChainChange, ChatChain, LegUpdate, Status

__all__ = ["RESUMED", "ChatPrices", "LegInput", "after_cancel", "after_sms_status", "after_status",
           "after_submit", "after_timer", "blocked_start", "state_of", "unpaid_start"]

#: Micro-units a priced chat event costs, by (channel, category): WhatsApp's
#: pricing categories (``marketing``, ``utility``, ``authentication``...);
#: a Viber provider's ``message`` (charged on delivery).
ChatPrices = Mapping[tuple[str, str], int]

_SMS_EVENT: Final[Mapping[Status, LegEvent]] = {
    Status.QUEUED: LegEvent.SUBMIT,
    Status.SENT: LegEvent.SENT,
    Status.DELIVERED: LegEvent.DELIVERED,
    Status.UNDELIVERED: LegEvent.FAILED,
    Status.EXPIRED: LegEvent.EXPIRED,
    Status.REJECTED: LegEvent.REJECT,
    Status.FAILED: LegEvent.REJECT,
    Status.CANCELLED: LegEvent.FAILED,
}
#: The events that bill a chat leg: WhatsApp has priced template messages per
#: *delivered* message since July 2025 (a ``sent`` or ``failed`` status carries
#: pricing too, and bills nothing); a Viber provider's price is per delivery.
_BILLED: Final = frozenset({LegEvent.DELIVERED, LegEvent.READ})
_NOT_YET_OUT: Final = frozenset({LegState.PENDING, LegState.SUBMITTED})


@dataclass(frozen=True, slots=True)
class LegInput:
    """A provider status for one leg (``herald.channels.ProviderEvent`` without its id)."""

    event: LegEvent
    error_code: int | None = None
    provider_code: str | None = None
    pricing: Pricing | None = None


def state_of(chain: ChatChain) -> ChainState:
    plans = tuple(LegPlan(leg.channel, LegState(leg.success), leg.within) for leg in chain.legs)
    legs = tuple(LegState(leg.state) for leg in chain.legs if leg.state is not None)
    return ChainState(plans, legs, MappingProxyType(dict(chain.timers)), chain.status,
                      chain.delivered_by, chain.cancelled_at is not None)


def _change(chain: ChatChain, state: ChainState, actions: list[Action], now: float,
            legs: Mapping[int, LegUpdate], timer: int | None = None) -> ChainChange:
    start = tuple(a.leg for a in actions if isinstance(a, StartLeg))
    arm = {a.leg: a.due_at for a in actions if isinstance(a, ArmTimer)}
    cancel = tuple(a.leg for a in actions if isinstance(a, CancelTimer))
    notify = any(isinstance(a, Notify) for a in actions)
    return ChainChange(chain.id, chain.version, now, state.status, state.delivered_by, legs,
                       start, arm, cancel, notify, timer)


def _price(chain: ChatChain, leg: int, pricing: Pricing | None, event: LegEvent,
           prices: ChatPrices) -> tuple[int | None, str | None]:
    channel = chain.legs[leg].channel
    if event not in _BILLED:
        return None, None
    if pricing is not None:
        if not pricing.billable:
            return None, None
        amount = prices.get((channel, pricing.category))
        return (None, None) if amount is None else (amount, pricing.category)
    if channel != "whatsapp":
        amount = prices.get((channel, "message"))
        return (None, None) if amount is None else (amount, "message")
    return None, None


def after_status(chain: ChatChain, leg: int, given: LegInput, now: float,
                 prices: ChatPrices) -> ChainChange | None:
    """A provider status for ``leg``. A stale status changes nothing, unless it
    is the leg's first billed one (``delivered`` reordered after ``read`` and
    only the first carried a price the prices know: it bills once)."""
    if not 0 <= leg < len(chain.legs) or chain.legs[leg].state is None:
        return None
    state = state_of(chain)
    new, actions = on_leg(state, leg, given.event, now)
    amount, category = _price(chain, leg, given.pricing, given.event, prices)
    if amount is not None and chain.legs[leg].price_micros is not None:
        amount = category = None
    if new is state and amount is None:
        return None
    stored = chain.legs[leg]
    word = new.legs[leg].value
    update = LegUpdate(word, error_code=given.error_code if word != stored.state else None,
                       provider_code=given.provider_code if word != stored.state else None,
                       price_micros=amount, price_category=category)
    return _change(chain, new, actions, now, {leg: update})


def after_submit(chain: ChatChain, leg: int, result: SubmitResult,
                 now: float) -> ChainChange | None:
    """The provider's answer to ``leg``'s submission."""
    if not 0 <= leg < len(chain.legs) or chain.legs[leg].state is None:
        return None
    state = state_of(chain)
    if isinstance(result, Accepted):
        new, actions = on_leg(state, leg, LegEvent.ACCEPT, now)
        # A status that overtook the answer moved the leg on already: keep the id anyway.
        return _change(chain, new, actions, now,
                       {leg: LegUpdate(new.legs[leg].value, provider_id=result.provider_id)})
    assert isinstance(result, Rejected)
    new, actions = on_leg(state, leg, LegEvent.REJECT, now)
    if new is state:
        return None
    code = None if result.provider_code is None else str(result.provider_code)
    return _change(chain, new, actions, now,
                   {leg: LegUpdate(new.legs[leg].value, error_code=int(result.code),
                                   provider_code=code)})


def after_cancel(chain: ChatChain, now: float) -> ChainChange | None:
    """The customer cancelled ``chain`` (None: it is final, or cancelled already).
    A chat leg that had not gone out ends ``rejected`` with ``CANCELLED``."""
    state = state_of(chain)
    new, actions = on_cancel(state)
    if new is state:
        return None
    legs = {leg: LegUpdate(new.legs[leg].value, error_code=int(ChannelErrorCode.CANCELLED))
            for leg, s in enumerate(new.legs) if s is not state.legs[leg]}
    change = _change(chain, new, actions, now, legs)
    return replace(change, cancel_chain=True)


def after_timer(chain: ChatChain, leg: int, now: float) -> ChainChange:
    """``leg``'s timer fired: fall over if its success is not reached; the
    timer is consumed whatever is decided."""
    state = state_of(chain)
    new, actions = on_timer(state, leg, now)
    if leg not in chain.timers:  # consumed meanwhile: a change that deletes nothing
        new, actions = state, []
    return _change(chain, new, actions, now, {}, timer=leg)


def after_sms_status(chain: ChatChain, leg: int, status: Status, error_code: int | None,
                     now: float) -> ChainChange | None:
    """An SMS leg's message reached ``status``; the leg records it as seen
    either way (so it is not reported again)."""
    if not 0 <= leg < len(chain.legs) or chain.legs[leg].state is None:
        return None
    event = _SMS_EVENT.get(status)
    state = state_of(chain)
    current = state.legs[leg]
    if event is LegEvent.REJECT and current not in _NOT_YET_OUT:
        event = LegEvent.FAILED
    new, actions = (state, []) if event is None else on_leg(state, leg, event, now)
    word = new.legs[leg].value
    ended = word != chain.legs[leg].state and status.final and status is not Status.DELIVERED
    return _change(chain, new, actions, now, {leg: LegUpdate(
        word, error_code=error_code if ended else None, sms_status=int(status))})


#: The answer taken for a submission whose claim lapsed (herald stopped mid-request):
#: it is not sent again (the provider may have taken it: a second send could reach
#: the user twice); the chain falls over to its next leg.
RESUMED: Final = Rejected(ChannelErrorCode.PROVIDER_UNAVAILABLE, ErrorClass.TRANSIENT, None,
                          "herald stopped before the provider answered; not sent again")


def unpaid_start(chain: ChatChain, change: ChainChange) -> ChainChange:
    """``change`` was refused because an SMS leg it starts could not be charged:
    the chain ends ``failed`` there (one notification), its timers dropped."""
    return _refused_start(chain, change, ChannelErrorCode.INSUFFICIENT_FUNDS)


def blocked_start(chain: ChatChain, change: ChainChange) -> ChainChange:
    """The pumping defence blocked the OTP SMS leg ``change`` starts: instead
    the leg ends ``rejected`` with ``FRAUD_BLOCKED`` (nothing stored or
    charged) and the chain ``failed`` there, as for :func:`unpaid_start`."""
    return _refused_start(chain, change, ChannelErrorCode.FRAUD_BLOCKED)


def _refused_start(chain: ChatChain, change: ChainChange,
                   code: ChannelErrorCode) -> ChainChange:  # fmt: skip
    legs = dict(change.legs)
    for leg in change.start:
        legs[leg] = LegUpdate(LegState.REJECTED.value, error_code=int(code))
    final = Status.FAILED if not chain.status.final else chain.status
    return ChainChange(chain.id, chain.version, change.at, final, chain.delivered_by, legs,
                       (), {}, tuple(chain.timers), not chain.status.final, change.timer)
