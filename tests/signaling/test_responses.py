"""Building answers: UDTS/XUDTS block responses, and encoders refusing values
the wire cannot carry (EncodeError, the local-misuse error)."""

from __future__ import annotations

import pytest

from herald.signaling import (
    EncodeError,
    M3uaError,
    SccpError,
    TcapError,
    decode,
    encode,
    invoke,
    udts_response,
)
from herald.signaling.errors import ReturnCause
from herald.signaling.m3ua import Data, decode_m3ua
from herald.signaling.map_codec import decode_tpdu, encode_argument
from herald.signaling.map_types import (
    AddressString,
    AnyTimeInterrogationArg,
    SendImsiArg,
    UpdateLocationArg,
)
from herald.signaling.message import (
    GlobalTitle,
    RoutingIndicator,
    RoutingLabel,
    SccpAddress,
    SccpMessageType,
    TcapMessage,
    TcapMessageType,
    Unitdata,
)
from herald.signaling.sccp import decode_unitdata, encode_address, encode_unitdata, udts_for
from herald.signaling.tcap import encode_tcap

from .samples import extra_messages
from .vectors import ASPUP, UL_M3UA, UL_TCAP, hx


def test_udts_answers_a_udt_back_to_its_sender() -> None:
    original = decode(UL_M3UA)
    answer = decode(udts_response(UL_M3UA, ReturnCause.NO_TRANSLATION_FOR_ADDRESS))
    assert answer.sccp.kind is SccpMessageType.UDTS
    assert answer.sccp.return_cause == ReturnCause.NO_TRANSLATION_FOR_ADDRESS
    assert answer.called == original.calling and answer.calling == original.called
    assert (answer.label.opc, answer.label.dpc) == (original.label.dpc, original.label.opc)
    assert answer.sccp.data == UL_TCAP  # Q.714 §4.2: the user data goes back
    assert answer.tcap == original.tcap._replace()  # and still decodes as the same TCAP
    assert answer.routing_context == original.routing_context


def test_xudt_is_answered_with_xudts_and_service_messages_never() -> None:
    xudt = next(m for m in extra_messages() if decode(m).sccp.kind is SccpMessageType.XUDT)
    answer = decode(udts_response(xudt, 3))
    assert answer.sccp.kind is SccpMessageType.XUDTS
    assert answer.sccp.return_cause == 3 and answer.sccp.hop_counter == 15
    with pytest.raises(SccpError):
        udts_response(udts_response(UL_M3UA))
    with pytest.raises(M3uaError):
        udts_response(ASPUP)
    with pytest.raises(EncodeError):
        udts_for(decode(udts_response(UL_M3UA)).sccp, 1)


def test_udts_response_works_when_the_tcap_is_broken() -> None:
    # A proxy answers messages it cannot parse past SCCP too.
    broken = bytearray(UL_M3UA)
    at = UL_M3UA.index(UL_TCAP)
    broken[at] = 0x66  # not a TCAP message type
    with pytest.raises(TcapError):
        decode(bytes(broken))
    answer = decode_m3ua(udts_response(bytes(broken)))
    assert isinstance(answer, Data)
    sccp = decode_unitdata(answer.user_data)
    assert sccp.kind is SccpMessageType.UDTS
    assert sccp.data == bytes(broken[at : at + len(UL_TCAP)])


def test_alphanumeric_originator_is_unpacked_from_gsm_7bit() -> None:
    # TS 23.040 §9.1.2.5: TON 101 (alphanumeric), 11 semi-octets = 6 septets,
    # "HERALD" packed in GSM 7-bit (TS 23.038 §6.1.2.1: septet i at bit 7*i):
    # 0x48 + 0x45<<7 + 0x52<<14 + 0x41<<21 + 0x4C<<28 + 0x44<<35 = 0x224C834A2C8.
    tpdu = hx("04", "0b d0 c8 a2 34 c8 24 02", "00 00", "52 10 10 21 43 00 00", "00")
    decoded = decode_tpdu(tpdu)
    assert decoded is not None
    assert (decoded.address.type_of_number, decoded.address.digits) == (5, "HERALD")


@pytest.mark.parametrize(
    "build",
    [
        lambda: encode_argument(UpdateLocationArg("00101a", AddressString("1"),
                                                  AddressString("2"))),
        lambda: encode_argument(SendImsiArg(AddressString("1" * 17))),  # > 9 octets
        lambda: encode_argument(AnyTimeInterrogationArg(AddressString("1"))),  # no identity
        lambda: encode_argument(AnyTimeInterrogationArg(AddressString("1"), "001011234",
                                                        AddressString("2"))),  # both
        lambda: invoke(1, SendImsiArg(AddressString("1")), opcode=2),  # wrong opcode
        lambda: encode_address(SccpAddress(RoutingIndicator.SSN, 6, 1 << 14)),  # PC > 14 bits
        lambda: encode_address(SccpAddress(RoutingIndicator.GLOBAL_TITLE,
                                           gt=GlobalTitle("123", indicator=2))),  # odd GTI 2
        lambda: encode_address(SccpAddress(RoutingIndicator.GLOBAL_TITLE,
                                           gt=GlobalTitle("12a"))),  # not BCD
        lambda: encode_unitdata(Unitdata(SccpMessageType.UDT, SccpAddress(RoutingIndicator.SSN, 6),
                                         SccpAddress(RoutingIndicator.SSN, 6), b"x" * 300)),
        lambda: encode_tcap(TcapMessage(TcapMessageType.BEGIN)),  # Begin without otid
        lambda: encode_tcap(TcapMessage(TcapMessageType.END, b"\x01", b"\x02")),  # End with otid
        lambda: encode_tcap(TcapMessage(TcapMessageType.UNIDIRECTIONAL)),  # no components
        lambda: encode(decode(UL_M3UA)._replace(label=RoutingLabel(1 << 24, 1))),
    ],
    ids=["imsi-digit", "isdn-long", "ati-none", "ati-both", "opcode", "pc", "gti2-odd",
         "gt-digit", "sccp-data", "begin-otid", "end-otid", "uni-empty", "opc"],
)
def test_encoders_refuse_what_the_wire_cannot_carry(build: object) -> None:
    with pytest.raises(EncodeError):
        build()  # type: ignore[operator]
