"""One PostgreSQL connection on a private event loop, for callers without one (private).

The signaling guard's proxy asks the store from its own thread and must never
wait past a bound: its platform lookup (:mod:`herald.store.pending`) and its
shared state (:mod:`herald.guard.pg_state`) each hold a :class:`PgLink`.
:meth:`PgLink.open` connects and checks the database (a wrong URL, an
unreachable server or a missing schema is an error at start); :meth:`PgLink.call`
runs ``work(connection)`` on the private loop and returns within its bound or
raises :class:`StoreUnavailable`; :meth:`PgLink.post` runs it without waiting.
Statements go one at a time, in the order asked (asyncpg refuses two at once
on a connection). A connection that failed, or whose work was given up on, is
replaced in the background; its statements carry a server-side timeout just
past the bound, so a backend never keeps waiting for a caller who left.
Nothing here imports asyncpg until a link connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar

from herald.store._errors import StoreUnavailable

__all__ = ["RECONNECT_FIRST", "RECONNECT_MAX", "PgLink"]

log = logging.getLogger("herald.store")

T = TypeVar("T")

#: Seconds between reconnection attempts once the database is lost (doubling).
RECONNECT_FIRST: Final = 0.25
RECONNECT_MAX: Final = 2.0


class PgLink:
    """See the module docstring. ``check(connection)`` runs once at :meth:`open`
    and raises ``ValueError`` for a database that will not do."""

    def __init__(self, url: str, *, timeout: float, thread_name: str, application_name: str,
                 check: Callable[[Any, str], Awaitable[None]] | None = None) -> None:  # fmt: skip
        from herald.store.postgres._conn import check_url, redact

        check_url(url)
        self._url = url
        self.where = redact(url)
        self.timeout = timeout
        self._application_name = application_name
        self._check = check
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=thread_name,
                                        daemon=True)  # fmt: skip
        self._thread.start()
        self._conn: Any = None  # touched on the private loop only
        self._reconnecting: asyncio.Task[None] | None = None
        self._turn = asyncio.Lock()  # one statement at a time, in the order asked

    def open(self) -> None:
        """Connect and check. Raises :class:`StoreUnavailable` or ``ValueError``
        (closing itself)."""
        from herald.store.postgres._conn import CONNECT_TIMEOUT

        future = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        try:
            future.result(CONNECT_TIMEOUT + 1)
        except TimeoutError:
            future.cancel()
            self.close()
            raise StoreUnavailable(f"{self.where}: no answer at start") from None
        except BaseException:
            self.close()
            raise

    def post(self, work: Callable[[Any], Coroutine[Any, Any, Any]]) -> None:
        """``work(connection)`` on the private loop, not waited for (a failure is
        logged there, and the connection replaced)."""

        async def run() -> None:
            try:
                await self._run(work)
            except Exception as exc:
                log.warning("%s: a write was lost: %s", self.where, exc)

        coro = run()
        try:
            asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # closed
            coro.close()

    def call(self, work: Callable[[Any], Coroutine[Any, Any, T]],
             timeout: float | None = None) -> T:  # fmt: skip
        """``work(connection)``'s result within ``timeout`` (the link's by
        default). Raises :class:`StoreUnavailable` for any failure."""
        bound = self.timeout if timeout is None else timeout
        coro = self._run(work)
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError as exc:  # closed
            coro.close()
            raise StoreUnavailable(f"{self.where}: {exc}") from None
        try:
            return future.result(bound)
        except TimeoutError:
            future.cancel()  # its connection is replaced (see _run)
            raise StoreUnavailable(
                f"{self.where}: no answer within {bound * 1000:.0f} ms") from None
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"{self.where}: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        """Close the connection (after what was posted, 0.5 s at most) and stop
        the private loop (idempotent)."""
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
        from herald.store.postgres._conn import connect

        conn = await connect(self._url)
        limit = int(self.timeout * 1000) + 100  # the server ends what we gave up on
        try:
            await conn.execute(f"SET statement_timeout = {limit};"
                               f" SET application_name = '{self._application_name}'")  # fmt: skip
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def _open(self) -> None:
        conn = await self._connect()
        if self._check is not None:
            try:
                await self._check(conn, self.where)
            except ValueError:  # a database that will not do: a clean goodbye
                await conn.close()
                raise
            except BaseException:
                conn.terminate()
                raise
        self._conn = conn

    async def _run(self, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        async with self._turn:
            conn = self._conn
            if conn is None or conn.is_closed():
                self._lost()
                raise StoreUnavailable(f"{self.where}: not connected (reconnecting)")
            try:
                return await work(conn)
            except BaseException:  # an error, or cancelled past the bound: a fresh connection
                self._lost()
                raise

    def _lost(self) -> None:
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
        with contextlib.suppress(TimeoutError):  # the writes posted so far first
            await asyncio.wait_for(self._turn.acquire(), 0.5)
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await asyncio.wait_for(conn.close(), 0.5)
