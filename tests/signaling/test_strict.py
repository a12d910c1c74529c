"""Every length is checked: truncated, padded and malformed input fails with the
right layer's typed error, at the right offset, carrying the right wire code."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from herald.signaling import (
    DecodeError,
    M3uaError,
    MapError,
    NotUserData,
    SccpError,
    TcapError,
    decode,
)
from herald.signaling.errors import (
    Layer,
    M3uaErrorCode,
    PAbortCause,
    RejectProblem,
    ReturnCause,
    TcapComponentError,
)
from herald.signaling.m3ua import AspState, Framer, Kind, decode_m3ua, message_length
from herald.signaling.map_codec import decode_argument
from herald.signaling.sccp import decode_unitdata
from herald.signaling.tcap import decode_tcap

from .vectors import (
    ASPUP,
    MT_FSM_ARGUMENT,
    NTFY,
    SRI_SM_ARGUMENT,
    UL_ARGUMENT,
    UL_M3UA,
    UL_TCAP,
    UL_UDT,
    XUDT,
    hx,
)


def _map(opcode: int) -> Callable[[bytes], object]:
    return lambda b: decode_argument(opcode, b, 0, len(b))


LAYERS: list[tuple[str, bytes, Callable[[bytes], object], type[DecodeError]]] = [
    ("m3ua-data", UL_M3UA, decode_m3ua, M3uaError),
    ("m3ua-ntfy", NTFY, decode_m3ua, M3uaError),
    ("stack", UL_M3UA, decode, M3uaError),
    ("sccp-udt", UL_UDT, decode_unitdata, SccpError),
    ("sccp-xudt", XUDT, decode_unitdata, SccpError),
    ("tcap", UL_TCAP, decode_tcap, TcapError),
    ("map-ul", UL_ARGUMENT, _map(2), MapError),
    ("map-sri-sm", SRI_SM_ARGUMENT, _map(45), MapError),
    ("map-mt-fsm", MT_FSM_ARGUMENT, _map(44), MapError),
]


@pytest.mark.parametrize(("name", "wire", "decoder", "error"), LAYERS, ids=[x[0] for x in LAYERS])
def test_every_truncation_is_refused_by_its_layer(
    name: str, wire: bytes, decoder: Callable[[bytes], object], error: type[DecodeError]
) -> None:
    decoder(wire)  # the whole vector is valid
    for cut in range(len(wire)):
        with pytest.raises(error) as info:
            decoder(wire[:cut])
        assert 0 <= info.value.offset <= len(wire), (name, cut)


@pytest.mark.parametrize(("name", "wire", "decoder", "error"), LAYERS, ids=[x[0] for x in LAYERS])
def test_trailing_bytes_are_refused_by_their_layer(
    name: str, wire: bytes, decoder: Callable[[bytes], object], error: type[DecodeError]
) -> None:
    for extra in (b"\x00", b"\x00\x00\x00\x00", b"\x30\x00"):
        with pytest.raises(error):
            decoder(wire + extra)


def test_error_names_layer_and_offset_in_the_whole_message() -> None:
    # Make the IMSI 9 octets long (IMSI is SIZE(3..8)) by rewriting its length
    # and every enclosing length, so only the MAP layer can object.
    imsi_at = UL_M3UA.index(bytes.fromhex("0408000101214365"))
    bad = bytearray(UL_M3UA)
    bad[imsi_at + 1] = 9
    bad[imsi_at + 10 : imsi_at + 10] = b"\x99"
    # Lengths of: SEQUENCE, invoke, component portion, Begin, SCCP data.
    for marker in ("301a", "a122", "6c24", "624c"):
        at = bad.index(bytes.fromhex(marker))
        bad[at + 1] += 1
    bad[bad.index(bytes.fromhex("4e624d")) ] += 1
    # M3UA: protocol data length 122 -> 123 and the message stays 140 octets
    # (the padding shrinks from 2 to 1).
    pd_at = bad.index(bytes.fromhex("0210007a"))
    bad[pd_at + 3] += 1
    del bad[-1]
    with pytest.raises(MapError) as info:
        decode(bytes(bad))
    assert info.value.layer is Layer.MAP
    assert info.value.offset == imsi_at + 2
    assert "MAP at offset" in str(info.value)
    assert info.value.problem is RejectProblem.INVOKE_MISTYPED_PARAMETER


def _m3ua(cls: int, typ: int, body: bytes, version: int = 1) -> bytes:
    return struct.pack("!BBBBI", version, 0, cls, typ, 8 + len(body)) + body


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (_m3ua(1, 1, b"", version=2), M3uaErrorCode.INVALID_VERSION),
        (_m3ua(5, 1, b""), M3uaErrorCode.UNSUPPORTED_MESSAGE_CLASS),
        (_m3ua(1, 9, b""), M3uaErrorCode.UNSUPPORTED_MESSAGE_TYPE),
        (_m3ua(1, 1, b""), M3uaErrorCode.MISSING_PARAMETER),
        (_m3ua(1, 1, hx("0004 0008 41424344")), M3uaErrorCode.UNEXPECTED_PARAMETER),
        (_m3ua(1, 1, hx("0006 000c 00000001 00000002")), M3uaErrorCode.INVALID_ROUTING_CONTEXT),
        (_m3ua(1, 1, hx("0210 0010 00000001 00000002 03020000")),
         M3uaErrorCode.PARAMETER_FIELD_ERROR),  # protocol data of 12 octets: no user data
        (_m3ua(1, 1, hx("0210 0014 01000001 00000002 03020000 09000000")),
         M3uaErrorCode.INVALID_PARAMETER_VALUE),  # OPC wider than 24 bits
        (_m3ua(3, 1, hx("0011 0008 00000001 0011 0008 00000002")),
         M3uaErrorCode.UNEXPECTED_PARAMETER),  # repeated ASP Identifier
        (_m3ua(3, 1, hx("0011 0003 00000000")), M3uaErrorCode.PARAMETER_FIELD_ERROR),
        (_m3ua(0, 0, b""), M3uaErrorCode.MISSING_PARAMETER),  # ERR without error code
    ],
    ids=["version", "class", "type", "no-pd", "info-in-data", "two-rc", "empty-pd", "opc-25bit",
         "repeated", "param-length", "err-no-code"],
)
def test_m3ua_errors_carry_the_err_code(wire: bytes, code: M3uaErrorCode) -> None:
    with pytest.raises(M3uaError) as info:
        decode_m3ua(wire)
    assert info.value.error_code is code


def test_m3ua_length_field_must_match_and_be_bounded() -> None:
    with pytest.raises(M3uaError):
        message_length(struct.pack("!BBBBI", 1, 0, 1, 1, 7))
    with pytest.raises(M3uaError):
        message_length(struct.pack("!BBBBI", 1, 0, 1, 1, 1 << 20))
    assert message_length(UL_M3UA[:8]) == len(UL_M3UA)


def test_decode_hands_back_non_data_messages_untouched() -> None:
    with pytest.raises(NotUserData) as info:
        decode(ASPUP)
    assert info.value.message == AspState(Kind.ASPUP, 42)
    # SI other than SCCP (e.g. ISUP, SI 5) is not ours to decode either.
    isup = bytearray(UL_M3UA)
    isup[UL_M3UA.index(bytes.fromhex("0302000a"))] = 5
    with pytest.raises(NotUserData):
        decode(bytes(isup))


def _udt(called: bytes, calling: bytes, data: bytes, head: bytes = b"\x09\x00") -> bytes:
    p1 = 3
    p2 = p1 + len(called)
    p3 = p2 + len(calling)
    return (head + bytes((p1, p2, p3)) + bytes((len(called),)) + called
            + bytes((len(calling),)) + calling + bytes((len(data),)) + data)


SSN6 = hx("4206")


@pytest.mark.parametrize(
    ("wire", "cause"),
    [
        (_udt(hx("12 06 00 10 04 21"), SSN6, b"\x01"), ReturnCause.NO_TRANSLATION_FOR_NATURE),
        (_udt(hx("16 06 00 12 04 21"), SSN6, b"\x01"), ReturnCause.NO_TRANSLATION_FOR_NATURE),
        (_udt(hx("12 06 00 12 04 2a"), SSN6, b"\x01"), ReturnCause.NO_TRANSLATION_FOR_ADDRESS),
        (_udt(hx("40"), SSN6, b"\x01"), ReturnCause.UNEQUIPPED_USER),  # route on SSN, no SSN
        (_udt(hx("02 06"), SSN6, b"\x01"), ReturnCause.NO_TRANSLATION_FOR_NATURE),  # on GT, no GT
        (hx("11 00 00 04 06 08 0b 02 42 08 02 42 06 01 aa 00"), ReturnCause.HOP_COUNTER_VIOLATION),
        (hx("13 00 0f 00 04 00 06"), ReturnCause.ERROR_IN_LOCAL_PROCESSING),  # LUDT
        (_udt(SSN6, SSN6, b"\x01", head=hx("09 02")), ReturnCause.ERROR_IN_LOCAL_PROCESSING),
    ],
    ids=["es-unknown", "gti-5", "gt-not-bcd", "ssn-missing", "gt-missing", "hop-0", "ludt",
         "class-2"],
)
def test_sccp_errors_carry_the_return_cause(wire: bytes, cause: ReturnCause) -> None:
    with pytest.raises(SccpError) as info:
        decode_unitdata(wire)
    assert info.value.return_cause is cause


def test_sccp_refuses_parts_nobody_points_at() -> None:
    good = _udt(SSN6, SSN6, b"\x01\x02")
    decode_unitdata(good)
    gap = bytearray(good)
    gap[4] += 1  # data pointer skips one octet, which then nobody owns
    with pytest.raises(SccpError):
        decode_unitdata(bytes(gap) + b"\x00")
    with pytest.raises(SccpError):
        decode_unitdata(_udt(SSN6, SSN6, b""))  # empty data


def _begin(body: bytes) -> bytes:
    return bytes((0x62, len(body))) + body


INVOKE = hx("6c 08 a1 06 02 01 01 02 01 2d")  # invoke 1, opcode 45, no parameter


@pytest.mark.parametrize(
    ("wire", "cause"),
    [
        (hx("66 03 48 01 01"), PAbortCause.UNRECOGNIZED_MESSAGE_TYPE),
        (_begin(hx("48 05 0102030405") + INVOKE), PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
        (_begin(hx("48 00") + INVOKE), PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
        (_begin(INVOKE), PAbortCause.INCORRECT_TRANSACTION_PORTION),  # Begin without otid
        (hx("64 05 48 01 01 49 00"), PAbortCause.INCORRECT_TRANSACTION_PORTION),  # End w/ otid
        (_begin(hx("48 01 01") + INVOKE + hx("05 00")), PAbortCause.INCORRECT_TRANSACTION_PORTION),
        (_begin(hx("48 01 01 6b 0b 28 09 06 07 00 11 86 05 01 02 01")),  # uni AS in a Begin
         PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
        (hx("67 06 49 01 01 4a 01 85"), PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION),
        (hx("62 00"), PAbortCause.INCORRECT_TRANSACTION_PORTION),  # empty Begin
        (hx("65 03 48 01 01"), PAbortCause.INCORRECT_TRANSACTION_PORTION),  # Continue, no dtid
    ],
    ids=["type", "otid-5", "otid-0", "no-otid", "end-otid", "trailing-tag", "uni-as", "cause",
         "empty-begin", "no-dtid"],
)
def test_tcap_transaction_errors_carry_a_p_abort_cause(wire: bytes, cause: PAbortCause) -> None:
    with pytest.raises(TcapError) as info:
        decode_tcap(wire)
    assert info.value.abort_cause is cause


@pytest.mark.parametrize(
    ("components", "problem"),
    [
        (hx("6c 05 a5 03 02 01 01"), RejectProblem.GENERAL_UNRECOGNIZED_COMPONENT),
        (hx("6c 05 a1 03 04 01 01"), RejectProblem.GENERAL_MISTYPED_COMPONENT),
        (hx("6c 05 a1 03 02 01 01"), RejectProblem.GENERAL_BADLY_STRUCTURED_COMPONENT),
        (hx("6c 0c a1 0a 02 01 01 02 01 2d 30 00 30 00"),
         RejectProblem.GENERAL_BADLY_STRUCTURED_COMPONENT),  # two parameters
        (hx("6c 00"), RejectProblem.GENERAL_BADLY_STRUCTURED_COMPONENT),
        (hx("6c 09 a1 07 02 01 01 02 01 2d 30"),  # a lone octet after the opcode
         RejectProblem.GENERAL_BADLY_STRUCTURED_COMPONENT),
    ],
    ids=["unknown-component", "invoke-id-type", "no-opcode", "two-parameters", "empty",
         "lone-octet"],
)
def test_tcap_component_errors_carry_a_reject_problem(
    components: bytes, problem: RejectProblem
) -> None:
    with pytest.raises(TcapComponentError) as info:
        decode_tcap(_begin(hx("48 01 01") + components))
    assert info.value.problem is problem
    assert info.value.abort_cause is None


def test_tcap_global_opcode_and_indefinite_lengths() -> None:
    # An invoke with a global (OID) operation code, in indefinite-length
    # encodings (X.690 §8.1.3.6), which BER allows and some vendors send.
    wire = hx("62 80 48 01 07 6c 80 a1 80 02 01 01 06 03 2a 03 04 00 00 00 00 00 00")
    tcap = decode_tcap(wire)
    (invoke,) = tcap.components
    assert invoke.opcode is None  # type: ignore[union-attr]
    assert invoke.global_opcode == (1, 2, 3, 4)  # type: ignore[union-attr]
    with pytest.raises(TcapError):
        decode_tcap(wire[:-2])  # end-of-contents missing


@pytest.mark.parametrize(
    ("opcode", "argument"),
    [
        (2, hx("30 0c 04 02 0102 81 02 9121 04 02 9121")),  # IMSI of 2 octets
        (2, hx("30 0c 04 03 a10203 81 02 9121 04 02 9121")),  # IMSI digit 'a'
        (2, hx("30 08 81 02 9121 04 02 9121")),  # no IMSI
        (45, hx("30 0a 80 02 9121 81 01 ff 82 01 11")),  # address without extension bit
        (45, hx("30 13 80 0b 91 1122334455667788990011 81 01 ff 82 01 91")),  # 10-octet ISDN
        (45, hx("30 0b 80 02 9121 81 01 ff 8a 01 02")),  # no SC address, bad enum
        (44, hx("30 0c 80 03 001001 84 02 9121 04 01 04")),  # TPDU truncated
        (56, hx("30 05 80 03 001001")),  # SAI v3 without numberOfRequestedVectors
        (71, hx("30 07 a0 05 82 03 001001")),  # ATI identity neither imsi nor msisdn
    ],
    ids=["imsi-short", "imsi-digit", "no-imsi", "ext-bit", "isdn-long", "dni-enum",
         "tpdu-short", "sai-vectors", "ati-identity"],
)
def test_map_errors(opcode: int, argument: bytes) -> None:
    with pytest.raises(MapError):
        decode_argument(opcode, argument, 0, len(argument))


def test_framer_splits_a_stream_fed_byte_by_byte() -> None:
    stream = UL_M3UA + ASPUP + NTFY
    whole = Framer().feed(stream)
    assert whole == [UL_M3UA, ASPUP, NTFY]
    framer = Framer()
    pieces: list[bytes] = []
    for i in range(len(stream)):
        pieces += framer.feed(stream[i : i + 1])
    assert pieces == whole and framer.buffered == 0
    with pytest.raises(M3uaError):
        Framer().feed(b"\x02" + UL_M3UA[1:])  # version 2: a framing error


def test_long_form_lengths_decode_like_short_ones() -> None:
    # X.690 §8.1.3.5: the long form is valid BER even where the short form
    # would do; the fast paths must not mistake its length octets for content.
    from herald.signaling.map_types import AddressString, RoutingInfoForSmArg

    short = hx("30 0d 80 03 91 21 f3 81 01 ff 82 03 91 21 f3")
    long = hx("30 81 0d 80 03 91 21 f3 81 01 ff 82 03 91 21 f3")
    padded = hx("30 81 80 80 03 91 21 f3 81 01 ff 82 03 91 21 f3") + hx("a6 71 30 6f") + bytes(
        [0x04, 0x6D] + [0] * 0x6D)  # an extensionContainer filling the SEQUENCE to 128 octets
    expected = RoutingInfoForSmArg(AddressString("123"), True, AddressString("123"))
    for wire in (short, long, padded):
        assert decode_argument(45, wire, 0, len(wire)) == expected
