"""Hostile and broken input on a raw socket against herald's SMPP server.

Each case writes octets no well-behaved peer sends and checks the answer on the
wire (generic_nack or the request's own response, with the SMPP 3.4 §5.1.3
status), whether herald keeps the connection, and that a real peer (smpplib)
bound alongside is served throughout.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Sequence

import pytest

from herald.net import ClientSettings, SmppClient, SmppServer
from herald.smpp.constants import CommandId, CommandStatus
from herald.smpp.limits import MAX_PDU_SIZE
from herald.smpp.pdus import BindTransceiver, BindTransceiverResp, DeliverSm, EnquireLink, SubmitSm
from peers.smpplib_client import SmpplibClient

from .conftest import PHONE, WAIT, HeraldSmsc

pytestmark = pytest.mark.interop

S = CommandStatus
C = CommandId
HEADER = struct.Struct(">IIII")  # SMPP 3.4 §3.2: length, id, status, sequence

BIND = bytes(BindTransceiver(system_id="esme1", password="secret12", sequence_number=1))


def header(length: int, command_id: int, status: int = 0, seq: int = 1) -> bytes:
    return HEADER.pack(length, command_id, status, seq)


def submit_body(sm_length: int, short_message: bytes, tlvs: bytes = b"") -> bytes:
    """A submit_sm body (SMPP 3.4 §4.4.1) with a sm_length of our choosing."""
    return (b"\x00"  # service_type
            + b"\x00\x00src\x00"  # source ton, npi, addr
            + b"\x01\x01" + PHONE.encode() + b"\x00"  # dest ton, npi, addr
            + bytes([0, 0, 0]) + b"\x00\x00"  # esm_class, protocol_id, priority; 2 times
            + bytes([0, 0, 0, 0]) + bytes([sm_length]) + short_message + tlvs)


def pdu(command_id: int, body: bytes, seq: int) -> bytes:
    return header(16 + len(body), command_id, 0, seq) + body


Answer = tuple[int, int, int]  # command_id, command_status, sequence_number
# The last probe on a connection that must stay open: its answer proves it is.
PROBE_SEQ = 0x7FFF
PROBE = bytes(EnquireLink(sequence_number=PROBE_SEQ))


class Wire:
    """A raw connection that reads whole PDU headers, every read bounded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.answers: list[Answer] = []
        self.closed = False
        self._buffer = b""

    async def read(self, count: int) -> None:
        """Read until ``count`` answers in all, or the server closes."""
        deadline = asyncio.get_running_loop().time() + WAIT
        while len(self.answers) < count and not self.closed:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{count} answers expected, got {self.answers}")
            chunk = await asyncio.wait_for(self.reader.read(65536), left)
            self.closed = not chunk
            self._buffer += chunk
            while len(self._buffer) >= HEADER.size:
                length, command_id, status, seq = HEADER.unpack_from(self._buffer)
                if len(self._buffer) < length:
                    break
                self.answers.append((command_id, status, seq))
                self._buffer = self._buffer[max(length, HEADER.size):]


async def exchange(port: int, steps: Sequence[tuple[bytes, int]], *,
                   stays_open: bool) -> list[Answer]:
    """Write each step's octets and read its number of answers. Then, if the
    connection ``stays_open``, check it with an enquire_link (whose answer is
    not returned); otherwise wait for the server to close it."""
    wire = Wire(*await asyncio.open_connection("127.0.0.1", port))
    try:
        expected = 0
        for data, answers in steps:
            wire.writer.write(data)
            expected += answers
            await wire.read(expected)
        if stays_open:
            wire.writer.write(PROBE)
            await wire.read(expected + 1)
            # Answered, so open: ESME_ROK when bound, ESME_RINVBNDSTS before the bind.
            command_id, status, seq = wire.answers.pop()
            assert (command_id, seq) == (C.ENQUIRE_LINK_RESP, PROBE_SEQ)
            assert status in (S.ESME_ROK, S.ESME_RINVBNDSTS)
        else:
            await wire.read(expected + 1)  # anything beyond the answers is an error
        assert wire.closed is not stays_open, wire.answers
        return wire.answers
    finally:
        wire.writer.close()


@pytest.fixture
async def bystander(
    herald: tuple[SmppServer, HeraldSmsc],
) -> AsyncIterator[tuple[SmppServer, HeraldSmsc, SmpplibClient]]:
    """A real peer bound to herald while the hostile connections come and go;
    at the end it must still be served."""
    server, smsc = herald
    async with SmpplibClient(server.port, "esme2", "other123") as esme:
        yield server, smsc, esme
        (seq,) = await esme.asend_text(PHONE, "still served")
        (resp,) = await esme.await_resps([seq], timeout=WAIT)
        assert resp.ok
        assert any(m.text == "still served" and m.system_id == "esme2" for m in smsc.messages)


NACK = C.GENERIC_NACK


@pytest.mark.parametrize(("steps", "sequence"), [
    pytest.param([b"GET / HTTP/1.1\r\nHost: herald\r\n\r\n"], int.from_bytes(b".1\r\n", "big"),
                 id="http-request"),
    pytest.param([header(0, C.SUBMIT_SM)], 1, id="command_length-0"),
    pytest.param([header(15, C.ENQUIRE_LINK)], 1, id="command_length-15"),
    # only the header is sent: herald must refuse without waiting for the body
    pytest.param([header(0xFFFFFFF0, C.SUBMIT_SM)], 1, id="command_length-4GiB"),
    pytest.param([header(MAX_PDU_SIZE + 1, C.SUBMIT_SM) + b"x" * 1000], 1,
                 id="command_length-over-max"),
    pytest.param([BIND, header(0, C.SUBMIT_SM, seq=2)], 2, id="command_length-0-when-bound"),
])
async def test_framing_errors_get_generic_nack_and_close(
    bystander: tuple[SmppServer, HeraldSmsc, SmpplibClient], steps: list[bytes], sequence: int,
) -> None:
    server, _, _ = bystander
    answers = await exchange(server.port, [(step, 1) for step in steps], stays_open=False)
    # SMPP 3.4 §5.1.3 ESME_RINVCMDLEN; the stream cannot be split into PDUs any
    # more, so the connection ends. The sequence number is echoed from the header.
    assert answers[-1] == (NACK, S.ESME_RINVCMDLEN, sequence)


async def test_pdus_in_the_wrong_state_are_refused_and_the_session_goes_on(
    bystander: tuple[SmppServer, HeraldSmsc, SmpplibClient],
) -> None:
    server, smsc, _ = bystander
    early = bytes(SubmitSm(destination_addr=PHONE, short_message=b"too early", sequence_number=7))
    late = bytes(SubmitSm(destination_addr=PHONE, short_message=b"bound now", sequence_number=8))
    again = bytes(BindTransceiver(system_id="esme1", password="secret12", sequence_number=9))
    probe = bytes(EnquireLink(sequence_number=6))
    answers = await exchange(server.port, [(probe, 1), (early, 1), (BIND, 1), (again, 1),
                                           (late, 1)], stays_open=True)  # fmt: skip
    assert answers == [
        (C.ENQUIRE_LINK_RESP, S.ESME_RINVBNDSTS, 6),  # a link check before bind (§4.11)
        (C.SUBMIT_SM_RESP, S.ESME_RINVBNDSTS, 7),  # submit before bind
        (C.BIND_TRANSCEIVER_RESP, S.ESME_ROK, 1),
        (C.BIND_TRANSCEIVER_RESP, S.ESME_RALYBND, 9),  # bind when bound
        (C.SUBMIT_SM_RESP, S.ESME_ROK, 8),
    ]
    assert [m.text for m in smsc.messages if m.system_id == "esme1"] == ["bound now"]

    # a refused bind is answered, then the connection closed: each guess costs
    # the guesser a connection, which the admission limits bound (issue 8)
    refused = bytes(BindTransceiver(system_id="esme1", password="guess", sequence_number=1))
    answers = await exchange(server.port, [(refused, 1)], stays_open=False)
    assert answers == [(C.BIND_TRANSCEIVER_RESP, S.ESME_RINVPASWD, 1)]


async def test_bad_pdus_get_their_status_and_the_session_goes_on(
    bystander: tuple[SmppServer, HeraldSmsc, SmpplibClient],
) -> None:
    server, smsc, _ = bystander
    ok = bytes(SubmitSm(destination_addr=PHONE, short_message=b"fine", sequence_number=20))
    answers = await exchange(server.port, [(BIND, 1), (b"".join([
        header(16, 0x00000999, seq=3),  # unknown command_id
        pdu(C.SUBMIT_SM, submit_body(200, b"abc"), 4),  # sm_length past the PDU's end
        pdu(C.SUBMIT_SM, submit_body(255, b"a" * 255), 5),  # sm_length over 254
        pdu(C.SUBMIT_SM, submit_body(3, b"abc", b"\x04\x24\x00\xff\x00"), 6),  # TLV past end
        pdu(C.SUBMIT_SM, submit_body(1, b"a", b"\x14\x00\x00\x00" * 100), 7),  # 100 TLVs
        header(17, C.ENQUIRE_LINK, seq=8) + b"\x00",  # a body where none belongs
        header(16, C.SUBMIT_SM_RESP, seq=999),  # a response to nothing: ignored
        bytes(EnquireLink(sequence_number=9)),
        ok,
    ]), 8)], stays_open=True)
    assert answers == [
        (C.BIND_TRANSCEIVER_RESP, S.ESME_ROK, 1),
        (NACK, S.ESME_RINVCMDID, 3),
        (C.SUBMIT_SM_RESP, S.ESME_RINVMSGLEN, 4),
        (C.SUBMIT_SM_RESP, S.ESME_RINVMSGLEN, 5),
        (C.SUBMIT_SM_RESP, S.ESME_RINVOPTPARSTREAM, 6),
        (C.SUBMIT_SM_RESP, S.ESME_RINVOPTPARSTREAM, 7),
        (C.ENQUIRE_LINK_RESP, S.ESME_RINVOPTPARSTREAM, 8),
        (C.ENQUIRE_LINK_RESP, S.ESME_ROK, 9),
        (C.SUBMIT_SM_RESP, S.ESME_ROK, 20),
    ]
    assert [m.text for m in smsc.messages if m.system_id == "esme1"] == ["fine"]


# More PDUs than Python's recursion limit allows frames for, in one TCP read
# (about 37 octets each: 74 KiB, which loopback delivers in one or two reads).
BURST = 2000


async def test_a_burst_of_pipelined_submits_is_answered_in_full(
    bystander: tuple[SmppServer, HeraldSmsc, SmpplibClient],
) -> None:
    """A peer may pipeline far more requests than herald's own window: each
    must be answered, however many arrive in one read."""
    server, smsc, _ = bystander
    burst = b"".join(bytes(SubmitSm(destination_addr=PHONE, short_message=b"x",
                                    sequence_number=seq)) for seq in range(2, BURST + 2))
    answers = await exchange(server.port, [(BIND, 1), (burst, BURST)], stays_open=True)
    assert answers[1:] == [(C.SUBMIT_SM_RESP, S.ESME_ROK, seq) for seq in range(2, BURST + 2)]
    assert sum(m.system_id == "esme1" for m in smsc.messages) == BURST


async def test_herald_client_answers_a_burst_of_deliver_sm() -> None:
    """An SMSC flushing its receipt queue after a reconnect sends deliver_sm
    back to back: herald's client answers every one."""
    answers: list[Answer] = []
    done = asyncio.Event()

    async def smsc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wire = Wire(reader, writer)
        await wire.read(1)  # the bind
        writer.write(bytes(BindTransceiverResp(system_id="raw", sequence_number=1)))
        writer.write(b"".join(bytes(DeliverSm(
            source_addr=PHONE, destination_addr="HERALD", esm_class=0x04,
            short_message=f"id:{seq} stat:DELIVRD".encode(), sequence_number=seq))
            for seq in range(1, BURST + 1)))
        try:
            await wire.read(1 + BURST)
        finally:
            answers.extend(wire.answers[1:])
            done.set()
            writer.close()

    raw = await asyncio.start_server(smsc, "127.0.0.1", 0)
    port = raw.sockets[0].getsockname()[1]
    client = SmppClient(ClientSettings("127.0.0.1", port, BindTransceiver(
        system_id="herald", password="pw")))
    await client.start()
    try:
        await asyncio.wait_for(done.wait(), WAIT * 2)
        assert client.bound
    finally:
        await client.stop(timeout=1)
        raw.close()
        await raw.wait_closed()
    assert answers == [(C.DELIVER_SM_RESP, S.ESME_ROK, seq) for seq in range(1, BURST + 1)]
