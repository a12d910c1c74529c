"""Several herald nodes on one PostgreSQL cluster (issue 10): bind and TPS leases.

This face holds the pure rules (:mod:`herald.cluster.leases`); the PostgreSQL
table and the asyncio keeper that applies them are in
:mod:`herald.cluster.postgres`, imported by the composition root. Accounts'
rates drawn in slices from buckets the nodes share: :mod:`herald.cluster.budgets`.
"""

from __future__ import annotations

from herald.cluster.leases import (
    DEFAULT_SETTINGS,
    LEADER,
    Holding,
    LeaseSettings,
    Plan,
    Slot,
    Snapshot,
    acquire_slot,
    fair_share,
    plan,
    release_slot,
    renew_slot,
    slot_rate,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "LEADER",
    "Holding",
    "LeaseSettings",
    "Plan",
    "Slot",
    "Snapshot",
    "acquire_slot",
    "fair_share",
    "plan",
    "release_slot",
    "renew_slot",
    "slot_rate",
]
