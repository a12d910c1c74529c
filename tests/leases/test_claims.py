"""A node's dispatch claims and its lease on a real PostgreSQL (issue 10): the
leader requeues a lapsed node's claims within one lease, never a live node's.

Nodes here are a store and a lease keeper under one name, in this process,
with short leases (2 s) and a claim lease far longer (60 s): a claim that
comes back within a few seconds came back by the leader's requeue.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from herald.cluster.leases import LeaseSettings
from herald.cluster.postgres import LeaseKeeper, SlotTable, node_id
from herald.config import HeraldConfig, StoreConfig
from herald.ids import SortableIdGenerator
from herald.store import Message, NewMessage, Reschedule, Source
from herald.store.postgres import PostgresStore, create_pool
from herald.workers._leases import ServeLeases

from .test_keeper import Cuttable

S = LeaseSettings(lease=2.0, margin=0.8, renew_every=0.25, jitter=0.1)
#: The claims' own lease: what a dead node's messages waited for before.
CLAIM_LEASE = 60.0


@dataclass
class Node:
    store: PostgresStore
    leases: ServeLeases
    pool: Cuttable
    lapses: list[float]

    @property
    def keeper(self) -> LeaseKeeper:
        keeper: LeaseKeeper = self.leases.keeper
        return keeper


Start = Callable[[str], Awaitable[Node]]


@pytest.fixture
async def start(pg_store_dsn: str) -> AsyncIterator[Start]:
    nodes: list[Node] = []

    async def start_node(name: str) -> Node:
        store = await PostgresStore.open(pg_store_dsn, max_connections=4)
        store.node = name
        pool = await create_pool(pg_store_dsn, max_size=2)
        cut = Cuttable(pool)
        leases = ServeLeases(None, pool)
        lapses: list[float] = []
        leases.keeper = LeaseKeeper(SlotTable(cut, name, S.lease), {}, S,
                                    on_leader=leases.chores,
                                    on_lapsed=lambda: lapses.append(time.monotonic()))
        node = Node(store, leases, cut, lapses)
        nodes.append(node)
        await leases.start()
        return node

    try:
        yield start_node
    finally:
        for node in nodes:
            node.pool.restore()
            await node.leases.stop()
            await node.store.aclose()


async def _accept(store: PostgresStore, count: int) -> list[NewMessage]:
    account = await store.create_account("acme", time.time(), rate_limit=100, bind_limit=1)
    ids, n = SortableIdGenerator(), itertools.count()
    now = time.time()
    messages = [NewMessage(
        id=ids.new_id(now), account_id=account.id, source=Source.HTTP,
        to=f"+4477009{next(n):05d}", sender="ACME", body=b"hi", encoding="gsm7",
        data_coding=0, segments=1, accepted_at=now, expires_at=now + 3600,
    ) for _ in range(count)]  # fmt: skip
    await store.accept(messages)
    return messages


async def _leading(node: Node) -> None:
    for _ in range(100):  # 5 s at most
        if node.keeper.leading:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node.keeper.node} never led")


async def _owners(node: Node) -> dict[str | None, int]:
    rows = await node.store._pool.fetch("SELECT owner, count(*) FROM dispatch_queue GROUP BY 1")
    return {r[0]: r[1] for r in rows}


async def _claim_within(node: Node, count: int, seconds: float) -> tuple[list[Message], float]:
    """Poll claims on ``node`` until it holds ``count`` messages (bounded)."""
    began = time.monotonic()
    got: list[Message] = []
    while time.monotonic() - began < seconds:
        got += await node.store.claim(100, time.time(), CLAIM_LEASE)
        if len(got) >= count:
            return got, time.monotonic() - began
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(got)} of {count} claimed in {seconds} s: {await _owners(node)}")


async def test_the_store_and_the_lease_keeper_of_a_process_share_one_name(
    pg_store_dsn: str,
) -> None:
    store = await PostgresStore.open(pg_store_dsn, max_connections=2)
    leases = await ServeLeases.open(HeraldConfig(store=StoreConfig(url=pg_store_dsn)))
    assert leases is not None
    try:
        assert store.node == leases.keeper.node == node_id()
        await _accept(store, 1)
        await store.claim(10, time.time(), CLAIM_LEASE)
        assert await _owners_of(store) == {node_id(): 1}  # the name the leader requeues by
    finally:
        await leases.stop()
        await store.aclose()


async def _owners_of(store: PostgresStore) -> dict[str | None, int]:
    rows = await store._pool.fetch("SELECT owner, count(*) FROM dispatch_queue GROUP BY 1")
    return {r[0]: r[1] for r in rows}


async def test_a_dead_nodes_claims_are_requeued_within_one_lease(start: Start) -> None:
    leader = await start("node-a")
    await _leading(leader)
    dead = await start("node-b")
    messages = await _accept(leader.store, 5)
    assert len(await dead.store.claim(100, time.time(), CLAIM_LEASE)) == 5
    await asyncio.sleep(S.lease)  # alive a while: its claims stay its own
    assert await leader.store.claim(100, time.time(), CLAIM_LEASE) == ()
    assert await _owners(leader) == {"node-b": 5}
    await dead.leases.keeper.stop(release=False)  # kill -9: nothing handed back
    got, took = await _claim_within(leader, 5, 4 * S.lease)
    assert sorted(m.id for m in got) == sorted(m.id for m in messages)
    assert {m.attempt for m in got} == {2}
    # its registration ends one lease after its last renewal; the leader looks
    # at every cycle (a renewal period), far sooner than the claims' 60 s
    assert took <= S.lease + 4 * S.renew_every + 1.0, took


async def test_a_slow_keeper_keeps_its_nodes_claims_and_a_lapsed_one_cannot(
    start: Start,
) -> None:
    leader = await start("node-a")
    await _leading(leader)
    slow = await start("node-b")
    await _accept(leader.store, 4)
    held = await slow.store.claim(100, time.time(), CLAIM_LEASE)
    assert len(held) == 4

    async def extend() -> None:
        await slow.store.reschedule_many([Reschedule(m.id, m.attempt,
                                                     time.time() + CLAIM_LEASE) for m in held])

    # Renewals stalled for less than the sending window: alive all along, and
    # its store extends its claims meanwhile; none is requeued.
    for _ in range(3):
        slow.pool.cut()
        await asyncio.sleep(S.sending_window - 0.5)
        await extend()
        slow.pool.restore()
        await asyncio.sleep(2 * S.renew_every)
        assert slow.keeper.alive and not slow.lapses
    assert await leader.store.claim(100, time.time(), CLAIM_LEASE) == ()
    assert await _owners(leader) == {"node-b": 4}

    # Stalled past its lease while its store works: it knows it lapsed, the
    # leader requeues its claims, and its extensions no longer hold them.
    slow.pool.cut()
    for _ in range(int(2 * S.lease / 0.1)):
        await extend()
        if await _owners(leader) != {"node-b": 4}:
            break
        await asyncio.sleep(0.1)
    assert slow.lapses and not slow.keeper.alive
    await extend()  # too late: refused
    got, _took = await _claim_within(leader, 4, 2 * S.lease)
    assert sorted(m.id for m in got) == sorted(m.id for m in held)
    assert await _owners(leader) == {"node-a": 4}
    slow.pool.restore()  # back: it renews and claims anew, but not these
    for _ in range(100):
        if slow.keeper.alive:
            break
        await asyncio.sleep(0.05)
    assert slow.keeper.alive
    await extend()
    assert await _owners(leader) == {"node-a": 4}
    assert await slow.store.claim(100, time.time(), CLAIM_LEASE) == ()


