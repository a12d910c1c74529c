"""herald's HTTP app with the admin API and the console, served by uvicorn on
127.0.0.1, on a real SQLite store, with admin keys of both scopes and an account.

``Console.signed_in(key)`` returns an httpx client holding a console session
and the page's CSRF token.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.admin import Admin, AdminKeys
from herald.api import AdminContext, ApiContext, ConnectorState, create_app
from herald.defence import LiveDefence
from herald.guard.journal import GuardJournal
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.store import AdminScope, SQLiteConfig, SQLiteStore

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
#: Seconds any single step may take before it counts as hung.
STEP = 20.0
CONNECTORS = (
    ConnectorState("eu-1", "127.0.0.1", 2775, "herald", "transceiver", 2, 1, 50.0, 10),
    ConnectorState("eu-2", "127.0.0.1", 2776, "herald2", "transmitter", 1, 0, float("inf"), 10),
)
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@dataclass
class Console:
    url: str
    store: SQLiteStore
    admin: Admin
    metrics: Metrics
    write_key: str
    read_key: str
    account_key: str  # of the account "acme"
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    verify: ssl.SSLContext | bool = True
    guard_log: Path = Path()  # the guard audit log the admin API reads (absent at first)
    defence: LiveDefence | None = None  # the pumping defence the app screens with

    def client(self, **headers: str) -> httpx.AsyncClient:
        made = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=STEP,
                                 verify=self.verify)
        self.clients.append(made)
        return made

    async def signed_in(self, key: str) -> tuple[httpx.AsyncClient, str]:
        """A client with a console session opened with ``key``, and its CSRF token."""
        client = self.client()
        answer = await client.post("/console/login", data={"key": key})
        assert answer.status_code == 303, answer.text
        page = await client.get("/console/")
        assert page.status_code == 200
        found = _CSRF.search(page.text)
        assert found is not None
        return client, found[1]


@contextlib.asynccontextmanager
async def started(data: Path, *, tls: trustme.CA | None = None) -> AsyncIterator[Console]:
    """The app served on 127.0.0.1 (over TLS with a certificate of ``tls``)."""
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    accounts = Accounts(store, hasher=CHEAP_HASHER)
    keys = AdminKeys(store, hasher=CHEAP_HASHER)
    admin = Admin(store, accounts, keys)
    write = await admin.issue_admin_key("cli:test", "ops", AdminScope.WRITE)
    read = await admin.issue_admin_key("cli:test", "monitor", AdminScope.READ)
    _, account_key = await admin.create_account("cli:test", "acme", {}, allow_private_urls=False)
    metrics = Metrics(CollectorRegistry())
    guard_log = data.parent / "guard-audit.jsonl"
    ids = SortableIdGenerator()
    defence = LiveDefence(store, ids)
    app = create_app(ApiContext(
        store=store, accounts=accounts, ids=ids, clock=time.time, metrics=metrics,
        admin=AdminContext(admin, connectors=lambda: CONNECTORS,
                           guard=GuardJournal(guard_log, fresh_within=STEP)),
        defence=defence,
    ))  # fmt: skip
    options: dict[str, Any] = {}
    if tls is not None:
        cert = tls.issue_cert("127.0.0.1")
        key_file, cert_file = data.parent / "key.pem", data.parent / "cert.pem"
        cert.private_key_pem.write_to_path(str(key_file))
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        options = {"ssl_keyfile": str(key_file), "ssl_certfile": str(cert_file)}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", **options))  # fmt: skip
    task = asyncio.create_task(server.serve())
    for _ in range(400):  # bounded: up to STEP seconds for the server to listen
        if server.started or task.done():
            break
        await asyncio.sleep(STEP / 400)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if tls is not None else "http"
    served = Console(f"{scheme}://127.0.0.1:{port}", store, admin, metrics, write.key, read.key,
                     account_key.key, guard_log=guard_log, defence=defence)
    if tls is not None:
        served.verify = ssl.create_default_context()
        tls.configure_trust(served.verify)
    try:
        yield served
    finally:
        for client in served.clients:
            await client.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, STEP)
        keys.close()
        accounts.close()
        await store.aclose()


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    async with started(tmp_path / "data") as served:
        yield served
