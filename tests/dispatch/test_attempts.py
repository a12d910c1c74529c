"""Each submit that an upstream did not accept is in its message's record of
attempts (Store.message_attempts, the timeline's source); a success is not:
it is the message's segment record."""

from __future__ import annotations

from herald.sim import SimConfig, Simulator
from herald.smpp.constants import CommandStatus
from herald.store import Attempt, AttemptKind, Status

from .conftest import FAST, Rig, connector
from .upstream import OK, Answer, Upstream

S = CommandStatus


def _row(a: Attempt) -> tuple[object, ...]:
    return (a.kind, a.number, a.target, a.answer, a.ok, a.part)


async def test_an_error_then_a_success_leaves_one_failed_attempt(rig: Rig) -> None:
    up = await rig.upstream(Upstream(
        decide=lambda pdu, n: Answer(S.ESME_RSYSERR) if n == 1 else OK))
    await rig.dispatcher([connector("eu-1", up.server.port)])  # type: ignore[union-attr]
    retried = await rig.send(1)
    await rig.wait_all(retried, Status.DELIVERED)
    clean = await rig.send(1, to_prefix="4477008")
    await rig.wait_all(clean, Status.DELIVERED)
    [failed] = await rig.store.message_attempts(retried[0])
    assert _row(failed) == (AttemptKind.SUBMIT, 1, "eu-1", "ESME_RSYSERR", False, 0)
    message = await rig.get(retried[0])
    assert message.accepted_at <= failed.at <= (message.sent_at or 0)
    assert await rig.store.message_attempts(clean[0]) == ()  # a success writes nothing more


async def test_the_simulators_refusals_and_silence_are_recorded_before_the_failover(
    rig: Rig,
) -> None:
    """herald sim answers 99903... with ESME_RSUBMITFAIL and swallows 99902...:
    each try on it is an attempt (a timeout for the silent one), then the
    backup accepts (its success is the segment, not an attempt)."""
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.0, 0.05), seed=7))
    await sim.start()
    backup = await rig.upstream()
    try:
        await rig.dispatcher([
            connector("primary", sim.port, response_timeout=0.3),
            connector("backup", backup.server.port),  # type: ignore[union-attr]
        ])  # fmt: skip
        refused = await rig.send(1, to_prefix="99903")
        silent = await rig.send(1, to_prefix="99902")
        await rig.wait_all(refused + silent, Status.DELIVERED)
    finally:
        await sim.stop(1)
    tries = 1 + FAST.retries_per_connector
    for message_id, answer in ((refused[0], "ESME_RSUBMITFAIL"), (silent[0], "timeout")):
        attempts = await rig.store.message_attempts(message_id)
        assert [_row(a) for a in attempts] == [
            (AttemptKind.SUBMIT, n, "primary", answer, False, 0) for n in range(1, tries + 1)]
        assert [a.at for a in attempts] == sorted(a.at for a in attempts)
        (segment,) = await rig.store.get_segments(message_id)
        assert segment.connector == "backup"
