"""Values of the shared token buckets (:class:`~herald.store.TokenLedger`): what
a take was granted, and the bucket as it is after it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenGrant"]


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """``granted`` tokens (0: refused); ``tokens`` left in the bucket after the take
    (negative: in debt); ``failed_at``: the key's last failure noted, if any."""

    granted: float
    tokens: float
    failed_at: float | None = None

    def wait(self, need: float, rate: float, capacity: float) -> float:
        """Seconds until a refused take of ``need`` would be granted (0: now)."""
        short = min(need, capacity) - self.tokens
        return 0.0 if self.granted or short <= 0 else short / rate
