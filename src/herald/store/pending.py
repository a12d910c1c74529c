"""The store's answer to the signaling guard's platform-egress question.

``herald.signaling.policy.PendingMessages`` asks, for every SRI-SM and
MT-ForwardSM the platform sends from its own global titles: is a customer
message to this number queued and not yet final? ``SQLitePendingMessages``
answers from herald's SQLite store with one indexed lookup
(``messages_pending_to``) on its own read-only connection, so the guard's
synchronous engine can call it without the store's writer or reader threads.

``PostgresPendingMessages`` answers from the PostgreSQL store (several herald
nodes on one database) with one lookup on its index ``messages_pending_to``
(``to_addr, expires_at``: status is read from the rows it finds, so that the
messages' transitions stay HOT updates). asyncpg is asynchronous and the
engine is not: the connection lives on a private event loop in a daemon
thread, and each question waits at most ``ANSWER_TIMEOUT`` for its answer.

Both fail closed: if the database cannot answer (locked past the busy timeout,
missing, corrupt, stopped, unreachable, slower than the bound), the answer is
``False`` and the signaling is blocked; the PostgreSQL one reconnects by
itself in the background. Nothing here reads or returns anything but a yes/no
about a number the platform itself was asked to deliver to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Final

from herald.store._errors import StoreUnavailable
from herald.store._model import Status
from herald.store._sqlite_conn import DB_FILENAME

__all__ = ["PostgresPendingMessages", "SQLitePendingMessages"]

log = logging.getLogger("herald.store.pending")

#: Milliseconds a lookup may wait for a writer's lock before failing closed.
BUSY_TIMEOUT_MS: Final = 200

_QUERY: Final = (
    "SELECT 1 FROM messages INDEXED BY messages_pending_to "
    f"WHERE to_addr = ? AND status < {int(Status.DELIVERED)} AND test = 0 AND expires_at > ?"
    " LIMIT 1"
)


class SQLitePendingMessages:
    """``PendingMessages`` over ``<data_dir>/herald.db``. One thread at a time."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / DB_FILENAME
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True,
                                   check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    def has_pending(self, msisdn: str, now: float) -> bool:
        """Whether a message to ``msisdn`` (E.164 digits) waits; False if unsure."""
        try:
            row = self._connection().execute(_QUERY, (msisdn.lstrip("+"), now)).fetchone()
        except sqlite3.Error as exc:
            log.warning("platform egress: the store could not answer (%s); failing closed", exc)
            self.close()
            return False
        return row is not None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


#: Seconds a PostgreSQL lookup may take before the answer is "no" (fail closed).
ANSWER_TIMEOUT: Final = BUSY_TIMEOUT_MS / 1000
#: Seconds between reconnection attempts once the database is lost (doubling);
#: also how long lookups after a failed one answer "no" without asking (the
#: proxy's loop waits for each question: in an outage, at most one a period).
RECONNECT_FIRST: Final = 0.25
RECONNECT_MAX: Final = 2.0
#: Seconds between two warnings while the database keeps failing to answer.
WARN_EVERY: Final = 60.0
#: What the lookup's connections call themselves in pg_stat_activity.
APPLICATION_NAME: Final = "herald-guard"

# Through messages_pending_to (to_addr, expires_at) WHERE NOT test; status,
# written by every transition, is filtered on the rows found (see _schema.py).
_PG_QUERY: Final = (
    "SELECT 1 FROM messages WHERE to_addr = $1 AND NOT test AND expires_at > $2"
    f" AND status < {int(Status.DELIVERED)} LIMIT 1"
)


class PostgresPendingMessages:
    """``PendingMessages`` over herald's PostgreSQL store at ``url``.

    Call :meth:`open` first (it connects, so that a wrong URL or an unreachable
    server is an error at start), :meth:`has_pending` from one thread at a time,
    :meth:`close` at the end. Between them, one connection on a private event
    loop: lost, it is replaced in the background while lookups answer ``False``.
    After a failed lookup the next ones answer ``False`` without asking for
    ``hold`` seconds (doubling with each failure, up to ``RECONNECT_MAX``), so
    an outage costs the caller one wait of ``timeout`` a period, not one a call.
    """

    def __init__(
        self, url: str, *, timeout: float = ANSWER_TIMEOUT, hold: float = RECONNECT_FIRST
    ) -> None:
        from herald.store.postgres._conn import check_url

        check_url(url)
        self._url = url
        self._timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="herald-pending-pg", daemon=True
        )
        self._thread.start()
        # Touched on the private loop only:
        self._conn: Any = None
        self._reconnecting: asyncio.Task[None] | None = None
        # The caller's thread only: an outage is logged once a minute, not per lookup.
        self._failing_since: float | None = None
        self._warned_at = 0.0
        self._refused = 0
        self._hold_until = 0.0  # no question asked before then (after a failure)
        self._first_hold = self._hold = hold

    def open(self) -> None:
        """Connect, and check the database holds herald's messages. Raises
        :class:`StoreUnavailable` (unreachable, refused) or ``ValueError`` (no
        herald store there); closes itself then."""
        from herald.store.postgres._conn import CONNECT_TIMEOUT

        future = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        try:
            future.result(CONNECT_TIMEOUT + 1)
        except TimeoutError:
            future.cancel()
            self.close()
            raise StoreUnavailable(f"{self._redacted()}: no answer at start") from None
        except BaseException:
            self.close()
            raise

    def has_pending(self, msisdn: str, now: float) -> bool:
        """Whether a message to ``msisdn`` (E.164 digits) waits; False if unsure."""
        if self._failing_since is not None and time.monotonic() < self._hold_until:
            return self._fail_closed("held off after a failed lookup", asked=False)
        ask = self._ask(msisdn.lstrip("+"), float(now))
        try:
            future = asyncio.run_coroutine_threadsafe(ask, self._loop)
        except RuntimeError as exc:  # closed
            ask.close()
            return self._fail_closed(str(exc))
        try:
            found = future.result(self._timeout)
        except TimeoutError:
            future.cancel()  # the lookup's connection is dropped (see _ask)
            return self._fail_closed(f"no answer within {self._timeout * 1000:.0f} ms")
        except Exception as exc:  # whatever it is, the answer is "no"
            return self._fail_closed(f"{type(exc).__name__}: {exc}")
        if self._failing_since is not None:
            log.warning("platform egress: the store answers again after %.1f s"
                        " (%d lookups failed closed)",
                        time.monotonic() - self._failing_since, self._refused)  # fmt: skip
            self._failing_since, self._refused = None, 0
            self._hold = self._first_hold
        return found

    def close(self) -> None:
        """Close the connection and stop the private loop (idempotent)."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shut(), self._loop)
            with contextlib.suppress(Exception):  # closing: a dead server is no news
                future.result(1.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(2.0)
        if not self._thread.is_alive():
            self._loop.close()

    # -- on the private loop -------------------------------------------------------

    async def _connect(self) -> Any:
        """A connection whose statements the server itself ends soon after the
        caller stopped waiting: a lookup given up on (a table locked, say) must
        not keep a backend waiting, one per retry, until the lock is released."""
        from herald.store.postgres._conn import connect

        conn = await connect(self._url)
        limit = int(self._timeout * 1000) + 100
        try:
            await conn.execute(f"SET statement_timeout = {limit};"
                               f" SET application_name = '{APPLICATION_NAME}'")  # fmt: skip
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _open(self) -> None:
        conn = await self._connect()
        try:
            found = await conn.fetchrow("SELECT to_regclass('messages') IS NOT NULL AS messages,"
                                        " to_regclass('messages_pending_to') IS NOT NULL AS index")
        except BaseException:
            conn.terminate()
            raise
        if not (found["messages"] and found["index"]):
            await conn.close()
            # Without the index every lookup would read the table, past the
            # bound on any real history: all of them would fail closed.
            raise ValueError(
                f"{self._redacted()} holds no herald store (no messages table: herald db migrate)"
                if not found["messages"] else
                f"{self._redacted()}: the store's schema predates the guard's lookup index"
                " (messages_pending_to): herald db migrate"
            )  # fmt: skip
        self._conn = conn

    async def _ask(self, to: str, now: float) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            self._lost()
            raise StoreUnavailable("not connected (reconnecting)")
        try:
            return await conn.fetchval(_PG_QUERY, to, now) is not None
        except BaseException:  # an error, or cancelled past the bound: a fresh connection
            self._lost()
            raise

    def _lost(self) -> None:
        """Drop the connection (if any) and reconnect in the background."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = self._loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = RECONNECT_FIRST
        while self._conn is None:  # until connected, or the loop stops (close)
            try:
                self._conn = await self._connect()
            except Exception:  # refused, reset, timed out: try again later
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)

    async def _shut(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await asyncio.wait_for(conn.close(), 0.5)

    # -- the caller's thread -------------------------------------------------------

    def _fail_closed(self, why: str, *, asked: bool = True) -> bool:
        now = time.monotonic()
        self._refused += 1
        if self._failing_since is None:
            self._failing_since = now
        if asked:  # the next question waits a while, longer each time
            self._hold_until = now + self._hold
            self._hold = min(self._hold * 2, max(RECONNECT_MAX, self._first_hold))
        if self._refused == 1 or now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning("platform egress: the store could not answer (%s); failing closed"
                        " (%d lookups so far)", why, self._refused)  # fmt: skip
        return False

    def _redacted(self) -> str:
        from herald.store.postgres._conn import redact

        return redact(self._url)
