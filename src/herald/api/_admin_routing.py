"""The routing rules and number tables as the admin API and the console change them.

``PUT|DELETE /v1/admin/routes`` and ``GET|PUT|DELETE /v1/admin/numbers[/{table}]``
and the console's forms on its *Connectors and routes* page both call
:class:`RoutingViews`, so a routes file or a number table is checked, stored
and recorded in one place (through :class:`herald.admin.Admin`, as ``herald
routes import`` and ``herald numbers import-plan`` do) and refused with the
same problems. None authenticates (the callers do).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from herald.admin import Admin
from herald.routing import RoutesFileError
from herald.store import NumberTableKind, StoredRoutes

from ._context import AdminContext
from ._problems import ApiProblem, FieldError
from ._render import rfc3339

__all__ = ["NUMBER_TABLES", "RoutingViews"]

#: The number tables by the name the API's paths and the console's forms give them.
NUMBER_TABLES: Final = {"plan": NumberTableKind.PLAN, "ported": NumberTableKind.PORTED}


def _problem_path(problem: str) -> tuple[str, ...]:
    """``rule[2].split.a: must be ...`` -> ``("rule[2].split.a",)``; a problem of
    the whole file (not TOML) has no path."""
    where, sep, _ = problem.partition(": ")
    return (where,) if sep and " " not in where else ()


def _problem_text(problem: str) -> str:
    return problem.partition(": ")[2] if _problem_path(problem) else problem


def number_table(name: str) -> NumberTableKind:
    """The table called ``name``; :class:`ApiProblem` 404 for another name."""
    kind = NUMBER_TABLES.get(name)
    if kind is None:
        raise ApiProblem(404, "not-found", "the tables are plan and ported")
    return kind


class RoutingViews:
    """Routing rules and number tables: shown, replaced, removed (see the module)."""

    def __init__(self, admin: AdminContext, clock: Callable[[], float] = time.time) -> None:
        self._admin = admin
        self._service: Admin = admin.service
        self._clock = clock

    async def routes_text(self) -> dict[str, Any] | None:
        """The routes file in force as imported (its text, source, time), or ``None``."""
        stored = await self._service.store.get_routes()
        if stored is None:
            return None
        return {"text": stored.rules, "source": stored.source,
                "imported_at": rfc3339(stored.imported_at), "generation": stored.generation}

    async def import_routes(self, actor: str, text: str, source: str) -> dict[str, Any]:
        """Replace the routing rules with a routes file (``herald routes import``).

        Raises :class:`ApiProblem` 422 naming each problem (``routes.rule[2].split.a``;
        a rule naming a connector herald.toml lacks too): nothing is stored then.
        """
        try:
            done = await self._service.import_routes(
                actor, StoredRoutes(text, source, self._clock()),
                known=[c.name for c in self._admin.connectors()])
        except RoutesFileError as exc:
            errors = [FieldError(("routes", *_problem_path(p)), "invalid", _problem_text(p))
                      for p in exc.problems]  # fmt: skip
            raise ApiProblem(422, "invalid-request", "the routes were refused whole",
                             errors) from None
        return {"rules": done.rules, "generation": done.generation}

    async def clear_routes(self, actor: str) -> None:
        """Remove the routing rules; :class:`ApiProblem` 404 when there are none."""
        if not await self._service.clear_routes(actor):
            raise ApiProblem(404, "not-found", "there are no routing rules")

    async def number_tables(self) -> dict[str, Any]:
        """The number tables stored, and the generation in use (``GET /v1/admin/numbers``)."""
        store = self._service.store
        tables = []
        for name, kind in NUMBER_TABLES.items():
            table = await store.get_number_table(kind)
            if table is not None:
                tables.append({"table": name, "entries": table.entries,
                               "octets": len(table.data), "imported_at": rfc3339(table.imported_at),
                               "generation": table.generation})  # fmt: skip
        in_use = self._admin.numbers_in_use
        return {"generation": await store.number_tables_generation(),
                "in_use": None if in_use is None else in_use(), "tables": tables}

    async def import_number_table(self, actor: str, table: str,
                                  lines: Iterable[str]) -> dict[str, Any]:  # fmt: skip
        """Replace the table named ``table`` with a CSV file's lines. Raises
        :class:`ApiProblem` 404 for another name, and
        :class:`~herald.intake.TableFileError` naming the bad lines (nothing stored)."""
        done = await self._service.import_number_table(actor, number_table(table), lines)
        return {"table": table, "entries": done.entries, "networks": done.networks,
                "octets": done.octets, "generation": done.generation}

    async def clear_number_table(self, actor: str, table: str) -> None:
        """Remove the table named ``table``; :class:`ApiProblem` 404 when there is none."""
        if not await self._service.clear_number_table(actor, number_table(table)):
            raise ApiProblem(404, "not-found", f"there is no {table} table")
