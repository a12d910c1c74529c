"""A connector's token bucket holds its configured TPS across all its binds."""

from __future__ import annotations

import math

from herald.store import Status

from .conftest import Rig, connector

TPS = 200.0
COUNT = 300  # 1.5 s of traffic: bounded, and long enough for a 5 % reading


async def test_the_achieved_rate_never_passes_the_configured_tps(rig: Rig) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port, tps=TPS, binds=2, window=10)])  # type: ignore[union-attr]
    ids = await rig.send(COUNT)
    await rig.wait_all(ids, Status.DELIVERED, timeout=30)
    times = sorted(s.at for s in up.submits)
    assert len(times) == COUNT
    # count / elapsed between the first and the last submit the upstream read:
    # the limit holds within 5 %. How close to it a run gets depends on the
    # machine (a loaded CI machine gave 105/s of 200), so below the limit this
    # asks only that the bucket is not far off (a tenth of the rate, say).
    rate = (COUNT - 1) / (times[-1] - times[0])
    assert rate < TPS * 1.05, f"{rate:.1f}/s for {TPS}/s"
    assert rate > TPS / 3, f"{rate:.1f}/s for {TPS}/s"
    # both binds carried traffic: one bucket shared by the binds, not one each
    assert len({s.conn_id for s in up.submits}) == 2


async def test_a_connector_without_a_tps_limit_is_paced_by_its_window(rig: Rig) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port, tps=math.inf, binds=1, window=8)])  # type: ignore[union-attr]
    ids = await rig.send(COUNT)
    await rig.wait_all(ids, Status.DELIVERED, timeout=30)
    assert len(up.submits) == COUNT
