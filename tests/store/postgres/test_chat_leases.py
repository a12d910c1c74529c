"""Chains on PostgreSQL across nodes: two stores (two processes' pools) on one
database never hold one chat leg or one timer at once, a leg claim and a
change of its chain never both win nor deadlock, and an SMS leg's message
claimed by dispatch reads as queued to the chain.

(tests/store/test_contract_chat.py runs the rules on every store.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herald.ids import SortableIdGenerator
from herald.store import (
    Account,
    ChainChange,
    LegUpdate,
    NewChain,
    NewChatLeg,
    NewMessage,
    Source,
    Status,
    StatusEvents,
)
from herald.store.postgres import DispatchQueue, PostgresStore, create_pool
from herald.store.postgres._store import UNROUTED

T0 = 1_800_000_000.0
LEASE = 60.0
CHAINS = 40
#: Claims each node makes at once in a round, of BATCH each: together more
#: than there is, so the nodes compete for every row.
CLAIMERS, BATCH = 4, 7


@pytest.fixture
async def nodes(pg_store_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = await PostgresStore.open(pg_store_dsn)
    b = await PostgresStore.open(pg_store_dsn)
    try:
        yield a, b
    finally:
        await b.aclose()
        await a.aclose()


def _chain_id(n: int) -> str:
    return f"{n:026d}"


async def _chains(store: PostgresStore, account: Account) -> None:
    wa = NewChatLeg("whatsapp", "1065550001", '{"text":"hi"}', "read", 60.0)
    for n in range(CHAINS):
        await store.accept_chain(NewChain(_chain_id(n), account.id, "+447700900123", (wa,), T0))


async def _all_at_once(calls: list[Any]) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*calls), timeout=30)


async def test_two_nodes_never_hold_one_leg_at_once(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    await _chains(a, await a.create_account("acme", T0, rate_limit=100.0, bind_limit=2))
    held: Counter[tuple[str, int]] = Counter()
    for now in (T0, T0 + LEASE):  # the second round: every lease lapsed, all claimable again
        for _round in range(3):  # bounded: a round may leave rows another claim skipped
            got = await _all_at_once([node.claim_chat_legs(now, LEASE, BATCH)
                                      for node in (a, b) for _ in range(CLAIMERS)])
            round_held = Counter((s.chain_id, s.leg) for claims in got for s in claims)
            assert max(round_held.values(), default=1) == 1  # never handed out twice
            held.update(round_held)
            if not round_held:
                break
        assert await a.claim_chat_legs(now + 1, LEASE, BATCH) == ()  # all leased
    assert held == Counter({(_chain_id(n), 0): 2 for n in range(CHAINS)})


async def test_two_nodes_never_hold_one_timer_at_once(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    await _chains(a, await a.create_account("acme", T0, rate_limit=100.0, bind_limit=2))
    for n in range(CHAINS):
        assert await a.change_chain(ChainChange(_chain_id(n), 0, T0, Status.SENT,
                                                arm={0: T0 + 60 + n}))
    held: Counter[str] = Counter()
    for _round in range(3):
        got = await _all_at_once([node.claim_chain_timers(T0 + 200, LEASE, BATCH)
                                  for node in (a, b) for _ in range(CLAIMERS)])
        round_held = Counter(t.chain_id for timers in got for t in timers)
        assert max(round_held.values(), default=1) == 1
        held.update(round_held)
        for timers in got:  # each claim hands out the most overdue of what it got first
            assert [t.due_at for t in timers] == sorted(t.due_at for t in timers)
    assert set(held) == {_chain_id(n) for n in range(CHAINS)}
    assert await b.claim_chain_timers(T0 + 201, LEASE, BATCH) == ()  # all leased


async def test_a_leg_claim_and_a_change_of_its_chain_never_both_win(
        nodes: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = nodes
    await _chains(a, await a.create_account("acme", T0, rate_limit=100.0, bind_limit=2))
    changes = [b.change_chain(ChainChange(_chain_id(n), 0, T0, Status.SENT,
                                          legs={0: LegUpdate("accepted")}))
               for n in range(CHAINS)]
    claims = [a.claim_chat_legs(T0, LEASE, BATCH) for _ in range(CLAIMERS)]
    got = await _all_at_once([*claims, *changes])  # a deadlock would raise StoreBusy
    claimed = {s.chain_id for batch in got[:CLAIMERS] for s in batch}
    changed = {_chain_id(n) for n, won in enumerate(got[CLAIMERS:]) if won}
    assert not claimed & changed  # the loser of each race saw the winner's version
    for chain in (await a.get_chains([_chain_id(n) for n in range(CHAINS)])).values():
        assert chain.version == 1
        assert chain.legs[0].state == ("submitted" if chain.id in claimed else "accepted")
    # The rest (neither claimed nor changed: skipped while locked) is claimed later.
    rest = {s.chain_id for s in await a.claim_chat_legs(T0 + 1, LEASE, CHAINS)}
    assert claimed | changed | rest == {_chain_id(n) for n in range(CHAINS)}


async def test_an_sms_leg_claimed_by_dispatch_reads_as_queued(pg_store_dsn: str) -> None:
    store = await PostgresStore.open(pg_store_dsn)
    pool = await create_pool(pg_store_dsn, max_size=2)
    try:
        account = await store.create_account("acme", T0, rate_limit=100.0, bind_limit=2)
        sms = NewMessage(
            id=SortableIdGenerator().new_id(T0), account_id=account.id, source=Source.HTTP,
            to="+447700900123", sender="ACME", body=b"code", encoding="gsm7", data_coding=0,
            segments=1, accepted_at=T0, expires_at=T0 + 3600,
            callback_events=StatusEvents.NONE,
        )  # fmt: skip
        await store.accept_chain(NewChain(_chain_id(1), account.id, "+447700900123",
                                          (NewChatLeg("sms", "ACME", sms=sms),), T0))
        assert await store.sms_leg_changes(10) == ()
        (claim,) = await DispatchQueue(pool, "node-a").claim(UNROUTED, 10, T0 + 1, LEASE)
        assert claim.message.id == sms.id
        changes = await store.sms_leg_changes(10)
        assert [(c.chain_id, c.leg, c.status) for c in changes] == [
            (_chain_id(1), 0, Status.QUEUED)]
    finally:
        await pool.close()
        await store.aclose()
