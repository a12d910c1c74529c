"""The SQLite store's margin sums, kept in hourly rollups extended on read (the
arithmetic, shared with the PostgreSQL store, is ``herald.store._margins``).

Theory of operation
-------------------
Summing every CDR of a period reads each one (about 1.6 s for a million); a
covering index would make that 1.8 times faster at the price of an index write
for every charged message on the hot path. Instead, ``cdr_sums`` holds the sums
(messages, revenue = sell less refunds, cost = buy, unpriced) of the CDRs by
hour of acceptance, account, connector and country, and nothing is written
when a message is accepted, sent or refunded: a margin read brings the sums up
to date, from what happened since the previous read.

- **New CDRs.** A CDR is written in the transaction that stores its message,
  and a message's ``seq`` only grows (one writer; retention deletes only
  messages already summed and never the newest, whose ``seq`` SQLite would
  give again: ``herald.store._retention``), so the CDRs not yet summed are
  those of the messages after the mark (``cdr_sums_mark.last_seq``): a range
  of the messages' primary key. A CDR retention deletes leaves the sums with it.
- **Changed CDRs.** A CDR changes after it is written, by the lifecycle
  triggers: its connector and buy price when its message is sent, its refund
  when the message ends. Once the message's status is final it never changes
  again. So each CDR summed while its message was not final is listed in
  ``cdr_sums_pending`` with the status and the values summed; a read finds those
  whose status moved (a primary-key read of each, in ``seq`` order), takes their
  old values out of the sums and puts the new ones in. The list holds the
  charged messages not yet final (the queue, those awaiting a receipt).

A read takes one snapshot (a read transaction) for all of it: the sums of the
hours inside the period from ``cdr_sums`` plus what changed since the mark; an
hour that the period's start or end cuts through is summed from the CDRs
(``cdrs_time``) for the smaller of its two parts: the part inside, or the whole
hour less the part outside (for a period ending now, the part after now: none).
Then one short write stores what changed (skipped when another read stored its
own first: ``version``), so the next read starts from there. The answer is the
same as summing every CDR of the period in that snapshot.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

from herald.store._margins import (
    FINAL,
    HOUR,
    Hours,
    HourSums,
    Sums,
    add_cdr,
    add_hours,
    merge,
    period_parts,
)

__all__ = ["MarginUpdate", "apply_margin_update", "read_margins"]

_NEW_SUMS: Final = (
    "SELECT CAST(c.accepted_at AS INTEGER) / 3600, c.account_id, COALESCE(c.connector, ''),"
    " c.country, count(*), sum(c.sell - c.refunded), COALESCE(sum(c.buy), 0),"
    " sum(c.connector IS NOT NULL AND c.buy IS NULL)"
    " FROM messages m JOIN cdrs c ON c.message_id = m.id WHERE m.seq > ? AND m.seq <= ?"
    " GROUP BY 1, 2, 3, 4"
)
_NEW_PENDING: Final = (
    "SELECT m.seq, m.status, COALESCE(c.connector, ''), c.buy, c.refunded"
    " FROM messages m JOIN cdrs c ON c.message_id = m.id"
    f" WHERE m.seq > ? AND m.seq <= ? AND m.status < {FINAL}"
)
_MOVED: Final = (
    "SELECT p.seq, p.connector, p.buy, p.refunded, m.status, c.accepted_at, c.account_id,"
    " c.country, c.sell, COALESCE(c.connector, ''), c.buy, c.refunded"
    " FROM cdr_sums_pending p JOIN messages m ON m.seq = p.seq"
    " JOIN cdrs c ON c.message_id = m.id WHERE m.status <> p.status"
)
_LIVE: Final = (
    "SELECT account_id, COALESCE(connector, ''), country, count(*), sum(sell - refunded),"
    " COALESCE(sum(buy), 0), sum(connector IS NOT NULL AND buy IS NULL)"
    " FROM cdrs WHERE accepted_at >= ? AND accepted_at < ?"
)
_ROLLED: Final = (
    "SELECT account_id, connector, country, sum(messages), sum(revenue), sum(cost),"
    " sum(unpriced) FROM cdr_sums WHERE hour >= ? AND hour < ?"
)
_UPSERT: Final = (
    "INSERT INTO cdr_sums (hour, account_id, connector, country, messages, revenue, cost,"
    " unpriced) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET"
    " messages = messages + excluded.messages, revenue = revenue + excluded.revenue,"
    " cost = cost + excluded.cost, unpriced = unpriced + excluded.unpriced"
)


@dataclass(frozen=True, slots=True)
class MarginUpdate:
    """What a read found since the mark, to store (:func:`apply_margin_update`)."""

    version: int  # the mark's version the read started from
    last_seq: int  # the new mark
    deltas: HourSums
    #: seq, status, connector, buy, refunded (as summed)
    pending_new: list[tuple[int, int, str, int | None, int]]
    pending_moved: list[tuple[int, str, int | None, int, int]]  # status, ..., seq
    pending_done: list[tuple[int]]  # seq of messages now final


class _Snapshot:
    """One read transaction's view: the sums as of the mark plus what changed."""

    def __init__(self, conn: sqlite3.Connection, account_id: int | None) -> None:
        self._conn = conn
        self._account = account_id
        self.deltas: HourSums = {}

    def _where(self, sql: str) -> tuple[str, tuple[int, ...]]:
        if self._account is None:
            return sql, ()
        return sql + " AND account_id = ?", (self._account,)

    def live(self, into: Sums, lo: float, hi: float, sign: int = 1) -> None:
        """Add (``sign`` -1: take out) the CDRs accepted in ``[lo, hi)``, read one by one."""
        sql, extra = self._where(_LIVE)
        merge(into, self._conn.execute(sql + " GROUP BY 1, 2, 3", (lo, hi, *extra)), sign)

    def count(self, lo: float, hi: float, limit: int = -1) -> int:
        """The CDRs accepted in ``[lo, hi)``, at most ``limit`` of them (-1: all):
        an index-only count, bounded by ``limit``."""
        sql, extra = self._where("SELECT 1 FROM cdrs WHERE accepted_at >= ? AND accepted_at < ?")
        return int(self._conn.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)",
                                      (lo, hi, *extra, limit)).fetchone()[0])

    def hours(self, into: Sums, first: int, last: int) -> None:
        """Add the sums of the hours ``[first, last)``: rolled up, and changed since."""
        sql, extra = self._where(_ROLLED)
        merge(into, self._conn.execute(sql + " GROUP BY 1, 2, 3", (first, last, *extra)))
        add_hours(into, self.deltas, first, last, self._account)

    def cut(self, into: Sums, hour: int, lo: float, hi: float) -> None:
        """Add the part ``[lo, hi)`` of ``hour``: read from the CDRs, or the whole
        hour less the rest, whichever has fewer CDRs."""
        start, end = hour * HOUR, (hour + 1) * HOUR
        rest = self.count(start, lo) + self.count(hi, end)  # for a period to now: none after
        if self.count(lo, hi, rest + 1) <= rest:
            self.live(into, lo, hi)
            return
        self.hours(into, hour, hour + 1)
        self.live(into, start, lo, -1)
        self.live(into, hi, end, -1)


def read_margins(conn: sqlite3.Connection, since: float, until: float,
                 account_id: int | None) -> tuple[Sums, MarginUpdate | None]:  # fmt: skip
    """The sums of the CDRs accepted in ``[since, until)`` by account, connector and
    country, in one snapshot; and what to store for the next read (``None``:
    nothing changed since the mark)."""
    conn.execute("BEGIN")
    try:
        last_seq, version = conn.execute(
            "SELECT last_seq, version FROM cdr_sums_mark").fetchone()
        top = conn.execute("SELECT COALESCE(max(seq), 0) FROM messages").fetchone()[0]
        snap = _Snapshot(conn, account_id)
        deltas = snap.deltas
        pending_new: list[tuple[int, int, str, int | None, int]] = []
        if top > last_seq:
            for hour, account, connector, country, *values in conn.execute(
                    _NEW_SUMS, (last_seq, top)):
                deltas[(hour, account, connector, country)] = [int(v) for v in values]
            pending_new = conn.execute(_NEW_PENDING, (last_seq, top)).fetchall()
        moved: list[tuple[int, str, int | None, int, int]] = []
        done: list[tuple[int]] = []
        for (seq, old_connector, old_buy, old_refunded, status, at, account, country, sell,
             connector, buy, refunded) in conn.execute(_MOVED):  # fmt: skip
            hour = int(at) // HOUR  # as CAST(accepted_at AS INTEGER) / 3600
            add_cdr(deltas, (hour, account, old_connector, country), -1, sell, old_connector,
                    old_buy, old_refunded)
            add_cdr(deltas, (hour, account, connector, country), 1, sell, connector, buy,
                    refunded)
            if status >= FINAL:
                done.append((seq,))
            else:
                moved.append((status, connector, buy, refunded, seq))
        sums: Sums = {}
        for part in period_parts(since, until):
            if isinstance(part, Hours):
                snap.hours(sums, part.first, part.last)
            else:
                snap.cut(sums, part.hour, part.lo, part.hi)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if top <= last_seq and not moved and not done:
        return sums, None
    return sums, MarginUpdate(version, max(top, last_seq), deltas, pending_new, moved, done)


def apply_margin_update(conn: sqlite3.Connection, update: MarginUpdate) -> bool:
    """Store what a read found (in the writer's transaction); False, storing
    nothing, when another read stored its own since this one began."""
    (version,) = conn.execute("SELECT version FROM cdr_sums_mark").fetchone()
    if version != update.version:
        return False
    conn.executemany(_UPSERT, [(*key, *values) for key, values in update.deltas.items()
                               if any(values)])  # fmt: skip
    conn.executemany("INSERT INTO cdr_sums_pending (seq, status, connector, buy, refunded)"
                     " VALUES (?,?,?,?,?)", update.pending_new)  # fmt: skip
    conn.executemany("UPDATE cdr_sums_pending SET status = ?, connector = ?, buy = ?,"
                     " refunded = ? WHERE seq = ?", update.pending_moved)  # fmt: skip
    conn.executemany("DELETE FROM cdr_sums_pending WHERE seq = ?", update.pending_done)
    conn.execute("UPDATE cdr_sums_mark SET last_seq = ?, version = version + 1",
                 (update.last_seq,))
    return True
