"""The embedded store: SQLite in WAL mode, in a data directory.

One file, ``<data_dir>/herald.db``. Writes go through a single writer thread
that group-commits them (see :mod:`herald.store._writer`); reads run on a small
pool of read-only connections, which WAL lets proceed while the writer writes.

Durability: ``synchronous=NORMAL`` is the default, chosen on these grounds.
In WAL mode a commit appends the transaction to the WAL file with ``write()``
before ``COMMIT`` returns, and only checkpoints ``fsync``; so a committed
transaction survives the death of the process (SIGKILL, the OOM killer, a
crash: the bytes are in the kernel's page cache), which is what herald
promises and what ``tests/store/test_crash.py`` checks by SIGKILL. It does
not survive the *machine* losing power: the last transactions before the
loss may go. ``synchronous=FULL`` also ``fsync``-s the WAL at each commit and
survives power loss. Group commit amortises that fsync over every write of
the batch, but it still costs: on the 2-CPU development VM (fsync 0.17 ms)
``bench/store.py`` measured one-message accepts at 43k/s (64 callers) and
69k/s (512 callers) with NORMAL against 20k/s and 38k/s with FULL, and on a
disk without a write cache each fsync costs milliseconds. Choose FULL when
power loss matters more than latency and the host's disk cache is not
battery-backed (or run on PostgreSQL with synchronous replication).

Batching: ``commit_interval`` defaults to 0, i.e. *natural* group commit: the
writer commits what is queued as soon as the previous commit is done, so the
batch grows with the load (64 rows per commit with 64 callers, 500 with 512)
and an idle store answers in well under a millisecond. A fixed wait only
adds latency: 2 ms cut 64 callers' one-message accepts from 43k/s to 15k/s.

Open with :meth:`SQLiteStore.open`; close with ``await store.aclose()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import math
import os
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from herald.store._billing import Charge
from herald.store._chat_secrets import ERASE_CHAT_SECRETS_SQLITE
from herald.store._errors import (
    AccountExists,
    CredentialExists,
    IdempotencyMismatch,
    InvalidRecord,
    MessageNotFound,
    SchemaError,
    UnknownAccount,
)
from herald.store._fair import Fairness, Verdict
from herald.store._model import (
    MAX_ID_LENGTH,
    MAX_SEGMENTS,
    SECRET_TEXT_SQL,
    STATUS_OF_CODE,
    Account,
    ApiKeyRecord,
    Backlog,
    ChangeResult,
    Channel,
    CheckResult,
    DailyQuota,
    IdempotencyRecord,
    InboundMessage,
    Message,
    MessageFilter,
    MessagePage,
    NewMessage,
    NumberTable,
    NumberTableKind,
    OptOutChange,
    OutboxEvent,
    Priority,
    ReceiptCheck,
    ReceiptUpdate,
    Replacement,
    Reschedule,
    Segment,
    SegmentRecord,
    SmppCredentialRecord,
    Status,
    StatusUpdate,
)
from herald.store._model_attempts import WebhookAnswer
from herald.store._sqlite_admin import SQLiteAdmin
from herald.store._sqlite_attempts import (
    G_OUTBOX_DONE_ANSWERED,
    G_OUTBOX_RETRY_ANSWERED,
    PURGE_ATTEMPTS,
    SQLiteAttempts,
    answer_text,
    done_rows,
)
from herald.store._sqlite_billing import G_ACCEPT_BILLED, SQLiteBilling, accept_error, billed_rows
from herald.store._sqlite_changes import cancel_in, cancel_matching_in, replace_in
from herald.store._sqlite_chat import SQLiteChains, SQLiteChat, SQLiteChatTemplates
from herald.store._sqlite_conn import DB_FILENAME, Readers, SQLiteConfig, connect, migrate
from herald.store._sqlite_controls import ControlsMixin, apply_opt_outs, count_quota
from herald.store._sqlite_fraud import SQLiteFraud
from herald.store._sqlite_lifecycle import STEPS, emit_steps, parts_ended
from herald.store._sqlite_retention import SQLiteRetention
from herald.store._sqlite_routing import SQLiteRouting
from herald.store._sqlite_sql import (
    ACCOUNT_COLUMNS,
    BACKLOG_DUE,
    BACKLOG_OUTBOX,
    BACKLOG_UNSENT,
    CHECK_AGAIN,
    CHECK_END,
    CLAIM_ACCOUNT_SELECT,
    CLAIM_ACCOUNTS,
    CLAIM_EXPIRE,
    CLAIM_LEASE,
    CLAIM_OUTBOX_SELECT,
    DUE_CHECKS,
    FAILED_DELIVERIES,
    G_ACCEPT,
    G_FINAL,
    G_INBOUND,
    G_OUTBOX_DONE,
    G_OUTBOX_RETRY,
    G_QUEUED,
    G_RECEIPT,
    G_RESCHEDULE,
    G_SEGMENT,
    G_SENT,
    INBOUND_COLUMNS,
    INSERT_INBOUND,
    MAX_CONNECTOR_LENGTH,
    MAX_ERROR_LENGTH,
    MAX_UPSTREAM_ID_LENGTH,
    MESSAGE,
    MESSAGE_COLUMNS,
    MESSAGE_WIDTH,
    OUTBOX_LEASE,
    SET_SEGMENTS,
    SET_SEGMENTS_FORGET,
    account_from_row,
    check_count,
    check_text,
    claimed_event_from_row,
    claimed_message_from_row,
    duplicate_id,
    event_from_row,
    inbound_from_row,
    message_from_row,
    read_idempotency,
    row_from_message,
)
from herald.store._sqlite_verify import SQLiteVerify
from herald.store._writer import Group, GroupCommitWriter, LoopCommitWriter, Note

__all__ = ["DB_FILENAME", "WRITE_LOCK_SUFFIX", "SQLiteConfig", "SQLiteStore"]

T = TypeVar("T")

#: ``herald.db`` + this: the file every writer of the database locks (``flock``)
#: for the length of a transaction, so that writers in several processes queue
#: in the kernel instead of in SQLite's sleeping busy handler (see ``_writer``).
WRITE_LOCK_SUFFIX = "-writelock"
#: Ids bound in one ``IN (...)`` of :meth:`SQLiteStore.get_messages`; SQLite
#: builds before 3.32 allow 999 host parameters per statement.
MAX_IDS_PER_QUERY = 500


class _CommitWatch:
    """What the writer's transaction did that others wait for, told after its commit.

    A temporary trigger on the writer's connection calls a Python function for
    every outbox row inserted (a few hundred nanoseconds each), and the
    lifecycle's writes before ``COMMIT`` (:meth:`before_commit`) count the
    messages that reached a final status;
    after ``COMMIT`` the writer calls :meth:`after_commit` for the calls to
    make on each listener's loop (with the futures of that commit, in one
    wake-up of the loop): the outbox channels written to, and the finals
    counted by status. A rolled-back transaction may leave its marks behind:
    one wake-up with nothing new to claim, or finals counted that did not
    happen (only a failed commit, a disk error, rolls back status changes).
    """

    def __init__(self) -> None:
        self._marks = 0
        self._finals: dict[int, int] = {}
        self._listeners: list[
            tuple[asyncio.AbstractEventLoop, Callable[[frozenset[Channel]], None]]
        ] = []
        self._final_listeners: list[
            tuple[asyncio.AbstractEventLoop, Callable[[Mapping[Status, int]], None]]
        ] = []

    def install(self, conn: sqlite3.Connection) -> None:
        conn.create_function("herald_outbox_event", 1, self._mark)
        conn.execute(
            "CREATE TEMP TRIGGER IF NOT EXISTS outbox_watch AFTER INSERT ON main.outbox"
            " BEGIN SELECT herald_outbox_event(NEW.channel); END"
        )
        for sql in STEPS:  # the status changes whose emits are written before COMMIT
            conn.execute(sql)

    def before_commit(self, conn: sqlite3.Connection) -> None:  # writer, in the transaction
        """Write what the transaction's status changes emit, and count the finals."""
        for status, n in emit_steps(conn).items():
            self._finals[status] = self._finals.get(status, 0) + n

    def listen(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[frozenset[Channel]], None]
    ) -> None:
        self._listeners.append((loop, callback))

    def listen_finals(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[Mapping[Status, int]], None]
    ) -> None:
        self._final_listeners.append((loop, callback))

    def _mark(self, channel: int) -> None:  # writer, inside the transaction
        self._marks |= 1 << channel

    def after_commit(self) -> list[Note]:  # writer, after COMMIT
        marks, self._marks = self._marks, 0
        finals, self._finals = self._finals, {}
        notes: list[Note] = []
        if marks and self._listeners:
            channels = frozenset(c for c in Channel if marks & (1 << c))
            notes += [(loop, functools.partial(call, channels)) for loop, call in self._listeners]
        if finals and self._final_listeners:
            counts = {STATUS_OF_CODE[code]: n for code, n in finals.items()}
            notes += [(loop, functools.partial(call, counts))
                      for loop, call in self._final_listeners]  # fmt: skip
        return notes


# Where a claim reads a message row's columns (rows by name).
_SEQ, _SEGMENTS, _EXPIRES_AT = (MESSAGE.at[c] for c in ("seq", "segments", "expires_at"))

class SQLiteStore(SQLiteAdmin, ControlsMixin, SQLiteRouting, SQLiteBilling, SQLiteVerify,
                  SQLiteFraud, SQLiteChat, SQLiteChains, SQLiteChatTemplates, SQLiteAttempts,
                  SQLiteRetention):
    """The :class:`~herald.store.Store` on SQLite. See the module docstring."""

    def __init__(self, config: SQLiteConfig, writer: GroupCommitWriter, readers: Readers):
        self.config = config
        self._writer = writer
        self._readers = readers
        self._watch = _CommitWatch()  # replaced by open()'s, which the writer feeds
        self._fairness = Fairness()  # the accounts' turns, from claim to claim

    @classmethod
    def open(cls, config: SQLiteConfig | None = None) -> SQLiteStore:
        """Open (and create, and migrate) the store in ``config.data_dir``.

        Blocks for the migration (milliseconds on an up-to-date database).
        Raises :class:`SchemaError` (newer or foreign database, or missing with
        ``create=False``) and :class:`StoreUnavailable` (cannot open the file).
        """
        config = config or SQLiteConfig()
        path = config.path
        if not path.exists():
            if not config.create:
                raise SchemaError(f"no herald database in {config.data_dir}")
            config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Hashes and message bodies: readable by herald's user only. SQLite
            # gives the -wal and -shm files the same mode as the database.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        migrate(path, config)
        watch = _CommitWatch()

        def connect_writer() -> sqlite3.Connection:
            conn = connect(path, config)
            watch.install(conn)
            return conn

        lock_path = path.with_name(path.name + WRITE_LOCK_SUFFIX)
        writer: GroupCommitWriter
        if config.writer == "loop":
            writer = LoopCommitWriter(
                connect_writer, max_batch=config.max_batch, max_pending=config.max_pending,
                commit_interval=config.commit_interval, after_commit=watch.after_commit,
                lock_path=lock_path, quiet_interval=config.quiet_interval,
                quiet_rate=config.quiet_rate, before_commit=watch.before_commit)
        else:
            writer = GroupCommitWriter(
                connect_writer, max_batch=config.max_batch, max_pending=config.max_pending,
                commit_interval=config.commit_interval, after_commit=watch.after_commit,
                lock_path=lock_path, before_commit=watch.before_commit)
        store = cls(config, writer, Readers(path, config))
        store._watch = watch
        return store

    def watch_outbox(self, callback: Callable[[frozenset[Channel]], None]) -> None:
        """Call ``callback`` (on this event loop) after each commit that wrote outbox
        events, with their channels: how the webhook sender and the SMPP notifier
        are woken by the commit that gives them work, instead of polling for it.

        Events due later (a retry's backoff) wake nobody when they come due.
        Call from the event loop's thread.
        """
        self._watch.listen(asyncio.get_running_loop(), callback)

    def watch_finals(self, callback: Callable[[Mapping[Status, int]], None]) -> None:
        """Call ``callback`` (on this event loop) after each commit that ended
        messages, with how many reached each final status: however they ended
        (a receipt, dispatch's verdict, an expiry), counted where it happened.
        Test messages are not counted. Call from the event loop's thread."""
        self._watch.listen_finals(asyncio.get_running_loop(), callback)

    @property
    def commits(self) -> int:
        """Transactions committed by the writer so far (for benchmarks and metrics)."""
        return self._writer.commits

    @property
    def writes(self) -> int:
        """Writes (calls) those transactions carried."""
        return self._writer.writes

    async def aclose(self) -> None:
        await self._writer.aclose()
        await asyncio.to_thread(self._readers.close)

    def close(self) -> None:
        """:meth:`aclose` for code outside an event loop (blocks until committed)."""
        self._writer.close_blocking()
        self._readers.close()

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- plumbing ----------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        result: T = await self._writer.submit(None, fn)
        return result

    # -- accounts ----------------------------------------------------------------------

    async def create_account(
        self,
        name: str,
        now: float,
        *,
        rate_limit: float,
        bind_limit: int,
        callback_url: str | None = None,
    ) -> Account:
        account = Account(0, name, now, rate_limit, bind_limit, callback_url, 1)

        def create(conn: sqlite3.Connection) -> Account:
            a = account
            try:
                cur = conn.execute(
                    "INSERT INTO accounts (name, created_at, rate_limit, bind_limit, callback_url,"
                    " webhook_events, inbound_webhooks, inbound_url, webhook_batch_max,"
                    " webhook_batch_wait, disabled) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (a.name, a.created_at, a.rate_limit, a.bind_limit, a.callback_url,
                     int(a.webhook_events), a.inbound_webhooks, a.inbound_url,
                     a.webhook_batch_max, a.webhook_batch_wait, a.disabled),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                raise AccountExists(f"an account named {name!r} exists") from exc
            assert cur.lastrowid is not None
            return dataclasses.replace(a, id=cur.lastrowid)

        return await self._write(create)

    async def update_account(self, account: Account) -> None:
        a = account

        def update(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE accounts SET rate_limit = ?, bind_limit = ?, callback_url = ?,"
                " webhook_secret_version = ?, webhook_events = ?, inbound_webhooks = ?,"
                " inbound_url = ?, webhook_batch_max = ?, webhook_batch_wait = ?, disabled = ?,"
                " priority = ? WHERE id = ?",
                (a.rate_limit, a.bind_limit, a.callback_url, a.webhook_secret_version,
                 int(a.webhook_events), a.inbound_webhooks, a.inbound_url, a.webhook_batch_max,
                 a.webhook_batch_wait, a.disabled, None if a.priority is None else int(a.priority),
                 a.id),
            )  # fmt: skip
            if cur.rowcount == 0:
                raise UnknownAccount(f"no account {account.id}")

        await self._write(update)

    async def get_account(self, account_id: int) -> Account:
        row = await self._readers.run(
            lambda c: c.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
        )
        if row is None:
            raise UnknownAccount(f"no account {account_id}")
        return account_from_row(row)

    async def get_account_by_name(self, name: str) -> Account:
        row = await self._readers.run(
            lambda c: c.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?", (name,)
            ).fetchone()
        )
        if row is None:
            raise UnknownAccount(f"no account named {name!r}")
        return account_from_row(row)

    async def list_accounts(self) -> tuple[Account, ...]:
        rows = await self._readers.run(
            lambda c: c.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id").fetchall()
        )
        return tuple(account_from_row(r) for r in rows)

    @staticmethod
    def _insert_credential(
        conn: sqlite3.Connection, sql: str, params: tuple[object, ...], account_id: int, what: str
    ) -> None:
        if conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
            raise UnknownAccount(f"no account {account_id}")
        try:
            conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise CredentialExists(f"{what} is taken") from exc

    async def add_api_key(self, account_id: int, key_id: str, key_hash: str, now: float) -> None:
        sql = "INSERT INTO api_keys (key_id, account_id, key_hash, created_at) VALUES (?,?,?,?)"
        params = (key_id, account_id, key_hash, now)
        await self._write(
            lambda c: self._insert_credential(c, sql, params, account_id, "this API key id")
        )

    async def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._readers.run(
            lambda c: c.execute(
                "SELECT key_id, account_id, key_hash, created_at, revoked_at FROM api_keys"
                " WHERE key_id = ?",
                (key_id,),
            ).fetchone()
        )
        return None if row is None else ApiKeyRecord(*row)

    async def list_api_keys(self, account_id: int) -> tuple[ApiKeyRecord, ...]:
        rows = await self._readers.run(
            lambda c: c.execute(
                "SELECT key_id, account_id, key_hash, created_at, revoked_at FROM api_keys"
                " WHERE account_id = ? ORDER BY created_at, key_id",
                (account_id,),
            ).fetchall()
        )
        return tuple(ApiKeyRecord(*r) for r in rows)

    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        def revoke(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (now, key_id),
            )
            return cur.rowcount == 1

        return await self._write(revoke)

    async def add_smpp_credential(
        self, account_id: int, system_id: str, password_hash: str, now: float
    ) -> None:
        sql = (
            "INSERT INTO smpp_credentials (system_id, account_id, password_hash, created_at)"
            " VALUES (?,?,?,?)"
        )
        params = (system_id, account_id, password_hash, now)
        what = f"system_id {system_id!r}"
        await self._write(lambda c: self._insert_credential(c, sql, params, account_id, what))

    async def get_smpp_credential(self, system_id: str) -> SmppCredentialRecord | None:
        row = await self._readers.run(
            lambda c: c.execute(
                "SELECT system_id, account_id, password_hash, created_at FROM smpp_credentials"
                " WHERE system_id = ?",
                (system_id,),
            ).fetchone()
        )
        return None if row is None else SmppCredentialRecord(*row)

    async def list_smpp_credentials(self, account_id: int) -> tuple[SmppCredentialRecord, ...]:
        rows = await self._readers.run(
            lambda c: c.execute(
                "SELECT system_id, account_id, password_hash, created_at FROM smpp_credentials"
                " WHERE account_id = ? ORDER BY system_id",
                (account_id,),
            ).fetchall()
        )
        return tuple(SmppCredentialRecord(*r) for r in rows)

    async def remove_smpp_credential(self, system_id: str) -> bool:
        def remove(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM smpp_credentials WHERE system_id = ?", (system_id,))
            return cur.rowcount == 1

        return await self._write(remove)

    # -- messages: the hot path ----------------------------------------------------

    async def accept(
        self,
        messages: Sequence[NewMessage],
        *,
        idempotency: IdempotencyRecord | None = None,
        quota: DailyQuota | None = None,
        charges: Sequence[Charge] | None = None,
    ) -> IdempotencyRecord | None:
        if charges is None:
            group, insert, rows = G_ACCEPT, G_ACCEPT.run, [row_from_message(m) for m in messages]
        else:  # each row also charges its account (trigger cdrs_charge), or fails the call
            group, insert, rows = G_ACCEPT_BILLED, G_ACCEPT_BILLED.run, billed_rows(messages,
                                                                                  charges)
        if idempotency is None and quota is None:
            if rows:
                await self._writer.submit(group, rows, len(rows))
            return None
        record = idempotency
        weight = 0 if quota is None else quota.weight(messages)

        def accept_once(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            if record is not None:
                earlier = read_idempotency(conn, record.account_id, record.key,
                                           record.created_at)
                if earlier is not None:
                    if earlier.request_hash != record.request_hash:
                        raise IdempotencyMismatch(
                            "the Idempotency-Key was used for another request")
                    return earlier
            if quota is not None and rows:  # counted here: see _sqlite_controls
                count_quota(conn, quota, weight)
            if record is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency (account_id, key, request_hash,"
                    " status_code, response, created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
                    (record.account_id, record.key, record.request_hash, record.status_code,
                     record.response, record.created_at, record.expires_at),
                )  # fmt: skip
            try:
                insert(conn, rows)
            except sqlite3.IntegrityError as exc:
                raise accept_error(exc) from exc
            return None

        result: IdempotencyRecord | None = await self._writer.submit(
            None, accept_once, max(1, len(rows))
        )
        return result

    async def get_idempotency(
        self, account_id: int, key: str, now: float
    ) -> IdempotencyRecord | None:
        return await self._readers.run(lambda c: read_idempotency(c, account_id, key, now))

    async def get_message(self, message_id: str, *, account_id: int | None = None) -> Message:
        if len(message_id) > MAX_ID_LENGTH:
            raise MessageNotFound("no such message")
        row = await self._readers.run(
            lambda c: c.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        )
        found = None if row is None else message_from_row(row)
        if found is None or (account_id is not None and found.account_id != account_id):
            raise MessageNotFound("no such message")
        return found

    async def get_messages(self, message_ids: Sequence[str]) -> dict[str, Message]:
        wanted = [i for i in dict.fromkeys(message_ids) if len(i) <= MAX_ID_LENGTH]
        if not wanted:
            return {}

        def read(conn: sqlite3.Connection) -> dict[str, Message]:
            found: dict[str, Message] = {}
            for start in range(0, len(wanted), MAX_IDS_PER_QUERY):
                chunk = wanted[start:start + MAX_IDS_PER_QUERY]
                sql = (f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN"
                       f" ({','.join('?' * len(chunk))})")
                for row in conn.execute(sql, chunk):
                    message = message_from_row(row)
                    found[message.id] = message
            return found

        return await self._readers.run(read)

    async def list_messages(self, query: MessageFilter, cursor: str | None = None) -> MessagePage:
        # The cursor is the id of the page's last message: the customer's own,
        # and nothing about other accounts (a row number would tell how many
        # messages the whole platform took in between).
        where = ["account_id = ?"]
        params: list[object] = [query.account_id]
        if cursor is not None:
            if not (0 < len(cursor) <= MAX_ID_LENGTH and cursor.isascii() and cursor.isalnum()):
                raise InvalidRecord("cursor", "not a cursor this store returned")
            where.append("seq < ?")
            params.append(cursor)
        for column, value in (
            ("status", query.status),
            ("to_addr", query.to),
            ("reference", query.reference),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(int(value) if isinstance(value, Status) else value)
        if query.since is not None:
            where.append("accepted_at >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("accepted_at < ?")
            params.append(query.until)
        sql = (
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(where)}"
            " ORDER BY seq DESC LIMIT ?"
        )
        params.append(query.limit + 1)

        def read(conn: sqlite3.Connection) -> list[Any] | None:
            if cursor is not None:
                found = conn.execute("SELECT seq FROM messages WHERE id = ? AND account_id = ?",
                                     (cursor, query.account_id)).fetchone()  # fmt: skip
                if found is None:
                    return None
                params[1] = found[0]  # seq < ?: the cursor's place, right after account_id
            return conn.execute(sql, params).fetchall()

        rows = await self._readers.run(read)
        if rows is None:
            raise InvalidRecord("cursor", "not a cursor this store returned")
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return MessagePage(
            tuple(message_from_row(r) for r in rows), rows[-1][1] if more and rows else None
        )

    async def get_segments(self, message_id: str) -> tuple[Segment, ...]:
        rows = await self._readers.run(
            lambda c: c.execute(
                "SELECT m.id, s.idx, s.connector, s.upstream_id, s.upstream_key, s.status,"
                " s.error_code, s.updated_at FROM messages m JOIN segments s"
                " ON s.message_seq = m.seq WHERE m.id = ? ORDER BY s.idx",
                (message_id,),
            ).fetchall()
        )
        return tuple(
            Segment(r[0], r[1], r[2], r[3], r[4], Status(r[5]), r[6], r[7]) for r in rows
        )

    async def claim(
        self, limit: int, now: float, lease: float, *, class_limits: Sequence[int] | None = None
    ) -> tuple[Message, ...]:
        check_count("limit", limit)
        if lease <= 0:
            raise InvalidRecord("lease", "must be positive")
        classes = list(Priority)
        caps = [limit] * len(classes)
        if class_limits is not None:
            if len(class_limits) != len(classes):
                raise InvalidRecord("class_limits", f"must give {len(classes)} limits")
            caps = [max(0, min(limit, int(c))) for c in class_limits]
        until = now + lease

        def claim(conn: sqlite3.Connection) -> tuple[Message, ...]:
            live: list[Any] = []
            expired: list[tuple[int, float]] = []
            for cls in classes:
                room = caps[cls] - len(live)
                if room <= 0:
                    continue  # a later class may still have room
                live += self._claim_class(conn, cls, now, room, expired)
            if expired:
                conn.execute(CLAIM_EXPIRE, (json.dumps([seq for seq, _ in expired]), now))
            if live:
                conn.execute(CLAIM_LEASE, (json.dumps([r[_SEQ] for r in live]), now, until))
            # What the rows now hold: queued, first queued_at kept, attempt + 1.
            return tuple(claimed_message_from_row(r, now) for r in live)

        return await self._write(claim)

    def _claim_class(self, conn: sqlite3.Connection, cls: Priority, now: float, room: int,
                     expired: list[tuple[int, float]]) -> list[Any]:
        """Up to ``room`` live ready rows of class ``cls``, the accounts taking
        turns (``_fair``: deficit round robin over segments), each account's
        rows read as the turns ask for them. Ready rows past their validity go
        to ``expired`` instead (not counted)."""
        accounts = [r[0] for r in conn.execute(CLAIM_ACCOUNTS, (int(cls),))]
        claim = self._fairness.start(cls, accounts, room)
        taken: dict[int, list[Any]] = {}
        after: dict[int, tuple[float, int]] = {}  # the last row used: (due_at, seq)
        while (request := claim.request) is not None:
            account, want = request
            rows = conn.execute(CLAIM_ACCOUNT_SELECT, (
                int(cls), account, now, *after.get(account, (-math.inf, -1)), want)).fetchall()
            verdicts = claim.offer([(r[_SEGMENTS], r[_EXPIRES_AT] <= now) for r in rows])
            for r, verdict in zip(rows, verdicts, strict=False):  # the rows used
                if verdict is Verdict.EXPIRED:
                    expired.append((r[_SEQ], now))
                else:
                    taken.setdefault(account, []).append(r)
            if verdicts:
                used = rows[len(verdicts) - 1]
                after[account] = (used[MESSAGE_WIDTH], used[_SEQ])
        return claim.interleave(taken)

    async def reschedule_many(self, items: Sequence[Reschedule]) -> None:
        if items:
            rows = [(r.message_id, r.attempt, r.ready_at, 1 if r.failed else 0,
                     1 if r.release else 0) for r in items]  # fmt: skip
            await self._writer.submit(G_RESCHEDULE, rows, len(rows))

    async def set_segments(self, message_id: str, attempt: int, segments: int) -> bool:
        if not 1 <= segments <= MAX_SEGMENTS:
            raise InvalidRecord("segments", f"must be 1..{MAX_SEGMENTS}")
        params = (message_id, attempt, segments)

        def resize(conn: sqlite3.Connection) -> bool:
            conn.execute(SET_SEGMENTS_FORGET, params)
            return conn.execute(SET_SEGMENTS, params).rowcount == 1

        return await self._write(resize)

    async def update_statuses(self, updates: Sequence[StatusUpdate]) -> None:
        final: list[tuple[object, ...]] = []
        sent: list[tuple[object, ...]] = []
        queued: list[tuple[object, ...]] = []
        for u in updates:
            if u.status >= Status.DELIVERED:
                final.append((u.message_id, u.status, u.at, u.error_code, u.permanent))
            elif u.status is Status.SENT:
                sent.append((u.message_id, u.at))
            elif u.status is Status.QUEUED:
                queued.append((u.message_id, u.at))
            else:
                raise InvalidRecord("status", "a message cannot be moved to accepted")
        futures = [
            self._writer.submit(group, rows, len(rows))
            for group, rows in ((G_QUEUED, queued), (G_SENT, sent), (G_FINAL, final))
            if rows
        ]
        if futures:
            await asyncio.gather(*futures)

    def record_segments(self, segments: Sequence[SegmentRecord]) -> Awaitable[None]:
        rows = []
        for s in segments:
            if not 0 <= s.index < MAX_SEGMENTS:
                raise InvalidRecord("index", f"must be 0..{MAX_SEGMENTS - 1}")
            check_text("connector", s.connector, MAX_CONNECTOR_LENGTH)
            check_text("upstream_id", s.upstream_id, MAX_UPSTREAM_ID_LENGTH)
            check_text("upstream_key", s.upstream_key, MAX_UPSTREAM_ID_LENGTH)
            rows.append((s.message_id, s.index, s.connector, s.upstream_id, s.upstream_key, s.at,
                         s.check_at))
        return self._submit_now(G_SEGMENT, rows)

    def apply_receipts(self, receipts: Sequence[ReceiptUpdate]) -> Awaitable[None]:
        rows = []
        for r in receipts:
            if not r.status.final:
                continue  # ENROUTE / ACCEPTD: a segment is already "sent"; nothing to keep
            check_text("connector", r.connector, MAX_CONNECTOR_LENGTH)
            check_text("upstream_key", r.upstream_key, MAX_UPSTREAM_ID_LENGTH)
            rows.append((r.connector, r.upstream_key, r.status, r.error_code, r.at))
        return self._submit_now(G_RECEIPT, rows)

    def _submit_now(self, group: Group, rows: Sequence[tuple[object, ...]]) -> Awaitable[None]:
        """Queue ``rows`` for the writer at once (not when awaited): writes queued in
        one loop turn commit together, in the order of their groups."""
        if rows:
            return self._writer.submit(group, rows, len(rows))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def expire_unsent(self, now: float, limit: int) -> int:
        check_count("limit", limit)

        def expire(conn: sqlite3.Connection) -> int:
            # due_at <= now: not under a live lease (and not a test message,
            # whose due_at is NULL); the partial index messages_claim serves it.
            return conn.execute(
                f"UPDATE messages SET status = {int(Status.EXPIRED)}, done_at = ?1 WHERE seq IN"
                f" (SELECT seq FROM messages WHERE status < {int(Status.SENT)} AND due_at <= ?1"
                " AND expires_at <= ?1 LIMIT ?2)",
                (now, limit),
            ).rowcount

        return await self._write(expire)

    async def expire_sent(self, cutoff: float, now: float, limit: int) -> int:
        check_count("limit", limit)

        def expire(conn: sqlite3.Connection) -> int:
            return conn.execute(
                f"UPDATE messages SET status = {int(Status.EXPIRED)}, done_at = ? WHERE seq IN"
                f" (SELECT seq FROM messages WHERE status = {int(Status.SENT)}"
                " AND expires_at <= ? ORDER BY expires_at LIMIT ?)",
                (now, cutoff, limit),
            ).rowcount

        return await self._write(expire)

    async def due_receipt_checks(
        self, now: float, limit: int, *, exclude: Collection[str] = ()
    ) -> tuple[ReceiptCheck, ...]:
        check_count("limit", limit)
        names = sorted(set(exclude))
        sql = DUE_CHECKS
        if names:
            marks = ",".join(f"?{n}" for n in range(3, 3 + len(names)))  # after ?1, ?2
            sql = sql.replace(" ORDER BY", f" AND s.connector NOT IN ({marks}) ORDER BY")
        params = (now, limit, *names)
        rows = await self._readers.run(lambda c: c.execute(sql, params).fetchall())
        return tuple(
            ReceiptCheck(message_id, index, connector, upstream_id, upstream_key, sender, checks,
                         STATUS_OF_CODE[status])
            for message_id, index, connector, upstream_id, upstream_key, sender, checks, status
            in rows
        )

    async def settle_receipt_checks(self, results: Sequence[CheckResult]) -> None:
        ends = [(r.message_id, r.index, r.status, r.error_code, r.at)
                for r in results if r.status is not None]  # fmt: skip
        again = [(r.message_id, r.index, r.check_at) for r in results if r.status is None]
        if not ends and not again:
            return

        def settle(conn: sqlite3.Connection) -> None:
            conn.executemany(CHECK_END, ends)
            if ends:
                parts_ended(conn, [seq for (seq,) in conn.execute(
                    "SELECT seq FROM messages WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps([e[0] for e in ends]),))])
            conn.executemany(CHECK_AGAIN, again)

        await self._write(settle)

    # -- a customer's changes to a message not yet sent (_sqlite_changes) -------

    async def cancel(self, message_id: str, now: float, *, account_id: int) -> ChangeResult:
        return await self._write(lambda c: cancel_in(c, message_id, account_id, now))

    async def cancel_matching(
        self, account_id: int, now: float, *, limit: int, to: str | None = None,
        sender: str | None = None, reference: str | None = None, tag: str | None = None,
    ) -> tuple[str, ...]:
        check_count("limit", limit)
        match = {"to": to, "sender": sender, "reference": reference, "tag": tag}
        return await self._write(lambda c: cancel_matching_in(c, account_id, now, limit, match))

    async def replace(
        self, message_id: str, change: Replacement, now: float, *, account_id: int
    ) -> ChangeResult:
        return await self._write(lambda c: replace_in(c, message_id, account_id, change, now))

    async def add_inbound(
        self, message: InboundMessage, *, opt_out: OptOutChange | None = None
    ) -> None:
        m = message
        row = (m.id, m.account_id, m.to, m.sender, m.body, m.encoding, m.data_coding,
               m.connector, m.received_at)  # fmt: skip
        if opt_out is None:
            await self._writer.submit(G_INBOUND, (row,))
            return
        change = opt_out

        def add(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(INSERT_INBOUND, row)
            except sqlite3.IntegrityError as exc:
                raise duplicate_id(exc) from exc
            apply_opt_outs(conn, m.account_id, (change,))

        await self._write(add)

    async def get_inbound(self, inbound_id: str) -> InboundMessage:
        row = await self._readers.run(
            lambda c: c.execute(
                f"SELECT {INBOUND_COLUMNS} FROM inbound WHERE id = ?",
                (inbound_id,),
            ).fetchone()
        )
        if row is None:
            raise MessageNotFound("no such inbound message")
        return inbound_from_row(row)

    # -- outbox and housekeeping ---------------------------------------------------

    async def claim_outbox(
        self,
        channel: Channel,
        now: float,
        lease: float,
        limit: int,
        *,
        account_id: int | None = None,
    ) -> tuple[OutboxEvent, ...]:
        check_count("limit", limit)
        if lease <= 0:
            raise InvalidRecord("lease", "must be positive")
        sql = CLAIM_OUTBOX_SELECT
        params: tuple[object, ...] = (channel, now)
        if account_id is not None:
            sql += " AND o.account_id = ?"
            params += (account_id,)
        sql += " ORDER BY o.next_attempt_at LIMIT ?"
        params += (limit,)
        until = now + lease

        def claim(conn: sqlite3.Connection) -> tuple[OutboxEvent, ...]:
            rows = conn.execute(sql, params).fetchall()
            if rows:
                conn.execute(OUTBOX_LEASE, (until, json.dumps([r[0] for r in rows])))
            return tuple(claimed_event_from_row(r, until) for r in rows)

        return await self._write(claim)

    async def complete_outbox(
        self, event_ids: Sequence[int], *, answers: Mapping[int, WebhookAnswer] | None = None
    ) -> None:
        if answers and (answered := {i: answers[i] for i in event_ids if i in answers}):
            # Events that failed before: their last attempt is recorded as they go.
            writes = [self._writer.submit(G_OUTBOX_DONE_ANSWERED, done_rows(answered),
                                          len(answered))]
            rest = [(i,) for i in event_ids if i not in answered]
            if rest:
                writes.append(self._writer.submit(G_OUTBOX_DONE, rest, len(rest)))
            await asyncio.gather(*writes)
            return
        if event_ids:
            rows = [(i,) for i in event_ids]
            await self._writer.submit(G_OUTBOX_DONE, rows, len(rows))

    async def retry_outbox(self, event_id: int, next_attempt_at: float | None, error: str, *,
                           answer: WebhookAnswer | None = None) -> None:
        row = (event_id, next_attempt_at, error[:MAX_ERROR_LENGTH])
        if answer is None:
            await self._writer.submit(G_OUTBOX_RETRY, (row,))
        else:  # the attempt's record rides in the same row
            rows = ((*row, event_id, *answer_text(answer), answer.at),)
            await self._writer.submit(G_OUTBOX_RETRY_ANSWERED, rows)

    async def failed_deliveries(
        self, message_id: str, account_id: int, channel: Channel = Channel.WEBHOOK
    ) -> tuple[OutboxEvent, ...]:
        params = (message_id, account_id, int(channel))

        def read(conn: sqlite3.Connection) -> tuple[OutboxEvent, ...]:
            return tuple(event_from_row(r) for r in conn.execute(FAILED_DELIVERIES, params))

        return await self._readers.run(read)

    async def backlog(self, now: float) -> Backlog:
        def count(conn: sqlite3.Connection) -> Backlog:
            def one(sql: str, *params: object) -> int:
                return int(conn.execute(sql, params).fetchone()[0])

            return Backlog(
                unsent=one(BACKLOG_UNSENT),
                due=one(BACKLOG_DUE, now),
                webhooks=one(BACKLOG_OUTBOX, int(Channel.WEBHOOK)),
                smpp_events=one(BACKLOG_OUTBOX, int(Channel.SMPP)),
            )

        return await self._readers.run(count)

    async def purge(self, now: float, *, parked_before: float, dead_before: float) -> int:
        def purge(conn: sqlite3.Connection) -> int:
            deleted = conn.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,)).rowcount
            deleted += conn.execute(
                "DELETE FROM parked_receipts WHERE received_at < ?", (parked_before,)
            ).rowcount
            deleted += conn.execute(
                "DELETE FROM outbox WHERE next_attempt_at IS NULL AND created_at < ?",
                (dead_before,),
            ).rowcount
            deleted += conn.execute(
                "UPDATE messages SET body = X'' WHERE seq IN (SELECT seq FROM messages"
                f" INDEXED BY messages_secret_text WHERE {SECRET_TEXT_SQL} AND length(body) > 0"
                f" AND status >= {int(Status.DELIVERED)})"
            ).rowcount
            deleted += conn.execute(ERASE_CHAT_SECRETS_SQLITE).rowcount  # final chains' codes
            deleted += conn.execute(PURGE_ATTEMPTS, (dead_before,)).rowcount
            return deleted

        return await self._write(purge)

    # -- number tables -----------------------------------------------------------------

    @staticmethod
    def _next_generation(conn: sqlite3.Connection) -> int:
        conn.execute("UPDATE number_tables_generation SET generation = generation + 1")
        row = conn.execute("SELECT generation FROM number_tables_generation").fetchone()
        return int(row[0])

    async def put_number_table(self, table: NumberTable) -> int:
        def put(conn: sqlite3.Connection) -> int:
            generation = self._next_generation(conn)
            conn.execute(
                "INSERT INTO number_tables (kind, generation, imported_at, entries, data)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind) DO UPDATE SET"
                " generation = excluded.generation, imported_at = excluded.imported_at,"
                " entries = excluded.entries, data = excluded.data",
                (table.kind.value, generation, table.imported_at, table.entries, table.data),
            )
            return generation

        return await self._write(put)

    async def remove_number_table(self, kind: NumberTableKind) -> int:
        def remove(conn: sqlite3.Connection) -> int:
            if conn.execute("DELETE FROM number_tables WHERE kind = ?", (kind.value,)).rowcount:
                return self._next_generation(conn)
            return int(conn.execute("SELECT generation FROM number_tables_generation")
                       .fetchone()[0])  # fmt: skip

        return await self._write(remove)

    async def get_number_table(self, kind: NumberTableKind) -> NumberTable | None:
        row = await self._readers.run(lambda c: c.execute(
            "SELECT data, entries, imported_at, generation FROM number_tables WHERE kind = ?",
            (kind.value,),
        ).fetchone())  # fmt: skip
        if row is None:
            return None
        return NumberTable(kind, bytes(row[0]), row[1], row[2], row[3])

    async def number_tables_generation(self) -> int:
        row = await self._readers.run(
            lambda c: c.execute("SELECT generation FROM number_tables_generation").fetchone()
        )
        return int(row[0])
