"""A channel leg's states: one table, in this one file, that only moves forward (pure).

Theory of operation
===================

A *leg* is one try of a message on one channel (a WhatsApp send, a Viber send,
an SMS). Its state changes on herald's own steps (submitted, the provider's
answer) and on the provider's status webhooks, which arrive late, twice, out of
order, or not at all (WhatsApp skips ``delivered`` when a message is read at
once: the read implies it). So the table never asks "what came before"; it asks
"does this event say more than what we know", and a state only moves to one of
higher :data:`RANK`.

``TRANSITIONS[(state, event)] -> next_state``. An event not in the table for the
state it meets is *stale* (a duplicate, or news older than what is known) and
changes nothing: :func:`advance` reports it so, and the caller drops it.

The order, lowest first::

    pending < submitted < accepted < sent < expired < delivered < read
                                                    < rejected | failed

* ``rejected`` (the provider refused the submission) and ``failed`` (it took it,
  then reported failure) are final: nothing follows them, not even a late
  ``delivered``, because WhatsApp and the Viber providers never report both
  for one message, and a failure is what a fallback was started on.
* ``expired`` (the provider's TTL ran out) sits *below* ``delivered``: a
  late success of an expired leg is recorded (the issue's rule: "a late success
  of an earlier leg is recorded, never un-sends the next"); the chain above
  decides what it means for billing and for the next leg.
* ``read`` implies ``delivered``; ``delivered`` after ``read`` is stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

from herald.store import Status

__all__ = [
    "FINAL_LEG_STATES",
    "RANK",
    "STATUS_OF_LEG",
    "TRANSITIONS",
    "LegEvent",
    "LegState",
    "advance",
]


class LegState(Enum):
    PENDING = "pending"  # in herald, not yet handed to the provider
    SUBMITTED = "submitted"  # the request is out; no answer yet
    ACCEPTED = "accepted"  # the provider answered with its id
    SENT = "sent"  # the provider reports it sent (WhatsApp ``sent``)
    EXPIRED = "expired"  # the provider's TTL ran out before delivery
    DELIVERED = "delivered"  # on the recipient's device
    READ = "read"  # displayed (WhatsApp ``read``, Viber ``seen``)
    REJECTED = "rejected"  # the provider refused the request (window closed, no such template)
    FAILED = "failed"  # accepted, then reported undeliverable


class LegEvent(Enum):
    SUBMIT = "submit"
    ACCEPT = "accept"
    REJECT = "reject"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    EXPIRED = "expired"


#: Greater is later; every transition in the table goes to a greater rank
#: (``tests/channels/test_legs.py`` walks the whole table to hold it so).
RANK: Final[Mapping[LegState, int]] = {
    LegState.PENDING: 0,
    LegState.SUBMITTED: 1,
    LegState.ACCEPTED: 2,
    LegState.SENT: 3,
    LegState.EXPIRED: 4,
    LegState.DELIVERED: 5,
    LegState.READ: 6,
    LegState.REJECTED: 7,
    LegState.FAILED: 7,
}

#: The state each event claims, when it moves the leg at all.
_TARGET: Final[Mapping[LegEvent, LegState]] = {
    LegEvent.SUBMIT: LegState.SUBMITTED,
    LegEvent.ACCEPT: LegState.ACCEPTED,
    LegEvent.REJECT: LegState.REJECTED,
    LegEvent.SENT: LegState.SENT,
    LegEvent.DELIVERED: LegState.DELIVERED,
    LegEvent.READ: LegState.READ,
    LegEvent.FAILED: LegState.FAILED,
    LegEvent.EXPIRED: LegState.EXPIRED,
}

S = LegState
#: Where each event may come from. A provider's webhook can overtake the
#: provider's HTTP answer (it is sent before the answer is read), so every
#: provider status is taken from ``submitted`` on; ``reject`` only answers a
#: submission that has no provider id yet.
_FROM: Final[Mapping[LegEvent, frozenset[LegState]]] = {
    LegEvent.SUBMIT: frozenset({S.PENDING}),
    LegEvent.ACCEPT: frozenset({S.PENDING, S.SUBMITTED}),
    LegEvent.REJECT: frozenset({S.PENDING, S.SUBMITTED}),
    LegEvent.SENT: frozenset({S.PENDING, S.SUBMITTED, S.ACCEPTED}),
    LegEvent.EXPIRED: frozenset({S.PENDING, S.SUBMITTED, S.ACCEPTED, S.SENT}),
    LegEvent.DELIVERED: frozenset({S.PENDING, S.SUBMITTED, S.ACCEPTED, S.SENT, S.EXPIRED}),
    LegEvent.READ: frozenset({S.PENDING, S.SUBMITTED, S.ACCEPTED, S.SENT, S.EXPIRED,
                              S.DELIVERED}),
    LegEvent.FAILED: frozenset({S.PENDING, S.SUBMITTED, S.ACCEPTED, S.SENT}),
}

TRANSITIONS: Final[Mapping[tuple[LegState, LegEvent], LegState]] = {
    (state, event): _TARGET[event] for event, sources in _FROM.items() for state in sources
}

#: States no event moves any more.
FINAL_LEG_STATES: Final = frozenset(
    s for s in LegState if not any(state is s for state, _ in TRANSITIONS)
)

#: What a leg's state says as a herald message status (the API's words). A
#: chain's own status is decided over its legs, not by this map alone.
STATUS_OF_LEG: Final[Mapping[LegState, Status]] = {
    S.PENDING: Status.ACCEPTED,
    S.SUBMITTED: Status.QUEUED,
    S.ACCEPTED: Status.SENT,
    S.SENT: Status.SENT,
    S.EXPIRED: Status.EXPIRED,
    S.DELIVERED: Status.DELIVERED,
    S.READ: Status.DELIVERED,
    S.REJECTED: Status.REJECTED,
    S.FAILED: Status.UNDELIVERED,
}


def advance(state: LegState, event: LegEvent) -> LegState | None:
    """The state after ``event``, or None when the event is stale (a duplicate,
    older news, or news after a final state): then nothing changes."""
    return TRANSITIONS.get((state, event))
