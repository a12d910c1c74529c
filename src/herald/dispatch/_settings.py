"""Dispatch's tuning knobs: one frozen value, every field with a unit and a reason."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DispatchSettings"]


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """Every field has a working default; times are seconds.

    Claiming and leases
    - ``lease``: how long a claim holds a message. Dispatch extends the leases
      of what it still holds every ``lease / 4``, so the value only decides how
      soon a *crashed* herald's in-flight messages are claimed again.
    - ``poll_interval``: the claim loop's sleep when ``wake()`` is not called
      (scheduled messages, reschedules coming due).
    - ``queue_seconds``: each connector is given about this many seconds of
      its TPS at once (and never less than two windows per bind): enough to
      keep the binds busy, short enough that nothing waits in memory long.
    - ``max_claim``: messages per ``claim`` call at most.

    Retries
    - ``retry_initial`` / ``retry_max``: backoff between transient retries of a
      part on the same connector; ``retries_per_connector`` of them, then the
      route's next connector.
    - ``handback_initial`` / ``handback_max``: when no connector of a route can
      take a message now (all down, or all failed transiently), it goes back to
      the store for ``handback_initial * 2**(n - 1)`` seconds, capped; ``n``
      counts failed tries (all failed transiently) or claims (all down). A
      connector whose queue is full hands it back for ``handback_initial``.
    - ``max_transient_claims``: failed tries (claims that ended with every
      connector of the route failing transiently) after which the message ends
      ``failed`` (it would otherwise wait for its validity to end). Hand-backs
      for throttling, a full queue, a stop or connectors being down never
      count: an upstream being down ends in ``expired``.
    - ``down_grace``: a connector without a bound session keeps its queue this
      long (a reconnect is usually quicker) before handing it on.
    - ``throttle_pause_initial`` / ``throttle_pause_max``: a connector's pause
      after ESME_RTHROTTLED / ESME_RMSGQFUL (doubling while they continue,
      reset by the next accepted submit). ``throttle_retry_initial`` /
      ``throttle_retry_max``: the throttled part's own wait before it is sent
      again (doubling per throttle of that part).

    Housekeeping
    - ``housekeeping_interval``: how often expiry runs.
    - ``receipt_grace``: a ``sent`` message whose validity ended this long ago
      without a receipt is ``expired``.
    - ``query_attempts``: query_sm asked about a part whose receipt is overdue
      (its connector's ``receipt_timeout`` apart) before it ends ``expired``
      with error NO_RECEIPT, when no answer said how it ended. The overdue
      parts are looked for every ``housekeeping_interval``.
    - ``purge_interval``, ``parked_ttl``, ``dead_ttl``: ``Store.purge`` every
      ``purge_interval``, dropping receipts parked longer than ``parked_ttl``
      and given-up outbox events older than ``dead_ttl``.
    - ``stop_timeout``: ``stop()`` waits at most this long for answers to
      parts in flight before handing their messages back.
    """

    lease: float = 20.0
    poll_interval: float = 0.5
    queue_seconds: float = 1.0
    max_claim: int = 1000
    retry_initial: float = 0.5
    retry_max: float = 5.0
    retries_per_connector: int = 2
    handback_initial: float = 1.0
    handback_max: float = 30.0
    max_transient_claims: int = 5
    down_grace: float = 2.0
    throttle_pause_initial: float = 0.02
    throttle_pause_max: float = 1.0
    throttle_retry_initial: float = 0.1
    throttle_retry_max: float = 5.0
    housekeeping_interval: float = 5.0
    receipt_grace: float = 60.0
    query_attempts: int = 3
    purge_interval: float = 300.0
    parked_ttl: float = 3600.0
    dead_ttl: float = 7 * 86400.0
    stop_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("lease", "poll_interval", "queue_seconds", "retry_initial", "retry_max",
                     "handback_initial", "handback_max", "down_grace", "throttle_pause_initial",
                     "throttle_pause_max", "throttle_retry_initial", "throttle_retry_max",
                     "housekeeping_interval", "purge_interval", "parked_ttl", "dead_ttl",
                     "stop_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.receipt_grace < 0 or self.retries_per_connector < 0:
            raise ValueError("receipt_grace and retries_per_connector must not be negative")
        if not 1 <= self.max_claim <= 10_000:
            raise ValueError("max_claim must be 1..10000")
        if self.max_transient_claims < 1:
            raise ValueError("max_transient_claims must be at least 1")
        if self.query_attempts < 1:
            raise ValueError("query_attempts must be at least 1")
        for low, high in (("retry_initial", "retry_max"), ("handback_initial", "handback_max"),
                          ("throttle_pause_initial", "throttle_pause_max"),
                          ("throttle_retry_initial", "throttle_retry_max")):
            if getattr(self, high) < getattr(self, low):
                raise ValueError(f"{high} must not be below {low}")
