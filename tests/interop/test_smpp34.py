"""PyPI smpp34 1.5.0 (Rust core) against herald: its client to herald's server,
and herald's client to its server.

Quirks of smpp34's server that herald's client must live with
(tests/peers/README.md): it may send a receipt before the submit_sm_resp that
carries the receipted id, and it closes on unbind without an unbind_resp.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from herald.net import (
    ClientHandler,
    ClientSettings,
    SmppClient,
    SmppConnection,
)
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.events import CloseReason
from herald.smpp.pdus import (
    BindTransceiver,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    Request,
    SubmitSm,
    SubmitSmResp,
)
from herald.smpp.receipts import is_receipt, receipt_of
from herald.smpp.session import SessionConfig
from herald.smpp.states import Role
from peers.base import Recorder
from peers.smpp34_peer import Decision, Smpp34Client, Smpp34Server, Submit

from .conftest import PHONE, SENDER, WAIT, HeraldSmsc, start_herald

pytestmark = pytest.mark.interop

S = CommandStatus

GSM_OCTETS = b"Hello \x1b(world\x1b) \x1be"  # GSM 03.38 unpacked, escapes as 0x1B pairs
GSM_TEXT = "Hello {world} €"
UCS2_TEXT = "Grüße 😀"


# ---- smpp34 client -> herald server ------------------------------------------------------


async def test_smpp34_client_submits_gets_receipts_mo_and_answers_enquire_link() -> None:
    """smpp34 answers the enquire_link herald's session sends on its own: the
    idle session outlives several probe rounds."""
    smsc = HeraldSmsc()
    # herald probes an idle peer every 0.1 s and gives up on it 0.3 s later
    session = SessionConfig(role=Role.SMSC, window=64, enquire_link_interval=0.1,
                            response_timeout=0.3)
    server = await start_herald(smsc, session=session)
    try:
        async with Smpp34Client(server.port, "esme1", "secret12") as esme:
            gsm = await esme.submit(PHONE, GSM_OCTETS, source_addr=SENDER,
                                    registered_delivery=1)
            ucs2 = await esme.submit(PHONE, UCS2_TEXT.encode("utf-16-be"), source_addr=SENDER,
                                     data_coding=8, registered_delivery=1)
            burst = await asyncio.gather(*(
                esme.submit(PHONE, f"burst {n}".encode(), source_addr=SENDER) for n in range(40)
            ))
            receipts = await esme.delivered.await_for(lambda d: d.is_receipt, count=2,
                                                      timeout=WAIT)
            conn = await smsc.wait_bound()
            await asyncio.sleep(0.6)  # several automatic enquire_link rounds while idle
            assert conn.is_open, "herald closed the idle smpp34 session: enquire_link unanswered"
            mo = await smsc.deliver(conn, DeliverSm(source_addr=PHONE, destination_addr=SENDER,
                                                    short_message=b"MO @ 12:00"))
            (got,) = await esme.delivered.await_for(lambda d: not d.is_receipt, timeout=WAIT)
        await smsc.until(lambda: smsc.closed, "close after unbind")
    finally:
        await smsc.drain()
        await server.stop(timeout=1)

    assert (gsm.command_status, ucs2.command_status) == (0, 0)
    assert all(r.command_status == 0 for r in burst)
    # smpp34 sends the burst concurrently (arrival order varies) and must match
    # every answer to its own request: the id herald gave each text
    text_of = {m.message_ids[0]: m.text for m in smsc.messages}
    assert len(text_of) == 42
    assert [text_of[r.message_id or ""] for r in (gsm, ucs2, *burst)] == [
        GSM_TEXT, UCS2_TEXT, *(f"burst {n}" for n in range(40))]
    assert {r.receipted_message_id for r in receipts} == {gsm.message_id, ucs2.message_id}
    assert all(r.message_state == MessageState.DELIVERED for r in receipts)
    assert all(s.response is not None and s.response.command_status == 0 for s in smsc.sent)
    assert mo.response is not None and mo.response.command_status == 0
    assert (got.source_addr, got.short_message, got.esm_class) == (PHONE, b"MO @ 12:00", 0)
    assert smsc.closed == [("esme1", CloseReason.UNBOUND)]


# ---- herald client -> smpp34 server ------------------------------------------------------


class Collect(ClientHandler):
    """Records every deliver_sm herald's client receives, and when."""

    def __init__(self) -> None:
        self.delivered: Recorder[tuple[float, DeliverSm]] = Recorder("herald client deliver_sm")

    def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
        assert isinstance(request, DeliverSm)
        self.delivered.append((time.monotonic(), request))
        conn.respond(request.response())


def herald_client(port: int, handler: ClientHandler) -> SmppClient:
    return SmppClient(ClientSettings(
        "127.0.0.1", port, BindTransceiver(system_id="herald", password="pw"),
        session=SessionConfig(role=Role.ESME, window=10), reconnect_min=0.05,
        reconnect_max=0.2), handler)


async def test_herald_client_to_smpp34_server_submit_receipt_and_unbind() -> None:
    def policy(submit: Submit) -> Decision:
        early = submit.destination_addr == "4915100001"
        return Decision(message_id=f"s34-{submit.destination_addr[-1]}",
                        receipt_before_resp=early)

    collect = Collect()
    async with Smpp34Server(policy=policy) as smsc:
        client = herald_client(smsc.port, collect)
        await client.start()
        try:
            await client.wait_bound(WAIT)
            late = await client.submit(SubmitSm(
                source_addr=SENDER, destination_addr=PHONE, registered_delivery=1,
                short_message=GSM_OCTETS))
            early_submit = asyncio.ensure_future(client.submit(SubmitSm(
                source_addr=SENDER, destination_addr="4915100001", registered_delivery=1,
                data_coding=8, short_message=UCS2_TEXT.encode("utf-16-be"))))
            early = await asyncio.wait_for(early_submit, WAIT)
            answered_at = time.monotonic()
            delivered = await collect.delivered.await_for(count=2, timeout=WAIT)
            (bound,) = await smsc.binds.await_for(timeout=WAIT)
            submits = await smsc.submits.await_for(timeout=WAIT, count=2)
            conn = client.conn
            assert conn is not None
        finally:
            started = time.monotonic()
            await client.stop(timeout=2)
            stop_took = time.monotonic() - started

    assert isinstance(late, SubmitSmResp) and isinstance(early, SubmitSmResp)
    assert (late.command_status, late.message_id) == (0, "s34-5")
    assert (early.command_status, early.message_id) == (0, "s34-1")
    assert bound.system_id == "herald"
    assert [s.short_message for s in submits] == [GSM_OCTETS, UCS2_TEXT.encode("utf-16-be")]
    assert [s.data_coding for s in submits] == [0, 8]

    assert len(collect.delivered) == 2
    receipts = {receipt_of(d).message_id: (at, d) for at, d in delivered}
    assert set(receipts) == {"s34-5", "s34-1"}
    assert all(is_receipt(d) for _, d in receipts.values())
    assert all(receipt_of(d).state is MessageState.DELIVERED for _, d in receipts.values())
    # smpp34's quirk, handled: the receipt for "s34-1" reached herald's client
    # before the submit_sm_resp that told it the id
    assert receipts["s34-1"][0] < answered_at
    # smpp34's server answers unbind with unbind_resp in some runs and just closes
    # in others (3 and 5 of 8 here, a race in its core): either way herald's client
    # ends at once instead of waiting out its unbind timer
    assert stop_took < 1.0, f"stop took {stop_took:.2f}s"
    assert conn.closed.done() and conn.closed.result() in (
        CloseReason.UNBOUND, CloseReason.CONNECTION_LOST)


# ---- enquire_link sent by the application ------------------------------------------------

# An enquire_link answer takes a loopback round trip: milliseconds.
PONG_WAIT = 1.0
async def test_herald_server_enquire_link_to_smpp34_client() -> None:
    smsc = HeraldSmsc()
    server = await start_herald(smsc)
    try:
        async with Smpp34Client(server.port, "esme1", "secret12"):
            conn = await smsc.wait_bound()
            pong = await asyncio.wait_for(conn.request(EnquireLink()), PONG_WAIT)
    finally:
        await server.stop(timeout=1)
    assert isinstance(pong, EnquireLinkResp) and pong.command_status == 0


async def test_herald_client_enquire_link_to_smpp34_server() -> None:
    async with Smpp34Server() as smsc:
        client = herald_client(smsc.port, Collect())
        await client.start()
        try:
            await client.wait_bound(WAIT)
            pong = await asyncio.wait_for(client.submit(EnquireLink()), PONG_WAIT)
        finally:
            await client.stop(timeout=1)
    assert isinstance(pong, EnquireLinkResp) and pong.command_status == 0
