"""Listing, bulk-cancelling and replacing messages, and inbound messages on
PostgreSQL (the rest of the port's MessageStore; private).

Theory of operation. A message claimed through the dispatch queue keeps
``accepted`` in its ``messages`` row (a claim writes the narrow queue row
only): every read here joins its queue row and reports the live status
(``LIVE_STATUS``: ``queued``), and a filter by status filters on that. Reads
walk an index range of the account's messages newest first
(``messages_account``, ``messages_account_to``, ``messages_account_reference``,
all ending in ``seq``), so a page costs its size, not the account's history
(``newest_first``). ``messages`` has no index on status or time (see
``_schema``): a status filter or a time bound is checked on the account's
rows, walked in order when the planner expects many to match, else read from
the account's index entries (a bitmap) and the few matches sorted.

A change (``replace``, ``cancel_matching``) follows ``cancel``'s rule and its
locking: the message row and its queue row are locked before deciding, so a
claim that comes later skips the message (``SKIP LOCKED``) and one that came
first holds it, and the change answers ``IN_PROGRESS`` (or, in bulk, leaves
it). Each method is one transaction of
:class:`~herald.store.postgres.PostgresStore` (a mixin).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from herald.store._errors import DuplicateMessageId, InvalidRecord, MessageNotFound
from herald.store._model import (
    MAX_ID_LENGTH,
    ChangeOutcome,
    ChangeResult,
    Channel,
    EventKind,
    InboundMessage,
    MessageFilter,
    MessagePage,
    OptOutChange,
    Replacement,
    Status,
)
from herald.store.postgres._controls import apply_opt_outs
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record, message_from_record
from herald.store.postgres._sql_lifecycle import INBOUND_COLUMNS, LIVE_MESSAGE, LIVE_STATUS

__all__ = ["PostgresListing", "inbound_from_record", "newest_first", "status_is"]

_SENT = int(Status.SENT)
_CANCELLED = int(Status.CANCELLED)
#: The most messages one ``cancel_matching`` takes (as SQLite's).
MAX_MATCHING = 10_000

_INBOUND_COLUMNS = ", ".join(INBOUND_COLUMNS)


def inbound_from_record(r: Record) -> InboundMessage:
    """An :class:`InboundMessage` from a row holding the ``inbound`` columns, by name."""
    return InboundMessage(
        id=r["id"], account_id=r["account_id"], to=r["to_addr"], sender=r["from_addr"],
        body=r["body"], encoding=r["encoding"], data_coding=r["data_coding"],
        connector=r["connector"], received_at=r["received_at"],
    )  # fmt: skip


def newest_first(
    where: Sequence[tuple[str, object]], limit: int, *, account_id: int | None = None
) -> tuple[str, list[object]]:
    """A statement reading live messages (``m``, ``q`` its queue row) matching
    every ``(condition, value)`` of ``where`` (``$`` in a condition: its
    value's placeholder) and of ``account_id`` if given, newest first, at most
    ``limit``; and its parameters.

    Only the conditions given are in the statement (no ``$n IS NULL OR ...``):
    a generic plan of a prepared statement then still uses the index the
    conditions name. The account is ``account_id BETWEEN $n AND $n``, ordered
    by ``(account_id, seq)``, not ``account_id = $n`` and ``seq``: with an
    equality the planner may walk the primary key backwards and filter by
    account (it did with 100,000 messages over 50 accounts), which reads every
    newer message of every other account first; the range keeps
    ``account_id`` in the order, which only the account's indexes give
    without a sort (as the claim orders by ``priority, seq``)."""
    clauses: list[str] = []
    params: list[object] = []
    order = "m.seq DESC"
    if account_id is not None:
        where = [("m.account_id BETWEEN $ AND $", account_id), *where]
        order = "m.account_id DESC, m.seq DESC"
    for condition, value in where:
        params.append(value)
        clauses.append(condition.replace("$", f"${len(params)}"))
    params.append(limit)
    sql = (f"SELECT {LIVE_MESSAGE} FROM messages m LEFT JOIN dispatch_queue q ON q.seq = m.seq"
           f" WHERE {' AND '.join(clauses) or 'true'} ORDER BY {order} LIMIT ${len(params)}")
    return sql, params


def status_is(status: int) -> tuple[str, object]:
    """The condition "the live status is ``status``": sent and final statuses
    are the row's own (a column the planner has statistics on: a common one,
    "delivered", walks the index in order; a rare one reads the few rows it
    matches), accepted or queued depends on the queue row."""
    if status >= _SENT:
        return "m.status = $", int(status)
    return f"{LIVE_STATUS} = $", int(status)


def listing(query: MessageFilter, before: int | None) -> tuple[str, list[object]]:
    """``list_messages``' statement: the account's messages older than seq
    ``before`` (the cursor's; ``None``: from the newest), one more than a page."""
    where: list[tuple[str, object]] = []
    if before is not None:
        where.append(("m.seq < $", before))
    if query.status is not None:
        where.append(status_is(query.status))
    if query.to is not None:
        where.append(("m.to_addr = $", query.to))
    if query.reference is not None:
        where.append(("m.reference = $", query.reference))
    if query.since is not None:
        where.append(("m.accepted_at >= $", query.since))
    if query.until is not None:
        where.append(("m.accepted_at < $", query.until))
    return newest_first(where, query.limit + 1, account_id=query.account_id)


def _is_cursor(cursor: str) -> bool:
    """Could ``cursor`` be a message id this store handed out as one?"""
    return 0 < len(cursor) <= MAX_ID_LENGTH and cursor.isascii() and cursor.isalnum()


# The message (live) and what decides a change: its queue row (locked: a
# claim that comes later skips it, one that came first holds it) and whether
# a part went upstream. As _sql_lifecycle.CANCEL_READ, with the whole message.
_CHANGE_READ = f"""
SELECT {LIVE_MESSAGE}, q.seq IS NOT NULL AS in_queue, q.owner AS holder,
    q.lease_until AS held_until,
    EXISTS (SELECT 1 FROM segments s WHERE s.message_seq = m.seq) AS upstream
FROM messages m LEFT JOIN LATERAL (
    SELECT seq, owner, lease_until, queued_at, attempt FROM dispatch_queue
    WHERE seq = m.seq FOR UPDATE
) q ON true
WHERE m.id = $1
FOR UPDATE OF m
"""
_REPLACE = """
UPDATE messages SET body = $2, segments = $3, send_at = $4, expires_at = $5,
    registered_delivery = $6
WHERE seq = $1
"""
# The queue's copies: when dispatch may claim it, and until when.
_REQUEUE = """
UPDATE dispatch_queue SET due_at = coalesce($2, due_at), expires_at = $3 WHERE seq = $1
"""
# Cancel up to $3 of account $1's waiting messages at $2 that match the
# filters, oldest first: no live claim (a claim's queue row is locked first,
# as in _CHANGE_READ) and no part upstream. The triggers take them out of the
# queue and write their events.
_CANCEL_MATCHING = f"""
UPDATE messages SET status = {_CANCELLED}, done_at = $2
WHERE seq = ANY (ARRAY (
    SELECT m.seq FROM messages m LEFT JOIN LATERAL (
        SELECT owner, lease_until FROM dispatch_queue WHERE seq = m.seq FOR UPDATE
    ) q ON true
    WHERE m.account_id = $1 {{filters}} AND m.status < {_SENT}
      AND (q.owner IS NULL OR q.lease_until <= $2)
      AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.message_seq = m.seq)
    ORDER BY m.seq LIMIT $3
    FOR UPDATE OF m
)) AND status < {_SENT}
RETURNING seq, id
"""
_MATCH_COLUMNS = (("to", "m.to_addr"), ("sender", "m.from_addr"),
                  ("reference", "m.reference"), ("tag", "m.tag"))  # fmt: skip

# An inbound message and, in the same statement, its events: a webhook (the
# account's inbound URL, else its callback URL, when it hears inbound
# messages) and a deliver_sm for its SMPP binds (the SQLite store's
# inbound_events trigger).
_ADD_INBOUND = f"""
WITH stored AS (
    INSERT INTO inbound ({_INBOUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING id, account_id, received_at
), hook AS (
    INSERT INTO outbox (channel, kind, account_id, subject_id, url, created_at,
                        next_attempt_at)
    SELECT {int(Channel.WEBHOOK)}, {int(EventKind.INBOUND)}, s.account_id, s.id,
        coalesce(a.inbound_url, a.callback_url), s.received_at, s.received_at
    FROM stored s JOIN accounts a ON a.id = s.account_id
    WHERE a.inbound_webhooks AND coalesce(a.inbound_url, a.callback_url) IS NOT NULL
)
INSERT INTO outbox (channel, kind, account_id, subject_id, created_at, next_attempt_at)
SELECT {int(Channel.SMPP)}, {int(EventKind.INBOUND)}, s.account_id, s.id, s.received_at,
    s.received_at
FROM stored s
WHERE EXISTS (SELECT 1 FROM smpp_credentials c WHERE c.account_id = s.account_id)
"""


def _outcome(row: Record, now: float) -> ChangeOutcome:
    """``cancel``'s rule for a row of _CHANGE_READ."""
    if row["status"] >= _SENT or row["upstream"]:
        return ChangeOutcome.TOO_LATE  # a message is not half-recalled
    if row["holder"] is not None and row["held_until"] > now:
        return ChangeOutcome.IN_PROGRESS  # dispatch may be submitting it
    return ChangeOutcome.APPLIED


class PostgresListing(StorePart):
    """The listing, change and inbound methods of
    :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def list_messages(self, query: MessageFilter, cursor: str | None = None) -> MessagePage:
        # The cursor is the id of the page's last message: the customer's own,
        # and nothing about other accounts (a seq would tell how many messages
        # the whole platform took in between).
        if cursor is not None and not _is_cursor(cursor):
            raise InvalidRecord("cursor", "not a cursor this store returned")

        async def read(conn: Any) -> list[Record] | None:
            before = None
            if cursor is not None:
                before = await conn.fetchval(
                    "SELECT seq FROM messages WHERE id = $1 AND account_id = $2",
                    cursor, query.account_id)  # fmt: skip
                if before is None:
                    return None
            sql, params = listing(query, before)
            rows: list[Record] = await conn.fetch(sql, *params)
            return rows

        rows = await self._one(read)  # the cursor's seq never changes: no snapshot needed
        if rows is None:
            raise InvalidRecord("cursor", "not a cursor this store returned")
        more = len(rows) > query.limit
        page = tuple(message_from_record(r) for r in rows[: query.limit])
        return MessagePage(page, page[-1].id if more else None)

    async def cancel_matching(
        self, account_id: int, now: float, *, limit: int, to: str | None = None,
        sender: str | None = None, reference: str | None = None, tag: str | None = None,
    ) -> tuple[str, ...]:
        if not 1 <= limit <= MAX_MATCHING:
            raise InvalidRecord("limit", f"must be 1..{MAX_MATCHING}")
        if to is None and reference is None:
            raise InvalidRecord("to", "name a destination or a reference")
        given = {"to": to, "sender": sender, "reference": reference, "tag": tag}
        filters, params = "", list[object]([account_id, now, limit])
        for name, column in _MATCH_COLUMNS:
            if given[name] is not None:
                params.append(given[name])
                filters += f" AND {column} = ${len(params)}"
        sql = _CANCEL_MATCHING.format(filters=filters)
        rows = await self._one(lambda c: c.fetch(sql, *params))
        return tuple(r["id"] for r in sorted(rows, key=lambda r: r["seq"]))

    async def replace(
        self, message_id: str, change: Replacement, now: float, *, account_id: int
    ) -> ChangeResult:
        async def replace(conn: Any) -> ChangeResult:
            row = None
            if len(message_id) <= MAX_ID_LENGTH:
                row = await conn.fetchrow(_CHANGE_READ, message_id)
            if row is None or row["account_id"] != account_id:
                raise MessageNotFound("no such message")
            outcome = _outcome(row, now)
            m = message_from_record(row)
            if outcome is not ChangeOutcome.APPLIED:
                return ChangeResult(outcome, m)
            send_at, expires_at, due_at = m.send_at, m.expires_at, None
            if change.send_at is not None:  # at or before now: as soon as possible
                send_at = change.send_at if change.send_at > now else None
                due_at = max(change.send_at, now)
            if change.expires_at is not None:
                expires_at = change.expires_at
            if not expires_at > max(now, send_at or now):
                raise InvalidRecord("expires_at",
                                    "the validity would end before the message is sent")
            body = m.body if change.body is None else change.body
            segments = m.segments if change.segments is None else change.segments
            delivery = (m.registered_delivery if change.registered_delivery is None
                        else change.registered_delivery)  # fmt: skip
            await conn.execute(_REPLACE, row["seq"], body, segments, send_at, expires_at,
                               delivery)  # fmt: skip
            if row["in_queue"]:  # (a test message has no queue row)
                await conn.execute(_REQUEUE, row["seq"], due_at, expires_at)
            changed = await conn.fetchrow(_CHANGE_READ, message_id)
            return ChangeResult(outcome, message_from_record(changed))

        return await self._run(replace)

    async def add_inbound(
        self, message: InboundMessage, *, opt_out: OptOutChange | None = None
    ) -> None:
        m = message
        values = (m.id, m.account_id, m.to, m.sender, m.body, m.encoding, m.data_coding,
                  m.connector, m.received_at)  # fmt: skip

        async def add(conn: Any) -> None:
            try:
                await conn.execute(_ADD_INBOUND, *values)
            except self._asyncpg.UniqueViolationError as exc:
                raise DuplicateMessageId("an inbound message with this id exists") from exc
            if opt_out is not None:
                await apply_opt_outs(conn, m.account_id, (opt_out,))

        await (self._one(add) if opt_out is None else self._run(add))

    async def get_inbound(self, inbound_id: str) -> InboundMessage:
        row = await self._one(lambda c: c.fetchrow(
            f"SELECT {_INBOUND_COLUMNS} FROM inbound WHERE id = $1", inbound_id))
        if row is None:
            raise MessageNotFound("no such inbound message")
        return inbound_from_record(row)
