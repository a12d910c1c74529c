"""The message lifecycle (``store/lifecycle.py``) as SQLite triggers (private).

The triggers run in the writer's transaction, in the statement that changes a
status: a step and everything it emits commit together, with no round trip.
Their conditions are built here from the lifecycle's constants, never written
as numbers; ``tests/store/test_lifecycle.py`` evaluates each condition in
SQLite for every pair of statuses and compares it with the table.

The triggers are derived objects, not schema: :func:`install` puts the current
definitions in place each time a database is opened for writing (inside one
write transaction, so concurrent openers agree), replacing what the migrations
created. A change to the lifecycle therefore needs no migration. They are all
recreated together, in the order of :data:`TRIGGERS`: SQLite runs the triggers
of one statement in an order that follows creation, and the outbox rows of one
step keep theirs (webhook before SMPP receipt).
"""

from __future__ import annotations

import sqlite3

from herald.store._billing import PriceKind, PriceSide, RefundPolicy
from herald.store._model import Channel, EventKind, Source, Status, StatusEvents
from herald.store.lifecycle import Emit

__all__ = ["TRIGGERS", "emit_condition", "install", "smpp_receipt_condition",
           "webhook_condition"]

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


# -- the parts roll up to the message (lifecycle.rollup) ------------------------------

# Every part recorded upstream: SUBMITTED.
_SUBMITTED = f"""
    UPDATE messages SET status = {_SENT}, sent_at = NEW.updated_at
    WHERE seq = NEW.message_seq AND status < {_SENT}
      AND segments <= (SELECT count(*) FROM segments WHERE message_seq = NEW.message_seq);"""

# A receipt parked before this part was recorded: the first final one parked
# wins. The rollup to SUBMITTED runs first, whatever order SQLite runs this
# statement's triggers in (it is idempotent), so the message is "sent" before
# a parked receipt ends it.
_UNPARK = f"""
    UPDATE segments SET (status, error_code, updated_at) = (
        SELECT p.status, p.error_code, p.received_at FROM parked_receipts p
        WHERE p.connector = NEW.connector AND p.upstream_key = NEW.upstream_key
        ORDER BY p.id LIMIT 1)
    WHERE message_seq = NEW.message_seq AND idx = NEW.idx AND status < {_FINAL};
    DELETE FROM parked_receipts
    WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key;"""
_PARKED = """EXISTS (SELECT 1 FROM parked_receipts
             WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key)"""

# -- what a step emits (lifecycle.emits and its predicates) ---------------------------

_WEBHOOK_EVENT = f"""
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT {_WEBHOOK}, {_STATUS}, NEW.account_id, NEW.id, NEW.status, u.url, u.at, u.at
    FROM (SELECT COALESCE(NEW.callback_url, a.callback_url) AS url,
                 COALESCE(NEW.webhook_events, a.webhook_events, {int(StatusEvents.ALL)}) AS events,
                 CASE WHEN NEW.status >= {_FINAL} THEN NEW.done_at ELSE NEW.sent_at END AS at
          FROM (SELECT NEW.account_id AS id) n LEFT JOIN accounts a ON a.id = n.id) u
    WHERE {webhook_condition("NEW.status", "u.url", "u.events", "NEW.test")};"""

_SMPP_RECEIPT = f"""
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    VALUES ({_SMPP}, {_STATUS}, NEW.account_id, NEW.id, NEW.status, NULL,
            NEW.done_at, NEW.done_at);"""

_REFUND = f"""
    UPDATE cdrs SET refunded = sell
    WHERE message_id = NEW.id AND refunded = 0 AND sell > 0
      AND (SELECT CASE refund_policy
                  WHEN {int(RefundPolicy.REJECTED)}
                      THEN NEW.status IN ({_refunded(RefundPolicy.REJECTED)})
                  WHEN {int(RefundPolicy.UNDELIVERED)}
                      THEN NEW.status IN ({_refunded(RefundPolicy.UNDELIVERED)})
                  ELSE 0 END
           FROM balances WHERE account_id = NEW.account_id);"""

# The CDR takes its first part's connector and that connector's buy price
# (network, then country, then default: herald.rating's order) times the parts
# sent (dispatch may have re-cut the message), rounded half to even to a
# micro-unit (herald.rating.charge's rule). The WHEN's EXISTS probe costs an
# unbilled message 0.6 us, the UPDATE ... FROM 2.6 per sent message.
_SCALE = 10_000  # PRICE_SCALE / MICROS
_BUY = int(PriceSide.BUY)
_BUY_PRICE = f"""
    UPDATE cdrs SET connector = x.connector,
        buy = x.t / {_SCALE}
              + (x.t % {_SCALE} > {_SCALE // 2}
                 OR (x.t % {_SCALE} = {_SCALE // 2} AND (x.t / {_SCALE}) % 2 = 1))
    FROM (SELECT s.connector AS connector, NEW.segments * COALESCE(
              (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
                  AND kind = {int(PriceKind.NETWORK)} AND key = c.network),
              (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
                  AND kind = {int(PriceKind.COUNTRY)} AND key = c.country),
              (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
                  AND kind = {int(PriceKind.DEFAULT)} AND key = '')) AS t
          FROM cdrs c JOIN segments s ON s.message_seq = NEW.seq
          WHERE c.message_id = NEW.id ORDER BY s.idx LIMIT 1) x
    WHERE cdrs.message_id = NEW.id;"""

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

#: name -> CREATE TRIGGER statement, in creation order.
TRIGGERS: dict[str, str] = {
    "segments_sent": f"""CREATE TRIGGER segments_sent AFTER INSERT ON segments BEGIN{_SUBMITTED}
END""",
    "segments_unpark_update": f"""CREATE TRIGGER segments_unpark_update
AFTER UPDATE OF upstream_key ON segments WHEN {_PARKED}
BEGIN{_UNPARK}
END""",
    # Every part delivered: DELIVERED.
    "segments_delivered": f"""CREATE TRIGGER segments_delivered AFTER UPDATE OF status ON segments
WHEN NEW.status = {_DELIVERED} AND OLD.status < {_FINAL}
BEGIN
    UPDATE messages SET status = {_DELIVERED}, done_at = NEW.updated_at
    WHERE seq = NEW.message_seq AND status < {_FINAL}
      AND segments <= (SELECT count(*) FROM segments
                       WHERE message_seq = NEW.message_seq AND status = {_DELIVERED});
END""",
    # One part ended otherwise: so does the message.
    "segments_ended": f"""CREATE TRIGGER segments_ended AFTER UPDATE OF status ON segments
WHEN NEW.status > {_DELIVERED} AND OLD.status < {_FINAL}
BEGIN
    UPDATE messages SET status = NEW.status, done_at = NEW.updated_at,
                        error_code = NEW.error_code
    WHERE seq = NEW.message_seq AND status < {_FINAL};
END""",
    "messages_smpp_receipt": f"""CREATE TRIGGER messages_smpp_receipt
AFTER UPDATE OF status ON messages
WHEN {emit_condition(Emit.SMPP_RECEIPT)}
     AND {smpp_receipt_condition("NEW.status", "NEW.source", "NEW.registered_delivery",
                                 "NEW.test")}
BEGIN{_SMPP_RECEIPT}
END""",
    "segments_unpark_insert": f"""CREATE TRIGGER segments_unpark_insert
AFTER INSERT ON segments WHEN {_PARKED}
BEGIN{_SUBMITTED}{_UNPARK}
END""",
    "messages_webhook": f"""CREATE TRIGGER messages_webhook AFTER UPDATE OF status ON messages
WHEN {emit_condition(Emit.WEBHOOK)} AND NEW.test = 0
BEGIN{_WEBHOOK_EVENT}
END""",
    "inbound_events": f"""CREATE TRIGGER inbound_events AFTER INSERT ON inbound
BEGIN{_INBOUND_EVENTS}
END""",
    "messages_refund": f"""CREATE TRIGGER messages_refund AFTER UPDATE OF status ON messages
WHEN {emit_condition(Emit.REFUND)}
BEGIN{_REFUND}
END""",
    "messages_cdr_sent": f"""CREATE TRIGGER messages_cdr_sent AFTER UPDATE OF status ON messages
WHEN {emit_condition(Emit.BUY_PRICE)}
     AND EXISTS (SELECT 1 FROM cdrs WHERE message_id = NEW.id)
BEGIN{_BUY_PRICE}
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
        if all(have.get(name) == sql for name, sql in TRIGGERS.items()):
            conn.execute("COMMIT")
            return False
        for name in TRIGGERS:  # all of them: creation order is part of the behaviour
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        for sql in TRIGGERS.values():
            conn.execute(sql)
        conn.execute("COMMIT")
        return True
    except BaseException:
        conn.execute("ROLLBACK")
        raise
