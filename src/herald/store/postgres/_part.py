"""What every part of :class:`~herald.store.postgres.PostgresStore` (a mixin
per topic: ``_accounts``, ``_listing``, ``_admin``, ``_fraud``, ...) takes from
the store (private)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["StorePart"]

T = TypeVar("T")


class StorePart:
    """The base of a PostgresStore mixin: the driver and the store's transactions."""

    _asyncpg: Any  # the asyncpg module (its error classes)

    async def _run(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn``'s statements in one transaction (PostgresStore's)."""
        raise NotImplementedError

    async def _snapshot(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn``'s reads in one snapshot: a read-only REPEATABLE READ transaction
        (PostgresStore's)."""
        raise NotImplementedError

    async def _one(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn``'s one statement, or reads needing no snapshot (PostgresStore's)."""
        raise NotImplementedError
