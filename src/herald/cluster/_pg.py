"""The lease tables on PostgreSQL: the transitions of herald.cluster.leases in SQL.

Each method is one statement on a pooled connection, and each takes ``now``
from the server (``clock_timestamp()``), never from the node: a lease is
granted and judged by one clock. The statements mirror
:func:`~herald.cluster.leases.acquire_slot`, :func:`renew_slot` and
:func:`release_slot` (the WHERE clauses are their conditions).

Errors: asyncpg's (connection lost, server down) propagate, and a failed
statement changed nothing. The caller (:class:`~herald.cluster.LeaseKeeper`)
retries at its next cycle; meanwhile its deadlines stop sending in time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from herald.cluster.leases import Holding, Slot, Snapshot

__all__ = ["HOLDS_SLOT", "SlotTable"]

_NOW = "extract(epoch FROM clock_timestamp())::float8"

#: A condition for fenced writes (claims, completions) carrying a slot's
#: epoch: true while ``$owner`` holds the slot at that epoch. Parameters are
#: named ``{connector} {slot} {owner} {epoch}``: format them with placeholders.
HOLDS_SLOT = (
    "EXISTS (SELECT 1 FROM connector_slots WHERE connector = {connector} AND slot = {slot}"
    f" AND owner = {{owner}} AND epoch = {{epoch}} AND expires_at > {_NOW})"
)

_SYNC = f"""
WITH want AS (
    SELECT c.connector, c.n FROM unnest($1::text[], $2::int[]) AS c(connector, n)
), added AS (
    INSERT INTO connector_slots (connector, slot)
    SELECT want.connector, s FROM want, generate_series(0, want.n - 1) AS s
    ON CONFLICT DO NOTHING
)
DELETE FROM connector_slots AS cs USING want
WHERE cs.connector = want.connector AND cs.slot >= want.n
  AND (cs.owner IS NULL OR cs.expires_at <= {_NOW})
"""

# Heartbeat and renewals in one statement: the node's registration and its
# slots end together, so its slots are free when the others stop counting it.
_RENEW = f"""
WITH t AS (SELECT {_NOW} AS now),
hb AS (
    INSERT INTO cluster_nodes AS n (node, expires_at, joined_at)
    SELECT $1, t.now + $2, t.now FROM t
    ON CONFLICT (node) DO UPDATE SET expires_at = greatest(n.expires_at, EXCLUDED.expires_at)
), r AS (
    UPDATE connector_slots AS s SET expires_at = greatest(s.expires_at, t.now + $2)
    FROM t, unnest($3::text[], $4::int[], $5::bigint[]) AS h(connector, slot, epoch)
    WHERE s.connector = h.connector AND s.slot = h.slot
      AND s.owner = $1 AND s.epoch = h.epoch AND s.expires_at > t.now
    RETURNING s.connector, s.slot, s.epoch
)
SELECT t.now, r.connector, r.slot, r.epoch FROM t LEFT JOIN r ON true
"""

_SNAPSHOT = f"""
SELECT {_NOW} AS now,
    ARRAY(SELECT node FROM cluster_nodes ORDER BY node) AS nodes,
    ARRAY(SELECT expires_at FROM cluster_nodes ORDER BY node) AS node_ends,
    ARRAY(SELECT connector FROM connector_slots
          WHERE connector = ANY($1::text[]) ORDER BY connector, slot) AS connectors,
    ARRAY(SELECT slot FROM connector_slots
          WHERE connector = ANY($1::text[]) ORDER BY connector, slot) AS slots,
    ARRAY(SELECT owner FROM connector_slots
          WHERE connector = ANY($1::text[]) ORDER BY connector, slot) AS owners,
    ARRAY(SELECT epoch FROM connector_slots
          WHERE connector = ANY($1::text[]) ORDER BY connector, slot) AS epochs,
    ARRAY(SELECT expires_at FROM connector_slots
          WHERE connector = ANY($1::text[]) ORDER BY connector, slot) AS ends
"""

# SKIP LOCKED: two nodes acquiring at once take different rows and never wait
# for each other. FOR UPDATE re-checks a row that changed after the scan
# (EvalPlanQual), so a slot renewed meanwhile is not taken.
_ACQUIRE = f"""
WITH t AS (SELECT {_NOW} AS now),
pick AS (
    SELECT s.slot FROM connector_slots AS s, t
    WHERE s.connector = $1 AND s.slot < $4 AND (s.owner IS NULL OR s.expires_at <= t.now)
    ORDER BY s.slot LIMIT $3
    FOR UPDATE OF s SKIP LOCKED
)
UPDATE connector_slots AS s
SET owner = $2, epoch = s.epoch + 1, expires_at = t.now + $5, acquired_at = t.now
FROM pick, t
WHERE s.connector = $1 AND s.slot = pick.slot
RETURNING s.connector, s.slot, s.owner, s.epoch, s.expires_at
"""

_RELEASE = """
UPDATE connector_slots AS s SET owner = NULL, expires_at = 0
FROM unnest($2::text[], $3::int[], $4::bigint[]) AS h(connector, slot, epoch)
WHERE s.connector = h.connector AND s.slot = h.slot AND s.owner = $1 AND s.epoch = h.epoch
RETURNING s.connector, s.slot
"""

_LEAVE = """
WITH gone AS (DELETE FROM cluster_nodes WHERE node = $1)
UPDATE connector_slots SET owner = NULL, expires_at = 0 WHERE owner = $1
"""

# Only nodes still expired: one that came back meanwhile stays.
_FORGET = f"""
DELETE FROM cluster_nodes WHERE node = ANY($1::text[]) AND expires_at <= {_NOW}
RETURNING node
"""

_HOLDS = "SELECT " + HOLDS_SLOT.format(connector="$1", slot="$2", owner="$3", epoch="$4")


def _columns(holdings: Iterable[Holding]) -> tuple[list[str], list[int], list[int]]:
    hs = list(holdings)
    return [h.connector for h in hs], [h.slot for h in hs], [h.epoch for h in hs]


class SlotTable:
    """``connector_slots`` and ``cluster_nodes`` as seen by one node.

    ``pool``: an asyncpg pool (or connection); ``node``: this node's id,
    unique per process (a restarted process must not inherit the slots of its
    previous life: :func:`~herald.cluster.postgres.node_id`); ``lease``: the
    seconds each acquisition or renewal grants.
    """

    def __init__(self, pool: Any, node: str, lease: float) -> None:
        if not node:
            raise ValueError("a node needs a non-empty id")
        if not lease > 0:
            raise ValueError(f"lease must be positive, got {lease!r}")
        self._pool = pool
        self.node = node
        self.lease = lease

    async def sync_slots(self, binds: Mapping[str, int]) -> None:
        """Make each connector's rows match its configured binds: add the
        missing ones; drop those beyond it once free (a held one goes when its
        holder gives it back, which :func:`~herald.cluster.leases.plan` says)."""
        names = list(binds)
        await self._pool.execute(_SYNC, names, [binds[c] for c in names])

    async def renew(
        self, holdings: Sequence[Holding]
    ) -> tuple[float, frozenset[tuple[str, int, int]]]:
        """Extend this node's registration and the leases of ``holdings``; the
        server's now and the (connector, slot, epoch) renewed. One missing was
        lost: another node holds it, or its lease had ended."""
        rows = await self._pool.fetch(_RENEW, self.node, self.lease, *_columns(holdings))
        renewed = frozenset(
            (r["connector"], r["slot"], r["epoch"]) for r in rows if r["connector"] is not None
        )
        return rows[0]["now"], renewed

    async def snapshot(self, connectors: Iterable[str]) -> Snapshot:
        """The server's now, the registered nodes and the rows of ``connectors``."""
        r = await self._pool.fetchrow(_SNAPSHOT, list(connectors))
        rows = tuple(
            Slot(c, s, o, e, x)
            for c, s, o, e, x in zip(
                r["connectors"], r["slots"], r["owners"], r["epochs"], r["ends"], strict=True
            )
        )
        return Snapshot(r["now"], dict(zip(r["nodes"], r["node_ends"], strict=True)), rows)

    async def acquire(self, connector: str, count: int, binds: int) -> tuple[Slot, ...]:
        """Up to ``count`` free slots of ``connector`` below ``binds``, lowest
        first, each under its next epoch; fewer (or none) when others hold or
        are taking them."""
        if count < 1:
            return ()
        rows = await self._pool.fetch(_ACQUIRE, connector, self.node, count, binds, self.lease)
        # UPDATE ... RETURNING gives its rows in no defined order: sort them.
        return tuple(
            Slot(r["connector"], r["slot"], r["owner"], r["epoch"], r["expires_at"])
            for r in sorted(rows, key=lambda r: r["slot"])
        )

    async def release(self, holdings: Sequence[Holding]) -> frozenset[tuple[str, int]]:
        """Hand ``holdings`` back (free at once); those this node still held."""
        if not holdings:
            return frozenset()
        rows = await self._pool.fetch(_RELEASE, self.node, *_columns(holdings))
        return frozenset((r["connector"], r["slot"]) for r in rows)

    async def leave(self) -> None:
        """Unregister and free every slot this node holds (a clean stop)."""
        await self._pool.execute(_LEAVE, self.node)

    async def forget(self, nodes: Iterable[str]) -> frozenset[str]:
        """Unregister ``nodes`` whose registration has ended (the leader, once
        their leftovers are dealt with); those removed."""
        rows = await self._pool.fetch(_FORGET, list(nodes))
        return frozenset(r["node"] for r in rows)

    async def holds(self, connector: str, slot: int, epoch: int) -> bool:
        """Whether this node holds ``slot`` at ``epoch`` now (:data:`HOLDS_SLOT`)."""
        held: bool = await self._pool.fetchval(_HOLDS, connector, slot, self.node, epoch)
        return held
