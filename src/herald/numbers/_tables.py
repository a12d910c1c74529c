"""A process's view of the number tables, reloaded when the store says they changed.

Theory of operation
-------------------
``herald numbers import-plan`` (another process, any time) stores a table and
increases the store's number-table generation. Every herald process that
checks destinations holds a :class:`NumberTables`; its :meth:`~NumberTables.run`
task reads that generation every :data:`CHECK_INTERVAL` seconds (one
one-row read on a reader thread) and, when it has moved, reads both tables
and turns them back into indexes on a worker thread
(:meth:`~herald.intake.NumberingPlan.from_bytes`: array copies, no rebuild),
then swaps the new immutable :class:`~herald.intake.DestinationRules` in with
one assignment. Requests in flight keep the rules they started with; the
next one sees the new tables. A table that cannot be read leaves the old
rules in place (logged) and is tried again at the next generation check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from herald.intake import (
    DestinationRules,
    NumberIndex,
    NumberingPlan,
    PortedNumbers,
    RouteCheck,
)
from herald.routing import RouteTable, RoutingError
from herald.store import (
    NumberTable,
    NumberTableKind,
    NumberTableStore,
    StoreBusy,
    StoreClosed,
    StoreUnavailable,
)

__all__ = ["CHECK_INTERVAL", "NumberTables", "load_index", "route_check"]

log = logging.getLogger("herald.numbers")

#: Seconds between looks at the store's number-table generation: how long an
#: import takes to apply in a running herald, at the cost of one tiny read.
CHECK_INTERVAL: Final = 2.0


def route_check(table: RouteTable) -> RouteCheck:
    """Whether ``table`` has a route for a destination (E.164 digits)."""
    lookup = table.lookup

    def routable(digits: str) -> bool:
        try:
            lookup(digits)
        except RoutingError:
            return False
        return True

    return routable


def _index(plan: NumberTable | None, ported: NumberTable | None) -> NumberIndex:
    return NumberIndex(
        NumberingPlan.from_bytes(plan.data) if plan is not None else None,
        PortedNumbers.from_bytes(ported.data) if ported is not None else None,
    )


async def load_index(store: NumberTableStore) -> tuple[int, NumberIndex]:
    """The store's number-table generation and an index of its tables.

    The generation is read first: a table written meanwhile is read as well,
    and read again at the next check (never missed). Raises ``ValueError``
    for a stored table this herald cannot read, and the store's errors.
    """
    generation = await store.number_tables_generation()
    plan = await store.get_number_table(NumberTableKind.PLAN)
    ported = await store.get_number_table(NumberTableKind.PORTED)
    if plan is None and ported is None:
        return generation, NumberIndex()
    return generation, await asyncio.to_thread(_index, plan, ported)


class NumberTables:
    """The :class:`DestinationRules` a process checks destinations against:
    the stored number tables (reloaded when they change) and ``routable``."""

    def __init__(
        self,
        store: NumberTableStore,
        *,
        routable: RouteCheck | None = None,
        interval: float = CHECK_INTERVAL,
    ) -> None:
        self._store = store
        self._routable = routable
        self._interval = interval
        self._rules = DestinationRules(routable=routable)
        self.generation = -1  # of the tables in use; -1: none read yet
        self._damaged = -1  # a generation whose tables could not be read

    def rules(self) -> DestinationRules:
        """The rules as they stand (what each submission is checked against)."""
        return self._rules

    async def refresh(self) -> bool:
        """Load the tables if their generation moved; whether new rules are in use.

        Raises the store's errors (try again later) and ``ValueError`` for a
        table this herald cannot read (not tried again until the tables change).
        """
        current = await self._store.number_tables_generation()
        if current in (self.generation, self._damaged):
            return False
        started = time.perf_counter()
        try:
            generation, index = await load_index(self._store)
        except ValueError:
            self._damaged = current
            raise
        self._rules = DestinationRules(index, self._routable)
        self.generation = generation
        log.info(
            "number tables of generation %d in use: %d plan prefixes, %d ported numbers"
            " (loaded in %.0f ms)", generation, len(index.plan or ()),
            len(index.ported or ()), (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        return True

    async def run(self) -> None:
        """Refresh every ``interval`` seconds until cancelled or the store closes."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except StoreClosed:
                return
            except (StoreBusy, StoreUnavailable) as exc:  # e.g. PostgreSQL away: next time
                log.warning("reading the number tables failed; the previous ones stay in use:"
                            " %s", exc)
            except Exception:  # the old rules stay in use
                log.exception("reading the number tables failed; the previous ones stay in use")
