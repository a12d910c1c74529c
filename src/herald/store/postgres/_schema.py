"""The PostgreSQL schema, as an ordered list of migrations (its own list: the
SQLite store keeps ``store/_schema.py``).

``MIGRATIONS[n]`` takes a database from ``schema_version = n`` to ``n + 1``;
:func:`herald.store.postgres.migrate` runs each in its own transaction with the
version bump, under an advisory lock so nodes that migrate at once take turns.
Never edit a shipped migration: append a new one.

Design (issue 10, measured on a 2-core machine with PostgreSQL on the same cores):

- ``messages`` is the record: written on acceptance and once per later
  transition (sent, final), never per claim. ``fillfactor`` below 100 leaves
  room on each page for those updates to stay HOT (no index entry rewritten),
  and no index involves ``status``, not even as a partial index's predicate
  (that too makes every transition a non-HOT update: measured, 0 of 9,300
  updates HOT with ``WHERE status = 2``); the guard's pending lookup too
  reads status from the heap (``messages_pending_to``). So the sweep that expires sent
  messages whose receipt never came reads a narrow table of its own (as
  dispatch reads ``dispatch_queue``): ``awaiting_receipts``, kept by the
  lifecycle's triggers (``_lifecycle.py``).
- ``dispatch_queue`` is the hot claim state: one narrow row per message that
  is queued or in flight, deleted when the message leaves dispatch. The claim
  index ``(connector, priority, seq) WHERE owner IS NULL`` holds only what can
  be claimed, so its size is the backlog's, however many finished messages
  ``messages`` holds. Claims order by ``(priority, seq)`` on that index; an
  ``ORDER BY seq`` alone lets the planner walk the primary key instead
  (measured 2-8x slower on fresh tables, ~50x with 1M finished rows).
- Per-table autovacuum: scale factor 0 and a fixed threshold, no cost delay,
  so the churning queue and the updated messages are vacuumed every ~20,000
  dead rows however large the table grows (the stock 20 % of a 5M-row table
  waits for 1M dead rows; measured 7.8k msg/s and a sagging last minute
  against 11.1k with these settings over 5 minutes). ``messages`` by share
  of the table since V22: its updates are HOT, and each vacuum passes over
  every index of a table that only grows (``_MESSAGES_AUTOVACUUM``).
- Times are seconds since the epoch (``double precision``), as in the SQLite
  store and the ``Store`` port. Status and priority numbers come from the
  enums (:class:`~herald.store.Status`, :class:`~herald.store.Priority`).

Columns mirror the SQLite store's ``messages``, ``segments`` and ``outbox``
(same names, so one row mapper by name serves both), except that the claim
state (``due_at``, ``lease_until``, the owner) lives in ``dispatch_queue``.
"""

from __future__ import annotations

from herald.store._billing import RefundPolicy
from herald.store._chat_secrets import PG_CHAT_SECRET
from herald.store._model import (
    DEFAULT_PRIORITY,
    DEFAULT_STATUS_EVENTS,
    SECRET_TEXT_SQL,
    Status,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TABLE_SETTINGS"]

#: Autovacuum for the tables written on the hot path: vacuum and analyse every
#: ~20,000 changed rows whatever the table's size, without cost-based delay.
_AUTOVACUUM = (
    "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,"
    " autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000,"
    " autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 20000,"
    " autovacuum_vacuum_cost_delay = 0"
)

#: Autovacuum for ``messages`` (V22). A vacuum that finds dead index entries
#: (a non-HOT update's, a purge's) on more than 2 % of the table's pages
#: passes over every index of a table that only grows (1.2 GB of indexes on
#: 5M messages: ~120,000 blocks read a pass; below 2 % PostgreSQL skips the
#: pass), and each analyse reads a 30,000-page sample. Every update counts as
#: a dead row until its page is pruned, so a fixed 20,000 changes made both
#: once a minute (``autovacuum_naptime``) at any rate above a few hundred
#: messages a second; a share of the table keeps their cost per message flat
#: as it grows. Vacuum: 5 % of the rows dead; new rows: half the table's size
#: (the pages of new messages are still being written by their transitions);
#: analyse: as many changes as rows (a message is two or three: accepted,
#: sent, final). Given up: dead rows (a purge's, the non-HOT updates') wait
#: for up to 5 % of the table before their space and index entries are
#: reclaimed, and pages are marked all-visible and frozen in larger, rarer
#: steps; the planner's statistics of messages are refreshed less often.
_MESSAGES_AUTOVACUUM = (
    "autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 20000,"
    " autovacuum_vacuum_insert_scale_factor = 0.5, autovacuum_vacuum_insert_threshold = 20000,"
    " autovacuum_analyze_scale_factor = 1, autovacuum_analyze_threshold = 20000,"
    " autovacuum_vacuum_cost_delay = 0"
)

#: ``WITH (...)`` of each hot table: a test checks the database has them.
TABLE_SETTINGS: dict[str, str] = {
    # Half of each page free: a message's transitions (sent, then final) find
    # room on its page and stay HOT. Measured with bench/cluster.py's loop:
    # 37 % of the updates HOT at fillfactor 80, 64 % at 65, 97 % at 50.
    # V22: 45, so that every row of a page can be updated in one statement
    # (a batch of "sent") and all stay HOT; vacuumed by share of the table.
    "messages": f"fillfactor = 45, {_MESSAGES_AUTOVACUUM}",
    # Every row is updated (claimed) then deleted: half of each page free.
    "dispatch_queue": f"fillfactor = 50, {_AUTOVACUUM}",
    "segments": f"fillfactor = 80, {_AUTOVACUUM}",
    "outbox": f"fillfactor = 90, {_AUTOVACUUM}",
    # A charged message's CDR: written at acceptance, priced at "sent".
    "cdrs": f"fillfactor = 80, {_AUTOVACUUM}",
    # A row per sent message until its final status: inserted, then deleted.
    "awaiting_receipts": f"fillfactor = 100, {_AUTOVACUUM}",
    # A bucket is updated at every take (a slice of an account's rate): room for HOT.
    "token_buckets": f"fillfactor = 50, {_AUTOVACUUM}",
    # A row per routed message, written by dispatch (rewritten by a re-route).
    "message_routes": f"fillfactor = 90, {_AUTOVACUUM}",
}

_V1_CORE = f"""
CREATE TABLE messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    account_id bigint NOT NULL,
    source smallint NOT NULL,
    to_addr text NOT NULL,
    from_addr text NOT NULL,
    body bytea NOT NULL,
    encoding text NOT NULL,
    data_coding smallint NOT NULL,
    udhi boolean NOT NULL,
    segments smallint NOT NULL,
    reference text,
    metadata text,
    callback_url text,
    registered_delivery smallint NOT NULL,
    test boolean NOT NULL,
    send_at double precision,
    expires_at double precision NOT NULL,
    status smallint NOT NULL DEFAULT {int(Status.ACCEPTED)},
    error_code integer,
    error_permanent boolean NOT NULL DEFAULT false,
    accepted_at double precision NOT NULL,
    queued_at double precision,
    sent_at double precision,
    done_at double precision,
    attempt integer NOT NULL DEFAULT 0,
    webhook_events integer,
    tries integer NOT NULL DEFAULT 0,
    priority smallint NOT NULL DEFAULT {int(DEFAULT_PRIORITY)},
    tag text
) WITH (fillfactor = 50, {_AUTOVACUUM});
CREATE INDEX messages_account ON messages (account_id, seq);
CREATE INDEX messages_account_to ON messages (account_id, to_addr, seq);
CREATE INDEX messages_account_reference ON messages (account_id, reference, seq)
    WHERE reference IS NOT NULL;

-- Queued and in-flight messages only. owner IS NULL: claimable from due_at
-- until expires_at (the message's, copied: a claim reads no messages row to
-- choose); else held by that node until lease_until (then requeued).
-- attempt fences a stale holder: completion names the attempt it claimed.
-- queued_at: the first claim; it reaches messages.queued_at at completion.
CREATE TABLE dispatch_queue (
    seq bigint PRIMARY KEY REFERENCES messages (seq) ON DELETE CASCADE,
    connector text NOT NULL,
    priority smallint NOT NULL,
    due_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    owner text,
    lease_until double precision,
    attempt integer NOT NULL DEFAULT 0,
    queued_at double precision
) WITH ({TABLE_SETTINGS["dispatch_queue"]});
CREATE INDEX dispatch_queue_claim ON dispatch_queue (connector, priority, seq)
    WHERE owner IS NULL;
CREATE INDEX dispatch_queue_leases ON dispatch_queue (lease_until)
    WHERE owner IS NOT NULL;
CREATE INDEX dispatch_queue_expiry ON dispatch_queue (expires_at)
    WHERE owner IS NULL;

CREATE TABLE segments (
    message_seq bigint NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
    idx smallint NOT NULL,
    connector text NOT NULL,
    upstream_id text NOT NULL,
    upstream_key text NOT NULL,
    status smallint NOT NULL,
    error_code integer,
    updated_at double precision NOT NULL,
    check_at double precision,
    checks integer NOT NULL DEFAULT 0,
    PRIMARY KEY (message_seq, idx)
) WITH ({TABLE_SETTINGS["segments"]});
CREATE INDEX segments_upstream ON segments (connector, upstream_key);

-- next_attempt_at NULL: given up on (kept for inspection until purged).
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel smallint NOT NULL,
    kind smallint NOT NULL,
    account_id bigint NOT NULL,
    subject_id text NOT NULL,
    status smallint,
    url text,
    created_at double precision NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at double precision,
    last_error text
) WITH ({TABLE_SETTINGS["outbox"]});
CREATE INDEX outbox_due ON outbox (channel, next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
"""

# What the message lifecycle reads and writes besides messages, segments and
# the outbox (store/postgres/_lifecycle.py): accounts and their webhook
# settings, their credentials (API key and SMPP login hashes), price
# lists, balances and CDRs (the buy price at "sent", refunds at a final
# status), and receipts parked until their segment is recorded. Columns as in
# the SQLite store; money in integer micro-units, prices in PRICE_SCALE parts.
_V2_LIFECYCLE = f"""
CREATE TABLE accounts (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    rate_limit double precision NOT NULL,
    bind_limit integer NOT NULL,
    callback_url text,
    webhook_secret_version integer NOT NULL DEFAULT 1,
    webhook_events integer NOT NULL DEFAULT {int(DEFAULT_STATUS_EVENTS)},
    inbound_webhooks boolean NOT NULL DEFAULT true,
    inbound_url text,
    webhook_batch_max integer NOT NULL DEFAULT 1,
    webhook_batch_wait double precision NOT NULL DEFAULT 0,
    disabled boolean NOT NULL DEFAULT false,
    priority smallint
);

CREATE TABLE api_keys (
    key_id text PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    key_hash text NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE smpp_credentials (
    system_id text PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    password_hash text NOT NULL,
    created_at double precision NOT NULL
);
CREATE INDEX smpp_credentials_account ON smpp_credentials (account_id);

-- A receipt that came before its segment was recorded; applied (the first
-- one, by id) when it is.
CREATE TABLE parked_receipts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connector text NOT NULL,
    upstream_key text NOT NULL,
    status smallint NOT NULL,
    error_code integer,
    received_at double precision NOT NULL
);
CREATE INDEX parked_receipts_upstream ON parked_receipts (connector, upstream_key, id);

CREATE TABLE prices (
    side smallint NOT NULL,
    owner text NOT NULL,
    kind smallint NOT NULL,
    key text NOT NULL,
    price bigint NOT NULL,
    PRIMARY KEY (side, owner, kind, key)
);
CREATE TABLE price_lists (
    side smallint NOT NULL,
    owner text NOT NULL,
    imported_at double precision NOT NULL,
    entries integer NOT NULL,
    PRIMARY KEY (side, owner)
);
CREATE TABLE price_lists_generation (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    generation bigint NOT NULL
);
INSERT INTO price_lists_generation (generation) VALUES (0);

CREATE TABLE balances (
    account_id bigint PRIMARY KEY REFERENCES accounts (id),
    balance bigint NOT NULL DEFAULT 0,
    credit_limit bigint NOT NULL DEFAULT 0,
    refund_policy smallint NOT NULL DEFAULT {int(RefundPolicy.NONE)}
);

CREATE TABLE cdrs (
    message_id text PRIMARY KEY,
    account_id bigint NOT NULL,
    accepted_at double precision NOT NULL,
    country text NOT NULL,
    network text,
    segments smallint NOT NULL,
    price_key text NOT NULL,
    sell bigint NOT NULL,
    refunded bigint NOT NULL DEFAULT 0,
    connector text,
    buy bigint
) WITH ({TABLE_SETTINGS["cdrs"]});
CREATE INDEX cdrs_time ON cdrs (accepted_at);

-- The sent messages waiting for their receipt, by deadline: what the sweep
-- that expires them reads (messages has no index on status: see above). The
-- lifecycle's triggers keep it: a row from "sent" to the final status.
CREATE TABLE awaiting_receipts (
    seq bigint PRIMARY KEY REFERENCES messages (seq) ON DELETE CASCADE,
    expires_at double precision NOT NULL
) WITH ({TABLE_SETTINGS["awaiting_receipts"]});
CREATE INDEX awaiting_receipts_expiry ON awaiting_receipts (expires_at);
"""

# V3: bind and TPS leases across nodes (herald.cluster, docs/leases.md). One row
# per configured bind of each connector (owner NULL: free); epoch grows by one
# at each acquisition and never goes back, so a renewal or a write carrying an
# older epoch is refused (the fence). cluster_nodes: the nodes taking part,
# renewed with their slots; one whose expires_at has passed is not live. Times
# are seconds since the epoch on the server's clock.
_V3_LEASES = """
CREATE TABLE connector_slots (
    connector   text NOT NULL,
    slot        integer NOT NULL CHECK (slot >= 0),
    owner       text,
    epoch       bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    expires_at  double precision NOT NULL DEFAULT 0,
    acquired_at double precision,
    PRIMARY KEY (connector, slot)
);
CREATE TABLE cluster_nodes (
    node       text PRIMARY KEY,
    expires_at double precision NOT NULL,
    joined_at  double precision NOT NULL
);
"""

# V4: the Verify API and the live pumping defence (docs/verify.md, docs/fraud.md),
# as SQLite's V16-V18: a verification keeps its code only as a keyed hash
# (salt, code_hash); each SMS it sent is a row of verification_sends (the
# per-number limit counts them, under a per-number advisory lock: see
# postgres/_verify.py); conversions are customers' feedback that a message's
# code was entered. fraud_settings: an account's defence (lists as arrays,
# ceilings as JSON of decimal text); fraud_decisions: every decision with what
# the engine was asked (JSON text, as SQLite keeps it). verifications has no
# foreign key to accounts: SQLite declares one but does not enforce it, and the
# port stores what it is given.
_V4_FRAUD_VERIFY = """
CREATE TABLE verifications (
    id text PRIMARY KEY,
    account_id bigint NOT NULL,
    to_number text NOT NULL,
    use_case text NOT NULL,
    app text NOT NULL,
    locale text NOT NULL,
    code_length smallint NOT NULL,
    status smallint NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    salt bytea NOT NULL,
    code_hash bytea NOT NULL,
    sends integer NOT NULL,
    checks integer NOT NULL,
    client text NOT NULL
);

CREATE TABLE verification_sends (
    verification_id text NOT NULL,
    attempt integer NOT NULL,
    account_id bigint NOT NULL,
    to_number text NOT NULL,
    message_id text NOT NULL,
    sent_at double precision NOT NULL,
    PRIMARY KEY (verification_id, attempt)
);
CREATE INDEX verification_sends_to ON verification_sends (account_id, to_number, sent_at);

CREATE TABLE conversions (
    message_id text PRIMARY KEY,
    account_id bigint NOT NULL,
    converted_at double precision NOT NULL
);

CREATE TABLE fraud_settings (
    account_id bigint PRIMARY KEY REFERENCES accounts (id),
    mode text NOT NULL,
    otp_messages boolean NOT NULL,
    allow text[] NOT NULL,
    deny text[] NOT NULL,
    country_caps text NOT NULL
);

CREATE TABLE fraud_decisions (
    id text PRIMARY KEY,
    account_id bigint NOT NULL,
    created_at double precision NOT NULL,
    to_number text NOT NULL,
    action text NOT NULL,
    reasons text NOT NULL,
    engine boolean NOT NULL,
    country text,
    price_micros bigint,
    currency text,
    verification_id text,
    message_id text,
    request text NOT NULL
);
CREATE INDEX fraud_decisions_account ON fraud_decisions (account_id, created_at);
CREATE INDEX fraud_decisions_country ON fraud_decisions (account_id, country, created_at);
CREATE INDEX fraud_decisions_time ON fraud_decisions (created_at);
CREATE INDEX fraud_decisions_verification ON fraud_decisions (verification_id, created_at)
    WHERE verification_id IS NOT NULL;

CREATE TABLE verify_templates (
    account_id bigint NOT NULL REFERENCES accounts (id),
    locale text NOT NULL,
    text text NOT NULL,
    PRIMARY KEY (account_id, locale)
);
"""

# V5: the chat channels (docs/channels.md; the SQLite store's V19-V21, same
# columns and meaning; store/postgres/_chat.py). chat_windows: when each user
# last wrote to each of an account's chat senders. chat_chains: a chain per
# send; chat_legs: a row per leg (state words of herald.channels.LegState, NULL:
# not started; an SMS leg keeps its prepared message as JSON until it starts,
# then it is in messages and message_id names it); chat_timers: fallback timers,
# claimed under a lease and deleted by the change that consumes them;
# chat_parked: provider statuses waiting for their leg's provider id;
# chat_templates: WhatsApp templates (one owner per name and language).
# Leg and timer claims pick rows with FOR UPDATE SKIP LOCKED, so two nodes
# never hold one at once; the partial indexes hold only what a poll reads.
_V5_CHAT = f"""
CREATE TABLE chat_windows (
    account_id bigint NOT NULL REFERENCES accounts (id),
    channel text NOT NULL,
    sender text NOT NULL,
    "user" text NOT NULL,
    last_inbound_at double precision NOT NULL,
    PRIMARY KEY (account_id, channel, sender, "user")
);

CREATE TABLE chat_chains (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    account_id bigint NOT NULL REFERENCES accounts (id),
    to_addr text NOT NULL,
    status smallint NOT NULL,
    delivered_by integer,
    version bigint NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    done_at double precision,
    reference text,
    callback_url text,
    metadata text,
    cancelled_at double precision
);
CREATE INDEX chat_chains_account ON chat_chains (account_id, seq);

CREATE TABLE chat_legs (
    chain_seq bigint NOT NULL REFERENCES chat_chains (seq),
    leg integer NOT NULL,
    channel text NOT NULL,
    sender text NOT NULL,
    content text,
    success text NOT NULL,
    within double precision,
    ttl integer,
    sms text,
    charge text,
    state text,
    provider_id text,
    message_id text,
    sms_status smallint NOT NULL DEFAULT 0,
    error_code integer,
    provider_code text,
    price_micros bigint,
    price_category text,
    lease_until double precision,
    started_at double precision,
    updated_at double precision,
    PRIMARY KEY (chain_seq, leg)
);
CREATE UNIQUE INDEX chat_legs_provider ON chat_legs (channel, provider_id)
    WHERE provider_id IS NOT NULL;
CREATE INDEX chat_legs_to_submit ON chat_legs (lease_until NULLS FIRST, chain_seq, leg)
    WHERE state IN ('pending', 'submitted') AND channel <> 'sms';
CREATE INDEX chat_legs_sms_live ON chat_legs (message_id)
    WHERE channel = 'sms' AND message_id IS NOT NULL AND sms_status < {int(Status.DELIVERED)};

CREATE TABLE chat_timers (
    chain_seq bigint NOT NULL REFERENCES chat_chains (seq),
    leg integer NOT NULL,
    due_at double precision NOT NULL,
    lease_until double precision,
    PRIMARY KEY (chain_seq, leg)
);
CREATE INDEX chat_timers_due ON chat_timers (due_at, chain_seq, leg);

CREATE TABLE chat_parked (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel text NOT NULL,
    provider_id text NOT NULL,
    event text NOT NULL,
    at double precision NOT NULL,
    error_code integer,
    provider_code text,
    category text,
    billable boolean NOT NULL DEFAULT false,
    received_at double precision NOT NULL
);
CREATE INDEX chat_parked_provider ON chat_parked (channel, provider_id);

CREATE TABLE chat_templates (
    name text NOT NULL,
    language text NOT NULL,
    account_id bigint NOT NULL REFERENCES accounts (id),
    category text NOT NULL,
    body text NOT NULL,
    status text NOT NULL,
    provider_id text,
    reason text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (name, language)
);
CREATE INDEX chat_templates_account ON chat_templates (account_id, name);
"""

# V6: what the operator configures and what routing reads back (the SQLite
# store's V9, V12 and V14; store/postgres/_routing.py, _numbers.py,
# _controls.py). Number tables: one row per kind holding its built index,
# opaque to the store. Routing: the routes file in force (one row; SQLite's
# unused ``prices`` column is not carried over: buy prices are price_lists),
# the operator's connector states, and the rule that routed each message.
# Each of the two configurations has a one-row generation counter that every
# change bumps in its own transaction: nodes poll it to notice another node's
# change. Controls: one row per restricted account (its lists as text arrays),
# what each account's accepts counted per UTC day, and each opted-out number's
# last change; opt_outs_seq hands out the seqs under its row lock, so seqs
# become visible in commit order and a reader following them misses none.
# Names listed in order compare as the SQLite store's do (COLLATE "C": by
# code point, whatever the database's locale). segments_final serves
# delivery_counts and recent_finals: each connector's newest final segments
# as an index range (it makes a receipt's segment update non-HOT; see
# docs/scale-out.md for its measured cost).
_V6_CONFIG = f"""
CREATE TABLE number_tables (
    kind text PRIMARY KEY,
    generation bigint NOT NULL,
    imported_at double precision NOT NULL,
    entries bigint NOT NULL,
    data bytea NOT NULL
);
-- Out of line, uncompressed: pglz on megabytes of sorted arrays made a put
-- 3-6x slower (bench/pg_config.py, docs/scale-out.md).
ALTER TABLE number_tables ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE number_tables_generation (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    generation bigint NOT NULL
);
INSERT INTO number_tables_generation (generation) VALUES (0);

CREATE TABLE routing_rules (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    generation bigint NOT NULL,
    imported_at double precision NOT NULL,
    source text NOT NULL,
    rules text NOT NULL
);
CREATE TABLE connector_states (
    connector text COLLATE "C" PRIMARY KEY,
    disabled boolean NOT NULL,
    reason text,
    changed_at double precision NOT NULL
);
CREATE TABLE routing_generation (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    generation bigint NOT NULL
);
INSERT INTO routing_generation (generation) VALUES (0);
CREATE TABLE message_routes (
    message_id text PRIMARY KEY,
    rule text NOT NULL,
    decided_at double precision NOT NULL
) WITH ({TABLE_SETTINGS["message_routes"]});
-- "connector IS NOT NULL" (always true) keeps the planner from reading this
-- index for the lifecycle's roll-up (a message's parts, "status = delivered"):
-- while it looked small (statistics from before many receipts) it did, every
-- receipt then scanning all final segments (3x fewer receipts/s measured).
-- The health reads name a connector, which implies it.
CREATE INDEX segments_final ON segments (connector, updated_at)
    WHERE status >= {int(Status.DELIVERED)} AND connector IS NOT NULL;

CREATE TABLE account_controls (
    account_id bigint PRIMARY KEY REFERENCES accounts (id),
    daily_quota bigint,
    quota_segments boolean NOT NULL DEFAULT false,
    senders text[] NOT NULL DEFAULT '{{}}',
    sender_rules text[] NOT NULL DEFAULT '{{}}',
    countries text[] NOT NULL DEFAULT '{{}}',
    api_networks text[] NOT NULL DEFAULT '{{}}',
    smpp_networks text[] NOT NULL DEFAULT '{{}}'
);
CREATE TABLE daily_usage (
    account_id bigint NOT NULL,
    day integer NOT NULL,
    used bigint NOT NULL,
    PRIMARY KEY (account_id, day)
);
CREATE TABLE opt_outs (
    account_id bigint NOT NULL REFERENCES accounts (id),
    number text COLLATE "C" NOT NULL,
    opted_out boolean NOT NULL,
    seq bigint NOT NULL UNIQUE,
    updated_at double precision NOT NULL,
    source text NOT NULL,
    PRIMARY KEY (account_id, number)
);
CREATE TABLE opt_outs_seq (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    seq bigint NOT NULL
);
INSERT INTO opt_outs_seq (seq) VALUES (0);
"""

# V7: inbound messages, admin keys and the admin audit log (the SQLite store's
# ``inbound`` and V11_ADMIN tables, same columns). An inbound message's outbox
# events are written by add_inbound's statement (_listing.py). admin_audit's
# seq is given under a table lock in record_audit (max + 1), not by a
# sequence: seqs are then committed in their order, so a process that has read
# up to one never misses a smaller one committed later (the admin ChangeFeed).
_V7_INBOUND_ADMIN = """
CREATE TABLE inbound (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    account_id bigint NOT NULL,
    to_addr text NOT NULL,
    from_addr text NOT NULL,
    body bytea NOT NULL,
    encoding text NOT NULL,
    data_coding smallint NOT NULL,
    connector text NOT NULL,
    received_at double precision NOT NULL
);

CREATE TABLE admin_keys (
    key_id text PRIMARY KEY,
    name text NOT NULL,
    scope text NOT NULL,
    key_hash text NOT NULL,
    created_at double precision NOT NULL,
    revoked_at double precision
);
CREATE UNIQUE INDEX admin_keys_active_name ON admin_keys (name) WHERE revoked_at IS NULL;

CREATE TABLE admin_audit (
    seq bigint PRIMARY KEY,
    at double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    changes text NOT NULL
);
CREATE INDEX admin_audit_target ON admin_audit (target, seq);
CREATE INDEX admin_audit_at ON admin_audit (at);
"""

# V8: the console overview's day chart (a point a minute, a day of them; the
# SQLite store's V23), so a restart keeps it.
_V8_OVERVIEW_MINUTES = """
CREATE TABLE overview_minutes (
    at double precision PRIMARY KEY,
    seconds double precision NOT NULL,
    accepted double precision NOT NULL,
    sent double precision NOT NULL,
    delivered double precision NOT NULL,
    failed double precision NOT NULL
);
"""

# V9: the signaling guard's platform-egress lookup
# (store/pending.py, PostgresPendingMessages): is a message to this number not
# final, not a test, and within its validity? Keyed on columns no transition
# writes (to_addr, expires_at; test in the predicate): status, which every
# transition writes, is checked on the heap rows the index finds, so the
# transitions of messages stay HOT (see above; a test checks both). The index
# finds a number's messages still within their validity, finished or not.
_V9_PENDING_TO = """
CREATE INDEX messages_pending_to ON messages (to_addr, expires_at) WHERE NOT test;
"""

# V10: what the port's claim, idempotency keys, quotas, receipt checks and
# commit watchers need (store/postgres/_messages.py). dispatch_queue gains the
# message's account, so that the port's claim (rows queued with connector ''
# at acceptance, routed by dispatch after the claim) lets accounts take turns
# from an index alone: dispatch_queue_port orders each (class, account)'s rows
# by due time as the SQLite store does; like the claim index it holds only
# the queue, not finished messages. idempotency: as SQLite's (quotas count in
# V6's daily_usage). segments_check: the segments still waiting for a receipt
# that carry a check time (due_receipt_checks reads it, the longest overdue
# first).
# The two statement-level triggers tell the committing session (RAISE NOTICE:
# only to it) which outbox channels a statement wrote and how many messages it
# ended per final status, and tell every other node's listener of the outbox
# channels (pg_notify, delivered at commit, never for a rolled-back write).
_V10_MESSAGES = f"""
ALTER TABLE dispatch_queue ADD COLUMN account_id bigint;
UPDATE dispatch_queue q SET account_id = m.account_id FROM messages m WHERE m.seq = q.seq;
CREATE INDEX dispatch_queue_port ON dispatch_queue (priority, account_id, due_at, seq)
    WHERE connector = '';

CREATE TABLE idempotency (
    account_id bigint NOT NULL,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    status_code integer NOT NULL,
    response bytea NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at);

CREATE INDEX segments_check ON segments (check_at)
    WHERE status < {int(Status.DELIVERED)} AND check_at IS NOT NULL;

CREATE FUNCTION herald_watch_outbox() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    channels text;
BEGIN
    SELECT string_agg(DISTINCT channel::text, ',') INTO channels FROM new_rows;
    IF channels IS NOT NULL THEN
        RAISE NOTICE 'herald_outbox %', channels;
        PERFORM pg_notify('herald_outbox', channels);
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER outbox_watch AFTER INSERT ON outbox
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION herald_watch_outbox();

CREATE FUNCTION herald_watch_finals() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    counts text;
BEGIN
    SELECT string_agg(status || ':' || n, ',') INTO counts FROM (
        SELECT n.status, count(*) AS n FROM new_rows n JOIN old_rows o ON o.seq = n.seq
        WHERE n.status >= {int(Status.DELIVERED)} AND o.status < {int(Status.DELIVERED)}
          AND NOT n.test
        GROUP BY n.status) ended;
    IF counts IS NOT NULL THEN
        RAISE NOTICE 'herald_finals %', counts;
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER messages_watch_finals AFTER UPDATE ON messages
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION herald_watch_finals();
"""

# V11: the texts of Verify SMS (one-time codes) are erased once the message is
# final (purge); the index holds only the texts not yet erased. No status in
# it: status steps stay HOT (only the erasure itself is not).
_V11_SECRET_TEXTS = f"""
CREATE INDEX messages_secret_text ON messages (seq)
    WHERE {SECRET_TEXT_SQL} AND octet_length(body) > 0;
"""

# V12: history in time partitions, so that retention is a DROP (postgres/_history.py,
# docs/scale-out.md). fraud_decisions (a row per screened message, its request
# as JSON; written once, read by time) becomes RANGE-partitioned by
# created_at: the rows so far stay where they are, attached as the partition
# fraud_decisions_before (MINVALUE up to the start of the UTC day after the
# newest row or now, whichever is later: every existing row fits); a DEFAULT
# partition takes what no day partition covers yet (normally nothing: the
# leader creates days ahead and moves any such rows into the day it creates).
# The primary key must hold the partition key: (id, created_at). The old
# secondary indexes have the new ones' definitions, so ATTACH adopts them.
_V12_HISTORY_PARTITIONS = """
ALTER TABLE fraud_decisions DROP CONSTRAINT fraud_decisions_pkey;
ALTER TABLE fraud_decisions RENAME TO fraud_decisions_before;
ALTER INDEX fraud_decisions_account RENAME TO fraud_decisions_before_account;
ALTER INDEX fraud_decisions_country RENAME TO fraud_decisions_before_country;
ALTER INDEX fraud_decisions_time RENAME TO fraud_decisions_before_time;
ALTER INDEX fraud_decisions_verification RENAME TO fraud_decisions_before_verification;
CREATE TABLE fraud_decisions (
    id text NOT NULL,
    account_id bigint NOT NULL,
    created_at double precision NOT NULL,
    to_number text NOT NULL,
    action text NOT NULL,
    reasons text NOT NULL,
    engine boolean NOT NULL,
    country text,
    price_micros bigint,
    currency text,
    verification_id text,
    message_id text,
    request text NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX fraud_decisions_account ON fraud_decisions (account_id, created_at);
CREATE INDEX fraud_decisions_country ON fraud_decisions (account_id, country, created_at);
CREATE INDEX fraud_decisions_time ON fraud_decisions (created_at);
CREATE INDEX fraud_decisions_verification ON fraud_decisions (verification_id, created_at)
    WHERE verification_id IS NOT NULL;
CREATE TABLE fraud_decisions_default PARTITION OF fraud_decisions DEFAULT;
DO $do$
DECLARE
    upto double precision := 86400 * (floor(greatest(
        extract(epoch FROM now()),
        (SELECT max(created_at) FROM fraud_decisions_before)) / 86400) + 1);
BEGIN
    EXECUTE format('ALTER TABLE fraud_decisions ATTACH PARTITION fraud_decisions_before'
                   ' FOR VALUES FROM (MINVALUE) TO (%s)', upto);
END
$do$;
"""

# V13: the signaling guard's own state, for proxies sharing it through this
# database (herald/guard/pg_state.py): SMS home routing's correlations and
# routed dialogues, the engines' snapshots and what running proxies share,
# and the SRI-SM answers they share at once (guard_sms_lookups).
# Read by the guard alone; every row sealed (a keyed hash for its key, its
# fields encrypted and authenticated with a key from the guard policy's salt):
# only deadlines and write times are in clear, for the purge.
_V13_GUARD_STATE = """
CREATE TABLE guard_correlations (
    seq bigserial PRIMARY KEY,
    id bytea NOT NULL UNIQUE,
    deadline double precision NOT NULL,
    sealed bytea NOT NULL
);
CREATE INDEX guard_correlations_deadline ON guard_correlations (deadline);
CREATE TABLE guard_routed_dialogues (
    seq bigserial PRIMARY KEY,
    id bytea NOT NULL UNIQUE,
    deadline double precision NOT NULL,
    sealed bytea NOT NULL
);
CREATE INDEX guard_routed_dialogues_deadline ON guard_routed_dialogues (deadline);
CREATE TABLE guard_engine_snapshots (
    proxy text PRIMARY KEY,
    written double precision NOT NULL,
    sealed bytea NOT NULL
);
CREATE TABLE guard_engine_changes (
    seq bigserial PRIMARY KEY,
    proxy text NOT NULL,
    written double precision NOT NULL,
    sealed bytea NOT NULL
);
CREATE INDEX guard_engine_changes_written ON guard_engine_changes (written);
CREATE TABLE guard_sms_lookups (
    seq bigserial PRIMARY KEY,
    id bytea NOT NULL UNIQUE,
    deadline double precision NOT NULL,
    delivered boolean NOT NULL DEFAULT false,
    sealed bytea NOT NULL
);
CREATE INDEX guard_sms_lookups_deadline ON guard_sms_lookups (deadline);
"""

# V14: token buckets every node shares (store/postgres/_limits.py): accounts' message
# rates, failed logins. Updated in place by one upsert per take, no indexed
# column changing: HOT on pages kept partly free.
_V14_TOKEN_BUCKETS = f"""
CREATE TABLE token_buckets (
    scope text NOT NULL,
    key text NOT NULL,
    rate double precision NOT NULL,
    capacity double precision NOT NULL,
    stamp double precision NOT NULL,
    tokens double precision NOT NULL,
    granted double precision NOT NULL,
    failed_at double precision,
    PRIMARY KEY (scope, key)
) WITH ({TABLE_SETTINGS["token_buckets"]});
"""

# V15: the margin sums (store/postgres/_margins.py; the SQLite store's V22): the CDRs'
# sums by hour, account, connector and country; the CDRs summed while their
# message was not final (with what was summed); the seqs below the mark not yet
# seen (in flight or rolled back when the mark passed them) with the transactions
# that could hold them; the mark. Nothing here is written on the hot path: each
# margin read brings them up to date. They start empty (mark 0): summing what a
# database holds now here would miss the seqs of transactions in flight, so the
# first read sums it all once (herald serve reads every 60 s).
_V15_CDR_SUMS = """
CREATE TABLE cdr_sums (
    hour bigint NOT NULL,
    account_id bigint NOT NULL,
    connector text NOT NULL,
    country text NOT NULL,
    messages bigint NOT NULL,
    revenue bigint NOT NULL,
    cost bigint NOT NULL,
    unpriced bigint NOT NULL,
    PRIMARY KEY (hour, account_id, connector, country)
);
CREATE TABLE cdr_sums_pending (
    seq bigint PRIMARY KEY,
    status smallint NOT NULL,
    connector text NOT NULL,
    buy bigint,
    refunded bigint NOT NULL
);
CREATE TABLE cdr_sums_gaps (
    lo bigint PRIMARY KEY,
    hi bigint NOT NULL,
    waits text NOT NULL
);
CREATE TABLE cdr_sums_mark (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    last_seq bigint NOT NULL,
    version bigint NOT NULL
);
INSERT INTO cdr_sums_mark (last_seq, version) VALUES (0, 0);
"""

# V16: the one-time codes a chain's legs hold (an authentication template's code,
# a Verify chain's prepared SMS) are erased once the chain is final (purge;
# herald.store._chat_secrets); the index holds only the legs not yet erased.
_V16_CHAT_SECRETS = f"""
CREATE INDEX chat_legs_secret ON chat_legs (chain_seq) WHERE {PG_CHAT_SECRET};
"""

# V17: a message's submit and webhook attempts that did not succeed (and a
# webhook's success after them), for its timeline (postgres/_attempts.py).
# Written only on the failure paths; read by message; purged by time.
_V17_ATTEMPTS = """
CREATE TABLE attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL,
    kind smallint NOT NULL,
    at double precision NOT NULL,
    number integer NOT NULL,
    target text NOT NULL,
    answer text NOT NULL,
    ok boolean NOT NULL,
    part integer,
    reported smallint
);
CREATE INDEX attempts_message ON attempts (message_id, kind, part);
CREATE INDEX attempts_at ON attempts (at);
"""

# Message retention ([store] message_days, herald.store._retention): a CDR
# outlives its message, so it keeps the message's final status, written by the
# purge that deletes the message (NULL while the message is there; adding a
# nullable column without a default rewrites nothing). [store] text_days: the
# texts' erasure reads each message once, in seq order, from its mark (locked
# by each step: one eraser at a time); the messages it read while not yet
# final (or ended too recently) wait in a list until a later step finds them done.
_V18_RETENTION = """
ALTER TABLE cdrs ADD COLUMN status smallint;
CREATE TABLE retention_text_mark (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    after bigint NOT NULL
);
INSERT INTO retention_text_mark (after) VALUES (0);
CREATE TABLE retention_text_waiting (seq bigint PRIMARY KEY);
"""

# Retention of verifications ([store] message_days, herald.store._retention):
# a pass reads them in the order of their expiry, when they ended at the latest.
_V19_VERIFICATIONS_EXPIRY = """
CREATE INDEX verifications_expiry ON verifications (expires_at, id);
"""

# The live defence's tail (docs/fraud.md, "Live"): each node reads the engine
# decisions and conversions the others committed. Sequence values commit out of
# order; a transaction id read below the oldest running one's
# (pg_snapshot_xmin) is settled, so a node reads [its cursor, that horizon) and
# misses nothing nor reads anything twice. Added without a default first, so
# the existing rows are not rewritten (they carry none: a rebuild reads them).
_V20_FRAUD_TAIL = """
ALTER TABLE fraud_decisions ADD COLUMN tx xid8;
ALTER TABLE fraud_decisions ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX fraud_decisions_tx ON fraud_decisions (tx) WHERE engine;
ALTER TABLE conversions ADD COLUMN tx xid8;
ALTER TABLE conversions ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX conversions_tx ON conversions (tx);
"""

# V21: no foreign keys from the message's working rows (its queue row, its
# parts, its wait for a receipt) to messages. Each was a row trigger: a
# "SELECT ... FOR KEY SHARE" of the message per row inserted (three per
# message: a query, a tuple lock and its WAL record each), though every
# statement that inserts them takes the message from messages in the same
# statement (the accept, the record's lookup by id, the "sent" step's trigger).
# Retention, the one delete of messages (final ones only), takes the three
# with it in its own statement (_retention._DELETE_MESSAGES), as the
# cascade did.
_V21_NO_MESSAGE_FKS = """
ALTER TABLE dispatch_queue DROP CONSTRAINT dispatch_queue_seq_fkey;
ALTER TABLE segments DROP CONSTRAINT segments_message_seq_fkey;
ALTER TABLE awaiting_receipts DROP CONSTRAINT awaiting_receipts_seq_fkey;
"""

# V22: messages at fillfactor 45 (new pages; at 50 a statement updating every
# row of a page moved the last one off it, a non-HOT update: one dead index
# entry a page, so that every vacuum passed over all the indexes), vacuumed
# and analysed by share of the table (_MESSAGES_AUTOVACUUM, above) rather
# than every 20,000 changes. Neither rewrites the table.
_V22_MESSAGES_VACUUM = f"""
ALTER TABLE messages SET (fillfactor = 45, {_MESSAGES_AUTOVACUUM});
"""

#: In order; a database at version ``n`` has had ``MIGRATIONS[:n]`` applied.
MIGRATIONS: tuple[str, ...] = (
    _V1_CORE, _V2_LIFECYCLE, _V3_LEASES, _V4_FRAUD_VERIFY, _V5_CHAT, _V6_CONFIG,
    _V7_INBOUND_ADMIN, _V8_OVERVIEW_MINUTES, _V9_PENDING_TO,
    _V10_MESSAGES, _V11_SECRET_TEXTS, _V12_HISTORY_PARTITIONS, _V13_GUARD_STATE,
    _V14_TOKEN_BUCKETS, _V15_CDR_SUMS, _V16_CHAT_SECRETS, _V17_ATTEMPTS,
    _V18_RETENTION, _V19_VERIFICATIONS_EXPIRY, _V20_FRAUD_TAIL,
    _V21_NO_MESSAGE_FKS, _V22_MESSAGES_VACUUM,
)
SCHEMA_VERSION = len(MIGRATIONS)
