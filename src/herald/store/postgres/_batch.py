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
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Batcher"]

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
