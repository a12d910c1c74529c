"""Claims fenced in SQL (issue 10): a node whose registration in
``cluster_nodes`` has ended, by the server's clock, claims nothing, even when
its store is asked directly (its dispatcher's own check bypassed). The leader
requeues such a node's claims; a claim it could still make would be sent
beside the claims the others took over. A node registered and live, or never
registered (no lease keeper: one node alone), claims as before.
"""

from __future__ import annotations

from typing import Any

from herald.store.postgres import DispatchQueue, PostgresStore

from .conftest import T0, MessageFactory

LEASE = 30.0


async def _register(pool: Any, node: str, seconds: float) -> None:
    """``node``'s registration ends ``seconds`` from now on the server's clock
    (negative: it has ended), as the lease keeper writes it."""
    await pool.execute(
        "INSERT INTO cluster_nodes (node, expires_at, joined_at)"
        " VALUES ($1, extract(epoch FROM clock_timestamp()) + $2, 0)"
        " ON CONFLICT (node) DO UPDATE SET expires_at = excluded.expires_at",
        node, seconds)


async def test_a_queue_whose_nodes_registration_ended_claims_nothing(
    pool: Any, make_message: MessageFactory
) -> None:
    batch = [make_message() for _ in range(3)]
    stale, unregistered = DispatchQueue(pool, "node-a"), DispatchQueue(pool, "node-b")
    await stale.accept(batch, ["c1"] * 3)
    await _register(pool, "node-a", -1.0)
    assert await stale.claim("c1", 10, T0 + 1, LEASE) == ()
    owners = await pool.fetch("SELECT owner, attempt FROM dispatch_queue")
    assert [(r["owner"], r["attempt"]) for r in owners] == [(None, 0)] * 3
    # Renewed (its keeper is back): it claims again; a node that never
    # registered is not fenced.
    await _register(pool, "node-a", 60.0)
    [first] = await stale.claim("c1", 1, T0 + 2, LEASE)
    assert first.message.id == batch[0].id
    taken = await unregistered.claim("c1", 10, T0 + 2, LEASE)
    assert [c.message.id for c in taken] == [m.id for m in batch[1:]]


async def test_a_store_whose_nodes_registration_ended_claims_nothing(
    two_stores: tuple[PostgresStore, PostgresStore], make_message: MessageFactory
) -> None:
    a, b = two_stores  # nodes "node-a" and "node-b"
    account = await a.create_account("acme", T0, rate_limit=100, bind_limit=1)
    batch = [make_message(account_id=account.id) for _ in range(4)]
    await a.accept(batch)
    await _register(a._pool, "node-a", -1.0)
    await _register(a._pool, "node-b", 60.0)
    assert await a.claim(10, T0 + 1, lease=LEASE) == ()
    owners = await a._pool.fetch("SELECT owner, attempt FROM dispatch_queue")
    assert [(r["owner"], r["attempt"]) for r in owners] == [(None, 0)] * 4
    # What it could not claim is the live node's, at once.
    taken = await b.claim(10, T0 + 1, lease=LEASE)
    assert sorted(m.id for m in taken) == sorted(m.id for m in batch)
    assert {m.attempt for m in taken} == {1}
    # Renewed, it claims again: the rows whose lease on the other node ended.
    await _register(a._pool, "node-a", 60.0)
    again = await a.claim(10, T0 + 1 + LEASE, lease=LEASE)
    assert sorted(m.id for m in again) == sorted(m.id for m in batch)
    assert {m.attempt for m in again} == {2}
