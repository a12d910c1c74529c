"""Message retention on the PostgreSQL store (a mixin; see :mod:`herald.store._retention`).

Each step is one transaction that reads the margin sums' mark ``FOR SHARE``:
a margin read that would move the mark meanwhile waits for the step (and the
step sees every pending entry and gap committed with the mark it read). The
``DELETE`` of messages takes their segments, receipt-wait and queue rows with
it, in the same statement (no foreign keys: migration V21). A step writes
dead tuples that the tables' autovacuum settings (no cost delay; vacuum
every 20,000 changes, migration V1; ``messages`` when 5 % of it is dead,
V22) clear as the purge goes.
"""

from __future__ import annotations

from typing import Any, Final

from herald.store._errors import InvalidRecord
from herald.store._margins import FINAL
from herald.store._model import EventKind
from herald.store._retention import (
    PURGE_BATCH,
    CdrPurge,
    MessagePurge,
    OldCdr,
    OldMessage,
    RecordPurge,
    Retained,
    TextErasure,
    cdr_deltas,
    choose_cdrs,
    choose_messages,
    in_ranges,
    text_done,
)
from herald.store.postgres._margins import _UPSERT, _columns
from herald.store.postgres._part import StorePart

__all__ = ["PostgresRetention"]

#: The most rows a step may take (the port's bound).
MAX_PURGE_LIMIT: Final = 10_000

_SCAN: Final = ("SELECT seq, id, status, done_at, accepted_at FROM messages WHERE seq > $1"
                " ORDER BY seq LIMIT $2")  # fmt: skip
_MARK: Final = "SELECT last_seq FROM cdr_sums_mark FOR SHARE"
_EVENTS: Final = (
    "SELECT id, subject_id, next_attempt_at FROM outbox"
    f" WHERE kind = {int(EventKind.STATUS)} AND subject_id = ANY ($1::text[])"
)
_DELETE_MESSAGES: Final = f"""
WITH gone AS (
    DELETE FROM messages WHERE seq = ANY ($1::bigint[]) AND status >= {FINAL}
    RETURNING seq, id, status),
parts AS (DELETE FROM segments s USING gone WHERE s.message_seq = gone.seq),
waits AS (DELETE FROM awaiting_receipts w USING gone WHERE w.seq = gone.seq),
queued AS (DELETE FROM dispatch_queue q USING gone WHERE q.seq = gone.seq),
cdr AS (UPDATE cdrs c SET status = gone.status FROM gone WHERE c.message_id = gone.id),
routes AS (DELETE FROM message_routes r USING gone WHERE r.message_id = gone.id),
conv AS (DELETE FROM conversions v USING gone WHERE v.message_id = gone.id),
tries AS (DELETE FROM attempts a USING gone WHERE a.message_id = gone.id)
SELECT count(*) FROM gone
"""
_SCAN_CDRS: Final = (
    "SELECT message_id, accepted_at, account_id, country, connector, sell, buy, refunded"
    " FROM cdrs WHERE accepted_at < $1 AND ($2::float8 IS NULL"
    " OR (accepted_at, message_id) > ($2, $3::text))"
    " ORDER BY accepted_at, message_id LIMIT $4"
)
#: Of the CDRs' messages ($1), those that keep their CDR: not final, or not yet
#: summed (after the mark $2, pending, or in a gap).
_HELD_CDRS: Final = f"""
SELECT m.id FROM messages m WHERE m.id = ANY ($1::text[])
  AND (m.status < {FINAL} OR m.seq > $2
       OR EXISTS (SELECT 1 FROM cdr_sums_pending p WHERE p.seq = m.seq)
       OR EXISTS (SELECT 1 FROM cdr_sums_gaps g WHERE m.seq BETWEEN g.lo AND g.hi))
"""


#: The events of kind $1 of the subjects $2 (those still to deliver keep theirs).
_RECORD_EVENTS: Final = (
    "SELECT id, subject_id, next_attempt_at FROM outbox"
    " WHERE kind = $1 AND subject_id = ANY ($2::text[])"
)
#: Per kind read in seq order: the table, its start time and its end (NULL:
#: not over), the kind of its events, and what keeps a row that ended (seqs
#: $1): for a chain, a timer still set or an SMS leg whose message is not final.
_BY_SEQ: Final = {
    Retained.INBOUND: ("inbound", "received_at, received_at", EventKind.INBOUND, None),
    Retained.CHAINS: (
        "chat_chains", f"created_at, CASE WHEN status >= {FINAL} THEN done_at END",
        EventKind.CHAIN,
        "SELECT chain_seq FROM chat_timers WHERE chain_seq = ANY ($1::bigint[])"
        " UNION SELECT l.chain_seq FROM chat_legs l JOIN messages m ON m.id = l.message_id"
        " WHERE l.chain_seq = ANY ($1::bigint[]) AND l.channel = 'sms'"
        f" AND m.status < {FINAL}",
    ),
}
#: Per kind, what a step deletes of the rows chosen: $1 their seqs (``True``)
#: or their ids.
_DELETE_RECORDS: Final = {
    Retained.INBOUND: (("DELETE FROM inbound WHERE seq = ANY ($1::bigint[])", True),),
    Retained.CHAINS: (
        ("DELETE FROM chat_legs WHERE chain_seq = ANY ($1::bigint[])", True),
        ("DELETE FROM chat_timers WHERE chain_seq = ANY ($1::bigint[])", True),
        (f"DELETE FROM chat_chains WHERE seq = ANY ($1::bigint[]) AND status >= {FINAL}", True),
    ),
    Retained.VERIFICATIONS: (
        ("DELETE FROM verification_sends WHERE verification_id = ANY ($1::text[])", False),
        ("DELETE FROM verifications WHERE id = ANY ($1::text[])", False),
    ),
}
_VERIFICATIONS: Final = (
    "SELECT expires_at, id FROM verifications WHERE expires_at < $1"
    " AND ($2::float8 IS NULL OR (expires_at, id) > ($2, $3::text))"
    " ORDER BY expires_at, id LIMIT $4"
)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PURGE_LIMIT:
        raise InvalidRecord("limit", f"must be 1..{MAX_PURGE_LIMIT}")


class PostgresRetention(StorePart):
    """``purge_messages`` and ``purge_cdrs`` of the PostgreSQL store."""

    async def purge_messages(
        self, before: float, *, after: int = 0, limit: int = PURGE_BATCH
    ) -> MessagePurge:
        _check_limit(limit)

        async def step(conn: Any) -> MessagePurge:
            rows = [OldMessage(*r) for r in await conn.fetch(_SCAN, after, limit)]
            if not rows:
                return MessagePurge(0, None)
            mark: int = await conn.fetchval(_MARK)
            pending = {r[0] for r in await conn.fetch(
                "SELECT seq FROM cdr_sums_pending WHERE seq BETWEEN $1 AND $2",
                rows[0].seq, rows[-1].seq)}  # fmt: skip
            gaps = [(r[0], r[1]) for r in await conn.fetch("SELECT lo, hi FROM cdr_sums_gaps")]
            chosen, ended = choose_messages(rows, before, lambda m: (
                m.seq > mark or m.seq in pending or in_ranges(m.seq, gaps)))
            resume = None if ended or len(rows) < limit else rows[-1].seq
            if not chosen:
                return MessagePurge(0, resume)
            found = await conn.fetch(_EVENTS, [m.id for m in chosen])
            # An event still to deliver keeps its message (a later pass takes it).
            live = {r["subject_id"] for r in found if r["next_attempt_at"] is not None}
            chosen = [m for m in chosen if m.id not in live]
            events = [r["id"] for r in found if r["subject_id"] not in live]
            if events:
                await conn.execute("DELETE FROM outbox WHERE id = ANY ($1::bigint[])", events)
            await conn.execute("DELETE FROM retention_text_waiting WHERE seq = ANY ($1::bigint[])",
                               [m.seq for m in chosen])  # fmt: skip
            deleted: int = await conn.fetchval(_DELETE_MESSAGES, [m.seq for m in chosen])
            return MessagePurge(deleted, resume)

        return await self._run(step)

    async def purge_cdrs(
        self, before: float, *, after: tuple[float, str] | None = None,
        limit: int = PURGE_BATCH,
    ) -> CdrPurge:
        _check_limit(limit)
        after_at, after_id = (None, None) if after is None else after

        async def step(conn: Any) -> CdrPurge:
            rows = [OldCdr(*r) for r in await conn.fetch(
                _SCAN_CDRS, before, after_at, after_id, limit)]  # fmt: skip
            if not rows:
                return CdrPurge(0, None)
            resume = None if len(rows) < limit else (rows[-1].accepted_at, rows[-1].message_id)
            mark: int = await conn.fetchval(_MARK)
            held = {r[0] for r in await conn.fetch(
                _HELD_CDRS, [r.message_id for r in rows], mark)}  # fmt: skip
            chosen = choose_cdrs(rows, held.__contains__)
            if not chosen:
                return CdrPurge(0, resume)
            deleted = await conn.execute("DELETE FROM cdrs WHERE message_id = ANY ($1::text[])",
                                         [r.message_id for r in chosen])  # fmt: skip
            # The sums stay those of the CDRs kept (an hour whose CDRs all went
            # has no row left).
            sums = [(*key, *values) for key, values in cdr_deltas(chosen).items()]
            await conn.execute(_UPSERT, *_columns(sums, 8))
            await conn.execute(
                "DELETE FROM cdr_sums s USING unnest($1::bigint[], $2::bigint[], $3::text[],"
                " $4::text[]) k(hour, account_id, connector, country) WHERE s.hour = k.hour"
                " AND s.account_id = k.account_id AND s.connector = k.connector"
                " AND s.country = k.country AND s.messages = 0", *_columns(sums, 4))  # fmt: skip
            return CdrPurge(int(deleted.rsplit(" ", 1)[-1]), resume)

        return await self._run(step)

    async def purge_records(
        self, kind: Retained, before: float, *, after: tuple[float, str] | None = None,
        limit: int = PURGE_BATCH,
    ) -> RecordPurge:
        _check_limit(limit)
        if kind is Retained.FRAUD_DECISIONS:
            # Day partitions, dropped by the leader past [store] history_days.
            return RecordPurge(0, None)

        async def step(conn: Any) -> RecordPurge:
            chosen: list[tuple[int, str]] = []
            resume: tuple[float, str] | None = None
            event_kind: EventKind | None = None
            if kind is Retained.VERIFICATIONS:
                at, last = (None, None) if after is None else after
                rows = await conn.fetch(_VERIFICATIONS, before, at, last, limit)
                chosen = [(0, r["id"]) for r in rows]
                if len(rows) == limit:
                    resume = (rows[-1]["expires_at"], rows[-1]["id"])
            else:
                table, times, event_kind, held_sql = _BY_SEQ[kind]
                rows = await conn.fetch(
                    f"SELECT seq, id, {times} FROM {table} WHERE seq > $1 ORDER BY seq LIMIT $2",
                    int(after[0]) if after else 0, limit)  # fmt: skip
                ended = len(rows) < limit
                for seq, id_, start, end in rows:
                    if start >= before:
                        ended = True
                        break
                    if end is not None and end < before:
                        chosen.append((seq, id_))
                if held_sql is not None and chosen:
                    held = {r[0] for r in await conn.fetch(held_sql, [s for s, _ in chosen])}
                    chosen = [(s, i) for s, i in chosen if s not in held]
                if not ended:
                    resume = (float(rows[-1]["seq"]), rows[-1]["id"])
            if event_kind is not None and chosen:
                found = await conn.fetch(_RECORD_EVENTS, int(event_kind), [i for _, i in chosen])
                # An event still to deliver keeps its row (a later pass takes it).
                live = {r["subject_id"] for r in found if r["next_attempt_at"] is not None}
                chosen = [(s, i) for s, i in chosen if i not in live]
                events = [r["id"] for r in found if r["subject_id"] not in live]
                if events:
                    await conn.execute("DELETE FROM outbox WHERE id = ANY ($1::bigint[])", events)
            if not chosen:
                return RecordPurge(0, resume)
            done = ""
            for sql, by_seq in _DELETE_RECORDS[kind]:  # the last one deletes the rows counted
                done = await conn.execute(sql, [s if by_seq else i for s, i in chosen])
            return RecordPurge(int(done.rsplit(" ", 1)[-1]), resume)

        return await self._run(step)

    async def erase_texts(self, before: float, *, limit: int = PURGE_BATCH) -> TextErasure:
        _check_limit(limit)

        async def step(conn: Any) -> TextErasure:
            # One eraser at a time (a leadership changing hands): the mark's lock.
            mark: int = await conn.fetchval("SELECT after FROM retention_text_mark FOR UPDATE")
            # The messages read earlier that are done now (the list is short:
            # those in flight when their turn came).
            # (The list read first: a join would let the planner scan messages
            # while the list has no statistics yet.)
            listed = [r[0] for r in await conn.fetch("SELECT seq FROM retention_text_waiting")]
            done: list[int] = []
            if listed:
                done = [r[0] for r in await conn.fetch(
                    "SELECT seq FROM messages WHERE seq = ANY ($1::bigint[])"
                    f" AND status >= {FINAL} AND done_at < $2 LIMIT $3",
                    listed, before, limit)]  # fmt: skip
                await conn.execute(
                    "DELETE FROM retention_text_waiting WHERE seq = ANY ($1::bigint[])", done)
            erase = list(done)
            rows = await conn.fetch(
                "SELECT seq, status, done_at, accepted_at FROM messages WHERE seq > $1"
                " ORDER BY seq LIMIT $2", mark, limit)  # fmt: skip
            waiting: list[int] = []
            ended = len(rows) < limit
            for seq, status, done_at, accepted_at in rows:
                if accepted_at >= before:  # and so are the ones after it
                    ended = True
                    break
                (erase if text_done(status, done_at, before) else waiting).append(seq)
                mark = seq
            if waiting:
                await conn.execute(
                    "INSERT INTO retention_text_waiting (seq) SELECT unnest($1::bigint[])"
                    " ON CONFLICT DO NOTHING", waiting)  # fmt: skip
            await conn.execute("UPDATE retention_text_mark SET after = $1", mark)
            erased = await conn.execute(
                "UPDATE messages SET body = ''::bytea WHERE seq = ANY ($1::bigint[])"
                " AND octet_length(body) > 0", erase)  # fmt: skip
            return TextErasure(int(erased.rsplit(" ", 1)[-1]), len(done) == limit or not ended)

        return await self._run(step)
