"""The PostgreSQL store's fraud and Verify parts beyond the contract suite.

Verify's limits across nodes: two PostgreSQL stores (two nodes' pools) on one
database act on one verification, or one number, at the same moment.

Each race is made certain rather than likely: a third connection holds a lock
the racers need (the verification's row, or the sends table), every racer is
let in only once all of them wait on it, so all of them have read before any
of them writes unless the store makes them take turns.
(tests/store/test_contract_verify.py holds the rules one call at a time.)
And what PostgreSQL refuses where SQLite does not: a clear error naming the field.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from typing import Any

import pytest

from herald.store import (
    Conflict,
    FraudAction,
    FraudDecision,
    InvalidRecord,
    SendLimitExceeded,
    Verification,
    VerificationStatus,
)
from herald.store.postgres import PostgresStore, create_pool

T0 = 1_800_000_000.0
HOUR = 3600.0
RACERS = 12  # calls at once, alternating between the two stores
WAIT_LIMIT = 10.0  # seconds for every racer to be waiting on the held lock


@pytest.fixture
async def nodes(pg_store_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore, Any]]:
    a = await PostgresStore.open(pg_store_dsn)
    b = await PostgresStore.open(pg_store_dsn)
    pool = await create_pool(pg_store_dsn, max_size=2)
    try:
        yield a, b, pool
    finally:
        await pool.close()
        await b.aclose()
        await a.aclose()


def _verification(account_id: int, n: int, to: str = "+14155552671") -> Verification:
    return Verification(f"ver{n:04d}", account_id, to, "login", "Acme", "en", 6,
                        VerificationStatus.PENDING, T0, T0 + 600, b"s" * 16,
                        bytes([n]) * 32)  # fmt: skip


async def _race(pool: Any, hold: str, calls: list[Awaitable[Any]]) -> list[Any]:
    """Run ``calls`` at once while a transaction that ran ``hold`` is open; end
    it once every call waits on a lock; their results (or exceptions)."""
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
        return await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("matched", [False, True])
async def test_concurrent_checks_count_at_most_max_checks_and_approve_once(
    nodes: tuple[PostgresStore, PostgresStore, Any], matched: bool
) -> None:
    a, b, pool = nodes
    account = await a.create_account("acme", T0, rate_limit=100.0, bind_limit=1)
    v = _verification(account.id, 1)
    await a.start_verification(v, "m1", window=HOUR, limit=5)
    max_checks = 3
    results = await _race(pool, f"SELECT 1 FROM verifications WHERE id = '{v.id}' FOR UPDATE", [
        (a, b)[n % 2].record_check(v.id, account.id, sends=1, matched=matched, now=T0 + 1,
                                   max_checks=max_checks)
        for n in range(RACERS)
    ])  # fmt: skip
    assert not [r for r in results if isinstance(r, BaseException)]
    after = await b.get_verification(v.id, account.id)
    if matched:  # the first approves; the others find it approved and count nothing
        assert (after.status, after.checks) == (VerificationStatus.APPROVED, 1)
        assert [r.checks for r in results] == [1] * RACERS
    else:
        assert (after.status, after.checks) == (VerificationStatus.PENDING, max_checks)
        assert sorted(r.checks for r in results) == [1, 2, 3] + [3] * (RACERS - 3)


async def test_concurrent_sends_to_one_number_stay_within_the_limit(
    nodes: tuple[PostgresStore, PostgresStore, Any],
) -> None:
    a, b, pool = nodes
    account = await a.create_account("acme", T0, rate_limit=100.0, bind_limit=1)
    limit = 3
    results = await _race(pool, "LOCK TABLE verification_sends IN EXCLUSIVE MODE", [
        (a, b)[n % 2].start_verification(_verification(account.id, n), f"m{n}",
                                         window=HOUR, limit=limit)
        for n in range(RACERS)
    ])  # fmt: skip
    refused = [r for r in results if isinstance(r, SendLimitExceeded)]
    assert len(refused) == RACERS - limit
    assert results.count(None) == limit
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM verification_sends") == limit
        assert await conn.fetchval("SELECT count(*) FROM verifications") == limit


async def test_a_decision_id_is_recorded_once(
    nodes: tuple[PostgresStore, PostgresStore, Any],
) -> None:
    """The port's Conflict for a decision id that exists, whichever node wrote it."""
    a, b, _pool = nodes
    account = await a.create_account("acme", T0, rate_limit=100.0, bind_limit=1)
    decision = FraudDecision("dec0001", account.id, T0, "+14155552671", FraudAction.ALLOW,
                             (), engine=True)  # fmt: skip
    await a.record_fraud_decision(decision)
    with pytest.raises(Conflict):
        await b.record_fraud_decision(decision)
    assert await b.get_fraud_decision(decision.id, account.id) == decision


async def test_text_postgresql_cannot_hold_is_refused_by_field(
    nodes: tuple[PostgresStore, PostgresStore, Any],
) -> None:
    a, _b, pool = nodes
    account = await a.create_account("acme", T0, rate_limit=100.0, bind_limit=1)
    with pytest.raises(InvalidRecord) as info:
        await a.start_verification(replace(_verification(account.id, 1), app="Ac\x00me"), "m1",
                                   window=HOUR, limit=5)  # fmt: skip
    assert info.value.field == "app"
    with pytest.raises(InvalidRecord) as info:
        await a.set_verify_template(account.id, "en", "{code}\x00")
    assert info.value.field == "text"
    async with pool.acquire() as conn:  # nothing written
        assert await conn.fetchval("SELECT count(*) FROM verification_sends") == 0
        assert await conn.fetchval("SELECT count(*) FROM verify_templates") == 0


async def test_the_tail_waits_for_a_decision_that_commits_out_of_order(
    nodes: tuple[PostgresStore, PostgresStore, Any],
) -> None:
    """Transactions commit out of the order of their ids: a decision whose
    transaction began first but commits last is neither missed nor read twice
    by another node's tail (docs/fraud.md, "Live")."""
    a, b, pool = nodes
    account = await a.create_account("acme", T0, rate_limit=100.0, bind_limit=1)
    cursor = (await b.fraud_tail(None)).cursor
    async with pool.acquire() as slow:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(
            "INSERT INTO fraud_decisions (id, account_id, created_at, to_number, action,"
            " reasons, engine, request) VALUES ('late', $1, $2, '+14155552671', 'allow',"
            " '[]', true, '{}')", account.id, T0)  # fmt: skip
        await a.record_fraud_decision(FraudDecision(
            "early", account.id, T0 + 1, "+14155552672", FraudAction.ALLOW, (), engine=True))
        held = await b.fraud_tail(cursor)
        assert held.decisions == ()  # committed, but above a transaction still running
        await tx.commit()
    seen: list[str] = [d.id for d in held.decisions]
    cursor = held.cursor
    deadline = asyncio.get_running_loop().time() + WAIT_LIMIT
    while len(seen) < 2:  # other tests' transactions on the cluster may hold it back too
        assert asyncio.get_running_loop().time() < deadline, seen
        tail = await b.fraud_tail(cursor)
        seen += [d.id for d in tail.decisions]
        cursor = tail.cursor
        await asyncio.sleep(0.01)
    assert sorted(seen) == ["early", "late"]
    assert (await b.fraud_tail(cursor)).decisions == ()
