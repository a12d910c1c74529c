"""Fixtures for dispatch tests: a real SQLite store, real upstream servers on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from herald.config import ConnectorConfig, HeraldConfig, InboundConfig, RouteConfig
from herald.dispatch import Dispatcher, DispatchSettings
from herald.dispatch._connector import SlotGate
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.store import Account, Message, NewMessage, Source, SQLiteConfig, SQLiteStore, Status

from .upstream import Upstream

#: Short timings so every test runs in about a second.
FAST = DispatchSettings(
    lease=5.0, poll_interval=0.05, down_grace=0.3, retry_initial=0.05, retry_max=0.2,
    handback_initial=0.1, handback_max=0.5, throttle_pause_initial=0.01, throttle_pause_max=0.1,
    throttle_retry_initial=0.02, throttle_retry_max=0.2, housekeeping_interval=0.1,
    receipt_grace=0.0, stop_timeout=2.0,
)


def connector(name: str, port: int, **fields: Any) -> ConnectorConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "system_id": "herald", "password": "pw",
        "tps": 1000.0, "window": 10, "reconnect_min": 0.05, "reconnect_max": 0.2,
        "response_timeout": 2.0,
    }
    values.update(fields)
    return ConnectorConfig(name=name, **values)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``check`` until true; bounded in time (and so in iterations)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@dataclass
class Rig:
    """A store with one account, and the dispatchers/upstreams a test starts."""

    store: SQLiteStore
    account: Account
    metrics: Metrics
    ids: SortableIdGenerator = field(default_factory=SortableIdGenerator)
    dispatchers: list[Dispatcher] = field(default_factory=list)
    upstreams: list[Upstream] = field(default_factory=list)

    async def upstream(self, upstream: Upstream | None = None, port: int = 0) -> Upstream:
        up = upstream or Upstream()
        await up.start(port)
        self.upstreams.append(up)
        return up

    async def dispatcher(
        self,
        connectors: list[ConnectorConfig],
        routes: list[tuple[str, tuple[str, ...]]] | None = None,
        *,
        inbound: tuple[InboundConfig, ...] = (),
        settings: DispatchSettings = FAST,
        start: bool = True,
        slots: SlotGate | None = None,
    ) -> Dispatcher:
        if routes is None:
            routes = [("", tuple(c.name for c in connectors))]
        config = HeraldConfig(
            connectors=tuple(connectors),
            routes=tuple(RouteConfig(p, c) for p, c in routes),
            inbound=inbound,
        )
        d = Dispatcher(self.store, config, self.metrics, time.time, settings=settings,
                       slots=slots)
        self.dispatchers.append(d)
        if start:
            await d.start()
        return d

    async def send(self, count: int = 1, *, to_prefix: str = "4477009",
                   **fields: Any) -> list[str]:
        """Accept ``count`` messages; wake the dispatchers; return their ids."""
        now = time.time()
        rows = []
        for n in range(count):
            values: dict[str, Any] = {
                "id": self.ids.new_id(now), "account_id": self.account.id,
                "source": Source.HTTP, "to": f"{to_prefix}{n:05d}", "sender": "HERALD",
                "body": f"code {n}".encode(), "encoding": "gsm7", "data_coding": 0,
                "segments": 1, "accepted_at": now, "expires_at": now + 600,
            }
            values.update(fields)
            rows.append(NewMessage(**values))
        await self.store.accept(rows)
        for d in self.dispatchers:
            d.wake()
        return [r.id for r in rows]

    async def get(self, message_id: str) -> Message:
        return await self.store.get_message(message_id)

    async def statuses(self, ids: list[str]) -> list[Status]:
        return [(await self.get(i)).status for i in ids]

    async def wait_all(self, ids: list[str], status: Status, timeout: float = 10.0) -> None:
        async def done() -> bool:
            return all(s is status for s in await self.statuses(ids))

        try:
            await eventually(done, timeout)
        except AssertionError:
            got = await self.statuses(ids)
            raise AssertionError(
                f"expected all {status.label}, got {[s.label for s in got]}") from None

    def counter(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    account = await store.create_account("acme", time.time(), rate_limit=1000, bind_limit=4)
    r = Rig(store, account, Metrics(CollectorRegistry()))
    store.watch_finals(r.metrics.count_finals)  # as herald serve wires it
    try:
        yield r
    finally:
        for d in r.dispatchers:
            await d.stop()
        for up in r.upstreams:
            await up.stop()
        await store.aclose()
