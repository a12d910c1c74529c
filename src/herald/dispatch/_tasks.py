"""Small asyncio helpers of dispatch: batched writes, a wake-up signal, store retries (private).

Batcher
-------
Callbacks on the event loop (a submit_sm_resp, a receipt) cannot await. They
``add`` an item; the batcher's single task hands everything queued since its
last write to ``write`` in one call, so a burst of answers becomes one store
write (and, with the store's group commit, one transaction).

``write`` owns its error handling: it knows whether to retry (a segment
record must not be lost) or to answer an upstream with a temporary error (a
receipt: the SMSC will send it again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from herald.store import StoreBusy, StoreClosed, StoreUnavailable

__all__ = ["Batcher", "Signal", "retry_store"]

log = logging.getLogger("herald.dispatch")

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T]):
    """See the module docstring. ``start()``, ``add(item)`` …, ``await close()``."""

    def __init__(self, name: str, write: Callable[[list[T]], Awaitable[None]],
                 *, max_batch: int = 4096) -> None:
        self.name = name
        self._write = write
        self._max_batch = max_batch
        self._items: list[T] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.busy = False  # a write is in progress
        self._added = 0  # items ever added
        self._written = 0  # items ever handed to write (and finished)
        self._written_event = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"dispatch-{self.name}")

    def add(self, item: T) -> None:
        self._items.append(item)
        self._added += 1
        if not self._wakeup.is_set():
            self._wakeup.set()

    async def drain(self) -> None:
        """Return once everything added before this call has been written.

        The inbox calls it on the segment batcher before it applies receipts,
        so a receipt that arrived after its submit_sm_resp finds its segment
        (and is not parked) even though the two go through different batchers.
        """
        target = self._added
        while self._written < target and self._task is not None:  # one pass per write
            self._written_event.clear()
            await self._written_event.wait()

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        while self._items:  # never started (or added to after the task ended): write inline
            await self._flush()

    async def _flush(self) -> None:
        items = self._items[: self._max_batch]
        del self._items[: len(items)]
        self.busy = True
        try:
            await self._write(items)
        except Exception:  # a bug in write: log it, keep the batcher alive
            log.exception("dispatch %s: a batch of %d was not written", self.name, len(items))
        finally:
            self.busy = False
            self._written += len(items)
            self._written_event.set()

    async def _run(self) -> None:
        while True:
            if not self._items:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._flush()


async def retry_store(what: str, call: Callable[[], Awaitable[R]], *, attempts: int = 8,
                      first_delay: float = 0.05) -> R:
    """``await call()``, retrying StoreBusy / StoreUnavailable with backoff.

    Bounded: ``attempts`` tries over about ``first_delay * 2**attempts``
    seconds (13 s by default); the last error is raised.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except StoreClosed:
            raise
        except (StoreBusy, StoreUnavailable) as exc:
            if attempt == attempts:
                raise
            log.warning("%s: store refused (%s); retrying in %.2f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


class Signal:
    """A wake-up that is never lost: ``set`` before ``wait`` makes the next wait return.

    Cheaper than ``asyncio.wait_for(event.wait(), t)`` (no task per wait),
    which matters for ``Dispatcher.wake``, called after every intake commit.
    """

    __slots__ = ("_pending", "_waiter")

    def __init__(self) -> None:
        self._pending = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        else:
            self._pending = True

    async def wait(self, timeout: float | None) -> None:
        """Return when set (now, if it was set since the last wait) or after ``timeout``."""
        if self._pending:
            self._pending = False
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        handle = None if timeout is None else loop.call_later(timeout, self.set)
        try:
            await waiter
        finally:
            self._waiter = None
            self._pending = False
            if handle is not None:
                handle.cancel()
