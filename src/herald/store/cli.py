"""``herald db``: the database under herald.

``herald db migrate --store postgresql://user@host:port/database`` brings a
PostgreSQL database to this herald's schema: each migration in its own
transaction, under a lock, so running it from several nodes at once is safe
and running it again does nothing. Give the password through PGPASSWORD or
~/.pgpass, not in the URL (the URL is visible in the process list). The SQLite
store needs no command: it migrates its data directory when it opens it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from herald.store._errors import SchemaError, StoreUnavailable

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    db = subparsers.add_parser(
        "db", help="migrate the PostgreSQL database (scale-out)",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    actions = db.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate", help="apply the schema migrations the database lacks")
    migrate.add_argument(
        "--store", required=True, metavar="URL",
        help="postgresql://user@host:port/database (password: PGPASSWORD or ~/.pgpass)")
    migrate.set_defaults(func=_migrate)


def _migrate(args: argparse.Namespace) -> int:
    from herald.store.postgres import connection, migrate, redact

    async def run() -> tuple[int, int]:
        async with connection(args.store) as conn:
            return await migrate(conn)

    try:
        before, after = asyncio.run(run())
    except ValueError as exc:  # not a PostgreSQL URL: the caller's to fix
        print(f"herald db migrate: {exc}", file=sys.stderr)
        return 2
    except (StoreUnavailable, SchemaError) as exc:
        print(f"herald db migrate: {exc}", file=sys.stderr)
        return 1
    where = redact(args.store)
    if before == after:
        print(f"{where}: schema version {after}, up to date")
    else:
        print(f"{where}: schema version {before} -> {after}")
    return 0
