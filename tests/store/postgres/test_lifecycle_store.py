"""What the PostgreSQL store's lifecycle adds to the dispatch core: the queue
follows the message (sent or final: out of it), a claimed message reads as
queued, a cancel and a claim never overlap, and a receipt that races its
segment's record across two connections is applied, not left parked.

(tests/store/test_lifecycle.py walks this store through every transition of
the lifecycle table with the other stores.)
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from herald.ids import SortableIdGenerator
from herald.store import (
    ChangeOutcome,
    Channel,
    InvalidRecord,
    MessageNotFound,
    NewMessage,
    PriceEntry,
    PriceKind,
    PriceSide,
    ReceiptUpdate,
    RefundPolicy,
    SegmentRecord,
    Source,
    Status,
    StatusEvents,
    StatusUpdate,
    StoredPriceList,
)
from herald.store._billing import Charge
from herald.store.postgres import Completion, DispatchQueue, PostgresStore, create_pool
from herald.store.postgres._sql_lifecycle import (
    APPLY_RECEIPTS,
    LOCK_RECEIPT_KEYS,
    RECORD_SEGMENTS,
)
from herald.store.postgres._store import UNROUTED

T0 = 1_800_000_000.0
LEASE = 30.0


@pytest.fixture
async def opened(pg_store_dsn: str) -> AsyncIterator[tuple[PostgresStore, Any]]:
    store = await PostgresStore.open(pg_store_dsn)
    pool = await create_pool(pg_store_dsn, max_size=4)
    try:
        yield store, pool
    finally:
        await pool.close()
        await store.aclose()


_ids = SortableIdGenerator()


def _message(account_id: int, n: int = 0, **fields: Any) -> NewMessage:
    values: dict[str, Any] = {
        "id": _ids.new_id(T0), "account_id": account_id, "source": Source.HTTP,
        "to": f"+4477009{n:05d}", "sender": "ACME", "body": b"code", "encoding": "gsm7",
        "data_coding": 0, "segments": 1, "accepted_at": T0, "expires_at": T0 + 3600,
    }  # fmt: skip
    values.update(fields)
    return NewMessage(**values)


async def _queued(pool: Any) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM dispatch_queue")
    return count


async def test_the_queue_follows_the_message(opened: tuple[PostgresStore, Any]) -> None:
    store, pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    sent, receipted, cancelled, claimed = (_message(account.id, n) for n in range(4))
    await store.accept([sent, receipted, cancelled, claimed])
    assert await _queued(pool) == 4

    await store.update_statuses([StatusUpdate(sent.id, Status.SENT, T0 + 1)])
    # a receipt before its "sent": the roll-up ends the message, out of the queue
    await store.record_segments([SegmentRecord(receipted.id, 0, "up1", "k", "k", T0 + 1)])
    await store.apply_receipts([ReceiptUpdate("up1", "k", Status.DELIVERED, T0 + 2)])
    assert (await store.cancel(cancelled.id, T0 + 1, account_id=account.id)).outcome is (
        ChangeOutcome.APPLIED)
    assert await _queued(pool) == 1  # only the untouched one is left to dispatch

    # A claim writes the queue row only: the message reads as queued, with the
    # claim's time and attempt, and its customer cannot cancel it meanwhile.
    (claim,) = await DispatchQueue(pool, "node-a").claim(UNROUTED, 10, T0 + 3, LEASE)
    got = await store.get_message(claimed.id)
    assert (got.status, got.queued_at, got.attempt) == (Status.QUEUED, T0 + 3, 1)
    assert claim.message.id == claimed.id
    change = await store.cancel(claimed.id, T0 + 4, account_id=account.id)
    assert (change.outcome, change.message.status) == (ChangeOutcome.IN_PROGRESS, Status.QUEUED)
    # after the lease lapsed nobody holds it, and the cancel takes it out of the queue
    change = await store.cancel(claimed.id, T0 + 4 + LEASE, account_id=account.id)
    assert (change.outcome, change.message.status) == (ChangeOutcome.APPLIED, Status.CANCELLED)
    assert await _queued(pool) == 0


async def test_a_final_step_emits_once_whatever_path_took_it(
    opened: tuple[PostgresStore, Any],
) -> None:
    store, pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1,
                                         callback_url="https://hooks.example/a")  # fmt: skip
    m = _message(account.id, callback_events=StatusEvents.ALL)
    await store.accept([m])
    # the dispatch core's completion (another module's statement) gets the emits too
    (claim,) = await DispatchQueue(pool, "node-a").claim(UNROUTED, 10, T0 + 1, LEASE)
    await DispatchQueue(pool, "node-a").complete(
        [Completion(claim.seq, claim.attempt, Status.SENT)], T0 + 2)
    await store.update_statuses([StatusUpdate(m.id, Status.EXPIRED, T0 + 3),
                                 StatusUpdate(m.id, Status.DELIVERED, T0 + 4)])  # fmt: skip
    events = await store.claim_outbox(Channel.WEBHOOK, T0 + 10, 1, 100)
    assert [(e.status, e.url, e.created_at) for e in events] == [
        (Status.SENT, "https://hooks.example/a", T0 + 2),
        (Status.EXPIRED, "https://hooks.example/a", T0 + 3),  # the first final given wins
    ]
    assert events[0].subject is not None and events[0].subject.id == m.id


async def test_a_receipt_racing_its_segments_record_is_applied_not_parked(
    opened: tuple[PostgresStore, Any],
) -> None:
    store, pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    m = _message(account.id)
    await store.accept([m])
    async with pool.acquire() as conn:
        # record_segments' own statement, its commit held back: the receipt
        # comes from another node meanwhile.
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(RECORD_SEGMENTS, [m.id], [0], ["up1"], ["u-1"], ["u-1"],
                           [T0 + 1], [None])  # fmt: skip
        receipt = asyncio.create_task(store.apply_receipts(
            [ReceiptUpdate("up1", "u-1", Status.DELIVERED, T0 + 2)]))
        await asyncio.sleep(0.3)  # time to park it, were it not made to wait
        await transaction.commit()
    await asyncio.wait_for(receipt, 10)
    assert (await store.get_message(m.id)).status == Status.DELIVERED
    assert await pool.fetchval("SELECT count(*) FROM parked_receipts") == 0


async def test_a_record_racing_its_parked_receipt_applies_it(
    opened: tuple[PostgresStore, Any],
) -> None:
    store, pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    m = _message(account.id)
    await store.accept([m])
    async with pool.acquire() as conn:
        # apply_receipts' own statements (the receipt parks: no segment yet),
        # its commit held back: the part's record comes meanwhile.
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(LOCK_RECEIPT_KEYS, ["up1"], ["u-1"])
        await conn.execute(APPLY_RECEIPTS, ["up1"], ["u-1"], [int(Status.UNDELIVERED)], [None],
                           [T0 + 1])  # fmt: skip
        record = asyncio.create_task(store.record_segments(
            [SegmentRecord(m.id, 0, "up1", "u-1", "u-1", T0 + 2)]))
        await asyncio.sleep(0.3)  # time to miss the parked receipt, were it not made to wait
        await transaction.commit()
    await asyncio.wait_for(record, 10)
    assert (await store.get_message(m.id)).status == Status.UNDELIVERED
    assert await pool.fetchval("SELECT count(*) FROM parked_receipts") == 0


async def test_writes_one_item_at_a_time_park_and_apply_a_receipt_and_end_messages(
    opened: tuple[PostgresStore, Any],
) -> None:
    store, _pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    a, b = _message(account.id, 0, segments=2), _message(account.id, 1)
    await store.accept([a, b])
    await store.update_statuses([StatusUpdate(a.id, Status.QUEUED, T0 + 1)])
    await store.record_segments([SegmentRecord(a.id, 0, "up1", "U-0", "u-0", T0 + 2)])
    await store.apply_receipts([  # parked
        ReceiptUpdate("up1", "u-1", Status.REJECTED, T0 + 3, error_code=0x45)])
    await store.record_segments([SegmentRecord(a.id, 1, "up1", "U-1", "u-1", T0 + 4)])
    await store.update_statuses([
        StatusUpdate(b.id, Status.FAILED, T0 + 5, error_code=7, permanent=True)])
    got = await store.get_messages([a.id, b.id, "nope", a.id])
    assert set(got) == {a.id, b.id}
    assert (got[a.id].status, got[a.id].error_code, got[a.id].done_at) == (
        Status.REJECTED, 0x45, T0 + 3)
    assert (got[b.id].status, got[b.id].error_permanent) == (Status.FAILED, True)
    assert [(s.index, s.upstream_id, s.status) for s in await store.get_segments(a.id)] == [
        (0, "U-0", Status.SENT), (1, "U-1", Status.REJECTED)]


async def test_the_lifecycle_is_installed_when_it_changed(pg_store_dsn: str) -> None:
    from herald.store.postgres import connection, install_lifecycle

    async with connection(pg_store_dsn) as conn:
        assert not await install_lifecycle(conn)  # the template's: current
        await conn.execute("DROP TRIGGER segments_changed ON segments")
        await conn.execute("CREATE OR REPLACE FUNCTION herald_messages_stepped() RETURNS trigger"
                           " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
        assert await install_lifecycle(conn)
        assert not await install_lifecycle(conn)
        triggers = {r["tgname"] for r in await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        watchers = {"outbox_watch", "messages_watch_finals"}  # migration V10's (_watch)
        assert triggers - watchers == {"messages_stepped", "segments_recorded",
                                       "segments_changed"}


async def test_validity_ends_unsent_and_sent_messages(opened: tuple[PostgresStore, Any]) -> None:
    store, pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    old, leased, young, sent, late = (
        _message(account.id, n, expires_at=T0 + (100 if n == 2 else 10)) for n in range(5))
    test = _message(account.id, 5, expires_at=T0 + 10, test=True)
    await store.accept([old, leased, young, sent, late, test])
    await store.update_statuses([StatusUpdate(sent.id, Status.SENT, T0 + 1),
                                 StatusUpdate(late.id, Status.SENT, T0 + 1)])  # fmt: skip
    awaiting = "SELECT count(*) FROM awaiting_receipts"
    assert await pool.fetchval(awaiting) == 2  # the sent ones, for expire_sent
    node = DispatchQueue(pool, "node-a")
    claims = await node.claim(UNROUTED, 10, T0 + 5, 1000)
    assert {c.message.id for c in claims} == {old.id, leased.id, young.id}
    await node.release([c for c in claims if c.message.id != leased.id], T0 + 5)

    assert await store.expire_unsent(T0 + 20, 10) == 1
    got = await store.get_messages([m.id for m in (old, leased, young, test)])
    assert (got[old.id].status, got[old.id].done_at) == (Status.EXPIRED, T0 + 20)
    assert got[leased.id].status is Status.QUEUED  # dispatch still holds it
    assert got[young.id].status is Status.QUEUED
    assert got[test.id].status is Status.ACCEPTED  # never queued
    assert await store.expire_unsent(T0 + 20, 10) == 0
    # the lease ran out (the holder is gone): nobody's; young's validity ended too
    assert await store.expire_unsent(T0 + 2000, 10) == 2
    assert await _queued(pool) == 0

    assert await store.expire_sent(T0 + 5, T0 + 30, 10) == 0
    assert await store.expire_sent(T0 + 10, T0 + 30, 1) == 1
    assert await store.expire_sent(T0 + 10, T0 + 31, 10) == 1
    assert {(await store.get_message(m.id)).status for m in (sent, late)} == {Status.EXPIRED}
    assert await pool.fetchval(awaiting) == 0  # final: no longer waiting


async def test_purge_forgets_old_parked_receipts_and_dead_events(
    opened: tuple[PostgresStore, Any],
) -> None:
    store, pool = opened
    await store.apply_receipts([ReceiptUpdate("up1", "a", Status.DELIVERED, T0),
                                ReceiptUpdate("up1", "b", Status.DELIVERED, T0 + 10)])
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1,
                                         callback_url="https://hooks.example/a")  # fmt: skip
    m = _message(account.id)
    await store.accept([m])
    await store.update_statuses([StatusUpdate(m.id, Status.FAILED, T0 + 1)])
    (event,) = await store.claim_outbox(Channel.WEBHOOK, T0 + 2, 10, 10)
    await store.retry_outbox(event.id, None, "410 Gone")
    assert await store.purge(T0 + 20, parked_before=T0 + 5, dead_before=T0) == 1
    assert await store.purge(T0 + 20, parked_before=T0 + 5, dead_before=T0 + 2) == 1
    assert await pool.fetchval("SELECT count(*) FROM parked_receipts") == 1


async def test_charges_never_overdraw_and_a_refund_comes_once(
    opened: tuple[PostgresStore, Any],
) -> None:
    store, _pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    await store.adjust_balance(account.id, add=100, refund_policy=RefundPolicy.UNDELIVERED)
    charge = Charge("44", None, "default", 60)
    first, second = _message(account.id, 0), _message(account.id, 1)
    # two nodes accept at once: the balance's row lock makes them take turns
    results = await asyncio.gather(store.accept([first], charges=[charge]),
                                   store.accept([second], charges=[charge]),
                                   return_exceptions=True)  # fmt: skip
    assert sorted(type(r).__name__ for r in results) == ["InsufficientFunds", "NoneType"]
    (kept,) = [m for m, r in zip((first, second), results, strict=True) if r is None]
    balance = await store.get_balance(account.id)
    assert balance is not None and balance.balance == 40
    with pytest.raises(MessageNotFound):  # the refused accept stored nothing
        await store.get_message(({first.id, second.id} - {kept.id}).pop())

    await store.update_statuses([StatusUpdate(kept.id, Status.UNDELIVERED, T0 + 1)])
    await store.update_statuses([StatusUpdate(kept.id, Status.EXPIRED, T0 + 2)])  # ignored
    balance = await store.get_balance(account.id)
    assert balance is not None and balance.balance == 100
    (cdr,) = await store.list_cdrs(T0 - 1, T0 + 1, account_id=account.id)
    assert (cdr.sell, cdr.refunded, cdr.status) == (60, 60, Status.UNDELIVERED)


async def test_the_lifecycles_tables_mirror_the_sqlite_stores_columns(
    pg_store_dsn: str, tmp_path: Path,
) -> None:
    # One row mapper by name per table serves both stores only while the names agree.
    from herald.store import SQLiteConfig, SQLiteStore
    from herald.store.postgres import connection
    from herald.store.sqlite import DB_FILENAME

    tables = ("accounts", "api_keys", "smpp_credentials", "parked_receipts", "prices",
              "price_lists", "balances", "cdrs")  # fmt: skip
    await SQLiteStore.open(SQLiteConfig(data_dir=tmp_path)).aclose()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_FILENAME)) as db:
        lite = {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")} for t in tables}
    async with connection(pg_store_dsn) as conn:
        rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns"
                                " WHERE table_name = ANY ($1::text[])", list(tables))
    pg: dict[str, set[str]] = {t: set() for t in tables}
    for r in rows:
        pg[r["table_name"]].add(r["column_name"])
    assert pg == lite


async def test_the_buy_price_is_the_most_specific_rounded_half_to_even(
    opened: tuple[PostgresStore, Any],
) -> None:
    store, _pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    await store.adjust_balance(account.id, add=1_000)
    await store.put_price_list(StoredPriceList(PriceSide.BUY, "up1", (
        PriceEntry(PriceKind.NETWORK, "23410", 15_000),  # 1.5 micro-units: odd, up
        PriceEntry(PriceKind.COUNTRY, "44", 25_000),  # 2.5: even, down
        PriceEntry(PriceKind.DEFAULT, "", 25_001),  # a hair above the half: up
    ), T0))  # fmt: skip
    cases = [("44", "23410", 2), ("44", None, 2), ("49", None, 3)]
    for n, (country, network, _buy) in enumerate(cases):
        m = _message(account.id, n)
        await store.accept([m], charges=[Charge(country, network, "default", 1)])
        await store.record_segments([SegmentRecord(m.id, 0, "up1", f"u{n}", f"u{n}", T0 + 1)])
    cdrs = await store.list_cdrs(T0 - 1, T0 + 1, account_id=account.id)
    assert [(c.connector, c.buy) for c in cdrs] == [("up1", buy) for _c, _n, buy in cases]


def test_what_it_implements_has_the_ports_signatures() -> None:
    import inspect

    from herald.store import Store

    implemented = [name for name in dir(PostgresStore)
                   if not name.startswith("_") and hasattr(Store, name)]  # fmt: skip
    assert len(implemented) >= 30
    for name in implemented:
        port = inspect.signature(getattr(Store, name))
        ours = inspect.signature(getattr(PostgresStore, name))
        assert list(ours.parameters.values()) == list(port.parameters.values()), name


async def test_margin_sums_revenue_and_cost_per_key(opened: tuple[PostgresStore, Any]) -> None:
    store, _pool = opened
    acme = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    beta = await store.create_account("beta", T0, rate_limit=10, bind_limit=1)
    for account in (acme, beta):
        await store.adjust_balance(account.id, add=1_000, refund_policy=RefundPolicy.REJECTED)
    await store.put_price_list(StoredPriceList(PriceSide.BUY, "up1", (
        PriceEntry(PriceKind.DEFAULT, "", 500_000),), T0))  # 50 micro-units a part
    sent, rejected, other = _message(acme.id, 0), _message(acme.id, 1), _message(beta.id, 2)
    await store.accept([sent, rejected], charges=[Charge("44", None, "default", 100)] * 2)
    await store.accept([other], charges=[Charge("49", None, "default", 70)])
    await store.record_segments([SegmentRecord(sent.id, 0, "up1", "a", "a", T0 + 1),
                                 SegmentRecord(other.id, 0, "up2", "b", "b", T0 + 1)])
    await store.update_statuses([StatusUpdate(rejected.id, Status.REJECTED, T0 + 1)])
    by_account = await store.margin(T0 - 1, T0 + 1, "account")
    assert [(r.key, r.messages, r.revenue, r.cost, r.unpriced) for r in by_account] == [
        (str(acme.id), 2, 100, 50, 0), (str(beta.id), 1, 70, 0, 1)]  # fmt: skip
    by_connector = await store.margin(T0 - 1, T0 + 1, "connector")
    assert [(r.key, r.messages, r.cost) for r in by_connector] == [
        ("", 1, 0), ("up1", 1, 50), ("up2", 1, 0)]  # fmt: skip
    by_country = await store.margin(T0 - 1, T0 + 1, "country", account_id=beta.id)
    assert [(r.key, r.revenue) for r in by_country] == [("49", 70)]
    with pytest.raises(InvalidRecord):
        await store.margin(T0 - 1, T0 + 1, "planet")


async def _index_scans(conn: Any) -> dict[str, int]:
    """Index scans this transaction started, per index of the lifecycle's tables."""
    rows = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name, pg_stat_get_xact_numscans(indexrelid) AS n"
        " FROM pg_index WHERE indrelid = ANY ('{messages,segments,parked_receipts}'::regclass[])")
    return {r["name"]: r["n"] for r in rows}


async def test_records_and_receipts_find_messages_by_key_and_skip_parked_receipts(
    opened: tuple[PostgresStore, Any],
) -> None:
    # What the triggers do per row for a batch of n records and then their n
    # receipts (one-part messages): the records look for parked receipts
    # (nothing parked: nothing deleted, no part updated); the receipts' own
    # updates change no key, so they look for none; each roll-up finds its
    # message by key.
    store, pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    batch = [_message(account.id, n) for n in range(20)]
    await store.accept(batch)
    n, ids, keys = len(batch), [m.id for m in batch], [f"k{i}" for i in range(len(batch))]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(RECORD_SEGMENTS, ids, [0] * n, ["up1"] * n, keys, keys,
                           [T0 + 1] * n, [None] * n)  # fmt: skip
        recorded = await _index_scans(conn)
        await conn.execute(LOCK_RECEIPT_KEYS, ["up1"] * n, keys)
        await conn.execute(APPLY_RECEIPTS, ["up1"] * n, keys, [int(Status.DELIVERED)] * n,
                           [None] * n, [T0 + 2] * n)  # fmt: skip
        receipted = await _index_scans(conn)
    got = await store.get_messages(ids)
    assert {m.status for m in got.values()} == {Status.DELIVERED}
    assert await pool.fetchval("SELECT count(*) FROM parked_receipts") == 0
    # the record: each message found by its key once (the "sent" step: not a
    # walk of the primary key, which counts one scan), no foreign key's check
    # per part and per receipt wait (migration V21: 3n with them)
    assert recorded["messages_pkey"] == n, recorded
    # the receipts: parked receipts not looked at; each message found by key once
    assert receipted["parked_receipts_upstream"] == recorded["parked_receipts_upstream"], (
        recorded, receipted)
    assert receipted["messages_pkey"] - recorded["messages_pkey"] == n, (recorded, receipted)


async def test_retention_takes_the_parts_of_the_messages_it_deletes(
    opened: tuple[PostgresStore, Any],
) -> None:
    # No foreign key cascades (migration V21): the purge's statement deletes them.
    store, pool = opened
    account = await store.create_account("acme", T0, rate_limit=10, bind_limit=1)
    old, kept = _message(account.id, 0, segments=2), _message(account.id, 1)
    await store.accept([old, kept])
    await store.record_segments([SegmentRecord(m.id, i, "up1", f"{m.id}.{i}", f"{m.id}.{i}",
                                               T0 + 1) for m in (old, kept)
                                 for i in range(m.segments)])  # fmt: skip
    await store.apply_receipts([ReceiptUpdate("up1", f"{old.id}.{i}", Status.DELIVERED, T0 + 2)
                                for i in range(2)])  # fmt: skip
    await store.margin(T0, T0, "account")  # the sums up to date (see RetentionStore)
    step = await store.purge_messages(T0 + 100, after=0, limit=100)
    assert step.deleted == 1
    parts = await pool.fetch("SELECT message_seq, idx FROM segments ORDER BY 1, 2")
    seq = await pool.fetchval("SELECT seq FROM messages WHERE id = $1", kept.id)
    assert [tuple(r) for r in parts] == [(seq, 0)]  # the sent one's; none of the purged one
    assert await pool.fetchval("SELECT count(*) FROM awaiting_receipts") == 1
