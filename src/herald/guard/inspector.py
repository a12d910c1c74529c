"""One M3UA message's bytes to a verdict: decode, facts, engine, audit.

Shared by the scan and proxy modes and the platform egress call. Messages that
carry no SCCP user data (ASP management, SSNM) get no verdict: they are
passed through by a proxy and skipped by a scan. Messages the strict decoder
refuses get a ``malformed`` verdict (blocked by default).

Judging is two steps: :func:`prepare` (decode, then the facts the engine
reads: pure, no state) and :meth:`Inspector.judge` (the engine, in message
order, and the audit). :meth:`Inspector.inspect` does both for one message;
:meth:`Inspector.inspect_many` prepares a whole batch (a proxy read, a slice
of a capture) before judging it in order. The verdicts are the same, since
preparing touches no state; the batch is faster because the decoder's and the
engine's code each stay hot in the CPU's caches while they run, instead of
evicting each other once per message (measured by ``bench/guard.py``).

:meth:`Inspector.judged` (the proxy's and the benchmark's batches) and the
scan judge a batch with the cyclic garbage collector paused
(:class:`PausedGC`) until the batch has been judged, consumed and freed: its
decoded messages all live until then, and every collection the batch's
allocations would trigger walks them (tuples of tuples) only to find them
alive. Freed by their reference counts, they take the collector's count down
with them, so it resumes with nothing of theirs to walk. Measured by
callgrind on 3,000 messages of ``big_capture()``, compiled: 68,677
instructions a message batched without the pause, 63,855 with it (one at a
time: 60,964).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Final, NamedTuple

from herald.guard.audit import AuditLog
from herald.signaling import DecodeError, NotUserData, SignalingMessage, decode
from herald.signaling.policy import (
    Action,
    Category,
    Direction,
    Engine,
    Facts,
    Policy,
    Rule,
    Verdict,
)
from herald.signaling.policy.bridge import facts_from_message
from herald.signaling.policy.verdict import Origin

__all__ = ["Inspection", "Inspector", "PausedGC", "Prepared", "malformed_verdict", "prepare"]

#: What :func:`prepare` makes of one message: the decoded message and its
#: facts; or the decoder's error; or neither for a message that is not SCCP
#: user data.
Prepared = tuple[SignalingMessage | None, Facts | None, DecodeError | None]

_NOT_USER_DATA: Final[Prepared] = (None, None, None)
_ALLOW: Final = Action.ALLOW


class Inspection(NamedTuple):
    """``verdict`` is None for a message that is not SCCP user data.

    A NamedTuple rather than a frozen dataclass: one is made per message, and
    a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``.
    """

    verdict: Verdict | None
    message: SignalingMessage | None = None
    error: DecodeError | None = None


_NO_VERDICT: Final = Inspection(None)
_new: Final = tuple.__new__


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


def prepare(data: bytes, now: float, direction: Direction = Direction.UNKNOWN) -> Prepared:
    """Decode one message seen at ``now`` and derive its facts. Never raises:
    a decoding error is returned (without its traceback, so that a batch of
    them holds no frames)."""
    try:
        msg = decode(data)
    except NotUserData:
        return _NOT_USER_DATA
    except DecodeError as exc:
        return None, None, exc.with_traceback(None)
    return msg, facts_from_message(msg, now, direction), None


class PausedGC:
    """``with PausedGC():`` the cyclic collector is off for one batch (see the
    module docstring), and back on after it if it was on. Reference counting
    goes on: what the batch frees is freed at once."""

    __slots__ = ("_was",)

    def __init__(self) -> None:
        self._was = False

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._was:
            gc.enable()


class Inspector:
    """Judges raw M3UA messages with ``engine``; records blocks and alerts
    (including the engine's late alerts) in ``audit`` when given."""

    def __init__(self, engine: Engine, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self._malformed_action = engine.policy.actions[Rule.MALFORMED]

    def replace_policy(self, policy: Policy) -> None:
        """Judge by ``policy`` from now on (see :meth:`Engine.replace_policy`)."""
        self.engine.replace_policy(policy)
        self._malformed_action = policy.actions[Rule.MALFORMED]

    def inspect(
        self,
        data: bytes,
        now: float,
        direction: Direction = Direction.UNKNOWN,
        **context: object,
    ) -> Inspection:
        """Decode and judge one message seen at ``now`` (the engine's clock)."""
        return self.judge(prepare(data, now, direction), now, context)

    def inspect_many(
        self,
        messages: Iterable[bytes],
        now: float,
        direction: Direction = Direction.UNKNOWN,
        **context: object,
    ) -> list[Inspection]:
        """:meth:`inspect` on each message, in order, all seen at ``now``:
        the batch is prepared first, then judged (see the module doc)."""
        prepared = [prepare(data, now, direction) for data in messages]
        judge = self.judge
        return [judge(p, now, context) for p in prepared]

    def judged(
        self,
        records: Sequence[tuple[float, bytes]],
        direction: Direction = Direction.UNKNOWN,
        context: dict[str, object] | None = None,
    ) -> Iterator[Inspection]:
        """:meth:`inspect_many` for records seen at their own times
        (``(time, bytes)``, in order), yielding each result as it is judged,
        with the cyclic collector paused until the last (see the module doc):
        consume it at once, and keep no more of the results than needed."""
        ctx: dict[str, object] = {} if context is None else context
        with PausedGC():
            prepared = [prepare(data, t, direction) for t, data in records]
            judge = self.judge
            for i in range(len(prepared)):
                yield judge(prepared[i], records[i][0], ctx)
            prepared.clear()  # freed before the collector resumes

    def judge(self, prepared: Prepared, now: float, context: dict[str, object]) -> Inspection:
        """The verdict on a message made ready by :func:`prepare` (whose
        ``now`` it must be): the engine's, or ``malformed``; audited."""
        msg, facts, error = prepared
        if facts is None:
            if error is None:
                return _NO_VERDICT
            verdict = malformed_verdict(error, now, self._malformed_action)
            self.record(verdict, context)
            return Inspection(verdict, None, error)
        verdict = self.engine.inspect(facts)
        if verdict.action is not _ALLOW:
            self.record(verdict, context)
        return _new(Inspection, (verdict, msg, None))

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
