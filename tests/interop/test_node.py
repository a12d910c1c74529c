"""npm smpp 0.5.1 (node) as an ESME against herald's SMPP server.

node-smpp chooses data_coding itself for text (tests/peers/README.md): GSM
03.38 septets labelled data_coding **1** (IA5), else Latin-1 (3), else UCS-2
(8). herald reads data_coding 1 as SMPP 3.4 §5.2.19 defines it, IA5 (ASCII):
text whose GSM and ASCII codes agree arrives intact, anything else does not.
The test pins both, so a change on either side shows here.
"""

from __future__ import annotations

import asyncio

import pytest

from herald.net import SmppServer
from herald.smpp.constants import MessageState
from herald.smpp.events import CloseReason
from herald.smpp.pdus import DeliverSm
from herald.smpp.receipts import parse_receipt
from peers import executable, node_smpp_dir
from peers.node import NodeMessage, run_node_client_async

from .conftest import PHONE, SENDER, WAIT, HeraldSmsc

pytestmark = pytest.mark.interop

PLAIN = "Your code is 482913, valid 10 min."  # GSM 03.38 and ASCII agree on every character
GSM_TEXT = "Hello {world} €"
GSM_OCTETS = b"Hello \x1b(world\x1b) \x1be"  # unpacked septets, escapes as 0x1B pairs
UMLAUTS = "Grüße"  # in GSM 03.38's basic table: ü is 0x7E, ß is 0x1E
LATIN1 = "naïve âme"  # ï and â are not in GSM 03.38, so node picks Latin-1
UCS2_TEXT = "Grüße 😀 привет"
MO_TEXT = "Ja, bitte 😀"


async def test_node_client_binds_submits_gsm_latin1_ucs2_and_receives_deliver_sm(
    herald: tuple[SmppServer, HeraldSmsc],
) -> None:
    server, smsc = herald
    # Look for the peer here, not in the task below: a missing peer must skip
    # (or fail under CI) this test, not vanish inside a task (issue 8 item 12).
    executable("node"), node_smpp_dir()
    messages = [
        NodeMessage(PHONE, text=PLAIN, source_addr=SENDER, registered_delivery=1),
        NodeMessage(PHONE, text=UCS2_TEXT, source_addr=SENDER, registered_delivery=1),
        NodeMessage(PHONE, text=LATIN1, source_addr=SENDER),
        NodeMessage(PHONE, octets=GSM_OCTETS, data_coding=0, source_addr=SENDER),
        NodeMessage(PHONE, text=GSM_TEXT, source_addr=SENDER),
        NodeMessage(PHONE, text=UMLAUTS, source_addr=SENDER),
    ]
    run_task = asyncio.ensure_future(run_node_client_async(
        server.port, "esme1", "secret12", messages, expect_deliver=3, timeout=WAIT,
        interface_version=0x34))
    try:
        conn = await smsc.wait_bound()
        await smsc.wait_messages(len(messages))
        mo = await smsc.deliver(conn, DeliverSm(
            source_addr=PHONE, destination_addr=SENDER, data_coding=8,
            short_message=MO_TEXT.encode("utf-16-be")))
        run = await run_task
    finally:
        if not run_task.done():
            run_task.cancel()

    assert run.bind_status == 0
    assert all(r.ok for r in run.submit_resps)
    assert [r.message_id for r in run.submit_resps] == [a.message_id for a in smsc.arrivals]
    assert [s.data_coding for s in run.sent] == [1, 8, 3, 0, 1, 1]
    texts = [m.text for m in smsc.messages]
    assert texts[:4] == [PLAIN, UCS2_TEXT, LATIN1, GSM_TEXT]
    # node-smpp's GSM-as-IA5 label, read by herald as IA5: escapes and the
    # characters whose GSM and ASCII codes differ arrive as ASCII controls/symbols
    assert texts[4:] == ["Hello \x1b(world\x1b) \x1be", "Gr~\x1ee"]

    receipts = [d for d in run.delivered if d.is_receipt]
    assert sorted(r.receipted_message_id or "" for r in receipts) == sorted(
        r.message_id or "" for r in run.submit_resps[:2])
    assert all(r.message_state == MessageState.DELIVERED for r in receipts)
    assert all(parse_receipt(r.short_message).stat == "DELIVRD" for r in receipts)
    (got,) = [d for d in run.delivered if not d.is_receipt]
    assert mo.response is not None and mo.response.command_status == 0
    assert (got.data_coding, got.short_message.decode("utf-16-be")) == (8, MO_TEXT)
    assert got.text == MO_TEXT  # node's own decoder agrees
    await smsc.until(lambda: smsc.closed, "close after node's unbind")
    assert smsc.closed == [("esme1", CloseReason.UNBOUND)]


async def test_node_client_binding_as_smpp_5_0_is_accepted(
    herald: tuple[SmppServer, HeraldSmsc],
) -> None:
    """node-smpp binds with interface_version 0x50 unless told otherwise."""
    server, smsc = herald
    run = await run_node_client_async(
        server.port, "esme1", "secret12", [NodeMessage(PHONE, text=PLAIN)], timeout=WAIT)
    assert run.bind_status == 0
    assert [m.text for m in smsc.messages] == [PLAIN]
