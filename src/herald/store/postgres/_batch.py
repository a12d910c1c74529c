"""Group commit for PostgreSQL: concurrent calls of one statement, one execution.

The loop's statements take parallel arrays (one per column), so calls that
arrive within ``window`` seconds of each other are merged by concatenating
their arrays and run as one statement: one round trip and one commit
(``synchronous_commit = on``: one WAL flush) for all of them, and each caller
returns only after that commit. A group is cut early at ``max_rows``.

A merged statement that fails because of one caller's rows (a duplicate id,
a value out of range) would fail every caller in the group; such a group is
run again call by call, so the error reaches the caller whose rows caused it
and the others are stored. Any other error (connection lost, server down)
reaches every caller of the group: the statement is atomic, nothing of it
took effect.

:class:`InOrder` is the other shape: writes that must commit in the order
they were submitted (a part's records, its receipts) run one transaction at a
time, each holding what arrived during the one before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Batcher", "InOrder"]

#: Runs the statement on merged arrays; its result goes to every caller.
Execute = Callable[[list[list[Any]]], Awaitable[Any]]


class Batcher:
    """Merges concurrent :meth:`submit` calls into one :data:`Execute` each ``window``."""

    def __init__(
        self,
        execute: Execute,
        *,
        window: float,
        max_rows: int,
        one_callers_fault: Callable[[BaseException], bool],
    ) -> None:
        if window < 0 or max_rows < 1:
            raise ValueError("a batch window is >= 0 seconds and holds >= 1 row")
        self._execute = execute
        self._window = window
        self._max_rows = max_rows
        self._one_callers_fault = one_callers_fault
        self._pending: list[tuple[list[list[Any]], asyncio.Future[Any]]] = []
        self._rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        #: Statements executed (a group counts one): how much merging happened.
        self.executions = 0

    async def submit(self, arrays: list[list[Any]]) -> Any:
        """Run the statement on ``arrays`` (with whatever else is pending); its result."""
        if self._window == 0:
            self.executions += 1
            return await self._execute(arrays)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((arrays, future))
        self._rows += len(arrays[0]) if arrays else 0
        if self._rows >= self._max_rows:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        group, self._pending, self._rows = self._pending, [], 0
        if group:
            task = asyncio.get_running_loop().create_task(self._run(group))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, group: list[tuple[list[list[Any]], asyncio.Future[Any]]]) -> None:
        merged: list[list[Any]] = [[] for _column in group[0][0]]
        for arrays, _future in group:
            for column, values in zip(merged, arrays, strict=True):
                column.extend(values)
        try:
            self.executions += 1
            result = await self._execute(merged)
        except Exception as exc:
            if len(group) > 1 and self._one_callers_fault(exc):
                for arrays, future in group:  # find whose rows it was
                    await self._run([(arrays, future)])
                return
            for _arrays, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for _arrays, future in group:
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        """Run what is pending now and wait for every group under way."""
        self._flush()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


class InOrder:
    """Calls of one kind of write that run one transaction at a time, in arrival order.

    What callers submit while a transaction is under way waits and goes into
    the next one, all of it together: each transaction holds everything that
    arrived during the previous one (the SQLite store's writer queue does the
    same), and a transaction commits before the next one starts, so a write
    submitted later never commits first. ``write`` gets every item of the
    group in submission order, per stream; its error reaches every caller of
    the group (the transaction took no effect). A group is cut at ``max_rows``.
    """

    def __init__(self, write: Callable[[list[list[Any]]], Awaitable[None]], *, streams: int,
                 max_rows: int) -> None:
        if streams < 1 or max_rows < 1:
            raise ValueError("an ordered writer has >= 1 stream and >= 1 row a group")
        self._write = write
        self._streams = streams
        self._max_rows = max_rows
        self._pending: list[tuple[list[list[Any]], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._last: asyncio.Future[None] | None = None  # the last submitted
        #: Transactions run (a group counts one): how much merging happened.
        self.executions = 0

    async def submit(self, items: list[list[Any]]) -> None:
        """Write ``items`` (one list per stream) in the next transaction; return
        once it committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((items, future))
        self._last = future
        if self._task is None:
            self._task = loop.create_task(self._drain(), name="herald-pg-in-order")
        await future

    async def written(self) -> None:
        """Return once every write submitted so far has run (committed or
        failed: its own caller hears which)."""
        last = self._last
        if last is not None and not last.done():
            await asyncio.wait([last])

    def _group(self) -> list[tuple[list[list[Any]], asyncio.Future[None]]]:
        rows, cut = 0, 0
        for cut, (items, _future) in enumerate(self._pending, 1):  # noqa: B007
            rows += sum(len(s) for s in items)
            if rows >= self._max_rows:
                break
        group, self._pending = self._pending[:cut], self._pending[cut:]
        return group

    async def _drain(self) -> None:
        try:
            while self._pending:
                group = self._group()
                merged: list[list[Any]] = [[] for _ in range(self._streams)]
                for items, _future in group:
                    for stream, values in zip(merged, items, strict=True):
                        stream.extend(values)
                try:
                    self.executions += 1
                    await self._write(merged)
                except BaseException as exc:
                    for _items, future in group:
                        if future.done():
                            continue
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                        else:
                            future.cancel()  # the loop is going away
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for _items, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Wait until every write submitted has run."""
        while self._task is not None:
            await asyncio.shield(self._task)
