"""Receipts that never come (issue 8 item 7): query_sm where allowed, else expired 0x10005.

Real upstreams on loopback: ``herald sim`` losing every receipt
(``drop_receipts=1``) or keeping a message ENROUTE, and the scriptable
upstream holding receipts back. Each connector's ``receipt_timeout`` is a
fraction of a second here; housekeeping looks every 0.1 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import replace

from herald.dispatch import ErrorCode
from herald.sim import SimConfig, Simulator
from herald.smpp.constants import MessageState
from herald.store import Channel, Status

from .conftest import FAST, Rig, connector, eventually
from .upstream import Answer

NO_RECEIPT = int(ErrorCode.NO_RECEIPT)
#: Seconds a part waits for its receipt before herald looks into it.
TIMEOUT = 0.3


async def _sim(**fields: object) -> Simulator:
    values: dict[str, object] = {"port": 0, "receipt_delay": (0.0, 0.05), "seed": 5}
    values.update(fields)
    sim = Simulator(SimConfig(**values))  # type: ignore[arg-type]
    await sim.start()
    return sim


async def test_a_lost_receipt_is_asked_for_and_the_answer_ends_the_message(rig: Rig) -> None:
    sim = await _sim(drop_receipts=1.0)
    try:
        await rig.dispatcher([connector("a", sim.port, receipt_timeout=TIMEOUT, query_sm=True)])
        delivered = await rig.send(3)
        undelivered = await rig.send(2, to_prefix="999070")
        expired = await rig.send(1, to_prefix="999080")
        await rig.wait_all(delivered, Status.DELIVERED)
        await rig.wait_all(undelivered, Status.UNDELIVERED)
        await rig.wait_all(expired, Status.EXPIRED)
        assert sim.counters.receipts_sent == 0 and sim.counters.receipts_lost == 6
        assert sim.counters.queries == 6  # one each: the first answer was final
        # The answer's error_code, as a receipt's would be (the simulator's GSM MAP errors).
        assert [(await rig.get(i)).error_code for i in undelivered + expired] == [1, 1, 6]
        assert (await rig.get(delivered[0])).error_code is None
    finally:
        await sim.stop(1)


async def test_without_query_sm_a_lost_receipt_ends_expired_with_no_receipt(rig: Rig) -> None:
    sim = await _sim(drop_receipts=1.0)
    try:
        await rig.dispatcher([connector("a", sim.port, receipt_timeout=TIMEOUT)])
        ids = await rig.send(4)
        await rig.wait_all(ids, Status.EXPIRED)
        for message_id in ids:
            got = await rig.get(message_id)
            assert (got.error_code, got.error_permanent) == (NO_RECEIPT, False)
            assert got.sent_at is not None and got.done_at is not None
            assert got.done_at - got.sent_at >= TIMEOUT
        assert sim.counters.queries == 0
        assert rig.counter("herald_messages_final_total", status="expired") == 4
    finally:
        await sim.stop(1)


async def test_answers_without_a_final_state_are_asked_again_then_give_up(rig: Rig) -> None:
    """ENROUTE for ever (the simulator's 99913), and an upstream without query_sm."""
    sim = await _sim()
    plain = await rig.upstream()  # answers query_sm ESME_RINVCMDID
    plain.decide = lambda pdu, n: Answer(receipts=())
    settings = replace(FAST, query_attempts=2)
    try:
        await rig.dispatcher(
            [connector("sim", sim.port, receipt_timeout=TIMEOUT, query_sm=True),
             connector("plain", plain.server.port,  # type: ignore[union-attr]
                       receipt_timeout=TIMEOUT, query_sm=True)],
            routes=[("99913", ("sim",)), ("", ("plain",))], settings=settings)
        enroute = await rig.send(2, to_prefix="999130")
        refused = await rig.send(2)
        await rig.wait_all(enroute + refused, Status.EXPIRED)
        assert {(await rig.get(i)).error_code for i in enroute + refused} == {NO_RECEIPT}
        assert sim.counters.queries == 2 * 2
        assert len(plain.queries) == 2 * 2
        # query_sm names the part's upstream id and the submit's source address.
        (segment,) = await rig.store.get_segments(refused[0])
        asked = [q for q in plain.queries if q.message_id == segment.upstream_id]
        assert len(asked) == 2
        assert (asked[0].source_addr, asked[0].source_addr_ton) == ("HERALD", 5)
    finally:
        await sim.stop(1)


async def test_the_checks_survive_a_restart_of_herald(rig: Rig) -> None:
    """Nothing waits in memory: a new dispatcher ends what the stopped one left."""
    sim = await _sim(drop_receipts=1.0)
    config = [connector("a", sim.port, receipt_timeout=1.0)]
    try:
        first = await rig.dispatcher(config)
        ids = await rig.send(3)
        await rig.wait_all(ids, Status.SENT)
        await first.stop()
        await rig.dispatcher(config)
        await rig.wait_all(ids, Status.EXPIRED)
        assert {(await rig.get(i)).error_code for i in ids} == {NO_RECEIPT}
    finally:
        await sim.stop(1)


async def test_after_both_restart_the_forgotten_messages_end_expired(rig: Rig) -> None:
    """The reviewer's demo: herald and its simulator restart, the pending receipts
    die with the simulator, which then answers query_sm ESME_RINVMSGID."""
    first_sim = await _sim(receipt_delay=(60.0, 60.0))
    port = first_sim.port
    config = [connector("a", port, receipt_timeout=TIMEOUT, query_sm=True)]
    second_sim: Simulator | None = None
    try:
        first = await rig.dispatcher(config)
        ids = await rig.send(3)
        await rig.wait_all(ids, Status.SENT)
        await first.stop()
        await first_sim.stop(1)
        second_sim = await _sim(port=port)
        await rig.dispatcher(config)
        await rig.wait_all(ids, Status.EXPIRED)
        assert {(await rig.get(i)).error_code for i in ids} == {NO_RECEIPT}
        queries = first_sim.counters.queries + second_sim.counters.queries
        assert queries == 3 * FAST.query_attempts
        assert second_sim.counters.queries > 0
    finally:
        await first_sim.stop(1)
        if second_sim is not None:
            await second_sim.stop(1)


async def test_no_attempt_is_spent_while_the_upstream_is_down(rig: Rig) -> None:
    first_sim = await _sim(receipt_delay=(60.0, 60.0))
    port = first_sim.port
    second_sim: Simulator | None = None
    timeout = 0.6
    try:
        await rig.dispatcher([connector("a", port, receipt_timeout=timeout, query_sm=True)],
                             settings=replace(FAST, query_attempts=2))
        ids = await rig.send(2)
        await rig.wait_all(ids, Status.SENT)
        await first_sim.stop(1)  # before the receipts are overdue
        await asyncio.sleep(2 * timeout)  # overdue twice over: asking now would use both tries
        assert await rig.statuses(ids) == [Status.SENT] * 2
        assert first_sim.counters.queries == 0
        second_sim = await _sim(port=port)  # knows nothing of them: ESME_RINVMSGID
        await rig.wait_all(ids, Status.EXPIRED)
        assert second_sim.counters.queries == 2 * 2
    finally:
        await first_sim.stop(1)
        if second_sim is not None:
            await second_sim.stop(1)


async def test_a_receipt_after_the_ending_is_answered_and_changes_nothing(rig: Rig) -> None:
    await rig.store.update_account(
        dataclasses.replace(rig.account, callback_url="https://hooks.invalid/acme"))
    up = await rig.upstream()
    up.decide = lambda pdu, n: Answer(receipts=(MessageState.DELIVERED,), hold=True)
    await rig.dispatcher([connector("a", up.server.port,  # type: ignore[union-attr]
                                    receipt_timeout=TIMEOUT)])
    (message_id,) = await rig.send(1)
    await rig.wait_all([message_id], Status.EXPIRED)
    ended = await rig.get(message_id)
    up.release()  # the DELIVRD receipt, late

    async def acknowledged() -> bool:
        return up.receipts_acked == 1

    await eventually(acknowledged)
    got = await rig.get(message_id)
    assert (got.status, got.error_code, got.done_at) == (Status.EXPIRED, NO_RECEIPT, ended.done_at)
    assert up.owed == []  # answered ESME_ROK: the upstream does not send it again
    events = await rig.store.claim_outbox(Channel.WEBHOOK, got.done_at + 60, lease=30, limit=10)
    assert [(e.subject_id, e.status) for e in events] == [(message_id, Status.EXPIRED)]
