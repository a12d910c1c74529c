"""The SQLite store's routing tables (private): see :class:`~herald.store.RoutingStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from herald.store._model import MAX_ID_LENGTH, Status
from herald.store._model_routing import (
    ConnectorState,
    DeliveryCounts,
    FinalPart,
    MessageRoute,
    RouteRecord,
    StoredRoutes,
)
from herald.store._sqlite_conn import Readers

__all__ = ["SQLiteRouting"]

T = TypeVar("T")
#: Ids bound in one ``IN (...)`` (SQLite before 3.32 allows 999 parameters).
_IDS_PER_QUERY = 500
_DELIVERED = int(Status.DELIVERED)

# One connector's newest final segments since a time, through segments_final
# (connector, updated_at) WHERE status >= 10: a range read newest first, cut
# at the limit, so a busy connector costs no more than a quiet one.
_COUNTS = f"""
SELECT count(*), coalesce(sum(status = {_DELIVERED}), 0) FROM (
    SELECT status FROM segments INDEXED BY segments_final
    WHERE connector = ? AND status >= {_DELIVERED} AND updated_at >= ?
    ORDER BY updated_at DESC LIMIT ?)
"""
# The same segments with their message (a primary-key read each).
_FINALS = f"""
SELECT s.status, s.updated_at, m.to_addr, m.sent_at FROM (
    SELECT message_seq, status, updated_at FROM segments INDEXED BY segments_final
    WHERE connector = ? AND status >= {_DELIVERED} AND updated_at >= ?
    ORDER BY updated_at DESC LIMIT ?) s
JOIN messages m ON m.seq = s.message_seq
"""
_ROUTES_OF = """
SELECT m.id, r.rule,
       (SELECT s.connector FROM segments s WHERE s.message_seq = m.seq ORDER BY s.idx LIMIT 1)
FROM messages m LEFT JOIN message_routes r ON r.message_id = m.id
WHERE m.id IN ({})
"""


def _next_generation(conn: sqlite3.Connection) -> int:
    conn.execute("UPDATE routing_generation SET generation = generation + 1")
    return int(conn.execute("SELECT generation FROM routing_generation").fetchone()[0])


class SQLiteRouting:
    """Routing methods of :class:`~herald.store.SQLiteStore`."""

    _readers: Readers

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    async def put_routes(self, routes: StoredRoutes) -> int:
        def put(conn: sqlite3.Connection) -> int:
            generation = _next_generation(conn)
            # routing_rules.prices (V14: a buy-price CSV) is left NULL: buy
            # prices are the connectors' buy lists (price_lists) now.
            conn.execute(
                "INSERT OR REPLACE INTO routing_rules"
                " (id, generation, imported_at, source, rules) VALUES (1, ?, ?, ?, ?)",
                (generation, routes.imported_at, routes.source, routes.rules),
            )
            return generation

        return await self._write(put)

    async def get_routes(self) -> StoredRoutes | None:
        row = await self._readers.run(lambda c: c.execute(
            "SELECT rules, source, imported_at, generation FROM routing_rules"
        ).fetchone())  # fmt: skip
        return None if row is None else StoredRoutes(*row)

    async def remove_routes(self) -> int:
        def remove(conn: sqlite3.Connection) -> int:
            if conn.execute("DELETE FROM routing_rules").rowcount:
                return _next_generation(conn)
            return int(conn.execute("SELECT generation FROM routing_generation").fetchone()[0])

        return await self._write(remove)

    async def set_connector_state(self, state: ConnectorState) -> int:
        def put(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT OR REPLACE INTO connector_states (connector, disabled, reason, changed_at)"
                " VALUES (?, ?, ?, ?)",
                (state.connector, int(state.disabled), state.reason, state.changed_at),
            )
            return _next_generation(conn)

        return await self._write(put)

    async def connector_states(self) -> tuple[ConnectorState, ...]:
        rows = await self._readers.run(lambda c: c.execute(
            "SELECT connector, disabled, reason, changed_at FROM connector_states"
            " ORDER BY connector").fetchall())  # fmt: skip
        return tuple(ConnectorState(r[0], bool(r[1]), r[2], r[3]) for r in rows)

    async def routing_generation(self) -> int:
        row = await self._readers.run(
            lambda c: c.execute("SELECT generation FROM routing_generation").fetchone())
        return int(row[0])

    async def delivery_counts(
        self, connectors: Collection[str], since: float, limit: int
    ) -> dict[str, DeliveryCounts]:
        names = sorted(set(connectors))

        def read(conn: sqlite3.Connection) -> dict[str, DeliveryCounts]:
            found = {}
            for name in names:
                finals, delivered = conn.execute(_COUNTS, (name, since, max(0, limit))).fetchone()
                found[name] = DeliveryCounts(name, int(delivered), int(finals))
            return found

        return await self._readers.run(read)

    async def recent_finals(
        self, connectors: Collection[str], since: float, limit: int
    ) -> list[FinalPart]:
        names = sorted(set(connectors))

        def read(conn: sqlite3.Connection) -> list[FinalPart]:
            return [FinalPart(name, to, status == _DELIVERED, sent_at, final_at)
                    for name in names
                    for status, final_at, to, sent_at in conn.execute(
                        _FINALS, (name, since, max(0, limit)))]  # fmt: skip

        return await self._readers.run(read)

    async def record_routes(self, records: Sequence[RouteRecord]) -> None:
        if not records:
            return
        rows = [(r.message_id, r.rule, r.at) for r in records]
        await self._write(lambda conn: conn.executemany(
            "INSERT OR REPLACE INTO message_routes (message_id, rule, decided_at)"
            " VALUES (?, ?, ?)", rows))  # fmt: skip

    async def get_message_routes(self, message_ids: Sequence[str]) -> dict[str, MessageRoute]:
        wanted = [i for i in dict.fromkeys(message_ids) if len(i) <= MAX_ID_LENGTH]
        if not wanted:
            return {}

        def read(conn: sqlite3.Connection) -> dict[str, MessageRoute]:
            found = {}
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                chunk = wanted[start:start + _IDS_PER_QUERY]
                sql = _ROUTES_OF.format(",".join("?" * len(chunk)))
                for message_id, rule, connector in conn.execute(sql, chunk):
                    found[message_id] = MessageRoute(connector, rule)
            return found

        return await self._readers.run(read)
