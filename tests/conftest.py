"""Fixtures shared by every test directory: a real PostgreSQL (tests/peers/postgres.py).

``pg_cluster`` starts one private cluster per test session (per xdist worker),
and only when a selected test asks for it: a run without PostgreSQL tests never
starts one. ``pg_dsn`` gives each test a fresh, empty database on it, dropped
afterwards; ``pg_store_dsn`` one with the PostgreSQL store's schema and its
lifecycle triggers (a copy of a template migrated once per session: ~20 ms a
test). Tests that use any of
them are marked ``postgres`` automatically, so ``-m postgres`` /
``-m 'not postgres'`` select them.

A missing PostgreSQL fails these tests (locally too, unlike the other peers):
scripts/peers installs it, and a store suite that silently shrank to SQLite
would look green while testing half the code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
from collections.abc import Iterator

import pytest

from peers.postgres import PgCluster, PgMissing

#: Fixtures that need the cluster; a test using one gets the ``postgres`` marker.
PG_FIXTURES = frozenset({"pg_cluster", "pg_dsn", "pg_store_dsn"})
#: The session's migrated template (no connection may stay open on it).
TEMPLATE = "herald_template"

_database_numbers = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's private PostgreSQL cluster (started on first use)."""
    try:
        cluster = PgCluster.start()
    except PgMissing as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_dsn(pg_cluster: PgCluster) -> Iterator[str]:
    """A DSN of a fresh, empty database of its own, dropped after the test."""
    name = f"test_{next(_database_numbers)}"
    dsn = pg_cluster.create_database(name)
    try:
        yield dsn
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(scope="session")
def _pg_template(pg_cluster: PgCluster) -> str:
    from herald.store.postgres import connection, install_lifecycle, migrate

    async def migrated(dsn: str) -> None:
        async with connection(dsn) as conn:
            await migrate(conn)
            await install_lifecycle(conn)

    dsn = pg_cluster.create_database(TEMPLATE)
    # In a thread of its own: an async fixture may ask for it first (a loop is running).
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, migrated(dsn)).result()
    return TEMPLATE


@pytest.fixture
def pg_store_dsn(pg_cluster: PgCluster, _pg_template: str) -> Iterator[str]:
    """A DSN of a fresh database with the PostgreSQL store's schema, dropped after."""
    name = f"test_{next(_database_numbers)}"
    dsn = pg_cluster.create_database(name, template=_pg_template)
    try:
        yield dsn
    finally:
        pg_cluster.drop_database(name)
