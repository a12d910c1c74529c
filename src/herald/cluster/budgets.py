"""Accounts' message rates across nodes: each node draws slices of one shared bucket.

Theory of operation
-------------------
On SQLite herald is one process and an account's rate is a token bucket in
its memory (:class:`LocalBudgets`, ``herald.ratelimit``). Nodes sharing one
PostgreSQL database share one bucket per account and interface, a row of the
store's :class:`~herald.store.TokenLedger`. Asking the database for every
message would add a round trip to each; so a node draws a *slice* of the
bucket at once (:data:`SLICE_SECONDS` of the account's rate, at least what the
message needs) and spends it from memory (:class:`SharedBudgets`):

- A message the node's slice covers is admitted with no round trip. One that
  it does not cover asks the store for the shortfall plus a slice (one
  upsert): granted, or refused with the wait the shared bucket says. At full
  rate a node so asks about ``1 / SLICE_SECONDS`` times a second per account,
  whatever the rate, and at most once per message below 10 messages a second.
- Every token spent anywhere was taken from the one shared bucket, so the
  cluster never admits more than one bucket would: ``capacity`` at once and
  ``rate`` per second after. The price of the slices: a node may be refused
  while another holds tokens it has not spent (at most a slice each), and a
  slice a node does not spend within :data:`HOLD_SECONDS` is dropped (it
  counted against the account), so a node cannot save tokens up for a burst.
- A refusal is remembered for its wait: a client sending over its rate makes
  the node ask the store at most once per wait, not once per message.
- Refunds (a message refused after it was charged) go back into the node's
  slice.
- If the store cannot be asked (it is away), the node falls back to a bucket
  of its own at the account's whole rate, and logs it once: the store's error
  is the intake's to answer (503), not the rate limit's.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final, Protocol

from herald.ratelimit import BucketTable
from herald.store import StoreError, TokenLedger

__all__ = ["HOLD_SECONDS", "SLICE_SECONDS", "Budgets", "LocalBudgets", "SharedBudgets",
           "budgets_for"]

log = logging.getLogger("herald.cluster")

#: A node draws this many seconds of an account's rate from the shared bucket at once.
SLICE_SECONDS: Final = 0.1
#: A drawn slice not spent within this many seconds is dropped.
HOLD_SECONDS: Final = 1.0


class Budgets(Protocol):
    """Token buckets per key (an account): see :mod:`herald.ratelimit` for the
    semantics of ``take`` and ``give``."""

    def take_now(self, key: Hashable, rate: float, capacity: float, cost: float,
                 now: float) -> float | None:  # fmt: skip
        """Admit ``cost`` from memory (0.0), refuse it (seconds to wait), or
        ``None``: only :meth:`take` can tell."""
        ...

    async def take(self, key: Hashable, rate: float, capacity: float, cost: float,
                   now: float) -> float:  # fmt: skip
        """Admit ``cost`` (0.0) or refuse it (seconds to wait)."""
        ...

    def give(self, key: Hashable, rate: float, capacity: float, cost: float,
             now: float) -> None:  # fmt: skip
        """Give back ``cost`` taken for what was then refused."""
        ...


class LocalBudgets:
    """One process's buckets (SQLite: herald is one process)."""

    def __init__(self, max_keys: int) -> None:
        self._buckets = BucketTable(max_keys)

    def take_now(self, key: Hashable, rate: float, capacity: float, cost: float,
                 now: float) -> float:  # fmt: skip
        return self._buckets.bucket(key, rate, capacity, now).take(cost, now)

    async def take(self, key: Hashable, rate: float, capacity: float, cost: float,
                   now: float) -> float:  # fmt: skip
        return self.take_now(key, rate, capacity, cost, now)

    def give(self, key: Hashable, rate: float, capacity: float, cost: float,
             now: float) -> None:  # fmt: skip
        self._buckets.bucket(key, rate, capacity, now).give(cost)


class _Slice:
    __slots__ = ("asking", "refused_until", "tokens", "until")

    def __init__(self) -> None:
        self.asking: asyncio.Event | None = None  # set when the store has answered
        self.tokens = 0.0  # drawn from the shared bucket, not spent
        self.until = 0.0  # when they are dropped
        self.refused_until = 0.0  # the shared bucket said "wait" until then


class SharedBudgets:
    """Slices of the buckets in ``ledger`` under ``scope`` (see the module docstring)."""

    def __init__(self, ledger: TokenLedger, scope: str, max_keys: int, *,
                 slice_seconds: float = SLICE_SECONDS,
                 hold_seconds: float = HOLD_SECONDS) -> None:  # fmt: skip
        self._ledger = ledger
        self._scope = scope
        self._max = max_keys
        self._slice_seconds = slice_seconds
        self._hold = hold_seconds
        self._slices: OrderedDict[Hashable, _Slice] = OrderedDict()
        self._fallback = LocalBudgets(max_keys)
        self._failing = False
        #: Round trips to the store (for the benchmark and the tests).
        self.asked = 0

    def take_now(self, key: Hashable, rate: float, capacity: float, cost: float,
                 now: float) -> float | None:  # fmt: skip
        s = self._slices.get(key)
        if s is None:
            return None
        if now >= s.until:
            s.tokens = 0.0  # unspent: dropped (the shared bucket counted them)
        if s.tokens >= cost:
            s.tokens -= cost
            return 0.0
        if now < s.refused_until:
            return s.refused_until - now
        return None

    async def take(self, key: Hashable, rate: float, capacity: float, cost: float,
                   now: float) -> float:  # fmt: skip
        while True:  # bounded: each turn answers, or waits for an ask that ended
            wait = self.take_now(key, rate, capacity, cost, now)
            if wait is not None:
                return wait
            s = self._slice(key)
            if s.asking is None:
                break
            await s.asking.wait()  # one ask per key at a time: a burst of takes on a
            # node without a slice draws one slice, then spends it, not one each
        s.asking = asyncio.Event()
        try:
            return await self._ask(s, key, rate, capacity, cost, now)
        finally:
            s.asking.set()
            s.asking = None

    async def _ask(self, s: _Slice, key: Hashable, rate: float, capacity: float, cost: float,
                   now: float) -> float:  # fmt: skip
        need = max(0.0, cost - s.tokens)
        want = need + max(1.0, min(capacity, rate * self._slice_seconds))
        self.asked += 1
        try:
            grant = await self._ledger.take_tokens(self._scope, str(key), rate, capacity,
                                                   need, want, now)  # fmt: skip
        except StoreError as exc:
            if not self._failing:
                log.warning("rate limits of %s are per node while the store fails (%s)",
                            self._scope, exc)  # fmt: skip
                self._failing = True
            return self._fallback.take_now(key, rate, capacity, cost, now)
        self._failing = False
        if grant.granted:
            s.tokens += grant.granted - cost  # granted >= need: never below 0
            s.until = now + self._hold
            s.refused_until = 0.0
            return 0.0
        wait = grant.wait(need, rate, capacity)
        s.refused_until = now + wait
        return wait

    def give(self, key: Hashable, rate: float, capacity: float, cost: float,
             now: float) -> None:  # fmt: skip
        s = self._slices.get(key)
        if s is not None and now < s.until:
            s.tokens += cost

    def _slice(self, key: Hashable) -> _Slice:
        s = self._slices.get(key)
        if s is None:
            s = self._slices[key] = _Slice()
            if len(self._slices) > self._max:
                self._slices.popitem(last=False)
        else:
            self._slices.move_to_end(key)
        return s


def budgets_for(store: object, scope: str, max_keys: int) -> Budgets:
    """Shared buckets on a store that has them (PostgreSQL), else this process's."""
    if isinstance(store, TokenLedger):
        return SharedBudgets(store, scope, max_keys)
    return LocalBudgets(max_keys)
