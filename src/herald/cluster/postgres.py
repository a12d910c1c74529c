"""The I/O half of herald.cluster: the lease tables on PostgreSQL and the keeper.

Imported by the composition root (it needs asyncpg at run time, through the
pool it is given); the rules themselves are in :mod:`herald.cluster.leases`.
"""

from __future__ import annotations

from herald.cluster._identity import new_node_id, node_id
from herald.cluster._keeper import STOP_TIMEOUT, LeaderHook, LeaseKeeper, SlotCallback
from herald.cluster._pg import HOLDS_SLOT, SlotTable
from herald.cluster._schema import ensure_schema

__all__ = [
    "HOLDS_SLOT",
    "STOP_TIMEOUT",
    "LeaderHook",
    "LeaseKeeper",
    "SlotCallback",
    "SlotTable",
    "ensure_schema",
    "new_node_id",
    "node_id",
]
