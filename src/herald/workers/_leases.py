"""The bind and TPS leases of a ``herald serve`` node on PostgreSQL (docs/leases.md).

On a PostgreSQL store several nodes dispatch through the same connectors, so
the process that runs dispatch (the delivery process, or the only one) holds
a :class:`~herald.cluster.postgres.LeaseKeeper`: a connector's bind ``n`` is
its slot ``n``, bound only while this node holds the slot, and the node sends
at the slots' share of ``tps``. The keeper has a pool of its own (two
connections), so a renewal never waits behind the store's calls.

Slots need transceiver binds (docs/leases.md): with any other bind type in the
configuration the node runs without leases, as one node alone, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from herald.config import HeraldConfig

__all__ = ["KEEPER_CONNECTIONS", "ServeLeases"]

log = logging.getLogger("herald.workers")

#: The keeper's own pool: renewals and the leader's chores, one at a time each.
KEEPER_CONNECTIONS: Final = 2


class ServeLeases:
    """``await ServeLeases.open(config)`` (``None``: no leases here), then
    ``Dispatcher(..., slots=leases.keeper)``, ``leases.attach(dispatcher)``,
    ``await leases.start()`` after the dispatcher's; ``await leases.stop()``
    after the dispatcher stopped (its slots are handed back at once)."""

    def __init__(self, keeper: Any, pool: Any) -> None:
        self.keeper = keeper
        self._pool = pool
        self._gained: Callable[[str, int], Any] | None = None
        self._lost: Callable[[str, int], Any] | None = None

    @classmethod
    async def open(cls, config: HeraldConfig) -> ServeLeases | None:
        """The keeper of this node's slots, on ``config.store.url``; ``None`` on
        SQLite, without connectors, or with a connector that is not a transceiver.
        Raises :class:`~herald.store.StoreUnavailable` (the database is out of reach)."""
        url = config.store.url
        if url is None or not config.connectors:
            return None
        others = [c.name for c in config.connectors if c.bind_type != "transceiver"]
        if others:
            log.warning("connectors %s are not transceivers: binds are not shared between"
                        " nodes by leases; run this configuration on one node only",
                        ", ".join(others))  # fmt: skip
            return None
        from herald.cluster.postgres import LeaseKeeper, SlotTable, node_id
        from herald.store.postgres import create_pool

        settings = config.cluster.leases  # [cluster] in herald.toml
        pool = await create_pool(url, min_size=1, max_size=KEEPER_CONNECTIONS)
        leases = cls(None, pool)
        leases.keeper = LeaseKeeper(
            SlotTable(pool, node_id(), settings.lease),
            {c.name: c.binds for c in config.connectors}, settings,
            on_gained=lambda h: leases._on(leases._gained, h.connector, h.slot),
            on_lost=lambda h: leases._on(leases._lost, h.connector, h.slot),
        )  # fmt: skip
        return leases

    def attach(self, dispatcher: Any) -> None:
        """Bind and unbind ``dispatcher``'s connectors as slots come and go."""
        self._gained, self._lost = dispatcher.slot_gained, dispatcher.slot_lost

    @staticmethod
    def _on(call: Callable[[str, int], Any] | None, connector: str, slot: int) -> Any:
        # on_lost's result is the unbind: the keeper hands the slot back after it
        return None if call is None else call(connector, slot)

    async def start(self) -> None:
        """Create the slot rows and start acquiring (the binds follow)."""
        await self.keeper.start()

    async def stop(self) -> None:
        """Hand the slots back (the others take them at once) and close the pool;
        the dispatcher, stopped first, has unbound already and hears no more."""
        self._gained = self._lost = None
        try:
            await self.keeper.stop()
        finally:
            await self._pool.close()
