"""The receipt schedule: one heap of due times for the whole simulator.

The simulator arms a single loop timer at ``next_due()`` instead of one
``call_later`` per message (thousands a second): when it fires, ``pop_due``
hands back everything due within ``slack`` of now, in due order, at most
``limit`` at a time so one turn of the loop stays short.

Pure code: times are arguments.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

__all__ = ["Schedule"]

T = TypeVar("T")


class Schedule(Generic[T]):
    """Items with due times; see the module docstring."""

    __slots__ = ("_heap", "_order")

    def __init__(self) -> None:
        # (due, insertion number, item): the number keeps equal due times in
        # insertion order and spares comparing items
        self._heap: list[tuple[float, int, T]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, item: T) -> None:
        heapq.heappush(self._heap, (due, next(self._order), item))

    def next_due(self) -> float | None:
        """The earliest due time, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float, *, slack: float = 0.0, limit: int = 10_000) -> list[T]:
        """Remove and return the items due by ``now + slack`` (earliest first,
        at most ``limit``)."""
        heap = self._heap
        horizon = now + slack
        out: list[T] = []
        pop = heapq.heappop
        while heap and heap[0][0] <= horizon and len(out) < limit:
            out.append(pop(heap)[2])
        return out

    def clear(self) -> list[T]:
        """Remove and return every item, in due order."""
        items = [entry[2] for entry in sorted(self._heap)]
        self._heap.clear()
        return items
