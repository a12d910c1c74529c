"""Commit watchers across stores (nodes) on one database: another node's outbox
writes wake this one's ``watch_outbox`` (LISTEN/NOTIFY), also after its
listening connection was lost; finals are counted where they were written.

(The contract suite checks a store's own commits: tests/store/test_contract_outbox.py.)
"""

from __future__ import annotations

import asyncio

import pytest

from herald.store import Channel, Status, StatusUpdate
from herald.store.postgres import PostgresStore
from peers.postgres import PgCluster

from .conftest import T0, MessageFactory

HOOK = "https://example.test/hook"
WAIT = 10.0  # seconds at most for a notification or a reconnection


async def _until(condition: object, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    for _ in range(int(WAIT / 0.02)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {WAIT} s: {what}")


async def _hooked_message_ends(store: PostgresStore, make: MessageFactory, account_id: int,
                               status: Status, at: float) -> None:
    """Accept a message with a webhook URL on ``store`` and end it: a webhook event."""
    new = make(account_id=account_id, callback_url=HOOK)
    await store.accept([new])
    await store.update_statuses([StatusUpdate(new.id, status, at)])


async def _listening(store: PostgresStore, seen: list[frozenset[Channel]]) -> None:
    store.watch_outbox(seen.append)
    await _until(lambda: store._watch.connections == 1, "the listener connects")


async def test_another_nodes_commit_wakes_the_watchers_once(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores
    seen: list[frozenset[Channel]] = []
    await _listening(a, seen)
    account = await b.create_account("acme", T0, rate_limit=100, bind_limit=1)
    await _hooked_message_ends(b, make_message, account.id, Status.DELIVERED, T0 + 1)
    await _until(lambda: seen == [frozenset({Channel.WEBHOOK})], "b's commit wakes a")

    await _hooked_message_ends(a, make_message, account.id, Status.DELIVERED, T0 + 2)
    assert len(seen) == 2  # told at once, by its notices
    # and not again when its own notification comes round: b's next one is next
    await _hooked_message_ends(b, make_message, account.id, Status.FAILED, T0 + 3)
    await _until(lambda: len(seen) >= 3, "b's second commit wakes a")
    assert seen == [frozenset({Channel.WEBHOOK})] * 3


async def test_the_listener_connects_again_after_losing_its_connection(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores
    seen: list[frozenset[Channel]] = []
    await _listening(a, seen)
    async with b._pool.acquire() as conn:  # an operator or a fail-over cuts it
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", a._watch.listener_pid)
    await _until(lambda: a._watch.connections == 2, "the listener connects again")
    assert seen == [frozenset(Channel)]  # whatever came meanwhile: look again
    account = await b.create_account("acme", T0, rate_limit=100, bind_limit=1)
    await _hooked_message_ends(b, make_message, account.id, Status.REJECTED, T0 + 1)
    await _until(lambda: len(seen) == 2, "b's commit wakes a again")


async def test_finals_are_counted_by_the_node_that_wrote_them(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores
    counted: dict[str, list[dict[Status, int]]] = {"a": [], "b": []}
    a.watch_finals(lambda c: counted["a"].append(dict(c)))
    b.watch_finals(lambda c: counted["b"].append(dict(c)))
    account = await a.create_account("acme", T0, rate_limit=100, bind_limit=1)
    one, two = make_message(account_id=account.id), make_message(account_id=account.id)
    await a.accept([one, two])
    await b.update_statuses([StatusUpdate(one.id, Status.DELIVERED, T0 + 1)])
    await a.update_statuses([StatusUpdate(two.id, Status.EXPIRED, T0 + 1)])
    assert counted == {"a": [{Status.EXPIRED: 1}], "b": [{Status.DELIVERED: 1}]}


async def test_a_rolled_back_call_tells_nothing(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, _b = two_stores
    seen: list[object] = []
    a.watch_outbox(seen.append)
    a.watch_finals(seen.append)
    account = await a.create_account("acme", T0, rate_limit=100, bind_limit=1)
    new = make_message(account_id=account.id, callback_url=HOOK)
    await a.accept([new])

    async def end_then_fail(conn: object) -> None:
        await conn.execute(  # type: ignore[attr-defined]
            f"UPDATE messages SET status = {int(Status.DELIVERED)}, done_at = 1 WHERE id = $1",
            new.id)
        raise RuntimeError("the caller's later statement failed")

    with pytest.raises(RuntimeError):
        await a._run(end_then_fail)
    assert seen == []
    assert (await a.get_message(new.id)).status is Status.ACCEPTED


async def test_a_database_that_sends_clients_only_warnings_still_tells_its_watchers(
    pg_store_dsn: str, pg_cluster: PgCluster, make_message: MessageFactory
) -> None:
    """The store's notices are its own commits' news: a server default must not mute them."""
    name = pg_store_dsn.rsplit("/", 1)[1]
    pg_cluster.psql(f"ALTER DATABASE {name} SET client_min_messages = warning")
    store = await PostgresStore.open(pg_store_dsn, max_connections=2)
    try:
        counted: list[dict[Status, int]] = []
        store.watch_finals(lambda c: counted.append(dict(c)))
        account = await store.create_account("acme", T0, rate_limit=100, bind_limit=1)
        new = make_message(account_id=account.id)
        await store.accept([new])
        await store.update_statuses([StatusUpdate(new.id, Status.UNDELIVERED, T0 + 1)])
        assert counted == [{Status.UNDELIVERED: 1}]
    finally:
        await store.aclose()
