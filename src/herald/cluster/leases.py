"""Bind and TPS leases of N herald nodes sharing one database: the rules, pure.

Theory of operation
===================

A connector configured with ``binds = n`` and ``tps = r`` has ``n`` **slots**
in the shared table, one row each: ``(connector, slot, owner, epoch,
expires_at)``. A node opens one bind per slot it holds and sends on it at
``r / n`` (:func:`slot_rate`). A slot has at most one live owner, so the
cluster never has more than ``n`` binds to the connector nor sends faster
than ``r``, however many nodes run.

The table's rows change by three transitions, which the SQL mirrors
(``herald.cluster._pg``) and which take the **database's** clock as ``now``,
so no two nodes compare their own clocks:

- :func:`acquire_slot`: a free slot (no owner, or its lease ended) takes the
  node as owner, the next **epoch** and ``now + lease``;
- :func:`renew_slot`: the owner whose epoch still matches, before the lease
  ends, pushes the end to ``now + lease``; anything else (another owner, a
  newer epoch, an ended lease) is refused: the **epoch fence**. A slot whose
  lease ended is acquired again, under a new epoch, never renewed;
- :func:`release_slot`: the owner at that epoch hands the slot back.

A node stops sending on a slot when its last successful renewal is older
than ``lease - margin`` (:meth:`Holding.may_send`), counted on its own
monotonic clock from the moment it *sent* the renewal: the database set the
lease's end from a later instant, so the node stops at least ``margin``
before anyone else can acquire the slot. ``margin`` absorbs the node's clock
rate error, an event-loop stall between checking and writing, and the time to
close the bind (:attr:`LeaseSettings.unbind_within`: half of it, after which
the connection is cut whatever the upstream still owes); clock *offsets*
between machines do not matter at all.

Fair share (:func:`plan`): with ``k`` live nodes each wants between
``floor(n/k)`` and ``ceil(n/k)`` slots of a connector. A node below the floor
takes free slots up to the floor; when no node is below the floor, nodes
below the ceiling take what is still free; a node above the ceiling gives the
surplus back; when the nodes below the floor need more than is free, the
largest holders (ties: lowest node id) give back one slot each until the
need is covered. Every node reaches the same verdict from the same snapshot,
so one slot moves per missing slot; a joining node is seen at the others'
next renewal and gets its share at its own next cycle after that, well inside
one lease (``renew_every <= (lease - margin) / 2``).

Leader (:data:`LEADER`): one node does the cluster's chores (requeue lapsed
claims, expire validity periods, manage history partitions). Leadership is
one more slot, slot 0 of the pseudo-connector :data:`LEADER`, under the same
rules: acquired when free, renewed with the node's other slots, fenced by its
epoch, and its holder stops leading ``margin`` before the lease could end,
so two nodes never lead at once (each judged on its own clock) and a dead
leader's successor takes over when its lease ends, within one lease however
it died. Its fair share (``binds = 1``) moves nothing while its holder
lives: leadership stays put as nodes come and go. Chosen over a session
advisory lock, which a hung or partitioned node keeps until the server
notices its connection is gone, which a PostgreSQL restart drops for every
node at once, and which needs a dedicated connection (no transaction pooler).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """How long leases last and how often they are renewed (seconds).

    Defaults: a 10 s lease renewed every 2 s, sending stops 7 s after the last
    successful renewal (three renewals may fail in a row before that), a dead
    node's slots are free 10 s after its last renewal.
    """

    lease: float = 10.0  # a slot (and a node's registration) is held this long per renewal
    margin: float = 3.0  # sending stops this long before the lease could end
    renew_every: float = 2.0  # between two renewals of a node
    jitter: float = 0.1  # +- this fraction of renew_every, so nodes do not renew in step

    def __post_init__(self) -> None:
        for name in ("lease", "margin", "renew_every"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"leases.{name} must be a positive number of seconds, got {value!r}"
                )
        if not 0 <= self.jitter < 0.5:
            raise ValueError(f"leases.jitter must be in [0, 0.5), got {self.jitter!r}")
        if self.margin >= self.lease:
            raise ValueError(
                f"leases.margin ({self.margin}) must be shorter than leases.lease ({self.lease})"
            )
        # At least two renewals (with jitter) before a node must stop sending:
        # one lost renewal never stops traffic.
        if 2 * self.renew_every * (1 + self.jitter) > self.sending_window:
            raise ValueError(
                f"leases.renew_every ({self.renew_every}) must allow two renewals in "
                f"lease - margin ({self.sending_window:g} s)"
            )

    @property
    def sending_window(self) -> float:
        """Seconds a node may send on a slot after it sent its last successful renewal."""
        return self.lease - self.margin

    @property
    def unbind_within(self) -> float:
        """Seconds a node may take to close a lost slot's bind (unbind, then cut
        the connection): half the margin, so the session is gone before anyone
        else can take the slot; the other half covers the clock's rate error and
        event-loop stalls."""
        return self.margin / 2


DEFAULT_SETTINGS = LeaseSettings()

#: The pseudo-connector whose one slot is the cluster's leadership. The colon
#: keeps it apart from every configured connector (names are letters, digits,
#: ``-`` and ``_``).
LEADER = ":leader"


def slot_rate(tps: float, binds: int) -> float:
    """Submits per second one slot of a connector carries: its share of ``tps``
    (``inf`` stays ``inf``: no limit)."""
    if binds < 1:
        raise ValueError(f"a connector has at least one bind, got {binds}")
    return tps / binds


def fair_share(slots: int, nodes: int) -> tuple[int, int]:
    """(floor, ceil) of the slots each of ``nodes`` live nodes should hold."""
    if nodes < 1:
        return slots, slots
    return slots // nodes, -(-slots // nodes)


# --- the table's rows and their transitions ----------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """One row of ``connector_slots``; ``expires_at`` on the database's clock."""

    connector: str
    slot: int
    owner: str | None = None
    epoch: int = 0
    expires_at: float = 0.0

    def is_free(self, now: float) -> bool:
        return self.owner is None or self.expires_at <= now

    def held_by(self, node: str, now: float) -> bool:
        return self.owner == node and self.expires_at > now


def acquire_slot(row: Slot, node: str, now: float, lease: float) -> Slot | None:
    """``row`` owned by ``node`` under a new epoch, or None if it is not free."""
    if not row.is_free(now):
        return None
    return Slot(row.connector, row.slot, node, row.epoch + 1, now + lease)


def renew_slot(row: Slot, node: str, epoch: int, now: float, lease: float) -> Slot | None:
    """``row`` with its lease pushed to ``now + lease``, or None (the fence):
    ``node`` is not its owner at ``epoch``, or the lease already ended."""
    if row.owner != node or row.epoch != epoch or row.expires_at <= now:
        return None
    return Slot(row.connector, row.slot, node, epoch, max(row.expires_at, now + lease))


def release_slot(row: Slot, node: str, epoch: int) -> Slot | None:
    """``row`` without owner (its epoch kept: the next owner's is higher), or
    None if ``node`` is not its owner at ``epoch``."""
    if row.owner != node or row.epoch != epoch:
        return None
    return Slot(row.connector, row.slot, None, epoch, 0.0)


# --- a node's own view --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Holding:
    """A slot this node holds: the epoch it acquired, and when (on its own
    monotonic clock) it sent the last acquisition or renewal that succeeded."""

    connector: str
    slot: int
    epoch: int
    renewed_at: float

    def deadline(self, settings: LeaseSettings) -> float:
        """The local time from which the node must not send on the slot."""
        return self.renewed_at + settings.sending_window

    def may_send(self, local_now: float, settings: LeaseSettings) -> bool:
        return local_now < self.deadline(settings)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a node read: the database's ``now``, the registered nodes (node ->
    end of its registration; those ended are not live) and the slot rows."""

    now: float
    nodes: Mapping[str, float]
    slots: tuple[Slot, ...]

    def live(self) -> frozenset[str]:
        return frozenset(node for node, ends in self.nodes.items() if ends > self.now)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a node should do after reading a snapshot.

    ``release``: rows it holds to hand back; ``acquire``: connector -> how many
    free slots to take; ``changes_at``: the earliest database time at which
    another node's registration or lease ends (a dead node's slots free up
    then: look again at that moment rather than a renewal later), or None.
    Renewals are not planned: a node renews every slot it holds.
    """

    release: tuple[Slot, ...] = ()
    acquire: Mapping[str, int] = field(default_factory=dict)
    changes_at: float | None = None


def _give_backs(held: Counter[str], live: Iterable[str], floor: int, deficit: int) -> Counter[str]:
    """Who gives a slot back to cover ``deficit``: the largest holder above the
    floor (ties: lowest id), one slot at a time."""
    left = {node: held[node] for node in live}
    give: Counter[str] = Counter()
    for _ in range(deficit):
        candidates = [node for node, count in left.items() if count > floor]
        if not candidates:
            break
        giver = min(candidates, key=lambda node: (-left[node], node))
        left[giver] -= 1
        give[giver] += 1
    return give


def plan(snapshot: Snapshot, node: str, binds: Mapping[str, int]) -> Plan:
    """The releases and acquisitions that move ``node`` towards its fair share
    of each configured connector (``binds``: connector -> configured binds).

    Rows of a connector beyond its configured binds (the configuration shrank)
    are never acquired, and released by whoever holds them. Slots of a
    connector that is not configured here are left alone.
    """
    now = snapshot.now
    live = snapshot.live() | {node}
    release: list[Slot] = []
    acquire: dict[str, int] = {}
    by_connector: dict[str, list[Slot]] = {name: [] for name in binds}
    for row in snapshot.slots:
        if row.connector in by_connector:
            by_connector[row.connector].append(row)

    for connector, rows in by_connector.items():
        n = binds[connector]
        usable = sorted((r for r in rows if r.slot < n), key=lambda r: r.slot)
        release += [r for r in rows if r.slot >= n and r.held_by(node, now)]
        floor, ceil = fair_share(n, len(live))
        held = Counter(r.owner for r in usable if r.owner in live and not r.is_free(now))
        mine = [r for r in usable if r.held_by(node, now)]
        free = sum(1 for r in usable if r.is_free(now))
        short = {x: floor - held[x] for x in live if held[x] < floor}
        need = sum(short.values())

        if len(mine) > ceil:
            give = len(mine) - ceil
        else:
            give = _give_backs(held, live, floor, need - free)[node] if need > free else 0
        # The highest slots go first, so the low ones stay put across moves.
        release += mine[len(mine) - give :] if give else []

        if len(mine) < floor:
            want = floor - len(mine)
        elif not short and len(mine) < ceil:
            want = ceil - len(mine)
        else:
            want = 0
        if want and free:
            acquire[connector] = min(want, free)
    ends = [e for x, e in snapshot.nodes.items() if x != node and e > now]
    ends += [r.expires_at for r in snapshot.slots if r.owner != node and not r.is_free(now)]
    return Plan(tuple(release), acquire, min(ends, default=None))
