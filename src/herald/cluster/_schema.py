"""The lease tables on PostgreSQL: the store's migration V3 creates them
(``herald.store.postgres._schema``); :func:`ensure_schema` brings a database
there, for a node (or a test) that may start before ``herald db migrate``.
"""

from __future__ import annotations

from typing import Any

from herald.store.postgres import migrate

__all__ = ["ensure_schema"]


async def ensure_schema(conn: Any) -> None:
    """Apply the PostgreSQL store's migrations this database lacks (the lease
    tables among them): safe on every start, from several nodes at once (the
    migrations take an advisory lock)."""
    await migrate(conn)
