"""The base of the parts of :class:`~herald.store.postgres.PostgresStore` (private).

Each part of the port (routing, numbers, controls, ...) is a mixin in a module
of its own; this declares what they call on the store, which the store
itself defines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["StorePart"]

T = TypeVar("T")


class StorePart:
    """What a part may call: ``_run`` (``fn``'s statements in one transaction),
    ``_one`` (one statement, no BEGIN/COMMIT) and the driver (``_asyncpg``,
    for its exception classes)."""

    _asyncpg: Any

    async def _run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        raise NotImplementedError  # PostgresStore's

    async def _one(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        raise NotImplementedError  # PostgresStore's
