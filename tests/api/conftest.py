"""Fixtures for the HTTP API tests: the real app on a real SQLite store.

Requests go through httpx's ASGI transport (no socket) unless a test starts
uvicorn itself. Credentials are real argon2id hashes with cheap parameters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.api import ApiContext, create_app
from herald.config import HttpConfig
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.store import Account, NewMessage, SQLiteConfig, SQLiteStore

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
#: A number phonenumbers knows as assigned (US, San Francisco).
VALID_TO = "+14155552671"
#: Real argon2id, with parameters cheap enough for tests.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    """A clock the test moves by hand (the app reads time only through it)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Api:
    """An app, a client on it, and what it was built from."""

    app: FastAPI
    client: httpx.AsyncClient
    context: ApiContext
    store: SQLiteStore
    accounts: Accounts
    clock: Clock
    account: Account
    key: str
    accepted: list[NewMessage]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def send(self, body: Any, **headers: str) -> httpx.Response:
        return await self.client.post("/v1/messages", json=body, headers={**self.auth, **headers})


def message(**fields: Any) -> dict[str, Any]:
    return {"to": VALID_TO, "from": "ACME", "text": "Your code is 123456", **fields}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    yield opened
    await opened.aclose()


@pytest.fixture
async def accounts(store: SQLiteStore) -> AsyncIterator[Accounts]:
    service = Accounts(store, hasher=CHEAP_HASHER)
    yield service
    service.close()


ApiFactory = Callable[..., Any]


@pytest.fixture
async def make_api(
    store: SQLiteStore, accounts: Accounts, clock: Clock
) -> AsyncIterator[ApiFactory]:
    clients: list[httpx.AsyncClient] = []
    services: list[Accounts] = []

    async def make(
        *, rate_limit: float = 1000.0, name: str = "acme", client: str = "127.0.0.1",
        store: SQLiteStore = store, fast_send: bool = True, **context: Any,
    ) -> Api:  # fmt: skip
        service = accounts
        if store is not default_store:  # a test's own store: its own accounts service
            service = Accounts(store, hasher=CHEAP_HASHER)
            services.append(service)
        account, issued = await service.create(name, clock(), rate_limit=rate_limit)
        accepted: list[NewMessage] = []
        ctx = ApiContext(
            store=store,
            accounts=service,
            ids=SortableIdGenerator(),
            clock=clock,
            metrics=Metrics(CollectorRegistry()),
            config=HttpConfig(),
            on_accepted=accepted.extend,
        )
        ctx = replace(ctx, **context)
        app = create_app(ctx, fast_send=fast_send)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(client, 40000)),
            base_url="http://herald.test",
        )
        clients.append(http)
        return Api(app, http, ctx, store, service, clock, account, issued.key, accepted)

    default_store = store
    yield make
    for http in clients:
        await http.aclose()
    for service in services:
        service.close()


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    made: Api = await make_api()
    return made
