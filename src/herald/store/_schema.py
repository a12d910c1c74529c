"""The SQLite schema, as an ordered list of migrations.

``MIGRATIONS[n]`` takes a database from ``PRAGMA user_version = n`` to ``n + 1``.
Each runs in its own transaction together with the ``user_version`` bump, so a
crash mid-migration leaves the previous version intact. Never edit a shipped
migration: append a new one.

Design notes for the first schema:

- Integer primary keys (``seq``) for joins and B-tree locality; the public id
  is a separate ``UNIQUE`` column. herald's ids are time-ordered (see
  :mod:`herald.ids`), so inserts append to the right edge of that index too.
- The claim queue is the partial index ``messages_claim``: only messages not
  yet sent are in it, so it stays as small as the backlog. ``due_at`` is the
  time a message may next be claimed: ``send_at`` (or acceptance), a lease's
  end, or a reschedule time, all in one column so one range scan finds work.
- The rules that must hold whatever order updates arrive in are the message
  lifecycle's (``store/lifecycle.py``, one table): a status only grows; a
  segment's final status rolls up to its message; a receipt parked before its
  segment existed is applied when the segment is recorded; status changes and
  inbound messages write their outbox events in the same transaction. SQLite
  keeps them in the ``WHERE`` clauses of the writer's statements and in what
  ``store/_sqlite_lifecycle.py`` runs in the writer's transaction (and the
  triggers it installs at every open): the lifecycle triggers the migrations
  below create are history, dropped or replaced at open.
- SMPP 3.4 §5.2.17 registered_delivery bits 1..0: 01 = receipt on success or
  failure, 10 = receipt on failure only (delivered messages get none).
"""

from __future__ import annotations

from herald.store._billing import PriceKind, PriceSide, RefundPolicy
from herald.store._chat_secrets import SQLITE_CHAT_SECRET as CHAT_SECRET_SQL
from herald.store._model import SECRET_TEXT_SQL, Status, StatusEvents

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    rate_limit REAL NOT NULL,
    bind_limit INTEGER NOT NULL,
    callback_url TEXT,
    webhook_secret_version INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    key_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;
CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE smpp_credentials (
    system_id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX smpp_credentials_account ON smpp_credentials(account_id);

CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL,
    source INTEGER NOT NULL,
    to_addr TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    body BLOB NOT NULL,
    encoding TEXT NOT NULL,
    data_coding INTEGER NOT NULL,
    udhi INTEGER NOT NULL,
    segments INTEGER NOT NULL,
    reference TEXT,
    metadata TEXT,
    callback_url TEXT,
    registered_delivery INTEGER NOT NULL,
    test INTEGER NOT NULL,
    send_at REAL,
    expires_at REAL NOT NULL,
    status INTEGER NOT NULL,
    error_code INTEGER,
    error_permanent INTEGER NOT NULL DEFAULT 0,
    accepted_at REAL NOT NULL,
    queued_at REAL,
    sent_at REAL,
    done_at REAL,
    due_at REAL,
    attempt INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_claim ON messages(due_at) WHERE status < 2;
CREATE INDEX messages_sent_expiry ON messages(expires_at) WHERE status = 2;
CREATE INDEX messages_account ON messages(account_id, seq);
CREATE INDEX messages_account_to ON messages(account_id, to_addr, seq);
CREATE INDEX messages_account_reference ON messages(account_id, reference, seq)
    WHERE reference IS NOT NULL;

CREATE TABLE segments (
    message_seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    connector TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    upstream_key TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_code INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (message_seq, idx)
) WITHOUT ROWID;
CREATE INDEX segments_upstream ON segments(connector, upstream_key);

CREATE TABLE parked_receipts (
    id INTEGER PRIMARY KEY,
    connector TEXT NOT NULL,
    upstream_key TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_code INTEGER,
    received_at REAL NOT NULL
);
CREATE INDEX parked_receipts_upstream ON parked_receipts(connector, upstream_key);

CREATE TABLE inbound (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL,
    to_addr TEXT NOT NULL,
    from_addr TEXT NOT NULL,
    body BLOB NOT NULL,
    encoding TEXT NOT NULL,
    data_coding INTEGER NOT NULL,
    connector TEXT NOT NULL,
    received_at REAL NOT NULL
);

-- next_attempt_at NULL: given up on (kept for inspection until purged).
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    channel INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    subject_id TEXT NOT NULL,
    status INTEGER,
    url TEXT,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox(channel, next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

CREATE TABLE idempotency (
    account_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    status_code INTEGER NOT NULL,
    response BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_expiry ON idempotency(expires_at);

-- All segments recorded upstream: the message is sent.
CREATE TRIGGER segments_sent AFTER INSERT ON segments BEGIN
    UPDATE messages SET status = 2, sent_at = NEW.updated_at
    WHERE seq = NEW.message_seq AND status < 2
      AND segments <= (SELECT count(*) FROM segments WHERE message_seq = NEW.message_seq);
END;

-- A receipt that arrived before this segment was recorded: the first final
-- one parked wins (it is what applying them in arrival order would give).
CREATE TRIGGER segments_unpark_insert AFTER INSERT ON segments
WHEN EXISTS (SELECT 1 FROM parked_receipts
             WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key)
BEGIN
    UPDATE segments SET (status, error_code, updated_at) = (
        SELECT p.status, p.error_code, p.received_at FROM parked_receipts p
        WHERE p.connector = NEW.connector AND p.upstream_key = NEW.upstream_key
        ORDER BY p.id LIMIT 1)
    WHERE message_seq = NEW.message_seq AND idx = NEW.idx AND status < 10;
    DELETE FROM parked_receipts
    WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key;
END;

CREATE TRIGGER segments_unpark_update AFTER UPDATE OF upstream_key ON segments
WHEN EXISTS (SELECT 1 FROM parked_receipts
             WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key)
BEGIN
    UPDATE segments SET (status, error_code, updated_at) = (
        SELECT p.status, p.error_code, p.received_at FROM parked_receipts p
        WHERE p.connector = NEW.connector AND p.upstream_key = NEW.upstream_key
        ORDER BY p.id LIMIT 1)
    WHERE message_seq = NEW.message_seq AND idx = NEW.idx AND status < 10;
    DELETE FROM parked_receipts
    WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key;
END;

-- Every segment delivered: the message is delivered.
CREATE TRIGGER segments_delivered AFTER UPDATE OF status ON segments
WHEN NEW.status = 10 AND OLD.status < 10
BEGIN
    UPDATE messages SET status = 10, done_at = NEW.updated_at
    WHERE seq = NEW.message_seq AND status < 10
      AND segments <= (SELECT count(*) FROM segments
                       WHERE message_seq = NEW.message_seq AND status = 10);
END;

-- One segment ended otherwise: so does the message.
CREATE TRIGGER segments_ended AFTER UPDATE OF status ON segments
WHEN NEW.status > 10 AND OLD.status < 10
BEGIN
    UPDATE messages SET status = NEW.status, done_at = NEW.updated_at,
                        error_code = NEW.error_code
    WHERE seq = NEW.message_seq AND status < 10;
END;

-- Webhook events: sent and final statuses, to the message's or account's URL.
CREATE TRIGGER messages_webhook AFTER UPDATE OF status ON messages
WHEN NEW.status > OLD.status AND NEW.status >= 2 AND NEW.test = 0
BEGIN
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT 1, 1, NEW.account_id, NEW.id, NEW.status, u.url, u.at, u.at
    FROM (SELECT COALESCE(NEW.callback_url,
                          (SELECT callback_url FROM accounts WHERE id = NEW.account_id)) AS url,
                 CASE WHEN NEW.status >= 10 THEN NEW.done_at ELSE NEW.sent_at END AS at) u
    WHERE u.url IS NOT NULL;
END;

-- SMPP receipts for SMPP customers who asked for one.
CREATE TRIGGER messages_smpp_receipt AFTER UPDATE OF status ON messages
WHEN NEW.status >= 10 AND OLD.status < 10 AND NEW.source = 2 AND NEW.test = 0
     AND ((NEW.registered_delivery & 3) = 1
          OR ((NEW.registered_delivery & 3) = 2 AND NEW.status <> 10))
BEGIN
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    VALUES (2, 1, NEW.account_id, NEW.id, NEW.status, NULL, NEW.done_at, NEW.done_at);
END;

CREATE TRIGGER inbound_events AFTER INSERT ON inbound BEGIN
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT 1, 2, NEW.account_id, NEW.id, NULL, a.callback_url, NEW.received_at, NEW.received_at
    FROM accounts a WHERE a.id = NEW.account_id AND a.callback_url IS NOT NULL;
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT 2, 2, NEW.account_id, NEW.id, NULL, NULL, NEW.received_at, NEW.received_at
    WHERE EXISTS (SELECT 1 FROM smpp_credentials WHERE account_id = NEW.account_id);
END;
"""

# V2: a receipt parked before its segment made the message "delivered" without
# ever being "sent" (no sent_at, no "sent" webhook): SQLite runs the triggers
# of one statement newest first, so segments_unpark_insert ran before
# segments_sent. The unpark trigger now applies the "sent" rule itself first,
# whatever the order (the rule is idempotent: status < 2).
_V2 = """
DROP TRIGGER segments_unpark_insert;
CREATE TRIGGER segments_unpark_insert AFTER INSERT ON segments
WHEN EXISTS (SELECT 1 FROM parked_receipts
             WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key)
BEGIN
    UPDATE messages SET status = 2, sent_at = NEW.updated_at
    WHERE seq = NEW.message_seq AND status < 2
      AND segments <= (SELECT count(*) FROM segments WHERE message_seq = NEW.message_seq);
    UPDATE segments SET (status, error_code, updated_at) = (
        SELECT p.status, p.error_code, p.received_at FROM parked_receipts p
        WHERE p.connector = NEW.connector AND p.upstream_key = NEW.upstream_key
        ORDER BY p.id LIMIT 1)
    WHERE message_seq = NEW.message_seq AND idx = NEW.idx AND status < 10;
    DELETE FROM parked_receipts
    WHERE connector = NEW.connector AND upstream_key = NEW.upstream_key;
END;
"""

# V3: the signaling guard's platform-egress check asks "is a customer message
# to this number waiting?" for every SRI-SM / MT-ForwardSM the platform sends
# (herald.store.pending): an index lookup, not a scan.
_V3 = """
CREATE INDEX messages_pending_to ON messages(to_addr) WHERE status < 10 AND test = 0;
"""

# V4: webhook subscriptions (issue 7). An account chooses the status changes
# it hears about (``webhook_events``, a bit per status: see StatusEvents) and a
# message may choose its own (``messages.webhook_events``, NULL: the account's);
# inbound messages are subscribed apart (``inbound_webhooks``, ``inbound_url``);
# batching per endpoint (``webhook_batch_max`` events, ``webhook_batch_wait`` s).
# Accounts that exist keep every event they had (sent and final: the bits of
# 2 and 10..14); new accounts get the store's default, written by create_account.
# (StatusEvents.ALL as it was then: ``cancelled`` came in V13, which adds it.)
_EVENTS_ALL_V4 = (1 << 2) | sum(1 << n for n in range(10, 15))
_V4 = f"""
ALTER TABLE accounts ADD COLUMN webhook_events INTEGER NOT NULL DEFAULT {_EVENTS_ALL_V4};
ALTER TABLE accounts ADD COLUMN inbound_webhooks INTEGER NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN inbound_url TEXT;
ALTER TABLE accounts ADD COLUMN webhook_batch_max INTEGER NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN webhook_batch_wait REAL NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN webhook_events INTEGER;

DROP TRIGGER messages_webhook;
CREATE TRIGGER messages_webhook AFTER UPDATE OF status ON messages
WHEN NEW.status > OLD.status AND NEW.status >= {int(Status.SENT)} AND NEW.test = 0
BEGIN
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT 1, 1, NEW.account_id, NEW.id, NEW.status, u.url, u.at, u.at
    FROM (SELECT COALESCE(NEW.callback_url, a.callback_url) AS url,
                 COALESCE(NEW.webhook_events, a.webhook_events, {_EVENTS_ALL_V4}) AS events,
                 CASE WHEN NEW.status >= {int(Status.DELIVERED)} THEN NEW.done_at
                      ELSE NEW.sent_at END AS at
          FROM (SELECT NEW.account_id AS id) n LEFT JOIN accounts a ON a.id = n.id) u
    WHERE u.url IS NOT NULL AND (u.events >> NEW.status) & 1;
END;

DROP TRIGGER inbound_events;
CREATE TRIGGER inbound_events AFTER INSERT ON inbound BEGIN
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT 1, 2, NEW.account_id, NEW.id, NULL, COALESCE(a.inbound_url, a.callback_url),
           NEW.received_at, NEW.received_at
    FROM accounts a WHERE a.id = NEW.account_id AND a.inbound_webhooks
                      AND COALESCE(a.inbound_url, a.callback_url) IS NOT NULL;
    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url,
                        created_at, next_attempt_at)
    SELECT 2, 2, NEW.account_id, NEW.id, NULL, NULL, NEW.received_at, NEW.received_at
    WHERE EXISTS (SELECT 1 FROM smpp_credentials WHERE account_id = NEW.account_id);
END;
"""

# V5: an account can be disabled (issue 8): its keys and binds are refused.
_V5 = """
ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
"""

# V6: a message's failed tries apart from its claims (issue 8): hand-backs for
# a throttled or full connector re-claim it (``attempt``, the lease token) but
# are no failure; only transient failures count towards giving up.
_V6 = """
ALTER TABLE messages ADD COLUMN tries INTEGER NOT NULL DEFAULT 0;
"""

# V7: receipts that never come (issue 8). A segment accepted upstream carries
# the time its receipt is overdue (``check_at``: recorded + the connector's
# receipt_timeout) and how often it was checked since (``checks``: query_sm
# asked); the partial index holds only segments still waiting for a final
# status, so dispatch's periodic scan reads just the overdue ones. Segments
# waiting when this runs get the default receipt_timeout of this version
# (3600 s) from their record time.
_V7 = f"""
ALTER TABLE segments ADD COLUMN check_at REAL;
ALTER TABLE segments ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
UPDATE segments SET check_at = updated_at + 3600 WHERE status < {int(Status.DELIVERED)};
CREATE INDEX segments_check ON segments(check_at)
    WHERE status < {int(Status.DELIVERED)} AND check_at IS NOT NULL;
"""

# V8: a customer sees the webhook deliveries of a message that failed (issue 8):
# the outbox rows with an error are indexed by message. A first delivery that
# works never has an error, so the index costs nothing on the common path.
_V8 = """
CREATE INDEX outbox_failed ON outbox(subject_id) WHERE last_error IS NOT NULL;
"""

# V9, number tables (issue 9, numbers): the operator's numbering plan and
# ported numbers, each one row holding its built index (``herald numbers``
# writes them; see ``NumberTable``), and one generation counter that every
# write increases, which running processes poll to notice a new table.
_V9 = """
CREATE TABLE number_tables (
    kind TEXT PRIMARY KEY,
    generation INTEGER NOT NULL,
    imported_at REAL NOT NULL,
    entries INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE number_tables_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO number_tables_generation (id, generation) VALUES (1, 0);
"""

# V10: priority classes and fairness (issue 9). A message has a class (0 otp,
# 1 transactional, 2 bulk, 3 marketing) and a customer's tag; an account a
# default class (NULL: transactional). Claims read the waiting messages class
# by class and account by account (round robin) through messages_fair.
_V10 = """
ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN tag TEXT;
ALTER TABLE accounts ADD COLUMN priority INTEGER;
CREATE INDEX messages_fair ON messages(priority, account_id, due_at) WHERE status < 2;
"""

# V11, administration (issue 9, admin): admin keys, apart from the accounts'
# API keys (one active key per name: the name is who the audit log says acted),
# and the audit log of every change an operator makes, found by target or time.
# ``changes`` is JSON and never holds a secret (see AuditEntry).
_V11_ADMIN = """
CREATE TABLE admin_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
) WITHOUT ROWID;
CREATE UNIQUE INDEX admin_keys_active_name ON admin_keys(name) WHERE revoked_at IS NULL;
CREATE TABLE admin_audit (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE INDEX admin_audit_target ON admin_audit(target, seq);
CREATE INDEX admin_audit_at ON admin_audit(at);
"""

# Account controls (issue 9, docs/accounts.md), in tables of their own rather
# than columns of accounts (read by position). account_controls: one row per
# restricted account, its lists as JSON arrays of the operator's entries.
# daily_usage: what each account's accepts counted per UTC day (days since
# the epoch), grown in the accept's own transaction. opt_outs: each number's
# last change; seq (greater for every change, of any account) lets a process
# read only what changed since it last looked.
_V12_ACCOUNT_CONTROLS = """
CREATE TABLE account_controls (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
    daily_quota INTEGER,
    quota_segments INTEGER NOT NULL DEFAULT 0,
    senders TEXT NOT NULL DEFAULT '[]',
    sender_rules TEXT NOT NULL DEFAULT '[]',
    countries TEXT NOT NULL DEFAULT '[]',
    api_networks TEXT NOT NULL DEFAULT '[]',
    smpp_networks TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE daily_usage (
    account_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
) WITHOUT ROWID;
CREATE TABLE opt_outs (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    number TEXT NOT NULL,
    opted_out INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (account_id, number)
) WITHOUT ROWID;
CREATE UNIQUE INDEX opt_outs_seq ON opt_outs(seq);
"""

# V13, cancel and replace (issue 9, account controls): a customer may cancel
# (or, by SMPP replace_sm, change) a message that has not been submitted
# upstream, which needs to know whether a claim holds it: ``due_at`` cannot
# tell a lease from a hand-back's backoff. ``lease_until`` is the end of the
# claim that holds the message (claims and lease extensions set it, hand-backs
# clear it). Queued messages take their due_at as it (held, or backing off:
# the safe side). ``cancelled`` (15) is a new final status: subscriptions that
# had every final status get it too (a new account's default has it).
_V13_CANCEL = f"""
ALTER TABLE messages ADD COLUMN lease_until REAL;
UPDATE messages SET lease_until = due_at WHERE status = {int(Status.QUEUED)};
UPDATE accounts SET webhook_events = webhook_events | {int(StatusEvents.CANCELLED)}
WHERE webhook_events & {int(StatusEvents.FINAL & ~StatusEvents.CANCELLED)}
      = {int(StatusEvents.FINAL & ~StatusEvents.CANCELLED)};
UPDATE messages SET webhook_events = webhook_events | {int(StatusEvents.CANCELLED)}
WHERE webhook_events IS NOT NULL AND status < {int(Status.DELIVERED)}
  AND webhook_events & {int(StatusEvents.FINAL & ~StatusEvents.CANCELLED)}
      = {int(StatusEvents.FINAL & ~StatusEvents.CANCELLED)};
"""

# V14, routing (issue 9, routing): the routing rules in force (the routes file
# and its buy prices, one row, replaced whole by ``herald routes import``), the
# operator's connector states (``herald connectors disable``), one generation
# counter every change to either increases (running processes poll it), and
# the rule that routed each message (a new table, not a column of messages:
# written only when rules are loaded). ``segments_final`` serves the health
# query: each connector's newest final segments, read newest first.
_V14_ROUTING = f"""
CREATE TABLE routing_rules (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL,
    imported_at REAL NOT NULL,
    source TEXT NOT NULL,
    rules TEXT NOT NULL,
    prices TEXT
);
CREATE TABLE connector_states (
    connector TEXT PRIMARY KEY,
    disabled INTEGER NOT NULL,
    reason TEXT,
    changed_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE routing_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO routing_generation (id, generation) VALUES (1, 0);
CREATE TABLE message_routes (
    message_id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    decided_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX segments_final ON segments(connector, updated_at)
    WHERE status >= {int(Status.DELIVERED)};
"""

# V15, billing (issue 9, rating and billing). Money is integers: balances and
# charges in micro-units, prices per segment in 10^-10 units (see _billing).
# - prices / price_lists: each account's sell list and each connector's buy
#   list, replaced whole by an import; price_lists_generation grows with every
#   change (running processes poll it, as they do number_tables_generation).
# - balances: a row per billed account (made by its first sell list or top-up).
# - cdrs: a row per charged message, written in the accepting statement group;
#   its insert trigger checks and takes the charge from the balance in the
#   same transaction (RAISE: the caller's accept fails, nothing is kept), so
#   concurrent accepts can never overdraw.
# - at the message's first step past "queued" (sent), its CDR (if it has one:
#   the WHEN probe costs an unbilled message 0.6 us, the UPDATE ... FROM run
#   for it 2.6, per sent message, measured on the 2-CPU VM) takes the
#   connector of its first segment and that connector's buy price: network,
#   then country, then default (herald.rating's order), times the segments
#   sent (dispatch may have re-cut the message),
#   rounded half to even to a micro-unit (herald.rating.charge's rule).
# - at its final status, the refund policy of the account may give the sell
#   price back: once (refunded = 0 guards it; a final status is written once).
_REFUNDED_REJECTED = ",".join(str(int(s)) for s in sorted(
    s for s in Status if RefundPolicy.REJECTED.refunds(s)))
_REFUNDED_UNDELIVERED = ",".join(str(int(s)) for s in sorted(
    s for s in Status if RefundPolicy.UNDELIVERED.refunds(s)))
_SCALE_TO_MICROS = 10_000  # PRICE_SCALE / MICROS
_BUY = int(PriceSide.BUY)
_V15_BILLING = f"""
CREATE TABLE prices (
    side INTEGER NOT NULL,
    owner TEXT NOT NULL,
    kind INTEGER NOT NULL,
    key TEXT NOT NULL,
    price INTEGER NOT NULL,
    PRIMARY KEY (side, owner, kind, key)
) WITHOUT ROWID;
CREATE TABLE price_lists (
    side INTEGER NOT NULL,
    owner TEXT NOT NULL,
    imported_at REAL NOT NULL,
    entries INTEGER NOT NULL,
    PRIMARY KEY (side, owner)
) WITHOUT ROWID;
CREATE TABLE price_lists_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO price_lists_generation (id, generation) VALUES (1, 0);

CREATE TABLE balances (
    account_id INTEGER PRIMARY KEY,
    balance INTEGER NOT NULL DEFAULT 0,
    credit_limit INTEGER NOT NULL DEFAULT 0,
    refund_policy INTEGER NOT NULL DEFAULT {int(RefundPolicy.NONE)}
);

CREATE TABLE cdrs (
    message_id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    accepted_at REAL NOT NULL,
    country TEXT NOT NULL,
    network TEXT,
    segments INTEGER NOT NULL,
    price_key TEXT NOT NULL,
    sell INTEGER NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0,
    connector TEXT,
    buy INTEGER
) WITHOUT ROWID;
CREATE INDEX cdrs_time ON cdrs(accepted_at);

-- changes(): the rows the UPDATE just before it changed (SQLite counts a
-- trigger's own statements): none, if the balance would pass the limit or
-- the account has none.
CREATE TRIGGER cdrs_charge AFTER INSERT ON cdrs BEGIN
    UPDATE balances SET balance = balance - NEW.sell
    WHERE account_id = NEW.account_id AND balance - NEW.sell >= -credit_limit;
    SELECT RAISE(ABORT, 'herald: insufficient funds') WHERE changes() = 0;
END;

CREATE TRIGGER cdrs_refund AFTER UPDATE OF refunded ON cdrs
WHEN NEW.refunded <> OLD.refunded
BEGIN
    UPDATE balances SET balance = balance + NEW.refunded - OLD.refunded
    WHERE account_id = NEW.account_id;
END;

CREATE TRIGGER messages_refund AFTER UPDATE OF status ON messages
WHEN NEW.status > {int(Status.DELIVERED)} AND OLD.status < {int(Status.DELIVERED)}
BEGIN
    UPDATE cdrs SET refunded = sell
    WHERE message_id = NEW.id AND refunded = 0 AND sell > 0
      AND (SELECT CASE refund_policy
                  WHEN {int(RefundPolicy.REJECTED)} THEN NEW.status IN ({_REFUNDED_REJECTED})
                  WHEN {int(RefundPolicy.UNDELIVERED)} THEN NEW.status IN ({_REFUNDED_UNDELIVERED})
                  ELSE 0 END
           FROM balances WHERE account_id = NEW.account_id);
END;

CREATE TRIGGER messages_cdr_sent AFTER UPDATE OF status ON messages
WHEN NEW.status >= {int(Status.SENT)} AND OLD.status < {int(Status.SENT)}
     AND EXISTS (SELECT 1 FROM cdrs WHERE message_id = NEW.id)
BEGIN
    UPDATE cdrs SET connector = x.connector,
        buy = x.t / {_SCALE_TO_MICROS}
              + (x.t % {_SCALE_TO_MICROS} > {_SCALE_TO_MICROS // 2}
                 OR (x.t % {_SCALE_TO_MICROS} = {_SCALE_TO_MICROS // 2}
                     AND (x.t / {_SCALE_TO_MICROS}) % 2 = 1))
    FROM (SELECT s.connector AS connector, NEW.segments * COALESCE(
              (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
                  AND kind = {int(PriceKind.NETWORK)} AND key = c.network),
              (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
                  AND kind = {int(PriceKind.COUNTRY)} AND key = c.country),
              (SELECT price FROM prices WHERE side = {_BUY} AND owner = s.connector
                  AND kind = {int(PriceKind.DEFAULT)} AND key = '')) AS t
          FROM cdrs c JOIN segments s ON s.message_seq = NEW.seq
          WHERE c.message_id = NEW.id ORDER BY s.idx LIMIT 1) x
    WHERE cdrs.message_id = NEW.id;
END;
"""

# The Verify API (docs/verify.md): a verification keeps its code only as a
# keyed hash; each SMS it sent is a row of verification_sends (the per-number
# hourly limit counts them); conversions are customers' feedback that a
# message's code was entered (POST /v1/messages/{id}/converted).
_V16_VERIFY = """
CREATE TABLE verifications (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    to_number TEXT NOT NULL,
    use_case TEXT NOT NULL,
    app TEXT NOT NULL,
    locale TEXT NOT NULL,
    code_length INTEGER NOT NULL,
    status INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    salt BLOB NOT NULL,
    code_hash BLOB NOT NULL,
    sends INTEGER NOT NULL,
    checks INTEGER NOT NULL,
    client TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE verification_sends (
    verification_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    to_number TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at REAL NOT NULL,
    PRIMARY KEY (verification_id, attempt)
) WITHOUT ROWID;
CREATE INDEX verification_sends_to ON verification_sends(account_id, to_number, sent_at);

CREATE TABLE conversions (
    message_id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    converted_at REAL NOT NULL
) WITHOUT ROWID;
"""

# V17: the live pumping defence (issue 11, docs/fraud.md "Live"): each account's
# settings and controls (one row; lists and ceilings as JSON, ceilings as decimal
# text), and every decision with what the engine was asked, so that a restart
# feeds the engine again (fraud_decisions_time) and customers read them
# (fraud_decisions_account, _verification). The country index serves the
# per-country ceilings.
_V17_FRAUD = """
CREATE TABLE fraud_settings (
    account_id INTEGER PRIMARY KEY REFERENCES accounts(id),
    mode TEXT NOT NULL,
    otp_messages INTEGER NOT NULL,
    allow TEXT NOT NULL,
    deny TEXT NOT NULL,
    country_caps TEXT NOT NULL
);

CREATE TABLE fraud_decisions (
    id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    created_at REAL NOT NULL,
    to_number TEXT NOT NULL,
    action TEXT NOT NULL,
    reasons TEXT NOT NULL,
    engine INTEGER NOT NULL,
    country TEXT,
    price_micros INTEGER,
    currency TEXT,
    verification_id TEXT,
    message_id TEXT,
    request TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX fraud_decisions_account ON fraud_decisions(account_id, created_at);
CREATE INDEX fraud_decisions_country ON fraud_decisions(account_id, country, created_at);
CREATE INDEX fraud_decisions_time ON fraud_decisions(created_at);
CREATE INDEX fraud_decisions_verification ON fraud_decisions(verification_id, created_at)
    WHERE verification_id IS NOT NULL;
"""

# V18: an account's own Verify texts by locale (docs/verify.md, "Texts").
_V18_VERIFY_TEMPLATES = """
CREATE TABLE verify_templates (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    locale TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (account_id, locale)
) WITHOUT ROWID;
"""

# V19: the chat channels' 24-hour customer-service windows (docs/channels.md): when
# each user last wrote to each of an account's chat senders. One row per
# (account, channel, sender, user), kept at the latest message.
_V19_CHAT_WINDOWS = """
CREATE TABLE chat_windows (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    user TEXT NOT NULL,
    last_inbound_at REAL NOT NULL,
    PRIMARY KEY (account_id, channel, sender, user)
) WITHOUT ROWID;
"""

# V20: channel chains (docs/channels.md, "Chains"): a chain per send, a row per
# leg (state words of herald.channels.LegState; NULL: not started), fallback
# timers (claimed under a lease like the outbox, deleted by the change that
# consumes them: each fires once, and one claimed before a kill -9 is claimed
# again when its lease lapses), and provider statuses parked until their leg's
# provider id is known. An SMS leg keeps its prepared message as JSON until the
# leg starts; it is then stored in messages (and charged) like any other.
# chat_templates: the WhatsApp templates accounts submitted through /v1/templates
# (one owner per name and language: they share the business account), with
# the review status the provider last reported.
_V20_CHAT_CHAINS = """
CREATE TABLE chat_chains (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    to_addr TEXT NOT NULL,
    status INTEGER NOT NULL,
    delivered_by INTEGER,
    version INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    done_at REAL,
    reference TEXT,
    callback_url TEXT,
    metadata TEXT
);
CREATE INDEX chat_chains_account ON chat_chains(account_id, seq);

CREATE TABLE chat_legs (
    chain_seq INTEGER NOT NULL,
    leg INTEGER NOT NULL,
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    content TEXT,
    success TEXT NOT NULL,
    within REAL,
    ttl INTEGER,
    sms TEXT,
    charge TEXT,
    state TEXT,
    provider_id TEXT,
    message_id TEXT,
    sms_status INTEGER NOT NULL DEFAULT 0,
    error_code INTEGER,
    provider_code TEXT,
    price_micros INTEGER,
    price_category TEXT,
    lease_until REAL,
    started_at REAL,
    updated_at REAL,
    PRIMARY KEY (chain_seq, leg)
) WITHOUT ROWID;
CREATE UNIQUE INDEX chat_legs_provider ON chat_legs(channel, provider_id)
    WHERE provider_id IS NOT NULL;
CREATE INDEX chat_legs_to_submit ON chat_legs(lease_until)
    WHERE state IN ('pending', 'submitted') AND channel <> 'sms';
CREATE INDEX chat_legs_sms_live ON chat_legs(message_id)
    WHERE channel = 'sms' AND message_id IS NOT NULL AND sms_status < 10;

CREATE TABLE chat_timers (
    chain_seq INTEGER NOT NULL,
    leg INTEGER NOT NULL,
    due_at REAL NOT NULL,
    lease_until REAL,
    PRIMARY KEY (chain_seq, leg)
) WITHOUT ROWID;
CREATE INDEX chat_timers_due ON chat_timers(due_at);

CREATE TABLE chat_parked (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    event TEXT NOT NULL,
    at REAL NOT NULL,
    error_code INTEGER,
    provider_code TEXT,
    category TEXT,
    billable INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL
);
CREATE INDEX chat_parked_provider ON chat_parked(channel, provider_id);

CREATE TABLE chat_templates (
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    category TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    provider_id TEXT,
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (name, language)
) WITHOUT ROWID;
CREATE INDEX chat_templates_account ON chat_templates(account_id, name);
"""

#: Applied in order; the database's ``user_version`` counts those applied.
# A chain the customer cancelled (DELETE /v1/messages/{id}): no leg starts after
# that time; the leg already out goes on and decides whether the chain ends
# delivered or cancelled (docs/channels.md, "Cancelling a chain").
_V21_CHAIN_CANCEL = """
ALTER TABLE chat_chains ADD COLUMN cancelled_at REAL;
"""

# The margin sums by hour, account, connector and country, extended when read
# (herald.store._sqlite_margins): the mark is the last message summed; pending
# lists the charged messages summed before their status was final (their CDR may
# still change), with the values summed. Nothing here is written on the hot path.
# The sums of the CDRs stored so far are made here, at start-up (the expressions
# of _sqlite_margins), so that no read has to catch up on a large store.
_V22_CDR_SUMS = f"""
CREATE TABLE cdr_sums (
    hour INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    connector TEXT NOT NULL,
    country TEXT NOT NULL,
    messages INTEGER NOT NULL,
    revenue INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    unpriced INTEGER NOT NULL,
    PRIMARY KEY (hour, account_id, connector, country)
) WITHOUT ROWID;
CREATE TABLE cdr_sums_pending (
    seq INTEGER PRIMARY KEY,
    status INTEGER NOT NULL,
    connector TEXT NOT NULL,
    buy INTEGER,
    refunded INTEGER NOT NULL
);
CREATE TABLE cdr_sums_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    version INTEGER NOT NULL
);
INSERT INTO cdr_sums (hour, account_id, connector, country, messages, revenue, cost, unpriced)
SELECT CAST(c.accepted_at AS INTEGER) / 3600, c.account_id, COALESCE(c.connector, ''),
       c.country, count(*), sum(c.sell - c.refunded), COALESCE(sum(c.buy), 0),
       sum(c.connector IS NOT NULL AND c.buy IS NULL)
FROM messages m JOIN cdrs c ON c.message_id = m.id GROUP BY 1, 2, 3, 4;
INSERT INTO cdr_sums_pending (seq, status, connector, buy, refunded)
SELECT m.seq, m.status, COALESCE(c.connector, ''), c.buy, c.refunded
FROM messages m JOIN cdrs c ON c.message_id = m.id WHERE m.status < {int(Status.DELIVERED)};
INSERT INTO cdr_sums_mark (id, last_seq, version)
VALUES (1, (SELECT COALESCE(max(seq), 0) FROM messages), 0);
"""

# The console overview's day chart, a point a minute while it is read, so that it
# outlives a restart (herald.api._admin_views.Overview); a day of them is kept.
_V23_OVERVIEW_MINUTES = """
CREATE TABLE overview_minutes (
    at REAL PRIMARY KEY,
    seconds REAL NOT NULL,
    accepted REAL NOT NULL,
    sent REAL NOT NULL,
    delivered REAL NOT NULL,
    failed REAL NOT NULL
) WITHOUT ROWID;
"""

# V24: the texts of Verify SMS (they hold one-time codes) are erased once the
# message is final (Store.purge); this index holds only the texts not yet
# erased, so the purge reads those, not the history. Its predicate names no
# status: a status step never touches it.
_V24_SECRET_TEXTS = f"""
CREATE INDEX messages_secret_text ON messages(seq) WHERE {SECRET_TEXT_SQL} AND length(body) > 0;
"""

# V25: a chain leg may hold a one-time code as well: an authentication
# template's code (its content's "code"), and a Verify chain's prepared SMS
# (tag verify) until it starts. Store.purge erases them once the chain is final
# (herald.store._chat_secrets); this index holds only the
# legs not yet erased, so the purge reads those, not the history.
_V25_CHAT_SECRETS = f"""
CREATE INDEX chat_legs_secret ON chat_legs(chain_seq) WHERE {CHAT_SECRET_SQL};
"""

# V26: a message's submit and webhook attempts that did not succeed (and a
# webhook's success after them), for its timeline (store/_sqlite_attempts.py).
# Written only on the failure paths; read by message; purged by time.
_V26_ATTEMPTS = """
CREATE TABLE attempts (
    message_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    at REAL NOT NULL,
    number INTEGER NOT NULL,
    target TEXT NOT NULL,
    answer TEXT NOT NULL,
    ok INTEGER NOT NULL,
    part INTEGER,
    reported INTEGER
);
CREATE INDEX attempts_message ON attempts(message_id, kind, part);
CREATE INDEX attempts_at ON attempts(at);
"""

# Message retention ([store] message_days, herald.store._retention): a CDR
# outlives its message, so it keeps the message's final status, written by the
# purge that deletes the message (NULL while the message is there). [store]
# text_days: the texts' erasure reads each message once, in seq order, from its
# mark; the messages it read while not yet final (or ended too recently) wait
# in a list of their own until a later step finds them done.
_V27_RETENTION = """
ALTER TABLE cdrs ADD COLUMN status INTEGER;
CREATE TABLE retention_text_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    after INTEGER NOT NULL
);
INSERT INTO retention_text_mark (id, after) VALUES (1, 0);
CREATE TABLE retention_text_waiting (seq INTEGER PRIMARY KEY);
"""

# Retention of verifications ([store] message_days, herald.store._retention):
# a pass reads them in the order of their expiry, when they ended at the latest.
_V28_VERIFICATIONS_EXPIRY = """
CREATE INDEX verifications_expiry ON verifications(expires_at);
"""

# The live defence's tail (docs/fraud.md, "Live"): every process reads the
# engine decisions and conversions the others committed, in the order of a
# sequence number taken under the write lock (SQLite has one writer at a time,
# so seq order is commit order). Rows from before carry none: a rebuild reads them.
_V29_FRAUD_TAIL = """
ALTER TABLE fraud_decisions ADD COLUMN seq INTEGER;
CREATE INDEX fraud_decisions_seq ON fraud_decisions(seq);
ALTER TABLE conversions ADD COLUMN seq INTEGER;
CREATE INDEX conversions_seq ON conversions(seq);
"""

MIGRATIONS: tuple[str, ...] = (
    _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11_ADMIN, _V12_ACCOUNT_CONTROLS,
    _V13_CANCEL, _V14_ROUTING, _V15_BILLING, _V16_VERIFY, _V17_FRAUD,
    _V18_VERIFY_TEMPLATES, _V19_CHAT_WINDOWS, _V20_CHAT_CHAINS, _V21_CHAIN_CANCEL,
    _V22_CDR_SUMS, _V23_OVERVIEW_MINUTES, _V24_SECRET_TEXTS, _V25_CHAT_SECRETS,
    _V26_ATTEMPTS, _V27_RETENTION, _V28_VERIFICATIONS_EXPIRY, _V29_FRAUD_TAIL,
)
SCHEMA_VERSION = len(MIGRATIONS)
