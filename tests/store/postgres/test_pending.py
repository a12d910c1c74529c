"""The guard's platform-egress question asked of the PostgreSQL store
(``PostgresPendingMessages``): a yes while a customer message to the number is
not final, not a test and within its validity; a no, within the bound and with
a warning, when the database cannot answer; a yes again once it can. And the
lookup's index: used with many finished messages, and no obstacle to the HOT
updates the messages' transitions rely on."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herald.ids import SortableIdGenerator
from herald.store import (
    ChangeOutcome,
    NewMessage,
    PostgresPendingMessages,
    Source,
    Status,
    StatusUpdate,
    StoreUnavailable,
)
from herald.store.pending import ANSWER_TIMEOUT, APPLICATION_NAME
from herald.store.postgres import PostgresStore, connection
from herald.store.postgres._sql_lifecycle import SET_FINAL, SET_SENT
from peers.postgres import PgCluster, free_port

NUMBER = "447700900123"
#: Generous: the lookup gives up after ANSWER_TIMEOUT; this only shows it did
#: not wait for the database (a lock held for the whole test, a stopped server).
NOT_WAITING = ANSWER_TIMEOUT + 4.0
#: After a failed lookup, the next ones answer "no" without asking for this long
#: (longer than the default, so that the test sees a reconnected lookup held).
HOLD = 2.0
_ids = SortableIdGenerator()


def _message(to: str = NUMBER, *, at: float | None = None, **fields: Any) -> NewMessage:
    now = time.time() if at is None else at
    values: dict[str, Any] = {
        "id": _ids.new_id(now), "account_id": 1, "source": Source.HTTP, "to": to,
        "sender": "ACME", "body": b"code 1234", "encoding": "gsm7", "data_coding": 0,
        "segments": 1, "accepted_at": now, "expires_at": now + 3600,
    }  # fmt: skip
    values.update(fields)
    return NewMessage(**values)


@pytest.fixture
async def pg_store(pg_store_dsn: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore.open(pg_store_dsn)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def pending(pg_store_dsn: str) -> Any:
    lookup = PostgresPendingMessages(pg_store_dsn)
    lookup.open()
    try:
        yield lookup
    finally:
        lookup.close()


def _until(pending: PostgresPendingMessages, number: str, now: float) -> bool:
    """Ask until the answer is yes, for at most ~10 s (the lookup reconnects)."""
    for _ in range(100):
        if pending.has_pending(number, now):
            return True
        time.sleep(0.1)
    return False


async def test_a_message_is_pending_until_final(
    pg_store: PostgresStore, pending: PostgresPendingMessages
) -> None:
    now = time.time()
    assert not pending.has_pending(NUMBER, now)
    waiting = _message()
    await pg_store.accept([waiting])
    assert pending.has_pending(NUMBER, now)
    assert pending.has_pending("+" + NUMBER, now)
    assert not pending.has_pending("447700900124", now)  # another number
    assert not pending.has_pending(NUMBER, now + 7200)  # past its validity
    await pg_store.update_statuses([StatusUpdate(waiting.id, Status.SENT, now)])
    assert pending.has_pending(NUMBER, now)  # sent, its receipt not yet in
    await pg_store.update_statuses([StatusUpdate(waiting.id, Status.DELIVERED, now)])
    assert not pending.has_pending(NUMBER, now)


@pytest.mark.parametrize("final", ["expired", "cancelled", "test", "validity"])
async def test_no_pending_message(
    pg_store: PostgresStore, pending: PostgresPendingMessages, final: str
) -> None:
    now = time.time()
    message = _message(test=final == "test",
                       at=now - 7200 if final == "validity" else now)  # fmt: skip
    await pg_store.accept([message])
    if final == "expired":
        await pg_store.update_statuses([StatusUpdate(message.id, Status.EXPIRED, now)])
    elif final == "cancelled":
        cancelled = await pg_store.cancel(message.id, now, account_id=1)
        assert cancelled.outcome is ChangeOutcome.APPLIED
    stored = await pg_store.get_message(message.id)
    assert stored.status is (Status.ACCEPTED if final in ("test", "validity") else
                             Status.EXPIRED if final == "expired" else Status.CANCELLED)
    assert not pending.has_pending(NUMBER, now)


async def test_a_lookup_the_database_does_not_answer_in_time_fails_closed(
    pg_store: PostgresStore, pg_store_dsn: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = time.time()
    await pg_store.accept([_message()])
    pending = PostgresPendingMessages(pg_store_dsn, hold=HOLD)
    pending.open()
    try:
        await _silent_database(pg_store_dsn, pending, now, caplog)
    finally:
        pending.close()


async def _silent_database(
    pg_store_dsn: str, pending: PostgresPendingMessages, now: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert pending.has_pending(NUMBER, now)
    async with connection(pg_store_dsn) as blocker:
        # Reads of messages wait for this lock: the database is up but silent.
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        with caplog.at_level(logging.WARNING, "herald.store.pending"):
            started = time.monotonic()
            assert not pending.has_pending(NUMBER, now)
            assert time.monotonic() - started < NOT_WAITING
            # The next ones do not ask (each would hold the caller up to the
            # bound) for a while, reconnected or not: together, well under one.
            await asyncio.sleep(HOLD / 4)  # time to reconnect (loopback)
            started = time.monotonic()
            assert not any(pending.has_pending(NUMBER, now) for _ in range(5))
            assert time.monotonic() - started < ANSWER_TIMEOUT
        assert f"no answer within {ANSWER_TIMEOUT * 1000:.0f} ms" in caplog.text
        # The lookups given up on do not stay in the database waiting for the
        # lock (one backend per retry would pile up): the server ends them.
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                   " AND wait_event_type = 'Lock'")  # fmt: skip
        for _ in range(50):
            if await blocker.fetchval(waiting, APPLICATION_NAME) == 0:
                break
            await asyncio.sleep(0.1)
        assert await blocker.fetchval(waiting, APPLICATION_NAME) == 0
        await lock.rollback()
    assert _until(pending, NUMBER, now)  # a new connection, by itself


async def test_a_stopped_database_fails_closed_and_the_lookup_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cluster of its own (the session's is shared), stopped under the lookup
    and started again on the same port and data."""
    cluster = PgCluster.start()
    try:
        dsn = cluster.create_database("pending")
        store = await PostgresStore.open(dsn)
        try:
            await store.accept([_message()])
        finally:
            await store.aclose()
        pending = PostgresPendingMessages(dsn)
        pending.open()
        try:
            now = time.time()
            assert pending.has_pending(NUMBER, now)
            cluster.shut_down()
            with caplog.at_level(logging.WARNING, "herald.store.pending"):
                for _ in range(3):  # the lost connection, then none to be had
                    started = time.monotonic()
                    assert not pending.has_pending(NUMBER, now)
                    assert time.monotonic() - started < NOT_WAITING
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1  # once per outage, not per lookup
            assert "failing closed" in warnings[0].getMessage()
            cluster.start_again()
            assert _until(pending, NUMBER, now)
            assert "answers again" in caplog.records[-1].getMessage()
        finally:
            pending.close()
    finally:
        cluster.stop()


async def test_a_store_it_cannot_use_is_an_error_at_start(pg_dsn: str, pg_store_dsn: str) -> None:
    with pytest.raises(ValueError, match="names no database"):
        PostgresPendingMessages("postgresql://herald:secret@127.0.0.1:5432/")
    nobody = PostgresPendingMessages(f"postgresql://herald:secret@127.0.0.1:{free_port()}/x")
    with pytest.raises(StoreUnavailable, match="cannot connect") as refused:
        nobody.open()
    assert "secret" not in str(refused.value)
    empty = PostgresPendingMessages(pg_dsn)  # a database, but no herald store in it
    with pytest.raises(ValueError, match="holds no herald store"):
        empty.open()
    async with connection(pg_store_dsn) as conn:  # migrated before the lookup's index
        await conn.execute("DROP INDEX messages_pending_to")
    older = PostgresPendingMessages(pg_store_dsn)
    with pytest.raises(ValueError, match=r"predates .* herald db migrate"):
        older.open()
    closed = PostgresPendingMessages(pg_store_dsn)
    closed.close()
    assert not closed.has_pending(NUMBER, time.time())  # closed: "no", not an exception


# -- the index --------------------------------------------------------------------------------

FINISHED = 200_000
T0 = 1_800_000_000.0

# Finished messages to 20,000 numbers, accepted over the last ~2 days with a
# day's validity (so half of them still within it), a few per cent tests.
_FILL = f"""
INSERT INTO messages (id, account_id, source, to_addr, from_addr, body, encoding,
    data_coding, udhi, segments, registered_delivery, test, expires_at, status,
    accepted_at, sent_at, done_at)
SELECT g::text, 1, {int(Source.HTTP)}, (447700000000 + g % 20000)::text, 'ACME', '', 'gsm7',
    0, false, 1, 0, g % 37 = 0, $2 - g + 86400, {int(Status.DELIVERED)} + g % 5,
    $2 - g, $2 - g, $2 - g
FROM generate_series(1, $1::int) AS g
"""


def _scans(plan: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    found = []
    if "Relation Name" in plan:
        found.append((plan["Node Type"], plan["Relation Name"], plan.get("Index Name")))
    for child in plan.get("Plans", ()):
        found.extend(_scans(child))
    return found


async def test_the_lookup_uses_its_index_among_many_finished_messages(pg_store_dsn: str) -> None:
    from herald.store.pending import _PG_QUERY

    async with connection(pg_store_dsn) as conn:
        await conn.execute(_FILL, FINISHED, T0)
        await conn.execute("ANALYZE messages")
        await conn.execute("PREPARE pending(text, double precision) AS " + _PG_QUERY)
        for plan_mode in ("force_custom_plan", "force_generic_plan"):  # asyncpg prepares
            await conn.execute(f"SET plan_cache_mode = {plan_mode}")
            explained = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) EXECUTE pending('447700000042', {T0})"
            )
            scans = _scans(json.loads(explained)[0]["Plan"])
            assert [(relation, index) for _node, relation, index in scans] == [
                ("messages", "messages_pending_to")
            ], (plan_mode, scans)
            assert scans[0][0] in ("Index Scan", "Bitmap Heap Scan"), scans


async def _hot_updates(conn: Any, statement: str, *args: Any) -> tuple[int, int]:
    """``statement`` run in a transaction of its own: the rows of messages it
    updated, and how many of those updates were HOT."""
    counts = ("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
              " WHERE relname = 'messages'")  # fmt: skip
    async with conn.transaction():
        before = await conn.fetchrow(counts)
        await conn.execute(statement, *args)
        after = await conn.fetchrow(counts)
    return (after["n_tup_upd"] - before["n_tup_upd"],
            after["n_tup_hot_upd"] - before["n_tup_hot_upd"])  # fmt: skip


async def test_status_updates_stay_hot_with_the_lookup_index(
    pg_store: PostgresStore, pg_store_dsn: str
) -> None:
    # Few enough that every version of every row fits the first page: an update
    # that is not HOT is then one that had to write an index entry.
    messages = [_message(f"4477009{n:05d}", at=T0) for n in range(8)]
    await pg_store.accept(messages)
    ids = [m.id for m in messages]
    n = len(ids)
    async with connection(pg_store_dsn) as conn:
        assert await conn.fetchval("SELECT to_regclass('messages_pending_to') IS NOT NULL")
        assert await conn.fetchval(
            "SELECT count(DISTINCT (ctid::text::point)[0]) FROM messages"
        ) == 1  # fmt: skip

        # The store's own statements, each transition in a transaction of its
        # own (as the store commits them): sent, then final.
        assert await _hot_updates(conn, SET_SENT, ids, [T0 + 1] * n) == (n, n)
        assert await _hot_updates(conn, SET_FINAL, ids, [int(Status.DELIVERED)] * n,
                                  [T0 + 2] * n, [None] * n, [False] * n) == (n, n)  # fmt: skip


async def test_a_batch_updating_every_row_of_its_pages_stays_hot(
    pg_store: PostgresStore, pg_store_dsn: str
) -> None:
    # A record of "sent" (or a batch of receipts) updates consecutive messages
    # in one statement: every row of a page gets a new version, a little
    # larger (a time set), while the old ones still stand, so all must fit
    # the room fillfactor left. At 50 they did not quite (the page header and
    # line pointers): in bench/cluster.py's loop the last row of each page
    # moved off it (3 % of the updates), here 18 of the 150 final steps; a
    # non-HOT update leaves a dead index entry, and with those on more than
    # 2 % of its pages every vacuum of messages passed over all its indexes.
    # V22 made it 45.
    messages = [_message(f"4477009{n:05d}", at=T0) for n in range(150)]
    await pg_store.accept(messages)
    ids = [m.id for m in messages]
    n = len(ids)
    async with connection(pg_store_dsn) as conn:
        pages = await conn.fetchval("SELECT count(DISTINCT (ctid::text::point)[0]) FROM messages")
        assert pages >= 4  # several full pages, not one with room to spare

        assert await _hot_updates(conn, SET_SENT, ids, [T0 + 1] * n) == (n, n)
        # Then final, in a transaction of its own: the first versions are
        # pruned to make room, so these stay HOT too.
        assert await _hot_updates(conn, SET_FINAL, ids, [int(Status.DELIVERED)] * n,
                                  [T0 + 2] * n, [None] * n, [False] * n) == (n, n)  # fmt: skip
        assert await conn.fetchval(
            "SELECT count(DISTINCT (ctid::text::point)[0]) FROM messages") == pages
