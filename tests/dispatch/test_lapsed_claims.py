"""A claim whose lease ended is not this node's any more: nothing of it is sent.

Found by the cluster tests (tests/nodes, docs/scale-out.md): after a
PostgreSQL restart longer than the claims' lease, nodes sent the messages they
still held in their queues while other nodes, which had claimed them again,
sent them too (125 duplicates upstream in one run). The leases could not be
extended while the database was away; the node went on sending anyway, and
had even moved their ends forward in memory before the extension was written.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from herald.config import HeraldConfig, RouteConfig
from herald.dispatch import Dispatcher

from .conftest import FAST, Rig, connector, eventually

#: Long enough that the lease keeper (every lease / 4) does not look during the test.
SETTINGS = replace(FAST, lease=40.0)


async def test_messages_whose_claim_lapsed_are_not_sent_by_their_old_holder(rig: Rig) -> None:
    up = await rig.upstream()
    skew = 0.0

    def clock() -> float:  # this node's clock; the test moves it past the leases' end
        return time.time() + skew

    config = HeraldConfig(connectors=(connector("a", up.server.port, tps=2.0),),  # type: ignore[union-attr]
                          routes=(RouteConfig("", ("a",)),))
    node = Dispatcher(rig.store, config, rig.metrics, clock, settings=SETTINGS)
    rig.dispatchers.append(node)
    await node.start()
    ids = await rig.send(8)

    async def sending() -> bool:
        return len(up.submits) >= 1

    await eventually(sending)  # it claimed them all and sends 2 a second
    # Its claims lapse (a store outage kept it from extending them; here its
    # clock jumps past their end), and another node claims them again.
    skew = 2 * SETTINGS.lease
    taken = await rig.store.claim(10, clock(), SETTINGS.lease)
    assert len(taken) >= 4, "the test needs messages still waiting in the node's queue"
    assert {m.id for m in taken} <= set(ids)
    await asyncio.sleep(0.3)  # what was on its way before has arrived
    before = len(up.submits)
    await asyncio.sleep(2.0)  # at 2/s the old holder would send 4 of them meanwhile
    theirs = {m.to for m in taken}
    sent_after = [s.pdu.destination_addr for s in up.submits[before:]]
    assert [to for to in sent_after if to in theirs] == []


async def test_a_node_whose_registration_lapsed_sends_none_of_its_claims(rig: Rig) -> None:
    """Its lease keeper could not renew in time (``LeaseKeeper.on_lapsed``): the
    leader may requeue everything it claimed, so it sends none of it, and hands
    each back under its attempt (another node claims them at once)."""
    up = await rig.upstream()
    config = HeraldConfig(connectors=(connector("a", up.server.port, tps=2.0),),  # type: ignore[union-attr]
                          routes=(RouteConfig("", ("a",)),))
    node = Dispatcher(rig.store, config, rig.metrics, time.time, settings=SETTINGS)
    alive = True
    node.node_alive = lambda: alive
    rig.dispatchers.append(node)
    await node.start()
    ids = await rig.send(8)

    async def sending() -> bool:
        return len(up.submits) >= 1

    await eventually(sending)  # it claimed them all and sends 2 a second
    alive = False
    node.node_lapsed()
    claimed = node.claimed
    await asyncio.sleep(0.3)  # what was on its way before has arrived
    before = len(up.submits)
    assert before < 8, "the test needs messages still waiting in the node's queue"
    await asyncio.sleep(2.0)  # at 2/s it would send 4 more meanwhile
    assert len(up.submits) == before
    # handed back as their turn came (the pump's, 2/s): another node claims them
    # now, not 40 s later; this one claims nothing while it has lapsed
    taken = await rig.store.claim(10, time.time(), SETTINGS.lease)
    assert len(taken) >= 2 and {m.id for m in taken} <= set(ids)
    assert {m.to for m in taken}.isdisjoint(s.pdu.destination_addr for s in up.submits)
    assert node.claimed == claimed
