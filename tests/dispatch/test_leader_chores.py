"""The cluster's chores in dispatch's housekeeping run on the leader only
(``Dispatcher(..., leader=...)``; docs/leases.md): validity expiry, purge and
retention."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from herald.config import HeraldConfig, RouteConfig, StoreConfig
from herald.dispatch import Dispatcher
from herald.store import InboundMessage, MessageNotFound, Status, StatusUpdate

from .conftest import FAST, Rig, connector, eventually
from .upstream import Upstream

DAY = 86_400.0


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


async def test_retention_purges_old_final_messages_only_while_this_node_leads(rig: Rig) -> None:
    # [store] message_days, text_days: the purge turn runs a retention pass on the leader.
    up = await rig.upstream(Upstream())
    port = up.server.port  # type: ignore[union-attr]
    await up.stop()  # nothing listens: the recent message stays queued
    now = time.time()
    old = now - 9 * DAY
    ended = await rig.send(2, accepted_at=old, expires_at=old + 600)
    await rig.store.claim(10, old, 30)
    await rig.store.update_statuses([StatusUpdate(i, Status.REJECTED, old + 1) for i in ended])
    yesterday = now - 2 * DAY  # its text goes (text_days), its row stays
    kept = await rig.send(1, accepted_at=yesterday, expires_at=yesterday + 600)
    await rig.store.claim(10, yesterday, 30)
    await rig.store.update_statuses([StatusUpdate(kept[0], Status.REJECTED, yesterday + 1)])
    recent = await rig.send(1)
    for name, at in (("mo-old", old), ("mo-new", now)):  # inbound (MO) messages go too
        await rig.store.add_inbound(InboundMessage(
            name, rig.account.id, "+447000", "+447999", b"hi", "gsm7", 0, "a", at))
    leading = False
    config = HeraldConfig(connectors=(connector("a", port),), routes=(RouteConfig("", ("a",)),),
                          store=StoreConfig(message_days=8, text_days=1))  # fmt: skip
    d = Dispatcher(rig.store, config, rig.metrics, time.time,
                   settings=dataclasses.replace(FAST, purge_interval=0.1),
                   leader=lambda: leading)  # fmt: skip
    rig.dispatchers.append(d)
    await d.start()
    for _ in range(5):  # half a second: five purge turns, none by this node
        await asyncio.sleep(FAST.housekeeping_interval)
    assert len(await rig.store.get_messages(ended + kept + recent)) == 4
    assert (await rig.get(kept[0])).body
    assert (await rig.store.get_inbound("mo-old")).body
    leading = True

    async def purged() -> bool:
        return set(await rig.store.get_messages(ended + kept + recent)) == set(kept + recent)

    await eventually(purged)

    async def erased() -> bool:
        return (await rig.get(kept[0])).body == b""

    await eventually(erased)
    assert (await rig.get(recent[0])).body
    with pytest.raises(MessageNotFound):
        await rig.store.get_inbound("mo-old")
    assert (await rig.store.get_inbound("mo-new")).body
