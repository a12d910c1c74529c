"""Opening the SQLite store (private): settings, connections, migrations, readers."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from herald.store._errors import SchemaError, StoreClosed, StoreUnavailable
from herald.store._schema import MIGRATIONS
from herald.store._sqlite_lifecycle import install as install_lifecycle

__all__ = ["DB_FILENAME", "SQLiteConfig"]

DB_FILENAME = "herald.db"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SQLiteConfig:
    """Settings of the SQLite store; every field has a working default.

    - ``data_dir``: directory holding ``herald.db`` (created mode 0700).
    - ``synchronous``: ``"NORMAL"`` survives a process crash, ``"FULL"`` also
      power loss (see the module docstring).
    - ``commit_interval``: seconds the writer waits for more writes after the
      first of a batch; 0 (the default) commits as soon as the previous
      commit is done, and writes that arrive meanwhile form the next batch.
    - ``quiet_interval``, ``quiet_rate``: the loop writer (``writer="loop"``)
      waits ``quiet_interval`` seconds after the first write of a batch while
      the writes of the last tenth of a second came at under ``quiet_rate`` a
      second: at low rates nothing batches by itself, and a few milliseconds
      of latency buy fewer transactions; at high rates batches form without
      waiting.
      0 (the default): never.
    - ``max_pending``: writes waiting for the writer before new ones get
      :class:`StoreBusy` (memory bound under overload).
    - ``readers``: read connections (threads) for queries.
    - ``busy_timeout``: seconds to wait for another process's lock (the CLI
      writing while ``herald serve`` runs) before :class:`StoreUnavailable`.
    - ``create``: create the directory and database if missing; if ``False``
      a missing database raises :class:`SchemaError`.
    - ``writer``: ``"thread"`` commits on a writer thread (what a caller that
      blocks its loop, or has none, wants), ``"loop"`` on the event loop of the
      writing coroutines, once per loop turn (what ``herald serve`` runs: see
      :class:`~herald.store._writer.LoopCommitWriter`).
    """

    data_dir: Path = Path("herald-data")
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    commit_interval: float = 0.0
    quiet_interval: float = 0.0
    quiet_rate: float = 0.0
    max_batch: int = 4096
    max_pending: int = 100_000
    readers: int = 2
    busy_timeout: float = 5.0
    create: bool = True
    writer: Literal["thread", "loop"] = "thread"

    def __post_init__(self) -> None:
        if self.synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be 'NORMAL' or 'FULL'")
        if not 0 <= self.commit_interval <= 1:
            raise ValueError("commit_interval must be 0..1 seconds")
        if not 0 <= self.quiet_interval <= 1:
            raise ValueError("quiet_interval must be 0..1 seconds")
        if self.quiet_rate < 0:
            raise ValueError("quiet_rate must not be negative")
        if not 1 <= self.max_batch <= 1_000_000:
            raise ValueError("max_batch must be 1..1,000,000 rows")
        if self.max_pending < 1:
            raise ValueError("max_pending must be positive")
        if not 1 <= self.readers <= 64:
            raise ValueError("readers must be 1..64")
        if self.busy_timeout < 0:
            raise ValueError("busy_timeout must not be negative")
        if self.writer not in ("thread", "loop"):
            raise ValueError("writer must be 'thread' or 'loop'")

    @property
    def path(self) -> Path:
        return self.data_dir / DB_FILENAME


# -- opening -------------------------------------------------------------------------


def connect(path: Path, config: SQLiteConfig, *, read_only: bool = False) -> sqlite3.Connection:
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


def migrate(path: Path, config: SQLiteConfig, migrations: Sequence[str] = MIGRATIONS) -> None:
    try:
        conn = connect(path, config)
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
        if migrations is MIGRATIONS:  # the lifecycle's triggers are the code's, not history's
            try:
                install_lifecycle(conn)
            except sqlite3.Error as exc:
                raise SchemaError(f"{path}: cannot install the lifecycle: {exc}") from exc
    finally:
        conn.close()


class Readers:
    """Read-only connections, one per pool thread."""

    def __init__(self, path: Path, config: SQLiteConfig) -> None:
        self._path = path
        self._config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._pool = ThreadPoolExecutor(config.readers, thread_name_prefix="herald-store-read")
        self._closed = False

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = connect(self._path, self._config, read_only=True)
                self._local.conn = conn
                with self._lock:
                    self._conns.append(conn)
            return fn(conn)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database error: {exc}") from exc

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)
        except RuntimeError as exc:  # the executor is shut down: the store was closed
            if self._closed:
                raise StoreClosed("the store is closed") from exc
            raise

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


