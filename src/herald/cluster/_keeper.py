"""The lease keeper: one asyncio task that holds this node's share of the slots.

Theory of operation. Every ``renew_every`` (with jitter) the keeper runs one
cycle against the :class:`SlotTable`:

1. renew its registration and every slot it holds (one statement); a slot not
   renewed is lost at once (``on_lost``);
2. read a snapshot and :func:`~herald.cluster.leases.plan` on it;
3. give back what the plan releases (``on_lost`` first, and the closing of
   its bind it returns awaited, ``margin`` at most: the lease was just
   renewed; then the row, only once the bind is closed: a bind still closing
   keeps its row until the lease ends), take what it acquires (``on_gained``
   once the row is ours);
4. while it holds the leadership (slot 0 of :data:`~herald.cluster.leases.LEADER`,
   taken and kept like any slot), start ``on_leader`` with the nodes whose
   registration ended (in a task of its own, one at a time, so slow chores
   never delay a renewal), then forget those nodes. The chores are cancelled
   when the leadership is lost (its deadline, like a slot's).

It wakes earlier when the plan says another node's lease ends sooner (a dead
node's slots are taken just after they free up). Independently of the cycle,
a timer fires at the earliest deadline (last successful renewal sent +
``lease - margin``) and drops every holding past it with ``on_lost``, so a
node whose renewals hang or fail stops sending in time, and its binds are
closed before anyone else can take the slots: ``on_lost``'s closing must end
within :meth:`LeaseKeeper.unbind_within` (half the margin at a deadline; the
dispatcher cuts a connection whose unbind is not answered by then). A cycle that fails
(database unreachable) is logged and retried after half a renewal period.

The node's registration has a deadline of its own, the same (last renewal
sent + ``lease - margin``): past it, the leader may requeue the node's
dispatch claims, so :attr:`LeaseKeeper.alive` turns false and ``on_lapsed``
is called once (the dispatcher then sends none of the messages it claimed
and stops extending their claims) before the leader can act (it sees the
registration ended ``margin`` later at the earliest). A renewal that
succeeds later makes the node alive again: it claims anew.

Callbacks run synchronously in the keeper's task: ``on_gained(h)`` should open
a bind for ``h`` and ``on_lost(h)`` stop sending on it and close it; both
must return quickly (start a task for the slow part; ``on_lost`` may return
it, so that a slot given back is free only once its bind is closed). A sender also asks
:meth:`LeaseKeeper.may_send` before each submit: the timer may be late by the
event loop's latency, the check is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from herald.cluster._pg import SlotTable
from herald.cluster.leases import (
    DEFAULT_SETTINGS,
    LEADER,
    Holding,
    LeaseSettings,
    plan,
    slot_rate,
)

__all__ = ["LeaseKeeper"]

log = logging.getLogger("herald.cluster")

SlotCallback = Callable[[Holding], None]
#: ``on_lost`` may return the closing of the slot's bind (awaited before the
#: slot is handed back; it must end within ``LeaseKeeper.unbind_within``).
LostCallback = Callable[[Holding], Awaitable[Any] | None]
LeaderHook = Callable[[frozenset[str]], Awaitable[None]]

#: Seconds after another node's lease ends before looking again (the server
#: judged it ended at that instant; a hair later it surely has).
_AFTER_END = 0.01
#: Seconds a clean stop may spend handing slots back before giving up (they
#: then free up when their lease ends).
STOP_TIMEOUT = 5.0


def _nothing(_h: Holding) -> None:
    return None


class LeaseKeeper:
    """Acquires, renews and gives back this node's slots of ``binds``
    (connector -> configured binds); see the module docstring.

    ``table``'s lease must be ``settings.lease``. ``on_leader`` (optional) is
    started at each cycle while this node leads and the previous call has
    returned; its errors are logged and it is called again next cycle with
    the same nodes (they are forgotten only after it returned). It is
    cancelled when the leadership's deadline passes; a statement it had
    under way may still finish on the server then, so chores must be
    idempotent (they are single statements or transactions).
    """

    def __init__(
        self,
        table: SlotTable,
        binds: Mapping[str, int],
        settings: LeaseSettings = DEFAULT_SETTINGS,
        *,
        on_gained: SlotCallback = _nothing,
        on_lost: LostCallback = _nothing,
        on_leader: LeaderHook | None = None,
        on_lapsed: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        if table.lease != settings.lease:
            raise ValueError(
                f"the table grants {table.lease} s leases, settings say {settings.lease}"
            )
        self.table = table
        self.node = table.node
        self.binds = dict(binds)
        if LEADER in self.binds:
            raise ValueError(f"{LEADER!r} is the leadership's slot, not a connector")
        self._slots = {**self.binds, LEADER: 1}  # what the table holds for this node
        self.settings = settings
        self._on_gained = on_gained
        self._on_lost = on_lost
        self._on_leader = on_leader
        self._on_lapsed = on_lapsed
        # The registration's deadline (local time; None: not registered yet)
        # and whether on_lapsed was called for the last lapse.
        self._alive_until: float | None = None
        self._lapsed = False
        self._rng = rng or random.Random()
        self._holdings: dict[tuple[str, int], Holding] = {}
        self._task: asyncio.Task[None] | None = None
        self._chores: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # past their deadline, to hand back once their bind is closed
        self._dropped: list[tuple[Holding, asyncio.Future[Any] | None]] = []
        self._giving: set[tuple[str, int]] = set()  # being given back (on_lost under way)

    # --- what senders ask ---

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def holdings(self, connector: str) -> tuple[Holding, ...]:
        """The slots of ``connector`` this node holds, lowest first."""
        return tuple(h for (c, _s), h in sorted(self._holdings.items()) if c == connector)

    def may_send(self, connector: str, slot: int) -> bool:
        """Whether this node may submit on ``slot`` now (ask before each submit)."""
        h = self._holdings.get((connector, slot))
        return h is not None and h.may_send(self._now(), self.settings)

    def unbind_within(self, connector: str, slot: int) -> float:
        """Seconds the closing of ``slot``'s bind may take, asked from ``on_lost``
        (the dispatcher cuts a connection whose unbind is not answered by then):
        ``margin`` for a slot given back (its lease was just renewed, and it
        is released only once the bind is closed), half of it for one lost at
        its deadline or refused (another node may take it ``margin`` later)."""
        if (connector, slot) in self._giving:
            return self.settings.margin
        return self.settings.unbind_within

    @property
    def alive(self) -> bool:
        """Whether this node's registration holds now (its claims are its own:
        ask before extending them; before the first renewal, ``True``)."""
        return self._alive_until is None or self._now() < self._alive_until

    @property
    def leading(self) -> bool:
        """Whether this node leads now: it holds the leadership's slot and may
        act on it (ask before each chore: the deadline holds as for sending)."""
        return self.may_send(LEADER, 0)

    def rate(self, connector: str, tps: float) -> float:
        """This node's share of ``connector``'s ``tps`` now: the slots it may send
        on times their share (:func:`~herald.cluster.leases.slot_rate`)."""
        sending = sum(self.may_send(connector, h.slot) for h in self.holdings(connector))
        return sending * slot_rate(tps, self.binds[connector]) if sending else 0.0

    # --- life cycle ---

    async def start(self) -> None:
        """Create the slot rows for ``binds`` and start the loop."""
        await self.table.sync_slots(self._slots)
        self._task = asyncio.create_task(self._run(), name=f"leases {self.node}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop the loop; ``on_lost`` for every holding; with ``release``, hand
        them back once their binds are closed and unregister, so the others
        take them at once (without, they free up when their leases end, as
        when a node dies)."""
        for task in (self._task, self._chores):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._chores = None
        if self._timer is not None:
            self._timer.cancel()
        closing = [c for key in list(self._holdings) if (c := self._closing(key)) is not None]
        closing += [c for _h, c in self._dropped if c is not None]
        if release:
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    if closing:  # the binds close before the slots are free
                        await asyncio.wait(closing)
                    await self.table.leave()
            except Exception as exc:  # the leases end by themselves
                log.warning("leases: could not hand slots back on stop: %s", exc)

    async def _run(self) -> None:
        while True:
            try:
                wait = await self.cycle()
            except Exception as exc:  # the deadlines stop sending meanwhile
                log.warning("leases: cycle failed, retrying: %s", exc)
                wait = self.settings.renew_every / 2
            await asyncio.sleep(wait)

    # --- one cycle ---

    async def cycle(self) -> float:
        """Renew, plan, release, acquire, lead; the seconds until the next cycle."""
        s = self.settings
        if self._dropped:
            closed = [h for h, c in self._dropped if c is None or c.done()]
            if closed:
                await self.table.release(closed)
            self._dropped = [(h, c) for h, c in self._dropped if c is not None and not c.done()]

        sent = self._now()
        renewing = tuple(self._holdings.values())
        _now, renewed = await self.table.renew(renewing)
        self._alive_until = sent + s.sending_window
        self._lapsed = False
        for h in renewing:
            key = (h.connector, h.slot)
            current = self._holdings.get(key)
            if current is None or current.epoch != h.epoch:
                continue  # dropped by its deadline while the renewal was on its way
            if (h.connector, h.slot, h.epoch) in renewed:
                self._holdings[key] = Holding(h.connector, h.slot, h.epoch, sent)
            else:
                self._closing(key)  # the slot is not ours: close at once

        snap = await self.table.snapshot(self._slots)
        p = plan(snap, self.node, self._slots)
        if p.release:
            giving = [self._holdings[(r.connector, r.slot)] for r in p.release
                      if (r.connector, r.slot) in self._holdings]  # fmt: skip
            self._giving = {(h.connector, h.slot) for h in giving}
            try:
                closing = {key: self._closing(key) for key in self._giving}
            finally:
                self._giving = set()
            waiting = [c for c in closing.values() if c is not None]
            if waiting:
                # The binds close before the slots are free: the node taking one
                # must never bind while this one's session is still open. Each
                # closing ends within margin (and a turn of the loop to close the
                # socket); the rest of the wait is slack for a stalled loop.
                await asyncio.wait(waiting, timeout=s.margin + s.unbind_within)
            closed = [h for h in giving
                      if (c := closing[(h.connector, h.slot)]) is None or c.done()]  # fmt: skip
            if len(closed) < len(giving):  # not renewed either: they lapse
                log.warning("leases: %d binds still closing after %g s; their slots"
                            " free up when their leases end", len(giving) - len(closed), s.margin)
            await self.table.release(closed)
        for connector, count in p.acquire.items():
            sent = self._now()
            for row in await self.table.acquire(connector, count, self._slots[connector]):
                h = Holding(connector, row.slot, row.epoch, sent)
                self._holdings[(connector, row.slot)] = h
                if connector == LEADER:
                    log.info("leases: %s leads the cluster (epoch %d)", self.node, row.epoch)
                else:
                    self._on_gained(h)
        self._rearm()

        ended = frozenset(n for n, ends in snap.nodes.items() if ends <= snap.now)
        if self.leading and self._chores is None and (ended or self._on_leader is not None):
            # Apart from the cycle: slow chores must not delay the renewals.
            self._chores = asyncio.create_task(self._lead(ended), name=f"leader {self.node}")

        wait = s.renew_every * (1 + self._rng.uniform(-s.jitter, s.jitter))
        if p.changes_at is not None:
            wait = min(wait, max(p.changes_at - snap.now, 0.0) + _AFTER_END)
        return wait

    async def _lead(self, ended: frozenset[str]) -> None:
        """The chores, then forget the ended nodes (with no chores too: every
        process start registers a new id, whose row must not stay forever)."""
        try:
            if self._on_leader is not None:
                await self._on_leader(ended)
            if ended:
                await self.table.forget(ended)
        except Exception as exc:  # the chores run again next cycle
            log.warning("leases: leader chores failed: %s", exc)
        finally:
            self._chores = None

    # --- deadlines ---

    def _closing(self, key: tuple[str, int]) -> asyncio.Future[Any] | None:
        """:meth:`_lose`, with the closing of the slot's bind as a future."""
        closing = self._lose(key)
        return None if closing is None else asyncio.ensure_future(closing)

    def _lose(self, key: tuple[str, int]) -> Awaitable[Any] | None:
        h = self._holdings.pop(key)
        if h.connector != LEADER:
            return self._on_lost(h)
        if self._chores is not None:  # no chores past the leadership's deadline
            self._chores.cancel()
        return None

    def _rearm(self) -> None:
        """One timer at the earliest deadline of what is held."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [h.deadline(self.settings) for h in self._holdings.values()]
        if self._alive_until is not None and not self._lapsed:
            deadlines.append(self._alive_until)
        if deadlines:
            self._timer = asyncio.get_running_loop().call_at(min(deadlines), self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = self._now()
        for key, h in list(self._holdings.items()):
            if not h.may_send(now, self.settings):
                log.warning("leases: %s/%d not renewed in time, stopped sending", *key)
                self._dropped.append((h, self._closing(key)))
        if not self._lapsed and not self.alive:
            self._lapsed = True
            log.warning("leases: %s not renewed in time; its claims are the leader's"
                        " to requeue", self.node)  # fmt: skip
            self._on_lapsed()
        self._rearm()
