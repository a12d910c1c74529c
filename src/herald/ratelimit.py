"""Token buckets, in memory, with time as an argument.

A bucket holds up to ``capacity`` tokens and refills at ``rate`` tokens per
second. :meth:`TokenBucket.take` admits a cost when the bucket holds at least
``min(cost, capacity)`` tokens and then subtracts the whole cost, which may
leave the bucket in debt: a batch larger than the burst is admitted once the
bucket is full and the account then waits until the debt is repaid. The long
run rate therefore never exceeds ``rate`` while no request is refused
forever for being larger than the burst.

:class:`BucketTable` keeps one bucket per key (account id, client address)
in a bounded table: the least recently used key is forgotten first, so a
flood of distinct keys costs bounded memory.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable
from typing import Final

__all__ = ["BucketTable", "TokenBucket", "retry_after"]

#: Retry-After is whole seconds (RFC 9110 §10.2.3); never tell a client 0.
MIN_RETRY_AFTER: Final = 1


def retry_after(wait: float) -> int:
    """Whole seconds to put in a Retry-After header for a wait of ``wait`` seconds."""
    return max(MIN_RETRY_AFTER, math.ceil(wait))


class TokenBucket:
    """``capacity`` tokens refilled at ``rate`` per second; starts full."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if not (rate > 0 and capacity > 0):
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def _refill(self, now: float) -> None:
        # A clock that steps back refills nothing rather than draining the bucket.
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.stamp = now

    def wait(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` would be admitted (0: now); takes nothing."""
        self._refill(now)
        needed = min(cost, self.capacity)
        return 0.0 if self.tokens >= needed else (needed - self.tokens) / self.rate

    def take(self, cost: float, now: float) -> float:
        """Admit ``cost`` (return 0.0) or refuse it (return the seconds to wait)."""
        wait = self.wait(cost, now)
        if wait == 0.0:
            self.tokens -= cost
        return wait

    def give(self, cost: float) -> None:
        """Return tokens taken for work that turned out not to count."""
        self.tokens = min(self.capacity, self.tokens + cost)

    def configure(self, rate: float, capacity: float) -> None:
        """Change the rate (an account's limit was edited); tokens are kept."""
        if not (rate > 0 and capacity > 0):
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self.tokens = min(self.tokens, capacity)


class BucketTable:
    """One :class:`TokenBucket` per key, at most ``max_keys`` of them (LRU)."""

    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be positive")
        self._max = max_keys
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def bucket(self, key: Hashable, rate: float, capacity: float, now: float) -> TokenBucket:
        """The key's bucket (created full if unknown), configured with ``rate``."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(rate, capacity, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            if bucket.rate != rate or bucket.capacity != capacity:
                bucket.configure(rate, capacity)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)
