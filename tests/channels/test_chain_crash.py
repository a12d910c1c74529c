"""Fallback timers survive kill -9 (issue 14 test 7): every due fallback fires once.

Chains wait on "read within 60 s" timers that are all due; a child process
running the chat service fires them a few at a time and is killed (SIGKILL: no
cleanup) in the middle, some timers claimed and not yet consumed. A new service
over the same data directory, its clock past the claims' leases, finishes the
work. Then every chain has started its SMS leg exactly once: one message per
chain (0 lost, 0 doubled) and no timer left, with 1,000 chains. On
PostgreSQL two such processes share the database (two nodes), both are
killed in turn in the middle of the work, and a third finishes it, with the
same outcome.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

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
    Store,
)
from herald.store.postgres import PostgresStore, create_pool

CHILD = Path(__file__).with_name("chain_crash_child.py")
READY_TIMEOUT = 20.0
LEASE = 30.0
#: Seconds between the PostgreSQL nodes' steps (5 timers each): slow enough
#: that the second kill lands before the work is done on a loaded machine.
NODE_PAUSE = 0.02


async def _waiting_chains(store: Store, count: int, now: float) -> list[str]:
    """``count`` chains (WhatsApp template, then SMS), their WhatsApp leg accepted
    and its timer due at ``now``: as the chat service leaves them."""
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
    return chains


def _started(data: Path) -> int:
    with sqlite3.connect(f"file:{data / 'herald.db'}?mode=ro", uri=True) as db:
        count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    db.close()
    return int(count)


async def _kill_mid_work(tmp_path: Path, count: int) -> None:
    data = tmp_path / "data"
    now = time.time()
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    chains = await _waiting_chains(store, count, now)
    await store.aclose()
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
    try:
        await _finish(store, count, LEASE + 1)
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
    _every_fallback_fired_once(chains, dict(rows), messages, timers, states)


def _every_fallback_fired_once(chains: list[str], per_chain: dict[str, int], messages: int,
                               timers: int, states: list[tuple[str, int]]) -> None:
    """One SMS message per chain (``per_chain``: messages of each chain), no
    timer left, every SMS leg started."""
    lost = [c for c in chains if per_chain.get(c) == 0]
    doubled = [c for c in chains if per_chain.get(c, 0) > 1]
    assert (len(lost), len(doubled)) == (0, 0)
    assert messages == len(chains) and timers == 0
    assert states == [("pending", len(chains))]


async def test_kill_9_with_1000_chains_waiting_every_fallback_fires_once(tmp_path: Path) -> None:
    await _kill_mid_work(tmp_path, 1000)  # the count: ~2x the time of 200


async def _finish(store: Store, count: int, clock: float) -> None:
    """A chat service whose clock is ``clock`` seconds ahead fires what is left."""
    chat = ChatService(store, ChatSettings(batch=100), clock=lambda: time.time() + clock,
                       adapters={})
    for _ in range(count):  # bounded: each step fires up to 100
        if not await chat.step() and await store.claim_chain_timers(
                time.time() + clock, 0.001, 1) == ():
            break


async def test_kill_9_of_two_nodes_on_postgresql_every_fallback_fires_once(
        pg_store_dsn: str) -> None:
    count = 150
    store = await PostgresStore.open(pg_store_dsn)
    pool = await create_pool(pg_store_dsn, max_size=2)
    nodes: list[Any] = []

    async def started() -> int:
        n: int = await pool.fetchval("SELECT count(*) FROM messages")
        return n

    async def kill_when(at_least: int, node: Any) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while await started() < at_least:  # some fired: kill it in the middle
            assert node.returncode is None
            assert time.monotonic() < deadline, "the nodes fired too few timers"
            await asyncio.sleep(0.005)
        os.kill(node.pid, signal.SIGKILL)
        await asyncio.wait_for(node.wait(), timeout=10)

    try:
        chains = await _waiting_chains(store, count, time.time())
        for _ in range(2):
            node = await asyncio.create_subprocess_exec(
                sys.executable, str(CHILD), pg_store_dsn, "1", str(NODE_PAUSE),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            nodes.append(node)
            assert node.stdout is not None
            line = await asyncio.wait_for(node.stdout.readline(), READY_TIMEOUT)
            assert line == b"READY\n", line
        await kill_when(count // 10, nodes[0])  # the other node goes on
        await kill_when(count // 5, nodes[1])
        fired_before = await started()
        assert 0 < fired_before < count, "the kills did not land in the middle of the work"

        # A new node: the killed nodes' claims lapse, their timers are claimed again.
        await _finish(store, count, 2 * LEASE + 2)
        rows = await pool.fetch(
            "SELECT c.id, count(m.id) AS sms FROM chat_chains c JOIN chat_legs l"
            " ON l.chain_seq = c.seq LEFT JOIN messages m ON m.id = l.message_id GROUP BY c.id")
        timers = await pool.fetchval("SELECT count(*) FROM chat_timers")
        messages = await started()
        states = await pool.fetch(
            "SELECT state, count(*) AS legs FROM chat_legs WHERE leg = 1 GROUP BY state")
    finally:
        for node in nodes:
            if node.returncode is None:
                os.kill(node.pid, signal.SIGKILL)
                await asyncio.wait_for(node.wait(), timeout=10)
        await pool.close()
        await store.aclose()
    _every_fallback_fired_once(chains, {r["id"]: r["sms"] for r in rows}, messages, timers,
                               [(r["state"], r["legs"]) for r in states])
