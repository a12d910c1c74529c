"""The lease tables' DDL (PostgreSQL), applied idempotently by :func:`ensure_schema`.

To be folded into the PostgreSQL store's versioned migrations
(``herald.store.postgres._schema.MIGRATIONS``) when the two branches meet;
until then the cluster code creates what it needs itself.

Times are seconds since the epoch (double precision, as in the store) on the
**server's** clock: leases are granted and judged by one clock, whatever the
nodes' clocks say.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DDL", "SCHEMA_LOCK", "ensure_schema"]

#: pg_advisory_xact_lock key serialising :func:`ensure_schema` (nodes starting
#: together would otherwise race in CREATE TABLE IF NOT EXISTS). "slots" in ASCII.
SCHEMA_LOCK = 0x736C6F7473

DDL = """
-- One row per configured bind of each connector (issue 10). owner NULL: free.
-- epoch grows by one at each acquisition and never goes back: a renewal or a
-- write carrying an older epoch is refused (the fence).
CREATE TABLE IF NOT EXISTS connector_slots (
    connector   text NOT NULL,
    slot        integer NOT NULL CHECK (slot >= 0),
    owner       text,
    epoch       bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    expires_at  double precision NOT NULL DEFAULT 0,
    acquired_at double precision,
    PRIMARY KEY (connector, slot)
);
-- The nodes taking part, renewed with their slots; one whose expires_at has
-- passed is not live (its share goes to the others; the leader cleans up).
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node       text PRIMARY KEY,
    expires_at double precision NOT NULL,
    joined_at  double precision NOT NULL
);
"""


async def ensure_schema(conn: Any) -> None:
    """Create the lease tables if they are missing (safe to run on every start,
    from several nodes at once)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(DDL)
