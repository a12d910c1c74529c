"""The hot core of the PostgreSQL store: accept, claim, complete, release, requeue.

Theory of operation. A message is a ``messages`` row from acceptance on, and
also a ``dispatch_queue`` row while it is queued or in flight. A node claims
due rows of one connector (``owner``, a lease, ``attempt + 1``), sends them,
and completes them: the queue row goes and the message takes ``sent`` (or a
final status) in the same statement. A node that dies holds its claims until
their lease ends, or sooner its registration as a node (the lease keeper's,
under the same name: ``herald.cluster._identity``); then
:meth:`DispatchQueue.requeue_expired` or :meth:`DispatchQueue.requeue_lapsed`
(run by the leader) makes them claimable again, and the dead holder's late completions are refused
by the ``(owner, attempt)`` fence. So a node's death costs at most its in-flight
window in duplicates, never a lost or doubly-final message.

While a message is queued its ``messages`` row is not written (a claim touches
the narrow queue row only): its ``status`` there stays ``accepted`` and the
claim's ``queued_at`` reaches the row at completion. A reader wanting the live
status of an unfinished message joins the queue (owner set: ``queued``).

Every call is one statement on one pooled connection, so one round trip and
one commit (``synchronous_commit = on``), whatever the batch size; with a
``batch_window``, concurrent accepts (and completions) share one statement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol

from herald.store._errors import DuplicateMessageId, InvalidRecord, StoreUnavailable
from herald.store._model import (
    Message,
    NewMessage,
    Priority,
    Source,
    Status,
    StatusEvents,
)
from herald.store.postgres._batch import Batcher
from herald.store.postgres._sql import (
    ACCEPT,
    ACCEPT_COLUMNS,
    CLAIM,
    COMPLETE,
    EXPIRE_QUEUED,
    RELEASE,
    REQUEUE_EXPIRED,
)

__all__ = ["Claim", "Completion", "DispatchQueue", "message_from_record"]

#: The claims of nodes $1 whose registration has ended (by the server's clock,
#: in this statement) become claimable again from $2 at the latest; returns how
#: many. The registrations are locked: a renewal that would bring one back
#: waits for this commit, and the node's extensions that come after it are
#: refused (their claims are not its own any more: RESCHEDULE's fence).
REQUEUE_LAPSED = """
WITH lapsed AS (
    SELECT node FROM cluster_nodes
    WHERE node = ANY ($1::text[]) AND expires_at <= extract(epoch FROM clock_timestamp())
    FOR UPDATE
), requeued AS (
    UPDATE dispatch_queue q SET owner = NULL, lease_until = NULL, due_at = least(q.due_at, $2)
    FROM lapsed WHERE q.owner = lapsed.node
    RETURNING q.seq
)
SELECT count(*) AS requeued FROM requeued
"""

#: Claims handed out by one call at most (the issue's measured batch: up to 500).
MAX_CLAIM = 500


class Record(Protocol):
    """A row read by column name (asyncpg's ``Record``)."""

    def __getitem__(self, key: str) -> Any: ...


#: Enum members by stored number: a dict lookup, not an Enum call, per row.
_SOURCES = {int(s): s for s in Source}
_STATUSES = {int(s): s for s in Status}
_PRIORITIES = {int(p): p for p in Priority}


def message_from_record(r: Record, *, claimed: bool = False) -> Message:
    """A :class:`Message` from a row holding the ``messages`` columns, by name.

    ``claimed``: the row comes from a claim, whose ``claim_attempt`` and
    ``claim_queued_at`` are the message's live state (status ``queued``).
    """
    events = r["webhook_events"]
    return Message(
        id=r["id"],
        account_id=r["account_id"],
        source=_SOURCES[r["source"]],
        to=r["to_addr"],
        sender=r["from_addr"],
        body=r["body"],
        encoding=r["encoding"],
        data_coding=r["data_coding"],
        udhi=r["udhi"],
        segments=r["segments"],
        reference=r["reference"],
        metadata=r["metadata"],
        callback_url=r["callback_url"],
        registered_delivery=r["registered_delivery"],
        test=r["test"],
        send_at=r["send_at"],
        expires_at=r["expires_at"],
        status=Status.QUEUED if claimed else _STATUSES[r["status"]],
        error_code=r["error_code"],
        error_permanent=r["error_permanent"],
        accepted_at=r["accepted_at"],
        queued_at=r["claim_queued_at"] if claimed else r["queued_at"],
        sent_at=r["sent_at"],
        done_at=r["done_at"],
        attempt=r["claim_attempt"] if claimed else r["attempt"],
        callback_events=None if events is None else StatusEvents(events),
        tries=r["tries"],
        priority=_PRIORITIES[r["priority"]],
        tag=r["tag"],
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """A message handed to this node, with what ends the claim (``seq``, ``attempt``)."""

    seq: int
    attempt: int
    message: Message


@dataclass(frozen=True, slots=True)
class Completion:
    """The end of a claim: the message went out (``sent``) or ended (a final status)."""

    seq: int
    attempt: int
    status: Status
    error_code: int | None = None

    def __post_init__(self) -> None:
        if self.status < Status.SENT:
            raise InvalidRecord("status", f"a completion is sent or final, not {self.status!r}")


#: How each ACCEPT array is read from a NewMessage, by ACCEPT_COLUMNS name
#: (one comprehension per column: a third of the CPU of a dict per message).
_ACCEPT_VALUES: dict[str, Callable[[NewMessage], Any]] = {
    "id": attrgetter("id"),
    "account_id": attrgetter("account_id"),
    "source": lambda m: int(m.source),
    "to_addr": attrgetter("to"),
    "from_addr": attrgetter("sender"),
    "body": attrgetter("body"),
    "encoding": attrgetter("encoding"),
    "data_coding": attrgetter("data_coding"),
    "udhi": attrgetter("udhi"),
    "segments": attrgetter("segments"),
    "reference": attrgetter("reference"),
    "metadata": attrgetter("metadata"),
    "callback_url": attrgetter("callback_url"),
    "registered_delivery": attrgetter("registered_delivery"),
    "test": attrgetter("test"),
    "send_at": attrgetter("send_at"),
    "expires_at": attrgetter("expires_at"),
    "accepted_at": attrgetter("accepted_at"),
    "webhook_events": lambda m: None if m.callback_events is None else int(m.callback_events),
    "priority": lambda m: int(m.priority),
    "tag": attrgetter("tag"),
}
_ACCEPT_GETTERS = tuple(_ACCEPT_VALUES[name] for name, _type in ACCEPT_COLUMNS[:-1])


def _accept_arrays(messages: Sequence[NewMessage], connectors: Sequence[str]) -> list[list[Any]]:
    if len(connectors) != len(messages):
        raise InvalidRecord("connectors", "one connector per message")
    arrays = [[get(m) for m in messages] for get in _ACCEPT_GETTERS]
    arrays.append(list(connectors))
    return arrays


class DispatchQueue:
    """The loop's statements on an asyncpg pool, for one node (``owner``).

    Errors: :class:`StoreUnavailable` when the database cannot be reached or
    went away during the call (connection lost, server shut down or starting):
    nothing of the call took effect (each call is one statement); answer
    intake with a retryable error (503, ESME_RTHROTTLED) and call again later:
    the pool opens new connections once the server is back.
    :class:`DuplicateMessageId` from :meth:`accept` (generate new ids).
    """

    def __init__(
        self, pool: Any, owner: str, *, batch_window: float = 0.0, max_batch: int = 5000
    ) -> None:
        """``batch_window`` > 0: accepts and completions of concurrent callers
        within that many seconds share one statement and one commit
        (:class:`~herald.store.postgres._batch.Batcher`; at most ``max_batch``
        messages each). 0: every call is its own statement."""
        if not owner:
            raise InvalidRecord("owner", "a node needs a non-empty name")
        import asyncpg

        self._pool = pool
        self.owner = owner

        #: asyncpg's errors that mean "the database is not there now".
        self._unavailable: tuple[type[BaseException], ...] = (
            OSError, TimeoutError, asyncpg.PostgresConnectionError,
            asyncpg.OperatorInterventionError, asyncpg.InterfaceError,
            asyncpg.InternalClientError,  # a connection the server ended mid-protocol
        )  # fmt: skip
        self._duplicate: type[BaseException] = asyncpg.UniqueViolationError

        def one_callers_fault(exc: BaseException) -> bool:
            return isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError)

        self._accepts = Batcher(
            self._accept_now, window=batch_window, max_rows=max_batch,
            one_callers_fault=one_callers_fault,
        )  # fmt: skip
        self._completes = Batcher(
            self._complete_now, window=batch_window, max_rows=max_batch,
            one_callers_fault=one_callers_fault,
        )  # fmt: skip

    async def _accept_now(self, arrays: list[list[Any]]) -> None:
        await self._pool.execute(ACCEPT, *arrays)

    async def _complete_now(self, arrays: list[list[Any]]) -> frozenset[int]:
        rows = await self._pool.fetch(COMPLETE, self.owner, *arrays)
        return frozenset(r["seq"] for r in rows)

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """asyncpg's errors as the store's (STYLE: translated at the boundary)."""
        try:
            yield
        except self._duplicate as exc:
            raise DuplicateMessageId("a message with this id exists") from exc
        except self._unavailable as exc:
            raise StoreUnavailable(f"PostgreSQL is unavailable: {exc}") from exc

    @property
    def statements(self) -> int:
        """Accept and complete statements run so far (a merged group counts one)."""
        return self._accepts.executions + self._completes.executions

    async def aclose(self) -> None:
        """Run the accepts and completions still pending; the pool stays open."""
        await self._accepts.aclose()
        await self._completes.aclose()

    async def accept(self, messages: Sequence[NewMessage], connectors: Sequence[str]) -> None:
        """Store ``messages`` (all or none) and queue the non-test ones for
        ``connectors`` (one per message); returns after the commit. Raises
        :class:`DuplicateMessageId` for an id that exists (nothing of this
        call stored)."""
        if messages:
            arrays = _accept_arrays(messages, connectors)
            with self._translated():
                await self._accepts.submit(arrays)

    async def claim(
        self, connector: str, limit: int, now: float, lease: float
    ) -> tuple[Claim, ...]:
        """Up to ``limit`` (<= MAX_CLAIM) due messages of ``connector``, by
        priority class then acceptance; held until ``now + lease``. Rows
        another node is claiming are skipped, never waited for."""
        if not 0 < limit <= MAX_CLAIM:
            raise InvalidRecord("limit", f"claims of 1 to {MAX_CLAIM} messages")
        with self._translated():
            rows = await self._pool.fetch(CLAIM, connector, limit, self.owner, now, lease)
        return tuple(
            Claim(
                r["seq"],
                r["claim_attempt"],
                message_from_record(r, claimed=True),
            )
            for r in rows
        )

    async def complete(self, completions: Sequence[Completion], now: float) -> frozenset[int]:
        """End claims at ``now``: each leaves the queue and its message takes
        its status. Returns the seqs ended here; a claim this node no longer
        holds (its lease ran out and it was requeued) is not among them."""
        if not completions:
            return frozenset()
        seqs = [c.seq for c in completions]
        with self._translated():
            ended: frozenset[int] = await self._completes.submit([
                seqs,
                [c.attempt for c in completions],
                [int(c.status) for c in completions],
                [c.error_code for c in completions],
                [now] * len(completions),
            ])
        return ended.intersection(seqs)  # a merged group's result holds others' too

    async def release(self, claims: Sequence[Claim], ready_at: float) -> frozenset[int]:
        """Hand claims back (throttled, shutting down), claimable again from
        ``ready_at``; the seqs released (those this node still held)."""
        if not claims:
            return frozenset()
        with self._translated():
            rows = await self._pool.fetch(
                RELEASE, self.owner, [c.seq for c in claims], [c.attempt for c in claims],
                ready_at,
            )  # fmt: skip
        return frozenset(r["seq"] for r in rows)

    async def expire_queued(self, now: float, limit: int = MAX_CLAIM) -> int:
        """Up to ``limit`` unclaimed messages whose validity ended before ``now``
        leave the queue as ``expired``; how many (run until it returns 0)."""
        with self._translated():
            expired: int = await self._pool.fetchval(EXPIRE_QUEUED, now, limit)
        return expired

    async def requeue_lapsed(self, nodes: Collection[str], now: float) -> int:
        """Make the claims of ``nodes`` whose registration ended (``cluster_nodes``:
        they died, or lost the database or their lease keeper) claimable again
        from ``now``, without waiting for the claims' own lease; how many. A
        node among them that renewed meanwhile keeps its claims."""
        if not nodes:
            return 0
        with self._translated():
            requeued: int = await self._pool.fetchval(REQUEUE_LAPSED, sorted(nodes), now)
        return requeued

    async def requeue_expired(self, now: float) -> int:
        """Make claims whose lease ended before ``now`` claimable again; how many."""
        with self._translated():
            requeued: int = await self._pool.fetchval(REQUEUE_EXPIRED, now)
        return requeued
