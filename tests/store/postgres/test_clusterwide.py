"""What was per process and holds across nodes on PostgreSQL: the pumping
defence's per-country ceilings, the accounts' message rates and the
failed-login throttles.

Each test runs two nodes (two stores, each with its own pool, and their own
in-process objects) on one database, racing, and checks that together they
stay within the one limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any

import pytest

from herald.defence import LiveDefence
from herald.ids import SortableIdGenerator
from herald.rating import KeyKind, PriceKey, Rating
from herald.store import FraudAction, FraudSettings
from herald.store.postgres import PostgresStore

from .conftest import T0

pytestmark = pytest.mark.postgres

WAIT_LIMIT = 10.0  # seconds for every racer to be waiting on the held lock


async def _held(pool: Any, hold: str, calls: list[Awaitable[Any]]) -> list[Any]:
    """Run ``calls`` at once while a transaction that ran ``hold`` is open; end it
    once every call waits on a lock (so all have started before any goes on)."""
    async with pool.acquire() as blocker, pool.acquire() as watcher:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(hold)
        tasks = [asyncio.ensure_future(c) for c in calls]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_LIMIT
        try:
            while await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'") < len(calls):  # fmt: skip
                assert loop.time() < deadline, "the racers never all waited"
                await asyncio.sleep(0.01)
        finally:
            await tx.rollback()
        return await asyncio.gather(*tasks)


async def test_two_nodes_cannot_both_take_the_last_of_a_country_ceiling(
    two_stores: tuple[PostgresStore, PostgresStore], pool: Any,
) -> None:
    a, b = two_stores
    account = await a.create_account("shop", T0, rate_limit=100.0, bind_limit=2)
    # Room for one SMS at 0.04 a day, not two.
    await a.set_fraud_settings(account.id, FraudSettings(country_caps={"GB": Decimal("0.06")}))
    nodes = [LiveDefence(store, SortableIdGenerator()) for store in (a, b)]
    for node in nodes:
        await node.prepare(T0)
    price = Decimal("0.04")
    rating = Rating(PriceKey(KeyKind.COUNTRY, "44"), price, 1, price, "44")
    # Both nodes read the spend (held back by a lock on the decisions) before
    # either records its SMS.
    screenings = await _held(pool, "LOCK TABLE fraud_decisions IN ACCESS EXCLUSIVE MODE", [
        node.screen(account_id=account.id, to=f"+4477009001{n}", use_case="login",
                    message_id=f"msg{n}", rating=rating, now=T0 + n * 0.001)
        for n, node in enumerate(nodes)])  # fmt: skip
    actions = sorted(s.decision.action.value for s in screenings)
    assert actions == [FraudAction.ALLOW.value, FraudAction.BLOCK.value]
    blocked = next(s.decision for s in screenings if s.refuse)
    assert blocked.reasons[-1].code == "country_ceiling"
    assert blocked.reasons[-1].figures == {"spent": 0.04, "price": 0.04, "ceiling": 0.06}
    assert await a.fraud_spend(account.id, "GB", T0 - 86_400) == 40_000
