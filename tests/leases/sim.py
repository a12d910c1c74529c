"""A simulated cluster for the lease rules: one table, N nodes, one real clock.

The table applies :func:`acquire_slot`, :func:`renew_slot` and
:func:`release_slot` with its own clock (real time ``t``), as the SQL does
with the server's. Each node runs the keeper's cycle on its own clock (any
offset, a rate within bounds) with delays between a statement being sent and
it running: renew every slot it holds and its registration, read a snapshot,
release what :func:`plan` says, acquire what it says. Nodes join, crash, leave
cleanly or stall. ``check`` asserts the invariants at any instant.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from herald.cluster.leases import (
    Holding,
    LeaseSettings,
    Slot,
    Snapshot,
    acquire_slot,
    fair_share,
    plan,
    release_slot,
    renew_slot,
    slot_rate,
)


@dataclass
class Table:
    """The shared table and node registry, on the real clock."""

    settings: LeaseSettings
    binds: Mapping[str, int]
    rows: dict[tuple[str, int], Slot] = field(default_factory=dict)
    nodes: dict[str, float] = field(default_factory=dict)
    #: (connector, slot, epoch) -> the one node ever granted it
    granted: dict[tuple[str, int, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for connector, n in self.binds.items():
            for s in range(n):
                self.rows[(connector, s)] = Slot(connector, s)

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(now, dict(self.nodes), tuple(self.rows.values()))

    def heartbeat(self, node: str, now: float) -> None:
        self.nodes[node] = now + self.settings.lease

    def renew(self, node: str, h: Holding, now: float) -> bool:
        row = renew_slot(self.rows[(h.connector, h.slot)], node, h.epoch, now, self.settings.lease)
        if row is not None:
            self.rows[(h.connector, h.slot)] = row
        return row is not None

    def release(self, node: str, h: Holding) -> None:
        row = release_slot(self.rows[(h.connector, h.slot)], node, h.epoch)
        if row is not None:
            self.rows[(h.connector, h.slot)] = row

    def acquire(self, node: str, connector: str, count: int, now: float) -> list[Slot]:
        """Up to ``count`` free usable slots, lowest first (SKIP LOCKED's order)."""
        got: list[Slot] = []
        for s in range(self.binds[connector]):
            if len(got) == count:
                break
            row = acquire_slot(self.rows[(connector, s)], node, now, self.settings.lease)
            if row is not None:
                key = (connector, s, row.epoch)
                assert key not in self.granted, f"epoch {key} granted twice"
                self.granted[key] = node
                self.rows[(connector, s)] = row
                got.append(row)
        return got


@dataclass
class Node:
    name: str
    offset: float  # local clock = offset + rate * t
    rate: float
    holdings: dict[tuple[str, int], Holding] = field(default_factory=dict)
    crashed: bool = False
    stalled_until: float = -math.inf  # real time before which it runs no cycle

    def local(self, t: float) -> float:
        return self.offset + self.rate * t

    def real(self, local_delay: float) -> float:
        return local_delay / self.rate


class Cluster:
    """Nodes and the table, driven by a bounded event queue."""

    def __init__(
        self,
        settings: LeaseSettings,
        binds: Mapping[str, int],
        tps: Mapping[str, float],
        rng: random.Random,
        *,
        max_delay: float,
        max_skew: float,
    ) -> None:
        self.settings = settings
        self.binds = dict(binds)
        self.tps = dict(tps)
        self.table = Table(settings, binds)
        self.rng = rng
        self.max_delay = max_delay
        self.max_skew = max_skew
        self.nodes: dict[str, Node] = {}
        self.t = 0.0
        self._queue: list[tuple[float, int, str, str, object]] = []
        self._seq = itertools.count()
        self._names = itertools.count()

    # --- events ---

    def _at(self, t: float, kind: str, node: str = "", data: object = None) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), kind, node, data))

    def join(self, name: str | None = None) -> str:
        name = name or f"n{next(self._names):03d}-{self.rng.randrange(1000):03d}"
        skew = self.rng.uniform(-self.max_skew, self.max_skew)
        self.nodes[name] = Node(name, self.rng.uniform(-1e6, 1e6), 1 + skew)
        self._at(self.t, "cycle", name)
        return name

    def crash(self, name: str) -> None:
        self.nodes[name].crashed = True

    def leave(self, name: str) -> None:
        """A clean stop: release everything, unregister."""
        node = self.nodes[name]
        for h in node.holdings.values():
            self.table.release(name, h)
        node.holdings.clear()
        self.table.nodes.pop(name, None)
        node.crashed = True

    def stall(self, name: str, seconds: float) -> None:
        self.nodes[name].stalled_until = self.t + seconds

    def run_until(self, end: float, check_every: float) -> None:
        """Process events up to real time ``end``, checking the invariants after
        each and every ``check_every`` seconds in between."""
        t = self.t
        while t < end:
            t += check_every
            self._at(min(t, end), "check")
        steps = 0
        while self._queue and self._queue[0][0] <= end:
            steps += 1
            assert steps < 1_000_000, "runaway simulation"
            t, _, kind, name, data = heapq.heappop(self._queue)
            self.t = t
            if kind != "check":
                self._step(kind, self.nodes[name], data)
            self.check()
        self.t = end

    def _delay(self) -> float:
        return self.rng.uniform(0, self.max_delay)

    def _step(self, kind: str, node: Node, data: object) -> None:
        if node.crashed:
            return
        s = self.settings
        if kind == "cycle":
            if self.t < node.stalled_until:
                self._at(node.stalled_until, "cycle", node.name)
                return
            sent = node.local(self.t)
            # Past its deadline a holding is dropped: stop sending, hand it back.
            for key, h in list(node.holdings.items()):
                if not h.may_send(sent, s):
                    del node.holdings[key]
                    self.table.release(node.name, h)
            renewing = tuple(node.holdings.values())
            self._at(self.t + self._delay(), "renew", node.name, (sent, renewing))
        elif kind == "renew":
            assert isinstance(data, tuple)
            sent, renewing = data
            self.table.heartbeat(node.name, self.t)
            for h in renewing:
                ok = self.table.renew(node.name, h, self.t)
                key = (h.connector, h.slot)
                current = node.holdings.get(key)
                if current is None or current.epoch != h.epoch:
                    continue  # dropped or re-acquired while the renewal was on its way
                if ok:
                    node.holdings[key] = Holding(h.connector, h.slot, h.epoch, sent)
                else:
                    del node.holdings[key]
            self._at(self.t + self._delay(), "plan", node.name, node.local(self.t))
        elif kind == "plan":
            assert isinstance(data, float)
            snap = self.table.snapshot(self.t)
            p = plan(snap, node.name, self.binds)
            for row in p.release:
                h = node.holdings.pop((row.connector, row.slot), None)
                if h is not None:
                    self.table.release(node.name, h)
            if p.acquire:
                self._at(self.t + self._delay(), "acquire", node.name, (data, dict(p.acquire)))
            jitter = self.rng.uniform(-s.jitter, s.jitter)
            wait = s.renew_every * (1 + jitter)
            if p.changes_at is not None:
                wait = min(wait, max(p.changes_at - snap.now, 0.0) + 0.01)
            self._at(self.t + node.real(wait), "cycle", node.name)
        elif kind == "acquire":
            assert isinstance(data, tuple)
            sent, wants = data
            for connector, count in wants.items():
                for row in self.table.acquire(node.name, connector, count, self.t):
                    node.holdings[(connector, row.slot)] = Holding(
                        connector, row.slot, row.epoch, sent
                    )

    # --- invariants ---

    def senders(self) -> dict[tuple[str, int], list[str]]:
        """(connector, slot) -> the nodes that may send on it now."""
        out: dict[tuple[str, int], list[str]] = {}
        for node in self.nodes.values():
            if node.crashed:
                continue
            now = node.local(self.t)
            for key, h in node.holdings.items():
                if h.may_send(now, self.settings):
                    out.setdefault(key, []).append(node.name)
        return out

    def check(self) -> None:
        senders = self.senders()
        for (connector, s), names in senders.items():
            assert len(names) == 1, f"{connector}/{s} has senders {names} at t={self.t}"
            row = self.table.rows[(connector, s)]
            h = self.nodes[names[0]].holdings[(connector, s)]
            # The sender is the table's owner at its epoch, and its lease runs.
            assert (row.owner, row.epoch) == (names[0], h.epoch), (row, h)
            assert row.expires_at > self.t, (row, self.t)
            assert s < self.binds[connector]
        for connector, n in self.binds.items():
            binds = [k for k in senders if k[0] == connector]
            assert len(binds) <= n
            rate = math.fsum(slot_rate(self.tps[connector], n) for _ in binds)
            assert rate <= self.tps[connector] * (1 + 1e-9)

    def live(self) -> list[str]:
        return sorted(n for n, node in self.nodes.items() if not node.crashed)

    def held(self, connector: str) -> dict[str, int]:
        """Slots of ``connector`` each live node holds and may send on."""
        counts = dict.fromkeys(self.live(), 0)
        for (c, _s), names in self.senders().items():
            if c == connector:
                counts[names[0]] += 1
        return counts

    def assert_fair(self) -> None:
        live = self.live()
        if not live:
            return
        for connector, n in self.binds.items():
            counts = self.held(connector)
            floor, ceil = fair_share(n, len(live))
            assert sum(counts.values()) == n, (connector, counts)
            assert all(floor <= c <= ceil for c in counts.values()), (connector, counts)
