"""A token bucket: the simulator's TPS limit.

``rate`` tokens per second flow into a bucket holding at most ``burst``; each
submit takes one, and a submit that finds the bucket empty is answered
ESME_RTHROTTLED (SMPP 3.4 §5.1.3: "throttling error, ESME has exceeded
allowed message limits"). A refused submit takes no token, so a client that
keeps retrying does not starve itself further.

Pure code: ``now`` is an argument (seconds, any monotonic clock).
"""

from __future__ import annotations

from typing import Final

__all__ = ["TokenBucket"]

#: Tokens are floats: a client pacing itself at exactly ``rate`` refills
#: 0.1 s * 10/s = 0.99999... of a token; that much rounding still counts as one.
_ROUNDING: Final = 1e-9


class TokenBucket:
    """See the module docstring. Starts full."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not rate > 0 or rate == float("inf"):
            raise ValueError(f"rate must be a finite number > 0, not {rate}")
        if not burst >= 1 or burst == float("inf"):
            raise ValueError(f"burst must be a finite number >= 1, not {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def take(self, now: float) -> bool:
        """Take one token if there is one; False means "over the limit"."""
        elapsed = now - self._at
        if elapsed > 0:  # a clock that steps back adds nothing
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._at = now
        if self._tokens >= 1 - _ROUNDING:
            self._tokens = max(0.0, self._tokens - 1)
            return True
        return False

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (for introspection)."""
        return min(self.burst, self._tokens + max(0.0, now - self._at) * self.rate)
