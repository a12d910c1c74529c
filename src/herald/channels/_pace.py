"""Pacing per sending number, with back-off when the provider says "too fast" (pure).

WhatsApp's Cloud API takes 80 messages a second per business phone number to
start with and answers error 130429 beyond it. herald paces each sending
number with a token bucket (``herald.ratelimit.TokenBucket``: ``rate`` sends a
second, ``burst`` of them at once).

Why the default is *below* the limit: herald's bucket times a send when it lets
it out, the provider counts it when it arrives, and the way between (the
network, a busy event loop) delays some sends more than others. Sends that
left ``J`` seconds apart can arrive together, so at the provider any interval
of ``T`` seconds may hold ``burst + rate * (T + J)`` of them. A provider
bucket of rate ``R`` >= ``rate`` and burst ``B`` takes all of them while
``J <= (B - burst) / rate``; a provider that counts ``L`` per second takes
them while ``burst + rate * (1 + J) <= L``. Pacing at exactly the limit with
the provider's own burst (80/s, 8) leaves no room at all: one send delayed by
a millisecond behind the others meets a 130429. The default, 72/s (90 % of
80) with a burst of 2, leaves 83 ms of spread for both models against 80/s
(with a provider burst of 8), for a tenth less throughput.

When a 130429 comes anyway (a lower limit upstream, another system on the
same number, a spread beyond that), the number pauses: ``backoff`` seconds,
doubled for each 130429 in a row up to ``max_backoff``, and reset by the next
success. Nothing fails on a 130429: the send is simply made again after the
pause.

Time is an argument; the adapter sleeps, this module only says how long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from herald.ratelimit import BucketTable

__all__ = ["DEFAULT_BURST", "DEFAULT_RATE", "MAX_NUMBERS", "PROVIDER_RATE", "PaceSettings",
           "Pacer"]

#: Cloud API: the starting throughput of one business phone number, messages a second.
PROVIDER_RATE: Final = 80.0
#: herald's pace by default: 90 % of the provider's rate (see the module docstring).
DEFAULT_RATE: Final = 72.0
#: Sends let out at once by default: 2 (a burst of 8, the provider's tenth of a
#: second, left no room for sends that arrive bunched).
DEFAULT_BURST: Final = 2.0
#: Sending numbers remembered at once (least recently used forgotten first).
MAX_NUMBERS: Final = 10_000


@dataclass(frozen=True, slots=True)
class PaceSettings:
    """``rate`` sends a second per number, ``burst`` of them at once; after a
    throttle answer the number pauses ``backoff`` s, doubled per throttle in a
    row, at most ``max_backoff`` s."""

    rate: float = DEFAULT_RATE
    burst: float = DEFAULT_BURST
    backoff: float = 0.5
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError("rate must be positive and burst at least 1")
        if not 0 < self.backoff <= self.max_backoff:
            raise ValueError("backoff must be positive and at most max_backoff")


class Pacer:
    """Which sending number may send when (see the module docstring)."""

    def __init__(self, settings: PaceSettings | None = None) -> None:
        self.settings = settings or PaceSettings()
        self._buckets = BucketTable(MAX_NUMBERS)
        self._paused_until: dict[str, float] = {}
        self._streak: dict[str, int] = {}

    def take(self, number: str, now: float) -> float:
        """Take a send slot for ``number`` (return 0.0), or return the seconds to
        wait before asking again (nothing taken)."""
        pause = self._paused_until.get(number, 0.0) - now
        if pause > 0:
            return pause
        s = self.settings
        return self._buckets.bucket(number, s.rate, s.burst, now).take(1, now)

    def throttled(self, number: str, now: float) -> float:
        """A send from ``number`` was answered "too fast": pause the number; return the pause."""
        streak = self._streak.get(number, 0)
        pause = min(self.settings.max_backoff, self.settings.backoff * float(2 ** min(streak, 30)))
        self._streak[number] = streak + 1
        self._paused_until[number] = max(self._paused_until.get(number, 0.0), now + pause)
        if len(self._paused_until) > MAX_NUMBERS:
            self._forget(now)
        return pause

    def succeeded(self, number: str) -> None:
        """A send from ``number`` was taken: the next throttle starts from ``backoff`` again."""
        self._streak.pop(number, None)

    def _forget(self, now: float) -> None:
        for number in [n for n, until in self._paused_until.items() if until <= now]:
            del self._paused_until[number]
            self._streak.pop(number, None)
