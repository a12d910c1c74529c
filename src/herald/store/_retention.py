"""Message retention: which old rows a purge step takes (pure; both stores use it).

Theory of operation
-------------------
``[store] message_days`` and ``cdr_days`` (docs/operations: ``docs/scale-out.md``,
"Retention") are carried out by :meth:`Store.purge_messages` and
:meth:`Store.purge_cdrs`, called in turns by the leader's housekeeping
(``herald.dispatch._retention``). Each call is one transaction over at most
``limit`` rows, so a write on the hot path waits behind one short step, never
behind the whole purge; the caller resumes ``after`` the last row a step read.

A message goes when it is final, ended (``done_at``) before the cutoff, and
nothing still needs its row:

- its margin sums are up to date (its ``seq`` at or below the sums' mark, not
  in ``cdr_sums_pending`` nor, on PostgreSQL, in a gap): the sums are read from
  the messages after the mark, so a message deleted before they saw it would
  never be counted (the caller brings the sums up to date before a purge);
- no event of it is still to be delivered (a webhook being retried, an SMPP
  receipt waiting for the customer's receiver): it goes at a later purge;
- on SQLite, it is not the newest message: SQLite gives a new row the largest
  ``seq`` plus one, and a reused ``seq`` would hide a new message from the sums.

With it go its segments (and their receipt checks), routes, conversions,
submit and webhook attempts (its timeline) and given-up events; its CDR
stays (``cdr_days`` decides) and keeps the message's final status. Messages
are read in ``seq`` order, which is the order of acceptance: a step that reads
a message accepted at or after the cutoff ends the pass (no message accepted
then ended before it).

``text_days`` (:meth:`Store.erase_texts`) empties the body of a message that
is final and ended before its cutoff, keeping the row. Its pass does not
start from the oldest row each time: a mark (``retention_text_mark``) says
which messages it has read, and the ones it read while not final, or ended
too recently, wait in ``retention_text_waiting`` (by ``seq``) until a later
step finds them done.

A CDR goes when accepted before the ``cdr_days`` cutoff and its message is
gone or final with its sums up to date; its values are taken out of the
hourly sums in the same transaction, so that a margin report stays the sum of
the CDRs kept. Balances are running totals: deleting a CDR never moves one.

The rest of the history (:meth:`Store.purge_records`, a :class:`Retained` kind
at a time) goes by ``message_days`` too, each from the moment it ended:

- an inbound (MO) message when received before the cutoff, unless its
  webhook or SMPP delivery is still to be made;
- a chain when final and ended (``done_at``) before the cutoff, with its legs,
  unless a timer of it is still set or an SMS leg's message is not final
  (then it is not really over) or its event is still to deliver;
- a verification when its expiry passed before the cutoff (an approval or
  cancel comes before the expiry, so it ended before that), with its sends;
  a pending one is over at its expiry, whatever its stored status says;
- on SQLite, a decision of the pumping defence made before the cutoff, unless
  its webhook event is still to deliver (on PostgreSQL they live in day
  partitions that ``history_days`` drops: ``herald.store.postgres._history``).

Their given-up events go with them. None of them is read by the margin sums,
and balances are running totals: no money moves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

from herald.store._margins import FINAL, HOUR, HourSums, add_cdr

__all__ = [
    "PURGE_BATCH",
    "CdrPurge",
    "MessagePurge",
    "OldCdr",
    "OldMessage",
    "RecordPurge",
    "Retained",
    "TextErasure",
    "cdr_deltas",
    "choose_cdrs",
    "choose_messages",
    "in_ranges",
    "text_done",
]

#: Rows one purge step reads and deletes at most, in one transaction
#: (``bench/retention.py``: the hot path's write waits one step at worst).
PURGE_BATCH: Final = 500


@dataclass(frozen=True, slots=True)
class MessagePurge:
    """One :meth:`Store.purge_messages` step: messages deleted, and the ``seq`` to
    resume ``after`` (``None``: the pass reached the cutoff)."""

    deleted: int
    after: int | None


@dataclass(frozen=True, slots=True)
class CdrPurge:
    """One :meth:`Store.purge_cdrs` step: CDRs deleted, and the ``(accepted_at,
    message_id)`` to resume ``after`` (``None``: the pass reached the cutoff)."""

    deleted: int
    after: tuple[float, str] | None


class Retained(Enum):
    """The history :meth:`Store.purge_records` deletes by ``[store] message_days``
    besides messages (each row from the moment it ended; see the module)."""

    INBOUND = "inbound"  # MO messages, by their reception
    CHAINS = "chains"  # chains and their legs, by their end
    VERIFICATIONS = "verifications"  # and their sends, by their expiry
    FRAUD_DECISIONS = "fraud_decisions"  # SQLite's; PostgreSQL's by history_days


@dataclass(frozen=True, slots=True)
class RecordPurge:
    """One :meth:`Store.purge_records` step: rows deleted (not counting the
    rows that went with them: legs, sends, events), and the position to resume
    ``after`` (``None``: the pass reached the cutoff). The position is the
    store's: a row's time or sequence number and its id."""

    deleted: int
    after: tuple[float, str] | None


@dataclass(frozen=True, slots=True)
class TextErasure:
    """One :meth:`Store.erase_texts` step: texts erased, and whether there may
    be more to do now (``False``: the pass is done)."""

    erased: int
    more: bool


def text_done(status: int, done_at: float | None, before: float) -> bool:
    """Whether a message's text may be erased: final, ended before ``before``."""
    return status >= FINAL and done_at is not None and done_at < before


class OldMessage(NamedTuple):
    """A message as a purge step reads it (columns in this order)."""

    seq: int
    id: str
    status: int
    done_at: float | None
    accepted_at: float


class OldCdr(NamedTuple):
    """A CDR as a purge step reads it (columns in this order)."""

    message_id: str
    accepted_at: float
    account_id: int
    country: str
    connector: str | None
    sell: int
    buy: int | None
    refunded: int


def choose_messages(
    rows: Iterable[OldMessage], before: float, held: Callable[[OldMessage], bool]
) -> tuple[list[OldMessage], bool]:
    """The rows (in ``seq`` order) that may go: final, ended before ``before``,
    and not ``held``; and whether the pass ended (a row accepted at or after
    ``before``)."""
    chosen: list[OldMessage] = []
    for row in rows:
        if row.accepted_at >= before:
            return chosen, True
        if (row.status >= FINAL and row.done_at is not None and row.done_at < before
                and not held(row)):
            chosen.append(row)
    return chosen, False


def choose_cdrs(rows: Iterable[OldCdr],
                held: Callable[[str], bool]) -> list[OldCdr]:  # fmt: skip
    """The CDRs whose message id is not ``held`` (a message not final, or whose
    sums are not up to date)."""
    return [r for r in rows if not held(r.message_id)]


def cdr_deltas(rows: Iterable[OldCdr]) -> HourSums:
    """What taking ``rows`` out of the hourly sums changes (all negative)."""
    deltas: HourSums = {}
    for r in rows:
        connector = r.connector or ""
        # The hour as the sums have it: CAST(accepted_at AS INTEGER) / 3600.
        add_cdr(deltas, (int(r.accepted_at) // HOUR, r.account_id, connector, r.country), -1,
                r.sell, connector, r.buy, r.refunded)  # fmt: skip
    return deltas


def in_ranges(seq: int, ranges: Iterable[tuple[int, int]]) -> bool:
    """Whether ``seq`` lies in one of the inclusive ``ranges`` (the sums' gaps)."""
    return any(lo <= seq <= hi for lo, hi in ranges)
