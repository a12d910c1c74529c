"""Plain accepts (no idempotency key, quota or charge: an HTTP single send)
arriving together share one statement and one commit on PostgreSQL, as the
SQLite store's writer groups its commits; a bad caller's rows fail that caller
only."""

from __future__ import annotations

import asyncio

import pytest

from herald.store import DuplicateMessageId, IdempotencyRecord
from herald.store.postgres import PostgresStore

from .conftest import T0, MessageFactory


async def test_plain_accepts_sent_together_share_a_statement(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    store, other = two_stores
    account = await store.create_account("acme", T0, rate_limit=100, bind_limit=1)
    messages = [make_message(account_id=account.id) for _ in range(20)]
    before = store._accepts.executions  # the statements its accepts ran
    assert await asyncio.gather(*(store.accept([m]) for m in messages)) == [None] * 20
    assert 1 <= store._accepts.executions - before < 10  # a transaction each before
    # each caller returned after the commit: every message is there, for any node
    got = await other.get_messages([m.id for m in messages])
    assert sorted(got) == sorted(m.id for m in messages)


async def test_a_duplicate_in_a_group_fails_its_caller_only(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    store, other = two_stores
    account = await store.create_account("acme", T0, rate_limit=100, bind_limit=1)
    first, second = make_message(account_id=account.id), make_message(account_id=account.id)
    again = make_message(account_id=account.id, id=first.id)
    answers = await asyncio.gather(store.accept([first]), store.accept([again]),
                                   store.accept([second]), return_exceptions=True)
    duplicates = [a for a in answers if isinstance(a, DuplicateMessageId)]
    assert len(duplicates) == 1 and answers.count(None) == 2
    got = await other.get_messages([first.id, second.id])
    assert sorted(got) == sorted([first.id, second.id])
    assert got[first.id].body in (first.body, again.body)  # one of the two, once


async def test_accepts_with_a_key_keep_their_own_transaction(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    store, _ = two_stores
    account = await store.create_account("acme", T0, rate_limit=100, bind_limit=1)
    before = store._accepts.executions
    record = IdempotencyRecord(account.id, "k", b"h", 202, b"{}", T0, T0 + 60)
    assert await store.accept([make_message(account_id=account.id)], idempotency=record) is None
    assert store._accepts.executions == before
    with pytest.raises(DuplicateMessageId):
        m = make_message(account_id=account.id)
        await store.accept([m])
        await store.accept([m])
