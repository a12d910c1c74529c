"""The statements of the PostgreSQL store's lifecycle methods (private).

Each takes a batch as parallel arrays spread with ``unnest`` (one statement,
one round trip, whatever the batch size); what a status change emits is the
triggers' (``_lifecycle``), not written here. Every statement that enforces a
store rule says so in its ``WHERE``: statuses only grow (``status < new``),
finals are never replaced (``status < final``).
"""

from __future__ import annotations

from herald.store._model import EventKind, Status
from herald.store.postgres._lifecycle import key_locks
from herald.store.postgres._sql import MESSAGE_COLUMNS

__all__ = [
    "APPLY_RECEIPTS",
    "CANCEL",
    "CANCEL_READ",
    "CDR_COLUMNS",
    "CHARGE",
    "CLAIM_OUTBOX",
    "EXPIRE_SENT",
    "EXPIRE_UNSENT",
    "INBOUND_COLUMNS",
    "INSERT_CDRS",
    "LIVE_MESSAGE",
    "LIVE_STATUS",
    "LOCK_RECEIPT_KEYS",
    "OUTBOX_COLUMNS",
    "RECORD_SEGMENTS",
    "SET_FINAL",
    "SET_QUEUED",
    "SET_SENT",
]

_QUEUED = int(Status.QUEUED)
_SENT = int(Status.SENT)
_FINAL = int(Status.DELIVERED)  # the smallest final status

OUTBOX_COLUMNS = (
    "id", "channel", "kind", "account_id", "subject_id", "status", "url", "created_at",
    "attempts", "next_attempt_at", "last_error",
)
#: An inbound message's columns (``inbound_from_record`` reads them by name).
INBOUND_COLUMNS = ("id", "account_id", "to_addr", "from_addr", "body", "encoding",
                   "data_coding", "connector", "received_at")
CDR_COLUMNS = (
    "c.message_id, c.account_id, c.accepted_at, c.country, c.network, c.segments,"
    " c.price_key, c.sell, c.refunded, c.connector, c.buy"
)

# A message as its customer sees it (``m``, ``q`` its queue row if any): a
# claim writes the narrow queue row only (_queue.py), so a message claimed
# and not yet sent is "queued" with the claim's first time and attempt.
_LIVE = {
    "status": f"CASE WHEN m.status < {_QUEUED} AND q.queued_at IS NOT NULL"
              f" THEN {_QUEUED} ELSE m.status END",
    "queued_at": "coalesce(m.queued_at, q.queued_at)",
    "attempt": "greatest(m.attempt, coalesce(q.attempt, 0))",
}
#: A message's live status (``m``, ``q``).
LIVE_STATUS = _LIVE["status"]
_LIVE_EXPRESSIONS = [(c, _LIVE.get(c, f"m.{c}")) for c in MESSAGE_COLUMNS]
#: The select list of a live message, by the names ``message_from_record`` reads.
LIVE_MESSAGE = ", ".join(f"{e} AS {c}" for c, e in _LIVE_EXPRESSIONS)

#: Updates ($1 ids, $2 times): queued (the first time kept).
SET_QUEUED = f"""
UPDATE messages m SET status = {_QUEUED}, queued_at = coalesce(m.queued_at, u.at)
FROM (SELECT DISTINCT ON (id) id, at FROM unnest($1::text[], $2::float8[])
      WITH ORDINALITY AS u(id, at, ord) ORDER BY id, ord) u
WHERE m.id = u.id AND m.status < {_QUEUED}
"""
#: Updates ($1 ids, $2 times): sent (the triggers take it out of the queue).
SET_SENT = f"""
UPDATE messages m SET status = {_SENT}, sent_at = u.at
FROM (SELECT DISTINCT ON (id) id, at FROM unnest($1::text[], $2::float8[])
      WITH ORDINALITY AS u(id, at, ord) ORDER BY id, ord) u
WHERE m.id = u.id AND m.status < {_SENT}
"""
#: Updates to final statuses: the first one given for a message wins (as
#: applying them in order would give).
SET_FINAL = f"""
UPDATE messages m SET status = u.status, done_at = u.at, error_code = u.error_code,
    error_permanent = u.permanent
FROM (SELECT DISTINCT ON (id) * FROM unnest($1::text[], $2::smallint[], $3::float8[],
          $4::integer[], $5::boolean[]) WITH ORDINALITY AS u(id, status, at, error_code,
          permanent, ord) ORDER BY id, ord) u
WHERE m.id = u.id AND m.status < {_FINAL}
"""

#: Segments recorded upstream. An index beyond the message's count is
#: ignored (it would make "all delivered" lie); recording an index again (a
#: resend) replaces its upstream ids and check time, keeps its status and
#: starts its checks over; the last record of an index in a batch wins. Each
#: record's message is looked up by id (a LATERAL subquery with LIMIT is not
#: flattened into a join): as a join, the generic plan asyncpg's prepared
#: statement settled on while ``messages`` was small (a fresh database, no
#: statistics yet) hash-joined a scan of the whole table, and kept it as the
#: table grew (tests/store/postgres/test_fresh_plans.py).
RECORD_SEGMENTS = f"""
INSERT INTO segments (message_seq, idx, connector, upstream_id, upstream_key, status,
                      updated_at, check_at)
SELECT m.seq, r.idx, r.connector, r.upstream_id, r.upstream_key, {_SENT}, r.at, r.check_at
FROM (SELECT DISTINCT ON (message_id, idx) * FROM unnest($1::text[], $2::smallint[],
          $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[])
          WITH ORDINALITY AS r(message_id, idx, connector, upstream_id, upstream_key, at,
          check_at, ord) ORDER BY message_id, idx, ord DESC) r
CROSS JOIN LATERAL (SELECT seq, segments FROM messages WHERE id = r.message_id LIMIT 1) m
WHERE r.idx < m.segments
ORDER BY m.seq, r.idx
ON CONFLICT (message_seq, idx) DO UPDATE SET connector = excluded.connector,
    upstream_id = excluded.upstream_id, upstream_key = excluded.upstream_key,
    updated_at = excluded.updated_at, check_at = excluded.check_at, checks = 0
"""

#: The key locks a receipt batch ($1 connectors, $2 keys) takes before it
#: looks for the parts (``_lifecycle.key_locks``; a record takes them in its
#: trigger).
LOCK_RECEIPT_KEYS = key_locks("c", "k", "unnest($1::text[], $2::text[]) AS r(c, k)")

#: Final receipts: applied to the segment carrying the key (the first receipt
#: of a key in the batch; a final segment keeps its status), parked in
#: arrival order when no segment carries it yet.
APPLY_RECEIPTS = f"""
WITH r AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::integer[], $5::float8[])
        WITH ORDINALITY AS r(connector, upstream_key, status, error_code, at, ord)
), applied AS (
    UPDATE segments s SET status = f.status, error_code = f.error_code, updated_at = f.at
    FROM (SELECT DISTINCT ON (connector, upstream_key) * FROM r
          ORDER BY connector, upstream_key, ord) f
    WHERE s.connector = f.connector AND s.upstream_key = f.upstream_key
      AND s.status < {_FINAL}
)
INSERT INTO parked_receipts (connector, upstream_key, status, error_code, received_at)
SELECT r.connector, r.upstream_key, r.status, r.error_code, r.at FROM r
WHERE NOT EXISTS (SELECT 1 FROM segments s
                  WHERE s.connector = r.connector AND s.upstream_key = r.upstream_key)
ORDER BY r.ord
"""

#: Up to $2 queued messages whose validity ended by $1 and that no live
#: claim holds (unclaimed, or a claim that ran out: nobody's) become expired,
#: the earliest first (the triggers take them out of the queue). The queue's
#: copy of expires_at and its index (dispatch_queue_expiry) serve the unclaimed;
#: a row a claim is taking is skipped. (DispatchQueue.expire_queued, the
#: sweep's, leaves lapsed claims to requeue_expired first.)
EXPIRE_UNSENT = f"""
UPDATE messages SET status = {int(Status.EXPIRED)}, done_at = $1
WHERE seq = ANY (ARRAY (
    SELECT seq FROM dispatch_queue
    WHERE expires_at <= $1 AND (owner IS NULL OR lease_until <= $1)
    ORDER BY expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)) AND status < {_SENT}
"""
#: Up to $3 sent messages whose validity ended by $1 (no receipt came) become
#: expired at $2, the earliest first (awaiting_receipts, by its deadline index).
EXPIRE_SENT = f"""
UPDATE messages SET status = {int(Status.EXPIRED)}, done_at = $2
WHERE seq = ANY (ARRAY (
    SELECT seq FROM awaiting_receipts WHERE expires_at <= $1
    ORDER BY expires_at LIMIT $3
    FOR UPDATE SKIP LOCKED
)) AND status = {_SENT}
"""

#: What decides a cancel ($1 id), the queue row locked: a claim that comes
#: later skips it, one that came first holds it.
CANCEL_READ = f"""
SELECT m.seq, m.account_id, {_LIVE["status"]} AS status, q.owner, q.lease_until,
    EXISTS (SELECT 1 FROM segments s WHERE s.message_seq = m.seq) AS upstream
FROM messages m LEFT JOIN LATERAL (
    SELECT owner, lease_until, queued_at FROM dispatch_queue WHERE seq = m.seq FOR UPDATE
) q ON true
WHERE m.id = $1
FOR UPDATE OF m
"""
#: Cancel message $1 at $2 (the triggers take it out of the queue).
CANCEL = f"""
UPDATE messages SET status = {int(Status.CANCELLED)}, done_at = $2
WHERE seq = $1 AND status < {_SENT}
"""

#: Charges of an accept ($1 accounts, $2 amounts): each account's balance
#: pays its sum, or, if that would pass its credit limit, stays as it is (the
#: caller counts the accounts returned). The row lock makes concurrent
#: accepts take turns: none overdraws.
CHARGE = """
UPDATE balances b SET balance = b.balance - c.total
FROM (SELECT account_id, sum(amount) AS total FROM unnest($1::bigint[], $2::bigint[])
      AS c(account_id, amount) GROUP BY account_id) c
WHERE b.account_id = c.account_id AND b.balance - c.total >= -b.credit_limit
RETURNING b.account_id
"""
INSERT_CDRS = """
INSERT INTO cdrs (message_id, account_id, accepted_at, country, network, segments,
                  price_key, sell)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::text[], $5::text[],
                     $6::smallint[], $7::text[], $8::bigint[])
"""

#: Hand out up to $3 due events of channel $1 at $2 (optionally of account
#: $5), oldest due first, leased until $4; rows another node is claiming are
#: skipped. Each row carries its message (live), the message's first
#: connector and the rule that routed it (``_routing``), or NULLs, and its
#: inbound message (``i_``), or NULLs.
CLAIM_OUTBOX = f"""
WITH picked AS (
    SELECT id, next_attempt_at AS due FROM outbox
    WHERE channel = $1 AND next_attempt_at <= $2 AND ($5::bigint IS NULL OR account_id = $5)
    ORDER BY next_attempt_at LIMIT $3
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE outbox o SET next_attempt_at = $4, attempts = o.attempts + 1
    FROM picked p WHERE o.id = p.id
    RETURNING {", ".join("o." + c for c in OUTBOX_COLUMNS)}, p.due
)
SELECT {", ".join("c." + c for c in OUTBOX_COLUMNS)}, m.id AS message_id,
    {", ".join(f"{e} AS m_{c}" for c, e in _LIVE_EXPRESSIONS)},
    (SELECT s.connector FROM segments s WHERE s.message_seq = m.seq
     ORDER BY s.idx LIMIT 1) AS route_connector, r.rule AS route_rule,
    {", ".join(f"i.{c} AS i_{c}" for c in INBOUND_COLUMNS)}
FROM claimed c
LEFT JOIN messages m ON c.kind = {int(EventKind.STATUS)} AND m.id = c.subject_id
LEFT JOIN dispatch_queue q ON q.seq = m.seq
LEFT JOIN message_routes r ON r.message_id = m.id
LEFT JOIN inbound i ON c.kind = {int(EventKind.INBOUND)} AND i.id = c.subject_id
ORDER BY c.due, c.id
"""
