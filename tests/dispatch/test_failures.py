"""Dispatch under upstream trouble: throttling, refusals, silence, outages, restarts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import SubmitSm
from herald.store import Status

from .conftest import FAST, Rig, connector, eventually
from .upstream import OK, Answer, Upstream

S = CommandStatus


async def test_throttling_delays_messages_without_failing_them_or_other_connectors(
    rig: Rig,
) -> None:
    """Upstream A throttles everything until the test lets it go; B is unaffected."""
    throttling = True

    def a_decides(pdu: SubmitSm, n: int) -> Answer:
        return Answer(S.ESME_RTHROTTLED) if throttling else OK

    a = await rig.upstream(Upstream(decide=a_decides))
    b = await rig.upstream()
    await rig.dispatcher(
        [connector("a", a.server.port), connector("b", b.server.port)],  # type: ignore[union-attr]
        routes=[("44", ("a",)), ("33", ("b",))],
    )
    to_a = await rig.send(10)
    to_b = await rig.send(10, to="33612345678")
    await rig.wait_all(to_b, Status.DELIVERED)
    await eventually(_has(a, 30))  # A keeps being tried and keeps throttling...
    assert await rig.statuses(to_a) == [Status.QUEUED] * 10  # ...its messages wait, unfailed
    throttled = rig.counter("herald_upstream_submits_total", connector="a", outcome="throttled")
    assert 30 <= throttled <= len(a.submits)  # every answer A gave was "throttled"
    throttling = False
    await rig.wait_all(to_a, Status.DELIVERED)
    accepted = [s for s in a.submits if s.pdu.destination_addr.startswith("44")][-10:]
    assert sorted(s.pdu.destination_addr for s in accepted) == sorted(
        f"4477009{n:05d}" for n in range(10))


async def test_queue_full_is_throttling_too(rig: Rig) -> None:
    up = await rig.upstream(Upstream(
        decide=lambda pdu, n: Answer(S.ESME_RMSGQFUL) if n <= 5 else OK))
    await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    ids = await rig.send(3)
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(up.submits) >= 3 + 5


async def test_a_permanent_refusal_fails_over_to_the_next_connector(rig: Rig) -> None:
    a = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(S.ESME_RINVDSTADR)))
    b = await rig.upstream()
    await rig.dispatcher(
        [connector("a", a.server.port), connector("b", b.server.port)],  # type: ignore[union-attr]
        routes=[("", ("a", "b"))],
    )
    ids = await rig.send(5)
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(a.submits) == 5  # a permanent refusal is not retried on the same connector
    assert len(b.submits) == 5
    segments = [await rig.store.get_segments(i) for i in ids]
    assert {s.connector for segs in segments for s in segs} == {"b"}


async def test_a_permanent_refusal_on_the_last_connector_rejects_the_message(rig: Rig) -> None:
    a = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(S.ESME_RINVSRCADR)))
    b = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(S.ESME_RINVDSTADR)))
    await rig.dispatcher(
        [connector("a", a.server.port), connector("b", b.server.port)],  # type: ignore[union-attr]
    )
    ids = await rig.send(2)
    await rig.wait_all(ids, Status.REJECTED)
    message = await rig.get(ids[0])
    assert (message.error_code, message.error_permanent) == (S.ESME_RINVDSTADR, True)
    assert (len(a.submits), len(b.submits)) == (2, 2)


async def test_transient_errors_are_retried_then_fail_over(rig: Rig) -> None:
    a = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(S.ESME_RSYSERR)))
    b = await rig.upstream()
    await rig.dispatcher(
        [connector("a", a.server.port), connector("b", b.server.port)],  # type: ignore[union-attr]
    )
    ids = await rig.send(1)
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(a.submits) == 1 + FAST.retries_per_connector
    assert len(b.submits) == 1


async def test_an_upstream_that_never_answers_times_out_and_fails_over(rig: Rig) -> None:
    a = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(status=None)))
    b = await rig.upstream()
    await rig.dispatcher([
        connector("a", a.server.port, response_timeout=0.2),  # type: ignore[union-attr]
        connector("b", b.server.port),  # type: ignore[union-attr]
    ])
    ids = await rig.send(2)
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(a.silent) == 2 * (1 + FAST.retries_per_connector)
    assert rig.counter("herald_upstream_submits_total", connector="a",
                       outcome="no_response") == len(a.silent)


async def test_transient_failures_everywhere_end_failed_after_bounded_claims(rig: Rig) -> None:
    up = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(S.ESME_RSYSERR)))
    d = await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    ids = await rig.send(1)
    await rig.wait_all(ids, Status.FAILED, timeout=15)
    message = await rig.get(ids[0])
    assert (message.error_code, message.error_permanent) == (S.ESME_RSYSERR, False)
    assert message.attempt == d.settings.max_transient_claims
    per_claim = 1 + d.settings.retries_per_connector
    assert len(up.submits) == per_claim * d.settings.max_transient_claims


async def test_validity_ending_while_the_upstream_is_down_expires_the_message(
    rig: Rig,
) -> None:
    up = await rig.upstream()
    port = up.server.port  # type: ignore[union-attr]
    await up.stop()  # nothing listens there now
    d = await rig.dispatcher([connector("a", port)])
    now = time.time()
    ids = await rig.send(3, expires_at=now + 1.0)
    await rig.wait_all(ids, Status.EXPIRED, timeout=10)
    message = await rig.get(ids[0])
    assert message.done_at is not None and message.done_at >= now + 1.0
    assert message.error_permanent is False
    assert d.held == 0


async def test_every_message_is_delivered_across_an_upstream_restart(rig: Rig) -> None:
    """The upstream goes away mid-run and comes back on the same port (with the
    receipts it still owed, as a real SMSC keeps them)."""
    window, binds = 5, 2
    up = await rig.upstream(Upstream())
    port = up.server.port  # type: ignore[union-attr]
    d = await rig.dispatcher([connector("a", port, tps=200.0, binds=binds, window=window)])
    first = await rig.send(100)
    await eventually(_has(up, 30))
    await up.stop()  # mid-run: submits unanswered, receipts unsent
    second = await rig.send(50, to_prefix="4478")
    await asyncio.sleep(0.2)
    again = await rig.upstream(Upstream(owed=up.owed), port=port)
    ids = first + second
    await rig.wait_all(ids, Status.DELIVERED, timeout=20)
    submits = up.submits + again.submits
    distinct = {s.pdu.destination_addr for s in submits}
    assert len(distinct) == len(ids)
    # Resent: at most what was in flight (a window per bind) when the link dropped.
    assert len(submits) - len(distinct) <= binds * window
    assert d.held == 0


def _has(up: Upstream, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(up.submits) >= n

    return check


async def test_stop_hands_unanswered_messages_back_for_the_next_run(rig: Rig) -> None:
    up = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(status=None)))
    settings = replace(FAST, stop_timeout=0.3)
    d = await rig.dispatcher([connector("a", up.server.port)], settings=settings)  # type: ignore[union-attr]
    ids = await rig.send(3)
    await eventually(_has(up, 3))
    # The upstream never answers: stop must give up waiting (after stop_timeout)
    # rather than hang. The bound here only catches a hang; it is not a timing test.
    await asyncio.wait_for(d.stop(), 60)
    messages = [await rig.get(i) for i in ids]
    assert {m.status for m in messages} == {Status.QUEUED}
    # Handed back: claimable at once by the next run, not after the lease.
    reclaimed = await rig.store.claim(10, time.time(), lease=5)
    assert sorted(m.id for m in reclaimed) == sorted(ids)


async def test_validity_ending_while_an_upstream_throttles_expires_the_message(
    rig: Rig,
) -> None:
    """The message is held (throttled, retried) when its validity ends: it is not
    sent again, and ends expired."""
    up = await rig.upstream(Upstream(decide=lambda pdu, n: Answer(S.ESME_RTHROTTLED)))
    d = await rig.dispatcher([connector("a", up.server.port)])  # type: ignore[union-attr]
    ids = await rig.send(2, expires_at=time.time() + 0.8)
    await rig.wait_all(ids, Status.EXPIRED)
    tried = len(up.submits)
    assert tried >= 2
    await asyncio.sleep(0.3)
    assert len(up.submits) == tried  # nothing more was sent for them
    assert d.held == 0


async def test_throttling_and_full_queue_hand_backs_are_not_failed_tries(rig: Rig) -> None:
    """Issue 8: a throttling first connector made its queue overflow, every
    overflow hand-back counted as an attempt, and later one transient error
    failed messages. Now only claims ending in a transient failure count."""
    phase = "throttle"
    seen: dict[str, int] = {}

    def decides(pdu: SubmitSm, n: int) -> Answer:
        if phase == "throttle":
            return Answer(S.ESME_RTHROTTLED)
        # One failed claim per message: one error on each connector, then back.
        count = seen[pdu.destination_addr] = seen.get(pdu.destination_addr, 0) + 1
        return Answer(S.ESME_RSYSERR) if count <= 2 else OK

    a = await rig.upstream(Upstream(decide=decides))
    b = await rig.upstream(Upstream(decide=lambda pdu, n: decides(pdu, n)))
    slow = connector("a", a.server.port, tps=10.0, window=1)  # type: ignore[union-attr]
    await rig.dispatcher([slow, connector("b", b.server.port)],  # type: ignore[union-attr]
                         routes=[("", ("a", "b"))],
                         settings=replace(FAST, retries_per_connector=0))
    ids = await rig.send(30)  # far more than a's queue holds: the rest is handed back

    async def claimed_often() -> bool:
        messages = [await rig.get(i) for i in ids]
        return max(m.attempt for m in messages) > FAST.max_transient_claims + 1

    await eventually(claimed_often, timeout=20.0)
    messages = [await rig.get(i) for i in ids]
    assert all(m.status is Status.QUEUED for m in messages)
    assert [m.tries for m in messages] == [0] * 30  # throttling and overflow are no tries

    phase = "errors"
    await rig.wait_all(ids, Status.DELIVERED, timeout=30.0)
    messages = [await rig.get(i) for i in ids]
    assert [m.tries for m in messages] == [1] * 30  # exactly the one failed claim each
    assert all(m.error_code is None for m in messages)
