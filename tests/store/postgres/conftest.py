"""Fixtures of the PostgreSQL store's tests (the cluster's are in tests/conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from herald.ids import SortableIdGenerator
from herald.store import NewMessage, Source
from herald.store.postgres import PostgresStore, create_pool

T0 = 1_800_000_000.0  # a fixed "now": the store never reads a clock


@pytest.fixture
async def pool(pg_store_dsn: str) -> AsyncIterator[Any]:
    pool = await create_pool(pg_store_dsn, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def two_stores(pg_store_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, each with its own pool: two nodes."""
    a = await PostgresStore.open(pg_store_dsn, max_connections=6)
    b = await PostgresStore.open(pg_store_dsn, max_connections=6)
    a.node, b.node = "node-a", "node-b"  # (one process: one node_id() otherwise)
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


MessageFactory = Callable[..., NewMessage]


@pytest.fixture
def make_message() -> MessageFactory:
    ids = SortableIdGenerator()
    counter = itertools.count()

    def make(**fields: Any) -> NewMessage:
        n = next(counter)
        accepted_at = fields.pop("accepted_at", T0 + n * 0.001)
        values: dict[str, Any] = {
            "id": ids.new_id(accepted_at), "account_id": 1, "source": Source.HTTP,
            "to": f"+4477009{n:05d}", "sender": "ACME", "body": f"code {n}".encode(),
            "encoding": "gsm7", "data_coding": 0, "segments": 1,
            "accepted_at": accepted_at, "expires_at": accepted_at + 3600,
        }  # fmt: skip
        values.update(fields)
        return NewMessage(**values)

    return make
