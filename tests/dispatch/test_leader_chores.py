"""The cluster's chores in dispatch's housekeeping run on the leader only
(``Dispatcher(..., leader=...)``; docs/leases.md): validity expiry and purge."""

from __future__ import annotations

import asyncio
import time

from herald.config import HeraldConfig, RouteConfig
from herald.dispatch import Dispatcher
from herald.store import Status

from .conftest import FAST, Rig, connector
from .upstream import Upstream


async def test_validity_expiry_runs_only_while_this_node_leads(rig: Rig) -> None:
    up = await rig.upstream(Upstream())
    port = up.server.port  # type: ignore[union-attr]
    await up.stop()  # nothing listens there: nothing is claimed, only expiry ends them
    leading = False
    config = HeraldConfig(connectors=(connector("a", port),),
                          routes=(RouteConfig("", ("a",)),))  # fmt: skip
    d = Dispatcher(rig.store, config, rig.metrics, time.time, settings=FAST,
                   leader=lambda: leading)  # fmt: skip
    rig.dispatchers.append(d)
    await d.start()
    ids = await rig.send(2, expires_at=time.time() + 0.2)
    for _ in range(10):  # a second: ten housekeeping rounds, none expires them
        await asyncio.sleep(FAST.housekeeping_interval)
    assert Status.EXPIRED not in set(await rig.statuses(ids))
    leading = True  # this node now leads: its next round expires them
    await rig.wait_all(ids, Status.EXPIRED, timeout=10)
