"""The lease tables on a real PostgreSQL: the statements of herald.cluster._pg,
several nodes (tables with their own pools) on one database."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from herald.cluster.leases import Holding, Slot, acquire_slot, release_slot, renew_slot
from herald.cluster.postgres import SlotTable, ensure_schema
from herald.store.postgres import SCHEMA_VERSION, connection, create_pool, schema_version

LEASE = 30.0
SHORT = 0.3


@pytest.fixture
async def db(pg_store_dsn: str) -> AsyncIterator[Callable[..., Awaitable[SlotTable]]]:
    """Tables on their own pools, one per node name; closed after the test.
    (On the store's database, as in production; a copy of a template is quicker.)"""
    pg_dsn = pg_store_dsn
    async with connection(pg_dsn) as conn:
        await ensure_schema(conn)
    pools: list[Any] = []

    async def table(node: str, lease: float = LEASE) -> SlotTable:
        pool = await create_pool(pg_dsn, max_size=2)
        pools.append(pool)
        return SlotTable(pool, node, lease)

    try:
        yield table
    finally:
        for pool in pools:
            await pool.close()


async def rows(t: SlotTable, connector: str = "c") -> list[tuple[int, str | None, int]]:
    snap = await t.snapshot([connector])
    return [(r.slot, r.owner if not r.is_free(snap.now) else None, r.epoch) for r in snap.slots]


def held(slots: Any, renewed_at: float = 0.0) -> list[Holding]:
    return [Holding(s.connector, s.slot, s.epoch, renewed_at) for s in slots]


async def until_ended(t: SlotTable, ends: float) -> None:
    """Wait (bounded) until the server's clock passes ``ends``."""
    for _ in range(100):
        snap = await t.snapshot([])
        if snap.now > ends:
            return
        await asyncio.sleep(min(0.05, ends - snap.now + 0.005))
    raise AssertionError("the server's clock did not pass the lease's end")


async def test_schema_can_be_ensured_again_and_by_several_nodes_at_once(pg_dsn: str) -> None:
    # An empty database: the store's migrations, the lease tables among them, once.
    async def ensure() -> None:
        async with connection(pg_dsn) as conn:
            await ensure_schema(conn)

    await asyncio.gather(ensure(), ensure(), ensure())
    await ensure()
    async with connection(pg_dsn) as conn:
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert await schema_version(conn) == SCHEMA_VERSION
    assert {"cluster_nodes", "connector_slots"} <= tables


async def test_sync_slots_adds_rows_and_drops_surplus_ones_only_once_free(db: Any) -> None:
    a = await db("node-a")
    await a.sync_slots({"c": 3, "d": 1})
    assert await rows(a) == [(0, None, 0), (1, None, 0), (2, None, 0)]
    (s2,) = [s for s in await a.acquire("c", 3, 3) if s.slot == 2]
    await a.sync_slots({"c": 2, "d": 1})
    assert [r[0] for r in await rows(a)] == [0, 1, 2]  # slot 2 is held: it stays
    await a.release(held([s2]))
    await a.sync_slots({"c": 2, "d": 1})
    assert [r[0] for r in await rows(a)] == [0, 1]
    assert [r[0] for r in await rows(a, "d")] == [0]


async def test_nodes_acquiring_at_once_take_different_slots_never_more_than_configured(
    db: Any,
) -> None:
    tables = [await db(f"node-{i}") for i in range(4)]
    await tables[0].sync_slots({"c": 5})
    got = await asyncio.gather(*(t.acquire("c", 5, 5) for t in tables))
    slots = [s.slot for batch in got for s in batch]
    assert sorted(slots) == [0, 1, 2, 3, 4]  # each once, none beyond 5
    assert {s.epoch for batch in got for s in batch} == {1}
    assert await asyncio.gather(*(t.acquire("c", 5, 5) for t in tables)) == [()] * 4
    owners = {r[1] for r in await rows(tables[0])}
    assert owners <= {t.node for t in tables}


async def test_acquire_never_takes_a_slot_beyond_the_binds_it_is_given(db: Any) -> None:
    a = await db("node-a")
    await a.sync_slots({"c": 4})
    assert [s.slot for s in await a.acquire("c", 4, 2)] == [0, 1]


async def test_a_stale_owners_renewal_release_and_writes_are_refused(db: Any) -> None:
    a = await db("node-a", SHORT)
    b = await db("node-b", SHORT)
    await a.sync_slots({"c": 1})
    (mine,) = await a.acquire("c", 1, 1)
    assert await a.holds("c", 0, mine.epoch)
    _now, renewed = await a.renew(held([mine]))
    assert renewed == {("c", 0, mine.epoch)}
    assert await b.acquire("c", 1, 1) == ()  # a's lease runs

    await until_ended(a, mine.expires_at + SHORT)  # a stalls past its lease
    (theirs,) = await b.acquire("c", 1, 1)
    assert (theirs.owner, theirs.epoch) == ("node-b", mine.epoch + 1)

    _now, renewed = await a.renew(held([mine]))
    assert renewed == frozenset()
    assert await a.release(held([mine])) == frozenset()
    assert not await a.holds("c", 0, mine.epoch)
    assert await b.holds("c", 0, theirs.epoch)
    assert await rows(a) == [(0, "node-b", theirs.epoch)]


async def test_an_ended_lease_is_acquired_again_under_a_new_epoch_never_renewed(db: Any) -> None:
    a = await db("node-a", SHORT)
    await a.sync_slots({"c": 1})
    (first,) = await a.acquire("c", 1, 1)
    await until_ended(a, first.expires_at)
    _now, renewed = await a.renew(held([first]))
    assert renewed == frozenset()  # nobody took it, still refused
    (again,) = await a.acquire("c", 1, 1)
    assert again.epoch == first.epoch + 1
    assert not await a.holds("c", 0, first.epoch)  # writes under the old epoch: refused


async def test_release_frees_at_once_and_leave_frees_everything(db: Any) -> None:
    a = await db("node-a")
    b = await db("node-b")
    await a.sync_slots({"c": 3})
    got = await a.acquire("c", 3, 3)
    assert await a.release(held(got[:1])) == {("c", 0)}
    assert [s.slot for s in await b.acquire("c", 3, 3)] == [0]
    await a.renew([])
    assert "node-a" in (await a.snapshot(["c"])).nodes
    await a.leave()
    snap = await a.snapshot(["c"])
    assert "node-a" not in snap.nodes
    assert [s.slot for s in await b.acquire("c", 3, 3)] == [1, 2]


async def test_the_registration_ends_with_the_slots_and_forget_spares_a_node_that_came_back(
    db: Any,
) -> None:
    a = await db("node-a", SHORT)
    await a.sync_slots({"c": 1})
    (slot,) = await a.acquire("c", 1, 1)
    await a.renew(held([slot]))
    snap = await a.snapshot(["c"])
    assert snap.nodes["node-a"] == snap.slots[0].expires_at  # one statement, one end
    assert snap.live() == {"node-a"}

    await until_ended(a, snap.nodes["node-a"])
    assert (await a.snapshot(["c"])).live() == frozenset()
    await a.renew([])  # it came back before the leader forgot it
    assert await a.forget(["node-a"]) == frozenset()
    await until_ended(a, (await a.snapshot([])).nodes["node-a"])
    assert await a.forget(["node-a"]) == {"node-a"}
    assert (await a.snapshot([])).nodes == {}


async def test_a_renewal_from_an_earlier_tenure_of_the_same_node_is_refused(db: Any) -> None:
    a = await db("node-a")
    await a.sync_slots({"c": 1})
    (first,) = await a.acquire("c", 1, 1)
    await a.release(held([first]))
    (second,) = await a.acquire("c", 1, 1)
    _now, renewed = await a.renew(held([first]))  # late, from before the release
    assert renewed == frozenset()
    assert await a.release(held([first])) == frozenset()
    assert not await a.holds("c", 0, first.epoch)
    assert await a.holds("c", 0, second.epoch)


async def test_the_statements_do_what_the_pure_transitions_say(db: Any) -> None:
    """A seeded random walk of acquire, renew, release and time passing (a
    row's lease pushed into the past) on three nodes: after each step the
    table equals the model built with acquire_slot, renew_slot, release_slot."""
    rng = random.Random(10)
    nodes = [await db(f"node-{x}") for x in "abc"]
    await nodes[0].sync_slots({"c": 4})
    model = {s: Slot("c", s) for s in range(4)}
    tenures: dict[str, set[tuple[int, int]]] = {t.node: set() for t in nodes}  # ever held
    seen: Counter[str] = Counter()

    def holdings(node: str) -> list[Holding]:
        picked = rng.sample(sorted(tenures[node]), k=min(len(tenures[node]), rng.randint(0, 3)))
        return [Holding("c", s, e, 0.0) for s, e in picked]

    for _ in range(150):
        t = rng.choice(nodes)
        now = (await t.snapshot([])).now
        op = rng.choice(["acquire", "renew", "release", "age"])
        if op == "acquire":
            count = rng.randint(1, 4)
            got = await t.acquire("c", count, 4)
            want = [s for s in range(4) if model[s].is_free(now)][:count]
            assert [r.slot for r in got] == want
            seen["acquired"] += len(got)
            for r in got:
                model[r.slot] = acquire_slot(model[r.slot], t.node, now, LEASE) or model[r.slot]
                assert (r.owner, r.epoch) == (model[r.slot].owner, model[r.slot].epoch)
                tenures[t.node].add((r.slot, r.epoch))
        elif op == "renew":
            hs = holdings(t.node)
            _now, renewed = await t.renew(hs)
            want_renewed = set()
            for h in hs:
                row = renew_slot(model[h.slot], t.node, h.epoch, now, LEASE)
                if row is not None:
                    model[h.slot] = row
                    want_renewed.add(("c", h.slot, h.epoch))
            assert renewed == want_renewed
            seen["renewed"] += len(renewed)
            seen["refused renewals"] += len(hs) - len(renewed)
        elif op == "release":
            hs = holdings(t.node)
            released = await t.release(hs)
            want_released = set()
            for h in hs:
                row = release_slot(model[h.slot], t.node, h.epoch)
                if row is not None:
                    model[h.slot] = row
                    want_released.add(("c", h.slot))
            assert released == want_released
            seen["released"] += len(released)
            seen["refused releases"] += len(hs) - len(released)
        else:  # a lease runs out: its end moves a lease and more into the past
            s = rng.randrange(4)
            await t._pool.execute(
                "UPDATE connector_slots SET expires_at = expires_at - $1 WHERE slot = $2",
                2 * LEASE, s,
            )  # fmt: skip
            row = model[s]
            model[s] = Slot(row.connector, s, row.owner, row.epoch, row.expires_at - 2 * LEASE)
        snap = await t.snapshot(["c"])
        assert [(r.owner, r.epoch, r.is_free(snap.now)) for r in snap.slots] == [
            (model[s].owner, model[s].epoch, model[s].is_free(snap.now)) for s in range(4)
        ]
    # The walk went through every kind of outcome.
    assert min(seen[k] for k in ("acquired", "renewed", "refused renewals", "released",
                                 "refused releases")) >= 5, seen
