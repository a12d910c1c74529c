"""The port's claim, idempotency keys and quotas with several stores on one
database (processes or nodes): what the contract suite, one store at a time,
cannot show. Each store here has its own pool, as a node has."""

from __future__ import annotations

import asyncio

from herald.store import (
    DailyQuota,
    IdempotencyRecord,
    Message,
    QuotaExceeded,
    Reschedule,
    Status,
)
from herald.store.postgres import PostgresStore

from .conftest import T0, MessageFactory


async def test_two_stores_claiming_at_once_never_share_a_message(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores
    accounts = [await a.create_account(f"acct{n}", T0, rate_limit=100, bind_limit=1)
                for n in range(3)]  # fmt: skip
    messages = [make_message(account_id=accounts[n % 3].id, segments=1 + n % 2)
                for n in range(240)]  # fmt: skip
    await a.accept(messages)
    claimed: list[Message] = []
    for _ in range(30):  # rounds of 10 claims of up to 9 at once, half on each store
        batches = await asyncio.gather(*(
            (a if n % 2 else b).claim(9, T0 + 10, lease=60) for n in range(10)))
        claimed += [m for batch in batches for m in batch]
        if not any(batches):
            break
    ids = [m.id for m in claimed]
    assert len(ids) == len(set(ids)), "a message was handed out twice"
    assert sorted(ids) == sorted(m.id for m in messages)
    assert {m.status for m in claimed} == {Status.QUEUED}
    # Leased: neither store hands any out again until the lease ends.
    assert await a.claim(100, T0 + 69, lease=60) == ()
    assert await b.claim(100, T0 + 69, lease=60) == ()
    again = await b.claim(1000, T0 + 70, lease=60)  # the claimers died: back they come
    assert sorted(m.id for m in again) == sorted(ids)
    assert {m.attempt for m in again} == {2}


async def test_a_hand_back_on_one_store_is_claimed_on_the_other(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores
    account = await a.create_account("acme", T0, rate_limit=100, bind_limit=1)
    new = make_message(account_id=account.id)
    await a.accept([new])
    [held] = await a.claim(5, T0 + 1, lease=60)
    assert await b.claim(5, T0 + 2, lease=60) == ()
    await a.reschedule_many([Reschedule(new.id, held.attempt, T0 + 3, release=True)])
    [taken] = await b.claim(5, T0 + 3, lease=60)
    assert (taken.id, taken.attempt) == (new.id, held.attempt + 1)
    # The first holder's late hand-back names an old attempt: it changes nothing.
    await a.reschedule_many([Reschedule(new.id, held.attempt, T0 + 4, release=True)])
    assert await a.claim(5, T0 + 4, lease=60) == ()


def _record(account_id: int, body: bytes) -> IdempotencyRecord:
    return IdempotencyRecord(account_id, "key-1", b"h:" + body, 202, b"{}", T0, T0 + 86_400)


async def test_one_idempotency_key_sent_to_two_stores_at_once_stores_once(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores
    account = await a.create_account("acme", T0, rate_limit=100, bind_limit=1)
    first, second = make_message(account_id=account.id), make_message(account_id=account.id)
    answers = await asyncio.gather(
        a.accept([first], idempotency=_record(account.id, b"A")),
        b.accept([second], idempotency=_record(account.id, b"A")))
    assert sorted(answer is None for answer in answers) == [False, True]  # one replays
    assert len(await a.get_messages([first.id, second.id])) == 1


async def test_concurrent_accepts_on_two_stores_never_pass_the_quota_together(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores
    account = await a.create_account("acme", T0, rate_limit=100, bind_limit=1)
    quota = DailyQuota(account.id, day=20_000, limit=5)

    async def one(n: int) -> bool:
        try:
            await (a if n % 2 else b).accept([make_message(account_id=account.id)], quota=quota)
        except QuotaExceeded:
            return False
        return True

    taken = await asyncio.gather(*(one(n) for n in range(12)))
    assert sum(taken) == 5
    assert await a.backlog(T0 + 10) == await b.backlog(T0 + 10)
    assert (await a.backlog(T0 + 10)).unsent == 5
