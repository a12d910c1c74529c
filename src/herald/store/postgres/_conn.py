"""Reaching a PostgreSQL database: store URLs, connections, and migrations.

A store URL is libpq's: ``postgresql://user@host:port/database`` (or
``postgres://``). Keep the password out of it (and out of ``ps``): asyncpg
reads ``PGPASSWORD`` and ``~/.pgpass`` like psql does. Whatever the URL holds,
errors and logs show it with the password replaced (:func:`redact`).

Every connection runs with ``synchronous_commit = on``: a commit returns once
its WAL is on disk (and on a synchronous standby when the cluster has one), so
nothing herald acknowledged is lost with the server; a cluster-wide setting to
the contrary is overridden, not inherited.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from herald.store._errors import SchemaError, StoreUnavailable
from herald.store.postgres._schema import MIGRATIONS

__all__ = [
    "MIGRATION_LOCK",
    "SERVER_SETTINGS",
    "check_url",
    "connect",
    "connection",
    "create_pool",
    "is_postgres_url",
    "migrate",
    "redact",
    "schema_version",
]

SCHEMES = ("postgresql", "postgres")

#: Session settings of every connection the store opens.
SERVER_SETTINGS: dict[str, str] = {
    "synchronous_commit": "on",
    "application_name": "herald",
    # The store hears which outbox channels and final statuses its own commits
    # wrote as notices from its triggers (postgres/_messages.py): never
    # silenced by a server default that sends the client fewer messages.
    "client_min_messages": "notice",
}

#: pg_advisory_xact_lock key serialising migrations (nodes started together
#: take turns; the second finds the work done). "herald" in ASCII.
MIGRATION_LOCK = 0x686572616C64

CONNECT_TIMEOUT = 10.0  # seconds to reach the server before StoreUnavailable


def _asyncpg() -> Any:
    """The driver, or StoreUnavailable naming the install command."""
    try:
        import asyncpg
    except ImportError as exc:
        raise StoreUnavailable(
            "the PostgreSQL store needs asyncpg: pip install 'herald[postgresql]'"
        ) from exc
    return asyncpg


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in SCHEMES


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_url(url: str) -> None:
    """``ValueError`` (its message safe to print) unless ``url`` is a PostgreSQL URL
    naming a database."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(
            f"{redact(url)!r} is not a PostgreSQL URL (postgresql://user@host:port/database)"
        )
    if not parts.path.strip("/"):
        raise ValueError(f"{redact(url)!r} names no database (postgresql://host/DATABASE)")


async def connect(url: str) -> Any:
    """One asyncpg connection with the store's settings; ``StoreUnavailable`` if
    the server cannot be reached or refuses it, ``ValueError`` for a bad URL."""
    check_url(url)
    asyncpg = _asyncpg()

    try:
        return await asyncpg.connect(
            url, server_settings=SERVER_SETTINGS, timeout=CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(f"cannot connect to {redact(url)}: {exc}") from exc


async def _keep_session(_conn: Any) -> None:
    """A pooled connection's reset on release: nothing to send.

    asyncpg's default sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` on every release: a round trip per store call (a
    few hundred a second per node under load), for state the store never
    leaves in a session: its advisory locks are transaction-scoped, its
    settings ``SET LOCAL`` or ``set_config(..., true)``, it opens no cursor
    outside a transaction and listens on a connection of its own
    (``_watch``). What the pool still does before this (``Connection._reset``)
    is what matters: an open transaction is rolled back and the listeners
    are dropped. Code that leaves session state on a pooled connection must
    undo it itself.
    """


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 4) -> Any:
    """An asyncpg pool whose connections have the store's settings; errors as
    :func:`connect`. Close it with ``await pool.close()``. A connection is
    handed back with no reset query (:func:`_keep_session`)."""
    check_url(url)
    asyncpg = _asyncpg()

    try:
        return await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            server_settings=SERVER_SETTINGS,
            timeout=CONNECT_TIMEOUT,
            reset=_keep_session,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(f"cannot connect to {redact(url)}: {exc}") from exc


@contextlib.asynccontextmanager
async def connection(url: str) -> AsyncIterator[Any]:
    """:func:`connect`, closed on exit."""
    conn = await connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def schema_version(conn: Any) -> int:
    """The database's schema version (0: never migrated)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version: int | None = await conn.fetchval("SELECT version FROM schema_version")
    return version or 0


async def migrate(conn: Any, migrations: Sequence[str] = MIGRATIONS) -> tuple[int, int]:
    """Apply the migrations ``conn``'s database lacks; (version before, after).

    Each migration runs in its own transaction with its version bump, under
    an advisory lock: a failure leaves the database at the previous version,
    and nodes that migrate at once apply each migration once. Raises
    :class:`SchemaError` for a database newer than ``migrations`` or a
    migration that failed (the database's error is its cause).
    """
    asyncpg = _asyncpg()
    before: int | None = None
    while True:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " single boolean PRIMARY KEY DEFAULT true CHECK (single),"
                " version integer NOT NULL CHECK (version >= 0))"
            )
            await conn.execute(
                "INSERT INTO schema_version (version) VALUES (0) ON CONFLICT DO NOTHING"
            )
            version: int = await conn.fetchval("SELECT version FROM schema_version")
            if before is None:
                before = version
            if version > len(migrations):
                raise SchemaError(
                    f"the database has schema version {version}; "
                    f"this herald knows up to {len(migrations)}: upgrade herald"
                )
            if version == len(migrations):
                return before, version
            try:
                await conn.execute(migrations[version])
            except asyncpg.PostgresError as exc:
                raise SchemaError(f"migration {version + 1} failed: {exc}") from exc
            await conn.execute("UPDATE schema_version SET version = $1", version + 1)
