"""Priority classes and per-account turns on a real connector (issue 9).

The upstream records the order it read the submits in; the destination number
tells whose message each one was. Bounds are counted in messages, never time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from herald.store import Priority, Status

from .conftest import Rig, connector, eventually

TPS = 100.0
WINDOW = 5


def _who(rig: Rig, prefixes: dict[str, str]) -> list[str]:
    """The label of each submit the upstream read, in order, by destination prefix."""
    up = rig.upstreams[0]
    out = []
    for s in up.submits:
        to = s.pdu.destination_addr
        out.append(next(label for p, label in prefixes.items() if to.startswith(p)))
    return out


async def test_otps_overtake_another_accounts_bulk_backlog(rig: Rig) -> None:
    up = await rig.upstream()
    await rig.dispatcher([connector("a", up.server.port, tps=TPS, window=WINDOW)])  # type: ignore[union-attr]
    other = await rig.store.create_account("other", time.time(), rate_limit=1000, bind_limit=1)
    bulk = await rig.send(400, to_prefix="4477001", priority=Priority.BULK)

    async def started() -> bool:
        return len(up.submits) >= 20

    await eventually(started)
    before = len(up.submits)
    rig.account = other
    otps = await rig.send(5, to_prefix="4477002", priority=Priority.OTP)
    await rig.wait_all(otps, Status.DELIVERED, timeout=20)
    order = _who(rig, {"4477001": "bulk", "4477002": "otp"})
    last_otp = max(i for i, w in enumerate(order) if w == "otp")
    # Between the OTPs' acceptance and the last OTP's submit, at most what was
    # in flight (a window) went first: not the bulk already queued on the
    # connector (one queue: ~100, a second of its TPS), nor the backlog (~380).
    overtaken = order[before:last_otp].count("bulk")
    assert overtaken <= 2 * WINDOW, overtaken
    assert len(order) < 400, "the bulk backlog was gone before the OTPs: no test"
    for d in rig.dispatchers:
        await d.stop()
    rig.dispatchers.clear()
    assert {(await rig.get(i)).status for i in bulk} <= {Status.ACCEPTED, Status.QUEUED,
                                                         Status.DELIVERED}


async def test_accounts_in_one_class_take_turns_on_a_connector(rig: Rig) -> None:
    up = await rig.upstream()
    first = rig.account
    second = await rig.store.create_account("second", time.time(), rate_limit=1000, bind_limit=1)
    # Both backlogs queued before dispatch starts: the first one's is older.
    await rig.send(150, to_prefix="4477001", priority=Priority.BULK)
    rig.account = second
    await rig.send(150, to_prefix="4477002", priority=Priority.BULK)
    rig.account = first
    await rig.dispatcher([connector("a", up.server.port, tps=TPS, window=WINDOW)])  # type: ignore[union-attr]

    async def some() -> bool:
        return len(up.submits) >= 100

    await eventually(some, timeout=20)
    shares = Counter(_who(rig, {"4477001": "first", "4477002": "second"})[:100])
    # FIFO would give the first 100 submits all to the older backlog.
    assert abs(shares["first"] - shares["second"]) <= 2 * WINDOW, shares


async def test_an_urgent_class_is_sent_before_queued_lower_ones(rig: Rig) -> None:
    """Within one account too: transactional before marketing accepted earlier."""
    up = await rig.upstream()
    await rig.send(60, to_prefix="4477003", priority=Priority.MARKETING)
    await rig.send(10, to_prefix="4477004", priority=Priority.TRANSACTIONAL)
    await rig.dispatcher([connector("a", up.server.port, tps=TPS, window=WINDOW)])  # type: ignore[union-attr]

    async def all_sent() -> bool:
        await asyncio.sleep(0)
        return len(up.submits) >= 70

    await eventually(all_sent, timeout=20)
    order = _who(rig, {"4477003": "mkt", "4477004": "tx"})
    assert order[:10] == ["tx"] * 10, order[:12]
