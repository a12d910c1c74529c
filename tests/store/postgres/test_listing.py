"""Listing and changing messages on PostgreSQL: what the contract suite cannot see.

The plans: with 100,000 messages over 50 accounts, a page of an account's
messages (by number, by reference, by status, from a cursor), the operator's
search of recent messages and a bulk cancel read an index range in ``seq``
order (no scan of ``messages``, no sort of an account's history), as planned
for the values and as the generic plan asyncpg's prepared statements may
settle on. And a message claimed through the dispatch queue (its ``messages``
row still says ``accepted``) lists as ``queued`` and is held against a
replace and a bulk cancel, like a message claimed through the port; and bulk
cancels racing two nodes' claims never both take a message (the queue row is
locked before the cancel decides: without that lock the test fails).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herald.store import (
    Account,
    ChangeOutcome,
    MessageFilter,
    RecentFilter,
    Replacement,
    Source,
    Status,
)
from herald.store.postgres import DispatchQueue, PostgresStore, connection
from herald.store.postgres._listing import _CANCEL_MATCHING, listing, newest_first
from herald.store.postgres._store import UNROUTED

from .conftest import T0, MessageFactory

MESSAGES = 100_000
ACCOUNTS = 50
LEASE = 30.0

# Delivered messages of 50 accounts, each to one of 5,000 numbers, every
# tenth with one of 1,000 references; and a backlog of 5,000 queued ones,
# every third claimed.
_FILL = f"""
INSERT INTO messages (id, account_id, source, to_addr, from_addr, body, encoding,
    data_coding, udhi, segments, registered_delivery, test, expires_at, status,
    accepted_at, done_at, reference)
SELECT g::text, 1 + g % {ACCOUNTS}, {int(Source.HTTP)}, '+4477009' || (g % 5000), 'ACME',
    '', 'gsm7', 0, false, 1, 0, false, $2 + 3600,
    CASE WHEN g > $1 - 5000 THEN {int(Status.ACCEPTED)} ELSE {int(Status.DELIVERED)} END,
    $2 - $1 + g, $2 - $1 + g, CASE WHEN g % 10 = 0 THEN 'r' || (g % 1000) END
FROM generate_series(1, $1::int) AS g
"""
_BACKLOG = f"""
INSERT INTO dispatch_queue (seq, connector, priority, due_at, expires_at, owner, lease_until,
    attempt, queued_at)
SELECT seq, '', 1, $1::float8, $1 + 3600, CASE WHEN seq % 3 = 0 THEN 'node-x' END,
    CASE WHEN seq % 3 = 0 THEN $1::float8 + 60 END, (seq % 3 = 0)::int,
    CASE WHEN seq % 3 = 0 THEN $1 END
FROM messages WHERE status = {int(Status.ACCEPTED)}
"""


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", ()):
        found.extend(_nodes(child))
    return found


async def _plan(conn: Any, sql: str, params: list[object]) -> list[dict[str, Any]]:
    explained = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *params)
    return _nodes(json.loads(explained)[0]["Plan"])


async def test_listing_reads_an_index_range_of_the_account(pg_store_dsn: str) -> None:
    account = 7
    cursor_seq = MESSAGES - 1000 + account  # one of the account's, near the top
    # (what, statement, parameters, the indexes messages is read by, and
    # whether in seq order: a page then stops at its size)
    ordered: list[tuple[str, str, list[object], set[str]]] = [
        ("page", *listing(MessageFilter(account), None), {"messages_account"}),
        ("cursor", *listing(MessageFilter(account), cursor_seq), {"messages_account"}),
        ("delivered", *listing(MessageFilter(account, status=Status.DELIVERED), None),
         {"messages_account"}),
        ("to", *listing(MessageFilter(account, to="+44770091007"), None),
         {"messages_account_to"}),
        ("reference", *listing(MessageFilter(account, reference="r570"), None),
         {"messages_account_reference"}),
        # the newest half by seq, then the account's among them
        ("recent", *newest_first([
            ("m.seq > (SELECT coalesce(max(seq), 0) FROM messages) - $", MESSAGES // 2)],
            50, account_id=account), {"messages_account", "messages_pkey"}),
        ("cancel by number", _CANCEL_MATCHING.format(filters=" AND m.to_addr = $4"),
         [account, T0, 100, "+44770091007"], {"messages_account_to", "messages_pkey"}),
        ("cancel by reference", _CANCEL_MATCHING.format(filters=" AND m.reference = $4"),
         [account, T0, 100, "r570"], {"messages_account_reference", "messages_pkey"}),
    ]  # fmt: skip
    # Filters the planner expects to match few of the account's messages: the
    # account's index entries (a bitmap of messages_account), then a sort.
    selective: list[tuple[str, str, list[object], set[str]]] = [
        ("queued", *listing(MessageFilter(account, status=Status.QUEUED), None),
         {"messages_account"}),
        ("since", *listing(MessageFilter(account, since=T0 - 500), None), {"messages_account"}),
    ]  # fmt: skip
    async with connection(pg_store_dsn) as conn:
        await conn.execute(_FILL, MESSAGES, T0)
        await conn.execute(_BACKLOG, T0)
        await conn.execute("ANALYZE messages; ANALYZE dispatch_queue")
        for mode in ("force_custom_plan", "force_generic_plan"):
            await conn.execute(f"SET plan_cache_mode = {mode}")
            for in_order, cases in ((True, ordered), (False, selective)):
                for name, sql, params, indexes in cases:
                    nodes = await _plan(conn, sql, params)
                    scans = [(n["Node Type"], n.get("Index Name")) for n in nodes
                             if n.get("Relation Name") == "messages"]
                    scans += [(n["Node Type"], n["Index Name"]) for n in nodes
                              if n["Node Type"] == "Bitmap Index Scan"
                              and n["Index Name"].startswith("messages_")]  # fmt: skip
                    assert scans, (mode, name, nodes)
                    assert not [s for s in scans if s[0] == "Seq Scan"], (mode, name, scans)
                    assert {i for _t, i in scans if i is not None} == indexes, (
                        mode, name, scans)
                    if in_order:
                        assert not [n for n in nodes if n["Node Type"] == "Sort"], (
                            mode, name, nodes)


@pytest.fixture
async def opened(pg_store_dsn: str) -> AsyncIterator[tuple[PostgresStore, DispatchQueue]]:
    store = await PostgresStore.open(pg_store_dsn)
    try:
        yield store, DispatchQueue(store._pool, "node-a")
    finally:
        await store.aclose()


async def test_a_message_claimed_through_the_queue_lists_as_queued_and_is_held(
    opened: tuple[PostgresStore, DispatchQueue], make_message: MessageFactory
) -> None:
    store, queue = opened
    account: Account = await store.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    to = "+447700900777"
    claimed, waiting = make_message(to=to), make_message(to=to)
    await store.accept([claimed, waiting])
    (claim,) = await queue.claim(UNROUTED, 1, T0 + 1, LEASE)
    assert claim.message.id == claimed.id

    async def listed(status: Status) -> list[str]:
        page = await store.list_messages(MessageFilter(account.id, status=status))
        return [m.id for m in page.messages]

    assert await listed(Status.QUEUED) == [claimed.id]
    assert await listed(Status.ACCEPTED) == [waiting.id]
    recent = await store.recent_messages(RecentFilter(status=int(Status.QUEUED)))
    assert [m.id for m in recent] == [claimed.id]

    # held: a replace changes nothing, a bulk cancel leaves it
    held = await store.replace(claimed.id, Replacement(body=b"new", segments=1), T0 + 2,
                               account_id=account.id)
    assert (held.outcome, held.message.status, held.message.body) == (
        ChangeOutcome.IN_PROGRESS, Status.QUEUED, claimed.body)
    assert await store.cancel_matching(account.id, T0 + 2, limit=10, to=to) == (waiting.id,)

    # the lease lapsed (a dead holder): the replace applies, and its schedule holds
    # once the sweep has requeued the claim
    later = T0 + 1 + LEASE + 1
    replaced = await store.replace(claimed.id, Replacement(body=b"new", segments=1,
                                                           send_at=later + 100), later,
                                   account_id=account.id)  # fmt: skip
    assert replaced.outcome is ChangeOutcome.APPLIED
    assert (replaced.message.body, replaced.message.send_at) == (b"new", later + 100)
    assert await queue.requeue_expired(later) == 1
    assert await queue.claim(UNROUTED, 10, later + 99, LEASE) == ()
    (again,) = await queue.claim(UNROUTED, 10, later + 100, LEASE)
    assert (again.message.id, again.message.body) == (claimed.id, b"new")


async def test_bulk_cancels_and_claims_at_once_never_both_take_a_message(
    opened: tuple[PostgresStore, DispatchQueue], make_message: MessageFactory
) -> None:
    """Two nodes claim while the customer cancels by number in small bulks:
    each message is claimed or cancelled, never both, never neither."""
    store, _ = opened
    account = await store.create_account("acme", T0, rate_limit=10.0, bind_limit=1)
    to = "+447700900888"
    messages = [make_message(to=to) for _ in range(120)]
    await store.accept(messages)
    nodes = [DispatchQueue(store._pool, f"node-{n}") for n in range(2)]
    now = T0 + 1
    calls: list[Any] = []
    for n in range(30):
        calls.append(nodes[n % 2].claim(UNROUTED, 3, now, LEASE))
        calls.append(store.cancel_matching(account.id, now, limit=3, to=to))
    done = await asyncio.gather(*calls)
    claimed = [c.message.id for r in done for c in r if not isinstance(c, str)]
    cancelled = [i for r in done for i in r if isinstance(i, str)]
    assert claimed and cancelled
    assert len(set(claimed)) == len(claimed) and len(set(cancelled)) == len(cancelled)
    assert set(claimed).isdisjoint(cancelled)
    stored = await store.get_messages([m.id for m in messages])
    assert {i for i, m in stored.items() if m.status is Status.CANCELLED} == set(cancelled)
    assert {i for i, m in stored.items() if m.status is Status.QUEUED} == set(claimed)
    rest = {m.id for m in messages} - set(claimed) - set(cancelled)
    assert all(stored[i].status is Status.ACCEPTED for i in rest)
    # what is left is cancelled by the next bulk, oldest first
    assert await store.cancel_matching(account.id, now, limit=1000, to=to) == tuple(
        m.id for m in messages if m.id in rest)
