"""The PostgreSQL store: the :class:`~herald.store.Store` port on a PostgreSQL database.

What it implements is the message lifecycle and what it reads: accounts and
their credentials, price lists, balances, CDRs and margins (what a step bills),
accepting (charged) messages, status updates, segments and receipts (parked
until their segment is recorded), cancels, validity sweeps, the outbox, the
pumping defence's records and Verify texts (``_fraud``), verifications and
conversions (``_verify``), and the operator's configuration: routes,
connector states and delivery health (``_routing``), number tables
(``_numbers``), account controls and opt-outs (``_controls``). Each method is
one transaction on a pooled asyncpg connection, mostly one statement; what a
status change emits is written by the triggers (``_lifecycle``) in that
transaction. A message claimed through
:class:`~herald.store.postgres.DispatchQueue` reads as ``queued`` (the claim
writes the queue row only). The port's own claim, reschedules, idempotency
keys and quotas at acceptance, receipt checks, the backlog and the commit
watchers are ``_messages``' (and ``_watch``'s); listing, bulk-cancelling and
replacing messages and inbound messages ``_listing``'s; admin keys, the audit
log and the search of recent messages ``_admin``'s; chat channels ``_chat``'s.

Errors: the port's (:class:`UnknownAccount`, :class:`DuplicateMessageId`,
:class:`InsufficientFunds`, ...); a lost connection or a server shutting down
raises :class:`StoreUnavailable`, a deadlock :class:`StoreBusy` (nothing of
the call took effect: retry).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from herald.store._billing import (
    MAX_AMOUNT,
    MAX_PRICE_LIST_ENTRIES,
    Balance,
    Cdr,
    Charge,
    PriceEntry,
    PriceKind,
    PriceSide,
    RefundPolicy,
    StoredPriceList,
)
from herald.store._chat_secrets import ERASE_CHAT_SECRETS_PG
from herald.store._errors import (
    DuplicateMessageId,
    InsufficientFunds,
    InvalidRecord,
    MessageNotFound,
    StoreBusy,
    StoreUnavailable,
    UnknownAccount,
)
from herald.store._model import (
    MAX_ID_LENGTH,
    MAX_SEGMENTS,
    SECRET_TEXT_SQL,
    STATUS_OF_CODE,
    ChangeOutcome,
    ChangeResult,
    Channel,
    DailyQuota,
    IdempotencyRecord,
    InboundMessage,
    Message,
    NewMessage,
    OutboxEvent,
    ReceiptUpdate,
    Segment,
    SegmentRecord,
    Status,
    StatusUpdate,
)
from herald.store._model_attempts import WebhookAnswer
from herald.store._model_routing import MessageRoute
from herald.store.postgres._accounts import PostgresAccounts, check_account
from herald.store.postgres._admin import PostgresAdmin
from herald.store.postgres._attempts import (
    DONE_ANSWERED,
    PURGE_ATTEMPTS,
    RETRY_ANSWERED,
    PostgresAttempts,
    done_arrays,
    retry_args,
)
from herald.store.postgres._batch import Batcher, InOrder
from herald.store.postgres._chat import PostgresChat
from herald.store.postgres._conn import create_pool, migrate
from herald.store.postgres._controls import PostgresControls
from herald.store.postgres._fraud import PostgresFraud
from herald.store.postgres._lifecycle import install
from herald.store.postgres._limits import PostgresLimits
from herald.store.postgres._listing import PostgresListing, inbound_from_record
from herald.store.postgres._margins import PostgresMargins
from herald.store.postgres._messages import UNROUTED, PostgresMessages, stored_event
from herald.store.postgres._numbers import PostgresNumbers
from herald.store.postgres._queue import Record, _accept_arrays, message_from_record
from herald.store.postgres._retention import PostgresRetention
from herald.store.postgres._routing import PostgresRouting
from herald.store.postgres._sql import ACCEPT
from herald.store.postgres._sql_lifecycle import (
    APPLY_RECEIPTS,
    CANCEL,
    CANCEL_READ,
    CDR_COLUMNS,
    CHARGE,
    CLAIM_OUTBOX,
    EXPIRE_SENT,
    EXPIRE_UNSENT,
    INSERT_CDRS,
    LIVE_MESSAGE,
    LIVE_STATUS,
    LOCK_RECEIPT_KEYS,
    RECORD_SEGMENTS,
    SET_FINAL,
    SET_QUEUED,
    SET_SENT,
)
from herald.store.postgres._verify import PostgresVerify

__all__ = ["UNROUTED", "PostgresStore"]

T = TypeVar("T")

#: Seconds a plain accept (no idempotency key, quota or charge: an HTTP single
#: send is one message per call) waits for the process's other plain accepts,
#: to share one statement and one commit with them (_batch.Batcher), as the
#: SQLite store's writer groups its commits. bench/e2e_cluster.py's HTTP part
#: on 1 node: see docs/scale-out.md (one transaction per request before).
ACCEPT_WINDOW = 0.002
#: Messages in one merged accept at most (a group is cut there).
ACCEPT_BATCH_ROWS = 5000
#: Segment records and receipts in one transaction of the in-order writer at
#: most (:meth:`PostgresStore.record_segments`; a group is cut there).
UPSTREAM_BATCH_ROWS = 5000
#: The first statement of the in-order writer's receipts transaction: the
#: receipts' key locks (LOCK_RECEIPT_KEYS), and sequential scans off for the
#: rest of the transaction. APPLY_RECEIPTS finds segments by upstream key;
#: planned while the table was small (a fresh database: no statistics until
#: autovacuum's first ANALYZE, 20,000 rows later), its cached generic plan
#: hash-joined a sequential scan of the whole table, and kept it as the table
#: grew: a statement's cost grew with the table (docs/scale-out.md).
UPSTREAM_LOCKS = f"""
SELECT count(*) FROM (SELECT set_config('enable_seqscan', 'off', true)) hint
CROSS JOIN ({LOCK_RECEIPT_KEYS}) locked
"""
#: SMPP 3.4 §4.4.2: message_id in submit_sm_resp is a C-string of at most 65 octets.
MAX_UPSTREAM_ID_LENGTH = 65
#: Connector names come from the config file; this bounds what is indexed.
MAX_CONNECTOR_LENGTH = 64
#: ``retry_outbox`` keeps the start of a delivery error for the operator.
MAX_ERROR_LENGTH = 500
#: The largest ``claim_outbox`` / ``expire_*`` in one call.
MAX_CLAIM = 10_000


def _check_count(name: str, value: int) -> None:
    if not 1 <= value <= MAX_CLAIM:
        raise InvalidRecord(name, f"must be 1..{MAX_CLAIM}")


def _count(status: str) -> int:
    """The row count of a command's status ("UPDATE 3", "DELETE 0")."""
    return int(status.rpartition(" ")[2])


def _check_text(name: str, value: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise InvalidRecord(name, f"must be 1..{limit} characters")


class _Prefixed:
    """A row's columns named ``prefix + name``, read by ``name``."""

    __slots__ = ("_prefix", "_row")

    def __init__(self, row: Record, prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getitem__(self, key: str) -> Any:
        return self._row[self._prefix + key]


def _event(r: Record) -> OutboxEvent:
    subject: Message | InboundMessage | None = None
    route: MessageRoute | None = None
    if r["message_id"] is not None:
        subject = message_from_record(_Prefixed(r, "m_"))
        route = MessageRoute(r["route_connector"], r["route_rule"])
    elif r["i_id"] is not None:
        subject = inbound_from_record(_Prefixed(r, "i_"))
    return stored_event(r, subject, route)


def _balance(r: Record) -> Balance:
    return Balance(r["account_id"], r["balance"], r["credit_limit"],
                   RefundPolicy(r["refund_policy"]))  # fmt: skip


class PostgresStore(PostgresMessages, PostgresAccounts, PostgresFraud, PostgresVerify,
                    PostgresChat, PostgresRouting, PostgresNumbers, PostgresControls,
                    PostgresListing, PostgresAdmin, PostgresLimits, PostgresMargins,
                    PostgresAttempts, PostgresRetention):
    """The lifecycle part of the store port on a PostgreSQL database.

    Open with :meth:`open` (migrates the database and installs the
    lifecycle's triggers); close with :meth:`aclose`.
    """

    def __init__(self, pool: Any) -> None:
        import asyncpg

        self._pool = pool
        self._asyncpg = asyncpg
        self._accepts = Batcher(
            self._accept_plain, window=ACCEPT_WINDOW, max_rows=ACCEPT_BATCH_ROWS,
            one_callers_fault=lambda exc: isinstance(exc, DuplicateMessageId | asyncpg.DataError))
        # Segment records, and receipts, each through a writer of their own
        # (one transaction at a time, each holding what arrived meanwhile); a
        # receipt goes once the records given before it committed.
        self._records = InOrder(self._write_records, streams=1, max_rows=UPSTREAM_BATCH_ROWS)
        self._receipts = InOrder(self._write_receipts, streams=1, max_rows=UPSTREAM_BATCH_ROWS)

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 8) -> PostgresStore:
        """Connect (a pool), migrate and install the lifecycle. Raises
        :class:`StoreUnavailable`, :class:`SchemaError`, ``ValueError`` (bad URL)."""
        pool = await create_pool(url, min_size=1, max_size=max_connections)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                await install(conn)
        except BaseException:
            await pool.close()
            raise
        store = cls(pool)
        store._listen_url = url  # watch_outbox's listener connects there
        return store

    async def aclose(self) -> None:
        await self._accepts.aclose()
        await self._records.aclose()
        await self._receipts.aclose()
        await self._stop_watching()
        await self._pool.close()

    # -- plumbing ----------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self, transaction: bool) -> AsyncIterator[Any]:
        """A pooled connection (in a transaction if asked). A lost connection or
        a server shutting down is StoreUnavailable; a deadlock (a receipt and a
        resend of its segment at once) is StoreBusy: either way nothing was
        written."""
        e = self._asyncpg.exceptions
        try:
            async with self._pool.acquire() as conn:
                with self._watch.hearing(conn):  # told once committed (_watch)
                    if not transaction:
                        yield conn
                        return
                    async with conn.transaction():
                        yield conn
        except (OSError, TimeoutError, e.InterfaceError, e.PostgresConnectionError,
                e.OperatorInterventionError, e.InternalClientError) as exc:  # fmt: skip
            # InternalClientError: a server that shut down between a transaction's
            # statements leaves the connection mid-protocol, and its COMMIT is
            # refused unsent ("cannot switch to state 15; another operation (2) is
            # in progress"). Left untranslated it ended dispatch's claim loop, so
            # a node never sent again after a PostgreSQL restart (tests/nodes).
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
        except e.DeadlockDetectedError as exc:
            raise StoreBusy(f"PostgreSQL: {exc}") from exc

    async def _run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn``'s statements in one transaction."""
        async with self._connection(True) as conn:
            return await fn(conn)

    async def _snapshot(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn``'s reads in one snapshot (a read-only REPEATABLE READ transaction)."""
        async with (self._connection(False) as conn,
                    conn.transaction(isolation="repeatable_read", readonly=True)):
            return await fn(conn)

    async def _one(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn``'s one statement, atomic by itself (no BEGIN and COMMIT round trips)."""
        async with self._connection(False) as conn:
            return await fn(conn)

    # -- messages ------------------------------------------------------------------------

    async def accept(
        self,
        messages: Sequence[NewMessage],
        *,
        idempotency: IdempotencyRecord | None = None,
        quota: DailyQuota | None = None,
        charges: Sequence[Charge] | None = None,
    ) -> IdempotencyRecord | None:
        if charges is not None and len(charges) != len(messages):
            raise InvalidRecord("charges", "one per message")
        if not messages and idempotency is None:
            return None
        if idempotency is None and quota is None and charges is None:
            await self._accepts.submit(_accept_arrays(messages, [UNROUTED] * len(messages)))
            return None

        async def accept(conn: Any) -> IdempotencyRecord | None:
            if idempotency is not None or quota is not None:  # _messages
                weight = 0 if quota is None else quota.weight(messages)
                earlier = await self._accept_controls(
                    conn, idempotency, quota if messages else None, weight)
                if earlier is not None or not messages:
                    return earlier
            await self._accept_in(conn, messages, charges)
            return None

        return await self._run(accept)

    async def _accept_plain(self, arrays: list[list[Any]]) -> None:
        """Plain accepts' merged arrays: ACCEPT is one statement, atomic by itself."""
        try:
            await self._one(lambda c: c.execute(ACCEPT, *arrays))
        except self._asyncpg.UniqueViolationError as exc:
            raise DuplicateMessageId("a message with this id exists") from exc

    async def _accept_in(self, conn: Any, messages: Sequence[NewMessage],
                         charges: Sequence[Charge] | None) -> None:
        """Store ``messages`` (and charge them) in ``conn``'s transaction: what
        :meth:`accept` does, and what starting a chain's SMS leg does."""
        arrays = _accept_arrays(messages, [UNROUTED] * len(messages))
        if charges is not None:
            accounts = {m.account_id for m in messages}
            paid = await conn.fetch(CHARGE, [m.account_id for m in messages],
                                    [c.amount for c in charges])  # fmt: skip
            if len(paid) != len(accounts):
                raise InsufficientFunds("the balance and credit limit do not cover the price")
        try:
            await conn.execute(ACCEPT, *arrays)
            if charges is not None:
                await conn.execute(
                    INSERT_CDRS, [m.id for m in messages], [m.account_id for m in messages],
                    [m.accepted_at for m in messages], [c.country for c in charges],
                    [c.network for c in charges], [m.segments for m in messages],
                    [c.price_key for c in charges], [c.amount for c in charges],
                )  # fmt: skip
        except self._asyncpg.UniqueViolationError as exc:
            raise DuplicateMessageId("a message with this id exists") from exc

    async def get_message(self, message_id: str, *, account_id: int | None = None) -> Message:
        row = None
        if len(message_id) <= MAX_ID_LENGTH:
            row = await self._one(lambda c: c.fetchrow(
                f"SELECT {LIVE_MESSAGE} FROM messages m"
                " LEFT JOIN dispatch_queue q ON q.seq = m.seq WHERE m.id = $1", message_id))
        if row is None or (account_id is not None and row["account_id"] != account_id):
            raise MessageNotFound("no such message")
        return message_from_record(row)

    async def get_segments(self, message_id: str) -> tuple[Segment, ...]:
        rows = await self._one(lambda c: c.fetch(
            "SELECT m.id, s.idx, s.connector, s.upstream_id, s.upstream_key, s.status,"
            " s.error_code, s.updated_at FROM messages m JOIN segments s"
            " ON s.message_seq = m.seq WHERE m.id = $1 ORDER BY s.idx", message_id))
        return tuple(
            Segment(r["id"], r["idx"], r["connector"], r["upstream_id"], r["upstream_key"],
                    STATUS_OF_CODE[r["status"]], r["error_code"], r["updated_at"])
            for r in rows
        )  # fmt: skip

    async def get_messages(self, message_ids: Sequence[str]) -> dict[str, Message]:
        wanted = [i for i in dict.fromkeys(message_ids) if len(i) <= MAX_ID_LENGTH]
        if not wanted:
            return {}
        rows = await self._one(lambda c: c.fetch(
            f"SELECT {LIVE_MESSAGE} FROM messages m"
            " LEFT JOIN dispatch_queue q ON q.seq = m.seq WHERE m.id = ANY ($1::text[])",
            wanted))
        return {r["id"]: message_from_record(r) for r in rows}

    async def update_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        queued = [u for u in updates if u.status is Status.QUEUED]
        sent = [u for u in updates if u.status is Status.SENT]
        final = [u for u in updates if u.status.final]
        if any(u.status is Status.ACCEPTED for u in updates):
            raise InvalidRecord("status", "a message cannot be moved to accepted")
        if not updates:
            return

        async def update(conn: Any) -> None:
            if queued:
                await conn.execute(SET_QUEUED, [u.message_id for u in queued],
                                   [u.at for u in queued])  # fmt: skip
            if sent:
                await conn.execute(SET_SENT, [u.message_id for u in sent], [u.at for u in sent])
            if final:
                await conn.execute(
                    SET_FINAL, [u.message_id for u in final], [int(u.status) for u in final],
                    [u.at for u in final], [u.error_code for u in final],
                    [u.permanent for u in final],
                )  # fmt: skip

        kinds = sum(1 for rows in (queued, sent, final) if rows)
        await (self._one(update) if kinds == 1 else self._run(update))

    async def record_segments(self, segments: Sequence[SegmentRecord]) -> None:
        for s in segments:
            if not 0 <= s.index < MAX_SEGMENTS:
                raise InvalidRecord("index", f"must be 0..{MAX_SEGMENTS - 1}")
            _check_text("connector", s.connector, MAX_CONNECTOR_LENGTH)
            _check_text("upstream_id", s.upstream_id, MAX_UPSTREAM_ID_LENGTH)
            _check_text("upstream_key", s.upstream_key, MAX_UPSTREAM_ID_LENGTH)
        if segments:
            await self._records.submit([list(segments)])

    async def apply_receipts(self, receipts: Sequence[ReceiptUpdate]) -> None:
        final = [r for r in receipts if r.status.final]  # ENROUTE / ACCEPTD: nothing to keep
        for r in final:
            _check_text("connector", r.connector, MAX_CONNECTOR_LENGTH)
            _check_text("upstream_key", r.upstream_key, MAX_UPSTREAM_ID_LENGTH)
        if final:
            # As the SQLite store's writer orders them: the records given before
            # (a part's, in dispatch's same loop turn) commit first, so its
            # receipt finds the part rather than being parked and unparked.
            await self._records.written()
            await self._receipts.submit([final])

    async def _write_records(self, streams: list[list[Any]]) -> None:
        """The segment records given meanwhile (``_batch.InOrder``): one
        statement, atomic by itself."""
        segments: list[SegmentRecord] = streams[0]
        await self._one(lambda conn: conn.execute(
            RECORD_SEGMENTS, [s.message_id for s in segments], [s.index for s in segments],
            [s.connector for s in segments], [s.upstream_id for s in segments],
            [s.upstream_key for s in segments], [s.at for s in segments],
            [s.check_at for s in segments]))  # fmt: skip

    async def _write_receipts(self, streams: list[list[Any]]) -> None:
        """The final receipts given meanwhile (``_batch.InOrder``), under their
        key locks (``_lifecycle.key_locks``). A writer of their own: one that
        waits for a key lock a record holds on another node does not hold up
        this node's records (nor the window slots waiting for them)."""
        final: list[ReceiptUpdate] = streams[0]

        async def apply(conn: Any) -> None:
            connectors, keys = [r.connector for r in final], [r.upstream_key for r in final]
            await conn.execute(UPSTREAM_LOCKS, connectors, keys)
            await conn.execute(
                APPLY_RECEIPTS, connectors, keys, [int(r.status) for r in final],
                [r.error_code for r in final], [r.at for r in final],
            )  # fmt: skip

        await self._run(apply)

    async def expire_unsent(self, now: float, limit: int) -> int:
        _check_count("limit", limit)
        status = await self._one(lambda c: c.execute(EXPIRE_UNSENT, now, limit))
        return _count(status)

    async def expire_sent(self, cutoff: float, now: float, limit: int) -> int:
        _check_count("limit", limit)
        status = await self._one(lambda c: c.execute(EXPIRE_SENT, cutoff, now, limit))
        return _count(status)

    async def cancel(self, message_id: str, now: float, *, account_id: int) -> ChangeResult:
        async def cancel(conn: Any) -> ChangeOutcome:
            row = None
            if len(message_id) <= MAX_ID_LENGTH:
                row = await conn.fetchrow(CANCEL_READ, message_id)
            if row is None or row["account_id"] != account_id:
                raise MessageNotFound("no such message")
            if row["status"] >= Status.SENT or row["upstream"]:
                return ChangeOutcome.TOO_LATE  # a message is not half-recalled
            if row["owner"] is not None and row["lease_until"] > now:
                return ChangeOutcome.IN_PROGRESS  # dispatch may be submitting it
            await conn.execute(CANCEL, row["seq"], now)
            return ChangeOutcome.APPLIED

        outcome = await self._run(cancel)
        return ChangeResult(outcome, await self.get_message(message_id))

    # -- outbox ------------------------------------------------------------------------

    async def claim_outbox(
        self,
        channel: Channel,
        now: float,
        lease: float,
        limit: int,
        *,
        account_id: int | None = None,
    ) -> tuple[OutboxEvent, ...]:
        _check_count("limit", limit)
        if lease <= 0:
            raise InvalidRecord("lease", "must be positive")
        rows = await self._one(lambda c: c.fetch(
            CLAIM_OUTBOX, int(channel), now, limit, now + lease, account_id))
        return tuple(_event(r) for r in rows)

    async def purge(self, now: float, *, parked_before: float, dead_before: float) -> int:
        async def purge(conn: Any) -> int:
            keys = await conn.execute("DELETE FROM idempotency WHERE expires_at <= $1", now)
            parked = await conn.execute(
                "DELETE FROM parked_receipts WHERE received_at < $1", parked_before)
            dead = await conn.execute(
                "DELETE FROM outbox WHERE next_attempt_at IS NULL AND created_at < $1",
                dead_before)  # fmt: skip
            erased = await conn.execute(
                "UPDATE messages SET body = ''::bytea WHERE seq IN (SELECT seq FROM messages"
                f" WHERE {SECRET_TEXT_SQL} AND octet_length(body) > 0"
                f" AND status >= {int(Status.DELIVERED)})")
            legs = await conn.execute(ERASE_CHAT_SECRETS_PG)
            attempts = await conn.execute(PURGE_ATTEMPTS, dead_before)
            return (_count(keys) + _count(parked) + _count(dead) + _count(erased)
                    + _count(legs) + _count(attempts))

        return await self._run(purge)

    async def complete_outbox(
        self, event_ids: Sequence[int], *, answers: Mapping[int, WebhookAnswer] | None = None
    ) -> None:
        if answers and event_ids:  # events that failed before: their last attempt is recorded
            arrays = done_arrays(event_ids, answers)
            await self._one(lambda c: c.execute(DONE_ANSWERED, list(event_ids), *arrays))
        elif event_ids:
            await self._one(lambda c: c.execute(
                "DELETE FROM outbox WHERE id = ANY ($1::bigint[])", list(event_ids)))

    async def retry_outbox(self, event_id: int, next_attempt_at: float | None, error: str, *,
                           answer: WebhookAnswer | None = None) -> None:
        if answer is not None:  # the attempt's record in the same statement
            args = retry_args(answer)
            await self._one(lambda c: c.execute(
                RETRY_ANSWERED, event_id, next_attempt_at, error[:MAX_ERROR_LENGTH], *args))
            return
        await self._one(lambda c: c.execute(
            "UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
            event_id, next_attempt_at, error[:MAX_ERROR_LENGTH]))

    # -- billing -----------------------------------------------------------------------

    async def put_price_list(self, prices: StoredPriceList) -> int:
        if len(prices.entries) > MAX_PRICE_LIST_ENTRIES:
            raise InvalidRecord("entries", f"at most {MAX_PRICE_LIST_ENTRIES}")
        side, owner = int(prices.side), prices.owner
        if prices.side is not PriceSide.SELL and not 0 < len(owner) <= MAX_CONNECTOR_LENGTH:
            raise InvalidRecord("owner", "a connector's name: 1..64 characters")
        entries = prices.entries

        async def put(conn: Any) -> int:
            if prices.side is PriceSide.SELL:
                if not owner.isdigit():
                    raise UnknownAccount(f"no account {owner}")
                await check_account(conn, int(owner))
            await conn.execute("DELETE FROM prices WHERE side = $1 AND owner = $2", side, owner)
            try:
                await conn.execute(
                    "INSERT INTO prices (side, owner, kind, key, price)"
                    " SELECT $1, $2, * FROM unnest($3::smallint[], $4::text[], $5::bigint[])",
                    side, owner, [int(e.kind) for e in entries], [e.key for e in entries],
                    [e.price for e in entries],
                )  # fmt: skip
            except self._asyncpg.UniqueViolationError as exc:
                raise InvalidRecord("entries", "an entry is given twice") from exc
            await conn.execute(
                "INSERT INTO price_lists (side, owner, imported_at, entries) VALUES ($1,$2,$3,$4)"
                " ON CONFLICT (side, owner) DO UPDATE SET imported_at = excluded.imported_at,"
                " entries = excluded.entries", side, owner, prices.imported_at, len(entries))
            if prices.side is PriceSide.SELL:  # a billed account has a balance, from 0
                await conn.execute("INSERT INTO balances (account_id) VALUES ($1)"
                                   " ON CONFLICT DO NOTHING", int(owner))  # fmt: skip
            generation: int = await conn.fetchval(
                "UPDATE price_lists_generation SET generation = generation + 1"
                " RETURNING generation")
            return generation

        return await self._run(put)

    async def remove_price_list(self, side: PriceSide, owner: str) -> int:
        async def remove(conn: Any) -> int:
            await conn.execute("DELETE FROM prices WHERE side = $1 AND owner = $2",
                               int(side), owner)  # fmt: skip
            removed = await conn.execute(
                "DELETE FROM price_lists WHERE side = $1 AND owner = $2", int(side), owner)
            generation: int = await conn.fetchval(
                "UPDATE price_lists_generation SET generation = generation + 1"
                " RETURNING generation" if _count(removed) else
                "SELECT generation FROM price_lists_generation")  # fmt: skip
            return generation

        return await self._run(remove)

    async def price_lists(self, side: PriceSide) -> tuple[StoredPriceList, ...]:
        async def read(conn: Any) -> tuple[StoredPriceList, ...]:
            lists = await conn.fetch("SELECT owner, imported_at FROM price_lists"
                                     " WHERE side = $1 ORDER BY owner", int(side))  # fmt: skip
            entries: dict[str, list[PriceEntry]] = {r["owner"]: [] for r in lists}
            for r in await conn.fetch("SELECT owner, kind, key, price FROM prices"
                                      " WHERE side = $1 ORDER BY owner, kind, key", int(side)):
                if r["owner"] in entries:
                    entries[r["owner"]].append(PriceEntry(PriceKind(r["kind"]), r["key"],
                                                          r["price"]))  # fmt: skip
            return tuple(StoredPriceList(side, r["owner"], tuple(entries[r["owner"]]),
                                         r["imported_at"]) for r in lists)  # fmt: skip

        return await self._run(read)  # one snapshot for both reads

    async def price_lists_generation(self) -> int:
        generation: int = await self._one(
            lambda c: c.fetchval("SELECT generation FROM price_lists_generation"))
        return generation

    async def get_balance(self, account_id: int) -> Balance | None:
        row = await self._one(lambda c: c.fetchrow(
            "SELECT account_id, balance, credit_limit, refund_policy FROM balances"
            " WHERE account_id = $1", account_id))
        return None if row is None else _balance(row)

    async def adjust_balance(
        self,
        account_id: int,
        *,
        add: int = 0,
        credit_limit: int | None = None,
        refund_policy: RefundPolicy | None = None,
    ) -> Balance:
        if not -MAX_AMOUNT <= add <= MAX_AMOUNT:
            raise InvalidRecord("add", f"must be within ±{MAX_AMOUNT} micro-units")
        if credit_limit is not None and not 0 <= credit_limit <= MAX_AMOUNT:
            raise InvalidRecord("credit_limit", f"must be 0..{MAX_AMOUNT} micro-units")

        async def adjust(conn: Any) -> Balance:
            await check_account(conn, account_id)
            row = await conn.fetchrow(
                "INSERT INTO balances AS b (account_id, balance, credit_limit, refund_policy)"
                " VALUES ($4, $1, coalesce($2, 0), coalesce($3, 0))"
                " ON CONFLICT (account_id) DO UPDATE SET balance = b.balance + $1,"
                " credit_limit = coalesce($2, b.credit_limit),"
                " refund_policy = coalesce($3, b.refund_policy)"
                " RETURNING account_id, balance, credit_limit, refund_policy",
                add, credit_limit, None if refund_policy is None else int(refund_policy),
                account_id,
            )  # fmt: skip
            if abs(row["balance"]) > MAX_AMOUNT:
                raise InvalidRecord("add", f"the balance would pass ±{MAX_AMOUNT} micro-units")
            return _balance(row)

        return await self._run(adjust)

    async def list_cdrs(
        self,
        since: float,
        until: float,
        *,
        account_id: int | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 1000,
    ) -> tuple[Cdr, ...]:
        if not 1 <= limit <= 10_000:
            raise InvalidRecord("limit", "must be 1..10000")
        after_at, after_id = (None, None) if after is None else after
        rows = await self._one(lambda c: c.fetch(
            # A purged message's CDR holds its final status (herald.store._retention).
            f"SELECT {CDR_COLUMNS}, coalesce(c.status, {LIVE_STATUS}) AS status"
            " FROM cdrs c LEFT JOIN messages m ON m.id = c.message_id"
            " LEFT JOIN dispatch_queue q ON q.seq = m.seq"
            " WHERE c.accepted_at >= $1 AND c.accepted_at < $2"
            " AND ($3::bigint IS NULL OR c.account_id = $3)"
            " AND ($4::float8 IS NULL OR (c.accepted_at, c.message_id) > ($4, $5::text))"
            " ORDER BY c.accepted_at, c.message_id LIMIT $6",
            since, until, account_id, after_at, after_id, limit))
        return tuple(
            Cdr(r["message_id"], r["account_id"], r["accepted_at"], r["country"], r["network"],
                r["segments"], r["price_key"], r["sell"], r["refunded"], r["connector"],
                r["buy"], STATUS_OF_CODE[r["status"]])
            for r in rows
        )  # fmt: skip

