"""cancel_sm and replace_sm from herald's own client, over real sockets to the real front."""

from __future__ import annotations

import time

from herald.ids import SortableIdGenerator
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.pdus import (
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    QuerySm,
    ReplaceSm,
    SubmitSm,
)
from herald.smpp.receipts import receipt_of
from herald.smpp.tlv import MESSAGE_PAYLOAD
from herald.store import NewMessage, Source, Status, StatusUpdate

from .test_front import DEST, Collect, Front, bound, eventually

S = CommandStatus
IN_AN_HOUR = "000000010000000R"  # SMPP 3.4 §7.1.1 relative time


def _submit(**fields: object) -> SubmitSm:
    values: dict[str, object] = {"source_addr": "ACME", "source_addr_ton": 5,
                                 "destination_addr": DEST, "short_message": b"Your code is 1234",
                                 "schedule_delivery_time": IN_AN_HOUR}
    values.update(fields)
    return SubmitSm(**values)  # type: ignore[arg-type]


async def _id(client: object, pdu: SubmitSm) -> str:
    resp = await client.submit(pdu)  # type: ignore[attr-defined]
    assert resp.command_status == 0
    return str(resp.message_id)


async def test_cancel_sm_cancels_a_waiting_message_and_reports_it_deleted(front: Front) -> None:
    collect = Collect()
    trx = await bound(front.client(BindTransceiver, handler=collect))
    message_id = await _id(trx, _submit(registered_delivery=1))
    resp = await trx.submit(CancelSm(message_id=message_id, source_addr="ACME",
                                     source_addr_ton=5, destination_addr=DEST))
    assert resp.command_status == S.ESME_ROK
    assert (await front.store.get_message(message_id)).status is Status.CANCELLED
    assert await front.store.claim(10, time.time() + 7200, lease=30) == ()  # never goes out
    await eventually(lambda: len(collect.got) == 1)
    receipt = receipt_of(collect.got[0])
    assert (receipt.message_id, receipt.stat, receipt.state) == (
        message_id, "DELETED", MessageState.DELETED)
    query = await trx.submit(QuerySm(message_id=message_id, source_addr="ACME"))
    assert query.message_state == MessageState.DELETED  # type: ignore[attr-defined]
    again = await trx.submit(CancelSm(message_id=message_id, source_addr="ACME"))
    assert again.command_status == S.ESME_ROK  # cancelled already: the same answer
    await trx.stop()


async def test_cancel_sm_says_which_check_failed(front: Front) -> None:
    tx = await bound(front.client(BindTransmitter))
    waiting = await _id(tx, _submit())
    claimed = await _id(tx, _submit(schedule_delivery_time=""))
    sent = await _id(tx, _submit(schedule_delivery_time=""))
    await front.store.claim(10, time.time(), lease=30)
    await front.store.update_statuses([StatusUpdate(sent, Status.SENT, time.time())])
    cases = [
        (CancelSm(message_id="06hhgn2g03575kbrt78uq2gn1c", source_addr="ACME"), S.ESME_RINVMSGID),
        (CancelSm(message_id=waiting, source_addr="OTHER"), S.ESME_RINVSRCADR),
        (CancelSm(message_id=waiting, source_addr=""), S.ESME_RINVSRCADR),
        (CancelSm(message_id=waiting, source_addr="ACME", destination_addr="447911000000"),
         S.ESME_RINVDSTADR),
        (CancelSm(message_id=claimed, source_addr="ACME"), S.ESME_RCANCELFAIL),  # dispatch has it
        (CancelSm(message_id=sent, source_addr="ACME"), S.ESME_RCANCELFAIL),
    ]
    for pdu, status in cases:
        assert (await tx.submit(pdu)).command_status == status, pdu
    stored = await front.store.get_messages([waiting, claimed, sent])
    assert [stored[i].status for i in (waiting, claimed, sent)] == [
        Status.ACCEPTED, Status.QUEUED, Status.SENT]
    # the sender in another form a submit takes (international, with or without +)
    number = await _id(tx, _submit(source_addr="+14155552671", source_addr_ton=1))
    resp = await tx.submit(CancelSm(message_id=number, source_addr="14155552671",
                                    source_addr_ton=1))
    assert resp.command_status == S.ESME_ROK
    await tx.stop()


async def test_cancel_sm_without_an_id_cancels_the_waiting_ones_to_a_number(
    front: Front,
) -> None:
    tx = await bound(front.client(BindTransmitter))
    group = [await _id(tx, _submit()) for _ in range(3)]
    other = await _id(tx, _submit(destination_addr="447911000001"))
    otp = await _id(tx, _submit(service_type="OTP"))  # its class, kept as its tag
    named = CancelSm(source_addr="ACME", source_addr_ton=5, destination_addr=DEST,
                     service_type="CMT")  # herald keeps no such service_type
    assert (await tx.submit(named)).command_status == S.ESME_RCANCELFAIL
    by_class = CancelSm(source_addr="ACME", source_addr_ton=5, destination_addr=DEST,
                        service_type="otp")
    assert (await tx.submit(by_class)).command_status == S.ESME_ROK
    assert (await front.store.get_message(otp)).status is Status.CANCELLED
    no_destination = CancelSm(source_addr="ACME", source_addr_ton=5)
    assert (await tx.submit(no_destination)).command_status == S.ESME_RINVDSTADR
    stored = await front.store.get_messages([*group, other])
    assert all(m.status is Status.ACCEPTED for m in stored.values())
    pdu = CancelSm(source_addr="ACME", source_addr_ton=5, destination_addr="+" + DEST)
    assert (await tx.submit(pdu)).command_status == S.ESME_ROK
    stored = await front.store.get_messages([*group, other])
    assert [stored[i].status for i in group] == [Status.CANCELLED] * 3
    assert stored[other].status is Status.ACCEPTED
    assert (await tx.submit(pdu)).command_status == S.ESME_RCANCELFAIL  # none left
    await tx.stop()


async def test_replace_sm_replaces_body_times_and_receipt_request(front: Front) -> None:
    tx = await bound(front.client(BindTransmitter))
    message_id = await _id(tx, _submit(data_coding=8, short_message="Grüße".encode("utf-16-be")))
    before = await front.store.get_message(message_id)
    text = "Neuer Text 😀 " * 6  # UCS-2 in the message's own data_coding: two parts
    resp = await tx.submit(ReplaceSm(
        message_id=message_id, source_addr="ACME", source_addr_ton=5,
        schedule_delivery_time="000000020000000R", validity_period="000001000000000R",
        registered_delivery=1, short_message=text.encode("utf-16-be")))
    assert resp.command_status == S.ESME_ROK
    after = await front.store.get_message(message_id)
    assert after.body == text.encode("utf-16-be") and after.segments == 2
    assert (after.data_coding, after.encoding) == (before.data_coding, before.encoding)
    assert after.registered_delivery == 1
    assert after.send_at is not None and after.send_at - before.accepted_at > 7000
    assert after.expires_at - before.accepted_at > 86000
    assert after.status is Status.ACCEPTED
    # a body in message_payload; the times kept when not given
    resp = await tx.submit(ReplaceSm(message_id=message_id, source_addr="ACME",
                                     tlvs=(MESSAGE_PAYLOAD("Kurz".encode("utf-16-be")),)))
    assert resp.command_status == S.ESME_ROK
    last = await front.store.get_message(message_id)
    assert (last.body, last.segments, last.send_at, last.expires_at,
            last.registered_delivery) == ("Kurz".encode("utf-16-be"), 1, after.send_at,
                                          after.expires_at, 0)
    await tx.stop()


async def test_replace_sm_refusals(front: Front) -> None:
    tx = await bound(front.client(BindTransmitter))
    waiting = await _id(tx, _submit())
    claimed = await _id(tx, _submit(schedule_delivery_time=""))
    await front.store.claim(10, time.time(), lease=30)
    cases = [
        (ReplaceSm(message_id="06hhgn2g03575kbrt78uq2gn1c", source_addr="ACME",
                   short_message=b"x"), S.ESME_RINVMSGID),
        (ReplaceSm(message_id=waiting, source_addr="OTHER", short_message=b"x"),
         S.ESME_RINVSRCADR),
        (ReplaceSm(message_id=claimed, source_addr="ACME", short_message=b"x"),
         S.ESME_RREPLACEFAIL),
        (ReplaceSm(message_id=waiting, source_addr="ACME", short_message=b""),
         S.ESME_RREPLACEFAIL),  # a message needs a body
        (ReplaceSm(message_id=waiting, source_addr="ACME", short_message=b"x",
                   tlvs=(MESSAGE_PAYLOAD(b"y"),)), S.ESME_RINVOPTPARSTREAM),
        (ReplaceSm(message_id=waiting, source_addr="ACME", short_message=b"x",
                   validity_period="270115120000xx4+"), S.ESME_RINVEXPIRY),
        (ReplaceSm(message_id=waiting, source_addr="ACME", short_message=b"x",
                   validity_period="000000000010000R"), S.ESME_RINVEXPIRY),  # 10 s
        (ReplaceSm(message_id=waiting, source_addr="ACME", short_message=b"x",
                   schedule_delivery_time="000060000000000R"), S.ESME_RINVSCHED),  # 60 days
        (ReplaceSm(message_id=waiting, source_addr="ACME",
                   tlvs=(MESSAGE_PAYLOAD(b"x" * 40_000),)), S.ESME_RINVMSGLEN),
    ]
    for pdu, status in cases:
        assert (await tx.submit(pdu)).command_status == status, pdu
    assert (await front.store.get_message(waiting)).body == b"Your code is 1234"
    await tx.stop()


async def test_only_smpp_messages_are_replaced(front: Front) -> None:
    tx = await bound(front.client(BindTransmitter))
    now = time.time()
    message_id = SortableIdGenerator().new_id(now)
    await front.store.accept([NewMessage(  # as the HTTP API stores a scheduled message
        id=message_id, account_id=front.account_id, source=Source.HTTP, to=DEST,
        sender="ACME", body=b"Hello", encoding="gsm7", data_coding=0, segments=1,
        accepted_at=now, send_at=now + 3600, expires_at=now + 7200)])
    resp = await tx.submit(ReplaceSm(message_id=message_id, source_addr="ACME",
                                     short_message=b"x"))
    assert resp.command_status == S.ESME_RREPLACEFAIL
    cancel = await tx.submit(CancelSm(message_id=message_id, source_addr="ACME"))
    assert cancel.command_status == S.ESME_ROK  # but any of the account's can be cancelled
    await tx.stop()
