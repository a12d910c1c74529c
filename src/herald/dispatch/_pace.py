"""Pacing: the token bucket a connector's binds share, and capped exponential backoff (pure).

Time is an argument (``now``, seconds on any monotonic clock), so both are
tested with tables of ticks.

Token bucket
------------
Tokens accrue at ``rate`` per second up to ``capacity``; a submit takes one.
``take(now)`` answers 0 (go) or how long to wait for the next token. The
long-run rate is exactly ``rate`` as long as the caller comes back before the
bucket is full: a sleep that overshoots (the event loop wakes a little late)
leaves the surplus in the bucket instead of losing it. That is why the
capacity is never below :data:`MIN_CAPACITY` tokens, and why it grows with the
rate (:data:`BURST_SECONDS` of traffic): at 5,000/s one event-loop wake-up
must cover several submits. A new bucket holds one token, so a measurement
that starts with the first submit is not inflated by a full bucket.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["BURST_SECONDS", "MIN_CAPACITY", "UNLIMITED_TOKENS", "Backoff", "TokenBucket"]

#: Tokens the bucket holds at most, in seconds of the configured rate. Upstream
#: TPS limits are enforced over windows of a second or more; a 50 ms burst at
#: the configured rate never exceeds them.
BURST_SECONDS: Final = 0.05
#: At least two tokens, so one late wake-up (up to a whole token interval)
#: costs no throughput; see the module docstring.
MIN_CAPACITY: Final = 2.0
#: Float accrual (rate x elapsed) misses a whole token by ~1e-15 at exact
#: intervals; without this slack the caller would sleep for femtoseconds.
_EPSILON: Final = 1e-9
#: What :meth:`TokenBucket.available` says without a rate limit: more than any
#: window or queue, small enough to count with.
UNLIMITED_TOKENS: Final = 1 << 30


class TokenBucket:
    """``rate`` tokens per second, shared by every bind of a connector."""

    __slots__ = ("_last", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, now: float, *, capacity: float | None = None) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = rate
        self.capacity = max(MIN_CAPACITY, rate * BURST_SECONDS) if capacity is None else capacity
        if self.capacity < 1:
            raise ValueError("capacity must be at least one token")
        self._tokens = 1.0
        self._last = now

    @property
    def unlimited(self) -> bool:
        """No rate at all (``tps = "unlimited"``): every take succeeds."""
        return self.rate == math.inf

    def _refill(self, now: float) -> float:
        if self.unlimited:
            return math.inf
        if now > self._last:  # a clock that steps back adds nothing
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
        return self._tokens

    def set_rate(self, rate: float, now: float) -> None:
        """Change the rate from ``now`` on (what was earned until then is kept,
        up to the new capacity)."""
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self._refill(now)
        self.rate = rate
        self.capacity = max(MIN_CAPACITY, rate * BURST_SECONDS)
        self._tokens = min(self._tokens, self.capacity)
        self._last = now

    def take(self, now: float) -> float:
        """Take a token and return 0, or return the seconds until one is there."""
        tokens = self._refill(now)
        if self.unlimited:
            return 0.0
        if tokens >= 1.0 - _EPSILON:
            self._tokens = max(0.0, tokens - 1.0)
            return 0.0
        return (1.0 - tokens) / self.rate

    def available(self, now: float) -> int:
        """Whole tokens there now (what may be sent without waiting)."""
        if self.unlimited:
            return UNLIMITED_TOKENS
        return int(self._refill(now) + _EPSILON)


class Backoff:
    """Delays ``initial``, ``initial * factor``, … capped at ``cap``; ``reset`` starts over."""

    __slots__ = ("_next", "cap", "factor", "initial")

    def __init__(self, initial: float, cap: float, factor: float = 2.0) -> None:
        if not (0 < initial <= cap and factor >= 1):
            raise ValueError("need 0 < initial <= cap and factor >= 1")
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, delay * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial

    @staticmethod
    def delay(attempt: int, initial: float, cap: float, factor: float = 2.0) -> float:
        """The delay before retry number ``attempt`` (1-based), without state."""
        if attempt <= 1:
            return min(initial, cap)
        # Bounded exponent: past 64 doublings every float delay is at the cap.
        return min(cap, initial * factor ** min(attempt - 1, 64))
