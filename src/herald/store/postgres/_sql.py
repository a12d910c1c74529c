"""The dispatch loop's statements: accept, claim, complete, release, requeue.

Each is one statement (so one round trip and, under autocommit, one commit)
whatever the batch size: rows travel as parallel arrays and are spread with
``unnest``. Placeholders are asyncpg's ``$n``; constants come from the enums.
The statements read and return columns by name (``RETURNING``/``SELECT``
lists name them), never ``*`` by position.
"""

from __future__ import annotations

from herald.store._model import Status
from herald.store.lifecycle import NON_FINAL

#: The statuses a message can still leave (store/lifecycle.py): a final one is
#: never replaced, even by a "greater" final one.
_NON_FINAL = ", ".join(str(int(s)) for s in sorted(NON_FINAL))

__all__ = [
    "ACCEPT",
    "ACCEPT_COLUMNS",
    "CLAIM",
    "COMPLETE",
    "EXPIRE_QUEUED",
    "MESSAGE_COLUMNS",
    "RELEASE",
    "REQUEUE_EXPIRED",
    "registration_ended",
]


def registration_ended(node: str) -> str:
    """SQL true when node ``node`` (a placeholder such as ``$3``) is registered
    in ``cluster_nodes`` and its registration has ended, by the server's clock
    at this statement (docs/leases.md, "A lapsed node"): the leader requeues
    such a node's claims, so it may neither extend them nor claim anew. A node
    that never registered (no lease keeper: one node alone, the benchmarks) is
    not refused. Uncorrelated with the rows it guards, so the planner checks
    it once per statement (a one-time filter: one primary-key probe)."""
    return (f"EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.node = {node}"
            " AND n.expires_at <= extract(epoch FROM clock_timestamp()))")

#: The ``messages`` columns a claim returns (a ``Message`` is built from them by name).
MESSAGE_COLUMNS = (
    "seq", "id", "account_id", "source", "to_addr", "from_addr", "body", "encoding",
    "data_coding", "udhi", "segments", "reference", "metadata", "callback_url",
    "registered_delivery", "test", "send_at", "expires_at", "status", "error_code",
    "error_permanent", "accepted_at", "queued_at", "sent_at", "done_at", "attempt",
    "webhook_events", "tries", "priority", "tag",
)

#: ACCEPT's parameters in order: one array per column (``connector`` is the
#: queue's: the connector the message is routed to).
ACCEPT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("account_id", "bigint"),
    ("source", "smallint"),
    ("to_addr", "text"),
    ("from_addr", "text"),
    ("body", "bytea"),
    ("encoding", "text"),
    ("data_coding", "smallint"),
    ("udhi", "boolean"),
    ("segments", "smallint"),
    ("reference", "text"),
    ("metadata", "text"),
    ("callback_url", "text"),
    ("registered_delivery", "smallint"),
    ("test", "boolean"),
    ("send_at", "double precision"),
    ("expires_at", "double precision"),
    ("accepted_at", "double precision"),
    ("webhook_events", "integer"),
    ("priority", "smallint"),
    ("tag", "text"),
    ("connector", "text"),
)
_STORED = [name for name, _type in ACCEPT_COLUMNS if name != "connector"]
_ARRAYS = ", ".join(f"${n}::{t}[]" for n, (_c, t) in enumerate(ACCEPT_COLUMNS, 1))
_NAMES = ", ".join(name for name, _type in ACCEPT_COLUMNS)

#: Store a batch (all or none) and queue its non-test messages, in one statement.
#: WITH ORDINALITY keeps the batch's order in ``seq`` (first in, first claimed).
ACCEPT = f"""
WITH new AS (
    SELECT * FROM unnest({_ARRAYS}) WITH ORDINALITY AS n({_NAMES}, ord)
), stored AS (
    INSERT INTO messages ({", ".join(_STORED)})
    SELECT {", ".join(_STORED)} FROM new ORDER BY ord
    RETURNING seq, id
)
INSERT INTO dispatch_queue (seq, connector, priority, due_at, expires_at, account_id)
SELECT s.seq, n.connector, n.priority, coalesce(n.send_at, n.accepted_at), n.expires_at,
    n.account_id
FROM stored s JOIN new n ON n.id = s.id
WHERE NOT n.test
"""

#: Claim up to $2 due, unexpired messages of connector $1 for owner $3 at $4,
#: leased for $5 seconds (an expired one waits for EXPIRE_QUEUED instead):
#: the claim index in (priority, seq) order, rows another node is claiming
#: skipped, not waited for. ``= ANY (ARRAY (...))`` rather than ``IN (...)``:
#: the chosen seqs are computed once and the rows fetched by primary key;
#: with ``IN`` the planner may hash-join a sequential scan of the whole queue
#: (seen with a 5,000-row backlog, test_claim_plan.py). The UPDATE repeats
#: none of the subquery's conditions: the rows it returns are locked with
#: ``owner IS NULL`` rechecked on their newest version, and ``AND owner IS
#: NULL`` out here let the planner reach them through the claim index (its
#: predicate), ``seq`` matched on a non-leading column: a walk of the whole
#: index per claim (a prepared claim on a fresh queue kept that plan; with 3
#: nodes it cost 6,000 buffers a claim of 50 and doubled the server's CPU per
#: message, bench/cluster.py --statements). Returns each message
#: with its claim's ``claim_attempt`` (completion and release name it: a
#: fence against a holder whose lease ran out and whose message was claimed
#: again) and ``claim_queued_at``, the first claim's time. A node whose
#: registration has ended claims nothing (registration_ended, checked once per
#: statement before the index is read): its claims are the leader's to requeue,
#: and the fence is the server's, not only the dispatcher's own check.
CLAIM = f"""
WITH claimed AS (
    UPDATE dispatch_queue q
    SET owner = $3, lease_until = $4 + $5, attempt = q.attempt + 1,
        queued_at = coalesce(q.queued_at, $4)
    WHERE q.seq = ANY (ARRAY (
        SELECT seq FROM dispatch_queue
        WHERE connector = $1 AND owner IS NULL AND due_at <= $4 AND expires_at > $4
          AND NOT {registration_ended("$3")}
        ORDER BY priority, seq
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING q.seq, q.attempt, q.queued_at
)
SELECT c.attempt AS claim_attempt, c.queued_at AS claim_queued_at,
    {", ".join("m." + c for c in MESSAGE_COLUMNS)}
FROM claimed c JOIN messages m ON m.seq = c.seq
ORDER BY m.priority, m.seq
"""

#: Owner $1 ends its claims: each (seq $2, claim attempt $3) leaves the queue
#: and its message takes status $4 (``sent`` or a final one) with error code
#: $5 at time $6, in one statement (rows of several callers: one group
#: commit). A claim this owner no longer holds (requeued, claimed again) is
#: left alone; as in store/lifecycle.py, a status only grows and a final one
#: stays. Returns the seqs whose claims ended here. ``q.seq = ANY ($2)``
#: offers the planner the primary key for the queue rows: with the join
#: alone it walked ``dispatch_queue_leases`` (``owner = $1`` implies that
#: partial index's ``owner IS NOT NULL``), every claim in flight, per
#: completion (a 5,000-row queue), or kept a sequential scan planned on a
#: fresh queue (test_claim_plan.py).
COMPLETE = f"""
WITH done AS (
    SELECT * FROM unnest($2::bigint[], $3::integer[], $4::smallint[], $5::integer[],
                         $6::double precision[])
        AS d(seq, attempt, status, error_code, at)
), gone AS (
    DELETE FROM dispatch_queue q USING done d
    WHERE q.seq = ANY ($2::bigint[]) AND q.seq = d.seq AND q.owner = $1
        AND q.attempt = d.attempt
    RETURNING q.seq, q.queued_at
), marked AS (
    UPDATE messages m
    SET status = d.status,
        error_code = d.error_code,
        attempt = d.attempt,
        queued_at = coalesce(m.queued_at, g.queued_at),
        sent_at = CASE WHEN d.status = {int(Status.SENT)} THEN d.at ELSE m.sent_at END,
        done_at = CASE WHEN d.status >= {int(Status.DELIVERED)} THEN d.at ELSE m.done_at END
    FROM gone g JOIN done d ON d.seq = g.seq
    WHERE m.seq = g.seq AND m.status IN ({_NON_FINAL}) AND m.status < d.status
    RETURNING m.seq
)
SELECT g.seq FROM gone g
"""

#: Owner $1 hands claims back (throttled, shutting down): each (seq $2, claim
#: attempt $3) becomes claimable again from $4. Returns the seqs released.
#: The seqs are named (``q.seq = ANY``) as in COMPLETE, for the primary key.
RELEASE = """
UPDATE dispatch_queue q
SET owner = NULL, lease_until = NULL, due_at = $4
FROM unnest($2::bigint[], $3::integer[]) AS r(seq, attempt)
WHERE q.seq = ANY ($2::bigint[]) AND q.seq = r.seq AND q.owner = $1 AND q.attempt = r.attempt
RETURNING q.seq
"""

#: Claims whose lease ended before $1 become claimable again (their holder
#: died or lost the database); returns how many.
REQUEUE_EXPIRED = """
WITH requeued AS (
    UPDATE dispatch_queue SET owner = NULL, lease_until = NULL
    WHERE owner IS NOT NULL AND lease_until < $1
    RETURNING seq
)
SELECT count(*) AS requeued FROM requeued
"""

#: Up to $2 unclaimed messages whose validity ended before $1 leave the queue
#: and become ``expired`` at $1 (store/lifecycle.py: from accepted or queued;
#: a final status stays). Returns how many left the queue. The rows are
#: locked with their conditions rechecked: the DELETE repeats none of them
#: (reached by primary key, not a partial index; see CLAIM).
EXPIRE_QUEUED = f"""
WITH gone AS (
    DELETE FROM dispatch_queue
    WHERE seq = ANY (ARRAY (
        SELECT seq FROM dispatch_queue
        WHERE owner IS NULL AND expires_at <= $1
        ORDER BY expires_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    ))
    RETURNING seq
), marked AS (
    UPDATE messages m
    SET status = {int(Status.EXPIRED)}, done_at = $1
    FROM gone g
    WHERE m.seq = g.seq AND m.status IN ({_NON_FINAL})
    RETURNING m.seq
)
SELECT count(*) AS expired FROM gone
"""
