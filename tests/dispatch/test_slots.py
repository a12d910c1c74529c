"""Binds shared between nodes through leases (``Connector`` with a slot gate):
two dispatchers ("nodes") over one message store, each with a
:class:`~herald.cluster.LeaseKeeper` on one real PostgreSQL, sending through
one upstream. The upstream counts the sessions bound at every moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from herald.cluster.leases import LeaseSettings
from herald.cluster.postgres import LeaseKeeper, SlotTable, ensure_schema
from herald.dispatch import Dispatcher
from herald.net.server import CloseReason, ServerConnection
from herald.store import Status
from herald.store.postgres import connection, create_pool

from .conftest import Rig, connector, eventually
from .upstream import Upstream

pytestmark = pytest.mark.postgres

# Short leases, with room for a loaded machine's stalls (as tests/leases).
S = LeaseSettings(lease=2.0, margin=0.8, renew_every=0.25, jitter=0.1)
BINDS = 3
TPS = 150.0


@dataclass
class Counting(Upstream):
    """An upstream that records the most sessions bound at once."""

    bound: int = 0
    most: int = 0

    def on_bound(self, conn: ServerConnection) -> None:
        self.bound += 1
        self.most = max(self.most, self.bound)
        super().on_bound(conn)

    def on_closed(self, conn: ServerConnection, reason: CloseReason) -> None:
        self.bound -= 1


@dataclass
class Node:
    keeper: LeaseKeeper
    dispatcher: Dispatcher


@pytest.fixture
async def pools(pg_store_dsn: str) -> AsyncIterator[list[Any]]:
    async with connection(pg_store_dsn) as conn:
        await ensure_schema(conn)
    made: list[Any] = []
    yield made
    for pool in made:
        await pool.close()


async def _node(rig: Rig, pg_store_dsn: str, pools: list[Any], name: str, port: int) -> Node:
    pool = await create_pool(pg_store_dsn, max_size=2)
    pools.append(pool)
    box: list[Dispatcher] = []
    keeper = LeaseKeeper(
        SlotTable(pool, name, S.lease), {"up": BINDS}, S,
        on_gained=lambda h: box[0].slot_gained(h.connector, h.slot),
        on_lost=lambda h: box[0].slot_lost(h.connector, h.slot),
    )
    config = connector("up", port, tps=TPS, binds=BINDS, window=10)
    box.append(await rig.dispatcher([config], slots=keeper))
    await keeper.start()
    return Node(keeper, box[0])


async def _shared(up: Counting, a: Node, b: Node) -> None:
    """Wait (bounded) until the configured binds are up, some on each node."""

    async def shared() -> bool:
        return up.bound == BINDS and all(
            n.dispatcher.connectors["up"].bound >= 1 for n in (a, b))

    await eventually(shared, timeout=15)


async def _binds_within_limit_while(up: Counting, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        assert up.bound <= BINDS
        await asyncio.sleep(0.02)


async def test_two_nodes_share_the_binds_and_the_rate_never_above_the_configuration(
    rig: Rig, pg_store_dsn: str, pools: list[Any]
) -> None:
    up = Counting()
    await rig.upstream(up)
    assert up.server is not None
    a = await _node(rig, pg_store_dsn, pools, "node-a", up.server.port)
    b = await _node(rig, pg_store_dsn, pools, "node-b", up.server.port)
    try:
        await _shared(up, a, b)
        await _binds_within_limit_while(up, 1.0)
        ids = await rig.send(300)
        await rig.wait_all(ids, Status.DELIVERED, timeout=30)
        times = sorted(s.at for s in up.submits)
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert rate < TPS * 1.05, f"{rate:.1f}/s for {TPS}/s"
        carriers = {s.conn_id for s in up.submits}
        assert len(carriers) >= 2  # both nodes sent
        assert up.most <= BINDS
    finally:
        await a.keeper.stop()
        await b.keeper.stop()


async def test_a_dead_nodes_binds_are_taken_over_within_a_lease(
    rig: Rig, pg_store_dsn: str, pools: list[Any]
) -> None:
    up = Counting()
    await rig.upstream(up)
    assert up.server is not None
    a = await _node(rig, pg_store_dsn, pools, "node-a", up.server.port)
    b = await _node(rig, pg_store_dsn, pools, "node-b", up.server.port)
    try:
        await _shared(up, a, b)
        # node a dies: its keeper stops renewing without giving anything back,
        # and its binds go away with it (the process is gone)
        await a.keeper.stop(release=False)
        rig.dispatchers.remove(a.dispatcher)
        await a.dispatcher.stop()
        loop = asyncio.get_running_loop()
        died = loop.time()

        async def taken_over() -> bool:
            assert up.bound <= BINDS
            return b.dispatcher.connectors["up"].bound == BINDS

        await eventually(taken_over, timeout=15)
        assert loop.time() - died < S.lease + 2 * S.renew_every + 1.0
        ids = await rig.send(50)
        await rig.wait_all(ids, Status.DELIVERED, timeout=30)
        assert up.most <= BINDS
    finally:
        await b.keeper.stop()
