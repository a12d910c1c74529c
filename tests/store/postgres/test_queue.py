"""The PostgreSQL store's dispatch core on a real server: accept, claim, complete.

Contract-style: what a node sees through :class:`DispatchQueue`, with the
queue and the messages read back by column name to check what is stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from herald.store import DuplicateMessageId, InvalidRecord, Priority, Status
from herald.store.postgres import Claim, Completion, DispatchQueue

from .conftest import T0, MessageFactory

LEASE = 30.0


async def stored(pool: Any, message_id: str) -> Any:
    return await pool.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)


async def test_accept_claim_complete(pool: Any, make_message: MessageFactory) -> None:
    node = DispatchQueue(pool, "node-a")
    batch = [make_message() for _ in range(5)]
    await node.accept(batch, ["c1"] * 5)

    claims = await node.claim("c1", 3, T0 + 1, LEASE)
    assert [c.message.id for c in claims] == [m.id for m in batch[:3]]  # oldest first
    first = claims[0].message
    assert (first.status, first.attempt, first.queued_at) == (Status.QUEUED, 1, T0 + 1)
    assert (first.to, first.body, first.priority) == (batch[0].to, batch[0].body, batch[0].priority)

    done = [Completion(c.seq, c.attempt, Status.SENT) for c in claims[:2]]
    done.append(Completion(claims[2].seq, claims[2].attempt, Status.REJECTED, error_code=0x45))
    assert await node.complete(done, T0 + 2) == {c.seq for c in claims}

    sent = await stored(pool, batch[0].id)
    assert (sent["status"], sent["sent_at"], sent["done_at"]) == (Status.SENT, T0 + 2, None)
    assert (sent["queued_at"], sent["attempt"]) == (T0 + 1, 1)
    rejected = await stored(pool, batch[2].id)
    assert (rejected["status"], rejected["error_code"]) == (Status.REJECTED, 0x45)
    assert (rejected["sent_at"], rejected["done_at"]) == (None, T0 + 2)
    # Completed messages left the queue; the two never claimed are still there.
    queued = await pool.fetch("SELECT seq, owner FROM dispatch_queue ORDER BY seq")
    assert [(r["owner"]) for r in queued] == [None, None]
    assert [c.message.id for c in await node.claim("c1", 10, T0 + 3, LEASE)] == [
        m.id for m in batch[3:]
    ]


async def test_claims_go_by_priority_then_acceptance_and_per_connector(
    pool: Any, make_message: MessageFactory
) -> None:
    node = DispatchQueue(pool, "node-a")
    bulk = make_message(priority=Priority.BULK)
    otp = make_message(priority=Priority.OTP)
    other = make_message(priority=Priority.OTP)
    late = make_message(send_at=T0 + 100)
    test = make_message(test=True)
    await node.accept([bulk, otp, other, late, test], ["c1", "c1", "c2", "c1", "c1"])
    claims = await node.claim("c1", 10, T0 + 1, LEASE)
    assert [c.message.id for c in claims] == [otp.id, bulk.id]  # not c2's, not late, no test
    assert [c.message.id for c in await node.claim("c1", 10, T0 + 100, LEASE)] == [late.id]
    assert (await stored(pool, test.id))["status"] == Status.ACCEPTED  # stored, never queued


async def test_accept_is_all_or_nothing(pool: Any, make_message: MessageFactory) -> None:
    node = DispatchQueue(pool, "node-a")
    first = make_message()
    await node.accept([first], ["c1"])
    with pytest.raises(DuplicateMessageId):
        await node.accept([make_message(), first], ["c1", "c1"])
    assert await pool.fetchval("SELECT count(*) FROM messages") == 1
    assert await pool.fetchval("SELECT count(*) FROM dispatch_queue") == 1
    with pytest.raises(InvalidRecord, match="connector"):
        await node.accept([make_message()], [])


async def test_concurrent_claimers_never_get_the_same_message(
    pool: Any, make_message: MessageFactory
) -> None:
    total = 600
    await DispatchQueue(pool, "loader").accept(
        [make_message() for _ in range(total)], ["c1"] * total
    )
    nodes = [DispatchQueue(pool, f"node-{i}") for i in range(4)]
    got: dict[str, list[Claim]] = {n.owner: [] for n in nodes}

    async def drain(node: DispatchQueue) -> None:
        for _ in range(total):  # bounded: each round claims at least one or stops
            claims = await node.claim("c1", 7, T0 + 1, LEASE)
            if not claims:
                return
            got[node.owner].extend(claims)
            ended = await node.complete(
                [Completion(c.seq, c.attempt, Status.SENT) for c in claims], T0 + 2
            )
            assert ended == {c.seq for c in claims}

    await asyncio.gather(*(drain(n) for n in nodes))
    seqs = [c.seq for claims in got.values() for c in claims]
    assert len(seqs) == total
    assert len(set(seqs)) == total  # nobody got a message another node got
    assert sum(1 for claims in got.values() if claims) > 1  # they really ran together
    assert await pool.fetchval("SELECT count(*) FROM dispatch_queue") == 0
    statuses = await pool.fetch("SELECT status, count(*) AS n FROM messages GROUP BY status")
    assert [(r["status"], r["n"]) for r in statuses] == [(Status.SENT, total)]


async def test_a_stale_holder_cannot_complete_or_release_a_requeued_claim(
    pool: Any, make_message: MessageFactory
) -> None:
    dead, alive = DispatchQueue(pool, "node-dead"), DispatchQueue(pool, "node-alive")
    message = make_message()
    await dead.accept([message], ["c1"])
    (old,) = await dead.claim("c1", 1, T0 + 1, LEASE)
    assert await alive.claim("c1", 1, T0 + 2, LEASE) == ()  # held
    assert await alive.requeue_expired(T0 + 1 + LEASE - 1) == 0  # lease not over
    assert await alive.requeue_expired(T0 + 1 + LEASE + 1) == 1
    (new,) = await alive.claim("c1", 1, T0 + 40, LEASE)
    assert (new.message.id, new.attempt) == (message.id, 2)
    assert new.message.queued_at == T0 + 1  # the first claim's time stays

    # The dead node wakes up: its completion and its hand-back are refused.
    assert await dead.complete([Completion(old.seq, old.attempt, Status.FAILED)], T0 + 41) == (
        frozenset()
    )
    assert await dead.release([old], T0 + 41) == frozenset()
    assert (await stored(pool, message.id))["status"] == Status.ACCEPTED
    assert await alive.complete([Completion(new.seq, new.attempt, Status.SENT)], T0 + 42) == {
        new.seq
    }
    assert (await stored(pool, message.id))["status"] == Status.SENT


async def test_release_makes_a_claim_claimable_from_its_time(
    pool: Any, make_message: MessageFactory
) -> None:
    node = DispatchQueue(pool, "node-a")
    await node.accept([make_message()], ["c1"])
    claims = await node.claim("c1", 1, T0 + 1, LEASE)
    assert await node.release(claims, T0 + 10) == {claims[0].seq}
    assert await node.claim("c1", 1, T0 + 5, LEASE) == ()
    (again,) = await node.claim("c1", 1, T0 + 10, LEASE)
    assert again.attempt == 2


@pytest.mark.parametrize(
    ("meanwhile", "completed"),
    [
        (Status.CANCELLED, Status.SENT),  # would move backwards
        (Status.DELIVERED, Status.REJECTED),  # a greater number, but a final stays
        (Status.SENT, Status.SENT),  # no move
    ],
)
async def test_a_status_only_grows_and_a_final_one_stays(
    pool: Any, make_message: MessageFactory, meanwhile: Status, completed: Status
) -> None:
    node = DispatchQueue(pool, "node-a")
    message = make_message()
    await node.accept([message], ["c1"])
    (claim,) = await node.claim("c1", 1, T0 + 1, LEASE)
    # Meanwhile the message moved on by another path (a cancel, a receipt).
    await pool.execute("UPDATE messages SET status = $1 WHERE id = $2", int(meanwhile), message.id)
    # A message sent or final is out of the queue (the lifecycle's trigger):
    # the claim ended there, and its late completion changes nothing.
    assert await pool.fetchval("SELECT count(*) FROM dispatch_queue") == 0
    assert await node.complete([Completion(claim.seq, claim.attempt, completed)], T0 + 2) == (
        frozenset()
    )
    row = await stored(pool, message.id)
    assert (row["status"], row["done_at"]) == (meanwhile, None)


def test_completions_and_claims_refuse_what_is_not_theirs() -> None:
    with pytest.raises(InvalidRecord, match="sent or final"):
        Completion(1, 1, Status.QUEUED)
    with pytest.raises(InvalidRecord, match="owner"):
        DispatchQueue(object(), "")


async def test_claim_limit_is_bounded(pool: Any) -> None:
    node = DispatchQueue(pool, "node-a")
    for limit in (0, 501):
        with pytest.raises(InvalidRecord, match="limit"):
            await node.claim("c1", limit, T0, LEASE)


def test_accept_reads_every_column_of_the_statement_by_name() -> None:
    from herald.store.postgres._queue import _ACCEPT_VALUES
    from herald.store.postgres._sql import ACCEPT_COLUMNS

    # The statement's arrays and the values read from a NewMessage, in one order.
    assert [name for name, _type in ACCEPT_COLUMNS] == [*_ACCEPT_VALUES, "connector"]


async def test_concurrent_accepts_share_one_statement_within_the_window(
    pool: Any, make_message: MessageFactory
) -> None:
    node = DispatchQueue(pool, "node-a", batch_window=0.05)
    batches = [[make_message() for _ in range(3)] for _ in range(10)]
    await asyncio.gather(*(node.accept(b, ["c1"] * 3) for b in batches))
    assert node.statements == 1  # ten callers, one statement, one commit
    claims = await node.claim("c1", 50, T0 + 60, LEASE)
    assert [c.message.id for c in claims] == [m.id for b in batches for m in b]  # in order


async def test_one_callers_bad_rows_fail_that_caller_only(
    pool: Any, make_message: MessageFactory
) -> None:
    node = DispatchQueue(pool, "node-a", batch_window=0.05)
    taken = make_message()
    await node.accept([taken], ["c1"])
    good, bad, also_good = [make_message()], [make_message(), taken], [make_message()]
    results = await asyncio.gather(
        node.accept(good, ["c1"]), node.accept(bad, ["c1"] * 2),
        node.accept(also_good, ["c1"]), return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], DuplicateMessageId)
    ids = {r["id"] for r in await pool.fetch("SELECT id FROM messages")}
    assert ids == {taken.id, good[0].id, also_good[0].id}  # nothing of the bad call


async def test_concurrent_completions_share_a_statement_and_each_gets_its_own(
    pool: Any, make_message: MessageFactory
) -> None:
    node = DispatchQueue(pool, "node-a", batch_window=0.05)
    await node.accept([make_message() for _ in range(6)], ["c1"] * 6)
    claims = await node.claim("c1", 6, T0 + 60, LEASE)
    before = node.statements
    halves = claims[:3], claims[3:]
    ended = await asyncio.gather(*(
        node.complete([Completion(c.seq, c.attempt, Status.SENT) for c in half], T0 + 61)
        for half in halves
    ))
    assert node.statements == before + 1
    assert [set(e) for e in ended] == [{c.seq for c in half} for half in halves]
    await node.aclose()


async def test_a_full_group_goes_at_once(pool: Any, make_message: MessageFactory) -> None:
    node = DispatchQueue(pool, "node-a", batch_window=60.0, max_batch=3)
    # Three rows fill the group: no wait for the (long) window.
    await asyncio.wait_for(node.accept([make_message() for _ in range(3)], ["c1"] * 3), 10)
    assert await pool.fetchval("SELECT count(*) FROM dispatch_queue") == 3


async def test_an_expired_message_is_not_claimed_but_expired(
    pool: Any, make_message: MessageFactory
) -> None:
    node = DispatchQueue(pool, "node-a")
    held, short = make_message(expires_at=T0 + 10), make_message(expires_at=T0 + 10)
    fresh = make_message(expires_at=T0 + 3600)
    await node.accept([held], ["c1"])
    (claim,) = await node.claim("c1", 1, T0 + 1, LEASE)  # in flight when it expires
    await node.accept([short, fresh], ["c1", "c1"])
    assert [c.message.id for c in await node.claim("c1", 10, T0 + 20, LEASE)] == [fresh.id]
    assert await node.expire_queued(T0 + 20) == 1
    assert await node.expire_queued(T0 + 20) == 0
    row = await stored(pool, short.id)
    assert (row["status"], row["done_at"]) == (Status.EXPIRED, T0 + 20)
    # The held one is its holder's to end (or the requeue's), not the expiry's.
    assert (await stored(pool, held.id))["status"] == Status.ACCEPTED
    assert await node.complete([Completion(claim.seq, claim.attempt, Status.SENT)], T0 + 21) == {
        claim.seq
    }
