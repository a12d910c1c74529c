"""One M3UA message's bytes to a verdict: decode, facts, engine, audit.

Shared by the scan and proxy modes and the platform egress call. Messages that
carry no SCCP user data (ASP management, SSNM) get no verdict: they are
passed through by a proxy and skipped by a scan. Messages the strict decoder
refuses get a ``malformed`` verdict (blocked by default).
"""

from __future__ import annotations

from dataclasses import dataclass

from herald.guard.audit import AuditLog
from herald.signaling import DecodeError, NotUserData, SignalingMessage, decode
from herald.signaling.policy import Action, Category, Direction, Engine, Rule, Verdict
from herald.signaling.policy.bridge import facts_from_message
from herald.signaling.policy.verdict import Origin

__all__ = ["Inspection", "Inspector", "malformed_verdict"]


@dataclass(frozen=True, slots=True)
class Inspection:
    """``verdict`` is None for a message that is not SCCP user data."""

    verdict: Verdict | None
    message: SignalingMessage | None = None
    error: DecodeError | None = None


def malformed_verdict(exc: DecodeError, now: float, action: Action) -> Verdict:
    # Only the layer and offset: the decoder's free text may quote octets.
    return Verdict(
        action,
        Rule.MALFORMED,
        Category.NONE,
        f"{exc.layer.value} decode error at offset {exc.offset}",
        now,
        origin=Origin.FOREIGN,
    )


class Inspector:
    """Judges raw M3UA messages with ``engine``; records blocks and alerts
    (including the engine's late alerts) in ``audit`` when given."""

    def __init__(self, engine: Engine, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self._malformed_action = engine.policy.actions[Rule.MALFORMED]

    def inspect(
        self,
        data: bytes,
        now: float,
        direction: Direction = Direction.UNKNOWN,
        **context: object,
    ) -> Inspection:
        """Decode and judge one message seen at ``now`` (the engine's clock)."""
        try:
            msg = decode(data)
        except NotUserData:
            return Inspection(None)
        except DecodeError as exc:
            verdict = malformed_verdict(exc, now, self._malformed_action)
            self.record(verdict, context)
            return Inspection(verdict, None, exc)
        verdict = self.engine.inspect(facts_from_message(msg, now, direction))
        self.record(verdict, context)
        return Inspection(verdict, msg)

    def inspect_message(
        self,
        msg: SignalingMessage,
        now: float,
        direction: Direction = Direction.UNKNOWN,
        **context: object,
    ) -> Verdict:
        verdict = self.engine.inspect(facts_from_message(msg, now, direction))
        self.record(verdict, context)
        return verdict

    def expire(self, now: float, **context: object) -> list[Verdict]:
        late = self.engine.expire(now)
        for verdict in late:
            self.record(verdict, context)
        return late

    def record(self, verdict: Verdict, context: dict[str, object]) -> None:
        """Audit ``verdict`` if it is a block or an alert."""
        if self.audit is not None and verdict.action is not Action.ALLOW:
            self.audit.verdict(verdict, **context)
