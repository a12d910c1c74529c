"""The embedded store: SQLite in WAL mode, in a data directory.

One file, ``<data_dir>/herald.db``. Writes go through a single writer thread
that group-commits them (see :mod:`herald.store._writer`); reads run on a small
pool of read-only connections, which WAL lets proceed while the writer writes.

Durability: ``synchronous=NORMAL`` by default. In WAL mode a commit appends
the transaction to the WAL file with ``write()`` before ``COMMIT`` returns, and
only checkpoints are ``fsync``-ed, so a committed transaction survives the
death of the process (SIGKILL, OOM kill, a crash: the data is in the OS page
cache) but the last transactions may be lost if the *machine* loses power.
``synchronous=FULL`` also ``fsync``-s the WAL at every commit and survives
power loss, at the price of one fsync per batch (``bench/store.py`` measures
both on the machine at hand; group commit amortises the fsync over every
write of the batch). herald's promise ("an acknowledged message is never
lost when the process is killed") is the first; choose FULL when the host
has no battery-backed write cache and power loss matters more than latency.

Open with :meth:`SQLiteStore.open`; close with ``await store.aclose()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from herald.store._errors import (
    AccountExists,
    CredentialExists,
    DuplicateMessageId,
    IdempotencyMismatch,
    InvalidRecord,
    MessageNotFound,
    SchemaError,
    StoreError,
    StoreUnavailable,
    UnknownAccount,
)
from herald.store._model import (
    MAX_ID_LENGTH,
    MAX_SEGMENTS,
    Account,
    ApiKeyRecord,
    Channel,
    EventKind,
    IdempotencyRecord,
    InboundMessage,
    Message,
    MessageFilter,
    MessagePage,
    NewMessage,
    OutboxEvent,
    Segment,
    SmppCredentialRecord,
    Source,
    Status,
)
from herald.store._schema import MIGRATIONS
from herald.store._writer import Group, GroupCommitWriter

__all__ = ["DB_FILENAME", "SQLiteConfig", "SQLiteStore"]

DB_FILENAME = "herald.db"
#: SMPP 3.4 §4.4.2: message_id in submit_sm_resp is a C-string of at most 65 octets.
MAX_UPSTREAM_ID_LENGTH = 65
#: Connector names come from the config file; this bounds what is indexed.
MAX_CONNECTOR_LENGTH = 64
#: ``retry_outbox`` keeps the start of a delivery error for the operator.
MAX_ERROR_LENGTH = 500
#: The largest ``claim`` / ``claim_outbox`` / ``expire_sent`` in one call.
MAX_CLAIM = 10_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SQLiteConfig:
    """Settings of the SQLite store; every field has a working default.

    - ``data_dir``: directory holding ``herald.db`` (created mode 0700).
    - ``synchronous``: ``"NORMAL"`` survives a process crash, ``"FULL"`` also
      power loss (see the module docstring).
    - ``commit_interval``: seconds the writer waits for more writes after the
      first of a batch, 0 to commit as soon as the previous commit is done
      (writes that arrive meanwhile form the next batch).
    - ``max_batch``: rows per transaction at most.
    - ``max_pending``: writes waiting for the writer before new ones get
      :class:`StoreBusy` (memory bound under overload).
    - ``readers``: read connections (threads) for queries.
    - ``busy_timeout``: seconds to wait for another process's lock (the CLI
      writing while ``herald serve`` runs) before :class:`StoreUnavailable`.
    - ``create``: create the directory and database if missing; if ``False``
      a missing database raises :class:`SchemaError`.
    """

    data_dir: Path = Path("herald-data")
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    commit_interval: float = 0.0
    max_batch: int = 4096
    max_pending: int = 100_000
    readers: int = 2
    busy_timeout: float = 5.0
    create: bool = True

    def __post_init__(self) -> None:
        if self.synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        if not 0 <= self.commit_interval <= 1:
            raise ValueError("commit_interval must be 0..1 seconds")
        if not 1 <= self.max_batch <= 1_000_000:
            raise ValueError("max_batch must be 1..1,000,000 rows")
        if self.max_pending < 1:
            raise ValueError("max_pending must be positive")
        if not 1 <= self.readers <= 64:
            raise ValueError("readers must be 1..64")
        if self.busy_timeout < 0:
            raise ValueError("busy_timeout must not be negative")

    @property
    def path(self) -> Path:
        return self.data_dir / DB_FILENAME


# -- rows <-> values ---------------------------------------------------------------

_MESSAGE_COLUMNS = (
    "seq, id, account_id, source, to_addr, from_addr, body, encoding, data_coding, udhi,"
    " segments, reference, metadata, callback_url, registered_delivery, test, send_at,"
    " expires_at, status, error_code, error_permanent, accepted_at, queued_at, sent_at,"
    " done_at, attempt"
)


def _message(row: Sequence[Any]) -> Message:
    return Message(
        id=row[1],
        account_id=row[2],
        source=Source(row[3]),
        to=row[4],
        sender=row[5],
        body=row[6],
        encoding=row[7],
        data_coding=row[8],
        udhi=bool(row[9]),
        segments=row[10],
        reference=row[11],
        metadata=row[12],
        callback_url=row[13],
        registered_delivery=row[14],
        test=bool(row[15]),
        send_at=row[16],
        expires_at=row[17],
        status=Status(row[18]),
        error_code=row[19],
        error_permanent=bool(row[20]),
        accepted_at=row[21],
        queued_at=row[22],
        sent_at=row[23],
        done_at=row[24],
        attempt=row[25],
    )


_ACCOUNT_COLUMNS = (
    "id, name, created_at, rate_limit, bind_limit, callback_url, webhook_secret_version"
)


def _account(row: Sequence[Any]) -> Account:
    return Account(*row)


_OUTBOX_COLUMNS = (
    "id, channel, kind, account_id, subject_id, status, url, created_at, attempts,"
    " next_attempt_at, last_error"
)


def _event(row: Sequence[Any]) -> OutboxEvent:
    return OutboxEvent(
        id=row[0],
        channel=Channel(row[1]),
        kind=EventKind(row[2]),
        account_id=row[3],
        subject_id=row[4],
        status=None if row[5] is None else Status(row[5]),
        url=row[6],
        created_at=row[7],
        attempts=row[8],
        next_attempt_at=row[9],
        last_error=row[10],
    )


def _message_row(m: NewMessage) -> tuple[object, ...]:
    due = None if m.test else (m.accepted_at if m.send_at is None else m.send_at)
    return (
        m.id, m.account_id, m.source, m.to, m.sender, m.body, m.encoding, m.data_coding,
        m.udhi, m.segments, m.reference, m.metadata, m.callback_url,
        m.registered_delivery, m.test, m.send_at, m.expires_at, m.accepted_at, due,
    )  # fmt: skip


# -- statements ----------------------------------------------------------------------

_INSERT_MESSAGE = (
    "INSERT INTO messages (id, account_id, source, to_addr, from_addr, body, encoding,"
    " data_coding, udhi, segments, reference, metadata, callback_url, registered_delivery,"
    " test, send_at, expires_at, status, accepted_at, due_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?)"
)
_INSERT_INBOUND = (
    "INSERT INTO inbound (id, account_id, to_addr, from_addr, body, encoding, data_coding,"
    " connector, received_at) VALUES (?,?,?,?,?,?,?,?,?)"
)
# Segment beyond the message's count: ignored (it would make "all delivered" lie).
_RECORD_SEGMENT = (
    "INSERT INTO segments (message_seq, idx, connector, upstream_id, upstream_key, status,"
    " updated_at) SELECT seq, ?2, ?3, ?4, ?5, 2, ?6 FROM messages WHERE id = ?1 AND ?2 < segments"
    " ON CONFLICT (message_seq, idx) DO UPDATE SET connector = excluded.connector,"
    " upstream_id = excluded.upstream_id, upstream_key = excluded.upstream_key,"
    " updated_at = excluded.updated_at"
)
_RECEIPT_APPLY = (
    "UPDATE segments SET status = ?3, error_code = ?4, updated_at = ?5"
    " WHERE connector = ?1 AND upstream_key = ?2 AND status < 10"
)
_RECEIPT_PARK = (
    "INSERT INTO parked_receipts (connector, upstream_key, status, error_code, received_at)"
    " SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS"
    " (SELECT 1 FROM segments WHERE connector = ?1 AND upstream_key = ?2)"
)
_SET_QUEUED = (
    "UPDATE messages SET status = 1, queued_at = COALESCE(queued_at, ?2)"
    " WHERE id = ?1 AND status < 1"
)
_SET_SENT = "UPDATE messages SET status = 2, sent_at = ?2 WHERE id = ?1 AND status < 2"
_SET_FINAL = (
    "UPDATE messages SET status = ?2, done_at = ?3, error_code = ?4, error_permanent = ?5"
    " WHERE id = ?1 AND status < 10"
)
_RESCHEDULE = "UPDATE messages SET due_at = ?3 WHERE id = ?1 AND attempt = ?2 AND status < 2"
_CLAIM_SELECT = (
    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE status < 2 AND due_at <= ?"
    " ORDER BY due_at LIMIT ?"
)
_CLAIM_EXPIRE = "UPDATE messages SET status = 12, done_at = ?2 WHERE seq = ?1 AND status < 2"
_CLAIM_LEASE = (
    "UPDATE messages SET status = 1, queued_at = COALESCE(queued_at, ?2), due_at = ?3,"
    " attempt = attempt + 1 WHERE seq = ?1"
)
_OUTBOX_DONE = "DELETE FROM outbox WHERE id = ?"
_OUTBOX_RETRY = "UPDATE outbox SET next_attempt_at = ?2, last_error = ?3 WHERE id = ?1"


def _duplicate_id(exc: sqlite3.IntegrityError) -> StoreError:
    err = DuplicateMessageId("a message with this id exists")
    err.__cause__ = exc
    return err


def _never(exc: sqlite3.IntegrityError) -> StoreError:
    err = StoreUnavailable(f"unexpected constraint failure: {exc}")
    err.__cause__ = exc
    return err


_G_ACCEPT = Group("accept", 0, (_INSERT_MESSAGE,), _duplicate_id)
_G_INBOUND = Group("inbound", 1, (_INSERT_INBOUND,), _duplicate_id)
_G_QUEUED = Group("queued", 2, (_SET_QUEUED,), _never)
_G_SEGMENT = Group("segment", 3, (_RECORD_SEGMENT,), _never)
_G_RECEIPT = Group("receipt", 4, (_RECEIPT_APPLY, _RECEIPT_PARK), _never)
_G_SENT = Group("sent", 5, (_SET_SENT,), _never)
_G_FINAL = Group("final", 6, (_SET_FINAL,), _never)
_G_RESCHEDULE = Group("reschedule", 7, (_RESCHEDULE,), _never)
_G_OUTBOX_DONE = Group("outbox-done", 8, (_OUTBOX_DONE,), _never)
_G_OUTBOX_RETRY = Group("outbox-retry", 9, (_OUTBOX_RETRY,), _never)


def _check_text(name: str, value: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise InvalidRecord(name, f"must be 1..{limit} characters")


def _check_count(name: str, value: int) -> None:
    if not 1 <= value <= MAX_CLAIM:
        raise InvalidRecord(name, f"must be 1..{MAX_CLAIM}")


# -- opening -------------------------------------------------------------------------


def _connect(path: Path, config: SQLiteConfig, *, read_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path,
        isolation_level=None,  # we issue BEGIN / COMMIT ourselves
        check_same_thread=False,
        cached_statements=256,
        timeout=config.busy_timeout,
    )
    conn.execute("PRAGMA synchronous = " + config.synchronous)
    conn.execute("PRAGMA temp_store = MEMORY")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA cache_size = -32768")  # KiB: 32 MiB of page cache for the writer
    return conn


def _migrate(path: Path, config: SQLiteConfig, migrations: Sequence[str] = MIGRATIONS) -> None:
    try:
        conn = _connect(path, config)
    except sqlite3.OperationalError as exc:  # cannot open, locked, no space
        raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:  # a file, but not SQLite
        raise SchemaError(f"{path} is not a herald database: {exc}") from exc
    try:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise SchemaError(f"{path} is not a herald database: {exc}") from exc
        if mode != "wal":
            raise StoreUnavailable(f"{path}: cannot use WAL mode (got {mode!r})")
        if version > len(migrations):
            raise SchemaError(
                f"{path} has schema version {version}; this herald knows up to {len(migrations)}"
            )
        for number in range(version, len(migrations)):
            script = migrations[number]
            try:
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number + 1};\nCOMMIT;"
                )
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise SchemaError(f"{path}: migration {number + 1} failed: {exc}") from exc
    finally:
        conn.close()


class _Readers:
    """Read-only connections, one per pool thread."""

    def __init__(self, path: Path, config: SQLiteConfig) -> None:
        self._path = path
        self._config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._pool = ThreadPoolExecutor(config.readers, thread_name_prefix="herald-store-read")

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = _connect(self._path, self._config, read_only=True)
                self._local.conn = conn
                with self._lock:
                    self._conns.append(conn)
            return fn(conn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database error: {exc}") from exc

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


class SQLiteStore:
    """The :class:`~herald.store.Store` on SQLite. See the module docstring."""

    def __init__(self, config: SQLiteConfig, writer: GroupCommitWriter, readers: _Readers):
        self.config = config
        self._writer = writer
        self._readers = readers

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
        _migrate(path, config)
        writer = GroupCommitWriter(
            lambda: _connect(path, config),
            max_batch=config.max_batch,
            max_pending=config.max_pending,
            commit_interval=config.commit_interval,
        )
        return cls(config, writer, _Readers(path, config))

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
        def create(conn: sqlite3.Connection) -> Account:
            try:
                cur = conn.execute(
                    "INSERT INTO accounts (name, created_at, rate_limit, bind_limit, callback_url)"
                    " VALUES (?,?,?,?,?)",
                    (name, now, rate_limit, bind_limit, callback_url),
                )
            except sqlite3.IntegrityError as exc:
                raise AccountExists(f"an account named {name!r} exists") from exc
            assert cur.lastrowid is not None
            return Account(cur.lastrowid, name, now, rate_limit, bind_limit, callback_url, 1)

        return await self._write(create)

    async def update_account(self, account: Account) -> None:
        def update(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE accounts SET rate_limit = ?, bind_limit = ?, callback_url = ?,"
                " webhook_secret_version = ? WHERE id = ?",
                (account.rate_limit, account.bind_limit, account.callback_url,
                 account.webhook_secret_version, account.id),
            )  # fmt: skip
            if cur.rowcount == 0:
                raise UnknownAccount(f"no account {account.id}")

        await self._write(update)

    async def get_account(self, account_id: int) -> Account:
        row = await self._readers.run(
            lambda c: c.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
        )
        if row is None:
            raise UnknownAccount(f"no account {account_id}")
        return _account(row)

    async def get_account_by_name(self, name: str) -> Account:
        row = await self._readers.run(
            lambda c: c.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE name = ?", (name,)
            ).fetchone()
        )
        if row is None:
            raise UnknownAccount(f"no account named {name!r}")
        return _account(row)

    async def list_accounts(self) -> tuple[Account, ...]:
        rows = await self._readers.run(
            lambda c: c.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY id").fetchall()
        )
        return tuple(_account(r) for r in rows)

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
    ) -> IdempotencyRecord | None:
        rows = [_message_row(m) for m in messages]
        if idempotency is None:
            if rows:
                await self._writer.submit(_G_ACCEPT, rows, len(rows))
            return None
        record = idempotency

        def accept_once(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            earlier = _idempotency(conn, record.account_id, record.key, record.created_at)
            if earlier is not None:
                if earlier.request_hash != record.request_hash:
                    raise IdempotencyMismatch("the Idempotency-Key was used for another request")
                return earlier
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (account_id, key, request_hash, status_code,"
                " response, created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
                (record.account_id, record.key, record.request_hash, record.status_code,
                 record.response, record.created_at, record.expires_at),
            )  # fmt: skip
            try:
                conn.executemany(_INSERT_MESSAGE, rows)
            except sqlite3.IntegrityError as exc:
                raise _duplicate_id(exc) from exc
            return None

        result: IdempotencyRecord | None = await self._writer.submit(
            None, accept_once, max(1, len(rows))
        )
        return result

    async def get_idempotency(
        self, account_id: int, key: str, now: float
    ) -> IdempotencyRecord | None:
        return await self._readers.run(lambda c: _idempotency(c, account_id, key, now))

    async def get_message(self, message_id: str, *, account_id: int | None = None) -> Message:
        if len(message_id) > MAX_ID_LENGTH:
            raise MessageNotFound("no such message")
        row = await self._readers.run(
            lambda c: c.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        )
        if row is None or (account_id is not None and row[2] != account_id):
            raise MessageNotFound("no such message")
        return _message(row)

    async def list_messages(self, query: MessageFilter, cursor: str | None = None) -> MessagePage:
        where = ["account_id = ?"]
        params: list[object] = [query.account_id]
        if cursor is not None:
            if not (cursor.isdigit() and len(cursor) <= 19):
                raise InvalidRecord("cursor", "not a cursor this store returned")
            where.append("seq < ?")
            params.append(int(cursor))
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
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(where)}"
            " ORDER BY seq DESC LIMIT ?"
        )
        params.append(query.limit + 1)
        rows = await self._readers.run(lambda c: c.execute(sql, params).fetchall())
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return MessagePage(
            tuple(_message(r) for r in rows), str(rows[-1][0]) if more and rows else None
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

    async def claim(self, limit: int, now: float, lease: float) -> tuple[Message, ...]:
        _check_count("limit", limit)
        if lease <= 0:
            raise InvalidRecord("lease", "must be positive")
        until = now + lease

        def claim(conn: sqlite3.Connection) -> tuple[Message, ...]:
            rows = conn.execute(_CLAIM_SELECT, (now, limit)).fetchall()
            expired = [(r[0], now) for r in rows if r[17] <= now]
            live = [r for r in rows if r[17] > now]
            if expired:
                conn.executemany(_CLAIM_EXPIRE, expired)
            if live:
                conn.executemany(_CLAIM_LEASE, [(r[0], now, until) for r in live])
            # Read back what the rows now hold: queued, first queued_at kept, attempt + 1.
            return tuple(
                _message((*r[:18], 1, *r[19:22], now if r[22] is None else r[22], *r[23:25],
                          r[25] + 1))
                for r in live
            )  # fmt: skip

        return await self._write(claim)

    async def reschedule(self, message_id: str, attempt: int, ready_at: float) -> None:
        await self._writer.submit(_G_RESCHEDULE, ((message_id, attempt, ready_at),))

    async def update_status(
        self,
        message_id: str,
        status: Status,
        now: float,
        *,
        error_code: int | None = None,
        permanent: bool = False,
    ) -> None:
        if status >= Status.DELIVERED:
            row: tuple[object, ...] = (message_id, status, now, error_code, permanent)
            await self._writer.submit(_G_FINAL, (row,))
        elif status is Status.SENT:
            await self._writer.submit(_G_SENT, ((message_id, now),))
        elif status is Status.QUEUED:
            await self._writer.submit(_G_QUEUED, ((message_id, now),))
        else:
            raise InvalidRecord("status", "a message cannot be moved to accepted")

    async def record_segment(
        self,
        message_id: str,
        index: int,
        connector: str,
        upstream_id: str,
        upstream_key: str,
        now: float,
    ) -> None:
        if not 0 <= index < MAX_SEGMENTS:
            raise InvalidRecord("index", f"must be 0..{MAX_SEGMENTS - 1}")
        _check_text("connector", connector, MAX_CONNECTOR_LENGTH)
        _check_text("upstream_id", upstream_id, MAX_UPSTREAM_ID_LENGTH)
        _check_text("upstream_key", upstream_key, MAX_UPSTREAM_ID_LENGTH)
        row = (message_id, index, connector, upstream_id, upstream_key, now)
        await self._writer.submit(_G_SEGMENT, (row,))

    async def apply_receipt(
        self,
        connector: str,
        upstream_key: str,
        status: Status,
        now: float,
        *,
        error_code: int | None = None,
    ) -> None:
        if not status.final:
            return  # ENROUTE / ACCEPTD: a segment is already "sent"; nothing to keep
        _check_text("connector", connector, MAX_CONNECTOR_LENGTH)
        _check_text("upstream_key", upstream_key, MAX_UPSTREAM_ID_LENGTH)
        row = (connector, upstream_key, status, error_code, now)
        await self._writer.submit(_G_RECEIPT, (row,))

    async def expire_sent(self, cutoff: float, now: float, limit: int) -> int:
        _check_count("limit", limit)

        def expire(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE messages SET status = 12, done_at = ? WHERE seq IN (SELECT seq FROM"
                " messages WHERE status = 2 AND expires_at <= ? ORDER BY expires_at LIMIT ?)",
                (now, cutoff, limit),
            ).rowcount

        return await self._write(expire)

    async def add_inbound(self, message: InboundMessage) -> None:
        m = message
        row = (m.id, m.account_id, m.to, m.sender, m.body, m.encoding, m.data_coding,
               m.connector, m.received_at)  # fmt: skip
        await self._writer.submit(_G_INBOUND, (row,))

    async def get_inbound(self, inbound_id: str) -> InboundMessage:
        row = await self._readers.run(
            lambda c: c.execute(
                "SELECT id, account_id, to_addr, from_addr, body, encoding, data_coding,"
                " connector, received_at FROM inbound WHERE id = ?",
                (inbound_id,),
            ).fetchone()
        )
        if row is None:
            raise MessageNotFound("no such inbound message")
        return InboundMessage(*row)

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
        _check_count("limit", limit)
        if lease <= 0:
            raise InvalidRecord("lease", "must be positive")
        sql = f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE channel = ? AND next_attempt_at <= ?"
        params: tuple[object, ...] = (channel, now)
        if account_id is not None:
            sql += " AND account_id = ?"
            params += (account_id,)
        sql += " ORDER BY next_attempt_at LIMIT ?"
        params += (limit,)
        until = now + lease

        def claim(conn: sqlite3.Connection) -> tuple[OutboxEvent, ...]:
            rows = conn.execute(sql, params).fetchall()
            conn.executemany(
                "UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1 WHERE id = ?",
                [(until, r[0]) for r in rows],
            )
            return tuple(_event((*r[:8], r[8] + 1, until, r[10])) for r in rows)

        return await self._write(claim)

    async def complete_outbox(self, event_ids: Sequence[int]) -> None:
        if event_ids:
            rows = [(i,) for i in event_ids]
            await self._writer.submit(_G_OUTBOX_DONE, rows, len(rows))

    async def retry_outbox(self, event_id: int, next_attempt_at: float | None, error: str) -> None:
        row = (event_id, next_attempt_at, error[:MAX_ERROR_LENGTH])
        await self._writer.submit(_G_OUTBOX_RETRY, (row,))

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
            return deleted

        return await self._write(purge)


def _idempotency(
    conn: sqlite3.Connection, account_id: int, key: str, now: float
) -> IdempotencyRecord | None:
    row = conn.execute(
        "SELECT account_id, key, request_hash, status_code, response, created_at, expires_at"
        " FROM idempotency WHERE account_id = ? AND key = ? AND expires_at > ?",
        (account_id, key, now),
    ).fetchone()
    return None if row is None else IdempotencyRecord(*row)
