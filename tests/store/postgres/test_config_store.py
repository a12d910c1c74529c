"""The operator's configuration on PostgreSQL across nodes: a change made on
one node is seen by another polling its generation, opt-out seqs become
visible in the order they were given (a follower misses none), a daily quota
holds across connections, and the health reads are index ranges however many
segments the store holds.

(The contract suite, tests/store/test_contract_{routing,numbers,controls}.py,
checks the same methods' results on both stores.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herald.accounts import ControlBook
from herald.intake import Network, NumberingPlan
from herald.numbers import NumberTables
from herald.routes import LiveRouting
from herald.routing import Route, RouteTable
from herald.store import (
    ConnectorState,
    DailyQuota,
    NewMessage,
    NumberTable,
    NumberTableKind,
    OptOutChange,
    QuotaExceeded,
    Source,
    Status,
    StoredRoutes,
)
from herald.store.postgres import PostgresStore, connection, create_pool
from herald.store.postgres._controls import apply_opt_outs, count_quota
from herald.store.postgres._routing import _COUNTS, _FINALS

from .history import fill_finished

T0 = 1_800_000_000.0
DAY = 20_000


@pytest.fixture
async def nodes(pg_store_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database: two herald nodes."""
    a = await PostgresStore.open(pg_store_dsn)
    try:
        b = await PostgresStore.open(pg_store_dsn)
        try:
            yield a, b
        finally:
            await b.aclose()
    finally:
        await a.aclose()


async def test_a_change_on_one_node_is_seen_by_another(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    assert await b.routing_generation() == 0 and await b.number_tables_generation() == 0
    routes = await a.put_routes(StoredRoutes("[[rule]]", "a.toml", T0))
    assert await b.routing_generation() == routes
    assert await b.get_routes() == StoredRoutes("[[rule]]", "a.toml", T0, routes)
    disabled = await b.set_connector_state(ConnectorState("up1", True, "maintenance", T0))
    assert await a.routing_generation() == disabled > routes
    assert await a.connector_states() == (ConnectorState("up1", True, "maintenance", T0),)
    table = await b.put_number_table(NumberTable(NumberTableKind.PLAN, b"plan", 1, T0))
    assert await a.number_tables_generation() == table
    account = await a.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    await a.change_opt_outs(account.id, [OptOutChange("491", True, T0, "cli")])
    assert [e.number for e in await b.opt_out_changes(0, 10)] == ["491"]


async def test_another_nodes_router_tables_and_opt_outs_follow_at_their_refresh(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    # What herald serve runs on node b, against changes an operator makes on node a.
    a, b = nodes
    routing = LiveRouting(b, RouteTable([Route("49", ("b",))]), {"a", "b"},  # type: ignore[arg-type]
                          lambda: T0)
    tables, book = NumberTables(b), ControlBook(b)  # type: ignore[arg-type]
    await routing.refresh()
    await tables.refresh()
    account = await a.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    sent = NewMessage(id="m1", account_id=account.id, source=Source.HTTP, to="4917012345678",
                      sender="ACME", body=b"x", encoding="gsm7", data_coding=0, segments=1,
                      accepted_at=T0, expires_at=T0 + 600)  # fmt: skip
    await a.accept([sent])
    message = await b.get_message("m1")
    assert routing.decide(message).connectors == ("b",)

    await a.put_routes(StoredRoutes('[[rule]]\nname = "r"\nfailover = ["a", "b"]\n', "r.toml", T0))
    await a.set_connector_state(ConnectorState("a", True, "maintenance", T0))
    plan = NumberingPlan.build([("4917", Network("262", "01", "Telekom"))])
    await a.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(), len(plan), T0))
    await a.change_opt_outs(account.id, [OptOutChange("4917012345678", True, T0, "cli")])

    assert await routing.refresh() and await tables.refresh()
    decision = routing.decide(message)
    assert (decision.rule, decision.connectors) == ("r", ("b",))  # "a" is disabled
    network = tables.rules().index.network_of("4917012345678")
    assert network is not None and (network.mcc, network.mnc) == ("262", "01")
    assert await book.sync_opt_outs() == 1
    assert book.opted_out(account.id) == {"4917012345678"}
    assert not await routing.refresh() and not await tables.refresh()  # nothing new


async def _wait_for_a_lock_wait(dsn: str) -> None:
    async with connection(dsn) as conn:
        for _ in range(500):  # bounded: 5 s
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'")
            if waiting:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the second writer never waited for the first")


async def test_opt_out_seqs_become_visible_in_commit_order(
    nodes: tuple[PostgresStore, PostgresStore], pg_store_dsn: str
) -> None:
    # A seq handed out before a smaller one commits would be skipped for good
    # by a follower that read past it: the second writer waits for the first.
    a, b = nodes
    account = await a.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    async with connection(pg_store_dsn) as first:
        transaction = first.transaction()
        await transaction.start()
        await apply_opt_outs(first, account.id, [OptOutChange("491", True, T0, "cli")])
        second = asyncio.create_task(
            b.change_opt_outs(account.id, [OptOutChange("492", True, T0, "cli")]))
        try:
            await _wait_for_a_lock_wait(pg_store_dsn)
            assert await a.opt_out_changes(0, 10) == ()  # neither seq is visible yet
        finally:
            await transaction.commit()  # (lets the second writer finish either way)
            changed = await second
    assert changed == 1
    seen = await a.opt_out_changes(0, 10)
    assert [(e.number, e.seq) for e in seen] == [("491", 1), ("492", 2)]


async def test_concurrent_writers_get_distinct_seqs(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = nodes
    account = await a.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    changes = [(a, b)[i % 2].change_opt_outs(account.id, [
        OptOutChange(f"49{i:03d}{k}", True, T0, "cli") for k in range(3)]) for i in range(20)]
    assert await asyncio.gather(*changes) == [3] * 20
    seen = await b.opt_out_changes(0, 100)
    assert [e.seq for e in seen] == list(range(1, 61))


async def test_a_quota_holds_across_connections(pg_store_dsn: str) -> None:
    pool = await create_pool(pg_store_dsn, max_size=8)
    quota = DailyQuota(1, DAY, 25)

    async def accept_one() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await count_quota(conn, quota, 1)

    try:
        results = await asyncio.gather(*(accept_one() for _ in range(60)),
                                       return_exceptions=True)  # fmt: skip
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        assert [r for r in results if r is not None and r not in refused] == []
        assert [(r.limit, r.used, r.wanted) for r in refused] == [(25, 25, 1)] * 35
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT used FROM daily_usage") == 25
            with pytest.raises(QuotaExceeded) as info:  # too big for an empty day too
                await count_quota(conn, DailyQuota(1, DAY + 1, 2), 3)
            assert (info.value.used, info.value.wanted) == (0, 3)
            assert await conn.fetchval("SELECT count(*) FROM daily_usage") == 1
    finally:
        await pool.close()


# 100,000 segments of finished messages over four connectors, half of them final.
_SEGMENTS = f"""
INSERT INTO segments (message_seq, idx, connector, upstream_id, upstream_key, status,
                      updated_at)
SELECT seq, 0, 'up' || (seq % 4), seq::text, seq::text,
    CASE WHEN seq % 2 = 0 THEN {int(Status.DELIVERED)} ELSE {int(Status.SENT)} END, {T0} - seq
FROM messages
"""


def _scans(plan: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    found = [(plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"))]
    for child in plan.get("Plans", ()):
        found += _scans(child)
    return found


async def test_health_reads_are_index_ranges(pg_store_dsn: str) -> None:
    async with connection(pg_store_dsn) as conn:
        await conn.execute(  # for the fill's speed only: the planner does not look at it
            "ALTER TABLE segments SET UNLOGGED; ALTER TABLE dispatch_queue SET UNLOGGED;"
            " ALTER TABLE awaiting_receipts SET UNLOGGED; ALTER TABLE messages SET UNLOGGED")
        await fill_finished(conn, 100_000, T0)
        # The rows are history as it stands: the lifecycle has nothing to do
        # (its record trigger would take 100,000 key locks in one transaction).
        await conn.execute("ALTER TABLE segments DISABLE TRIGGER USER")
        await conn.execute(_SEGMENTS)
        await conn.execute("ANALYZE messages; ANALYZE segments")
        # A window holding every final segment (the limit cuts the range) and
        # one of an hour (the range is short by itself).
        for sql, since in itertools.product((_COUNTS, _FINALS), (T0 - 1e6, T0 - 3600)):
            explained = await conn.fetchval(
                "EXPLAIN (FORMAT JSON) " + sql, ["up0", "up1", "up2"], since, 500)
            scans = _scans(json.loads(explained)[0]["Plan"])
            indexes = {s[2] for s in scans if (s[2] or "").startswith("segments")}
            assert indexes == {"segments_final"}, scans
            assert ("Seq Scan", "segments", None) not in scans, scans


async def test_the_lifecycle_never_reads_parts_through_segments_final(pg_store_dsn: str) -> None:
    # Statistics taken before many receipts make segments_final look empty;
    # the roll-up's read of one message's delivered parts then scanned it whole
    # (every final segment, at each receipt) instead of the primary key.
    async with connection(pg_store_dsn) as conn:
        await fill_finished(conn, 5_000, T0)
        await conn.execute("ALTER TABLE segments DISABLE TRIGGER USER")
        await conn.execute(_SEGMENTS.replace(str(int(Status.DELIVERED)), str(int(Status.SENT))))
        await conn.execute("ANALYZE segments")
        explained = await conn.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT count(*) FROM segments s"
            f" WHERE s.message_seq = $1 AND s.status = {int(Status.DELIVERED)}", 5)
        scans = _scans(json.loads(explained)[0]["Plan"])
        assert {s[2] for s in scans if s[1] == "segments"} == {"segments_pkey"}, scans
