"""History in time partitions: retention is a ``DROP``, not a ``DELETE``.

Theory of operation. A history table (:data:`HISTORY_TABLES`: written once per
event, read by time, never updated) is ``PARTITION BY RANGE`` of its time
column (migration V12), in one partition per UTC day named
``<table>_pYYYYMMDD``, beside two the migration made: ``<table>_before``
(every row older than the migration) and ``<table>_default`` (whatever no day
covers; normally empty). One node, the cluster's leader (docs/leases.md),
calls :meth:`HistoryPartitions.maintain` now and then:

- it creates the days from today to :data:`AHEAD` days ahead that no
  partition covers yet, each in one transaction that also moves in any rows
  the default partition holds for that day (they came while no node led);
- given a retention, it drops every partition whose whole range is older
  than ``now - keep`` (so at least ``keep`` seconds of history stay, at most
  a day more), and deletes the default partition's rows that old.

Dropping a day is a catalog change and an unlink: its cost does not grow
with the rows it held (``bench/pg_retention.py`` against a ``DELETE``). It
takes the parent's ``ACCESS EXCLUSIVE`` lock for a moment; every statement
here sets ``lock_timeout`` (:data:`LOCK_TIMEOUT`), so that a long reader of
the table makes the chore give up and try again at its next turn, rather
than queue every writer behind the chore's waiting lock.

Every step is idempotent and checked against the catalog in its own
transaction, so two nodes that both run it (a leadership changing hands)
create or drop each partition once; the loser of a race sees an error that
:meth:`maintain` logs and skips.

Why not ``messages``: a partitioned table enforces a unique key only when it
holds the partition key, so the public ``id`` (and ``seq``, which the queue,
segments and receipts reference) would need a side table or a composite key
on the accept, claim and completion paths, each partition its own
``fillfactor`` and autovacuum settings, and the lifecycle's triggers (which
join ``cdrs`` by message id: one index probe per day partition) would pay on
every status change. The tables here are off those paths.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "AHEAD",
    "DAY",
    "HISTORY_TABLES",
    "LOCK_TIMEOUT",
    "HistoryPartitions",
    "Maintenance",
    "Partition",
    "day_name",
]

log = logging.getLogger("herald.store")

#: Seconds in a partition (a UTC day).
DAY: Final = 86_400.0
#: Days created ahead of today, so that a leader absent for that long costs nothing.
AHEAD: Final = 3
#: How long a partition change waits for the parent's lock before it gives up
#: (and is tried again at the next turn).
LOCK_TIMEOUT: Final = "2s"
#: The partitioned history tables and their time column (migration V12).
HISTORY_TABLES: Final[Mapping[str, str]] = {"fraud_decisions": "created_at"}

_BOUND = re.compile(r"FOR VALUES FROM \((?P<start>[^)]*)\) TO \((?P<end>[^)]*)\)")

_PARTITIONS = """
SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = $1::regclass
ORDER BY c.relname
"""


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition: its range ``[start, end)`` in epoch seconds (``-inf`` for
    MINVALUE); the default partition is ``default`` with an empty range."""

    name: str
    start: float
    end: float
    default: bool = False

    def overlaps(self, start: float, end: float) -> bool:
        return not self.default and self.start < end and start < self.end


@dataclass(slots=True)
class Maintenance:
    """What one :meth:`HistoryPartitions.maintain` did: partitions created and
    dropped, rows moved out of and deleted from the default partitions."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved: int = 0
    deleted: int = 0


def day_name(table: str, start: float) -> str:
    """The name of ``table``'s partition for the UTC day starting at ``start``."""
    return f"{table}_p{time.strftime('%Y%m%d', time.gmtime(start))}"


def _bound(text: str) -> float:
    text = text.strip().strip("'")
    return -math.inf if text == "MINVALUE" else math.inf if text == "MAXVALUE" else float(text)


def _partition(name: str, bound: str) -> Partition:
    if bound == "DEFAULT":
        return Partition(name, 0.0, 0.0, default=True)
    m = _BOUND.fullmatch(bound)
    if m is None:
        raise ValueError(f"partition {name}: unexpected bound {bound!r}")
    return Partition(name, _bound(m["start"]), _bound(m["end"]))


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class HistoryPartitions:
    """The partitions of :data:`HISTORY_TABLES` on ``pool`` (an asyncpg pool or
    connection). Errors: asyncpg's, from :meth:`partitions`; :meth:`maintain`
    logs a failed step and goes on with the next."""

    def __init__(self, pool: Any, tables: Mapping[str, str] = HISTORY_TABLES) -> None:
        self._pool = pool
        self.tables = dict(tables)

    async def partitions(self, table: str) -> tuple[Partition, ...]:
        """``table``'s partitions, by name."""
        rows = await self._pool.fetch(_PARTITIONS, table)
        return tuple(_partition(r["name"], r["bound"]) for r in rows)

    async def maintain(self, now: float, keep: float | None = None) -> Maintenance:
        """Create the days up to :data:`AHEAD` ahead of ``now`` that no partition
        covers; with ``keep`` (seconds), drop the partitions older than that."""
        if keep is not None and not keep > 0:
            raise ValueError(f"keep must be a positive number of seconds, got {keep!r}")
        done = Maintenance()
        today = math.floor(now / DAY) * DAY
        for table, column in self.tables.items():
            for n in range(AHEAD + 1):
                start = today + n * DAY
                try:
                    await self._create(table, column, start, start + DAY, done)
                except Exception as exc:  # the next turn tries again
                    log.warning("history: creating %s failed: %s", day_name(table, start), exc)
            if keep is not None:
                try:
                    await self._drop(table, column, now - keep, done)
                except Exception as exc:
                    log.warning("history: retention of %s failed: %s", table, exc)
        return done

    async def _create(
        self, table: str, column: str, start: float, end: float, done: Maintenance
    ) -> None:
        name = day_name(table, start)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            # One creator at a time per table (another node leading for a moment).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"history {table}")
            parts = [_partition(r["name"], r["bound"])
                     for r in await conn.fetch(_PARTITIONS, table)]  # fmt: skip
            if any(p.overlaps(start, end) for p in parts):
                return
            # LIKE + ATTACH rather than PARTITION OF: the rows the default
            # partition holds for this day move in first (ATTACH refuses while
            # the default holds any), and ATTACH adds the parent's indexes.
            await conn.execute(
                f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            for default in (p.name for p in parts if p.default):
                moved = await conn.execute(
                    f"WITH moved AS (DELETE FROM {default} WHERE {column} >= $1"
                    f" AND {column} < $2 RETURNING *) INSERT INTO {name} SELECT * FROM moved",
                    start, end)  # fmt: skip
                done.moved += _count(moved)
            await conn.execute(
                f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({start!r})"
                f" TO ({end!r})")  # fmt: skip
        done.created.append(name)

    async def _drop(self, table: str, column: str, cutoff: float, done: Maintenance) -> None:
        for p in await self.partitions(table):
            if p.default:
                deleted = await self._pool.execute(
                    f"DELETE FROM {p.name} WHERE {column} < $1", cutoff)
                done.deleted += _count(deleted)
            elif p.end <= cutoff:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                    await conn.execute(f"DROP TABLE IF EXISTS {p.name}")
                done.dropped.append(p.name)
