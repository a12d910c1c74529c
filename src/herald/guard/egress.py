"""The platform's own check on the signaling it sends (a library call).

Before herald's SMS gateway sends an SRI-SM or an MT-ForwardSM from one of its
global titles, it asks :meth:`PlatformEgress.check`; it sends the message only
if the verdict allows it. Answers coming back (the SRI-SM result with the IMSI
and serving node) go through :meth:`PlatformEgress.observe`, so the MT-ForwardSM
that follows can be matched to its lookup. :meth:`PlatformEgress.expire`
reports lookups that were not followed by their delivery.

The rules are those of the engine's platform-egress table: only SRI-SM,
MT-ForwardSM and ReportSM-DeliveryStatus, each for a number with a customer
message queued in the store
(:class:`~herald.signaling.policy.PendingMessages`); everything else is
blocked, recorded in the audit log when one is given, and alerted.
"""

from __future__ import annotations

import time

from herald.guard.audit import AuditLog
from herald.guard.inspector import Inspector, malformed_verdict
from herald.signaling import DecodeError, NotUserData, SignalingMessage, decode
from herald.signaling.policy import (
    Action,
    Category,
    Direction,
    Engine,
    PendingMessages,
    Policy,
    Rule,
    Verdict,
)
from herald.signaling.policy.verdict import Origin

__all__ = ["LiveStore", "PlatformEgress"]


class LiveStore:
    """A store asked on the wall clock, whatever clock the caller judges on.

    The proxy's engine runs on the event loop's monotonic clock; herald's store
    keeps messages' expiry times on the wall clock. Each question is asked of
    ``store`` as of now, when it is asked.
    """

    def __init__(self, store: PendingMessages) -> None:
        self._store = store

    def has_pending(self, msisdn: str, now: float) -> bool:
        return self._store.has_pending(msisdn, time.time())


class PlatformEgress:
    """Egress correlation for one platform (one policy, one store).

    ``now`` in every call is the caller's clock in seconds (monotonic is best);
    use the same clock for all calls.
    """

    def __init__(
        self, policy: Policy, store: PendingMessages, audit: AuditLog | None = None
    ) -> None:
        if not policy.platform_gts:
            raise ValueError("the policy names no platform GTs ([platform] gts)")
        self._platform = frozenset(policy.platform_gts)
        self._inspector = Inspector(Engine(policy, store), audit)

    def check(self, message: SignalingMessage | bytes, now: float) -> Verdict:
        """May this outbound message leave? Send it only if ``verdict.allowed``.

        A message that does not decode, or whose calling GT is not one of the
        platform's, is blocked: the platform only speaks from its own GTs.
        """
        msg = self._decode(message, now)
        if isinstance(msg, Verdict):
            return msg
        if (msg.calling_digits or "") not in self._platform:
            verdict = Verdict(
                Action.BLOCK,
                Rule.PLATFORM_EGRESS,
                Category.NONE,
                "outbound signaling whose calling GT is not a platform GT",
                now,
                origin=Origin.FOREIGN,
            )
            self._inspector.record(verdict, {"mode": "egress"})
            return verdict
        return self._inspector.inspect_message(msg, now, Direction.OUTBOUND, mode="egress")

    def observe(self, message: SignalingMessage | bytes, now: float) -> Verdict:
        """Feed an inbound answer (or any inbound message) to the correlation."""
        msg = self._decode(message, now)
        if isinstance(msg, Verdict):
            return msg
        # Direction unknown: the answer may come from the home HLR as well as
        # from the interconnect.
        return self._inspector.inspect_message(msg, now, Direction.UNKNOWN, mode="egress")

    def expire(self, now: float) -> list[Verdict]:
        """Late alerts: platform lookups not followed by their MT-ForwardSM."""
        return self._inspector.expire(now, mode="egress")

    def _decode(self, message: SignalingMessage | bytes, now: float) -> SignalingMessage | Verdict:
        if isinstance(message, SignalingMessage):
            return message
        try:
            return decode(message)
        except NotUserData:
            return Verdict(Action.ALLOW, None, Category.NONE, "", now, origin=Origin.PLATFORM)
        except DecodeError as exc:
            verdict = malformed_verdict(exc, now, Action.BLOCK)
            self._inspector.record(verdict, {"mode": "egress"})
            return verdict
