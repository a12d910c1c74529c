"""Fixtures for the HTTP API tests: the real app on a real SQLite store.

Requests go through httpx's ASGI transport (no socket) unless a test starts
uvicorn itself, or its module sets the ``transport`` fixture to ``"uvicorn"``:
then each app is served by uvicorn with herald's protocol (``herald serve``'s
server: ``api/_protocol.py``) on a loopback socket. Credentials are real
argon2id hashes with cheap parameters.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.api import ApiContext, create_app
from herald.api._protocol import protocol_for
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
def transport() -> str:
    """How requests reach the app: "asgi" (in process) or "uvicorn" (a socket)."""
    return "asgi"


async def _serve(app: FastAPI, servers: list[tuple[uvicorn.Server, asyncio.Task[None]]]) -> str:
    """``app`` served as ``herald serve`` serves it, on a free loopback port: its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(
        app, http=protocol_for(getattr(app, "fast_send", None)), log_level="warning",
        lifespan="off", access_log=False, proxy_headers=False))  # fmt: skip
    task = asyncio.create_task(server.serve(sockets=[sock]))
    servers.append((server, task))
    for _ in range(500):  # bounded: 5 s
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def make_api(
    store: SQLiteStore, accounts: Accounts, clock: Clock, transport: str
) -> AsyncIterator[ApiFactory]:
    clients: list[httpx.AsyncClient] = []
    services: list[Accounts] = []
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

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
        if transport == "uvicorn":
            http = httpx.AsyncClient(base_url=await _serve(app, servers))
        else:
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
    for server, task in servers:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    for service in services:
        service.close()


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    made: Api = await make_api()
    return made
