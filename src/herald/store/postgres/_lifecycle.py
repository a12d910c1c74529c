"""The message lifecycle (``store/lifecycle.py``) as PostgreSQL triggers (private).

Theory of operation
===================

Every statement that changes a status, whoever issues it (the dispatch
queue's completion, a status update, a receipt, a cancel), gets the step's
emits in its own transaction with no further round trip: the triggers here
run after the statement, once per statement (not per row), over its
transition tables (``old_rows``, ``new_rows``), each emit one set-based
statement. Their conditions are the SQLite store's (``_sqlite_lifecycle``:
plain SQL over two status expressions, built from the lifecycle's
constants), with the webhook predicate's bit test made boolean;
``tests/store/test_lifecycle.py`` evaluates each on the server for every pair
of statuses and compares it with the table.

- ``messages_stepped`` (after an UPDATE of messages): a message that became
  ``sent`` or final leaves ``dispatch_queue``, a sent one waits in
  ``awaiting_receipts`` until it is final; then the webhook event, the SMPP
  receipt, the CDR's buy price and the refund, each where ``lifecycle.emits``
  and its predicates say.
- ``segments_recorded`` (after an INSERT of segments): every part recorded
  makes the message ``sent`` (first: the message is sent before a parked
  receipt ends it), then the receipts parked for the new parts apply (the
  first one parked wins).
- ``segments_changed`` (after an UPDATE of segments: a receipt, a re-record):
  receipts parked for the parts that took another key (a re-record) apply;
  every part delivered makes the message ``delivered``, one part ended
  otherwise ends it.

A trigger that changes a table runs that table's trigger in turn (a receipt
ends a part, the part ends the message, the message emits): the chain is
bounded because each link only moves statuses forward, and a statement that
changed no row returns at once.

Why triggers, not statements issued from Python. The alternative was each
status-changing statement carrying its emits as data-modifying CTEs
(``UPDATE ... RETURNING`` then ``INSERT ... SELECT`` in the same statement).
On the store loop (bench/pg_lifecycle.py: accept 100 charged messages, claim
50, complete them as ``sent``: a webhook event, the CDR's buy price, the
queue exit, the wait for a receipt; 5 interleaved rounds of 8 s, 2 cores
shared with PostgreSQL at a load average of 9) the two cost about the same:
server CPU 120 µs per message with the triggers, 115 with the CTEs, 74 with
no lifecycle at all (earlier runs, without awaiting_receipts: 122 and 116,
129 and 128); 3,032 and 3,423 msg/s (medians; the rounds' ranges overlap:
2,012-4,516 and 2,743-3,732). The triggers win on what the CTEs
cannot do: every path that moves a status gets its emits whoever wrote the
statement (the dispatch core's completion, a cancel, an expiry sweep), and a
receipt's roll-up (part ended, then message, then its emits; a parked receipt
applied after the "sent" roll-up) is one statement from Python, where CTEs,
which do not see each other's writes, would need a round trip per link.

Like SQLite's, the triggers are derived objects, not schema: :func:`install`
puts the current definitions in place (under the migrations' advisory lock,
skipped when they are current), so a change to the lifecycle needs no
migration.
"""

from __future__ import annotations

from typing import Any

from herald.store._billing import PriceKind, PriceSide, RefundPolicy
from herald.store._model import Channel, EventKind, Status, StatusEvents
from herald.store._sqlite_lifecycle import emit_condition, smpp_receipt_condition
from herald.store.lifecycle import Emit
from herald.store.postgres._conn import MIGRATION_LOCK

__all__ = [
    "FUNCTIONS",
    "TRIGGERS",
    "emit_condition",
    "install",
    "key_locks",
    "smpp_receipt_condition",
    "webhook_condition",
]

_SENT = int(Status.SENT)
_DELIVERED = int(Status.DELIVERED)
_FINAL = _DELIVERED  # the smallest final status
_WEBHOOK = int(Channel.WEBHOOK)
_SMPP = int(Channel.SMPP)
_STATUS = int(EventKind.STATUS)


def webhook_condition(status: str, url: str, events: str, test: str) -> str:
    """SQL for lifecycle.webhook_wanted: SQLite's, with the bit test a boolean
    (in PostgreSQL ``(events >> status) & 1`` is an integer) and ``test`` a
    boolean column."""
    return f"{url} IS NOT NULL AND NOT {test} AND (({events} >> {status}) & 1) <> 0"


def _refunded(policy: RefundPolicy) -> str:
    return ",".join(str(int(s)) for s in sorted(s for s in Status if policy.refunds(s)))


# -- messages: what a step emits (lifecycle.emits and its predicates) ------------------

# The statement's steps are classified once (one pass over the transition
# tables) into the messages each emit concerns; an emit with none is skipped,
# and the others reach the tables by key (``= ANY (array)``). Joining the
# transition tables to cdrs or messages instead let the planner, which has no
# statistics on them, scan the whole table: measured 16-62 ms a statement
# with 5,000 CDRs (bench/pg_lifecycle.py).
_HOOK_STEP = f"{emit_condition(Emit.WEBHOOK, 'o.status', 'n.status')} AND NOT n.test"
_CLASSIFY = f"""
    SELECT array_agg(n.seq) FILTER (WHERE n.status >= {_SENT} AND o.status < {_SENT}),
           array_agg(n.seq) FILTER (WHERE {_HOOK_STEP}),
           array_agg(n.seq) FILTER (
               WHERE {emit_condition(Emit.SMPP_RECEIPT, "o.status", "n.status")}
                 AND {smpp_receipt_condition("n.status", "n.source", "n.registered_delivery",
                                             "n.test::int")}),
           array_agg(n.id) FILTER (WHERE {emit_condition(Emit.BUY_PRICE, "o.status", "n.status")}),
           array_agg(n.id) FILTER (WHERE {emit_condition(Emit.REFUND, "o.status", "n.status")}),
           array_agg(n.seq) FILTER (WHERE n.status = {_SENT} AND o.status < {_SENT}),
           array_agg(n.seq) FILTER (WHERE n.status >= {_FINAL} AND o.status = {_SENT}),
           bool_or(n.callback_url IS NOT NULL) FILTER (WHERE {_HOOK_STEP}),
           array_agg(DISTINCT n.account_id) FILTER (WHERE {_HOOK_STEP})
    INTO to_dequeue, to_hook, to_receipt, to_price, to_refund, to_await, to_settle,
         hook_url, hook_accounts
    FROM new_rows n JOIN old_rows o ON o.seq = n.seq;"""

# A message sent or final is no longer dispatch's: the completion that sent it
# deleted its queue row already; a receipt, cancel or expiry ends it here.
_LEAVE_QUEUE = """
    IF to_dequeue IS NOT NULL THEN
        DELETE FROM dispatch_queue WHERE seq = ANY (to_dequeue);
    END IF;"""

# A sent message waits for its receipt (the expiry sweep reads these rows);
# a final one no longer does.
_AWAIT_RECEIPT = """
    IF to_await IS NOT NULL THEN
        INSERT INTO awaiting_receipts (seq, expires_at)
        SELECT seq, expires_at FROM new_rows WHERE seq = ANY (to_await)
        ON CONFLICT DO NOTHING;
    END IF;
    IF to_settle IS NOT NULL THEN
        DELETE FROM awaiting_receipts WHERE seq = ANY (to_settle);
    END IF;"""

# Most steps of most accounts have no URL to post to (the message's, else its
# account's): the insert, and the outbox trigger it fires, are then skipped
# (one probe of the steps' accounts instead).
_WEBHOOK_EVENT = f"""
    IF to_hook IS NOT NULL AND (hook_url OR EXISTS (
            SELECT 1 FROM accounts WHERE id = ANY (hook_accounts) AND callback_url IS NOT NULL))
    THEN
        INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                            created_at, next_attempt_at)
        SELECT {_WEBHOOK}, {_STATUS}, n.account_id, n.id, n.status, u.url, u.at, u.at
        FROM new_rows n LEFT JOIN accounts a ON a.id = n.account_id
        CROSS JOIN LATERAL (SELECT
            coalesce(n.callback_url, a.callback_url) AS url,
            coalesce(n.webhook_events, a.webhook_events, {int(StatusEvents.ALL)}) AS events,
            CASE WHEN n.status >= {_FINAL} THEN n.done_at ELSE n.sent_at END AS at) u
        WHERE n.seq = ANY (to_hook)
          AND {webhook_condition("n.status", "u.url", "u.events", "n.test")}
        ORDER BY n.seq;
    END IF;"""

_SMPP_RECEIPT = f"""
    IF to_receipt IS NOT NULL THEN
        INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                            created_at, next_attempt_at)
        SELECT {_SMPP}, {_STATUS}, n.account_id, n.id, n.status, NULL, n.done_at, n.done_at
        FROM new_rows n WHERE n.seq = ANY (to_receipt) ORDER BY n.seq;
    END IF;"""

# The sell price goes back once (refunded = 0), per the account's policy, and
# the balance takes it in the same statement.
_REFUND = f"""
    IF to_refund IS NOT NULL THEN
        WITH given AS (
            UPDATE cdrs c SET refunded = c.sell
            FROM new_rows n, balances b
            WHERE c.message_id = ANY (to_refund) AND n.id = c.message_id
              AND b.account_id = c.account_id AND c.refunded = 0 AND c.sell > 0
              AND CASE b.refund_policy
                  WHEN {int(RefundPolicy.REJECTED)}
                      THEN n.status IN ({_refunded(RefundPolicy.REJECTED)})
                  WHEN {int(RefundPolicy.UNDELIVERED)}
                      THEN n.status IN ({_refunded(RefundPolicy.UNDELIVERED)})
                  ELSE false END
            RETURNING c.account_id, c.sell)
        UPDATE balances b SET balance = b.balance + g.total
        FROM (SELECT account_id, sum(sell) AS total FROM given GROUP BY account_id) g
        WHERE b.account_id = g.account_id;
    END IF;"""

# The CDR takes its first part's connector and that connector's buy price
# (network, then country, then default: herald.rating's order) times the
# parts sent (dispatch may have re-cut the message), rounded half to even to
# a micro-unit (herald.rating.charge's rule), in numeric (parts x price may
# pass bigint).
_SCALE = 10_000  # PRICE_SCALE / MICROS
_BUY = int(PriceSide.BUY)
_BUY_PRICE = f"""
    IF to_price IS NOT NULL THEN
        UPDATE cdrs c SET connector = x.connector,
            buy = (div(x.t, {_SCALE}) + CASE
                WHEN mod(x.t, {_SCALE}) > {_SCALE // 2}
                  OR (mod(x.t, {_SCALE}) = {_SCALE // 2} AND mod(div(x.t, {_SCALE}), 2) = 1)
                THEN 1 ELSE 0 END)::bigint
        FROM (SELECT b.message_id, f.connector, n.segments::numeric * coalesce(
                  (SELECT price FROM prices WHERE side = {_BUY} AND owner = f.connector
                      AND kind = {int(PriceKind.NETWORK)} AND key = b.network),
                  (SELECT price FROM prices WHERE side = {_BUY} AND owner = f.connector
                      AND kind = {int(PriceKind.COUNTRY)} AND key = b.country),
                  (SELECT price FROM prices WHERE side = {_BUY} AND owner = f.connector
                      AND kind = {int(PriceKind.DEFAULT)} AND key = '')) AS t
              FROM cdrs b JOIN new_rows n ON n.id = b.message_id
              CROSS JOIN LATERAL (SELECT s.connector FROM segments s
                                  WHERE s.message_seq = n.seq ORDER BY s.idx LIMIT 1) f
              WHERE b.message_id = ANY (to_price)) x
        WHERE c.message_id = x.message_id;
    END IF;"""

# -- segments: the parts roll up to the message (lifecycle.rollup) ---------------------

# Every part recorded upstream: SUBMITTED. (Counting the statement's own parts
# first, "m.segments <= x.parts OR m.segments <= (SELECT count(*) ...)", made
# the condition a join filter: the planner then hash-joined a walk of the whole
# messages_pkey, 0.13 to 0.57 s per 3,000 HTTP messages end to end. The message
# is found by key, and its parts counted, as here.)
_SUBMITTED = f"""
    UPDATE messages m SET status = {_SENT}, sent_at = x.at
    FROM (SELECT message_seq, max(updated_at) AS at FROM new_rows GROUP BY message_seq) x
    WHERE m.seq = x.message_seq AND m.status < {_SENT}
      AND m.segments <= (SELECT count(*) FROM segments s WHERE s.message_seq = m.seq);"""



def key_locks(connector: str, upstream_key: str, rows: str) -> str:
    """SQL that takes the advisory lock of each (``connector``, ``upstream_key``)
    of ``rows``, in one order (two batches never wait on each other in a cycle).

    A receipt and the record of its part may commit at once (two nodes): each
    takes its key's lock before it looks for the other's row (a receipt
    before its statement, a record in its trigger, before the unpark), so the
    later one sees the earlier one's row, and a receipt is never left parked
    for a part just recorded.
    """
    return (f"SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended("
            f"{connector} || ' ' || {upstream_key}, 0) AS k FROM {rows} ORDER BY 1) keys")


def _unpark(rows: str) -> str:
    """The receipts parked for the parts ``rows`` (a FROM item named ``n``) go
    (the first one parked applies), once this statement holds the parts' key
    locks (key_locks). Usually none is parked: one probe per part then, and no
    update of segments (nor the statement trigger it would fire)."""
    match = "p.connector = n.connector AND p.upstream_key = n.upstream_key"
    return f"""
    PERFORM * FROM ({key_locks("n.connector", "n.upstream_key", rows)}) locked;
    IF EXISTS (SELECT 1 FROM {rows} JOIN parked_receipts p ON {match}) THEN
        WITH taken AS (
            DELETE FROM parked_receipts p USING {rows} WHERE {match}
            RETURNING p.id, p.connector, p.upstream_key, p.status, p.error_code,
                      p.received_at
        ), first AS (
            SELECT DISTINCT ON (connector, upstream_key) * FROM taken
            ORDER BY connector, upstream_key, id)
        UPDATE segments s SET status = f.status, error_code = f.error_code,
                              updated_at = f.received_at
        FROM first f JOIN {rows}
            ON n.connector = f.connector AND n.upstream_key = f.upstream_key
        WHERE s.message_seq = n.message_seq AND s.idx = n.idx AND s.status < {_FINAL};
    END IF;"""


_UNPARK = _unpark("new_rows n")

# An update of parts: what it did, in one pass. A receipt is parked only
# while no part carries its key (under the key's lock), so only a part that
# took another key (a re-record) can have receipts waiting; a receipt's own
# update of its part changes no key and skips the unpark and its locks.
_PARTS_CHANGED = f"""
    SELECT bool_or(n.connector <> o.connector OR n.upstream_key <> o.upstream_key),
           bool_or(n.status = {_DELIVERED} AND o.status < {_FINAL}),
           bool_or(n.status > {_DELIVERED} AND o.status < {_FINAL})
    INTO rekeyed, any_delivered, any_lost
    FROM new_rows n JOIN old_rows o ON o.message_seq = n.message_seq AND o.idx = n.idx;
    IF rekeyed THEN{_unpark(
        "(SELECT n.* FROM new_rows n JOIN old_rows o"
        " ON o.message_seq = n.message_seq AND o.idx = n.idx"
        " WHERE n.connector <> o.connector OR n.upstream_key <> o.upstream_key) n")}
    END IF;"""

# The parts a statement ended (their status before was not final).
_ENDED_PARTS = f"""new_rows n JOIN old_rows o ON o.message_seq = n.message_seq AND o.idx = n.idx
        WHERE n.status >= {_FINAL} AND o.status < {_FINAL}"""

# Every part delivered: DELIVERED.
_DELIVERED_ALL = f"""
    IF any_delivered THEN
        UPDATE messages m SET status = {_DELIVERED}, done_at = x.at
        FROM (SELECT n.message_seq, max(n.updated_at) AS at FROM {_ENDED_PARTS}
                  AND n.status = {_DELIVERED} GROUP BY n.message_seq) x
        WHERE m.seq = x.message_seq AND m.status < {_FINAL}
          AND m.segments <= (SELECT count(*) FROM segments s
                             WHERE s.message_seq = m.seq AND s.status = {_DELIVERED});
    END IF;"""

# One part ended otherwise: so does the message (the first such part ended).
_ENDED = f"""
    IF any_lost THEN
        UPDATE messages m SET status = x.status, done_at = x.at, error_code = x.error_code
        FROM (SELECT DISTINCT ON (n.message_seq) n.message_seq, n.status, n.updated_at AS at,
                     n.error_code FROM {_ENDED_PARTS} AND n.status > {_DELIVERED}
              ORDER BY n.message_seq, n.updated_at, n.idx) x
        WHERE m.seq = x.message_seq AND m.status < {_FINAL};
    END IF;"""


def _function(name: str, body: str, declare: str = "") -> str:
    # enable_seqscan off: every table a trigger touches is reached by key from
    # the statement's rows; a misestimate (the planner has no statistics on
    # transition tables, and fresh tables have none either) must not turn
    # that into a scan of messages or segments per statement.
    return f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off AS $fn$
{declare}BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;  -- a statement that changed nothing (and ends the chain)
    END IF;{body}
    RETURN NULL;
END
$fn$"""


_STEP_ARRAYS = """DECLARE
    to_dequeue bigint[]; to_hook bigint[]; to_receipt bigint[]; to_price text[]; to_refund text[];
    to_await bigint[]; to_settle bigint[]; hook_url boolean; hook_accounts bigint[];
"""

#: name -> CREATE FUNCTION of each trigger's function.
FUNCTIONS: dict[str, str] = {
    "herald_messages_stepped": _function(
        "herald_messages_stepped",
        _CLASSIFY + _LEAVE_QUEUE + _AWAIT_RECEIPT + _WEBHOOK_EVENT + _SMPP_RECEIPT
        + _BUY_PRICE + _REFUND,
        _STEP_ARRAYS),
    "herald_segments_recorded": _function("herald_segments_recorded", _SUBMITTED + _UNPARK),
    "herald_segments_changed": _function(
        "herald_segments_changed", _PARTS_CHANGED + _DELIVERED_ALL + _ENDED,
        "DECLARE\n    rekeyed boolean; any_delivered boolean; any_lost boolean;\n"),
}

#: name -> CREATE TRIGGER statement.
TRIGGERS: dict[str, str] = {
    "messages_stepped": """CREATE OR REPLACE TRIGGER messages_stepped AFTER UPDATE ON messages
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION herald_messages_stepped()""",
    "segments_recorded": """CREATE OR REPLACE TRIGGER segments_recorded AFTER INSERT ON segments
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION herald_segments_recorded()""",
    "segments_changed": """CREATE OR REPLACE TRIGGER segments_changed AFTER UPDATE ON segments
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION herald_segments_changed()""",
}

_SOURCE_OF = (
    "SELECT p.proname, p.prosrc FROM pg_proc p"
    " WHERE p.proname = ANY ($1::text[]) AND p.pronamespace = current_schema()::regnamespace"
)


def _source(create_function: str) -> str:
    """The body PostgreSQL keeps (pg_proc.prosrc) of a CREATE FUNCTION."""
    return create_function.split("$fn$")[1]


async def install(conn: Any) -> bool:
    """Put :data:`FUNCTIONS` and :data:`TRIGGERS` in place on an asyncpg
    connection to a migrated database, in one transaction under the
    migrations' advisory lock (nodes that start together take turns); True
    when they changed."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        have = dict(await conn.fetch(_SOURCE_OF, list(FUNCTIONS)))
        triggers = {r["tgname"] for r in await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE tgname = ANY ($1::text[])", list(TRIGGERS))}
        if triggers == set(TRIGGERS) and all(
                have.get(name) == _source(sql) for name, sql in FUNCTIONS.items()):
            return False
        for sql in FUNCTIONS.values():
            await conn.execute(sql)
        for sql in TRIGGERS.values():
            await conn.execute(sql)
        return True

