"""The database goes away and comes back: retryable errors, nothing acknowledged lost.

A cluster of its own (the session's is shared), shut down under a node's
pool and started again on the same port and data.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from herald.store import Status, StoreUnavailable
from herald.store.postgres import (
    Completion,
    DispatchQueue,
    connection,
    create_pool,
    migrate,
    open_served,
)
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


class LingeringProxy:
    """A TCP proxy to the server that passes every byte on at once but closes the
    client's side ``linger`` seconds after the server closed its own: a client
    then reads the server's last words (a FATAL) before it sees the end."""

    def __init__(self, port: int, linger: float) -> None:
        self.target, self.linger = port, linger
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, hold: float) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            await asyncio.sleep(hold)
            dst.close()

        for task in (pipe(reader, up_writer, 0), pipe(up_reader, writer, self.linger)):
            self.tasks.add(asyncio.create_task(task))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self.server.wait_closed()


async def test_a_session_the_server_ends_between_statements_is_store_unavailable(
    pg_store_dsn: str,
) -> None:
    # A fast shutdown ends every session, idle in a transaction too: the
    # client reads the FATAL, then the end of the connection. A COMMIT issued
    # in between is refused by asyncpg, unsent, with an InternalClientError
    # ("cannot switch to state 15; another operation (2) is in progress"). It
    # must reach callers as StoreUnavailable (retryable, nothing written): as an
    # unknown error it ended dispatch's claim loop, and a node never sent again
    # after a PostgreSQL restart (tests/nodes, docs/scale-out.md).
    server_port = int(pg_store_dsn.rsplit(":", 1)[1].split("/")[0])
    proxy = LingeringProxy(server_port, linger=1.0)
    port = await proxy.start()
    store = await open_served(pg_store_dsn.replace(f":{server_port}/", f":{port}/"),
                              max_connections=1)
    try:
        async with connection(pg_store_dsn) as other:

            async def ended_midway(conn: Any) -> None:
                await conn.fetchval("SELECT 1")
                await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
                await asyncio.sleep(0.3)  # the FATAL is read; the end is not

            with pytest.raises(StoreUnavailable):
                await store._run(ended_midway)
    finally:
        await store.aclose()
        await proxy.stop()
