"""Routing rules, connector states and delivery health on PostgreSQL (the
port's RoutingStore; private).

The rules and the connector states share a one-row generation counter, bumped
in the transaction of each change: a node polling :meth:`routing_generation`
sees another node's ``herald routes import`` or ``connectors disable``.
Health reads are one statement for all the connectors asked about: a
``LATERAL`` index range of ``segments_final`` per connector, cut at the limit,
so a busy connector costs no more than a quiet one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from herald.store._model import MAX_ID_LENGTH, Status
from herald.store._model_routing import (
    ConnectorState,
    DeliveryCounts,
    FinalPart,
    MessageRoute,
    RouteRecord,
    StoredRoutes,
)
from herald.store.postgres._part import StorePart

__all__ = ["PostgresRouting"]

_DELIVERED = int(Status.DELIVERED)
_BUMP = "UPDATE routing_generation SET generation = generation + 1 RETURNING generation"
_READ = "SELECT generation FROM routing_generation"

# Each connector ($1) with its newest final segments since $2, at most $3 of
# them; the predicate repeats segments_final's so the planner may use it.
_NEWEST_FINALS = f"""
FROM unnest($1::text[]) AS c(name)
{{join}} LATERAL (
    SELECT message_seq, status, updated_at FROM segments
    WHERE connector = c.name AND status >= {_DELIVERED} AND updated_at >= $2
    ORDER BY updated_at DESC LIMIT $3) s ON true
"""
_COUNTS = (
    f"SELECT c.name, count(s.status) AS finals,"
    f" count(*) FILTER (WHERE s.status = {_DELIVERED}) AS delivered"
    + _NEWEST_FINALS.format(join="LEFT JOIN") + "GROUP BY c.name"
)
_FINALS = (
    "SELECT c.name, s.status, s.updated_at, m.to_addr, m.sent_at"
    + _NEWEST_FINALS.format(join="JOIN")
    + "JOIN messages m ON m.seq = s.message_seq ORDER BY c.name, s.updated_at DESC"
)
# The last record of a message in a batch wins (ON CONFLICT may not touch a
# row twice in one statement).
_RECORD = """
INSERT INTO message_routes (message_id, rule, decided_at)
SELECT DISTINCT ON (message_id) message_id, rule, at
FROM unnest($1::text[], $2::text[], $3::float8[]) WITH ORDINALITY AS r(message_id, rule, at, ord)
ORDER BY message_id, ord DESC
ON CONFLICT (message_id) DO UPDATE SET rule = excluded.rule, decided_at = excluded.decided_at
"""
_ROUTES_OF = """
SELECT m.id, r.rule,
    (SELECT s.connector FROM segments s WHERE s.message_seq = m.seq
     ORDER BY s.idx LIMIT 1) AS connector
FROM messages m LEFT JOIN message_routes r ON r.message_id = m.id
WHERE m.id = ANY ($1::text[])
"""


class PostgresRouting(StorePart):
    """The routing methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def put_routes(self, routes: StoredRoutes) -> int:
        async def put(conn: Any) -> int:
            generation: int = await conn.fetchval(_BUMP)
            await conn.execute(
                "INSERT INTO routing_rules (generation, imported_at, source, rules)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (single) DO UPDATE SET"
                " generation = excluded.generation, imported_at = excluded.imported_at,"
                " source = excluded.source, rules = excluded.rules",
                generation, routes.imported_at, routes.source, routes.rules)  # fmt: skip
            return generation

        return await self._run(put)

    async def get_routes(self) -> StoredRoutes | None:
        row = await self._one(lambda c: c.fetchrow(
            "SELECT rules, source, imported_at, generation FROM routing_rules"))
        if row is None:
            return None
        return StoredRoutes(row["rules"], row["source"], row["imported_at"], row["generation"])

    async def remove_routes(self) -> int:
        async def remove(conn: Any) -> int:
            removed = await conn.fetchval("DELETE FROM routing_rules RETURNING generation")
            generation: int = await conn.fetchval(_READ if removed is None else _BUMP)
            return generation

        return await self._run(remove)

    async def set_connector_state(self, state: ConnectorState) -> int:
        async def put(conn: Any) -> int:
            await conn.execute(
                "INSERT INTO connector_states (connector, disabled, reason, changed_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (connector) DO UPDATE SET"
                " disabled = excluded.disabled, reason = excluded.reason,"
                " changed_at = excluded.changed_at",
                state.connector, state.disabled, state.reason, state.changed_at)  # fmt: skip
            generation: int = await conn.fetchval(_BUMP)
            return generation

        return await self._run(put)

    async def connector_states(self) -> tuple[ConnectorState, ...]:
        rows = await self._one(lambda c: c.fetch(
            "SELECT connector, disabled, reason, changed_at FROM connector_states"
            " ORDER BY connector"))  # fmt: skip
        return tuple(ConnectorState(r["connector"], r["disabled"], r["reason"], r["changed_at"])
                     for r in rows)  # fmt: skip

    async def routing_generation(self) -> int:
        generation: int = await self._one(lambda c: c.fetchval(_READ))
        return generation

    async def delivery_counts(
        self, connectors: Collection[str], since: float, limit: int
    ) -> dict[str, DeliveryCounts]:
        names = sorted(set(connectors))
        if not names:
            return {}
        rows = await self._one(lambda c: c.fetch(_COUNTS, names, since, max(0, limit)))
        return {r["name"]: DeliveryCounts(r["name"], r["delivered"], r["finals"]) for r in rows}

    async def recent_finals(
        self, connectors: Collection[str], since: float, limit: int
    ) -> list[FinalPart]:
        names = sorted(set(connectors))
        if not names:
            return []
        rows = await self._one(lambda c: c.fetch(_FINALS, names, since, max(0, limit)))
        return [FinalPart(r["name"], r["to_addr"], r["status"] == _DELIVERED, r["sent_at"],
                          r["updated_at"]) for r in rows]  # fmt: skip

    async def record_routes(self, records: Sequence[RouteRecord]) -> None:
        if records:
            await self._one(lambda c: c.execute(
                _RECORD, [r.message_id for r in records], [r.rule for r in records],
                [r.at for r in records]))  # fmt: skip

    async def get_message_routes(self, message_ids: Sequence[str]) -> dict[str, MessageRoute]:
        wanted = [i for i in dict.fromkeys(message_ids) if len(i) <= MAX_ID_LENGTH]
        if not wanted:
            return {}
        rows = await self._one(lambda c: c.fetch(_ROUTES_OF, wanted))
        return {r["id"]: MessageRoute(r["connector"], r["rule"]) for r in rows}
