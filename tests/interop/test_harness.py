"""The peer harnesses, checked peer against peer (no herald involved).

Each interop test here drives two independent implementations through the
harness that herald's interop tests use, and asserts what arrived on the
other side octet for octet, so a harness that silently stops delivering, or
that mis-parses a peer's output, fails here first. The unmarked tests check the
harness plumbing itself (receiver, bounded waits, event-loop guard). What the
smpplib and npm smpp clients put on the wire is pinned against herald's server
in test_smpplib.py and test_node.py.
"""

from __future__ import annotations

import asyncio

import pytest

from peers.base import PeerRefused, PeerStartError, PeerTimeout, Recorder, WrongContext
from peers.kannel import Coding, DlrType, Kannel, Smsc
from peers.node import NodeSmppServer, run_node_client_async
from peers.receiver import HttpReceiver
from peers.smpp34_peer import Decision, Smpp34Client, Smpp34Server, Submit
from peers.smpplib_client import CredentialsTooLong, SmpplibClient

ESME_RBINDFAIL = 0x0D
ESME_RTHROTTLED = 0x58
ACCOUNT = {"esme1": "secret12"}  # within smpplib's 15/8-character limits
PHONE = "4915112345"

# GSM 03.38 unpacked septets (3GPP TS 23.038 §6.2.1): '{' and '}' and '€' are
# escape pairs (0x1B 0x28, 0x1B 0x29, 0x1B 0x65).
GSM_TEXT = "Hello {world} €"
GSM_OCTETS = b"Hello \x1b(world\x1b) \x1be"
# UTF-16BE with the emoji as a surrogate pair (D83D DE00).
UCS2_TEXT = "Grüße 😀"
UCS2_OCTETS = UCS2_TEXT.encode("utf-16-be")


# ---- harness plumbing (no peer needed) --------------------------------------------------


def test_receiver_records_exact_octets_and_configured_answer() -> None:
    import urllib.error
    import urllib.request

    with HttpReceiver(status=503, body=b"busy") as rx:
        url = rx.url("/dlr?text=%00G%D8%3D%DE%00&type=8&x=a+b")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        refused.value.close()
        assert refused.value.code == 503
        (call,) = rx.calls.wait_for(timeout=5)
    assert call.path == "/dlr"
    assert call.param_bytes("text") == "G😀".encode("utf-16-be")
    assert call.param("type") == "8"
    assert call.param("x") == "a b"
    assert call.param_bytes("absent") is None


def test_recorder_wait_is_bounded_and_names_what_it_waited_for() -> None:
    recorder: Recorder[int] = Recorder("numbers", logs=lambda: "log tail here")
    recorder.append(1)
    with pytest.raises(PeerTimeout) as timeout:  # returns (raises) rather than waiting forever
        recorder.wait_for(lambda n: n > 5, timeout=0.1, what="a big number")
    assert "a big number" in str(timeout.value)
    assert "log tail here" in str(timeout.value)
    assert recorder.wait_for(lambda n: n == 1, timeout=0.1) == (1,)


async def test_blocking_wait_on_the_event_loop_is_refused() -> None:
    recorder: Recorder[int] = Recorder("numbers")
    with pytest.raises(WrongContext):
        recorder.wait_for(timeout=0.1)
    asyncio.get_running_loop().call_later(0.02, recorder.append, 7)
    assert await recorder.await_for(timeout=2) == (7,)


def test_smpplib_refuses_credentials_it_would_truncate() -> None:
    with pytest.raises(CredentialsTooLong):
        SmpplibClient(2775, "esme1", "longer-than-8")


# ---- npm smpp ----------------------------------------------------------------------------


@pytest.mark.interop
async def test_node_client_bind_refused_is_a_typed_error() -> None:
    async with NodeSmppServer(accounts=ACCOUNT) as smsc:
        with pytest.raises(PeerRefused) as refused:
            await run_node_client_async(smsc.port, "esme1", "wrong", timeout=5)
        unchecked = await run_node_client_async(smsc.port, "esme1", "wrong", timeout=5,
                                                check=False)
    assert refused.value.status == ESME_RBINDFAIL
    assert unchecked.bind_status == ESME_RBINDFAIL
    assert unchecked.submit_resps == ()


# ---- smpp34 ------------------------------------------------------------------------------


@pytest.mark.interop
async def test_smpp34_client_and_server_submit_receipt_mo_and_reject() -> None:
    def policy(submit: Submit) -> Decision:
        if submit.destination_addr == "4900058":
            return Decision(command_status=ESME_RTHROTTLED)
        return Decision(message_id=f"abc-{len(submit.short_message)}")

    async with Smpp34Server(policy=policy) as smsc, \
            Smpp34Client(smsc.port, "esme1", "secret12") as esme:
        ok = await esme.submit(PHONE, UCS2_OCTETS, data_coding=8, registered_delivery=1)
        throttled = await esme.submit("4900058", b"slow down")
        (receipt,) = await esme.delivered.await_for(lambda d: d.is_receipt, timeout=5)
        await smsc.deliver("4900000", b"MO text", source_addr=PHONE)
        (mo,) = await esme.delivered.await_for(lambda d: not d.is_receipt, timeout=5)
        (bound,) = await smsc.binds.await_for(timeout=5)
        submits = await smsc.submits.await_for(timeout=5, count=2)

    assert (ok.command_status, ok.message_id) == (0, f"abc-{len(UCS2_OCTETS)}")
    assert throttled.command_status == ESME_RTHROTTLED
    assert bound.system_id == "esme1"
    assert {s.short_message for s in submits} == {UCS2_OCTETS, b"slow down"}
    assert receipt.receipted_message_id == ok.message_id
    assert receipt.message_state == 2
    assert (mo.source_addr, mo.short_message) == (PHONE, b"MO text")


# ---- Kannel ------------------------------------------------------------------------------


# The server sends this number's receipt before its submit_sm_resp.
RECEIPT_FIRST = "4915100001"


@pytest.mark.interop
def test_kannel_through_node_server_texts_receipts_mo_and_early_receipt() -> None:
    with NodeSmppServer(accounts=ACCOUNT, receipt_before_resp=[RECEIPT_FIRST]) as smsc, \
            Kannel(Smsc(port=smsc.port, system_id="esme1", password="secret12")) as kannel:
        gsm = kannel.send(PHONE, "herald", GSM_TEXT)
        ucs2 = kannel.send(PHONE, "herald", UCS2_TEXT, coding=Coding.UCS2)
        delivered = [kannel.wait_for_dlr(t.ref, DlrType.DELIVERED) for t in (gsm, ucs2)]
        acks = [kannel.wait_for_dlr(t.ref, DlrType.SMSC_ACK) for t in (gsm, ucs2)]
        received = smsc.submits(2)
        smsc.deliver("4900000", octets=UCS2_OCTETS, source_addr=PHONE, data_coding=8)
        mo = kannel.wait_for_mo()
        status = kannel.status()

        # Kannel 1.4.5 quirk, pinned: a receipt that overtakes its submit_sm_resp
        # is acknowledged to the SMSC and then lost (the receipts above, in the
        # usual order, show that the harness itself delivers them).
        lost = kannel.send(RECEIPT_FIRST, "herald", "receipt first")
        kannel.wait_for_dlr(lost.ref, DlrType.SMSC_ACK)
        early = smsc.wait_for(lambda e: e.get("event") == "deliver_sm_resp"
                              and e.get("tag") == f"receipt:{smsc.submits()[-1].message_id}")
        with pytest.raises(PeerTimeout):
            kannel.wait_for_dlr(lost.ref, timeout=0.5)

    by_id = {r.message_id: r.pdu for r in received}
    assert by_id[acks[0].foreign_id].short_message == GSM_OCTETS
    assert by_id[acks[0].foreign_id].data_coding == 0
    assert by_id[acks[1].foreign_id].short_message == UCS2_OCTETS
    assert by_id[acks[1].foreign_id].data_coding == 8
    assert [d.foreign_id for d in delivered] == [a.foreign_id for a in acks]
    assert all("stat:DELIVRD" in d.reply for d in delivered)
    # A receipt comes back addressed from the phone to the original sender.
    assert (delivered[0].sender, delivered[0].receiver) == (PHONE, "herald")
    assert (mo.text, mo.coding, mo.sender) == (UCS2_TEXT, 2, PHONE)
    assert status.online and status.smsc_sent == 2
    assert early["command_status"] == 0


@pytest.mark.interop
def test_kannel_start_fails_with_logs_when_the_bind_is_refused() -> None:
    with NodeSmppServer(accounts=ACCOUNT) as smsc:
        kannel = Kannel(Smsc(port=smsc.port, system_id="esme1", password="wrong"),
                        startup_timeout=1.0)
        with pytest.raises(PeerStartError) as failed:
            kannel.start()
        refused = [b for b in smsc.binds() if not b["accepted"]]
    assert refused and refused[0]["password"] == "wrong"
    assert "smsc.log" in failed.value.logs
    assert kannel.workdir is not None and not kannel.workdir.exists()  # cleaned up
