"""Fixtures for the store contract suite.

``store`` yields every shipped :class:`~herald.store.Store` implementation,
opened on a fresh, real database (SQLite files in a tmp dir today; PostgreSQL
joins the ``params`` when it exists). Contract tests use only the Protocol.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from herald.ids import SortableIdGenerator
from herald.store import Account, NewMessage, Source, SQLiteConfig, SQLiteStore, Store

T0 = 1_800_000_000.0  # a fixed "now" for tests; the store never reads a clock


@pytest.fixture(params=["sqlite", "sqlite-loop-writer"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened: Store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    elif request.param == "sqlite-loop-writer":  # commits on the event loop (herald serve's)
        opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data", writer="loop"))
    else:  # pragma: no cover - new implementations add a branch here
        raise AssertionError(request.param)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def account(store: Store) -> Account:
    return await store.create_account("acme", T0, rate_limit=100.0, bind_limit=2)


MessageFactory = Callable[..., NewMessage]


@pytest.fixture
def make_message(account: Account) -> MessageFactory:
    ids = SortableIdGenerator()
    counter = itertools.count()

    def make(**fields: Any) -> NewMessage:
        n = next(counter)
        accepted_at = fields.pop("accepted_at", T0 + n * 0.001)
        values: dict[str, Any] = {
            "id": ids.new_id(accepted_at),
            "account_id": account.id,
            "source": Source.HTTP,
            "to": f"+4477009{n:05d}",
            "sender": "ACME",
            "body": f"code {n}".encode(),
            "encoding": "gsm7",
            "data_coding": 0,
            "segments": 1,
            "accepted_at": accepted_at,
            "expires_at": accepted_at + 3600,
        }
        values.update(fields)
        return NewMessage(**values)

    return make
