"""Fallback timers survive kill -9 (issue 14 test 7): every due fallback fires once.

Chains wait on "read within 60 s" timers that are all due; a child process
running the chat service fires them a few at a time and is killed (SIGKILL: no
cleanup) in the middle, some timers claimed and not yet consumed. A new service
over the same data directory, its clock past the claims' leases, finishes the
work. Then every chain has started its SMS leg exactly once: one message per
chain (0 lost, 0 doubled) and no timer left. The suite runs 200 chains; ``-m
slow`` runs 1,000.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from herald.chat import ChatService, ChatSettings
from herald.ids import SortableIdGenerator
from herald.store import (
    ChainChange,
    LegUpdate,
    NewChain,
    NewChatLeg,
    NewMessage,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StatusEvents,
)

CHILD = Path(__file__).with_name("chain_crash_child.py")
READY_TIMEOUT = 20.0
LEASE = 30.0


async def _waiting_chains(data: Path, count: int, now: float) -> list[str]:
    """``count`` chains (WhatsApp template, then SMS), their WhatsApp leg accepted
    and its timer due at ``now``: as the chat service leaves them."""
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    account = await store.create_account("acme", now, rate_limit=1e6, bind_limit=1)
    ids = SortableIdGenerator()
    chains = []
    for n in range(count):
        sms = NewMessage(ids.new_id(now), account.id, Source.HTTP, f"4477009{n:05d}", "ACME",
                         b"Your order has shipped", "gsm7", 0, 1, now, now + 3600,
                         callback_events=StatusEvents.NONE)
        chain = NewChain(ids.new_id(now), account.id, sms.to, (
            NewChatLeg("whatsapp", "1065550001", '{"template":"t","language":"en",'
                       '"parameters":[]}', "read", 60.0),
            NewChatLeg("sms", "ACME", sms=sms)), now - 60)
        await store.accept_chain(chain)
        assert await store.change_chain(ChainChange(
            chain.id, 0, now - 60, Status.SENT,
            legs={0: LegUpdate("accepted", provider_id=f"wamid.{n}")}, arm={0: now}))
        chains.append(chain.id)
    await store.aclose()
    return chains


def _started(data: Path) -> int:
    with sqlite3.connect(f"file:{data / 'herald.db'}?mode=ro", uri=True) as db:
        count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    db.close()
    return int(count)


async def _kill_mid_work(tmp_path: Path, count: int) -> None:
    data = tmp_path / "data"
    now = time.time()
    chains = await _waiting_chains(data, count, now)
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), str(data), "1", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), READY_TIMEOUT)
        assert line == b"READY\n", line
        deadline = time.monotonic() + READY_TIMEOUT
        while _started(data) < count // 10:  # some fired: kill it in the middle
            assert child.returncode is None
            assert time.monotonic() < deadline, "the child fired no timer"
            await asyncio.sleep(0.005)
    finally:
        if child.returncode is None:
            os.kill(child.pid, signal.SIGKILL)
        await asyncio.wait_for(child.wait(), timeout=10)
    fired_before = _started(data)
    assert 0 < fired_before < count, "the kill did not land in the middle of the work"

    # Restart: the claims of the killed process lapse, their timers are claimed again.
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    chat = ChatService(store, ChatSettings(batch=100), clock=lambda: time.time() + LEASE + 1,
                       adapters={})
    try:
        for _ in range(count):  # bounded: each step fires up to 100
            if not await chat.step() and await store.claim_chain_timers(
                    time.time() + LEASE + 1, 0.001, 1) == ():
                break
        rows = await store._readers.run(lambda c: c.execute(
            "SELECT c.id, count(m.id) FROM chat_chains c JOIN chat_legs l ON l.chain_seq = c.seq"
            " LEFT JOIN messages m ON m.id = l.message_id GROUP BY c.id").fetchall())
        timers = await store._readers.run(
            lambda c: c.execute("SELECT count(*) FROM chat_timers").fetchone()[0])
        messages = await store._readers.run(
            lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
        states = await store._readers.run(lambda c: c.execute(
            "SELECT state, count(*) FROM chat_legs WHERE leg = 1 GROUP BY state").fetchall())
    finally:
        await store.aclose()
    per_chain = dict(rows)
    lost = [c for c in chains if per_chain.get(c) == 0]
    doubled = [c for c in chains if per_chain.get(c, 0) > 1]
    assert (len(lost), len(doubled)) == (0, 0)
    assert messages == count and timers == 0
    assert states == [("pending", count)]


async def test_kill_9_with_200_chains_waiting_every_fallback_fires_once(tmp_path: Path) -> None:
    await _kill_mid_work(tmp_path, 200)


@pytest.mark.slow
async def test_kill_9_with_1000_chains_waiting_every_fallback_fires_once(tmp_path: Path) -> None:
    await _kill_mid_work(tmp_path, 1000)
