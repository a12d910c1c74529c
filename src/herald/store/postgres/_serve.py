"""``herald serve`` on PostgreSQL: whether it may run, and opening its store.

:func:`serve_refusal` says why ``herald serve --store URL`` must not start:
a bad URL, or the :class:`~herald.store.Store` port's methods that
:class:`PostgresStore` does not have yet. The list is computed from the
protocol and the class, not kept by hand, so the refusal ends by itself on
the day the port is complete, and names exactly what is missing until then
(half a platform would accept messages it cannot deliver).

:func:`open_served` opens the store of a serving process. It does not
migrate unless asked: the database is shared by every node, so a node that
starts must not change its schema under nodes of an older herald still
running on it. An upgrade is one explicit step (``herald db migrate --store
URL``, or ``herald serve --migrate`` on the one node that does it).
"""

from __future__ import annotations

import inspect
from typing import cast

from herald.store._errors import SchemaError
from herald.store._port import Store
from herald.store.postgres._conn import check_url, connection, redact, schema_version
from herald.store.postgres._schema import MIGRATIONS
from herald.store.postgres._store import PostgresStore

__all__ = ["missing_methods", "open_served", "serve_refusal"]


def port_methods() -> frozenset[str]:
    """The public methods of the :class:`Store` protocol and the protocols it joins."""
    return frozenset(
        name
        for cls in Store.__mro__
        if getattr(cls, "_is_protocol", False) and cls.__module__.startswith("herald.")
        for name, value in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(value)
    )


def missing_methods() -> tuple[str, ...]:
    """The port's methods :class:`PostgresStore` lacks, sorted (empty: complete)."""
    return tuple(sorted(n for n in port_methods() if not callable(getattr(PostgresStore, n, None))))


def serve_refusal(url: str) -> str | None:
    """Why ``herald serve`` must not run on ``url`` (a bad URL, or the port's
    methods PostgreSQL lacks), or ``None`` when it may."""
    try:
        check_url(url)
    except ValueError as exc:
        return str(exc)
    missing = missing_methods()
    if not missing:
        return None
    return (
        f"{redact(url)}: the PostgreSQL store does not serve yet: {len(missing)} methods of the"
        f" store port are missing on it ({', '.join(missing)}); run herald serve on its SQLite"
        " store (--data-dir) meanwhile (docs/scale-out.md)"
    )


async def open_served(url: str, *, migrate: bool = False, max_connections: int) -> Store:
    """The store of a ``herald serve`` process on ``url``: a pool of up to
    ``max_connections``. With ``migrate`` the database's missing migrations are
    applied first; without, a database behind this herald raises
    :class:`SchemaError` naming ``herald db migrate``. Also raises
    :class:`StoreUnavailable` (the server cannot be reached) and
    :class:`SchemaError` (a database newer than this herald)."""
    if not migrate:
        async with connection(url) as conn:
            version = await schema_version(conn)
        if version < len(MIGRATIONS):
            raise SchemaError(
                f"{redact(url)} has schema version {version}; this herald needs"
                f" {len(MIGRATIONS)}: run `herald db migrate --store {redact(url)}` first"
                " (or start one node with herald serve --migrate)"
            )
    # Migrates only with `migrate` (up to date otherwise: a no-op under the lock),
    # refuses a newer database, and puts the lifecycle's triggers in place. A cast:
    # PostgresStore is a Store once the port is complete, and serve_refusal keeps
    # herald serve off it until then.
    return cast(Store, await PostgresStore.open(url, max_connections=max_connections))
