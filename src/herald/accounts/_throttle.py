"""Failed logins: who may try again, whose tries are suspect, who gets argon2 first.

Theory of operation
-------------------
A wrong secret costs an argon2 verification (about 100 ms of a core, see
``_service``), and the hashing threads are shared by every login on both
interfaces. Two things keep failed logins from delaying valid ones:

- :class:`FailedLogins` counts failures per key (a client address, an SMPP
  system_id) in a token bucket: ``burst`` failures at once, then ``rate`` per
  second. A login holds a token while it is verified and gives it back if it
  was right; an empty bucket is a lockout, answered without any hashing. It
  also remembers when each key last failed: a login from a key that failed in
  the last ``suspect_for`` seconds is *suspect*.
- :class:`HashLanes` schedules verifications onto the hashing threads. A
  suspect one runs only while no other waits, and at most ``suspect_slots`` at
  once; at most ``max_suspect_waiting`` wait, the rest are refused at once
  (:class:`LoginsBusy`). A valid client's first login is not suspect, so it
  waits for at most the suspect verifications already running, not for a
  queue of them.

A flood from many addresses still gets one unsuspected try per address per
``suspect_for``; that bounds, not removes, the work it causes. Both tables
are bounded (least recently used keys forgotten first).

On PostgreSQL the nodes share the failure buckets (``FailedLogins(ledger=)``):
a login about to be verified holds a token of the key's bucket in the store
too, so one address or system_id has ``burst`` unverified logins in flight
across the nodes, then ``rate`` failures per second, wherever it tries. The
hashing lanes stay per node: the argon2 threads they share are each node's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Final

from herald.accounts._credentials import AccountsError
from herald.ratelimit import BucketTable, TokenBucket
from herald.store import StoreError, TokenLedger

__all__ = ["SUSPECT_SECONDS", "FailedLogins", "HashLanes", "LoginsBusy", "RecentKeys"]

#: A key that failed to log in this long ago is no longer suspect.
SUSPECT_SECONDS: Final = 600.0
#: Keys remembered at most per table.
MAX_KEYS: Final = 10_000
#: Seconds between sweeps of the shared buckets no longer needed (full, no recent failure).
FORGET_EVERY: Final = 600.0

log = logging.getLogger("herald.accounts")


class LoginsBusy(AccountsError):
    """Too many suspect logins wait for verification; refused without hashing.
    Answer 429 (HTTP) or ESME_RBINDFAIL (SMPP)."""

    http_status = 429


class RecentKeys:
    """Keys seen within the last ``ttl`` seconds (at most ``max_keys``, LRU)."""

    def __init__(self, ttl: float, max_keys: int = MAX_KEYS) -> None:
        self.ttl = ttl
        self._seen: OrderedDict[Hashable, float] = OrderedDict()
        self._max = max_keys

    def note(self, key: Hashable, now: float) -> None:
        _remember(self._seen, key, now, self._max)

    def recent(self, key: Hashable, now: float) -> bool:
        seen = self._seen.get(key)
        return seen is not None and now - seen < self.ttl


class FailedLogins:
    """Failures per key: a token bucket (the lockout) and the last one's time.

    With a ``ledger`` (the PostgreSQL store, whose nodes share it), a login about
    to be verified also holds a token of the key's bucket there, under
    ``scope``, and a failure is noted there (:meth:`shared_take`,
    :meth:`shared_settle`): a guess at one node counts on every node, and a
    key that failed on another node lately is suspect here. The bucket in
    memory stays the check of every request (no round trip); a lockout the
    shared bucket answers is copied into it. Should the store fail, the
    throttle is this process's alone until it answers again."""

    def __init__(self, rate: float, burst: float, *, suspect_for: float = SUSPECT_SECONDS,
                 max_keys: int = MAX_KEYS, ledger: TokenLedger | None = None,
                 scope: str = "logins") -> None:  # fmt: skip
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._buckets = BucketTable(max_keys)
        self._last = RecentKeys(suspect_for, max_keys)
        self._quiet: OrderedDict[Hashable, float] = OrderedDict()
        self._max = max_keys
        self._ledger = ledger
        self._scope = scope
        self._forgotten = float("-inf")

    @property
    def shared(self) -> bool:
        """Whether the nodes share the failures (a ledger was given)."""
        return self._ledger is not None

    async def shared_take(self, key: Hashable, epoch: float, now: float) -> float:
        """Hold a token of ``key``'s shared bucket for a login about to be verified:
        0.0 (held, or no ledger), or the seconds the key is locked out for across
        the nodes (nothing held; the bucket here then says so too). ``epoch``:
        the wall clock the nodes share; ``now``: this table's clock."""
        if self._ledger is None:
            return 0.0
        try:
            grant = await self._ledger.take_tokens(self._scope, str(key), self.rate, self.burst,
                                                   1, 1, epoch)  # fmt: skip
            if epoch - self._forgotten > FORGET_EVERY:
                self._forgotten = epoch
                await self._ledger.forget_tokens(epoch - self._last.ttl)
        except StoreError as exc:
            log.warning("failed logins are counted per node while the store fails (%s)", exc)
            return 0.0
        if grant.failed_at is not None and epoch - grant.failed_at < self._last.ttl:
            self._last.note(key, now)  # failed on some node lately: suspect here too
        if grant.granted:
            return 0.0
        bucket = self.bucket(key, now)
        bucket.tokens = min(bucket.tokens, grant.tokens)
        return grant.wait(1, self.rate, self.burst)

    async def shared_settle(self, key: Hashable, epoch: float, *, failed: bool) -> None:
        """End a :meth:`shared_take` that held a token: keep it and note the failure
        at ``epoch`` (``failed``), or give it back."""
        if self._ledger is None:
            return
        try:
            await self._ledger.settle_tokens(self._scope, str(key), 0 if failed else 1,
                                             epoch if failed else None)  # fmt: skip
        except StoreError as exc:
            log.warning("a failed login could not be counted across the nodes (%s)", exc)

    def bucket(self, key: Hashable, now: float) -> TokenBucket:
        """The key's failure budget: take a token before verifying, give it back on success."""
        return self._buckets.bucket(key, self.rate, self.burst, now)

    def failed(self, key: Hashable, now: float) -> None:
        """Note a failure of ``key`` (its token stays taken)."""
        self._last.note(key, now)

    def suspect(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` failed within the last ``suspect_for`` seconds."""
        return self._last.recent(key, now)

    def first_refusal(self, key: Hashable, wait: float, now: float) -> bool:
        """Whether a lockout of ``key`` for ``wait`` seconds is news (log it once
        per lockout, not once per refused try)."""
        if now < self._quiet.get(key, -1.0):
            return False
        _remember(self._quiet, key, now + wait, self._max)
        return True


def _remember(table: OrderedDict[Hashable, float], key: Hashable, value: float,
              limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    if len(table) > limit:
        table.popitem(last=False)


class HashLanes:
    """``slots`` verifications at once, suspect ones last (see the module docstring)."""

    def __init__(self, slots: int, *, suspect_slots: int = 1,
                 max_suspect_waiting: int = 16) -> None:
        if slots < 1 or not 1 <= suspect_slots <= slots or max_suspect_waiting < 0:
            raise ValueError("need 1 <= suspect_slots <= slots and max_suspect_waiting >= 0")
        self._free = slots
        self._suspect_slots = suspect_slots
        self._max_suspect_waiting = max_suspect_waiting
        self._suspect_running = 0
        self._clean: deque[asyncio.Future[None]] = deque()
        self._suspect: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> tuple[int, int]:
        """Verifications waiting: (clean, suspect)."""
        return (sum(not f.done() for f in self._clean),
                sum(not f.done() for f in self._suspect))

    async def acquire(self, *, suspect: bool) -> None:
        """Wait for a slot; raises :class:`LoginsBusy` if too many suspects wait."""
        if suspect:
            if self._free and not self._clean and self._suspect_running < self._suspect_slots:
                self._free -= 1
                self._suspect_running += 1
                return
            if len(self._suspect) >= self._max_suspect_waiting:
                raise LoginsBusy("too many logins from failing clients wait for verification")
            queue = self._suspect
        else:
            if self._free and not self._clean:
                self._free -= 1
                return
            queue = self._clean
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(suspect=suspect)  # granted, then cancelled: pass it on
            elif waiter in queue:  # (a release may have dropped it already)
                queue.remove(waiter)
            raise

    def release(self, *, suspect: bool) -> None:
        self._free += 1
        if suspect:
            self._suspect_running -= 1
        self._grant()

    def _grant(self) -> None:
        while self._free:
            if self._clean:
                waiter = self._clean.popleft()
                if waiter.done():
                    continue
                self._free -= 1
                waiter.set_result(None)
            elif self._suspect and self._suspect_running < self._suspect_slots:
                waiter = self._suspect.popleft()
                if waiter.done():
                    continue
                self._free -= 1
                self._suspect_running += 1
                waiter.set_result(None)
            else:
                return
