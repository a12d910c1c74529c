"""Debian Kannel 1.4.5 (bearerbox + smsbox) sending through herald's SMPP server.

A message goes in at Kannel's sendsms HTTP interface, Kannel submits it to
herald over SMPP (transceiver bind), herald answers with its id and then sends
a receipt deliver_sm, and Kannel reports the receipt to the message's dlr-url.
One Kannel and one herald server serve the whole module (Kannel takes about a
second to start); each test picks its own destination number.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from herald.net import SmppServer
from herald.smpp.constants import EsmType
from herald.smpp.pdus import DeliverSm
from herald.smpp.receipts import parse_receipt
from herald.smpp.tlv import MORE_MESSAGES_TO_SEND
from peers.kannel import Coding, DlrType, Kannel, Smsc

from .conftest import SENDER, WAIT, Arrival, HeraldSmsc, Message, start_herald

pytestmark = [pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

FAILING = "4915100005"  # herald answers this number's messages with an UNDELIV receipt


def stat_for(arrival: Arrival) -> str:
    return "UNDELIV" if arrival.pdu.destination_addr == FAILING else "DELIVRD"


Rig = tuple[SmppServer, HeraldSmsc, Kannel]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig() -> AsyncIterator[Rig]:
    smsc = HeraldSmsc(receipt=stat_for)
    server = await start_herald(smsc)
    try:
        async with Kannel(Smsc(port=server.port, system_id="esme1", password="secret12")) as k:
            yield server, smsc, k
    finally:
        await smsc.drain()
        await server.stop(timeout=1)


async def message_to(smsc: HeraldSmsc, number: str) -> Message:
    await smsc.until(lambda: any(m.destination_addr == number for m in smsc.messages),
                     f"message to {number}")
    (message,) = [m for m in smsc.messages if m.destination_addr == number]
    return message


async def test_gsm_text_arrives_intact_and_the_receipt_reaches_the_dlr_url(rig: Rig) -> None:
    _, smsc, kannel = rig
    number, text = "4915100001", "Hello {world} € [x] ~ ^ | \\ @ £ $"
    ticket = await kannel.asend(number, SENDER, text)
    message = await message_to(smsc, number)
    ack = await kannel.await_dlr(ticket.ref, DlrType.SMSC_ACK, timeout=WAIT)
    dlr = await kannel.await_dlr(ticket.ref, DlrType.DELIVERED, timeout=WAIT)

    assert message.text == text
    assert (message.method, message.data_coding, message.source_addr) == ("single", 0, SENDER)
    (arrival,) = message.parts
    assert arrival.pdu.esm_class == 0x03  # Kannel's store-and-forward mode bits
    assert arrival.pdu.registered_delivery & 0x01
    # Kannel kept herald's id from submit_sm_resp, and matched the receipt by it
    assert ack.foreign_id == dlr.foreign_id == arrival.message_id
    assert dlr.type is DlrType.DELIVERED
    receipt = parse_receipt(dlr.reply)
    assert (receipt.message_id, receipt.stat) == (arrival.message_id, "DELIVRD")
    # the receipt's own addresses: from the phone to the original sender
    assert (dlr.sender, dlr.receiver) == (number, SENDER)


async def test_ucs2_text_with_emoji_arrives_intact(rig: Rig) -> None:
    _, smsc, kannel = rig
    number, text = "4915100002", "Grüße 😀 привет"
    ticket = await kannel.asend(number, SENDER, text, coding=Coding.UCS2)
    message = await message_to(smsc, number)
    dlr = await kannel.await_dlr(ticket.ref, DlrType.DELIVERED, timeout=WAIT)

    assert (message.text, message.data_coding) == (text, 8)
    assert dlr.foreign_id == message.message_ids[0]


async def test_long_text_arrives_as_udh_parts_that_reassemble(rig: Rig) -> None:
    _, smsc, kannel = rig
    number = "4915100003"
    text = "Part one of a long reminder. " * 6 + "€{end}"  # 182 characters: 2 parts
    ticket = await kannel.asend(number, SENDER, text)
    message = await message_to(smsc, number)
    dlr = await kannel.await_dlr(ticket.ref, DlrType.DELIVERED, timeout=WAIT)

    assert message.text == text
    assert (message.method, len(message.parts)) == ("udh", 2)
    first, last = message.parts
    assert first.pdu.esm_class == last.pdu.esm_class == 0x43  # UDHI + store-and-forward
    assert first.pdu.tlv(MORE_MESSAGES_TO_SEND) == 1
    assert last.pdu.tlv(MORE_MESSAGES_TO_SEND) is None
    # Kannel asks for a receipt on the first part only (0x11: final receipt and
    # intermediate notifications, for a dlr-mask with BUFFERED); herald sends one
    assert (first.pdu.registered_delivery, last.pdu.registered_delivery) == (0x11, 0)
    await smsc.until(lambda: any(s.pdu.source_addr == number and s.response is not None
                                 for s in smsc.sent), "the receipt answered by Kannel")
    await asyncio.sleep(0.3)  # room for a second report, which must not come
    assert [s.pdu.source_addr for s in smsc.sent].count(number) == 1
    reports = sorted((d.type, d.foreign_id) for d in kannel.dlrs(ticket.ref))
    assert reports == [(DlrType.DELIVERED, first.message_id), (DlrType.SMSC_ACK, first.message_id)]
    assert dlr.foreign_id == first.message_id


async def test_undelivered_receipt_and_mo_reach_kannel(rig: Rig) -> None:
    _, smsc, kannel = rig
    ticket = await kannel.asend(FAILING, SENDER, "will fail")
    message = await message_to(smsc, FAILING)
    dlr = await kannel.await_dlr(ticket.ref, DlrType.DELIVERED | DlrType.UNDELIVERED,
                                 timeout=WAIT)
    mo_text = "STOP 😀"
    sent = await smsc.deliver(smsc.bound[-1], DeliverSm(
        source_addr="4915100009", destination_addr=SENDER, data_coding=8,
        short_message=mo_text.encode("utf-16-be")))
    mo = await kannel.await_mo(lambda m: m.sender == "4915100009", timeout=WAIT)

    assert dlr.type is DlrType.UNDELIVERED
    assert dlr.foreign_id == message.message_ids[0]
    assert parse_receipt(dlr.reply).stat == "UNDELIV"
    assert sent.response is not None and sent.response.command_status == 0
    assert (mo.text, mo.coding, mo.receiver) == (mo_text, 2, SENDER)
    assert all(s.pdu.esm_class in (EsmType.DELIVERY_RECEIPT, 0) for s in smsc.sent)
