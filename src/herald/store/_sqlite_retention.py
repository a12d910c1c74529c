"""Message retention on the SQLite store (a mixin; see :mod:`herald.store._retention`).

A step chooses its rows in a reader's snapshot (the writer does not wait for
that: the scan of the outbox for the chosen messages' events is there), then
deletes them in one short write. Nothing it chose can change meanwhile: a
final status is never replaced, a final message gets no new event, and the
margin sums' mark only grows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TypeVar

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
    text_done,
)
from herald.store._sqlite_conn import Readers

__all__ = ["SQLiteRetention"]

T = TypeVar("T")

#: The most rows a step may take (the port's bound).
MAX_PURGE_LIMIT = 10_000

_SCAN = ("SELECT seq, id, status, done_at, accepted_at FROM messages WHERE seq > ?"
         " ORDER BY seq LIMIT ?")  # fmt: skip
#: The chosen messages' events (no index on subject_id: one scan of the outbox,
#: which holds only events not yet delivered).
_EVENTS = (
    "SELECT id, subject_id, next_attempt_at FROM outbox"
    f" WHERE kind = {int(EventKind.STATUS)} AND subject_id IN (SELECT value FROM json_each(?))"
)
_SCAN_CDRS = (
    "SELECT message_id, accepted_at, account_id, country, connector, sell, buy, refunded"
    " FROM cdrs WHERE accepted_at < ? AND (accepted_at, message_id) > (?, ?)"
    " ORDER BY accepted_at, message_id LIMIT ?"
)
_UPSERT = (
    "INSERT INTO cdr_sums (hour, account_id, connector, country, messages, revenue, cost,"
    " unpriced) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET"
    " messages = messages + excluded.messages, revenue = revenue + excluded.revenue,"
    " cost = cost + excluded.cost, unpriced = unpriced + excluded.unpriced"
)


#: A kind's chosen rows: (seq or 0, id) each, the given-up events that go with
#: them, and where to resume.
_Chosen = tuple[list[tuple[int, str]], list[int], tuple[float, str] | None]


def _events(conn: sqlite3.Connection, kind: EventKind, ids: list[str]
            ) -> tuple[set[str], list[int]]:  # fmt: skip
    """Of ``ids``' events of ``kind``: the ids with one still to deliver (kept),
    and the given-up events of the others (they go with them)."""
    found = conn.execute(
        "SELECT id, subject_id, next_attempt_at FROM outbox WHERE kind = ?"
        " AND subject_id IN (SELECT value FROM json_each(?))",
        (int(kind), json.dumps(ids))).fetchall() if ids else []  # fmt: skip
    live = {subject for _, subject, next_at in found if next_at is not None}
    return live, [e for e, subject, _ in found if subject not in live]


def _by_seq(conn: sqlite3.Connection, table: str, times: str, kind: EventKind, before: float,
            after: tuple[float, str] | None, limit: int,
            held: Callable[[sqlite3.Connection, list[int]], set[int]]) -> _Chosen:  # fmt: skip
    """A step over ``table`` read in ``seq`` order (``times``: its start time and
    end time or NULL; the pass ends at a start at or after ``before``): the
    rows that ended before ``before``, but the newest row (SQLite would give its
    seq to the next one, which a reader by seq might then miss), those ``held``
    and those with an event still to deliver."""
    rows = conn.execute(f"SELECT seq, id, {times} FROM {table} WHERE seq > ? ORDER BY seq"
                        " LIMIT ?", (int(after[0]) if after else 0, limit)).fetchall()  # fmt: skip
    if not rows:
        return [], [], None
    (newest,) = conn.execute(f"SELECT max(seq) FROM {table}").fetchone()
    chosen: list[tuple[int, str]] = []
    ended = len(rows) < limit
    for seq, id_, start, end in rows:
        if start >= before:
            ended = True
            break
        if end is not None and end < before and seq != newest:
            chosen.append((seq, id_))
    kept = held(conn, [seq for seq, _ in chosen]) if chosen else set()
    live, events = _events(conn, kind, [i for s, i in chosen if s not in kept])
    chosen = [(s, i) for s, i in chosen if s not in kept and i not in live]
    return chosen, events, None if ended else (float(rows[-1][0]), rows[-1][1])


def _nothing_held(_conn: sqlite3.Connection, _seqs: list[int]) -> set[int]:
    return set()


def _chains_held(conn: sqlite3.Connection, seqs: list[int]) -> set[int]:
    """Final chains that are not over: a timer still set, or an SMS leg whose
    message is not final (a message purged already is over)."""
    return {s for (s,) in conn.execute(
        "SELECT chain_seq FROM chat_timers WHERE chain_seq IN (SELECT value FROM json_each(?1))"
        " UNION SELECT l.chain_seq FROM chat_legs l JOIN messages m ON m.id = l.message_id"
        " WHERE l.chain_seq IN (SELECT value FROM json_each(?1)) AND l.channel = 'sms'"
        f" AND m.status < {FINAL}", (json.dumps(seqs),))}  # fmt: skip


def _by_time(conn: sqlite3.Connection, table: str, column: str, kind: EventKind | None,
             before: float, after: tuple[float, str] | None, limit: int) -> _Chosen:  # fmt: skip
    """A step over ``table`` read in (``column``, id) order up to ``before``
    (an index on ``column`` serves it): every row but those with an event of
    ``kind`` still to deliver."""
    at, last = after if after is not None else (float("-inf"), "")
    rows = conn.execute(
        f"SELECT {column}, id FROM {table} WHERE {column} < ? AND {column} >= ?"
        f" AND ({column}, id) > (?, ?) ORDER BY {column}, id LIMIT ?",
        (before, at, at, last, limit)).fetchall()  # fmt: skip
    live, events = _events(conn, kind, [i for _, i in rows]) if kind else (set(), [])
    chosen = [(0, i) for _, i in rows if i not in live]
    return chosen, events, (rows[-1][0], rows[-1][1]) if len(rows) == limit else None


#: Per kind: how a step chooses (in a reader's snapshot) and what it deletes
#: (each statement once per chosen row, with its seq or id).
_Choose = Callable[[sqlite3.Connection, float, tuple[float, str] | None, int], _Chosen]
_RECORDS: dict[Retained, tuple[_Choose, tuple[tuple[str, bool], ...]]] = {
    Retained.INBOUND: (
        lambda c, before, after, limit: _by_seq(
            c, "inbound", "received_at, received_at", EventKind.INBOUND, before, after, limit,
            _nothing_held),
        (("DELETE FROM inbound WHERE seq = ?", True),),
    ),
    Retained.CHAINS: (
        lambda c, before, after, limit: _by_seq(
            c, "chat_chains", f"created_at, CASE WHEN status >= {FINAL} THEN done_at END",
            EventKind.CHAIN, before, after, limit, _chains_held),
        (("DELETE FROM chat_legs WHERE chain_seq = ?", True),
         ("DELETE FROM chat_timers WHERE chain_seq = ?", True),
         (f"DELETE FROM chat_chains WHERE seq = ? AND status >= {FINAL}", True)),
    ),
    Retained.VERIFICATIONS: (
        lambda c, before, after, limit: _by_time(
            c, "verifications", "expires_at", None, before, after, limit),
        (("DELETE FROM verification_sends WHERE verification_id = ?", False),
         ("DELETE FROM verifications WHERE id = ?", False)),
    ),
    Retained.FRAUD_DECISIONS: (
        lambda c, before, after, limit: _by_time(
            c, "fraud_decisions", "created_at", EventKind.FRAUD, before, after, limit),
        (("DELETE FROM fraud_decisions WHERE id = ?", False),),
    ),
}


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PURGE_LIMIT:
        raise InvalidRecord("limit", f"must be 1..{MAX_PURGE_LIMIT}")


def _snapshot(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("ROLLBACK")  # read only


class SQLiteRetention:
    """``purge_messages`` and ``purge_cdrs`` of :class:`~herald.store.SQLiteStore`."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def purge_messages(
        self, before: float, *, after: int = 0, limit: int = PURGE_BATCH
    ) -> MessagePurge:
        _check_limit(limit)

        def choose(conn: sqlite3.Connection
                   ) -> tuple[list[OldMessage], list[int], int | None]:  # fmt: skip
            rows = [OldMessage(*r) for r in conn.execute(_SCAN, (after, limit))]
            if not rows:
                return [], [], None
            (mark,) = conn.execute("SELECT last_seq FROM cdr_sums_mark").fetchone()
            (newest,) = conn.execute("SELECT max(seq) FROM messages").fetchone()
            pending = {s for (s,) in conn.execute(
                "SELECT seq FROM cdr_sums_pending WHERE seq >= ? AND seq <= ?",
                (rows[0].seq, rows[-1].seq))}  # fmt: skip
            chosen, ended = choose_messages(rows, before, lambda m: (
                m.seq > mark or m.seq >= newest or m.seq in pending))
            events: list[int] = []
            if chosen:
                found = conn.execute(_EVENTS, (json.dumps([m.id for m in chosen]),)).fetchall()
                # An event still to deliver keeps its message (a later pass takes it).
                live = {subject for _, subject, next_at in found if next_at is not None}
                chosen = [m for m in chosen if m.id not in live]
                events = [e for e, subject, _ in found if subject not in live]
            return chosen, events, None if ended or len(rows) < limit else rows[-1].seq

        chosen, events, resume = await self._readers.run(lambda c: _snapshot(c, choose))
        if not chosen:
            return MessagePurge(0, resume)
        seqs = [(m.seq,) for m in chosen]
        ids = [(m.id,) for m in chosen]

        def delete(conn: sqlite3.Connection) -> int:
            conn.executemany("DELETE FROM segments WHERE message_seq = ?", seqs)
            conn.executemany("DELETE FROM message_routes WHERE message_id = ?", ids)
            conn.executemany("DELETE FROM conversions WHERE message_id = ?", ids)
            conn.executemany("DELETE FROM attempts WHERE message_id = ?", ids)
            conn.executemany("DELETE FROM outbox WHERE id = ?", [(e,) for e in events])
            conn.executemany("DELETE FROM retention_text_waiting WHERE seq = ?", seqs)
            # The CDR outlives its message: it keeps the final status.
            conn.executemany("UPDATE cdrs SET status = ? WHERE message_id = ?",
                             [(m.status, m.id) for m in chosen])  # fmt: skip
            return conn.executemany(
                f"DELETE FROM messages WHERE seq = ? AND status >= {FINAL}", seqs).rowcount

        return MessagePurge(await self._write(delete), resume)

    async def purge_cdrs(
        self, before: float, *, after: tuple[float, str] | None = None,
        limit: int = PURGE_BATCH,
    ) -> CdrPurge:
        _check_limit(limit)
        start = after if after is not None else (float("-inf"), "")

        def choose(conn: sqlite3.Connection) -> tuple[list[OldCdr], tuple[float, str] | None]:
            rows = [OldCdr(*r) for r in conn.execute(_SCAN_CDRS, (before, *start, limit))]
            if not rows:
                return [], None
            (mark,) = conn.execute("SELECT last_seq FROM cdr_sums_mark").fetchone()
            found = json.dumps([r.message_id for r in rows])
            live = {i for (i,) in conn.execute(
                "SELECT m.id FROM messages m WHERE m.id IN (SELECT value FROM json_each(?))"
                f" AND (m.status < {FINAL} OR m.seq > ?"
                " OR m.seq IN (SELECT seq FROM cdr_sums_pending))", (found, mark))}  # fmt: skip
            resume = None if len(rows) < limit else (rows[-1].accepted_at, rows[-1].message_id)
            return choose_cdrs(rows, live.__contains__), resume

        chosen, resume = await self._readers.run(lambda c: _snapshot(c, choose))
        if not chosen:
            return CdrPurge(0, resume)
        deltas = [(*key, *values) for key, values in cdr_deltas(chosen).items()]

        def delete(conn: sqlite3.Connection) -> int:
            n = conn.executemany("DELETE FROM cdrs WHERE message_id = ?",
                                 [(r.message_id,) for r in chosen]).rowcount  # fmt: skip
            # The sums stay those of the CDRs kept (an hour whose CDRs all went
            # has no row left).
            conn.executemany(_UPSERT, deltas)
            conn.executemany(
                "DELETE FROM cdr_sums WHERE hour = ? AND account_id = ? AND connector = ?"
                " AND country = ? AND messages = 0", [d[:4] for d in deltas])  # fmt: skip
            return n

        return CdrPurge(await self._write(delete), resume)

    async def purge_records(
        self, kind: Retained, before: float, *, after: tuple[float, str] | None = None,
        limit: int = PURGE_BATCH,
    ) -> RecordPurge:
        _check_limit(limit)
        choose, deletes = _RECORDS[kind]
        chosen, events, resume = await self._readers.run(
            lambda c: _snapshot(c, lambda conn: choose(conn, before, after, limit)))
        if not chosen:
            return RecordPurge(0, resume)

        def delete(conn: sqlite3.Connection) -> int:
            conn.executemany("DELETE FROM outbox WHERE id = ?", [(e,) for e in events])
            n = 0
            for sql, by_seq in deletes:  # the last one deletes the rows counted
                n = conn.executemany(sql, [(s if by_seq else i,) for s, i in chosen]).rowcount
            return n

        return RecordPurge(await self._write(delete), resume)

    async def erase_texts(self, before: float, *, limit: int = PURGE_BATCH) -> TextErasure:
        _check_limit(limit)

        def step(conn: sqlite3.Connection) -> TextErasure:
            # The messages read earlier that are done now (the list is short:
            # those in flight when their turn came).
            # (The list read first: joined, SQLite scanned messages for a Bloom
            # filter at every step: 40 ms with 200,000 messages.)
            listed = [s for (s,) in conn.execute("SELECT seq FROM retention_text_waiting")]
            done = conn.execute(
                "SELECT seq FROM messages WHERE seq IN (SELECT value FROM json_each(?))"
                f" AND status >= {FINAL} AND done_at < ? LIMIT ?",
                (json.dumps(listed), before, limit)).fetchall() if listed else []  # fmt: skip
            conn.executemany("DELETE FROM retention_text_waiting WHERE seq = ?", done)
            erased = conn.executemany(
                "UPDATE messages SET body = X'' WHERE seq = ? AND length(body) > 0", done
            ).rowcount  # fmt: skip
            (mark,) = conn.execute("SELECT after FROM retention_text_mark").fetchone()
            rows = conn.execute(
                "SELECT seq, status, done_at, accepted_at FROM messages WHERE seq > ?"
                " ORDER BY seq LIMIT ?", (mark, limit)).fetchall()  # fmt: skip
            waiting: list[tuple[int]] = []
            last = mark
            ended = len(rows) < limit
            for seq, status, done_at, accepted_at in rows:
                if accepted_at >= before:  # and so are the ones after it
                    ended = True
                    break
                if not text_done(status, done_at, before):
                    waiting.append((seq,))
                last = seq
            conn.executemany("INSERT OR IGNORE INTO retention_text_waiting (seq) VALUES (?)",
                             waiting)  # fmt: skip
            conn.execute("UPDATE retention_text_mark SET after = ?", (last,))
            # One statement over the range read (500 single-row updates took
            # 3 to 5 times as long as this with a writer busy with accepts).
            erased += conn.execute(
                "UPDATE messages SET body = X'' WHERE seq > ? AND seq <= ?"
                f" AND status >= {FINAL} AND done_at < ? AND length(body) > 0",
                (mark, last, before)).rowcount  # fmt: skip
            return TextErasure(erased, len(done) == limit or not ended)

        return await self._write(step)
