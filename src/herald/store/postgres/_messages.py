"""The port's claim, reschedules, idempotency keys, quotas, receipt checks and
backlog on PostgreSQL (the rest of MessageStore / OutboxStore; private).

Theory of operation: the port's claim
=====================================

:meth:`~herald.store.Store.accept` queues a message in ``dispatch_queue`` with
connector :data:`UNROUTED` (``''``): the port routes after the claim, where
:class:`~herald.store.postgres.DispatchQueue` routes at acceptance and claims
per connector. The port's :meth:`PostgresMessages.claim` takes the
``UNROUTED`` rows only, so the two never hand out each other's rows, and it
keeps the SQLite store's order: the classes in turn, the accounts within a
class by deficit round robin over segments (``store/_fair``, both stores';
the turn and the unused credit carried over to the next claim, in this
store), each account's rows by due time.

A claimed row stays in the queue with ``owner`` (this store), ``attempt + 1``,
and ``due_at = lease_until`` = the end of the lease, as the SQLite store does
with its ``due_at``: so "ready" is one condition, ``due_at <= now``, true
both for a row never claimed, a row handed back, and a row whose lease
lapsed (its holder died): no requeue sweep is needed for the port's rows.
The index ``dispatch_queue_port (priority, account_id, due_at, seq) WHERE
connector = ''`` serves every read: the accounts waiting in each class (a
skip scan: one index probe per account), then each account's ready rows in
due order, ``LIMIT`` a block, ``FOR UPDATE SKIP LOCKED`` (see
:data:`CANDIDATES`). The round robin (``_fair``) runs over those blocks
(fetching another block for an account that runs out while it still has
rows), then one statement leases the chosen rows and returns their messages,
and one marks the expired ones it came across ``expired``. All of it is one
transaction: the rows it locked and did not choose are free again at commit.

Several stores (processes, nodes) claim at once safely: a row one claimer has
locked is skipped by the others, and one it has leased is not ready for them
(``due_at`` is in the future; a claimer whose snapshot still saw it ready
re-checks the locked row's new version, PostgreSQL's rule for ``FOR
UPDATE``). ``tests/store/postgres/test_port_claim.py`` runs two stores
against one database.

The claim writes the narrow queue row only, as DispatchQueue's does: the
``messages`` row keeps ``accepted`` until the message is sent, and readers
show the live state (``queued``, the claim's attempt and first time) from the
queue row (``_sql_lifecycle.LIVE_MESSAGE``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from herald.cluster._identity import node_id
from herald.store._errors import IdempotencyMismatch, InvalidRecord
from herald.store._fair import Fairness, Verdict
from herald.store._model import (
    MAX_SEGMENTS,
    STATUS_OF_CODE,
    Backlog,
    Channel,
    CheckResult,
    DailyQuota,
    EventKind,
    IdempotencyRecord,
    InboundMessage,
    Message,
    OutboxEvent,
    Priority,
    ReceiptCheck,
    Reschedule,
    Status,
)
from herald.store._model_routing import MessageRoute
from herald.store.postgres._controls import count_quota
from herald.store.postgres._part import StorePart
from herald.store.postgres._queue import Record, message_from_record
from herald.store.postgres._sql import MESSAGE_COLUMNS, registration_ended
from herald.store.postgres._sql_lifecycle import OUTBOX_COLUMNS
from herald.store.postgres._watch import Watch

__all__ = [
    "MAX_CLAIM",
    "UNROUTED",
    "PostgresMessages",
    "stored_event",
    "take_idempotency_key",
]

T = TypeVar("T")

#: The queue's connector of a message accepted through the port (which
#: routes after the claim, not at acceptance like :class:`DispatchQueue`).
UNROUTED = ""
#: The largest ``claim`` in one call (the SQLite store's limit).
MAX_CLAIM = 10_000

_SENT = int(Status.SENT)
_FINAL = int(Status.DELIVERED)  # the smallest final status
_EXPIRED = int(Status.EXPIRED)

#: The (class, account) pairs with rows in the port's queue (ready or not),
#: by a skip scan of dispatch_queue_port: one probe per pair, however many
#: rows each has waiting. As the SQLite store's CLAIM_ACCOUNTS. It also turns
#: bitmap scans off for the rest of the claim's transaction: for CANDIDATES
#: the planner estimates an account's rows from the average account, and
#: where that is fewer than the LIMIT it chose a bitmap scan, which reads and
#: sorts every ready row of the account (a bulk sender's backlog) where the
#: index gives them in order (seen in test_claim_plan.py's custom plan).
#: And sequential scans: LEASE's generic plan, made while ``messages`` was
#: small (a fresh database, no statistics yet), hash-joined a scan of the
#: whole table and kept it as the table grew (bench/e2e_cluster.py).
WAITING = f"""
WITH RECURSIVE a AS (
    (SELECT priority, account_id FROM dispatch_queue WHERE connector = '{UNROUTED}'
     ORDER BY priority, account_id LIMIT 1)
    UNION ALL
    SELECT x.priority, x.account_id FROM a CROSS JOIN LATERAL (
        SELECT priority, account_id FROM dispatch_queue
        WHERE connector = '{UNROUTED}' AND (priority, account_id) > (a.priority, a.account_id)
        ORDER BY priority, account_id LIMIT 1) x
)
SELECT priority, account_id FROM (SELECT set_config('enable_bitmapscan', 'off', true),
                                          set_config('enable_seqscan', 'off', true)) hint
CROSS JOIN a
"""

#: Each account's ($1) next ready rows of class $2 at $3 after its cursor
#: ($4 due_at, $5 seq), in due order, at most $6 each, locked; rows another
#: claimer holds locked are skipped. With each row its message's segments
#: (the round robin's weight) and validity.
CANDIDATES = f"""
SELECT c.seq, c.account_id, c.due_at, c.expires_at, c.segments
FROM unnest($1::bigint[], $4::float8[], $5::bigint[]) AS a(id, after_due, after_seq)
CROSS JOIN LATERAL (
    SELECT q.seq, q.account_id, q.due_at, q.expires_at, m.segments
    FROM dispatch_queue q JOIN messages m ON m.seq = q.seq
    WHERE q.connector = '{UNROUTED}' AND q.priority = $2 AND q.account_id = a.id
      AND q.due_at <= $3 AND (q.due_at, q.seq) > (a.after_due, a.after_seq)
    ORDER BY q.due_at, q.seq
    LIMIT $6
    FOR UPDATE OF q SKIP LOCKED
) c
"""

#: Lease the chosen rows ($1) to $2 at $3 until $4: returns each message with
#: its claim's attempt and first queued time. None when node $2's registration
#: has ended (the same fence as RESCHEDULE's and DispatchQueue's CLAIM).
LEASE = f"""
WITH claimed AS (
    UPDATE dispatch_queue q
    SET owner = $2, lease_until = $4, due_at = $4, attempt = q.attempt + 1,
        queued_at = coalesce(q.queued_at, $3)
    WHERE q.seq = ANY ($1::bigint[]) AND NOT {registration_ended("$2")}
    RETURNING q.seq, q.attempt, q.queued_at
)
SELECT c.attempt AS claim_attempt, c.queued_at AS claim_queued_at,
    {", ".join("m." + c for c in MESSAGE_COLUMNS)}
FROM claimed c JOIN messages m ON m.seq = c.seq
"""

#: Ready messages past their validity ($1) become expired at $2 (the triggers
#: take them out of the queue and write their events).
EXPIRE = f"""
UPDATE messages SET status = {_EXPIRED}, done_at = $2
WHERE seq = ANY ($1::bigint[]) AND status < {_SENT}
"""

#: Claims given back or extended: each (message $1, current attempt $2) is
#: claimable again from $3 (a hand-back, $5: no longer held; else held until
#: then); $4 failed tries are counted. A row for another attempt, or for a
#: message sent or ended (no longer queued), changes nothing. An extension
#: applies only to a claim its node $6 holds while that node is not known to
#: have lapsed (a registration ended: the leader requeues its claims,
#: herald.workers._leases), so a node whose lease keeper stalled cannot keep
#: its claims by extending them.
RESCHEDULE = f"""
WITH r AS (
    SELECT * FROM unnest($1::text[], $2::integer[], $3::float8[], $4::integer[],
                         $5::boolean[]) AS r(id, attempt, ready_at, failed, release)
), moved AS (
    UPDATE dispatch_queue q
    SET due_at = r.ready_at,
        lease_until = CASE WHEN r.release THEN NULL ELSE r.ready_at END,
        owner = CASE WHEN r.release THEN NULL ELSE q.owner END
    FROM r JOIN messages m ON m.id = r.id
    WHERE q.seq = m.seq AND q.attempt = r.attempt AND m.status < {_SENT}
      AND (r.release OR (q.owner = $6 AND NOT {registration_ended("$6")}))
    RETURNING q.seq, r.failed
)
UPDATE messages m SET tries = m.tries + moved.failed
FROM moved WHERE m.seq = moved.seq AND moved.failed > 0
"""

#: A re-split ($1 message, $2 attempt, $3 segments) of the current claim of a
#: message not sent yet: the parts recorded at an index >= $3 are forgotten.
#: Returns the message's seq when it applied.
SET_SEGMENTS = f"""
WITH target AS (
    SELECT m.seq FROM messages m JOIN dispatch_queue q ON q.seq = m.seq
    WHERE m.id = $1 AND q.attempt = $2 AND m.status < {_SENT}
    FOR UPDATE OF m
), forgotten AS (
    DELETE FROM segments s USING target t WHERE s.message_seq = t.seq AND s.idx >= $3
)
UPDATE messages m SET segments = $3 FROM target t WHERE m.seq = t.seq
RETURNING m.seq
"""

#: Segments whose receipt is overdue at $1, the longest overdue first, at
#: most $2, none of the connectors $3 (segments_check holds the waiting ones).
DUE_CHECKS = f"""
SELECT m.id, s.idx, s.connector, s.upstream_id, s.upstream_key, m.from_addr, s.checks,
    m.status
FROM segments s JOIN messages m ON m.seq = s.message_seq
WHERE s.status < {_FINAL} AND s.check_at IS NOT NULL AND s.check_at <= $1
  AND m.status >= {_SENT} AND NOT (s.connector = ANY ($3::text[]))
ORDER BY s.check_at, s.message_seq, s.idx
LIMIT $2
"""
#: Checks that end segments ($1 message, $2 index, $3 status, $4 error code,
#: $5 time; the first for a segment wins): as receipts would (the triggers
#: roll them up to the message). Only segments of messages sent or final,
#: and not final themselves.
CHECK_END = f"""
UPDATE segments s SET status = c.status, error_code = c.error_code, updated_at = c.at
FROM (SELECT DISTINCT ON (id, idx) * FROM unnest($1::text[], $2::smallint[], $3::smallint[],
          $4::integer[], $5::float8[]) WITH ORDINALITY AS c(id, idx, status, error_code, at, ord)
      ORDER BY id, idx, ord) c
JOIN messages m ON m.id = c.id
WHERE s.message_seq = m.seq AND s.idx = c.idx AND m.status >= {_SENT} AND s.status < {_FINAL}
"""
#: Checks put later ($1 message, $2 index, $3 next check; $4 how many rows
#: asked for it: each counts one check; the last time given wins).
CHECK_AGAIN = f"""
UPDATE segments s SET check_at = c.check_at, checks = s.checks + c.n
FROM unnest($1::text[], $2::smallint[], $3::float8[], $4::integer[]) AS c(id, idx, check_at, n)
JOIN messages m ON m.id = c.id
WHERE s.message_seq = m.seq AND s.idx = c.idx AND m.status >= {_SENT} AND s.status < {_FINAL}
"""

#: Store.backlog at $1: the queue (unsent: every queued message, the port's
#: and DispatchQueue's), its ready part, and the outbox's waiting events.
BACKLOG = f"""
SELECT (SELECT count(*) FROM dispatch_queue) AS unsent,
    (SELECT count(*) FROM dispatch_queue
     WHERE due_at <= $1 AND (owner IS NULL OR lease_until <= $1)) AS due,
    (SELECT count(*) FROM outbox WHERE channel = {int(Channel.WEBHOOK)}
     AND next_attempt_at IS NOT NULL) AS webhooks,
    (SELECT count(*) FROM outbox WHERE channel = {int(Channel.SMPP)}
     AND next_attempt_at IS NOT NULL) AS smpp_events
"""

FAILED_DELIVERIES = f"""
SELECT {", ".join(OUTBOX_COLUMNS)} FROM outbox
WHERE subject_id = $1 AND account_id = $2 AND channel = $3 AND last_error IS NOT NULL
  AND kind = {int(EventKind.STATUS)}
ORDER BY id
"""

_IDEMPOTENCY = "account_id, key, request_hash, status_code, response, created_at, expires_at"
READ_IDEMPOTENCY = (f"SELECT {_IDEMPOTENCY} FROM idempotency"
                    " WHERE account_id = $1 AND key = $2 AND expires_at > $3")  # fmt: skip
#: Take a key: insert its record, or replace one that expired by its
#: ``created_at``; no row returned: an unexpired record holds the key. A
#: concurrent taker of the same key waits for this transaction, then finds
#: the key held (or free again, if this one rolled back).
TAKE_IDEMPOTENCY = f"""
INSERT INTO idempotency AS i ({_IDEMPOTENCY}) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (account_id, key) DO UPDATE SET request_hash = excluded.request_hash,
    status_code = excluded.status_code, response = excluded.response,
    created_at = excluded.created_at, expires_at = excluded.expires_at
WHERE i.expires_at <= excluded.created_at
RETURNING true
"""


def _idempotency(r: Record) -> IdempotencyRecord:
    return IdempotencyRecord(r["account_id"], r["key"], bytes(r["request_hash"]),
                             r["status_code"], bytes(r["response"]), r["created_at"],
                             r["expires_at"])  # fmt: skip


async def take_idempotency_key(conn: Any, record: IdempotencyRecord) -> IdempotencyRecord | None:
    """In ``conn``'s transaction: store ``record`` (None) or return the
    unexpired record that holds its key (replay it: store nothing else).
    Raises :class:`IdempotencyMismatch` when that record is for another
    request."""
    r = record
    took = await conn.fetchval(TAKE_IDEMPOTENCY, r.account_id, r.key, r.request_hash,
                               r.status_code, r.response, r.created_at, r.expires_at)
    if took:
        return None
    row = await conn.fetchrow(READ_IDEMPOTENCY, r.account_id, r.key, r.created_at)
    if row is None:  # pragma: no cover - held by an unexpired record a moment ago
        raise IdempotencyMismatch("the Idempotency-Key is being replaced; retry")
    earlier = _idempotency(row)
    if earlier.request_hash != r.request_hash:
        raise IdempotencyMismatch("the Idempotency-Key was used for another request")
    return earlier


def _check_claim(limit: int, lease: float, class_limits: Sequence[int] | None) -> list[int]:
    """The room of each class (the SQLite store's checks, same errors)."""
    if not 1 <= limit <= MAX_CLAIM:
        raise InvalidRecord("limit", f"must be 1..{MAX_CLAIM}")
    if lease <= 0:
        raise InvalidRecord("lease", "must be positive")
    classes = list(Priority)
    if class_limits is None:
        return [limit] * len(classes)
    if len(class_limits) != len(classes):
        raise InvalidRecord("class_limits", f"must give {len(classes)} limits")
    return [max(0, min(limit, int(c))) for c in class_limits]


class _Blocks:
    """One class's ready rows, per account, fetched a block at a time (locked)."""

    def __init__(self, conn: Any, cls: Priority, now: float, block: int) -> None:
        self._conn, self._cls, self._now, self._block = conn, int(cls), now, block
        self._rows: dict[int, deque[Record]] = {}
        self._after: dict[int, tuple[float, int]] = {}  # the last row fetched
        self._ended: set[int] = set()  # no more ready rows than those fetched

    async def fetch(self, accounts: Sequence[int], limit: int) -> None:
        """Up to ``limit`` more rows of each of ``accounts``, in one statement."""
        after = [self._after.get(a, (-math.inf, -1)) for a in accounts]
        rows = await self._conn.fetch(
            CANDIDATES, list(accounts), self._cls, self._now, [a[0] for a in after],
            [a[1] for a in after], limit)
        got: dict[int, list[Record]] = {a: [] for a in accounts}
        for r in rows:
            got[r["account_id"]].append(r)
        for account, new in got.items():
            self._rows.setdefault(account, deque()).extend(new)
            if new:
                self._after[account] = (new[-1]["due_at"], new[-1]["seq"])
            if len(new) < limit:
                self._ended.add(account)

    async def peek(self, account: int, want: int) -> list[Record]:
        """The account's next ``want`` ready rows (fewer: it has no more)."""
        rows = self._rows.setdefault(account, deque())
        if len(rows) < want and account not in self._ended:
            await self.fetch([account], max(self._block, want - len(rows)))
        return [rows[n] for n in range(min(want, len(rows)))]

    def pop(self, account: int, count: int) -> None:
        rows = self._rows[account]
        for _ in range(count):
            rows.popleft()


class PostgresMessages(StorePart):
    """The claim, reschedule, idempotency, receipt-check, backlog and watch
    methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    _pool: Any
    #: Set by PostgresStore.open: where the listener of watch_outbox connects.
    _listen_url: str | None = None
    _watch_state: Watch | None = None
    _claim_owner: str | None = None
    #: The accounts' turns, carried from claim to claim (as the SQLite store's).
    _fairness_state: Fairness | None = None

    # -- commit watchers (_watch) ---------------------------------------------------

    @property
    def _watch(self) -> Watch:
        if self._watch_state is None:
            self._watch_state = Watch(self._listen_url)
        return self._watch_state

    def watch_outbox(self, callback: Callable[[frozenset[Channel]], None]) -> None:
        """Call ``callback`` (on this event loop) after each commit that wrote
        outbox events, with their channels: this store's commits before the
        writing call returns, other processes' and nodes' when PostgreSQL
        delivers their notification (``_watch``). Call from the event loop."""
        self._watch.watch_outbox(callback)

    def watch_finals(self, callback: Callable[[Mapping[Status, int]], None]) -> None:
        """Call ``callback`` (on this event loop) after each commit of this store
        that ended messages, with how many reached each final status (test
        messages aside), before the writing call returns. Only this store's
        commits: each node counts the finals it wrote, so their sum is the
        cluster's. Call from the event loop."""
        self._watch.watch_finals(callback)

    async def _stop_watching(self) -> None:
        if self._watch_state is not None:
            await self._watch_state.aclose()

    # -- the port's claim -------------------------------------------------------------

    @property
    def _owner(self) -> str:
        """This store's node on the rows it claims: the process's node id, which
        its lease keeper registers under too (``herald.cluster._identity``),
        unless :attr:`node` was set."""
        if self._claim_owner is None:
            self._claim_owner = node_id()
        return self._claim_owner

    @property
    def node(self) -> str:
        """The node this store claims for (``dispatch_queue.owner``)."""
        return self._owner

    @node.setter
    def node(self, name: str) -> None:
        """Claim as ``name`` from now on (several nodes in one process: tests).
        Set it before the first claim."""
        if not name:
            raise InvalidRecord("node", "a node needs a non-empty name")
        self._claim_owner = name

    async def claim(
        self, limit: int, now: float, lease: float, *, class_limits: Sequence[int] | None = None
    ) -> tuple[Message, ...]:
        caps = _check_claim(limit, lease, class_limits)
        until = now + lease

        async def claim(conn: Any) -> tuple[Message, ...]:
            waiting: dict[Priority, list[int]] = {cls: [] for cls in Priority}
            for r in await conn.fetch(WAITING):
                waiting[Priority(r["priority"])].append(r["account_id"])
            live: list[Record] = []
            expired: list[int] = []
            for cls in Priority:
                room = caps[cls] - len(live)
                if room > 0:  # a later class may still have room
                    live += await self._claim_class(conn, cls, waiting[cls], now, room, expired)
            if expired:
                await conn.execute(EXPIRE, expired, now)
            if not live:
                return ()
            rows = {r["seq"]: r for r in await conn.fetch(
                LEASE, [r["seq"] for r in live], self._owner, now, until)}
            # none when this node's registration has ended (LEASE's fence)
            return tuple(message_from_record(rows[r["seq"]], claimed=True)
                         for r in live if r["seq"] in rows)

        return await self._run(claim)

    async def _claim_class(self, conn: Any, cls: Priority, accounts: list[int], now: float,
                           room: int, expired: list[int]) -> list[Record]:
        """Up to ``room`` ready rows of class ``cls`` from ``accounts`` (those with
        rows waiting), the accounts taking turns (``store/_fair``: the SQLite
        store's deficit round robin over segments) over rows read a block per
        account ahead. Ready rows past their validity go to ``expired`` instead
        (not counted)."""
        if self._fairness_state is None:
            self._fairness_state = Fairness()
        claim = self._fairness_state.start(cls, accounts, room)
        if not accounts:
            return []
        # A block is an equal share of the room: what the first round asks of
        # each account. Rows locked and not chosen are skipped by concurrent
        # claimers until this commit, so more would cost their throughput.
        share = -(-room // len(accounts))
        blocks = _Blocks(conn, cls, now, share)
        await blocks.fetch(accounts, share)
        taken: dict[int, list[Record]] = {}
        while (request := claim.request) is not None:
            account, want = request
            rows = await blocks.peek(account, want)
            verdicts = claim.offer([(r["segments"], r["expires_at"] <= now) for r in rows])
            for r, verdict in zip(rows, verdicts, strict=False):  # the rows used
                if verdict is Verdict.EXPIRED:
                    expired.append(r["seq"])
                else:
                    taken.setdefault(account, []).append(r)
            blocks.pop(account, len(verdicts))
        return claim.interleave(taken)

    async def reschedule_many(self, items: Sequence[Reschedule]) -> None:
        # Rows for one claim apply in order, as one at a time would: the last
        # time (and kind) given wins, every failed one counts a try.
        merged: dict[tuple[str, int], list[Any]] = {}
        for r in items:
            row = merged.setdefault((r.message_id, r.attempt), [r.ready_at, 0, r.release])
            row[0], row[2] = r.ready_at, r.release
            row[1] += 1 if r.failed else 0
        if not merged:
            return
        keys, rows = list(merged), list(merged.values())
        await self._one(lambda c: c.execute(
            RESCHEDULE, [k[0] for k in keys], [k[1] for k in keys], [r[0] for r in rows],
            [r[1] for r in rows], [r[2] for r in rows], self._owner))

    async def set_segments(self, message_id: str, attempt: int, segments: int) -> bool:
        if not 1 <= segments <= MAX_SEGMENTS:
            raise InvalidRecord("segments", f"must be 1..{MAX_SEGMENTS}")
        seq = await self._one(lambda c: c.fetchval(SET_SEGMENTS, message_id, attempt, segments))
        return seq is not None

    # -- idempotency keys --------------------------------------------------------------

    async def get_idempotency(
        self, account_id: int, key: str, now: float
    ) -> IdempotencyRecord | None:
        row = await self._one(lambda c: c.fetchrow(READ_IDEMPOTENCY, account_id, key, now))
        return None if row is None else _idempotency(row)

    async def _accept_controls(
        self, conn: Any, idempotency: IdempotencyRecord | None, quota: DailyQuota | None,
        weight: int,
    ) -> IdempotencyRecord | None:
        """What ``accept`` and ``accept_chain`` check first in their transaction:
        a replayed key (its record: store nothing), then the quota (``weight``
        counted, or QuotaExceeded: ``_controls``)."""
        if idempotency is not None:
            earlier = await take_idempotency_key(conn, idempotency)
            if earlier is not None:
                return earlier
        if quota is not None:
            await count_quota(conn, quota, weight)
        return None

    # -- receipt checks ------------------------------------------------------------

    async def due_receipt_checks(
        self, now: float, limit: int, *, exclude: Collection[str] = ()
    ) -> tuple[ReceiptCheck, ...]:
        if not 1 <= limit <= MAX_CLAIM:
            raise InvalidRecord("limit", f"must be 1..{MAX_CLAIM}")
        rows = await self._one(lambda c: c.fetch(DUE_CHECKS, now, limit, sorted(set(exclude))))
        return tuple(
            ReceiptCheck(r["id"], r["idx"], r["connector"], r["upstream_id"], r["upstream_key"],
                         r["from_addr"], r["checks"], STATUS_OF_CODE[r["status"]])
            for r in rows
        )  # fmt: skip

    async def settle_receipt_checks(self, results: Sequence[CheckResult]) -> None:
        ends = [r for r in results if r.status is not None]
        again: dict[tuple[str, int], list[Any]] = {}
        for r in results:
            if r.status is None:
                row = again.setdefault((r.message_id, r.index), [r.check_at, 0])
                row[0], row[1] = r.check_at, row[1] + 1
        if not ends and not again:
            return

        async def settle(conn: Any) -> None:
            if ends:
                await conn.execute(
                    CHECK_END, [r.message_id for r in ends], [r.index for r in ends],
                    [int(r.status) for r in ends if r.status is not None],
                    [r.error_code for r in ends], [r.at for r in ends])  # fmt: skip
            if again:
                keys, rows = list(again), list(again.values())
                await conn.execute(CHECK_AGAIN, [k[0] for k in keys], [k[1] for k in keys],
                                   [r[0] for r in rows], [r[1] for r in rows])  # fmt: skip

        await self._run(settle)

    # -- what waits ------------------------------------------------------------------

    async def backlog(self, now: float) -> Backlog:
        r = await self._one(lambda c: c.fetchrow(BACKLOG, now))
        return Backlog(unsent=r["unsent"], due=r["due"], webhooks=r["webhooks"],
                       smpp_events=r["smpp_events"])  # fmt: skip

    async def failed_deliveries(
        self, message_id: str, account_id: int, channel: Channel = Channel.WEBHOOK
    ) -> tuple[OutboxEvent, ...]:
        rows = await self._one(lambda c: c.fetch(FAILED_DELIVERIES, message_id, account_id,
                                                 int(channel)))  # fmt: skip
        return tuple(stored_event(r) for r in rows)


def stored_event(r: Record, subject: Message | InboundMessage | None = None,
                 route: MessageRoute | None = None) -> OutboxEvent:
    """An outbox row (``OUTBOX_COLUMNS``, by name) as an event, with its subject."""
    status = r["status"]
    return OutboxEvent(
        id=r["id"], channel=Channel(r["channel"]), kind=EventKind(r["kind"]),
        account_id=r["account_id"], subject_id=r["subject_id"],
        status=None if status is None else STATUS_OF_CODE[status], url=r["url"],
        created_at=r["created_at"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"], last_error=r["last_error"],
        subject=subject, route=route,
    )  # fmt: skip

