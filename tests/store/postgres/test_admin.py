"""The admin audit log with several nodes on one PostgreSQL database.

Two stores (two nodes' pools) record changes at once while a third node's
:class:`~herald.admin.ChangeFeed` polls the log as ``herald serve`` does:
every change gets its own seq, one after the other with no gap, and the feed
hears of every one, in order. (A seq handed out by a sequence would let
seq 6 commit before seq 5; a feed that read 6 would never read 5.)
"""

from __future__ import annotations

import asyncio
import time

from herald.admin import ChangeFeed
from herald.store import AuditEntry
from herald.store.postgres import PostgresStore

from .conftest import T0

PER_NODE = 60
POLLS = 20_000  # bound on the feed's loop (it ends when the writers do)


async def test_two_nodes_recording_at_once_keep_one_gapless_order(pg_store_dsn: str) -> None:
    nodes = [await PostgresStore.open(pg_store_dsn) for _ in range(3)]
    try:
        writers, reader = nodes[:2], nodes[2]
        feed = ChangeFeed()
        heard: list[int] = []
        feed.watch(lambda entry: heard.append(entry.seq))
        await feed.poll(reader)  # the first look: only later changes matter
        done = asyncio.Event()

        async def follow() -> None:
            deadline = time.monotonic() + 60
            for _ in range(POLLS):
                if done.is_set() or time.monotonic() > deadline:
                    break
                await feed.poll(reader)
            await feed.poll(reader)

        async def record() -> list[int]:
            try:
                return await asyncio.gather(*(
                    node.record_audit(AuditEntry(T0 + n, f"key:node{i}", "account.update",
                                                 "account:acme", {"n": n}))
                    for n in range(PER_NODE) for i, node in enumerate(writers)))
            finally:
                done.set()

        seqs, _ = await asyncio.gather(record(), follow())
        total = PER_NODE * len(writers)
        assert sorted(seqs) == list(range(1, total + 1))
        # every one heard, first in order (the feed may tell an entry twice: one
        # newer than the last_audit_seq it polled is told again at the next poll)
        assert list(dict.fromkeys(heard)) == list(range(1, total + 1))
        assert await reader.last_audit_seq() == total
    finally:
        for node in nodes:
            await node.aclose()
