"""PyPI smpplib 2.2.4 (pure-Python ESME) against herald's SMPP server.

smpplib splits long text by octets (tests/peers/README.md): it cuts GSM escape
pairs and UTF-16 surrogate pairs in two. herald joins the parts' octets before
decoding, so the text that arrives is whole; the per-part views below pin what
smpplib actually puts on the wire.
"""

from __future__ import annotations

import pytest

from herald.net import SmppServer
from herald.smpp.constants import CommandStatus, MessageState
from herald.smpp.pdus import DeliverSm
from herald.smpp.receipts import parse_receipt
from peers.base import PeerRefused
from peers.smpplib_client import SmpplibClient

from .conftest import PHONE, SENDER, WAIT, HeraldSmsc

pytestmark = pytest.mark.interop

S = CommandStatus

GSM_TEXT = "Hello {world} € [ok] ~ ^"
UCS2_TEXT = "Grüße 😀 привет"
# smpplib cuts GSM parts after 153 octets: '€' (0x1B 0x65) at octets 152-153
# puts the escape at the end of part 1 and 'e' at the start of part 2.
LONG_GSM = "a" * 152 + "€" + "b" * 100 + "{end}"
# UCS-2 parts are cut after 134 octets (67 units): the emoji's surrogate pair
# sits at units 66-67, so D83D ends part 1 and DE00 starts part 2.
LONG_UCS2 = "x" * 66 + "😀" + "Grüße " * 20 + "😀"
# SAR parts are cut at 153 octets too (although they carry no UDH).
LONG_SAR = "y" * 152 + "€" + "z" * 200


async def test_gsm_ucs2_long_udh_sar_and_payload_arrive_intact(
    herald: tuple[SmppServer, HeraldSmsc],
) -> None:
    server, smsc = herald
    async with SmpplibClient(server.port, "esme1", "secret12") as esme:
        sent = {
            GSM_TEXT: await esme.asend_text(PHONE, GSM_TEXT, source_addr=SENDER),
            UCS2_TEXT: await esme.asend_text(PHONE, UCS2_TEXT, source_addr=SENDER),
            LONG_GSM: await esme.asend_text(PHONE, LONG_GSM, source_addr=SENDER),
            LONG_UCS2: await esme.asend_text(PHONE, LONG_UCS2, source_addr=SENDER),
            LONG_SAR: await esme.asend_text(PHONE, LONG_SAR, source_addr=SENDER, long="sar"),
            "payload " + LONG_UCS2: await esme.asend_text(
                PHONE, "payload " + LONG_UCS2, source_addr=SENDER, long="payload"),
        }
        seqs = [s for group in sent.values() for s in group]
        resps = await esme.await_resps(seqs, timeout=WAIT)
        messages = await smsc.wait_messages(len(sent))

    assert [len(group) for group in sent.values()] == [1, 1, 2, 3, 3, 1]
    assert all(r.ok for r in resps), resps
    # every part got its own herald id, and the ids are the ones herald recorded
    assert [r.message_id for r in resps] == [a.message_id for a in smsc.arrivals]
    assert len({r.message_id for r in resps}) == len(resps)
    assert all(len(r.message_id or "") == 26 for r in resps)

    by_text = {m.text: m for m in messages}
    assert set(by_text) == set(sent), [m.error for m in messages]
    assert by_text[GSM_TEXT].data_coding == 0
    assert by_text[UCS2_TEXT].data_coding == 8
    assert [(m.method, len(m.parts)) for m in messages] == [
        ("single", 1), ("single", 1), ("udh", 2), ("udh", 3), ("sar", 3), ("payload", 1)]

    # what smpplib put on the wire: the escape pair and the surrogate pair cut in two
    gsm_parts = by_text[LONG_GSM].parts
    assert gsm_parts[0].inbound is not None and gsm_parts[1].inbound is not None
    assert gsm_parts[0].inbound.body.endswith(b"\x1b")
    assert gsm_parts[1].inbound.body.startswith(b"e")
    ucs2_parts = by_text[LONG_UCS2].parts
    assert ucs2_parts[0].inbound is not None and ucs2_parts[1].inbound is not None
    assert ucs2_parts[0].inbound.body.endswith(b"\xd8\x3d")
    assert ucs2_parts[1].inbound.body.startswith(b"\xde\x00")
    # read alone, each part is damaged; only the joined octets decode
    assert ucs2_parts[0].inbound.text is not None and ucs2_parts[0].inbound.text[-1] == "\ufffd"
    sar_parts = by_text[LONG_SAR].parts
    assert [a.concat[2:] if a.concat else None for a in sar_parts] == [(3, 1), (3, 2), (3, 3)]
    assert all(not a.pdu.esm_class & 0x40 for a in sar_parts)


async def test_receipts_and_mo_reach_smpplib(herald: tuple[SmppServer, HeraldSmsc]) -> None:
    server, smsc = herald
    async with SmpplibClient(server.port, "esme1", "secret12") as esme:
        seqs = await esme.asend_text(PHONE, LONG_GSM, source_addr=SENDER, registered_delivery=1)
        resps = await esme.await_resps(seqs, timeout=WAIT)
        receipts = await esme.delivered.await_for(lambda d: d.is_receipt, count=len(seqs),
                                                  timeout=WAIT)
        mo_text = "Antwort 😀 {ja}"
        conn = await smsc.wait_bound()
        mo = await smsc.deliver(conn, DeliverSm(
            source_addr=PHONE, destination_addr=SENDER, data_coding=8,
            short_message=mo_text.encode("utf-16-be")))
        (got,) = await esme.delivered.await_for(lambda d: not d.is_receipt, timeout=WAIT)

    ids = [r.message_id for r in resps]
    assert sorted(r.receipted_message_id for r in receipts) == sorted(ids)  # type: ignore[type-var]
    for rcpt in receipts:
        assert rcpt.message_state == MessageState.DELIVERED
        assert (rcpt.source_addr, rcpt.destination_addr) == (PHONE, SENDER)
        parsed = parse_receipt(rcpt.short_message)
        assert (parsed.message_id, parsed.stat) == (rcpt.receipted_message_id, "DELIVRD")
    assert all(s.response is not None and s.response.command_status == 0 for s in smsc.sent)
    assert mo.response is not None and mo.response.command_status == 0
    assert (got.data_coding, got.short_message.decode("utf-16-be")) == (8, mo_text)
    assert (got.source_addr, got.destination_addr) == (PHONE, SENDER)


async def test_wrong_password_is_refused_and_the_other_bind_keeps_working(
    herald: tuple[SmppServer, HeraldSmsc],
) -> None:
    server, smsc = herald
    async with SmpplibClient(server.port, "esme2", "other123") as good:
        with pytest.raises(PeerRefused) as refused:
            await SmpplibClient(server.port, "esme1", "wrong").aconnect()
        (seq,) = await good.asend_text(PHONE, "still here")
        (resp,) = await good.await_resps([seq], timeout=WAIT)
    assert refused.value.status == S.ESME_RINVPASWD
    assert resp.ok
    assert ("esme1", S.ESME_RINVPASWD) in smsc.binds
    assert [m.text for m in smsc.messages] == ["still here"]
