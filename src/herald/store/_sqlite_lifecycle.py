"""The message lifecycle (``store/lifecycle.py``) in SQLite, in the writer's transaction (private).

Everything a step writes commits with the step, with no round trip, in
statements that run once per batch rather than triggers that run per row:

* a message's parts (a part recorded upstream, its receipt, a parked receipt
  applied) roll up to the message in set-based statements the store runs
  after each batch of parts (:func:`parts_recorded`, :func:`receipts_applied`,
  :func:`parts_ended`);
* a message's own steps are noted by a temporary trigger on the writer's
  connection (:data:`STEPS`), and what they emit (webhook events, SMPP
  receipts, the CDR's buy price, refunds) is written before ``COMMIT``, one
  statement per kind over the transaction's steps (:func:`emit_steps`).

Why: SQLite enters the program of every trigger on a table (or column) for
every row a statement changes, its WHEN tested inside it, and runs each of
its statements; the delivery process ran 33 statements a message this way,
24 of them for the segment record and the receipt (docs/performance.md,
"Statement runs per message").

The conditions are built here from the lifecycle's constants, never written
as numbers; ``tests/store/test_lifecycle.py`` evaluates each condition in
SQLite for every pair of statuses and compares it with the table, and walks
each store through every transition.

The persistent triggers (:data:`TRIGGERS`: an inbound message's events) are
derived objects, not schema: :func:`install` puts the current definitions in
place each time a database is opened for writing (inside one write
transaction, so concurrent openers agree), replacing what the migrations
created and dropping those of earlier versions (:data:`RETIRED`). A change to
the lifecycle therefore needs no migration.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from herald.store._billing import PriceKind, PriceSide, RefundPolicy
from herald.store._model import Channel, EventKind, Source, Status, StatusEvents
from herald.store.lifecycle import Emit

__all__ = ["RETIRED", "STEPS", "TRIGGERS", "emit_condition", "emit_steps", "install",
           "parts_ended",
           "parts_recorded", "receipts_applied", "smpp_receipt_condition", "webhook_condition"]

_SENT = int(Status.SENT)
_DELIVERED = int(Status.DELIVERED)
_FINAL = _DELIVERED  # the smallest final status
_WEBHOOK = int(Channel.WEBHOOK)
_SMPP = int(Channel.SMPP)
_STATUS = int(EventKind.STATUS)
_INBOUND = int(EventKind.INBOUND)


def emit_condition(emit: Emit, old: str = "OLD.status", new: str = "NEW.status") -> str:
    """SQL that is true when the step ``old → new`` emits ``emit`` (lifecycle.emits)."""
    if emit is Emit.WEBHOOK:
        return f"{new} > {old} AND {new} >= {_SENT}"
    if emit is Emit.SMPP_RECEIPT:
        return f"{new} >= {_FINAL} AND {old} < {_FINAL}"
    if emit is Emit.REFUND:
        return f"{new} > {_DELIVERED} AND {old} < {_FINAL}"
    if emit is Emit.BUY_PRICE:
        return f"{new} >= {_SENT} AND {old} < {_SENT}"
    raise ValueError(f"no condition for {emit!r}")


def webhook_condition(status: str, url: str, events: str, test: str) -> str:
    """SQL for lifecycle.webhook_wanted."""
    return f"{url} IS NOT NULL AND {test} = 0 AND ({events} >> {status}) & 1"


def smpp_receipt_condition(status: str, source: str, registered_delivery: str,
                           test: str) -> str:
    """SQL for lifecycle.smpp_receipt_wanted."""
    return (
        f"{source} = {int(Source.SMPP)} AND {test} = 0"
        f" AND (({registered_delivery} & 3) = 1"
        f" OR (({registered_delivery} & 3) = 2 AND {status} <> {_DELIVERED}))"
    )


def _refunded(policy: RefundPolicy) -> str:
    return ",".join(str(int(s)) for s in sorted(s for s in Status if policy.refunds(s)))


# -- the parts roll up to the message (lifecycle.rollup), once per batch -------------
#
# A part's steps (recorded upstream, its receipt, a parked receipt applied)
# are written by the store's own statements, a batch of rows at a time, and
# rolled up here with one statement per batch instead of triggers on
# ``segments``: a trigger runs its program (and each of its statements) for
# every row, and the segment record and the receipt of a message ran 24 of them
# (docs/performance.md, "Statement runs per message"). The batch's keys travel
# as one JSON array (``json_each``); times stay bound values (never text). The
# message's own steps are noted, and emit before COMMIT (below).

# Every part recorded upstream: SUBMITTED (?1: the batch's message ids). The
# message's sent_at is its latest part's record.
_SUBMITTED = f"""
UPDATE messages SET status = {_SENT},
    sent_at = (SELECT max(s.updated_at) FROM segments s WHERE s.message_seq = messages.seq)
WHERE id IN (SELECT value FROM json_each(?1)) AND status < {_SENT}
  AND segments <= (SELECT count(*) FROM segments s WHERE s.message_seq = messages.seq)"""

# The batch's [connector, upstream_key] pairs with a receipt parked: usually
# none, so the unparking below is skipped with this one probe per batch.
_PARKED_KEYS = """
SELECT DISTINCT json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]')
FROM json_each(?1) j WHERE EXISTS (SELECT 1 FROM parked_receipts p
    WHERE p.connector = json_extract(j.value, '$[0]')
      AND p.upstream_key = json_extract(j.value, '$[1]'))"""

# A receipt parked before its part was recorded: the first final one parked
# wins (?1 message id, ?2 part, ?3 connector, ?4 upstream key). The SUBMITTED
# roll-up ran first, so the message is "sent" before a parked receipt ends it.
_UNPARK = f"""
UPDATE segments SET (status, error_code, updated_at) = (
    SELECT p.status, p.error_code, p.received_at FROM parked_receipts p
    WHERE p.connector = ?3 AND p.upstream_key = ?4 ORDER BY p.id LIMIT 1)
WHERE message_seq = (SELECT seq FROM messages WHERE id = ?1) AND idx = ?2
  AND connector = ?3 AND upstream_key = ?4 AND status < {_FINAL}
RETURNING message_seq"""
_UNPARKED = """
DELETE FROM parked_receipts WHERE connector = ?3 AND upstream_key = ?4
  AND EXISTS (SELECT 1 FROM segments WHERE message_seq = (SELECT seq FROM messages WHERE id = ?1)
              AND idx = ?2 AND connector = ?3 AND upstream_key = ?4)"""

# The messages of the batch's [connector, upstream_key] pairs: their parts
# (NULL: no part has that key, so its receipt is parked) and whether a part is final.
_RECEIPT_PARTS = f"""
SELECT j.key, s.message_seq, s.status >= {_FINAL} FROM json_each(?1) j
LEFT JOIN segments s ON s.connector = json_extract(j.value, '$[0]')
                    AND s.upstream_key = json_extract(j.value, '$[1]')"""

# One part ended otherwise: so does the message (the first to end, by its
# receipt's time). ?1: message seqs.
_ENDED = f"""
UPDATE messages SET status = e.status, done_at = e.at, error_code = e.error_code
FROM (SELECT s.message_seq AS seq, s.status AS status, s.error_code AS error_code,
             min(s.updated_at) AS at
      FROM segments s WHERE s.message_seq IN (SELECT value FROM json_each(?1))
        AND s.status > {_DELIVERED} GROUP BY s.message_seq) e
WHERE messages.seq = e.seq AND messages.status < {_FINAL}"""

# Every part delivered: DELIVERED, at the last part's receipt. ?1: message seqs.
_DELIVERED_ALL = f"""
UPDATE messages SET status = {_DELIVERED}, done_at = d.at
FROM (SELECT s.message_seq AS seq, count(*) AS n, max(s.updated_at) AS at
      FROM segments s WHERE s.message_seq IN (SELECT value FROM json_each(?1))
        AND s.status = {_DELIVERED} GROUP BY s.message_seq) d
WHERE messages.seq = d.seq AND messages.status < {_FINAL} AND messages.segments <= d.n"""


def parts_ended(conn: sqlite3.Connection, seqs: Collection[int]) -> None:
    """Roll up the messages ``seqs`` whose parts may have reached a final status."""
    if seqs:
        batch = json.dumps(sorted(seqs))
        conn.execute(_ENDED, (batch,))
        conn.execute(_DELIVERED_ALL, (batch,))


def parts_recorded(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
    """After ``rows`` of RECORD_SEGMENT (message id, part, connector, upstream id,
    upstream key, ...) ran: the messages sent in full, then the parked receipts
    of these parts applied (and the messages they end)."""
    conn.execute(_SUBMITTED, (json.dumps(list({r[0]: None for r in rows})),))
    parked = conn.execute(_PARKED_KEYS, (json.dumps([(r[2], r[4]) for r in rows]),)).fetchall()
    if not parked:
        return
    keys = set(parked)
    seqs: set[int] = set()
    for r in rows:
        if (r[2], r[4]) in keys:
            params = (r[0], r[1], r[2], r[4])
            seqs.update(seq for (seq,) in conn.execute(_UNPARK, params).fetchall())
            conn.execute(_UNPARKED, params)
    parts_ended(conn, seqs)


def receipts_applied(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> list[int]:
    """After ``rows`` of RECEIPT_APPLY (connector, upstream key, ...) ran: the
    messages whose parts they ended, rolled up. Returns the positions in
    ``rows`` of the receipts no part has (for parking)."""
    found = conn.execute(_RECEIPT_PARTS, (json.dumps([(r[0], r[1]) for r in rows]),)).fetchall()
    missing = [i for i, seq, _ in found if seq is None]
    parts_ended(conn, {seq for _, seq, final in found if final})
    return missing


# -- what a message's steps emit (lifecycle.emits and its predicates), once per
#    transaction -------------------------------------------------------------------
#
# The writer's connection notes each step that emits anything (lifecycle.emits:
# a status that grows to "sent" or past it) in a temporary table, by a
# temporary trigger (:data:`STEPS`); before COMMIT the store writes what the
# transaction's steps emit, one statement per kind over all of them
# (:func:`emit_steps`). Four triggers on ``messages`` did it per row before:
# SQLite enters the program of every trigger on the column for every row
# changed, a claim's move to "queued" included (their WHENs are tested inside).
# Every status change goes through the store's writer, so through that
# connection.

#: The writer's temporary table of steps and the trigger that fills it.
STEPS = (
    "CREATE TEMP TABLE IF NOT EXISTS stepped"
    " (seq INTEGER NOT NULL, old INTEGER NOT NULL, new INTEGER NOT NULL)",
    "CREATE TEMP TRIGGER IF NOT EXISTS messages_stepped AFTER UPDATE OF status ON main.messages"
    f" WHEN {emit_condition(Emit.WEBHOOK)}"  # lifecycle.emits: every step that emits has it
    " BEGIN INSERT INTO stepped (seq, old, new) VALUES (NEW.seq, OLD.status, NEW.status); END",
)
_STEPPED = "temp.stepped st JOIN messages m ON m.seq = st.seq"
# A message's webhook URL and subscription: its own, else its account's.
_URL = "COALESCE(m.callback_url, a.callback_url)"
_EVENTS = f"COALESCE(m.webhook_events, a.webhook_events, {int(StatusEvents.ALL)})"

# The CDR takes its first part's connector and that connector's buy price
# (network, then country, then default: herald.rating's order) times the parts
# sent (dispatch may have re-cut the message), rounded half to even to a
# micro-unit (herald.rating.charge's rule).
_SCALE = 10_000  # PRICE_SCALE / MICROS
_BUY = int(PriceSide.BUY)
_BUY_PRICE = f"""
UPDATE cdrs SET connector = x.connector,
    buy = x.t / {_SCALE}
          + (x.t % {_SCALE} > {_SCALE // 2}
             OR (x.t % {_SCALE} = {_SCALE // 2} AND (x.t / {_SCALE}) % 2 = 1))
FROM (SELECT c.message_id AS id, s.connector AS connector, m.segments * COALESCE(
          (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
              AND kind = {int(PriceKind.NETWORK)} AND key = c.network),
          (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
              AND kind = {int(PriceKind.COUNTRY)} AND key = c.country),
          (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
              AND kind = {int(PriceKind.DEFAULT)} AND key = '')) AS t
      FROM {_STEPPED} JOIN cdrs c ON c.message_id = m.id
      JOIN segments s ON s.message_seq = m.seq
          AND s.idx = (SELECT min(idx) FROM segments WHERE message_seq = m.seq)
      WHERE {emit_condition(Emit.BUY_PRICE, "st.old", "st.new")}) x
WHERE cdrs.message_id = x.id"""

_REFUND = f"""
UPDATE cdrs SET refunded = sell
WHERE refunded = 0 AND sell > 0 AND message_id IN (
    SELECT m.id FROM {_STEPPED} JOIN balances b ON b.account_id = m.account_id
    WHERE {emit_condition(Emit.REFUND, "st.old", "st.new")}
      AND CASE b.refund_policy
          WHEN {int(RefundPolicy.REJECTED)} THEN st.new IN ({_refunded(RefundPolicy.REJECTED)})
          WHEN {int(RefundPolicy.UNDELIVERED)}
              THEN st.new IN ({_refunded(RefundPolicy.UNDELIVERED)})
          ELSE 0 END)"""

# Webhook events in the order of the steps (a message's "sent" before its final).
_WEBHOOK_EVENTS = f"""
INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                    created_at, next_attempt_at)
SELECT {_WEBHOOK}, {_STATUS}, m.account_id, m.id, st.new, {_URL},
       CASE WHEN st.new >= {_FINAL} THEN m.done_at ELSE m.sent_at END,
       CASE WHEN st.new >= {_FINAL} THEN m.done_at ELSE m.sent_at END
FROM {_STEPPED} LEFT JOIN accounts a ON a.id = m.account_id
WHERE {webhook_condition("st.new", _URL, _EVENTS, "m.test")}
ORDER BY st.rowid"""

_SMPP_RECEIPTS = f"""
INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                    created_at, next_attempt_at)
SELECT {_SMPP}, {_STATUS}, m.account_id, m.id, st.new, NULL, m.done_at, m.done_at
FROM {_STEPPED}
WHERE {emit_condition(Emit.SMPP_RECEIPT, "st.old", "st.new")}
  AND {smpp_receipt_condition("st.new", "m.source", "m.registered_delivery", "m.test")}
ORDER BY st.rowid"""

# What the transaction's steps emit, in one read: how many steps; whether any
# prices a CDR, refunds one, posts a webhook or sends an SMPP receipt (so that
# the statements above run only when they write something); and the final
# statuses reached (test messages not counted), as text.
_WANTED = f"""
SELECT count(*),
       max({emit_condition(Emit.BUY_PRICE, "st.old", "st.new")}
           AND EXISTS (SELECT 1 FROM cdrs c WHERE c.message_id = m.id)),
       max({emit_condition(Emit.REFUND, "st.old", "st.new")}
           AND EXISTS (SELECT 1 FROM cdrs c WHERE c.message_id = m.id)),
       max({webhook_condition("st.new", _URL, _EVENTS, "m.test")}),
       max({emit_condition(Emit.SMPP_RECEIPT, "st.old", "st.new")}
           AND {smpp_receipt_condition("st.new", "m.source", "m.registered_delivery", "m.test")}),
       group_concat(CASE WHEN {emit_condition(Emit.SMPP_RECEIPT, "st.old", "st.new")}
                         AND m.test = 0 THEN st.new END)
FROM {_STEPPED} LEFT JOIN accounts a ON a.id = m.account_id"""


def emit_steps(conn: sqlite3.Connection) -> dict[int, int]:
    """Write what the transaction's steps emit (before its COMMIT, on the writer's
    connection); returns how many messages reached each final status."""
    steps, buy, refund, webhook, smpp, finals = conn.execute(_WANTED).fetchone()
    if not steps:
        return {}
    if buy:
        conn.execute(_BUY_PRICE)
    if refund:
        conn.execute(_REFUND)
    if webhook:
        conn.execute(_WEBHOOK_EVENTS)
    if smpp:
        conn.execute(_SMPP_RECEIPTS)
    conn.execute("DELETE FROM temp.stepped")
    counts: dict[int, int] = {}
    for status in finals.split(",") if finals else ():
        counts[int(status)] = counts.get(int(status), 0) + 1
    return counts


# An inbound message: a webhook event (the account's inbound URL, else its
# callback URL, when it hears inbound messages) and a deliver_sm for its SMPP binds.
_INBOUND_EVENTS = f"""
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT {_WEBHOOK}, {_INBOUND}, NEW.account_id, NEW.id, NULL,
           COALESCE(a.inbound_url, a.callback_url), NEW.received_at, NEW.received_at
    FROM accounts a WHERE a.id = NEW.account_id AND a.inbound_webhooks
                      AND COALESCE(a.inbound_url, a.callback_url) IS NOT NULL;
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT {_SMPP}, {_INBOUND}, NEW.account_id, NEW.id, NULL, NULL,
           NEW.received_at, NEW.received_at
    WHERE EXISTS (SELECT 1 FROM smpp_credentials WHERE account_id = NEW.account_id);"""

#: Triggers earlier versions created, now the store's own statements: dropped
#: when a database is opened for writing.
RETIRED = ("segments_sent", "segments_unpark_insert", "segments_unpark_update",
           "segments_delivered", "segments_ended", "messages_smpp_receipt", "messages_webhook",
           "messages_refund", "messages_cdr_sent")

#: name -> CREATE TRIGGER statement, in creation order.
TRIGGERS: dict[str, str] = {
    "inbound_events": f"""CREATE TRIGGER inbound_events AFTER INSERT ON inbound
BEGIN{_INBOUND_EVENTS}
END""",
}


def install(conn: sqlite3.Connection) -> bool:
    """Put :data:`TRIGGERS` in place, in one write transaction; True when they changed.

    ``conn`` is in autocommit mode (the store issues BEGIN itself).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        have = dict(conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall())
        if (all(have.get(name) == sql for name, sql in TRIGGERS.items())
                and not any(name in have for name in RETIRED)):
            conn.execute("COMMIT")
            return False
        for name in (*RETIRED, *TRIGGERS):  # all: creation order is part of the behaviour
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        for sql in TRIGGERS.values():
            conn.execute(sql)
        conn.execute("COMMIT")
        return True
    except BaseException:
        conn.execute("ROLLBACK")
        raise
