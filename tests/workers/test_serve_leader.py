"""``ServeLeases`` on a real PostgreSQL: the node that leads does the cluster's
chores (requeue lapsed claims, history partitions), the others do not, and
another node takes over when the leader stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from herald.config import HeraldConfig, StoreConfig
from herald.ids import SortableIdGenerator
from herald.store import NewMessage, Source
from herald.store.postgres import DispatchQueue, HistoryPartitions, create_pool
from herald.store.postgres._history import AHEAD, DAY, day_name
from herald.workers import ServeLeases

IDS = SortableIdGenerator()


def _message(now: float) -> NewMessage:
    return NewMessage(
        id=IDS.new_id(now), account_id=1, source=Source.HTTP, to="+447700900001",
        sender="ACME", body=b"hello", encoding="gsm7", data_coding=0, segments=1,
        accepted_at=now, expires_at=now + 3600)  # fmt: skip


async def _until(cond: Callable[[], bool], seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


async def test_the_leader_alone_does_the_chores_and_another_takes_over(
    pg_store_dsn: str,
) -> None:
    config = HeraldConfig(store=StoreConfig(url=pg_store_dsn))
    pool = await create_pool(pg_store_dsn)
    dead = DispatchQueue(pool, "node-dead")  # a node that claimed, then died

    async def lapsed_claim() -> None:
        now = time.time()
        await dead.accept([_message(now - 120)], ["c1"])
        assert len(await dead.claim("c1", 1, now - 60, lease=30.0)) == 1  # lapsed 30 s ago

    nodes: list[ServeLeases] = []
    try:
        for _ in range(2):
            leases = await ServeLeases.open(config)
            assert leases is not None and leases.slots is not None  # no connectors: nothing
            nodes.append(leases)
            await leases.start()
            await _until(lambda: any(n.leads() for n in nodes), 10)
        a, b = sorted(nodes, key=lambda n: not n.leads())
        await lapsed_claim()
        await _until(lambda: a.requeued == 1, 10)
        assert await pool.fetchval("SELECT count(*) FROM dispatch_queue WHERE owner IS NULL") == 1
        assert (a.leads(), b.leads(), b.requeued) == (True, False, 0)  # on the leader only
        names = {p.name for p in await HistoryPartitions(pool).partitions("fraud_decisions")}
        today = time.time() // DAY * DAY
        assert day_name("fraud_decisions", today + AHEAD * DAY) in names  # made ahead

        await a.stop()  # hands the leadership back: the other leads at its next cycle
        nodes.remove(a)
        await _until(b.leads, 10)
        await lapsed_claim()
        await _until(lambda: b.requeued == 1, 10)
    finally:
        for leases in nodes:
            await leases.stop()
        await pool.close()
