"""SQLite statements and row conversions of the SQLite store (private).

Every statement that enforces a store rule says so in its ``WHERE``: statuses
only grow (``status < new``), finals are never replaced (``status < 10``), a
reschedule only applies to the current claim (``attempt = ?``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from herald.store._errors import DuplicateMessageId, InvalidRecord, StoreError, StoreUnavailable
from herald.store._model import (
    STATUS_OF_CODE,
    Account,
    Channel,
    EventKind,
    IdempotencyRecord,
    InboundMessage,
    Message,
    NewMessage,
    OutboxEvent,
    Priority,
    Source,
    Status,
    StatusEvents,
)
from herald.store._model_routing import MessageRoute
from herald.store._rows import Columns
from herald.store._sqlite_lifecycle import parts_recorded, receipts_applied
from herald.store._writer import Group

#: SMPP 3.4 §4.4.2: message_id in submit_sm_resp is a C-string of at most 65 octets.
MAX_UPSTREAM_ID_LENGTH = 65
#: Connector names come from the config file; this bounds what is indexed.
MAX_CONNECTOR_LENGTH = 64
#: ``retry_outbox`` keeps the start of a delivery error for the operator.
MAX_ERROR_LENGTH = 500
#: The largest ``claim`` / ``claim_outbox`` / ``expire_sent`` in one call.
MAX_CLAIM = 10_000


# -- rows <-> values ---------------------------------------------------------------

# Enums by stored code: dict lookups on the hot paths (see STATUS_OF_CODE).
_SOURCE_OF_CODE = {int(s): s for s in Source}
_PRIORITY_OF_CODE = {int(p): p for p in Priority}
_CHANNEL_OF_CODE = {int(c): c for c in Channel}
_KIND_OF_CODE = {int(k): k for k in EventKind}

MESSAGE = Columns(
    "seq", "id", "account_id", "source", "to_addr", "from_addr", "body", "encoding",
    "data_coding", "udhi", "segments", "reference", "metadata", "callback_url",
    "registered_delivery", "test", "send_at", "expires_at", "status", "error_code",
    "error_permanent", "accepted_at", "queued_at", "sent_at", "done_at", "attempt",
    "webhook_events", "tries", "priority", "tag",
)
MESSAGE_COLUMNS = MESSAGE.sql
#: Values in a MESSAGE_COLUMNS row: a statement may select more after them.
MESSAGE_WIDTH = MESSAGE.width
_M = MESSAGE.at


def message_from_row(row: Sequence[Any]) -> Message:
    events = row[_M["webhook_events"]]
    return Message(
        id=row[_M["id"]],
        account_id=row[_M["account_id"]],
        source=_SOURCE_OF_CODE[row[_M["source"]]],
        to=row[_M["to_addr"]],
        sender=row[_M["from_addr"]],
        body=row[_M["body"]],
        encoding=row[_M["encoding"]],
        data_coding=row[_M["data_coding"]],
        udhi=bool(row[_M["udhi"]]),
        segments=row[_M["segments"]],
        reference=row[_M["reference"]],
        metadata=row[_M["metadata"]],
        callback_url=row[_M["callback_url"]],
        registered_delivery=row[_M["registered_delivery"]],
        test=bool(row[_M["test"]]),
        send_at=row[_M["send_at"]],
        expires_at=row[_M["expires_at"]],
        status=STATUS_OF_CODE[row[_M["status"]]],
        error_code=row[_M["error_code"]],
        error_permanent=bool(row[_M["error_permanent"]]),
        accepted_at=row[_M["accepted_at"]],
        queued_at=row[_M["queued_at"]],
        sent_at=row[_M["sent_at"]],
        done_at=row[_M["done_at"]],
        attempt=row[_M["attempt"]],
        callback_events=None if events is None else StatusEvents(events),
        tries=row[_M["tries"]],
        priority=_PRIORITY_OF_CODE[row[_M["priority"]]],
        tag=row[_M["tag"]],
    )


def claimed_message_from_row(row: Sequence[Any], now: float) -> Message:
    """A message row as a claim leaves it: queued (its first queued_at kept), one
    more attempt."""
    values = list(row[:MESSAGE_WIDTH])
    values[_M["status"]] = int(Status.QUEUED)
    if values[_M["queued_at"]] is None:
        values[_M["queued_at"]] = now
    values[_M["attempt"]] += 1
    return message_from_row(values)


ACCOUNT = Columns(
    "id", "name", "created_at", "rate_limit", "bind_limit", "callback_url",
    "webhook_secret_version", "webhook_events", "inbound_webhooks", "inbound_url",
    "webhook_batch_max", "webhook_batch_wait", "disabled", "priority",
)
ACCOUNT_COLUMNS = ACCOUNT.sql
_A = ACCOUNT.at


def account_from_row(row: Sequence[Any]) -> Account:
    priority = row[_A["priority"]]
    return Account(
        id=row[_A["id"]],
        name=row[_A["name"]],
        created_at=row[_A["created_at"]],
        rate_limit=row[_A["rate_limit"]],
        bind_limit=row[_A["bind_limit"]],
        callback_url=row[_A["callback_url"]],
        webhook_secret_version=row[_A["webhook_secret_version"]],
        webhook_events=StatusEvents(row[_A["webhook_events"]]),
        inbound_webhooks=bool(row[_A["inbound_webhooks"]]),
        inbound_url=row[_A["inbound_url"]],
        webhook_batch_max=row[_A["webhook_batch_max"]],
        webhook_batch_wait=row[_A["webhook_batch_wait"]],
        disabled=bool(row[_A["disabled"]]),
        priority=None if priority is None else _PRIORITY_OF_CODE[priority],
    )


OUTBOX = Columns(
    "id", "channel", "kind", "account_id", "subject_id", "status", "url", "created_at",
    "attempts", "next_attempt_at", "last_error",
)
OUTBOX_COLUMNS = OUTBOX.sql
_O = OUTBOX.at


#: A message's events whose delivery failed (partial index outbox_failed).
FAILED_DELIVERIES = (
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE subject_id = ? AND last_error IS NOT NULL"
    " AND account_id = ? AND channel = ? AND kind = " + str(int(EventKind.STATUS))
    + " ORDER BY id"
)


def event_from_row(row: Sequence[Any], attempts: int | None = None,
                   next_attempt_at: float | None = None,
                   subject: Message | InboundMessage | None = None,
                   route: MessageRoute | None = None) -> OutboxEvent:
    """An outbox row as it is stored, or (``attempts``, ``next_attempt_at``) as a
    claim leaves it, with its subject."""
    status = row[_O["status"]]
    return OutboxEvent(
        id=row[_O["id"]],
        channel=_CHANNEL_OF_CODE[row[_O["channel"]]],
        kind=_KIND_OF_CODE[row[_O["kind"]]],
        account_id=row[_O["account_id"]],
        subject_id=row[_O["subject_id"]],
        status=None if status is None else STATUS_OF_CODE[status],
        url=row[_O["url"]],
        created_at=row[_O["created_at"]],
        attempts=row[_O["attempts"]] if attempts is None else attempts,
        next_attempt_at=row[_O["next_attempt_at"]] if attempts is None else next_attempt_at,
        last_error=row[_O["last_error"]],
        subject=subject,
        route=route,
    )


INBOUND = Columns(
    "id", "account_id", "to_addr", "from_addr", "body", "encoding", "data_coding", "connector",
    "received_at",
)
INBOUND_COLUMNS = INBOUND.sql


def inbound_from_row(row: Sequence[Any]) -> InboundMessage:
    i = INBOUND.at
    return InboundMessage(
        id=row[i["id"]], account_id=row[i["account_id"]], to=row[i["to_addr"]],
        sender=row[i["from_addr"]], body=row[i["body"]], encoding=row[i["encoding"]],
        data_coding=row[i["data_coding"]], connector=row[i["connector"]],
        received_at=row[i["received_at"]],
    )


#: An outbox row, then the message it reports (or NULLs), then the inbound
#: message (or NULLs), then the message's route (rule, first connector): what
#: a claim hands out, in one read (not a second query per claim).
CLAIM_OUTBOX_SELECT = (
    f"SELECT {OUTBOX.prefixed('o')}, {MESSAGE.prefixed('m')}, {INBOUND.prefixed('i')},"
    " r.rule, (SELECT s.connector FROM segments s WHERE s.message_seq = m.seq"
    " ORDER BY s.idx LIMIT 1)"
    " FROM outbox o"
    f" LEFT JOIN messages m ON o.kind = {int(EventKind.STATUS)} AND m.id = o.subject_id"
    f" LEFT JOIN inbound i ON o.kind = {int(EventKind.INBOUND)} AND i.id = o.subject_id"
    " LEFT JOIN message_routes r ON m.id IS NOT NULL AND r.message_id = m.id"
    " WHERE o.channel = ? AND o.next_attempt_at <= ?"
)
_MESSAGE_AT = OUTBOX.width
_INBOUND_AT = _MESSAGE_AT + MESSAGE.width
_ROUTE_AT = _INBOUND_AT + INBOUND.width


def claimed_event_from_row(row: Sequence[Any], until: float) -> OutboxEvent:
    """A row of :data:`CLAIM_OUTBOX_SELECT` as the claim leaves it (one more attempt,
    leased until ``until``), with its subject (and a message's route)."""
    subject: Message | InboundMessage | None = None
    route: MessageRoute | None = None
    if row[_MESSAGE_AT] is not None:
        subject = message_from_row(row[_MESSAGE_AT:_INBOUND_AT])
        route = MessageRoute(row[_ROUTE_AT + 1], row[_ROUTE_AT])
    elif row[_INBOUND_AT] is not None:
        subject = inbound_from_row(row[_INBOUND_AT:_ROUTE_AT])
    return event_from_row(row, row[_O["attempts"]] + 1, until, subject, route)


def row_from_message(m: NewMessage) -> tuple[object, ...]:
    due = None if m.test else (m.accepted_at if m.send_at is None else m.send_at)
    return (
        m.id, m.account_id, m.source, m.to, m.sender, m.body, m.encoding, m.data_coding,
        m.udhi, m.segments, m.reference, m.metadata, m.callback_url,
        m.registered_delivery, m.test, m.send_at, m.expires_at, m.accepted_at, due,
        None if m.callback_events is None else int(m.callback_events), int(m.priority), m.tag,
    )  # fmt: skip


# -- statements ----------------------------------------------------------------------

# Statuses in SQL text, from the enum (the partial indexes' WHEREs say the same).
_QUEUED = int(Status.QUEUED)
_SENT = int(Status.SENT)
_FINAL = int(Status.DELIVERED)  # the smallest final status

INSERT_MESSAGE = (
    "INSERT INTO messages (id, account_id, source, to_addr, from_addr, body, encoding,"
    " data_coding, udhi, segments, reference, metadata, callback_url, registered_delivery,"
    " test, send_at, expires_at, status, accepted_at, due_at, webhook_events, priority, tag)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?)"
)
INSERT_INBOUND = (
    "INSERT INTO inbound (id, account_id, to_addr, from_addr, body, encoding, data_coding,"
    " connector, received_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
# Segment beyond the message's count: ignored (it would make "all delivered" lie).
RECORD_SEGMENT = (
    "INSERT INTO segments (message_seq, idx, connector, upstream_id, upstream_key, status,"
    f" updated_at, check_at) SELECT seq, ?2, ?3, ?4, ?5, {_SENT}, ?6, ?7 FROM messages"
    " WHERE id = ?1 AND ?2 < segments"
    " ON CONFLICT (message_seq, idx) DO UPDATE SET connector = excluded.connector,"
    " upstream_id = excluded.upstream_id, upstream_key = excluded.upstream_key,"
    " updated_at = excluded.updated_at, check_at = excluded.check_at, checks = 0"
)
RECEIPT_APPLY = (
    "UPDATE segments SET status = ?3, error_code = ?4, updated_at = ?5"
    f" WHERE connector = ?1 AND upstream_key = ?2 AND status < {_FINAL}"
)
RECEIPT_PARK = (
    "INSERT INTO parked_receipts (connector, upstream_key, status, error_code, received_at)"
    " SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS"
    " (SELECT 1 FROM segments WHERE connector = ?1 AND upstream_key = ?2)"
)
SET_QUEUED = (
    f"UPDATE messages SET status = {_QUEUED}, queued_at = COALESCE(queued_at, ?2)"
    f" WHERE id = ?1 AND status < {_QUEUED}"
)
SET_SENT = f"UPDATE messages SET status = {_SENT}, sent_at = ?2 WHERE id = ?1 AND status < {_SENT}"
SET_FINAL = (
    "UPDATE messages SET status = ?2, done_at = ?3, error_code = ?4, error_permanent = ?5"
    f" WHERE id = ?1 AND status < {_FINAL}"
)
# A hand-back (?5 = 1) ends the claim; a lease extension keeps it to ?3.
RESCHEDULE = (
    "UPDATE messages SET due_at = ?3, tries = tries + ?4,"
    " lease_until = CASE WHEN ?5 THEN NULL ELSE ?3 END"
    f" WHERE id = ?1 AND attempt = ?2 AND status < {_SENT}"
)
# A re-split (set_segments) applies to the current claim of an unsent message
# only, and forgets the segments an earlier split recorded beyond the new count.
SET_SEGMENTS = (
    f"UPDATE messages SET segments = ?3 WHERE id = ?1 AND attempt = ?2 AND status < {_SENT}"
)
SET_SEGMENTS_FORGET = (
    "DELETE FROM segments WHERE idx >= ?3 AND message_seq ="
    f" (SELECT seq FROM messages WHERE id = ?1 AND attempt = ?2 AND status < {_SENT})"
)
# Fair claims (partial index messages_fair: priority, account, due_at). The
# accounts with messages waiting in a class, by a skip scan: one index seek
# per account, however many messages each has waiting.
CLAIM_ACCOUNTS = (
    "WITH RECURSIVE a(id) AS ("
    f" SELECT (SELECT min(account_id) FROM messages WHERE status < {_SENT} AND priority = ?1)"
    " UNION ALL SELECT (SELECT min(account_id) FROM messages"
    f"  WHERE status < {_SENT} AND priority = ?1 AND account_id > a.id)"
    " FROM a WHERE a.id IS NOT NULL"
    ") SELECT id FROM a WHERE id IS NOT NULL"
)
# One account's due messages of a class, oldest first, after (due_at, seq);
# due_at follows the message's columns (row[MESSAGE_WIDTH]).
CLAIM_ACCOUNT_SELECT = (
    f"SELECT {MESSAGE_COLUMNS}, due_at FROM messages WHERE status < {_SENT} AND priority = ?1"
    " AND account_id = ?2 AND due_at <= ?3 AND (due_at, seq) > (?4, ?5)"
    " ORDER BY due_at, seq LIMIT ?6"
)
# A claim's writes, one statement each for all its rows (?1: their seqs, a JSON array).
CLAIM_EXPIRE = (
    f"UPDATE messages SET status = {int(Status.EXPIRED)}, done_at = ?2"
    f" WHERE seq IN (SELECT value FROM json_each(?1)) AND status < {_SENT}"
)
CLAIM_LEASE = (
    f"UPDATE messages SET status = {_QUEUED}, queued_at = COALESCE(queued_at, ?2), due_at = ?3,"
    " lease_until = ?3, attempt = attempt + 1 WHERE seq IN (SELECT value FROM json_each(?1))"
)
# Receipt checks: the partial index segments_check serves the scan; only
# segments of messages at least "sent" (never one whose parts may be sent
# again), and never one with a final status (a receipt came first).
DUE_CHECKS = (
    "SELECT m.id, s.idx, s.connector, s.upstream_id, s.upstream_key, m.from_addr, s.checks,"
    " m.status FROM segments s JOIN messages m ON m.seq = s.message_seq"
    f" WHERE s.status < {_FINAL} AND s.check_at <= ?1 AND m.status >= {_SENT}"
    " ORDER BY s.check_at LIMIT ?2"
)
CHECK_END = (
    "UPDATE segments SET status = ?3, error_code = ?4, updated_at = ?5"
    f" WHERE message_seq = (SELECT seq FROM messages WHERE id = ?1 AND status >= {_SENT})"
    f" AND idx = ?2 AND status < {_FINAL}"
)
CHECK_AGAIN = (
    "UPDATE segments SET check_at = ?3, checks = checks + 1"
    f" WHERE message_seq = (SELECT seq FROM messages WHERE id = ?1 AND status >= {_SENT})"
    f" AND idx = ?2 AND status < {_FINAL}"
)
OUTBOX_DONE = "DELETE FROM outbox WHERE id = ?"
# The claim's lease and the completion of events, one statement for all their
# rows (their ids, a JSON array).
OUTBOX_LEASE = (
    "UPDATE outbox SET next_attempt_at = ?1, attempts = attempts + 1"
    " WHERE id IN (SELECT value FROM json_each(?2))"
)
_OUTBOX_DONE_ALL = "DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?1))"
OUTBOX_RETRY = "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1"
# Store.backlog: counts over the claim index and the outbox's due index (partial
# indexes of what waits), never over the tables. Test messages have no due_at.
BACKLOG_UNSENT = (
    f"SELECT count(*) FROM messages WHERE status < {int(Status.SENT)} AND due_at IS NOT NULL"
)
BACKLOG_DUE = f"SELECT count(*) FROM messages WHERE status < {int(Status.SENT)} AND due_at <= ?"
BACKLOG_OUTBOX = (
    "SELECT count(*) FROM outbox WHERE channel = ? AND next_attempt_at IS NOT NULL"
)


def duplicate_id(exc: sqlite3.IntegrityError) -> StoreError:
    err = DuplicateMessageId("a message with this id exists")
    err.__cause__ = exc
    return err


def never(exc: sqlite3.IntegrityError) -> StoreError:
    err = StoreUnavailable(f"unexpected constraint failure: {exc}")
    err.__cause__ = exc
    return err


G_ACCEPT = Group("accept", 0, (INSERT_MESSAGE,), duplicate_id, steps=False)
G_INBOUND = Group("inbound", 1, (INSERT_INBOUND,), duplicate_id, steps=False)
G_QUEUED = Group("queued", 2, (SET_QUEUED,), never, steps=False)
def _park(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """After RECEIPT_APPLY: the messages rolled up, and the receipts no part has parked."""
    missing = receipts_applied(conn, rows)
    if missing:
        conn.executemany(RECEIPT_PARK, [rows[i] for i in missing])


G_SEGMENT = Group("segment", 3, (RECORD_SEGMENT,), never, then=parts_recorded)
G_RECEIPT = Group("receipt", 4, (RECEIPT_APPLY,), never, then=_park)
G_SENT = Group("sent", 5, (SET_SENT,), never)
G_FINAL = Group("final", 6, (SET_FINAL,), never)
G_RESCHEDULE = Group("reschedule", 7, (RESCHEDULE,), never, steps=False)
def _outbox_done(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    conn.execute(_OUTBOX_DONE_ALL, (json.dumps([r[0] for r in rows]),))


G_OUTBOX_DONE = Group("outbox-done", 8, (), never, then=_outbox_done, steps=False)
G_OUTBOX_RETRY = Group("outbox-retry", 9, (OUTBOX_RETRY,), never, steps=False)


def check_text(name: str, value: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise InvalidRecord(name, f"must be 1..{limit} characters")


def check_count(name: str, value: int) -> None:
    if not 1 <= value <= MAX_CLAIM:
        raise InvalidRecord(name, f"must be 1..{MAX_CLAIM}")



def read_idempotency(
    conn: sqlite3.Connection, account_id: int, key: str, now: float
) -> IdempotencyRecord | None:
    row = conn.execute(
        "SELECT account_id, key, request_hash, status_code, response, created_at, expires_at"
        " FROM idempotency WHERE account_id = ? AND key = ? AND expires_at > ?",
        (account_id, key, now),
    ).fetchone()
    return None if row is None else IdempotencyRecord(*row)
