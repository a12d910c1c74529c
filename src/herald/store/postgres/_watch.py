"""Commit watchers of the PostgreSQL store: ``watch_outbox`` and ``watch_finals`` (private).

Theory of operation
===================

Two statement-level triggers (migration ``_V10_MESSAGES``) report what a
statement did: ``outbox_watch`` the outbox channels it wrote to,
``messages_watch_finals`` how many messages it ended per final status (test
messages aside). Each reports in two ways:

- ``RAISE NOTICE`` to the session that ran the statement, and only to it. The
  store listens to the notices of the connection it holds for a call
  (:meth:`Watch.hearing`), keeps what that call's statements reported, and
  once the call committed tells the watchers, before the call returns (as the
  SQLite store does: a caller that awaited a write finds its watchers told). A
  call that fails or rolls back tells nothing. asyncpg hands a notice to its
  listener (``loop.call_soon``) before it wakes the task waiting for the
  statement's end, which the server sends after the notice, so the notices of
  a statement are in by the time the statement's ``await`` returns.
- ``pg_notify('herald_outbox', channels)`` (outbox only), which PostgreSQL
  delivers at commit to every session listening. One connection per store
  listens (:meth:`Watch.listen`), so commits of other processes and nodes wake
  this one's webhook sender and SMPP notifier too. It skips the notifications
  of its own store's connections (told already, through their notices). After
  the connection is lost it connects again (backing off up to
  :data:`MAX_BACKOFF`), then wakes every watcher once: what was committed
  meanwhile was not heard.

Finals are counted only where the commit was made (no ``pg_notify``): the
``herald_messages_final_total`` metric each node exports then sums, across
nodes, to the cluster's finals, each counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from herald.store._model import STATUS_OF_CODE, Channel, Status
from herald.store.postgres._conn import connect

__all__ = ["MAX_BACKOFF", "OUTBOX_CHANNEL", "Watch"]

log = logging.getLogger(__name__)

#: The pg_notify channel of outbox writes (the payload: channel numbers, "1,2").
OUTBOX_CHANNEL = "herald_outbox"
#: The notices' prefixes (the triggers' RAISE NOTICE texts).
_OUTBOX_NOTICE = "herald_outbox "
_FINALS_NOTICE = "herald_finals "
#: Seconds between attempts to reconnect the listener, doubling up to MAX_BACKOFF.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
#: Seconds of quiet after which the listener checks its connection is alive (a
#: connection cut without a FIN is otherwise noticed only by the kernel, late).
PROBE_INTERVAL = 10.0
PROBE_TIMEOUT = 5.0

_CHANNELS = {str(int(c)): c for c in Channel}

OutboxCallback = Callable[[frozenset[Channel]], None]
FinalsCallback = Callable[[Mapping[Status, int]], None]


def _channels(payload: str) -> frozenset[Channel]:
    return frozenset(_CHANNELS[c] for c in payload.split(",") if c in _CHANNELS)


class _Heard:
    """What one call's statements reported, until it commits."""

    __slots__ = ("channels", "finals")

    def __init__(self) -> None:
        self.channels: set[Channel] = set()
        self.finals: dict[Status, int] = {}

    def notice(self, _conn: Any, message: Any) -> None:
        text: str = getattr(message, "message", "") or ""
        if text.startswith(_OUTBOX_NOTICE):
            self.channels |= _channels(text[len(_OUTBOX_NOTICE):])
        elif text.startswith(_FINALS_NOTICE):
            for pair in text[len(_FINALS_NOTICE):].split(","):
                code, _, count = pair.partition(":")
                status = STATUS_OF_CODE.get(int(code))
                if status is not None:
                    self.finals[status] = self.finals.get(status, 0) + int(count)


class Watch:
    """A store's watchers, what tells them, and its listening connection."""

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._outbox: list[tuple[asyncio.AbstractEventLoop, OutboxCallback]] = []
        self._finals: list[tuple[asyncio.AbstractEventLoop, FinalsCallback]] = []
        #: Server pids of this store's pooled connections: their commits are
        #: told through their notices, so the listener skips their notifications.
        self._own: set[int] = set()
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        #: Times the listener (re)connected, and its connection's server pid.
        self.connections = 0
        self.listener_pid: int | None = None

    # -- watchers ------------------------------------------------------------------

    def watch_outbox(self, callback: OutboxCallback) -> None:
        loop = asyncio.get_running_loop()
        self._outbox.append((loop, callback))
        if self._listener is None and self._url is not None and not self._closing:
            self._listener = loop.create_task(self._listen(), name="herald-pg-listen")

    def watch_finals(self, callback: FinalsCallback) -> None:
        self._finals.append((asyncio.get_running_loop(), callback))

    @property
    def active(self) -> bool:
        return bool(self._outbox or self._finals)

    # -- this store's commits --------------------------------------------------------

    @contextlib.contextmanager
    def hearing(self, conn: Any) -> Iterator[None]:
        """Around one call on ``conn`` (its transaction inside): on a clean exit
        (committed), tell the watchers what the call's statements reported."""
        if not self.active:
            yield
            return
        heard = _Heard()
        self._own.add(conn.get_server_pid())
        conn.add_log_listener(heard.notice)
        try:
            yield
        finally:
            conn.remove_log_listener(heard.notice)
        if heard.channels:
            self._tell_outbox(frozenset(heard.channels))
        if heard.finals:
            self._tell_finals(heard.finals)

    def _tell_outbox(self, channels: frozenset[Channel]) -> None:
        for loop, callback in self._outbox:
            _call(loop, callback, channels)

    def _tell_finals(self, finals: Mapping[Status, int]) -> None:
        for loop, callback in self._finals:
            _call(loop, callback, dict(finals))

    # -- other processes' and nodes' commits ----------------------------------------------

    def _notified(self, _conn: Any, pid: int, _channel: str, payload: str) -> None:
        if pid not in self._own:
            channels = _channels(payload)
            if channels:
                self._tell_outbox(channels)

    async def _listen(self) -> None:
        """Listen on one connection of its own, connecting again after a loss."""
        backoff = FIRST_BACKOFF
        while not self._closing:
            try:
                await self._listen_once()
                backoff = FIRST_BACKOFF
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # StoreUnavailable, a lost connection, a probe's timeout
                log.warning("PostgreSQL outbox listener lost its connection: %s", exc)
            if not self._closing:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _listen_once(self) -> None:
        """Connect, listen, and return when the connection is lost."""
        assert self._url is not None
        conn = await connect(self._url)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(OUTBOX_CHANNEL, self._notified)
            self.listener_pid = conn.get_server_pid()
            self.connections += 1
            if self.connections > 1:  # commits made while deaf: look again
                self._tell_outbox(frozenset(Channel))
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), PROBE_INTERVAL)
                    return
                await conn.execute("SELECT 1", timeout=PROBE_TIMEOUT)
        finally:
            if not conn.is_closed():
                conn.terminate()

    async def aclose(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None


def _call(loop: asyncio.AbstractEventLoop, callback: Callable[[Any], None], value: Any) -> None:
    """``callback(value)`` on ``loop``: at once when that is this thread's loop
    (before the writer's caller resumes), else soon on its own thread. A
    watcher's error is logged, never raised into the write that told it."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not loop:
        loop.call_soon_threadsafe(_guarded, callback, value)
    else:
        _guarded(callback, value)


def _guarded(callback: Callable[[Any], None], value: Any) -> None:
    try:
        callback(value)
    except Exception:  # a watcher's bug must not fail a committed write
        log.exception("a commit watcher failed")
