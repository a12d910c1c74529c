"""Fixtures for the webhook tests: a real SQLite store, an account, a clock, a receiver.

Events are never written by hand: tests accept messages and move their status
through the store API, and the store writes the outbox events itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from herald.accounts import load_master_key, webhook_secret
from herald.config import WebhookConfig
from herald.ids import SortableIdGenerator
from herald.store import (
    Account,
    Channel,
    NewMessage,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StatusEvents,
    StatusUpdate,
)
from herald.webhooks import DeliveryResult, SenderOptions, WebhookSender

from .receiver import Receiver

POLL = 0.005  # seconds between checks of a bounded wait
T0 = 1_800_000_000.0  # a fixed "now": the store and the sender read no clock of their own


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class World:
    """A store in a tmp dir, one account, a clock: everything a sender needs."""

    data_dir: Path
    store: SQLiteStore
    account: Account
    master_key: bytes
    clock: FakeClock
    ids: SortableIdGenerator = field(default_factory=SortableIdGenerator)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def secret(self) -> str:
        return webhook_secret(self.master_key, self.account.id, self.account.webhook_secret_version)

    def new_message(self, **fields: Any) -> NewMessage:
        n = next(self.counter)
        values: dict[str, Any] = {
            "id": self.ids.new_id(self.clock.now),
            "account_id": self.account.id,
            "source": Source.HTTP,
            "to": f"4477009{n:05d}",
            "sender": "ACME",
            "body": f"code {n}".encode(),
            "encoding": "gsm7",
            "data_coding": 0,
            "segments": 1,
            "accepted_at": self.clock.now,
            "expires_at": self.clock.now + 86400,
        }
        values.update(fields)
        return NewMessage(**values)

    async def sent(self, url: str, **fields: Any) -> NewMessage:
        """Accept a message for ``url`` and move it to ``sent``: one webhook event."""
        message = self.new_message(callback_url=url, **fields)
        await self.store.accept([message])
        await self.store.update_statuses([StatusUpdate(message.id, Status.SENT, self.clock.now)])
        return message

    async def reopen(self) -> None:
        """Close the store and open it again from its files (a restart)."""
        await self.store.aclose()
        self.store = SQLiteStore.open(SQLiteConfig(data_dir=self.data_dir))

    def sender(
        self,
        config: WebhookConfig | None = None,
        options: SenderOptions | None = None,
        results: list[DeliveryResult] | None = None,
        **kwargs: Any,
    ) -> WebhookSender:
        return WebhookSender(
            self.store,
            self.master_key,
            config or WebhookConfig(timeout=2.0, backoff_min=10.0, backoff_max=80.0),
            options=options or SenderOptions(poll_interval=0.02),
            clock=self.clock,
            rng=kwargs.pop("rng", random.Random(7)),
            on_result=None if results is None else results.append,
            **kwargs,
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    data_dir = tmp_path / "data"
    store = SQLiteStore.open(SQLiteConfig(data_dir=data_dir))
    account = await store.create_account("acme", T0, rate_limit=100.0, bind_limit=2)
    # Every status change is an event here (a new account hears of finals only):
    # these tests use "sent" as the quickest way to make one.
    account = dataclasses.replace(account, webhook_events=StatusEvents.ALL)
    await store.update_account(account)
    w = World(data_dir, store, account, load_master_key(data_dir), FakeClock())
    try:
        yield w
    finally:
        await w.store.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as rx:
        yield rx


@contextlib.asynccontextmanager
async def running(sender: WebhookSender) -> AsyncIterator[WebhookSender]:
    """Run ``sender`` in a task; stop it (and surface its errors) on the way out."""
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        await sender.stop()
        async with asyncio.timeout(10):
            await task


async def eventually(predicate: Callable[[], bool], what: str, *, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds: at most ``timeout`` seconds, polled every 5 ms."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / POLL) + 1):
        if predicate():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL)
    if not predicate():
        raise AssertionError(f"not within {timeout} s: {what}")


async def pending_events(world: World) -> int:
    """How many webhook events are still to be delivered (claimed with a far-future clock).

    Claiming changes them, so call this only at the end of a test.
    """
    events = await world.store.claim_outbox(Channel.WEBHOOK, T0 + 10**7, lease=1, limit=1000)
    return len(events)
