"""The admin API served by uvicorn on a loopback socket, on a real SQLite store.

Credentials are real argon2id hashes with cheap parameters. ``secrets``
collects every secret the tests see issued, so that a test can check none
of them reached the logs or the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.admin import Admin, AdminKeys
from herald.api import AdminContext, ApiContext, ConnectorState, create_app
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.store import AdminScope, SQLiteConfig, SQLiteStore

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
#: Seconds any single step may take before it counts as hung.
STEP = 20.0
MASTER_KEY = b"m" * 32
CONNECTORS = (
    ConnectorState("eu-1", "10.1.0.5", 2775, "herald", "transceiver", 2, 1, 50.0, 10),
    ConnectorState("eu-2", "10.1.0.6", 2775, "herald2", "transmitter", 1, 1, float("inf"), 10),
)


@dataclass
class Served:
    """herald's API with the admin API, on ``url``, and keys of each kind."""

    url: str
    store: SQLiteStore
    admin: Admin
    accounts: Accounts
    write_key: str
    read_key: str
    account_key: str  # of the account "acme"
    secrets: list[str] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        made = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=STEP)
        self.clients.append(made)
        return made

    @property
    def admin_client(self) -> httpx.AsyncClient:
        return self.client(self.write_key)


@pytest.fixture
async def served(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Served]:
    caplog.set_level(logging.DEBUG)  # every log line, so that tests can look for secrets
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    accounts = Accounts(store, hasher=CHEAP_HASHER)
    keys = AdminKeys(store, hasher=CHEAP_HASHER)
    admin = Admin(store, accounts, keys, master_key=MASTER_KEY)
    write = await admin.issue_admin_key("cli:test", "ops", AdminScope.WRITE)
    read = await admin.issue_admin_key("cli:test", "monitor", AdminScope.READ)
    _, account_key = await admin.create_account("cli:test", "acme", {}, allow_private_urls=False)
    generation = {"in_use": 0}
    app = create_app(ApiContext(
        store=store, accounts=accounts, ids=SortableIdGenerator(), clock=time.time,
        metrics=Metrics(CollectorRegistry()), block_private_callbacks=True,
        admin=AdminContext(admin, connectors=lambda: CONNECTORS,
                           numbers_in_use=lambda: generation["in_use"]),
    ))  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve())
    for _ in range(400):  # bounded: up to STEP seconds for the server to listen
        if server.started or task.done():
            break
        await asyncio.sleep(STEP / 400)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    served = Served(f"http://127.0.0.1:{port}", store, admin, accounts, write.key, read.key,
                    account_key.key, secrets=[write.key, read.key, account_key.key])
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
