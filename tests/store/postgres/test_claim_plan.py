"""The claim's plan with 1M finished messages: it must use the claim index.

Issue 10 measured a claim that let the planner walk the primary key (``ORDER
BY id`` alone) at ~50x slower with 1M finished rows. This test builds that
table in one ``INSERT ... SELECT generate_series`` (a few seconds), queues a
backlog over several connectors and priority classes with some of it in
flight, and reads the plan of the store's own CLAIM statement, both as planned
for these values and as the generic plan a prepared statement (asyncpg's) may
settle on. The tables are unlogged for the fill only (the planner does not
look at that): the test takes a few seconds, most of it the fill.
"""

from __future__ import annotations

import json
from typing import Any

from herald.store import Source
from herald.store.postgres import connection
from herald.store.postgres._messages import CANDIDATES, WAITING
from herald.store.postgres._sql import CLAIM, COMPLETE, EXPIRE_QUEUED, RELEASE

from .history import fill_finished

FINISHED = 1_000_000

T0 = 1_800_000_000.0

_BACKLOG = f"""
WITH new AS (
    INSERT INTO messages (id, account_id, source, to_addr, from_addr, body, encoding,
        data_coding, udhi, segments, registered_delivery, test, expires_at, accepted_at,
        priority)
    SELECT 'q' || g, 1, {int(Source.HTTP)}, '+447700900000', 'ACME',
        '\\x00'::bytea, 'gsm7', 0, false, 1, 0, false, {T0} + 3600, {T0}, g % 4
    FROM generate_series(1, $1::int) AS g
    RETURNING seq, priority
)
INSERT INTO dispatch_queue (seq, connector, priority, due_at, expires_at, owner, lease_until,
    attempt)
SELECT seq, 'c' || (seq % 5), priority, {T0}, {T0} + 3600,
    CASE WHEN seq % 3 = 0 THEN 'node-x' END,
    CASE WHEN seq % 3 = 0 THEN {T0} + 60 END,
    CASE WHEN seq % 3 = 0 THEN 1 ELSE 0 END
FROM new
"""

# The port's queue (connector ''): 50 accounts, every class, a third leased
# (due_at at the lease's end, as the port's claim leaves it).
_PORT_BACKLOG = f"""
WITH new AS (
    INSERT INTO messages (id, account_id, source, to_addr, from_addr, body, encoding,
        data_coding, udhi, segments, registered_delivery, test, expires_at, accepted_at,
        priority)
    SELECT 'p' || g, 1 + g % 50, {int(Source.HTTP)}, '+447700900000', 'ACME',
        '\\x00'::bytea, 'gsm7', 0, false, 1, 0, false, {T0} + 3600, {T0}, g % 4
    FROM generate_series(1, $1::int) AS g
    RETURNING seq, account_id, priority
)
INSERT INTO dispatch_queue (seq, connector, priority, due_at, expires_at, owner, lease_until,
    attempt, account_id)
SELECT seq, '', priority, CASE WHEN seq % 3 = 0 THEN {T0} + 60 ELSE {T0} END, {T0} + 3600,
    CASE WHEN seq % 3 = 0 THEN 'node-x' END,
    CASE WHEN seq % 3 = 0 THEN {T0} + 60 END,
    CASE WHEN seq % 3 = 0 THEN 1 ELSE 0 END, account_id
FROM new
"""


def _scans(plan: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(node type, relation, index) of every scan in a JSON plan."""
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"], plan.get("Index Name")))
    for child in plan.get("Plans", ()):
        found.extend(_scans(child))
    return found


def _indexes(plan: dict[str, Any]) -> set[str]:
    """The index of every node of a JSON plan (bitmap index scans included)."""
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", ()):
        found |= _indexes(child)
    return found


def _write_scans(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The scans that find the rows ``table``'s ModifyTable writes (not its InitPlans)."""
    if plan["Node Type"] == "ModifyTable" and plan["Relation Name"] == table:
        return [p for p in plan["Plans"] if p["Parent Relationship"] == "Outer"]
    return [w for child in plan.get("Plans", ()) for w in _write_scans(child, table)]


#: The loop's writes of queue rows, prepared as asyncpg prepares them, with
#: arguments to EXECUTE them with (a completion, a release: 50 of the backlog's claims).
_WRITES = (
    ("claim(text, bigint, text, float8, float8)", CLAIM, f"('c1', 50, 'node-a', {T0 + 1}, 30.0)"),
    ("expire(float8, bigint)", EXPIRE_QUEUED, f"({T0 + 1}, 500)"),
    ("complete(text, bigint[], integer[], smallint[], integer[], float8[])", COMPLETE,
     "('node-x', '{" + ",".join(str(3 * n) for n in range(1, 51)) + "}', array_fill(1, "
     "ARRAY[50]), array_fill(3::smallint, ARRAY[50]), array_fill(NULL::int, ARRAY[50]), "
     f"array_fill({T0 + 1}::float8, ARRAY[50]))"),
    ("release(text, bigint[], integer[], float8)", RELEASE,
     "('node-x', '{" + ",".join(str(3 * n) for n in range(1, 51)) + "}', array_fill(1, "
     f"ARRAY[50]), {T0 + 1})"),
)


async def _assert_writes_by_primary_key(conn: Any) -> None:
    """Each of :data:`_WRITES` reaches the queue rows it writes by primary key
    (or a scan of a table the planner knows to be small), in both plan modes."""
    for name, sql, args in _WRITES:
        await conn.execute(f"PREPARE write_{name} AS {sql}")
        for plan_mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {plan_mode}")
            explained = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) EXECUTE write_{name.split('(')[0]}{args}")
            (write,) = _write_scans(json.loads(explained)[0]["Plan"], "dispatch_queue")
            assert _indexes(write) <= {"dispatch_queue_pkey"}, (name, plan_mode, write)
        await conn.execute(f"DEALLOCATE write_{name.split('(')[0]}; RESET plan_cache_mode")


async def test_the_loop_writes_queue_rows_by_primary_key(pg_store_dsn: str) -> None:
    """The UPDATE (DELETE) of the rows a claim (an expiry, a completion, a release) chose
    reaches them by primary key, never through a partial index whose
    predicate its conditions imply: with ``AND owner IS NULL`` there, a
    prepared claim on a fresh queue planned ``dispatch_queue_claim`` with
    ``seq = ANY`` as an index condition on a non-leading column, a walk of
    the whole claim index for every claim (bench/cluster.py: 121 buffers per
    claimed message with 3 nodes, 15 after). Here on a fresh, never analysed
    queue (as a new database starts, and as asyncpg keeps the plan); the
    1M-row test below checks the same with a backlog."""
    async with connection(pg_store_dsn) as conn:
        await _assert_writes_by_primary_key(conn)


async def test_claim_uses_the_claim_index_with_1m_finished_messages(pg_store_dsn: str) -> None:
    async with connection(pg_store_dsn) as conn:
        # Unlogged (no WAL) only to fill faster: the planner does not look at it.
        await conn.execute(
            "ALTER TABLE segments SET UNLOGGED; ALTER TABLE dispatch_queue SET UNLOGGED;"
            " ALTER TABLE awaiting_receipts SET UNLOGGED; ALTER TABLE messages SET UNLOGGED"
        )
        await fill_finished(conn, FINISHED, T0)
        await conn.execute(_BACKLOG, 5_000)
        await conn.execute("ANALYZE messages; ANALYZE dispatch_queue")
        await conn.execute(
            "PREPARE claim(text, bigint, text, double precision, double precision) AS " + CLAIM
        )
        for plan_mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {plan_mode}")
            explained = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) EXECUTE claim('c1', 50, 'node-a', {T0 + 1}, 30.0)"
            )
            scans = _scans(json.loads(explained)[0]["Plan"])
            queue_scans = [s for s in scans if s[1] == "dispatch_queue"]
            message_scans = [s for s in scans if s[1] == "messages"]
            # The candidates come from the claim index; the chosen rows are then
            # fetched by primary key: no scan of the queue, however long.
            assert ("Index Scan", "dispatch_queue", "dispatch_queue_claim") in queue_scans, (
                plan_mode, scans)
            assert {s[2] for s in queue_scans if s[0] != "ModifyTable"} == {
                "dispatch_queue_claim", "dispatch_queue_pkey"}, (plan_mode, scans)
            # The claimed rows' messages are fetched by primary key, not searched for.
            assert message_scans, (plan_mode, scans)
            assert {s[2] for s in message_scans} == {"messages_pkey"}, (plan_mode, scans)
        await conn.execute("RESET plan_cache_mode")
        await _assert_writes_by_primary_key(conn)

        # The port's claim: the accounts waiting per class, then each one's ready
        # rows, both from dispatch_queue_port alone (messages by primary key).
        await conn.execute(_PORT_BACKLOG, 5_000)
        await conn.execute("ANALYZE dispatch_queue")
        await conn.execute("RESET plan_cache_mode; BEGIN")
        waiting = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {WAITING}"))
        scans = _scans(waiting[0]["Plan"])
        assert {s[2] for s in scans} == {"dispatch_queue_port"}, scans
        await conn.execute(WAITING)  # its hint holds for the claim's transaction
        await conn.execute(
            "PREPARE candidates(bigint[], smallint, float8, float8[], bigint[], bigint) AS "
            + CANDIDATES)
        accounts = "'{" + ",".join(str(a) for a in range(1, 51)) + "}'"
        after_due, after_seq = "'{" + ",".join(["-Infinity"] * 50) + "}'", "'{" + ",".join(
            ["-1"] * 50) + "}'"
        for plan_mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {plan_mode}")
            explained = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) EXECUTE candidates({accounts}, 2, {T0 + 1},"
                f" {after_due}, {after_seq}, 10)")
            scans = _scans(json.loads(explained)[0]["Plan"])
            assert {s[2] for s in scans if s[1] == "dispatch_queue"} == {
                "dispatch_queue_port"}, (plan_mode, scans)
            assert {s[2] for s in scans if s[1] == "messages"} == {"messages_pkey"}, (
                plan_mode, scans)
        await conn.execute("ROLLBACK")
