"""The simulator over real loopback sockets, driven by herald's SmppClient."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from herald.net import BindFailed
from herald.sim import Outcome, OutcomeMix, RecordContent, SimConfig, SimConfigError, read_records
from herald.sim.ids import IdStyle, ReceiptIdForm
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.message_id import IdPolicy, ids_match
from herald.smpp.pdus import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    DataSm,
    DistributionList,
    QuerySm,
    SmeAddress,
    SubmitMulti,
    SubmitSmResp,
)
from herald.smpp.receipts import receipt_of
from herald.smpp.tlv import MESSAGE_PAYLOAD, MESSAGE_STATE, NETWORK_ERROR_CODE, RECEIPTED_MESSAGE_ID
from herald.text import SmscDefault, read_message

from .helpers import PASSWORD, SYSTEM_ID, Inbox, bound_client, eventually, running, submit

S = CommandStatus


def message_id(resp: object) -> str:
    assert isinstance(resp, SubmitSmResp), resp
    assert resp.command_status == 0, S(resp.command_status).name
    return resp.message_id


# ------------------------------------------------------------------- binds


@pytest.mark.parametrize(("system_id", "password", "status"), [
    ("acme", "wrong", S.ESME_RINVPASWD),
    ("other", PASSWORD, S.ESME_RINVSYSID),
])
async def test_binds_need_the_configured_pair(system_id: str, password: str,
                                              status: int) -> None:
    from herald.net import SmppClient

    from .helpers import client_settings

    async with running(system_id=SYSTEM_ID, password=PASSWORD) as sim:
        client = SmppClient(client_settings(sim.port, BindTransceiver(
            system_id=system_id, password=password)))
        await client.start()
        await eventually(lambda: client.last_error is not None, "a refused bind")
        await client.stop(timeout=0.2)
        assert isinstance(client.last_error, BindFailed)
        assert client.last_error.status == status
        async with bound_client(sim.port):
            pass
        assert sim.counters.binds == 1 and sim.counters.binds_refused >= 1


# ---------------------------------------------------------------- receipts


@pytest.mark.parametrize("outcome", list(Outcome))
async def test_each_outcome_gives_its_receipt_with_text_and_tlvs(outcome: Outcome) -> None:
    async with running(outcomes=OutcomeMix(((outcome, 1.0),))) as sim, \
            bound_client(sim.port) as (client, inbox):
        resp_id = message_id(await client.submit(submit("447700900123", b"Your code: 4711")))
        (receipt,) = await inbox.wait(1)
        assert receipt.esm_class == 0x04
        assert (receipt.source_addr, receipt.destination_addr) == ("447700900123", "HERALD")
        assert receipt.tlv(RECEIPTED_MESSAGE_ID) == resp_id
        assert receipt.tlv(MESSAGE_STATE) == outcome.state
        nec = receipt.tlv(NETWORK_ERROR_CODE)
        assert nec is not None and nec.error_code == outcome.error
        parsed = receipt_of(receipt)
        assert parsed.message_id == resp_id and parsed.state is outcome.state
        assert parsed.text == "Your code: 4711" and parsed.submit_date is not None
        await eventually(lambda: sim.counters.receipts_acked == 1, "the receipt acked")
        assert sim.message_state(resp_id) is outcome.state


async def test_the_mix_is_seeded_and_reproducible() -> None:
    mix = OutcomeMix(((Outcome.DELIVERED, 1.0), (Outcome.UNDELIVERED, 1.0)))

    async def run(seed: int) -> list[tuple[str, str]]:
        async with running(outcomes=mix, seed=seed) as sim, \
                bound_client(sim.port) as (client, inbox):
            for i in range(16):  # one at a time: arrival order is the order sent
                await client.submit(submit(f"4477009{i:05d}"))
            await inbox.wait(16)
            return [(r.source_addr, receipt_of(r).stat) for r in inbox.receipts]

    first, again, other = await run(5), await run(5), await run(6)
    assert sorted(first) == sorted(again)
    assert {stat for _, stat in first} == {"DELIVRD", "UNDELIV"}
    assert sorted(first) != sorted(other)


async def test_receipt_ids_take_the_configured_form() -> None:
    async with running(id_style=IdStyle.HEX, receipt_id=ReceiptIdForm.DECIMAL) as sim, \
            bound_client(sim.port) as (client, inbox):
        resp_id = message_id(await client.submit(submit("447700900123")))
        (receipt,) = await inbox.wait(1)
        quoted = receipt_of(receipt).message_id
        assert quoted == str(int(resp_id, 16))
        assert ids_match(resp_id, quoted, IdPolicy.HEX_TO_DEC)
        assert not ids_match(resp_id, quoted, IdPolicy.AS_IS)


@pytest.mark.parametrize(("registered_delivery", "expected"), [
    (0, set()), (1, {"447700900001", "99907"}), (2, {"99907"}),
])
async def test_receipts_follow_registered_delivery(registered_delivery: int,
                                                   expected: set[str]) -> None:
    async with running(receipt_delay=(0.05, 0.05)) as sim, \
            bound_client(sim.port) as (client, inbox):
        for destination in ("447700900001", "99907"):
            await client.submit(submit(destination, registered_delivery=registered_delivery))
        await eventually(lambda: sim.scheduled == 0, "receipt times reached")
        await eventually(lambda: sim.counters.receipts_acked == len(expected),
                         "the expected receipts acked")
        assert {r.source_addr for r in inbox.receipts} == expected


async def test_receipts_wait_for_a_receiver_bind_then_all_arrive() -> None:
    async with running() as sim, bound_client(sim.port, BindTransmitter(
            system_id=SYSTEM_ID, password=PASSWORD)) as (tx, tx_inbox):
        ids = [message_id(await tx.submit(submit(f"44770090{i:04d}"))) for i in range(5)]
        await eventually(lambda: sim.held(SYSTEM_ID) == 5, "5 receipts held")
        assert sim.held("someone-else") == 0
        async with bound_client(sim.port, BindReceiver(
                system_id="other", password=PASSWORD)) as (_, other_inbox):
            await asyncio.sleep(0.05)
            assert other_inbox.delivered == [] and sim.held(SYSTEM_ID) == 5
        async with bound_client(sim.port, BindReceiver(
                system_id=SYSTEM_ID, password=PASSWORD)) as (_, rx_inbox):
            await rx_inbox.wait(5)
            assert [receipt_of(r).message_id for r in rx_inbox.delivered] == ids
            assert sim.held() == 0
        assert tx_inbox.delivered == []


async def test_the_held_receipts_are_bounded() -> None:
    async with running(max_held_receipts=3) as sim, bound_client(sim.port, BindTransmitter(
            system_id=SYSTEM_ID, password=PASSWORD)) as (tx, _):
        for i in range(5):
            await tx.submit(submit(f"44770090{i:04d}"))
        await eventually(lambda: sim.counters.dropped == 2, "2 receipts dropped")
        assert sim.held() == 3


async def test_an_unanswered_receipt_is_sent_again_on_the_next_bind() -> None:
    async with running() as sim:
        silent = Inbox(answer=False)
        async with bound_client(sim.port, inbox=silent) as (client, _):
            resp_id = message_id(await client.submit(submit("447700900123")))
            await silent.wait(1)
        # the connection ended with the deliver_sm unanswered: it goes back
        await eventually(lambda: sim.held(SYSTEM_ID) == 1, "the receipt back in the outbox")
        async with bound_client(sim.port) as (_, inbox):
            (again,) = await inbox.wait(1)
        assert receipt_of(again).message_id == resp_id
        assert sim.counters.redeliveries == 1 and sim.counters.receipts_acked == 1


async def test_a_receipt_refused_for_good_is_dropped() -> None:
    async with running() as sim, bound_client(
            sim.port, inbox=Inbox(status=S.ESME_RX_P_APPN)) as (client, inbox):
        await client.submit(submit("447700900123"))
        await inbox.wait(1)
        await eventually(lambda: sim.counters.dropped == 1, "the receipt dropped")
        assert sim.held() == 0 and sim.scheduled == 0


# ------------------------------------------------------ deterministic behaviours


@pytest.mark.parametrize(("destination", "status"), [
    ("99903", S.ESME_RSUBMITFAIL),
    ("+99904123", S.ESME_RTHROTTLED),
    ("99905", S.ESME_RMSGQFUL),
    ("99906", S.ESME_RINVDSTADR),
    ("", S.ESME_RINVDSTADR),
])
async def test_refusing_destinations_answer_their_status(destination: str,
                                                         status: int) -> None:
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        resp = await client.submit(submit(destination))
        assert resp.command_status == status
        assert sim.counters.refused == 1 and sim.counters.throttled == 0
        await client.submit(submit("447700900123"))  # still serving
        await inbox.wait(1)
        assert len(inbox.delivered) == 1
        assert sim.counters.statuses == {status: 1, 0: 1}


async def test_a_swallowed_submit_gets_no_answer_and_the_rest_go_on() -> None:
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        swallowed = asyncio.ensure_future(client.submit(submit("9990212")))
        resp_id = message_id(await client.submit(submit("447700900123")))
        await inbox.wait(1)
        await asyncio.sleep(0.1)
        assert not swallowed.done()
        swallowed.cancel()
        assert sim.counters.swallowed == 1 and sim.counters.accepted == 1
        assert {(r.destination, r.status) for r in sim.records} == {
            ("9990212", None), ("447700900123", 0)}
        assert receipt_of(inbox.delivered[0]).message_id == resp_id


async def test_delay_digits_set_the_receipt_time() -> None:
    async with running(receipt_delay=(30.0, 30.0)) as sim, \
            bound_client(sim.port) as (client, inbox):
        late = message_id(await client.submit(submit("9990101")))
        soon = message_id(await client.submit(submit("9990100")))
        await client.submit(submit("447700900123"))  # the configured 30 s
        await inbox.wait(2, timeout=4)
        assert [receipt_of(r).message_id for r in inbox.delivered] == [soon, late]
        assert sim.scheduled == 1


@pytest.mark.parametrize(("destination", "stat", "state"), [
    ("99907555", "UNDELIV", MessageState.UNDELIVERABLE),
    ("99908555", "EXPIRED", MessageState.EXPIRED),
])
async def test_failure_receipts_by_destination(destination: str, stat: str,
                                               state: MessageState) -> None:
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        resp_id = message_id(await client.submit(submit(destination)))
        (receipt,) = await inbox.wait(1)
        parsed = receipt_of(receipt)
        assert (parsed.message_id, parsed.stat, parsed.state) == (resp_id, stat, state)
        assert receipt.tlv(MESSAGE_STATE) == state


async def test_mo_echo_sends_the_text_back() -> None:
    text = "Grüße 😀"
    body = text.encode("utf-16-be")
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        await client.submit(submit("99909777", body, data_coding=8, source="447700900999"))
        await inbox.wait(2)
        (mo,) = inbox.mo
        assert (mo.source_addr, mo.destination_addr) == ("99909777", "447700900999")
        read = read_message(mo.short_message, esm_class=mo.esm_class,
                            data_coding=mo.data_coding, smsc_default=SmscDefault.GSM7)
        assert read.text == text
        assert len(inbox.receipts) == 1
        await eventually(lambda: sim.counters.mo_acked == 1, "the MO acked")


async def test_mo_echo_of_a_data_sm_payload() -> None:
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        resp = await client.submit(DataSm(source_addr="HERALD", destination_addr="99909",
                                          tlvs=(MESSAGE_PAYLOAD(b"y" * 300),)))
        assert resp.command_status == 0 and resp.message_id  # type: ignore[attr-defined]
        await inbox.wait(1)
        (mo,) = inbox.mo
        assert mo.tlv(MESSAGE_PAYLOAD) == b"y" * 300 and mo.short_message == b""
        assert sim.records[0].command == "data_sm"


@pytest.mark.parametrize(("destination", "first"), [("99910", False), ("447700900123", True)])
async def test_receipt_before_response_is_written_first(destination: str,
                                                        first: bool) -> None:
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        assert client.conn is not None
        # the connection's own future: resolved the moment the response is read
        pending = client.conn.send(submit(destination, b"race-1"))
        inbox.watch["race-1"] = pending
        resp_id = message_id(await pending)
        (receipt,) = await inbox.wait(1)
        assert receipt_of(receipt).message_id == resp_id
        # was the submit_sm_resp already read when the receipt was?
        assert inbox.response_seen_first["race-1"] is first


async def test_out_of_order_sends_enroute_after_delivered() -> None:
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        resp_id = message_id(await client.submit(submit("99911")))
        await inbox.wait(2)
        receipts = [receipt_of(r) for r in inbox.delivered]
        assert [(r.message_id, r.state) for r in receipts] == [
            (resp_id, MessageState.DELIVERED), (resp_id, MessageState.ENROUTE)]
        assert sim.message_state(resp_id) is MessageState.DELIVERED


async def test_accept_once_then_fail_per_number() -> None:
    async with running() as sim, bound_client(sim.port) as (client, _):
        statuses = [(await client.submit(submit(d))).command_status
                    for d in ("9991201", "9991201", "9991202", "9991201")]
        assert statuses == [0, S.ESME_RSUBMITFAIL, 0, S.ESME_RSUBMITFAIL]


async def test_no_receipt_destination_never_gets_one() -> None:
    async with running(receipt_delay=(0.02, 0.02)) as sim, \
            bound_client(sim.port) as (client, inbox):
        quiet = message_id(await client.submit(submit("99913")))
        await client.submit(submit("447700900123"))
        await inbox.wait(1)
        await asyncio.sleep(0.1)
        assert [r.source_addr for r in inbox.delivered] == ["447700900123"]
        assert sim.message_state(quiet) is MessageState.ENROUTE


# ------------------------------------------------------------------ TPS


async def test_submits_over_the_tps_limit_are_throttled() -> None:
    # 60 at once against 5/s with a bucket of 5: only a run slower than 11 s
    # could see no throttling
    async with running(tps=5.0, tps_burst=5.0) as sim, \
            bound_client(sim.port) as (client, _):
        responses = await asyncio.gather(
            *(client.submit(submit(f"44770090{i:04d}")) for i in range(60)))
        throttled = sum(r.command_status == S.ESME_RTHROTTLED for r in responses)
        accepted = sum(r.command_status == 0 for r in responses)
        assert throttled > 0 and accepted >= 5 and throttled + accepted == 60
        assert sim.counters.throttled == throttled


async def test_submits_far_under_the_tps_limit_are_not_throttled() -> None:
    async with running(tps=10_000.0) as sim, bound_client(sim.port) as (client, _):
        responses = await asyncio.gather(
            *(client.submit(submit(f"44770090{i:04d}")) for i in range(60)))
        assert {r.command_status for r in responses} == {0}
        assert sim.counters.throttled == 0


# ------------------------------------------------- other operations and record


async def test_submit_multi_answers_failures_per_destination() -> None:
    async with running() as sim, bound_client(sim.port) as (client, inbox):
        resp = await client.submit(SubmitMulti(
            source_addr="HERALD", registered_delivery=1, short_message=b"to many",
            dest_addresses=(SmeAddress(1, 1, "447700900001"), SmeAddress(1, 1, "99903"),
                            SmeAddress(1, 1, "99907"))))
        assert resp.command_status == 0
        (failed,) = resp.unsuccess_smes  # type: ignore[attr-defined]
        assert (failed.address, failed.error_status_code) == ("99903", S.ESME_RSUBMITFAIL)
        await inbox.wait(2)
        stats = {r.source_addr: receipt_of(r).stat for r in inbox.delivered}
        assert stats == {"447700900001": "DELIVRD", "99907": "UNDELIV"}
        assert [r.status for r in sim.records] == [0, S.ESME_RSUBMITFAIL, 0]
        lists = await client.submit(SubmitMulti(
            source_addr="HERALD", dest_addresses=(DistributionList("friends"),)))
        assert lists.command_status == S.ESME_RCNTSUBDL


async def test_query_sm_reports_the_state() -> None:
    async with running(receipt_delay=(0.3, 0.3)) as sim, \
            bound_client(sim.port) as (client, inbox):
        resp_id = message_id(await client.submit(submit("99907")))
        before = await client.submit(QuerySm(message_id=resp_id))
        assert before.message_state == MessageState.ENROUTE  # type: ignore[attr-defined]
        await inbox.wait(1)
        after = await client.submit(QuerySm(message_id=resp_id))
        assert after.message_state == MessageState.UNDELIVERABLE  # type: ignore[attr-defined]
        assert len(after.final_date) == 16  # type: ignore[attr-defined]
        unknown = await client.submit(QuerySm(message_id="nope"))
        assert unknown.command_status == S.ESME_RINVMSGID
        cancel = await client.submit(CancelSm(message_id=resp_id))
        assert cancel.command_status == S.ESME_RCANCELFAIL


async def test_dropped_receipts_are_never_sent_but_query_sm_tells_the_outcome() -> None:
    async with running(receipt_delay=(0.02, 0.02), drop_receipts=1.0, seed=3) as sim, \
            bound_client(sim.port) as (client, inbox):
        delivered = message_id(await client.submit(submit("447700900123")))
        undelivered = message_id(await client.submit(submit("99907")))
        await eventually(lambda: sim.message_state(undelivered) is MessageState.UNDELIVERABLE,
                         "the outcome reached")
        await asyncio.sleep(0.1)
        assert inbox.delivered == []
        assert sim.counters.receipts_lost == 2 and sim.counters.receipts_sent == 0
        answer = await client.submit(QuerySm(message_id=delivered))
        assert answer.message_state == MessageState.DELIVERED  # type: ignore[attr-defined]


async def test_a_share_of_receipts_is_dropped_the_same_way_for_a_seed() -> None:
    received = []
    for _ in range(2):
        async with running(drop_receipts=0.5, seed=11) as sim, \
                bound_client(sim.port) as (client, inbox):
            for i in range(40):
                await client.submit(submit(f"4477009{i:05d}"))
            await inbox.wait(40 - sim.counters.receipts_lost)
            assert len(inbox.receipts) + sim.counters.receipts_lost == 40
            received.append(sorted(r.source_addr for r in inbox.receipts))
    assert 0 < len(received[0]) < 40
    assert received[0] == received[1]  # the seed decides which are lost


def test_drop_receipts_must_be_a_share() -> None:
    with pytest.raises(SimConfigError, match="drop-receipts"):
        SimConfig(drop_receipts=1.5)


async def test_the_record_file_lists_every_submit(tmp_path: Path) -> None:
    path = tmp_path / "record.tsv"
    async with running(record=path, record_content=RecordContent.HEX) as sim, \
            bound_client(sim.port) as (client, _):
        ids = [message_id(await client.submit(submit("447700900123", b"same")))
               for _ in range(2)]
        await client.submit(submit("99905", b"full"))
        await client.submit(submit("447700900124", "é".encode("latin-1"), data_coding=3,
                                   esm_class=3))
    records = read_records(path)
    assert [(r.destination, r.content, r.message_id, r.status) for r in records] == [
        ("447700900123", "hex:" + b"same".hex(), ids[0], 0),
        ("447700900123", "hex:" + b"same".hex(), ids[1], 0),
        ("99905", "hex:" + b"full".hex(), "", S.ESME_RMSGQFUL),
        ("447700900124", "hex:e9", records[3].message_id, 0),
    ]
    assert {r.system_id for r in records} == {SYSTEM_ID}
    assert (records[3].data_coding, records[3].esm_class) == (3, 3)
    assert records == sim.records


async def test_the_record_is_flushed_while_running(tmp_path: Path) -> None:
    path = tmp_path / "record.tsv"
    async with running(record=path, keep_records=False) as sim, \
            bound_client(sim.port) as (client, _):
        for i in range(3):
            await client.submit(submit(f"44770090{i:04d}", b"x"))
        await eventually(lambda: len(read_records(path)) == 3, "3 records on disk", 3.0)
        assert sim.records == []
        digests = {r.content for r in read_records(path)}
        assert len(digests) == 1 and digests.pop().startswith("sha256:")
