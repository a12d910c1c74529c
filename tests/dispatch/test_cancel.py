"""A customer's cancel against a running dispatcher: never cancelled while it may
be going out, cancellable as soon as dispatch hands it back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from herald.store import ChangeOutcome, Status

from .conftest import FAST, Rig, connector, eventually
from .upstream import Answer, Upstream


async def test_a_message_in_flight_is_never_cancelled_however_long_it_takes(rig: Rig) -> None:
    """The upstream does not answer the submit_sm: dispatch holds the message for
    several lease periods (the lease keeper extends them) and a cancel is refused
    as in progress all along."""
    up = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(status=None)))
    settings = replace(FAST, lease=0.4)
    await rig.dispatcher([connector("a", up.server.port, response_timeout=30.0)],  # type: ignore[union-attr]
                         settings=settings)
    (message_id,) = await rig.send(1)

    async def submitted() -> bool:
        return len(up.silent) == 1

    await eventually(submitted)
    for _ in range(4):  # 1.2 s: three lease periods
        result = await rig.store.cancel(message_id, time.time(), account_id=rig.account.id)
        assert result.outcome is ChangeOutcome.IN_PROGRESS
        await asyncio.sleep(0.3)
    assert (await rig.get(message_id)).status is Status.QUEUED


async def test_a_message_handed_back_while_its_upstream_is_down_can_be_cancelled(
    rig: Rig,
) -> None:
    """Nothing listens where the connector points: dispatch claims the message,
    then hands it back for a long backoff; the claim ends with the hand-back,
    so the customer's cancel applies at once rather than after the backoff."""
    up = await rig.upstream()
    port = up.server.port  # type: ignore[union-attr]
    await up.stop()
    settings = replace(FAST, handback_initial=30.0, handback_max=30.0)
    await rig.dispatcher([connector("a", port)], settings=settings)
    (message_id,) = await rig.send(1)

    async def claimed() -> bool:
        return (await rig.get(message_id)).attempt >= 1

    async def cancelled() -> bool:
        result = await rig.store.cancel(message_id, time.time(), account_id=rig.account.id)
        return result.outcome is ChangeOutcome.APPLIED

    await eventually(claimed)
    await eventually(cancelled, timeout=5.0)  # well before the 30 s backoff ends
    message = await rig.get(message_id)
    assert (message.status, message.attempt) == (Status.CANCELLED, 1)
