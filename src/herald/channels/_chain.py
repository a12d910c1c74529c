"""A fallback chain over channel legs: what to do on each leg change and timer (pure).

Theory of operation
===================

A chain is a list of :class:`LegPlan` (for example WhatsApp template, success
on ``read`` within 60 s; then SMS). Legs start one at a time. The chain moves
to the next leg when the current one

* ends without success (``rejected``, ``failed``, ``expired``): at once;
* is not successful when its timer fires: the timer is armed when the
  provider accepts the leg, due ``within`` seconds later.

A chain the customer cancels starts no leg any more. A leg that has not gone
out (a chat leg not yet sent) ends ``rejected`` and the chain ``cancelled``
at once; a leg that has gone out is not recalled: it ends the chain,
``delivered`` if it reaches its success, else ``cancelled`` (when it ends
without success, or when its timer fires: nothing else can go out).

The first leg to reach its success state delivers the chain: the customer is
told once, naming that leg, and the leg's timer is cancelled. A late success
of an earlier leg (after the next one started) is recorded on that leg and may
deliver the chain, but never un-sends the next leg. A final chain status is
never replaced (as a message's in the store).

The functions take a :class:`ChainState` and return the next one with the
:data:`Action` list the caller carries out in the same transaction (start a
leg, arm or cancel a timer, notify the customer). Every input may come twice
or late: a stale leg event (``advance`` says so) and a timer that is not
pending (fired, cancelled) change nothing, which is what makes "fires exactly
once" hold when a timer is delivered again after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from herald.channels._legs import STATUS_OF_LEG, LegEvent, LegState, advance
from herald.store import Status

__all__ = ["MAX_LEGS", "Action", "ArmTimer", "CancelTimer", "ChainState", "LegPlan", "Notify",
           "StartLeg", "on_cancel", "on_leg", "on_timer", "start"]

#: Legs in one chain: WhatsApp, Viber, SMS, with room for a second SMS route.
MAX_LEGS: Final = 4
_ENDED: Final = frozenset({LegState.REJECTED, LegState.FAILED, LegState.EXPIRED})
_LIVE: Final = frozenset({LegState.ACCEPTED, LegState.SENT, LegState.DELIVERED})


@dataclass(frozen=True, slots=True)
class LegPlan:
    """One leg: its channel, the state that counts as success (``delivered``
    or ``read``), and the seconds after acceptance it has to reach it (None: no
    timer; the leg falls over only when it ends without success)."""

    channel: str
    success: LegState = LegState.DELIVERED
    within: float | None = None

    def __post_init__(self) -> None:
        if self.success not in (LegState.DELIVERED, LegState.READ):
            raise ValueError("success is delivered or read")
        if self.within is not None and not self.within > 0:
            raise ValueError("within must be a positive number of seconds")

    def succeeded(self, state: LegState) -> bool:
        return state is LegState.READ or (state is LegState.DELIVERED
                                          and self.success is LegState.DELIVERED)


@dataclass(frozen=True, slots=True)
class StartLeg:
    leg: int


@dataclass(frozen=True, slots=True)
class ArmTimer:
    leg: int
    due_at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    leg: int


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the customer the chain's final status (once), naming the leg."""

    status: Status
    leg: int


Action = StartLeg | ArmTimer | CancelTimer | Notify


@dataclass(frozen=True, slots=True)
class ChainState:
    plans: tuple[LegPlan, ...]
    legs: tuple[LegState, ...] = ()  # the started legs' states, in order
    timers: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))
    status: Status = Status.ACCEPTED
    delivered_by: int | None = None
    cancelled: bool = False  # the customer cancelled: no leg starts any more

    @property
    def final(self) -> bool:
        return self.status.final


def start(plans: Sequence[LegPlan]) -> tuple[ChainState, list[Action]]:
    """A new chain, and its first leg to start."""
    if not 1 <= len(plans) <= MAX_LEGS:
        raise ValueError(f"a chain has 1..{MAX_LEGS} legs")
    return ChainState(tuple(plans), (LegState.PENDING,), status=Status.QUEUED), [StartLeg(0)]


def _without_timer(state: ChainState, leg: int) -> tuple[Mapping[int, float], list[Action]]:
    if leg not in state.timers:
        return state.timers, []
    return MappingProxyType({k: v for k, v in state.timers.items() if k != leg}), [CancelTimer(leg)]


def _next_leg(state: ChainState, leg: int) -> tuple[ChainState, list[Action]]:
    """Fall over from ``leg`` (the current one), or end the chain with its status
    (``cancelled`` when the customer cancelled it)."""
    if state.cancelled:
        return replace(state, status=Status.CANCELLED), [Notify(Status.CANCELLED, leg)]
    nxt = leg + 1
    if nxt < len(state.plans):
        return replace(state, legs=(*state.legs, LegState.PENDING)), [StartLeg(nxt)]
    status = STATUS_OF_LEG[state.legs[leg]]
    status = status if status.final else Status.UNDELIVERED
    return replace(state, status=status), [Notify(status, leg)]


def on_leg(state: ChainState, leg: int, event: LegEvent,
           now: float) -> tuple[ChainState, list[Action]]:
    """Leg ``leg`` had ``event`` at ``now``; unknown legs and stale events change nothing."""
    if not 0 <= leg < len(state.legs):
        return state, []
    new = advance(state.legs[leg], event)
    if new is None:
        return state, []
    legs = list(state.legs)
    legs[leg] = new
    state = replace(state, legs=tuple(legs))
    plan = state.plans[leg]
    actions: list[Action] = []
    current = leg == len(state.legs) - 1
    if plan.succeeded(new):
        timers, actions = _without_timer(state, leg)
        state = replace(state, timers=timers)
        if not state.final:
            state = replace(state, status=Status.DELIVERED, delivered_by=leg)
            actions.append(Notify(Status.DELIVERED, leg))
        return state, actions
    if new in _ENDED:
        timers, actions = _without_timer(state, leg)
        state = replace(state, timers=timers)
        if current and not state.final:
            state, more = _next_leg(state, leg)
            actions += more
        return state, actions
    if (new in _LIVE and plan.within is not None and current and not state.final
            and leg not in state.timers):
        due = now + plan.within
        state = replace(state, status=max(state.status, Status.SENT),
                        timers=MappingProxyType({**state.timers, leg: due}))
        return state, [ArmTimer(leg, due)]
    if new in _LIVE and not state.final:
        state = replace(state, status=max(state.status, Status.SENT))
    return state, actions


def on_timer(state: ChainState, leg: int, now: float) -> tuple[ChainState, list[Action]]:
    """Leg ``leg``'s timer fired at ``now``. A timer that is not pending (already
    fired, cancelled) changes nothing: it fires exactly once."""
    due = state.timers.get(leg)
    if due is None or now < due:
        return state, []
    state = replace(state, timers=MappingProxyType(
        {k: v for k, v in state.timers.items() if k != leg}))
    current = leg == len(state.legs) - 1
    # Nothing to fall over to: the leg goes on (unless the chain was cancelled:
    # then nothing else can go out, and the chain ends ``cancelled`` now).
    last = leg + 1 >= len(state.plans) and not state.cancelled
    if state.final or not current or last or state.plans[leg].succeeded(state.legs[leg]):
        return state, []
    return _next_leg(state, leg)


def on_cancel(state: ChainState) -> tuple[ChainState, list[Action]]:
    """The customer cancelled the chain. No leg starts any more; the current
    leg, if it is a chat leg that has not gone out (``pending``: not yet
    sent), ends ``rejected`` and the chain ``cancelled``. A leg that has gone
    out is not recalled (see the module docstring). An SMS leg's message is
    cancelled by the SMS pipeline's own rules; its ``cancelled`` status comes
    back as the leg's failure."""
    if state.final or state.cancelled:
        return state, []
    state = replace(state, cancelled=True)
    leg = len(state.legs) - 1
    if state.legs[leg] is not LegState.PENDING or state.plans[leg].channel == "sms":
        return state, []
    legs = (*state.legs[:leg], LegState.REJECTED)
    timers, actions = _without_timer(state, leg)
    state = replace(state, legs=legs, timers=timers, status=Status.CANCELLED)
    return state, [*actions, Notify(Status.CANCELLED, leg)]
