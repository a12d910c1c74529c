"""History in day partitions (``HistoryPartitions``, migration V12): the leader
creates days ahead, moves what the default partition caught into its day, and
retention drops whole days; the store reads and writes through the parent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from herald.store import Conflict, FraudAction, FraudDecision, FraudReason
from herald.store.postgres import HistoryPartitions, PostgresStore
from herald.store.postgres._history import AHEAD, DAY, day_name

from .conftest import T0

DAY0 = T0 // DAY * DAY  # a UTC midnight after the migration's "before" partition ends


def _decision(account_id: int, n: int, at: float) -> FraudDecision:
    return FraudDecision(
        f"dec{n:04d}", account_id, at, "+447700900123", FraudAction.ALLOW,
        (FraudReason("within_budget", "GB", {"excess": 0.1, "budget": 3.0}),), True,
        "GB", 40_000, "EUR", None, None, {"use_case": "login"},
    )  # fmt: skip


@pytest.fixture
async def pg(pg_store_dsn: str) -> Any:
    s = await PostgresStore.open(pg_store_dsn, max_connections=4)
    try:
        yield s
    finally:
        await s.aclose()


async def _where(pool: Any, decision_id: str) -> str:
    name: str = await pool.fetchval(
        "SELECT tableoid::regclass::text FROM fraud_decisions WHERE id = $1", decision_id)
    return name


async def test_days_are_made_ahead_and_take_what_the_default_partition_caught(
    pg: PostgresStore, pool: Any
) -> None:
    account = await pg.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    early = _decision(account.id, 1, DAY0 + 3600)  # before any day exists: the default
    await pg.record_fraud_decision(early)
    assert await _where(pool, early.id) == "fraud_decisions_default"

    parts = HistoryPartitions(pool)
    done = await parts.maintain(DAY0 + 7200)
    days = [day_name("fraud_decisions", DAY0 + n * DAY) for n in range(AHEAD + 1)]
    assert done.created == days and done.moved == 1 and done.dropped == []
    assert await _where(pool, early.id) == days[0]
    later = _decision(account.id, 2, DAY0 + 2 * DAY + 1)
    await pg.record_fraud_decision(later)
    assert await _where(pool, later.id) == days[2]
    # Read through the parent as before, and an id is still recorded once.
    assert await pg.fraud_history(DAY0) == (early, later)
    with pytest.raises(Conflict):
        await pg.record_fraud_decision(early)
    # Again: nothing to do (and two nodes at once make each day once).
    again = await asyncio.gather(parts.maintain(DAY0 + 7200), parts.maintain(DAY0 + 7200))
    assert [d.created for d in again] == [[], []]
    names = {p.name for p in await parts.partitions("fraud_decisions")}
    assert names == {"fraud_decisions_before", "fraud_decisions_default", *days}


async def test_retention_drops_whole_days_only(pg: PostgresStore, pool: Any) -> None:
    account = await pg.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    parts = HistoryPartitions(pool)
    await parts.maintain(DAY0)
    old = [_decision(account.id, n, DAY0 + n * DAY + 60) for n in range(3)]
    for d in old:
        await pg.record_fraud_decision(d)

    # Keep 1.5 days at day 2 + 13 h: day 0 ended 2.5 days before, day 1 ended
    # 13 h before, so only day 0 (and the migration's "before") may go.
    now = DAY0 + 2 * DAY + 13 * 3600
    done = await parts.maintain(now, keep=1.5 * DAY)
    assert done.dropped == ["fraud_decisions_before", day_name("fraud_decisions", DAY0)]
    assert await pg.fraud_history(0.0) == tuple(old[1:])
    names = {p.name for p in await parts.partitions("fraud_decisions")}
    assert day_name("fraud_decisions", DAY0 + DAY) in names
    assert day_name("fraud_decisions", DAY0 + (2 + AHEAD) * DAY) in names  # ahead of now
    with pytest.raises(ValueError, match="keep must be a positive"):
        await parts.maintain(now, keep=0)


async def test_a_retention_chore_waiting_for_a_reader_gives_up_rather_than_block_writers(
    pg: PostgresStore, pool: Any
) -> None:
    account = await pg.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    parts = HistoryPartitions(pool)
    await parts.maintain(DAY0)
    async with pool.acquire() as reader, reader.transaction():
        await reader.fetch("SELECT * FROM fraud_decisions")  # holds the parent's share lock
        done = await parts.maintain(DAY0 + 10 * DAY, keep=DAY)
        assert done.dropped == []  # the drop timed out on its lock: tried next turn
        await pg.record_fraud_decision(_decision(account.id, 1, DAY0 + 60))  # not blocked
    done = await parts.maintain(DAY0 + 10 * DAY, keep=DAY)
    assert day_name("fraud_decisions", DAY0) in done.dropped
