"""A lost slot's bind is closed before another node can bind on it (issue 10).

Two "nodes" (a :class:`LeaseKeeper` on one real PostgreSQL and a dispatcher
each, over one SQLite store) share a connector with ``binds = 2`` to herald's
own SMPP simulator, which counts the sessions bound at every moment. The
simulator swallows submits to ``99902…`` (no submit_sm_resp, ever) and so
never answers an unbind on their session (SMPP 3.4 §4.2: it answers the
unbind after what it owes): the giver's unbind cannot end by itself, as when
an upstream is slow under load. The cluster tests (``tests/nodes``) saw 4
sessions of a ``binds = 3`` connector when this happened around a PostgreSQL
restart: the keeper handed the slot back after ``margin`` or at its deadline
while the unbind still waited (up to ``stop_timeout``) for its answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dispatch.conftest import FAST, Rig, connector
from herald.cluster.leases import LeaseSettings
from herald.cluster.postgres import LeaseKeeper, SlotTable, ensure_schema
from herald.dispatch import Dispatcher
from herald.metrics import Metrics
from herald.net.server import CloseReason, ServerConnection
from herald.sim import SimConfig, Simulator
from herald.store import SQLiteConfig, SQLiteStore
from herald.store.postgres import connection, create_pool

from .test_keeper import Cuttable

pytestmark = pytest.mark.postgres

# As tests/leases/test_keeper.py: a node stops sending 1.2 s after its last renewal.
S = LeaseSettings(lease=2.0, margin=0.8, renew_every=0.25, jitter=0.1)
BINDS = 2
#: An unbind left waiting this long would outlast the lease by far: the test
#: fails by the count of binds, not by a timing that happens to be close.
SETTINGS = replace(FAST, stop_timeout=5.0)
#: Swallowed by the simulator (docs/sim.md): never answered.
SWALLOWED = "9990200"


class CountingSim(Simulator):
    """The simulator, counting its bound sessions (every node's) at every moment."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.bound: set[ServerConnection] = set()
        self.most = 0

    def on_bound(self, conn: ServerConnection) -> None:
        self.bound.add(conn)
        self.most = max(self.most, len(self.bound))
        super().on_bound(conn)

    def on_closed(self, conn: ServerConnection, reason: CloseReason) -> None:
        self.bound.discard(conn)
        super().on_closed(conn, reason)


@dataclass
class Node:
    keeper: LeaseKeeper
    dispatcher: Dispatcher
    pool: Cuttable

    def bound(self) -> int:
        return self.dispatcher.connectors["up"].bound


@dataclass
class Cluster:
    rig: Rig
    sim: CountingSim
    dsn: str
    nodes: list[Node]
    pools: list[Any]

    async def node(self, name: str) -> Node:
        pool = await create_pool(self.dsn, max_size=2)
        self.pools.append(pool)
        cut = Cuttable(pool)
        box: list[Dispatcher] = []
        keeper = LeaseKeeper(
            SlotTable(cut, name, S.lease), {"up": BINDS}, S,
            on_gained=lambda h: box[0].slot_gained(h.connector, h.slot),
            on_lost=lambda h: box[0].slot_lost(h.connector, h.slot),
        )
        # Swallowed submits stay in flight (unanswered) for the whole test.
        config = connector("up", self.sim.port, binds=BINDS, window=10, response_timeout=60.0)
        box.append(await self.rig.dispatcher([config], slots=keeper, settings=SETTINGS))
        node = Node(keeper, box[0], cut)
        self.nodes.append(node)
        await keeper.start()
        return node

    async def until(self, what: str, cond: Any, seconds: float) -> None:
        """Poll ``cond`` (bounded), checking the simulator's count at every poll."""
        for _ in range(int(seconds / 0.02) + 1):
            assert self.sim.most <= BINDS, f"{self.sim.most} sessions bound, binds {BINDS}"
            if cond():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"not within {seconds} s: {what}")

    async def swallowed_on_every_bind(self) -> None:
        """Two submits the simulator never answers: one on each bind (the
        connector picks the bind with the most window room)."""
        await self.rig.send(2, to_prefix=SWALLOWED)
        await self.until("two submits swallowed", lambda: self.sim.counters.swallowed >= 2, 10)
        (holder,) = [n for n in self.nodes if n.bound() == BINDS]
        conn = holder.dispatcher.connectors["up"]
        assert all(c.window_room < 10 for c in conn.senders), "an unanswered part on each bind"


@pytest.fixture
async def cluster(tmp_path: Path, pg_store_dsn: str) -> AsyncIterator[Cluster]:
    async with connection(pg_store_dsn) as conn:
        await ensure_schema(conn)
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    account = await store.create_account("acme", time.time(), rate_limit=1000, bind_limit=4)
    rig = Rig(store, account, Metrics(CollectorRegistry()))
    sim = CountingSim(SimConfig(port=0, receipt_delay=(0.05, 0.05)))
    await sim.start()
    c = Cluster(rig, sim, pg_store_dsn, [], [])
    try:
        yield c
    finally:
        await sim.stop(timeout=0.5)  # first: the swallowed parts end with their sessions
        for node in c.nodes:
            node.pool.restore()
            await node.dispatcher.stop()
            await node.keeper.stop()
        for pool in c.pools:
            await pool.close()
        await store.aclose()


async def test_a_slot_given_to_a_joining_node_is_free_only_once_its_bind_is_closed(
    cluster: Cluster,
) -> None:
    giver = await cluster.node("node-a")
    await cluster.until("node-a bound twice", lambda: giver.bound() == BINDS, 10)
    await cluster.swallowed_on_every_bind()
    lost_at = asyncio.get_running_loop().time()
    taker = await cluster.node("node-b")  # fair share: node-a gives its slot 1 back
    await cluster.until("each node bound once",
                        lambda: giver.bound() == 1 and taker.bound() == 1, 5 * S.lease)
    # The giver did not wait for its unbind's answer (never coming): it cut the
    # connection after unbind_within, then handed the slot back.
    assert asyncio.get_running_loop().time() - lost_at < SETTINGS.stop_timeout
    for _ in range(int(S.lease / 0.02)):  # a lease more: still never above the binds
        assert cluster.sim.most <= BINDS
        await asyncio.sleep(0.02)
    assert len(cluster.sim.bound) == BINDS


async def test_a_node_cut_from_the_database_closes_its_binds_before_its_leases_end(
    cluster: Cluster,
) -> None:
    cut = await cluster.node("node-a")
    await cluster.until("node-a bound twice", lambda: cut.bound() == BINDS, 10)
    await cluster.swallowed_on_every_bind()
    cut.pool.cut()  # its renewals hang: it stops at its deadline, margin before the end
    other = await cluster.node("node-b")
    await cluster.until("node-b holds both slots", lambda: other.bound() == BINDS, 5 * S.lease)
    assert cut.bound() == 0
    for _ in range(int(S.lease / 0.02)):
        assert cluster.sim.most <= BINDS
        await asyncio.sleep(0.02)
