"""Segment records and receipts on PostgreSQL go through in-order writers, as
on SQLite: what arrives while a transaction is under way goes into the next
one, each committed before the next starts, and a receipt goes once the
records given before it committed; and a pooled connection goes back to the
pool with no reset query, an open transaction still rolled back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from herald.store import ReceiptUpdate, SegmentRecord, Status
from herald.store.postgres import PostgresStore, create_pool
from herald.store.postgres._batch import InOrder

from .conftest import T0, MessageFactory


async def test_records_and_receipts_given_together_are_grouped_and_never_park(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    store, other = two_stores
    account = await store.create_account("acme", T0, rate_limit=100, bind_limit=1)
    messages = [make_message(account_id=account.id) for _ in range(10)]
    await store.accept(messages)
    before = store._records.executions + store._receipts.executions
    writes = []
    for n, m in enumerate(messages):  # as dispatch gives them: a part's record, its receipt
        writes.append(store.record_segments([SegmentRecord(m.id, 0, "up1", f"U{n}", f"u{n}",
                                                           T0 + 1)]))  # fmt: skip
        writes.append(store.apply_receipts([ReceiptUpdate("up1", f"u{n}", Status.DELIVERED,
                                                          T0 + 2)]))  # fmt: skip
    await asyncio.gather(*writes)
    # 20 transactions before: now the records' one, then the receipts'
    assert 2 <= store._records.executions + store._receipts.executions - before <= 4
    # each caller returned after the commit: every message is delivered, for any node
    got = await other.get_messages([m.id for m in messages])
    assert {m.status for m in got.values()} == {Status.DELIVERED}
    async with other._pool.acquire() as conn:  # no receipt was ever parked
        assert await conn.fetchval("SELECT pg_sequence_last_value(pg_get_serial_sequence("
                                   "'parked_receipts', 'id')::regclass)") is None  # fmt: skip


async def test_a_write_given_during_a_transaction_waits_for_its_commit_and_goes_next() -> None:
    started: list[list[list[Any]]] = []
    first_may_commit = asyncio.Event()

    async def write(streams: list[list[Any]]) -> None:
        started.append(streams)
        if len(started) == 1:
            await first_may_commit.wait()

    writer = InOrder(write, streams=2, max_rows=100)
    first = asyncio.create_task(writer.submit([["r1"], []]))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(writer.submit([["r2"], []])),
             asyncio.create_task(writer.submit([[], ["c2"]]))]  # fmt: skip
    await asyncio.sleep(0.05)
    assert started == [[["r1"], []]]  # nothing else starts before the first commits
    assert not any(t.done() for t in [first, *later])
    first_may_commit.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 5)
    assert started == [[["r1"], []], [["r2"], ["c2"]]]  # the two later ones together
    assert writer.executions == 2


async def test_a_failed_transaction_fails_its_callers_only() -> None:
    calls = 0

    async def write(streams: list[list[Any]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.02)
            raise ConnectionError("lost")

    writer = InOrder(write, streams=1, max_rows=100)
    first = asyncio.create_task(writer.submit([["a"]]))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(writer.submit([["b"]]))
    with pytest.raises(ConnectionError):
        await first
    await asyncio.wait_for(second, 5)  # the next group ran
    await writer.aclose()


async def test_a_pooled_connection_is_released_without_a_reset_query(pg_store_dsn: str) -> None:
    pool = await create_pool(pg_store_dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET work_mem = '7MB'")  # session state: RESET ALL would undo it
            await conn.execute("CREATE TABLE pool_probe (n integer)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW work_mem") == "7MB"  # the same session, untouched
            await conn.execute("BEGIN")  # a transaction left open (not the store's way)
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
        async with pool.acquire() as conn:  # ... is still rolled back on release
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM pool_probe") == 0
    finally:
        await pool.close()
