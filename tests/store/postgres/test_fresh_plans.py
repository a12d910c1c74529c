"""On a fresh database (no statistics yet: autovacuum's first ANALYZE comes
20,000 rows later), the statements that find a segment's, a receipt's and a
claim's rows by key must not settle on a plan that scans the whole table.

asyncpg prepares every statement, and PostgreSQL keeps a prepared
statement's generic plan once it looks as cheap as the custom ones: planned
while ``messages`` and ``segments`` held a few rows, RECORD_SEGMENTS,
APPLY_RECEIPTS and the port's LEASE hash-joined a sequential scan of the
table, and kept doing so as it grew (bench/e2e_cluster.py: the server's CPU
per message grew with the run). RECORD_SEGMENTS looks each message up by id
in a subquery the planner keeps apart; the receipts' and the claim's
transactions start with a statement that turns sequential scans off for the
rest of them. This reads the generic plans.
"""

from __future__ import annotations

import json
from typing import Any

from herald.store.postgres import connection
from herald.store.postgres._messages import LEASE, WAITING
from herald.store.postgres._sql_lifecycle import APPLY_RECEIPTS, RECORD_SEGMENTS
from herald.store.postgres._store import UPSTREAM_LOCKS

T0 = 1_800_000_000.0


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every scan in a JSON plan."""
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"]))
    for child in plan.get("Plans", ()):
        found.extend(_scans(child))
    return found


async def _generic_scans(conn: Any, name: str, execute: str) -> list[tuple[str, str]]:
    await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    explained = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{execute}")
    return _scans(json.loads(explained)[0]["Plan"])


async def test_the_writer_and_the_claim_find_rows_by_key_on_a_fresh_database(
    pg_store_dsn: str,
) -> None:
    async with connection(pg_store_dsn) as conn:
        assert await conn.fetchval(  # fresh: never analyzed
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('messages', 'segments')"
            " AND coalesce(last_analyze, last_autoanalyze) IS NOT NULL") == 0
        await conn.execute(
            "PREPARE record(text[], smallint[], text[], text[], text[], float8[], float8[]) AS "
            + RECORD_SEGMENTS)
        await conn.execute(
            "PREPARE receipts(text[], text[], smallint[], integer[], float8[]) AS "
            + APPLY_RECEIPTS)
        await conn.execute(
            "PREPARE lease(bigint[], text, float8, float8) AS " + LEASE)

        async with conn.transaction():  # a record: one statement of its own
            scans = await _generic_scans(
                conn, "record", f"('{{m1}}', '{{0}}', '{{up1}}', '{{U-1}}', '{{u-1}}', '{{{T0}}}',"
                " '{NULL}')")
            assert [s for s in scans if s[1] == "messages"], scans
            assert ("Seq Scan", "messages") not in scans, scans

        async with conn.transaction():  # the in-order writer's receipts
            await conn.execute(UPSTREAM_LOCKS, ["up1"], ["u-1"])
            scans = await _generic_scans(
                conn, "receipts", f"('{{up1}}', '{{u-1}}', '{{3}}', '{{NULL}}', '{{{T0}}}')")
            assert [s for s in scans if s[1] == "segments"], scans
            assert ("Seq Scan", "segments") not in scans, scans

        async with conn.transaction():  # the port's claim
            await conn.execute(WAITING)
            scans = await _generic_scans(conn, "lease", f"('{{1}}', 'node-a', {T0}, {T0 + 30})")
            assert [s for s in scans if s[1] == "messages"], scans
            assert ("Seq Scan", "messages") not in scans, scans
