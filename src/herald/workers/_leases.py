"""The leases of a ``herald serve`` node on PostgreSQL (docs/leases.md): binds,
TPS and the cluster's leadership.

On a PostgreSQL store several nodes dispatch through the same connectors, so
the process that runs dispatch (the delivery process, or the only one) holds
a :class:`~herald.cluster.postgres.LeaseKeeper`: a connector's bind ``n`` is
its slot ``n``, bound only while this node holds the slot, and the node sends
at the slots' share of ``tps``. The keeper has a pool of its own (two
connections), so a renewal never waits behind the store's calls.

The keeper also elects the node that does the cluster's chores. While this
node leads, its dispatcher's housekeeping expires validity periods and purges
(``Dispatcher(..., leader=leases.leads)``; on the other nodes it skips them),
and the keeper's leader hook (:meth:`ServeLeases.chores`) requeues the claims
of nodes whose registration ended (as soon as it ended: one lease after their
last renewal) and claims whose own lease lapsed, and manages the history partitions
(:class:`~herald.store.postgres.HistoryPartitions`).

Slots need transceiver binds (docs/leases.md): with any other bind type in the
configuration the node shares no binds (it runs its connectors as one node
alone, and says so) but still takes part in the election.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from herald.config import HeraldConfig

__all__ = ["KEEPER_CONNECTIONS", "PARTITIONS_EVERY", "ServeLeases"]

log = logging.getLogger("herald.workers")

#: The keeper's own pool: renewals and the leader's chores, one at a time each.
KEEPER_CONNECTIONS: Final = 2
#: Seconds between two upkeeps of the history partitions by the leader (the
#: first as soon as it leads): they are made days ahead, so hourly is plenty.
PARTITIONS_EVERY: Final = 3600.0
#: Seconds in a day, for ``[store] history_days``.
_DAY: Final = 86_400.0


class ServeLeases:
    """``await ServeLeases.open(config)`` (``None``: on SQLite), then
    ``Dispatcher(..., slots=leases.slots, leader=leases.leads)``,
    ``leases.attach(dispatcher)``, ``await leases.start()`` after the
    dispatcher's; ``await leases.stop()`` after the dispatcher stopped (its
    slots and the leadership are handed back at once)."""

    def __init__(self, keeper: Any, pool: Any, *, shares_binds: bool = True,
                 history_days: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.keeper = keeper
        self._pool = pool
        self._shares_binds = shares_binds
        self._keep = None if history_days is None else history_days * _DAY
        self._clock = clock
        self._gained: Callable[[str, int], Any] | None = None
        self._lost: Callable[[str, int], Any] | None = None
        self._lapsed: Callable[[], None] | None = None
        self._partitions_at = -float("inf")  # the next upkeep (the first when it leads)
        self.requeued = 0  # claims requeued by this node's chores (for tests)

    @classmethod
    async def open(cls, config: HeraldConfig) -> ServeLeases | None:
        """The keeper of this node's slots and leadership, on ``config.store.url``;
        ``None`` on SQLite. Raises :class:`~herald.store.StoreUnavailable` (the
        database is out of reach)."""
        url = config.store.url
        if url is None:
            return None
        others = [c.name for c in config.connectors if c.bind_type != "transceiver"]
        if others:
            log.warning("connectors %s are not transceivers: binds are not shared between"
                        " nodes by leases; run this configuration on one node only",
                        ", ".join(others))  # fmt: skip
        binds = {} if others else {c.name: c.binds for c in config.connectors}
        from herald.cluster.postgres import LeaseKeeper, SlotTable, node_id
        from herald.store.postgres import create_pool

        settings = config.cluster.leases  # [cluster] in herald.toml
        pool = await create_pool(url, min_size=1, max_size=KEEPER_CONNECTIONS)
        leases = cls(None, pool, shares_binds=not others,
                     history_days=config.store.history_days)  # fmt: skip
        # The store's claims carry this process's node_id() too: the leader
        # requeues a lapsed node's claims by its registration's name.
        leases.keeper = LeaseKeeper(
            SlotTable(pool, node_id(), settings.lease), binds, settings,
            on_gained=lambda h: leases._on(leases._gained, h.connector, h.slot),
            on_lost=lambda h: leases._on(leases._lost, h.connector, h.slot),
            on_leader=leases.chores, on_lapsed=leases._on_lapsed,
        )  # fmt: skip
        return leases

    @property
    def slots(self) -> Any:
        """The dispatcher's slot gate: the keeper, or ``None`` when binds are not
        shared (a connector that is not a transceiver)."""
        return self.keeper if self._shares_binds else None

    def leads(self) -> bool:
        """Whether this node does the cluster's chores now (ask before each)."""
        return bool(self.keeper.leading)

    def attach(self, dispatcher: Any) -> None:
        """Bind and unbind ``dispatcher``'s connectors as slots come and go, and
        fence its claims by this node's registration: none extended while it
        has lapsed, none sent once it lapsed (the leader requeues them)."""
        self._gained, self._lost = dispatcher.slot_gained, dispatcher.slot_lost
        self._lapsed = dispatcher.node_lapsed
        keeper = self.keeper
        dispatcher.node_alive = lambda: bool(keeper.alive)

    def _on_lapsed(self) -> None:
        if self._lapsed is not None:
            self._lapsed()

    @staticmethod
    def _on(call: Callable[[str, int], Any] | None, connector: str, slot: int) -> Any:
        # on_lost's result is the unbind: the keeper hands the slot back after it
        return None if call is None else call(connector, slot)

    async def chores(self, ended: frozenset[str]) -> None:
        """The leader's share of the cluster's chores, at each keeper cycle while
        it leads (the keeper forgets the ended nodes after): requeue the
        claims of the ``ended`` nodes (their registration lapsed: they died or
        stalled; within one lease, not the claims' longer one) and claims whose
        lease lapsed (the ``(owner, attempt)`` fence refuses a late holder's
        writes, and a lapsed node's extensions are refused: RESCHEDULE); and
        every :data:`PARTITIONS_EVERY`, the history partitions. Each is idempotent."""
        from herald.store.postgres import DispatchQueue, HistoryPartitions

        now = self._clock()
        queue = DispatchQueue(self._pool, self.keeper.node)
        lapsed = await queue.requeue_lapsed(ended, now)
        if lapsed:
            log.warning("requeued %d messages claimed by nodes whose lease ended: %s",
                        lapsed, ", ".join(sorted(ended)))  # fmt: skip
        self.requeued += lapsed + await queue.requeue_expired(now)
        if now >= self._partitions_at:
            self._partitions_at = now + PARTITIONS_EVERY
            done = await HistoryPartitions(self._pool).maintain(now, self._keep)
            if done.created or done.dropped or done.moved or done.deleted:
                log.info("history partitions: created %s, dropped %s; %d rows moved out of"
                         " and %d deleted from the default partitions",
                         done.created, done.dropped, done.moved, done.deleted)  # fmt: skip

    async def start(self) -> None:
        """Create the slot rows and start acquiring (the binds follow)."""
        await self.keeper.start()

    async def stop(self) -> None:
        """Hand the slots back (the others take them at once) and close the pool;
        the dispatcher, stopped first, has unbound already and hears no more."""
        self._gained = self._lost = None
        self._lapsed = None
        try:
            await self.keeper.stop()
        finally:
            await self._pool.close()
