"""The PostgreSQL store's margin sums: hourly rollups extended on read, as the
SQLite store's (``herald.store._sqlite_margins``), for several writers (private).

Theory of operation
-------------------
``cdr_sums`` holds the CDRs' sums (messages, revenue = sell less refunds, cost
= buy, unpriced) by hour of acceptance, account, connector and country, and
nothing is written on the hot path: a margin read brings the sums up to date
from what happened since the previous read, in one snapshot (a read-only
REPEATABLE READ transaction), then one short transaction stores that (skipped
when another read, of this node or another, stored its own first: the mark's
``version``, read under its row lock). The answer is the sum of every CDR of
the period in that snapshot; the hours the period cuts are summed from the
CDRs (``herald.store._margins.period_parts``).

- **Changed CDRs**, as on SQLite: a CDR changes after it is written in the
  transaction that changes its message's status (connector and buy price when
  sent, the refund when final), and never once the status is final. So each
  CDR summed while its message was not final is listed in
  ``cdr_sums_pending`` with the status and values summed; a read takes the old
  values out of the sums for those whose status moved and puts the new ones in.
- **New CDRs**: a CDR is written with its message, so the CDRs not yet summed
  are those of the messages after the mark (``cdr_sums_mark.last_seq``), up to
  the newest the snapshot sees. Unlike SQLite's one writer, several
  transactions (nodes) take seqs at once and commit in any order: a seq below
  the newest visible one may still be in flight (it commits later) or rolled
  back (it never comes). Each such seq is kept as a gap (``cdr_sums_gaps``,
  ranges) that every read looks into again: a message that became visible is
  summed then. A gap is forgotten once every transaction that could hold it
  has ended: the transactions running when it was found (their virtual
  transaction ids from ``pg_locks``, read after the snapshot; a transaction
  that took a seq below the newest visible one began before the snapshot, so
  it runs still or has ended by then). A read asks which of them still run
  *before* it takes its snapshot: when none does, a gap's message that
  committed is in the snapshot, and a seq still missing never comes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from herald.store._billing import MarginRow
from herald.store._errors import InvalidRecord, StoreError
from herald.store._margins import (
    FINAL,
    HOUR,
    MARGIN_KEYS,
    Hours,
    HourSums,
    Sums,
    add_cdr,
    add_hours,
    grouped,
    merge,
    period_parts,
)
from herald.store.postgres._part import StorePart

__all__ = ["PostgresMargins"]

log = logging.getLogger("herald.store")

#: A CDR's hour as the SQLite store's ``CAST(accepted_at AS INTEGER) / 3600`` (an
#: integer division: exact, where a float division may round up to the next hour).
_HOUR_OF: Final = "floor(c.accepted_at)::bigint / 3600"
#: The messages of the seq ranges ``[$1[i], $2[i]]`` and their CDRs.
_IN_RANGES: Final = (
    " FROM unnest($1::bigint[], $2::bigint[]) r(lo, hi)"
    " JOIN messages m ON m.seq >= r.lo AND m.seq <= r.hi"
    " JOIN cdrs c ON c.message_id = m.id"
)
_NEW_SUMS: Final = (
    f"SELECT {_HOUR_OF}, c.account_id, coalesce(c.connector, ''), c.country, count(*),"
    " sum(c.sell - c.refunded), coalesce(sum(c.buy), 0),"
    " count(*) FILTER (WHERE c.connector IS NOT NULL AND c.buy IS NULL)"
    f"{_IN_RANGES} GROUP BY 1, 2, 3, 4"
)
_NEW_PENDING: Final = (
    "SELECT m.seq, m.status, coalesce(c.connector, ''), c.buy, c.refunded"
    f"{_IN_RANGES} WHERE m.status < {FINAL}"
)
#: The seqs the snapshot sees in the gaps ``[$1[i], $2[i]]`` (charged or not).
_SEEN: Final = (
    "SELECT m.seq FROM unnest($1::bigint[], $2::bigint[]) r(lo, hi)"
    " JOIN messages m ON m.seq >= r.lo AND m.seq <= r.hi"
)
#: The seqs in ``($1, $2]`` the snapshot does not see, as ranges.
_NEW_GAPS: Final = """
SELECT seq + 1, next - 1 FROM (
    SELECT seq, lead(seq) OVER (ORDER BY seq) AS next FROM (
        SELECT $1::bigint AS seq
        UNION ALL SELECT seq FROM messages WHERE seq > $1 AND seq <= $2) s) g
WHERE next > seq + 1
"""
#: The transactions running now (but this session's), by virtual transaction id.
_RUNNING: Final = (
    "SELECT coalesce(array_agg(virtualxid), '{}') FROM pg_locks"
    " WHERE locktype = 'virtualxid' AND granted AND pid IS DISTINCT FROM pg_backend_pid()"
)
_MOVED: Final = (
    "SELECT p.seq, p.connector, p.buy, p.refunded, m.status, c.accepted_at, c.account_id,"
    " c.country, c.sell, coalesce(c.connector, ''), c.buy, c.refunded"
    " FROM cdr_sums_pending p JOIN messages m ON m.seq = p.seq"
    " JOIN cdrs c ON c.message_id = m.id WHERE m.status <> p.status"
)
_OF_ACCOUNT: Final = " AND ($3::bigint IS NULL OR account_id = $3)"
_LIVE: Final = (
    "SELECT account_id, coalesce(connector, ''), country, count(*), sum(sell - refunded),"
    " coalesce(sum(buy), 0), count(*) FILTER (WHERE connector IS NOT NULL AND buy IS NULL)"
    f" FROM cdrs WHERE accepted_at >= $1 AND accepted_at < $2{_OF_ACCOUNT} GROUP BY 1, 2, 3"
)
_COUNT: Final = (
    "SELECT count(*) FROM (SELECT 1 FROM cdrs WHERE accepted_at >= $1 AND accepted_at < $2"
    f"{_OF_ACCOUNT} LIMIT $4) x"
)
_ROLLED: Final = (
    "SELECT account_id, connector, country, sum(messages), sum(revenue), sum(cost),"
    f" sum(unpriced) FROM cdr_sums WHERE hour >= $1 AND hour < $2{_OF_ACCOUNT} GROUP BY 1, 2, 3"
)
_UPSERT: Final = """
INSERT INTO cdr_sums AS s (hour, account_id, connector, country, messages, revenue, cost,
                           unpriced)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[])
ON CONFLICT (hour, account_id, connector, country) DO UPDATE SET
    messages = s.messages + excluded.messages, revenue = s.revenue + excluded.revenue,
    cost = s.cost + excluded.cost, unpriced = s.unpriced + excluded.unpriced
"""
_PENDING_NEW: Final = """
INSERT INTO cdr_sums_pending (seq, status, connector, buy, refunded)
SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::bigint[], $5::bigint[])
"""
_PENDING_MOVED: Final = """
UPDATE cdr_sums_pending p SET status = u.status, connector = u.connector, buy = u.buy,
    refunded = u.refunded
FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::bigint[], $5::bigint[])
    AS u(seq, status, connector, buy, refunded)
WHERE p.seq = u.seq
"""

Gap = tuple[int, int, str]  # lo, hi, the transactions that could hold it (comma-separated)
Pending = tuple[int, int, str, int | None, int]  # seq, status, connector, buy, refunded


@dataclass(frozen=True, slots=True)
class _Update:
    """What a read found since the mark, to store (:func:`_apply`)."""

    version: int  # the mark's version the read started from
    last_seq: int  # the new mark
    deltas: HourSums
    pending_new: list[Pending]
    pending_moved: list[Pending]
    pending_done: list[int]  # seqs of messages now final
    gaps: list[Gap]  # every gap from now on


def _columns(rows: Sequence[Sequence[Any]], count: int) -> list[list[Any]]:
    """``rows`` as ``count`` arrays (the ``unnest`` parameters of one statement)."""
    return [[r[i] for r in rows] for i in range(count)]


def _left(lo: int, hi: int, seen: Iterable[int]) -> list[tuple[int, int]]:
    """The ranges of ``[lo, hi]`` without the (sorted) seqs ``seen``."""
    out, start = [], lo
    for seq in seen:
        if lo <= seq <= hi:
            if seq > start:
                out.append((start, seq - 1))
            start = seq + 1
    if start <= hi:
        out.append((start, hi))
    return out


class _Snapshot:
    """One read transaction's view: the sums as of the mark plus what changed."""

    def __init__(self, conn: Any, account_id: int | None, deltas: HourSums) -> None:
        self._conn = conn
        self._account = account_id
        self.deltas = deltas

    async def live(self, into: Sums, lo: float, hi: float, sign: int = 1) -> None:
        """Add (``sign`` -1: take out) the CDRs accepted in ``[lo, hi)``, read one by one."""
        merge(into, await self._conn.fetch(_LIVE, lo, hi, self._account), sign)

    async def count(self, lo: float, hi: float, limit: int | None = None) -> int:
        """The CDRs accepted in ``[lo, hi)``, at most ``limit`` of them (an index scan)."""
        n: int = await self._conn.fetchval(_COUNT, lo, hi, self._account, limit)
        return n

    async def hours(self, into: Sums, first: int, last: int) -> None:
        """Add the sums of the hours ``[first, last)``: rolled up, and changed since."""
        merge(into, await self._conn.fetch(_ROLLED, first, last, self._account))
        add_hours(into, self.deltas, first, last, self._account)

    async def cut(self, into: Sums, hour: int, lo: float, hi: float) -> None:
        """Add the part ``[lo, hi)`` of ``hour``: read from the CDRs, or the whole
        hour less the rest, whichever has fewer CDRs."""
        start, end = hour * HOUR, (hour + 1) * HOUR
        rest = await self.count(start, lo) + await self.count(hi, end)
        if await self.count(lo, hi, rest + 1) <= rest:
            await self.live(into, lo, hi)
            return
        await self.hours(into, hour, hour + 1)
        await self.live(into, start, lo, -1)
        await self.live(into, hi, end, -1)


async def _read(conn: Any, since: float, until: float, account_id: int | None,
                running: frozenset[str]) -> tuple[Sums, _Update | None]:  # fmt: skip
    """The sums of ``[since, until)`` in ``conn``'s snapshot, and what to store
    (``None``: nothing changed since the mark). ``running``: the transactions
    that ran just before the snapshot was taken."""
    last_seq, version = await conn.fetchrow("SELECT last_seq, version FROM cdr_sums_mark")
    top: int = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM messages")
    old_gaps: list[Gap] = [tuple(r) for r in await conn.fetch(
        "SELECT lo, hi, waits FROM cdr_sums_gaps ORDER BY lo")]  # fmt: skip
    ranges = [(lo, hi) for lo, hi, _ in old_gaps]
    if top > last_seq:
        ranges.append((last_seq + 1, top))
    deltas: HourSums = {}
    pending_new: list[Pending] = []
    if ranges:
        los, his = _columns(ranges, 2)
        for hour, account, connector, country, *values in await conn.fetch(_NEW_SUMS, los, his):
            deltas[(hour, account, connector, country)] = [int(v) for v in values]
        pending_new = [tuple(r) for r in await conn.fetch(_NEW_PENDING, los, his)]
    gaps: list[Gap] = []
    if old_gaps:
        los, his = _columns(old_gaps, 2)
        seen = sorted(r[0] for r in await conn.fetch(_SEEN, los, his))
        for lo, hi, waits in old_gaps:
            if running.isdisjoint(waits.split(",")):
                continue  # its transactions ended before the snapshot: nothing more comes
            gaps += [(a, b, waits) for a, b in _left(lo, hi, seen)]
    if top > last_seq:
        found = await conn.fetch(_NEW_GAPS, last_seq, top)
        if found:
            waits = ",".join(await conn.fetchval(_RUNNING))
            gaps += [(r[0], r[1], waits) for r in found]
    moved: list[Pending] = []
    done: list[int] = []
    for (seq, old_connector, old_buy, old_refunded, status, at, account, country, sell,
         connector, buy, refunded) in await conn.fetch(_MOVED):  # fmt: skip
        hour = int(at) // HOUR
        add_cdr(deltas, (hour, account, old_connector, country), -1, sell, old_connector,
                old_buy, old_refunded)
        add_cdr(deltas, (hour, account, connector, country), 1, sell, connector, buy, refunded)
        if status >= FINAL:
            done.append(seq)
        else:
            moved.append((seq, status, connector, buy, refunded))
    snap = _Snapshot(conn, account_id, deltas)
    sums: Sums = {}
    for part in period_parts(since, until):
        if isinstance(part, Hours):
            await snap.hours(sums, part.first, part.last)
        else:
            await snap.cut(sums, part.hour, part.lo, part.hi)
    if top <= last_seq and not moved and not done and gaps == old_gaps and not deltas:
        return sums, None
    return sums, _Update(version, max(top, last_seq), deltas, pending_new, moved, done, gaps)


async def _apply(conn: Any, update: _Update) -> bool:
    """Store what a read found (in a transaction); False, storing nothing, when
    another read stored its own since this one began."""
    version = await conn.fetchval("SELECT version FROM cdr_sums_mark FOR UPDATE")
    if version != update.version:
        return False
    rows = [(*key, *values) for key, values in update.deltas.items() if any(values)]
    if rows:
        await conn.execute(_UPSERT, *_columns(rows, 8))
    if update.pending_new:
        await conn.execute(_PENDING_NEW, *_columns(update.pending_new, 5))
    if update.pending_moved:
        await conn.execute(_PENDING_MOVED, *_columns(update.pending_moved, 5))
    if update.pending_done:
        await conn.execute("DELETE FROM cdr_sums_pending WHERE seq = ANY ($1::bigint[])",
                           update.pending_done)  # fmt: skip
    await conn.execute("DELETE FROM cdr_sums_gaps")
    if update.gaps:
        await conn.execute("INSERT INTO cdr_sums_gaps (lo, hi, waits) SELECT * FROM"
                           " unnest($1::bigint[], $2::bigint[], $3::text[])",
                           *_columns(update.gaps, 3))  # fmt: skip
    await conn.execute("UPDATE cdr_sums_mark SET last_seq = $1, version = version + 1",
                       update.last_seq)  # fmt: skip
    return True


class PostgresMargins(StorePart):
    """``Store.margin`` from the hourly sums (see the module docstring)."""

    async def margin(
        self, since: float, until: float, by: str, *, account_id: int | None = None
    ) -> tuple[MarginRow, ...]:
        if by not in MARGIN_KEYS:
            raise InvalidRecord("by", f"one of {', '.join(MARGIN_KEYS)}")
        # Before the snapshot: a gap's transactions that ended by now are in it.
        running = frozenset(await self._one(lambda c: c.fetchval(_RUNNING)))
        sums, update = await self._snapshot(
            lambda c: _read(c, since, until, account_id, running))
        if update is not None:
            try:
                await self._run(lambda c: _apply(c, update))
            except StoreError as exc:  # the sums are right; the next read does it again
                log.warning("storing the margin sums failed: %s", exc)
        return tuple(MarginRow(*r) for r in grouped(sums, by))
