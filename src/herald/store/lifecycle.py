"""A message's life: one table, in this one file.

Theory of operation
===================

A message moves through :class:`Status` by events the store observes:
dispatch claims it, every part is accepted upstream, receipts come back,
its validity ends, herald gives up, its customer cancels it. Each event names
the status it leads to (:data:`TARGET`); the rules that hold whatever order
events arrive in are the table's:

* a status only grows, and a final status (``>= 10``) is never replaced: an
  event that would not move the status forward is ignored (a late receipt, a
  second expiry, a cancel after a receipt);
* a claim of a queued message (a lease taken again) keeps it queued;
* a cancel applies only before any part went out (``accepted``, ``queued``).

``TRANSITIONS[(status, event)] -> Transition`` holds every pair that moves a
message, with the next status and what the step emits (:class:`Emit`): a
webhook event, an SMPP receipt, the CDR's buy price, a refund. What is
emitted depends only on the step (old status → new status); whether the emit
then writes anything depends on the message and its account, in the
predicates below (:func:`webhook_wanted`, :func:`smpp_receipt_wanted`,
``RefundPolicy.refunds``).

A message's parts (segments) have their own short life: recorded when
upstream accepts them (``sent``), final when their receipt comes. A receipt
that arrives before its part is recorded is parked and applied when the part
is recorded (the first final one parked wins: what applying them in arrival
order would give). :func:`rollup` says which message event the parts add up
to.

The stores implement this table. SQLite does it in the writer's transaction
(no round trip per step), in statements run once per batch of parts and once
per transaction for what its steps emit; their conditions are written in
``store/_sqlite_lifecycle.py`` from the constants here, and
``tests/store/test_lifecycle.py`` checks them against this table for every
pair of statuses, and each store against every transition of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, Flag, auto

from herald.store._model import Source, Status, StatusEvents

__all__ = [
    "NON_FINAL",
    "TARGET",
    "TRANSITIONS",
    "Emit",
    "Event",
    "Transition",
    "describe",
    "emits",
    "rollup",
    "smpp_receipt_wanted",
    "step",
    "webhook_wanted",
]


class Event(Enum):
    """What happened to a message, as the store sees it."""

    CLAIMED = "claimed"  # dispatch holds it for submission (a lease)
    SUBMITTED = "submitted"  # every part was accepted upstream (submit_sm_resp ESME_ROK)
    DELIVERED = "delivered"  # every part was delivered (receipts)
    UNDELIVERED = "undelivered"  # a part's receipt: the operator could not deliver it
    EXPIRED = "expired"  # its validity ended: before submission, or with no receipt
    REJECTED = "rejected"  # upstream refused a part (receipt, or a permanent submit error)
    FAILED = "failed"  # herald gave up: no route, every connector failed
    CANCELLED = "cancelled"  # its customer cancelled it


class Emit(Flag):
    """What a step writes besides the message's own row, in the same transaction."""

    NONE = 0
    #: a status event for the customer's webhook (the message's URL, else its
    #: account's), when the status is subscribed and the message is no test
    WEBHOOK = auto()
    #: a deliver_sm receipt for an SMPP customer whose registered_delivery asks
    SMPP_RECEIPT = auto()
    #: the message's CDR takes the connector of its first part and that
    #: connector's buy price (the first step past ``queued``; nothing when no
    #: part went out)
    BUY_PRICE = auto()
    #: the sell price goes back, once, when the account's refund policy says so
    REFUND = auto()


#: The status each event leads to.
TARGET: Mapping[Event, Status] = {
    Event.CLAIMED: Status.QUEUED,
    Event.SUBMITTED: Status.SENT,
    Event.DELIVERED: Status.DELIVERED,
    Event.UNDELIVERED: Status.UNDELIVERED,
    Event.EXPIRED: Status.EXPIRED,
    Event.REJECTED: Status.REJECTED,
    Event.FAILED: Status.FAILED,
    Event.CANCELLED: Status.CANCELLED,
}
#: The statuses a message can still leave.
NON_FINAL: frozenset[Status] = frozenset(s for s in Status if not s.final)
#: A cancel recalls a message only while no part of it went out.
_CANCELLABLE = frozenset({Status.ACCEPTED, Status.QUEUED})


def emits(old: Status, new: Status) -> Emit:
    """What the step ``old → new`` emits (before the per-message predicates)."""
    out = Emit.NONE
    if new > old and new >= Status.SENT:
        out |= Emit.WEBHOOK
    if new.final and not old.final:
        out |= Emit.SMPP_RECEIPT
        if new != Status.DELIVERED:
            out |= Emit.REFUND
    if old < Status.SENT <= new:
        out |= Emit.BUY_PRICE
    return out


@dataclass(frozen=True, slots=True)
class Transition:
    status: Status
    event: Event
    next: Status
    emits: Emit


def _table() -> dict[tuple[Status, Event], Transition]:
    table: dict[tuple[Status, Event], Transition] = {}
    for status in sorted(NON_FINAL):
        for event, target in TARGET.items():
            if event is Event.CANCELLED and status not in _CANCELLABLE:
                continue
            if target > status or (event is Event.CLAIMED and target == status):
                table[(status, event)] = Transition(status, event, target, emits(status, target))
    return table


#: Every (status, event) that moves a message (or keeps a queued one queued);
#: a pair not in it leaves the message as it is.
TRANSITIONS: Mapping[tuple[Status, Event], Transition] = _table()


def step(status: Status, event: Event) -> Transition | None:
    """The transition ``event`` takes from ``status``; None: the event is ignored."""
    return TRANSITIONS.get((status, event))


def rollup(parts: int, recorded: int, delivered: int, ended: Status | None) -> Event | None:
    """The message event its parts add up to.

    ``parts`` the message has, ``recorded`` of them accepted upstream,
    ``delivered`` of them with a ``delivered`` receipt, ``ended`` the final
    status of a part that ended otherwise (the first one), if any.
    """
    if ended is not None and ended.final and ended != Status.DELIVERED:
        return Event(ended.label)  # one part lost is the message lost
    if delivered >= parts:
        return Event.DELIVERED
    if recorded >= parts:
        return Event.SUBMITTED
    return None


def webhook_wanted(status: Status, url: str | None, events: StatusEvents, test: bool) -> bool:
    """Whether a step to ``status`` that emits :attr:`Emit.WEBHOOK` writes an event:
    the message's (or its account's) ``url`` and subscription ``events``."""
    return url is not None and not test and bool(events & (1 << status))


def smpp_receipt_wanted(status: Status, source: Source, registered_delivery: int,
                        test: bool) -> bool:
    """Whether a step to final ``status`` that emits :attr:`Emit.SMPP_RECEIPT` writes one.

    SMPP 3.4 §5.2.17, registered_delivery bits 1..0: 01 asks for a receipt on
    success or failure, 10 on failure only (a delivered message gets none).
    """
    if source != Source.SMPP or test:
        return False
    asked = registered_delivery & 3
    return asked == 1 or (asked == 2 and status != Status.DELIVERED)


def describe() -> str:
    """The table as Markdown (docs/dispatch.md quotes it; a test keeps them equal)."""
    events = list(Event)
    statuses = sorted(NON_FINAL)
    lines = [
        "| status \\ event | " + " | ".join(e.value for e in events) + " |",
        "|---" * (len(events) + 1) + "|",
    ]
    for status in statuses:
        cells = []
        for event in events:
            t = step(status, event)
            if t is None:
                cells.append("-")
                continue
            emitted = [str(e.name).lower() for e in Emit if e and e in t.emits]
            cells.append(t.next.label + (f" ({', '.join(emitted)})" if emitted else ""))
        lines.append(f"| {status.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
