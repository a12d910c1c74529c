"""The guard's own state in herald's PostgreSQL store: SMS home routing's
correlations and routed dialogues, the engines' snapshots and what running
proxies share, for an active pair (or more) of ``herald guard proxy --store
postgresql://...`` on several machines behind a load balancer.

The same rows as the SQLite files of a data directory
(:mod:`herald.guard.correlations`), sealed by the same functions
(:mod:`herald.signaling.correlations`) with a key derived from the policy's
salt: a row's key is a keyed hash (of the correlation IMSI, of the SMSC's GT
and transaction id, of the proxy's id), its fields are encrypted and
authenticated; only deadlines and write times are in clear, for the purge.
The tables (``guard_correlations``, ``guard_routed_dialogues``,
``guard_engine_snapshots``, ``guard_engine_changes``: PostgreSQL migration
``_V13_GUARD_STATE``) are read by nothing in herald but these classes: no
API, console page, CLI command, log or metric shows them, and a copy of them
names no subscriber, node or correlation id to whoever lacks the policy.

asyncpg is asynchronous and the proxy's home router is not: as
:class:`herald.store.PostgresPendingMessages` does, each :class:`PgLink`
keeps one connection on a private event loop in a thread of its own, and a
call waits at most its ``timeout``. The correlations have a link of their
own (calls on the proxy's loop, :data:`ANSWER_TIMEOUT`); the snapshots and
shares another (calls from a worker thread, megabytes at a time). A call
that fails (timeout, lost connection, stopped server) raises
:class:`~herald.store.StoreUnavailable` and the link reconnects in the
background: the proxy then refuses the home-routed message (fail closed: the
SMSC asks again), and a share or snapshot is retried at its next turn.

Every statement is its own transaction: a correlation is committed, and
visible to every proxy, before the answer that hands it out leaves; ``take``
(``DELETE ... RETURNING``) gives a row to exactly one taker. Bounded: the
purge (the proxy's one-second timer) drops dead rows and every row more than
the limit behind the newest, so a table holds at most one second's additions
beyond its limit; ``take`` and ``find_dialogue`` never serve a dead row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar

from herald.signaling.correlations import (
    Correlation,
    RoutedRecord,
    dialogue_row,
    row_key,
    seal,
    seal_blob,
    seal_routed,
    sealing_key,
    unseal,
    unseal_blob,
    unseal_routed,
)
from herald.store import _pglink
from herald.store._errors import StoreUnavailable

__all__ = ["ANSWER_TIMEOUT", "PgLink", "PostgresCorrelations", "PostgresLookups",
           "PostgresSnapshots"]

log = logging.getLogger("herald.guard.pg_state")

T = TypeVar("T")

#: Seconds a correlation call on the proxy's loop may take (the same bound as
#: the platform lookup's): past it the home-routed message is refused.
ANSWER_TIMEOUT: Final = 0.2
#: Seconds a snapshot's or a share's write or read may take (in a thread).
BULK_TIMEOUT: Final = 5.0
APPLICATION_NAME: Final = "herald-guard-state"
#: The tables this module needs (PostgreSQL migration _V13_GUARD_STATE).
TABLES: Final = ("guard_correlations", "guard_routed_dialogues", "guard_engine_snapshots",
                 "guard_engine_changes", "guard_sms_lookups")  # fmt: skip


class PgLink(_pglink.PgLink):
    """The guard's link to ``url`` (:class:`herald.store._pglink.PgLink`): a
    database without the guard's tables is an error at :meth:`open`."""

    def __init__(self, url: str, *, timeout: float = ANSWER_TIMEOUT, name: str = "state") -> None:
        super().__init__(url, timeout=timeout, thread_name=f"herald-guard-pg-{name}",
                         application_name=APPLICATION_NAME, check=_guard_tables)  # fmt: skip

    def flush(self, timeout: float = BULK_TIMEOUT) -> None:
        """Wait until what was posted before is written (or failed)."""
        self.call(lambda c: c.fetchval("SELECT 1"), timeout)


async def _guard_tables(conn: Any, where: str) -> None:
    found = await conn.fetchval(
        "SELECT count(*) FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL",
        list(TABLES),
    )
    if found != len(TABLES):
        raise ValueError(f"{where} holds no guard state tables (herald db migrate)")



_ADD: Final = """
INSERT INTO guard_correlations (id, deadline, sealed) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET deadline = excluded.deadline, sealed = excluded.sealed
WHERE guard_correlations.deadline <= $4
"""
_TAKE: Final = "DELETE FROM guard_correlations WHERE id = $1 RETURNING deadline, sealed"
_PUT_DIALOGUE: Final = """
INSERT INTO guard_routed_dialogues (id, deadline, sealed) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET deadline = excluded.deadline, sealed = excluded.sealed
"""
_FIND_DIALOGUE: Final = "SELECT deadline, sealed FROM guard_routed_dialogues WHERE id = $1"
_BOUNDED: Final = ("guard_correlations", "guard_routed_dialogues")


class PostgresCorrelations:
    """:class:`~herald.signaling.correlations.CorrelationStore` in herald's
    PostgreSQL database (``link``, opened), sealed with the key of ``salt``,
    at most ``limit`` rows of each kind (see the module docstring). ``clock``
    is the wall clock. Methods raise :class:`StoreUnavailable` when the
    database does not answer in time, but ``expire`` and ``drop_dialogue``
    (logged; the next purge catches up) and ``len`` (0)."""

    def __init__(self, link: PgLink, salt: bytes, limit: int,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._link = link
        self._key = sealing_key(salt)
        self._clock = clock
        self._limit = limit
        self._ended: set[bytes] = set()

    def close(self) -> None:
        self._link.close()

    def add(self, correlation_id: str, entry: Correlation, now: float) -> bool:
        wall = self._clock()
        row = row_key(self._key, correlation_id)
        sealed = seal(self._key, row, (entry.imsi, entry.node, entry.smsc_gt,
                                       entry.service_centre,
                                       repr(wall + (entry.answered - now))))  # fmt: skip
        deadline = wall + (entry.deadline - now)
        status = self._link.call(lambda c: c.execute(_ADD, row, deadline, sealed, wall))
        return str(status).split()[-1] != "0"

    def take(self, correlation_id: str, now: float) -> Correlation | None:
        row = row_key(self._key, correlation_id)
        found = self._link.call(lambda c: c.fetchrow(_TAKE, row))
        if found is None:
            return None
        deadline, sealed = found["deadline"], bytes(found["sealed"])
        wall = self._clock()
        if deadline <= wall:
            return None
        fields = unseal(self._key, row, sealed, 5)
        if fields is None:
            return None
        imsi, node, smsc_gt, service_centre, answered = fields
        return Correlation(now + (deadline - wall), imsi, node, smsc_gt, service_centre,
                           now + (float(answered) - wall))  # fmt: skip

    def expire(self, now: float) -> None:
        wall, limit = self._clock(), self._limit
        ended, self._ended = list(self._ended), set()

        async def purge(c: Any) -> None:
            async with c.transaction():
                for table in _BOUNDED:
                    await c.execute(f"DELETE FROM {table} WHERE deadline <= $1", wall)
                    await c.execute(f"DELETE FROM {table} WHERE seq <= "
                                    f"(SELECT max(seq) FROM {table}) - $1", limit)  # fmt: skip
                if ended:
                    await c.execute("DELETE FROM guard_routed_dialogues WHERE id = ANY($1)",
                                    ended)  # fmt: skip

        try:
            self._link.call(purge)
        except StoreUnavailable as exc:
            self._ended.update(ended)
            log.warning("home routing: correlations not purged: %s", exc)

    def set_limit(self, limit: int) -> None:
        self._limit = limit

    def __len__(self) -> int:
        try:
            return int(self._link.call(lambda c: c.fetchval(
                "SELECT count(*) FROM guard_correlations")))  # fmt: skip
        except StoreUnavailable:
            return 0

    def put_dialogue(self, key: tuple[str, bytes], record: RoutedRecord, now: float) -> None:
        wall = self._clock()
        row = dialogue_row(self._key, *key)
        self._ended.discard(row)
        sealed = seal_routed(self._key, row, record)
        deadline = wall + (record.deadline - now)
        self._link.call(lambda c: c.execute(_PUT_DIALOGUE, row, deadline, sealed))

    def find_dialogue(self, key: tuple[str, bytes], now: float) -> RoutedRecord | None:
        row = dialogue_row(self._key, *key)
        if row in self._ended:
            return None
        found = self._link.call(lambda c: c.fetchrow(_FIND_DIALOGUE, row))
        if found is None:
            return None
        deadline, sealed = found["deadline"], bytes(found["sealed"])
        wall = self._clock()
        if deadline <= wall:
            return None
        return unseal_routed(self._key, row, sealed, now + (deadline - wall))

    def drop_dialogue(self, key: tuple[str, bytes]) -> None:
        # Deferred to the next expire(), as in SQLite: one statement a second.
        self._ended.add(dialogue_row(self._key, *key))


_PUT_LOOKUP: Final = """
INSERT INTO guard_sms_lookups (id, deadline, sealed) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET deadline = excluded.deadline, sealed = excluded.sealed,
    delivered = false
"""


class PostgresLookups:
    """:class:`~herald.signaling.policy.egress.SharedLookups` in herald's
    PostgreSQL database, sealed as in SQLite
    (:class:`herald.guard.correlations.SQLiteLookups`). An answer is written
    without waiting (queued on the link's loop: the delivery that follows
    comes tens of milliseconds later at the soonest); ``find`` waits at most
    the link's timeout and answers None when the database does not."""

    def __init__(self, link: PgLink, salt: bytes, limit: int,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._link = link
        self._key = sealing_key(salt)
        self._clock = clock
        self.limit = limit

    def close(self) -> None:
        self._link.close()

    def answered(self, requester: str, subscriber: str, node: str, when: float,
                 until: float) -> None:  # fmt: skip
        from herald.guard.correlations import lookup_id

        wall = self._clock()
        row = row_key(self._key, lookup_id(requester, subscriber))
        sealed = seal(self._key, row, (node, repr(wall)))
        deadline = wall + (until - when)
        self._link.post(lambda c: c.execute(_PUT_LOOKUP, row, deadline, sealed))

    def flush(self) -> None:
        """Nothing to do before a batch leaves: each answer's write is
        already queued (:meth:`wait` waits for them)."""

    def wait(self) -> None:
        """Wait until the answers written so far are stored. Raises
        :class:`StoreUnavailable` if the database does not answer."""
        self._link.flush()

    def find(self, requester: str, subscriber: str, now: float) -> tuple[float, str] | None:
        from herald.guard.correlations import lookup_id

        row = row_key(self._key, lookup_id(requester, subscriber))
        try:
            found = self._link.call(lambda c: c.fetchrow(
                "UPDATE guard_sms_lookups SET delivered = true WHERE id = $1"
                " RETURNING deadline, sealed", row))  # fmt: skip
        except StoreUnavailable as exc:
            log.warning("shared SMS lookups: %s", exc)
            return None
        wall = self._clock()
        if found is None or found["deadline"] <= wall:
            return None
        fields = unseal(self._key, row, bytes(found["sealed"]), 2)
        if fields is None:
            return None
        node, answered = fields
        return now + (float(answered) - wall), node

    def delivered(self, requester: str, subscriber: str) -> bool:
        from herald.guard.correlations import lookup_id

        row = row_key(self._key, lookup_id(requester, subscriber))
        try:
            return bool(self._link.call(lambda c: c.fetchval(
                "SELECT delivered FROM guard_sms_lookups WHERE id = $1", row)))  # fmt: skip
        except StoreUnavailable as exc:
            log.warning("shared SMS lookups: %s", exc)
            return False

    def expire(self) -> None:
        wall, limit = self._clock(), self.limit
        self._link.post(lambda c: c.execute(
            "DELETE FROM guard_sms_lookups WHERE deadline <= $1"
            " OR seq <= (SELECT max(seq) FROM guard_sms_lookups) - $2", wall, limit))  # fmt: skip


class PostgresSnapshots:
    """The engines' snapshots and shares in herald's PostgreSQL database, as
    :class:`herald.guard.correlations.SQLiteSnapshots` keeps them in a data
    directory (one snapshot row per proxy process, shares appended and kept
    :data:`~herald.guard.correlations.CHANGES_KEPT` seconds). Called from a
    worker thread; raises :class:`StoreUnavailable` on failure."""

    def __init__(self, link: PgLink, salt: bytes, clock: Callable[[], float] = time.time
                 ) -> None:  # fmt: skip
        self._link = link
        self._key = sealing_key(salt)
        self._clock = clock

    def close(self) -> None:
        self._link.close()

    def save(self, proxy: str, data: bytes) -> None:
        from herald.guard.correlations import MAX_SNAPSHOTS, SNAPSHOT_MAX_AGE

        now = self._clock()
        sealed = seal_blob(self._key, row_key(self._key, f"snapshot {proxy}"), data)

        async def write(c: Any) -> None:
            async with c.transaction():
                await c.execute(
                    "INSERT INTO guard_engine_snapshots (proxy, written, sealed)"
                    " VALUES ($1, $2, $3) ON CONFLICT (proxy) DO UPDATE"
                    " SET written = excluded.written, sealed = excluded.sealed",
                    proxy, now, sealed)  # fmt: skip
                await c.execute(
                    "DELETE FROM guard_engine_snapshots WHERE written < $1 OR proxy NOT IN"
                    " (SELECT proxy FROM guard_engine_snapshots ORDER BY written DESC LIMIT $2)",
                    now - SNAPSHOT_MAX_AGE, MAX_SNAPSHOTS)  # fmt: skip

        self._link.call(write)

    def load(self) -> list[tuple[float, bytes]]:
        from herald.guard.correlations import SNAPSHOT_MAX_AGE

        now = self._clock()
        rows = self._link.call(lambda c: c.fetch(
            "SELECT proxy, written, sealed FROM guard_engine_snapshots WHERE written >= $1"
            " ORDER BY written", now - SNAPSHOT_MAX_AGE))  # fmt: skip
        out = []
        for row in rows:
            data = unseal_blob(self._key, row_key(self._key, f"snapshot {row['proxy']}"),
                               bytes(row["sealed"]))  # fmt: skip
            if data is not None:
                out.append((max(0.0, now - row["written"]), data))
        return out

    def share(self, proxy: str, data: bytes) -> None:
        from herald.guard.correlations import CHANGES_KEPT

        now = self._clock()
        sealed = seal_blob(self._key, row_key(self._key, f"change {proxy}"), data)

        async def write(c: Any) -> None:
            async with c.transaction():
                await c.execute("INSERT INTO guard_engine_changes (proxy, written, sealed)"
                                " VALUES ($1, $2, $3)", proxy, now, sealed)  # fmt: skip
                await c.execute("DELETE FROM guard_engine_changes WHERE written < $1",
                                now - CHANGES_KEPT)  # fmt: skip

        self._link.call(write)

    def shared(self, after: int, proxy: str) -> tuple[int, list[tuple[float, bytes]]]:
        now = self._clock()
        # Rows are read in seq order up to the first seq a transaction still
        # writing may hold below it: bigserial values are taken at insert, so
        # a reader could see seq 7 committed before 6; only rows written more
        # than a second ago are taken past a gap (see _contiguous).
        rows = self._link.call(lambda c: c.fetch(
            "SELECT seq, proxy, written, sealed FROM guard_engine_changes WHERE seq > $1"
            " ORDER BY seq", after))  # fmt: skip
        out = []
        for row in _contiguous(rows, after, now):
            after = row["seq"]
            if row["proxy"] == proxy:
                continue
            data = unseal_blob(self._key, row_key(self._key, f"change {row['proxy']}"),
                               bytes(row["sealed"]))  # fmt: skip
            if data is not None:
                out.append((max(0.0, now - row["written"]), data))
        return after, out


#: Seconds after which a gap in the shares' sequence is taken as a rolled
#: back insert, not one still committing.
_GAP_SETTLED: Final = 1.0


def _contiguous(rows: list[Any], after: int, now: float) -> list[Any]:
    """The rows up to the first gap that may still fill (see ``shared``)."""
    out = []
    expected = after + 1
    for row in rows:
        if row["seq"] != expected and now - row["written"] < _GAP_SETTLED and after > 0:
            break
        out.append(row)
        expected = row["seq"] + 1
    return out
