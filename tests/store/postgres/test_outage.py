"""The database goes away and comes back: retryable errors, nothing acknowledged lost.

A cluster of its own (the session's is shared), shut down under a node's
pool and started again on the same port and data.
"""

from __future__ import annotations

import pytest

from herald.store import Status, StoreUnavailable
from herald.store.postgres import Completion, DispatchQueue, connection, create_pool, migrate
from peers.postgres import PgCluster

from .conftest import T0, MessageFactory


async def test_an_outage_is_store_unavailable_and_the_node_resumes_by_itself(
    make_message: MessageFactory,
) -> None:
    cluster = PgCluster.start()
    try:
        dsn = cluster.create_database("outage")
        async with connection(dsn) as conn:
            await migrate(conn)
        pool = await create_pool(dsn, max_size=2)
        try:
            node = DispatchQueue(pool, "node-a")
            before = make_message()
            await node.accept([before], ["c1"])

            cluster.shut_down()
            during = make_message()
            for _ in range(2):  # the broken connection, then a refused new one
                with pytest.raises(StoreUnavailable, match="PostgreSQL is unavailable"):
                    await node.accept([during], ["c1"])
            with pytest.raises(StoreUnavailable):
                await node.claim("c1", 10, T0 + 1, 30.0)

            cluster.start_again()
            after = make_message()
            await node.accept([after], ["c1"])  # no restart of the node, no new pool
            claims = await node.claim("c1", 10, T0 + 1, 30.0)
            # What was acknowledged is there; what was refused is not.
            assert [c.message.id for c in claims] == [before.id, after.id]
            ended = await node.complete(
                [Completion(c.seq, c.attempt, Status.SENT) for c in claims], T0 + 2
            )
            assert ended == {c.seq for c in claims}
        finally:
            await pool.close()
    finally:
        cluster.stop()
