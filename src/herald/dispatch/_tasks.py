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
    """See the module docstring. ``start()``, ``add(item)`` …, ``await close()``.

    Up to ``concurrency`` writes may be in flight at once (each a batch taken
    in arrival order): the store's single writer commits them in the order
    they were submitted, and the next batch is already queued when a commit
    ends, so a slow commit does not leave the writer idle.
    """

    def __init__(self, name: str, write: Callable[[list[T]], Awaitable[None]],
                 *, max_batch: int = 4096, concurrency: int = 1) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.name = name
        self._write = write
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._items: list[T] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"dispatch-{self.name}")

    def add(self, item: T) -> None:
        self._items.append(item)
        if not self._wakeup.is_set():
            self._wakeup.set()

    async def close(self) -> None:
        """Write what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        while self._items:  # never started (or added to after the task ended): write inline
            await self._flush(self._take())

    def _take(self) -> list[T]:
        items = self._items[: self._max_batch]
        del self._items[: len(items)]
        return items

    async def _flush(self, items: list[T]) -> None:
        try:
            await self._write(items)
        except Exception:  # a bug in write: log it, keep the batcher alive
            log.exception("dispatch %s: a batch of %d was not written", self.name, len(items))

    async def _run(self) -> None:
        flying: set[asyncio.Task[None]] = set()
        while True:
            if len(flying) >= self._concurrency:
                _, flying = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
                continue
            if not self._items:
                if self._closing:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Tasks start in creation order, so their store writes are queued in order.
            flying.add(asyncio.create_task(self._flush(self._take())))
        if flying:
            await asyncio.wait(flying)


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
