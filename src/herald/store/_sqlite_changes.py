"""A customer's cancel and replace of a message not yet submitted (SQLite, private).

Theory of operation
-------------------
A message may be changed while it is ``accepted`` or ``queued``, has no
segment recorded upstream, and no claim holds it (``lease_until`` unset or
passed). Each change is one write transaction that reads the row, decides,
and updates it; the single writer runs it between claims, never inside one.
So a claim and a cancel are ordered: a cancel that comes first takes the
message out of the queue (``cancelled`` is final, ``status < 2`` no longer
holds), and a claim that comes first leases it, and the cancel answers
``IN_PROGRESS`` — the dispatcher may be writing its submit_sm that moment, and
a message must never be reported cancelled and then be sent. Hand-backs
release the claim (``Reschedule.release``): a message waiting out a backoff
can be cancelled.

The one gap is the one leases have anyway, a submit in doubt: a holder whose
lease lapsed (its store writes failed for longer than the lease) may still
send the message after the store let it be cancelled, and a submit_sm
written but never answered before its holder crashed or stopped (past its
``stop_timeout``) may have been accepted upstream although the message came
back unsent. Its "sent" is then not recorded (a final status never moves).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from herald.store._errors import InvalidRecord, MessageNotFound
from herald.store._model import (
    MAX_ID_LENGTH,
    ChangeOutcome,
    ChangeResult,
    Message,
    Replacement,
    Status,
)
from herald.store._sqlite_sql import (
    MESSAGE_COLUMNS,
    MESSAGE_WIDTH,
    check_count,
    message_from_row,
)

__all__ = ["cancel_in", "cancel_matching_in", "replace_in"]

# The message, then what decides whether it may change (after MESSAGE_WIDTH).
_SELECT = (
    f"SELECT {MESSAGE_COLUMNS}, seq, lease_until, due_at, EXISTS (SELECT 1 FROM segments s"
    " WHERE s.message_seq = messages.seq) FROM messages WHERE id = ?"
)
_CANCEL = (
    f"UPDATE messages SET status = {int(Status.CANCELLED)}, done_at = ?2, lease_until = NULL"
    " WHERE seq = ?1"
)
# Many at once (SMPP cancel_sm without a message_id, HTTP by reference): the
# account's waiting messages that match (indexes messages_account_to and
# messages_account_reference), none held by a claim and none with a part upstream.
_MATCHING = (
    "SELECT m.seq, m.id FROM messages m WHERE m.account_id = :account {filters}"
    f" AND m.status < {int(Status.SENT)} AND (m.lease_until IS NULL OR m.lease_until <= :now)"
    " AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.message_seq = m.seq)"
    " ORDER BY m.seq LIMIT :limit"
)
_FILTERS = (("to", "m.to_addr"), ("sender", "m.from_addr"), ("reference", "m.reference"),
            ("tag", "m.tag"))
_REPLACE = (
    "UPDATE messages SET body = ?2, segments = ?3, send_at = ?4, due_at = ?5, expires_at = ?6,"
    " registered_delivery = ?7 WHERE seq = ?1"
)


@dataclass(frozen=True, slots=True)
class _Row:
    """A message as a change reads it, in the writer's transaction."""

    message: Message
    seq: int
    lease_until: float | None  # the end of the claim that holds it, if any
    due_at: float | None
    upstream: bool  # a segment was recorded: a part went out

    def outcome(self, now: float) -> ChangeOutcome:
        if self.message.status >= Status.SENT or self.upstream:
            return ChangeOutcome.TOO_LATE  # a message is not half-recalled
        if self.lease_until is not None and self.lease_until > now:
            return ChangeOutcome.IN_PROGRESS
        return ChangeOutcome.APPLIED


def _read(conn: sqlite3.Connection, message_id: str, account_id: int | None) -> _Row:
    row: Sequence[Any] | None = None
    if len(message_id) <= MAX_ID_LENGTH:
        row = conn.execute(_SELECT, (message_id,)).fetchone()
    if row is None or (account_id is not None and row[2] != account_id):
        raise MessageNotFound("no such message")
    seq, lease_until, due_at, upstream = row[MESSAGE_WIDTH:]
    return _Row(message_from_row(row[:MESSAGE_WIDTH]), seq, lease_until, due_at, bool(upstream))


def _result(conn: sqlite3.Connection, outcome: ChangeOutcome, row: _Row) -> ChangeResult:
    if outcome is ChangeOutcome.APPLIED:  # read back what the change wrote
        row = _read(conn, row.message.id, None)
    return ChangeResult(outcome, row.message)


def cancel_in(conn: sqlite3.Connection, message_id: str, account_id: int,
              now: float) -> ChangeResult:
    """:meth:`Store.cancel` inside the writer's transaction."""
    row = _read(conn, message_id, account_id)
    outcome = row.outcome(now)
    if outcome is ChangeOutcome.APPLIED:
        conn.execute(_CANCEL, (row.seq, now))
    return _result(conn, outcome, row)


def cancel_matching_in(conn: sqlite3.Connection, account_id: int, now: float, limit: int,
                       match: dict[str, str | None]) -> tuple[str, ...]:
    """:meth:`Store.cancel_matching` inside the writer's transaction."""
    check_count("limit", limit)
    given = {name: value for name, value in match.items() if value is not None}
    if "to" not in given and "reference" not in given:
        raise InvalidRecord("to", "name a destination or a reference")
    filters = "".join(f" AND {column} = :{name}" for name, column in _FILTERS if name in given)
    params = {"account": account_id, "now": now, "limit": limit, **given}
    rows = conn.execute(_MATCHING.format(filters=filters), params).fetchall()
    conn.executemany(_CANCEL, [(seq, now) for seq, _ in rows])
    return tuple(message_id for _, message_id in rows)


def replace_in(conn: sqlite3.Connection, message_id: str, account_id: int, change: Replacement,
               now: float) -> ChangeResult:
    """:meth:`Store.replace` inside the writer's transaction."""
    row = _read(conn, message_id, account_id)
    outcome = row.outcome(now)
    if outcome is ChangeOutcome.APPLIED:
        m, due_at = row.message, row.due_at
        send_at, expires_at = m.send_at, m.expires_at
        if change.send_at is not None:
            send_at = change.send_at if change.send_at > now else None
            due_at = None if m.test else max(change.send_at, now)
        if change.expires_at is not None:
            expires_at = change.expires_at
        if not expires_at > max(now, send_at or now):
            raise InvalidRecord("expires_at", "the validity would end before the message is sent")
        body = m.body if change.body is None else change.body
        segments = m.segments if change.segments is None else change.segments
        delivery = (m.registered_delivery if change.registered_delivery is None
                    else change.registered_delivery)
        conn.execute(_REPLACE, (row.seq, body, segments, send_at, due_at, expires_at, delivery))
    return _result(conn, outcome, row)
