"""The operator's number tables on PostgreSQL (the port's NumberTableStore; private).

A table is one row holding its built index (``NumberTable.data``, opaque to
the store), replaced whole: however many prefixes or numbers it has, a put is
one ``bytea`` parameter and one statement besides the generation's. The
generation is a one-row counter bumped in the writing transaction, so a node
polling :meth:`number_tables_generation` sees another node's import.
"""

from __future__ import annotations

from typing import Any

from herald.store._model import NumberTable, NumberTableKind
from herald.store.postgres._part import StorePart

__all__ = ["PostgresNumbers"]

_BUMP = "UPDATE number_tables_generation SET generation = generation + 1 RETURNING generation"
_READ = "SELECT generation FROM number_tables_generation"


class PostgresNumbers(StorePart):
    """The number-table methods of :class:`~herald.store.postgres.PostgresStore` (a mixin)."""

    async def put_number_table(self, table: NumberTable) -> int:
        async def put(conn: Any) -> int:
            generation: int = await conn.fetchval(_BUMP)
            await conn.execute(
                "INSERT INTO number_tables (kind, generation, imported_at, entries, data)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind) DO UPDATE SET"
                " generation = excluded.generation, imported_at = excluded.imported_at,"
                " entries = excluded.entries, data = excluded.data",
                table.kind.value, generation, table.imported_at, table.entries, table.data)
            return generation

        return await self._run(put)

    async def remove_number_table(self, kind: NumberTableKind) -> int:
        async def remove(conn: Any) -> int:
            removed = await conn.fetchval(
                "DELETE FROM number_tables WHERE kind = $1 RETURNING kind", kind.value)
            generation: int = await conn.fetchval(_READ if removed is None else _BUMP)
            return generation

        return await self._run(remove)

    async def get_number_table(self, kind: NumberTableKind) -> NumberTable | None:
        row = await self._one(lambda c: c.fetchrow(
            "SELECT data, entries, imported_at, generation FROM number_tables WHERE kind = $1",
            kind.value))  # fmt: skip
        if row is None:
            return None
        return NumberTable(kind, row["data"], row["entries"], row["imported_at"],
                           row["generation"])  # fmt: skip

    async def number_tables_generation(self) -> int:
        generation: int = await self._one(lambda c: c.fetchval(_READ))
        return generation
