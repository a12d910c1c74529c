"""While the store is out of reach, nothing is submitted upstream (issue 10).

A part sent while its record cannot be written goes out again once its claim
lapses: a duplicate upstream. The cluster tests' PostgreSQL restart
(``tests/nodes``) counted such duplicates without a bound; the dispatcher
now stops every connector's submits at the first write the store cannot be
reached for, and resumes when one goes through, so a restart costs at most
the parts in flight then (a window per bind). Here one dispatcher on a
PostgreSQL server of its own, sending through herald's simulator, while the
server is shut down and started again.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

from prometheus_client import CollectorRegistry

from herald.metrics import Metrics
from herald.sim import SimConfig, Simulator
from herald.store import Status
from herald.store.postgres import open_served
from peers.postgres import PgCluster

from .conftest import FAST, Rig, connector, eventually

#: Slow enough that an unchecked pump would send several parts during the
#: outage (it did: 9 of the window's 10 while the server shut down).
TPS = 5.0
#: Claims outlast the outage: nothing here lapses, so no part may go out twice.
SETTINGS = replace(FAST, lease=60.0)
#: Seconds from the shutdown's start for a write to fail (the claim loop asks
#: every poll_interval, and receipts come 0.05 s after each submit) and so for
#: the submits to stop: a loaded machine's stall included.
NOTICE = 0.4
#: Seconds of outage watched after the server is down.
WATCH = 1.5
async def test_nothing_is_submitted_while_the_store_is_out_of_reach() -> None:
    server = await asyncio.to_thread(PgCluster.start)
    store = None
    rig: Rig | None = None
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.05), keep_records=True))
    try:
        dsn = await asyncio.to_thread(server.create_database, "outage")
        store = await open_served(dsn, migrate=True, max_connections=4)
        account = await store.create_account("acme", time.time(), rate_limit=1000,
                                             bind_limit=4)  # fmt: skip
        rig = Rig(store, account, Metrics(CollectorRegistry()))  # type: ignore[arg-type]
        await sim.start()
        node = await rig.dispatcher([connector("up", sim.port, tps=TPS)], settings=SETTINGS)
        up = node.connectors["up"]
        ids = await rig.send(20)

        async def sending() -> bool:
            return len(sim.records) >= 3

        await eventually(sending, timeout=15)
        before = len(sim.records)
        await asyncio.to_thread(server.shut_down)  # fast shutdown: sessions end at once
        await asyncio.sleep(WATCH)
        during = len(sim.records) - before
        # What went out before the first failed write stopped the submits: a
        # part in flight and those of NOTICE seconds; then nothing.
        assert during <= TPS * NOTICE + 1, f"{during} submitted while the store was away"
        assert up.held_back
        await asyncio.to_thread(server.start_again)
        await rig.wait_all(ids, Status.DELIVERED, timeout=30)  # resumed by itself
        assert not up.held_back
        sent = Counter(r.destination for r in sim.records)
        assert len(sent) == len(ids) and set(sent.values()) == {1}  # nothing twice
    finally:
        for d in rig.dispatchers if rig is not None else []:
            await d.stop()
        await sim.stop(timeout=0.5)
        if store is not None:
            await store.aclose()
        await asyncio.to_thread(server.stop)
