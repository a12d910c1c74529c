"""The PostgreSQL store's margin sums with several writers: a message whose seq
is below the newest one when a read passes it (its transaction still open, or
rolled back) is summed once it commits, and forgotten once it cannot come."""

from __future__ import annotations

from typing import Any

from herald.store import Charge, PriceEntry, PriceKind, PriceSide, StoredPriceList
from herald.store.postgres import PostgresStore

from .conftest import T0, MessageFactory


async def _margin(store: PostgresStore) -> tuple[int, int]:
    """Messages and revenue of every account."""
    rows = await store.margin(T0 - 60, T0 + 60, "account")
    return sum(r.messages for r in rows), sum(r.revenue for r in rows)


async def _gaps(store: PostgresStore) -> list[int]:
    """The seqs the sums wait for."""
    rows = await store._one(lambda c: c.fetch("SELECT lo, hi FROM cdr_sums_gaps ORDER BY lo"))
    return [seq for r in rows for seq in range(r["lo"], r["hi"] + 1)]


async def _seq(store: PostgresStore, message_id: str) -> int:
    seq: int = await store._one(lambda c: c.fetchval(
        "SELECT seq FROM messages WHERE id = $1", message_id))
    return seq


async def test_a_message_committed_after_a_newer_one_is_summed_and_a_rolled_back_one_forgotten(
    pg_store_dsn: str, make_message: MessageFactory
) -> None:
    store = await PostgresStore.open(pg_store_dsn)
    try:
        # an account each: an open accept holds its balance's row lock
        account, slow_one, doomed_one = [
            await store.create_account(name, T0, rate_limit=100.0, bind_limit=2)
            for name in ("acme", "slow", "doomed")]
        for a in (account, slow_one, doomed_one):
            await store.put_price_list(StoredPriceList(PriceSide.SELL, str(a.id), (
                PriceEntry(PriceKind.DEFAULT, "", 500_000_000),), T0))  # fmt: skip
            await store.adjust_balance(a.id, add=10**6)

        def charge(amount: int) -> list[Charge]:
            return [Charge("44", None, "+44", amount)]

        async def open_accept(conn: Any, account_id: int, amount: int) -> str:
            """A charged message stored in ``conn``'s open transaction (a node
            whose accept has not committed yet)."""
            m = make_message(account_id=account_id)
            await store._accept_in(conn, [m], charge(amount))
            return m.id

        await store.accept([make_message(account_id=account.id)], charges=charge(1))
        assert await _margin(store) == (1, 1)
        async with store._pool.acquire() as slow, store._pool.acquire() as doomed:
            late = slow.transaction()
            await late.start()
            late_id = await open_accept(slow, slow_one.id, 10)
            lost = doomed.transaction()
            await lost.start()
            await open_accept(doomed, doomed_one.id, 100)
            await store.accept([make_message(account_id=account.id)], charges=charge(1000))
            # The reads pass both open accepts (their seqs are below the newest)
            for _ in range(2):
                assert await _margin(store) == (2, 1001)
                assert len(await _gaps(store)) == 2
            await late.commit()
            assert await _margin(store) == (3, 1011)  # summed once it commits
            assert await _margin(store) == (3, 1011)  # and only once
            (gap,) = await _gaps(store)
            assert gap != await _seq(store, late_id)
            await lost.rollback()
        assert await _margin(store) == (3, 1011)
        assert await _gaps(store) == []  # its transaction ended: the seq never comes
        await store.accept([make_message(account_id=account.id)], charges=charge(10_000))
        assert await _margin(store) == (4, 11_011)
        marked = await store._one(lambda c: c.fetchrow("SELECT last_seq FROM cdr_sums_mark"))
        assert marked["last_seq"] == await store._one(lambda c: c.fetchval(
            "SELECT max(seq) FROM messages"))  # the sums are stored, not read from the CDRs
    finally:
        await store.aclose()
