"""Fixtures for the store contract suite.

``store`` yields every shipped :class:`~herald.store.Store` implementation,
opened on a fresh, real database: SQLite files in a tmp dir, and a fresh
database on the session's private PostgreSQL cluster for the modules in
:data:`POSTGRES_MODULES` (the PostgreSQL store implements the port part by
part; a module joins when its part is done). Contract tests use only the
Protocol. A missing PostgreSQL fails those tests (tests/conftest.py).
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

#: Test modules whose part of the port the PostgreSQL store implements (all of them).
POSTGRES_MODULES = frozenset({
    "test_contract_accounts", "test_contract_admin", "test_contract_attempts",
    "test_contract_backlog", "test_contract_batches", "test_contract_billing",
    "test_contract_cancel", "test_contract_chat", "test_contract_controls",
    "test_contract_fraud", "test_contract_messages", "test_contract_numbers",
    "test_contract_outbox", "test_contract_priority", "test_contract_receipt_checks",
    "test_contract_retention", "test_contract_routing", "test_contract_verify",
    "test_lifecycle",
})
#: And tests of other modules that use only what it implements, by module (none
#: now: every contract module runs whole on both stores).
POSTGRES_TESTS: dict[str, frozenset[str]] = {}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" not in metafunc.fixturenames:
        return
    kinds: list[Any] = ["sqlite", "sqlite-loop-writer"]
    module = metafunc.module.__name__.rpartition(".")[2]
    if module in POSTGRES_MODULES or metafunc.function.__name__ in POSTGRES_TESTS.get(
            module, ()):
        kinds.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    metafunc.parametrize("store", kinds, indirect=True)


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Any
    if request.param == "sqlite":
        opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    elif request.param == "sqlite-loop-writer":  # commits on the event loop (herald serve's)
        opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data", writer="loop"))
    elif request.param == "postgresql":  # the port's part it implements (POSTGRES_MODULES)
        from herald.store.postgres import PostgresStore

        opened = await PostgresStore.open(request.getfixturevalue("pg_store_dsn"))
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
