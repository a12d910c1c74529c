"""Decoder outcomes on bad input, leniency for bugs seen in the wild, encoder
limits and TLV typing."""

from __future__ import annotations

import pytest

from herald.smpp import codec
from herald.smpp import tlv as T
from herald.smpp.constants import CommandStatus as S
from herald.smpp.errors import (
    BufferLimitExceeded,
    FramingError,
    InvalidField,
    InvalidTlvValue,
    LocalProtocolError,
    PduDecodeError,
)
from herald.smpp.limits import MAX_PDU_SIZE, MAX_TLVS_PER_PDU
from herald.smpp.pdus import (
    AlertNotification,
    BindTransceiver,
    BindTransceiverResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    GenericNack,
    Outbind,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
    UnsuccessSme,
)
from herald.smpp.tlv import Tlv

from .wire import wire


def submit_sm(body: str, seq: int = 7) -> bytes:
    """A submit_sm header with the right command_length around ``body``."""
    data = wire(body)
    return (16 + len(data)).to_bytes(4, "big") + wire(f"00000004 00000000 {seq:08x}") + data


def one(data: bytes) -> codec.Outcome:
    decoder = codec.PduDecoder()
    decoder.feed(data)
    return decoder.next_outcome()


GOOD_SUBMIT_BODY = '''
    00 05 00 "HERALD" 00 01 01 "447700900123" 00
    00 00 00 00 00 01 00 00 00 05 "Hello"
'''


def test_helper_builds_a_valid_submit_sm() -> None:
    pdu = codec.decode(submit_sm(GOOD_SUBMIT_BODY))
    assert isinstance(pdu, SubmitSm)
    assert pdu.short_message == b"Hello"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        # sm_length says 200, the PDU holds 5: never read past the PDU
        ('00 05 00 "HERALD" 00 01 01 "447700900123" 00 00 00 00 00 00 01 00 00 00 c8 "Hello"',
         S.ESME_RINVMSGLEN, "sm_length"),
        # sm_length 255 is over the spec's 254
        ('00 05 00 "HERALD" 00 01 01 "4477" 00 00 00 00 00 00 01 00 00 00 ff' + " 00" * 255,
         S.ESME_RINVMSGLEN, "sm_length"),
        # source_addr of 21 characters (22 octets with its NUL; max 21)
        ('00 05 00 "ABCDEFGHIJKLMNOPQRSTU" 00 01 01 "4477" 00 00 00 00 00 00 01 00 00 00 00',
         S.ESME_RINVSRCADR, "source_addr"),
        ('"CMTXXX" 00 05 00 "HERALD" 00 01 01 "4477" 00 00 00 00 00 00 01 00 00 00 00',
         S.ESME_RINVSERTYP, "service_type"),
        ('00 05 00 "HERALD" 00 01 01 "4477" 00 00 00 00 "2411250338" 00 00 01 00 00 00 00',
         S.ESME_RINVSCHED, "schedule_delivery_time"),
        ('00 05 00 "HERALD" 00 01 01 "4477" 00 00 00 00 00 "000001" 00 01 00 00 00 00',
         S.ESME_RINVEXPIRY, "validity_period"),
        # the body stops in the middle of the mandatory fields
        ('00 05 00 "HERALD" 00 01 01 "4477" 00 00 00', S.ESME_RINVCMDLEN, "esm_class"),
        ('00 05 00 "HERALD"', S.ESME_RINVCMDLEN, "source_addr"),
        ("", S.ESME_RINVCMDLEN, "service_type"),
        # a TLV whose length runs past the PDU (npm smpp truncates silently)
        (GOOD_SUBMIT_BODY + "0424 0010 01 02", S.ESME_RINVOPTPARSTREAM, "tlv 0x0424"),
        # 3 octets after the mandatory fields cannot be a TLV
        (GOOD_SUBMIT_BODY + "02 0c 00", S.ESME_RINVOPTPARSTREAM, "tlvs"),
        (GOOD_SUBMIT_BODY + " 1401 0000" * (MAX_TLVS_PER_PDU + 1),
         S.ESME_RINVOPTPARSTREAM, "tlvs"),
    ],
)
def test_bad_bodies_are_unparsed_with_the_right_status(body: str, status: S, field: str) -> None:
    outcome = one(submit_sm(body, seq=42))
    assert isinstance(outcome, codec.UnparsedPdu)
    assert (outcome.error, outcome.sequence_number) == (status, 42)
    assert outcome.reason.startswith(field)
    answer = outcome.answer()
    assert answer == SubmitSmResp(sequence_number=42, command_status=status)
    with pytest.raises(PduDecodeError) as err:
        codec.decode(submit_sm(body))
    assert err.value.status == status


def test_tlv_limit_counts_exactly() -> None:
    body = GOOD_SUBMIT_BODY + " 1401 0000" * MAX_TLVS_PER_PDU
    pdu = codec.decode(submit_sm(body))
    assert len(pdu.tlvs) == MAX_TLVS_PER_PDU


def test_stream_continues_after_an_unparsed_pdu() -> None:
    decoder = codec.PduDecoder()
    decoder.feed(submit_sm("00 05") + bytes(EnquireLink(sequence_number=3)))
    assert isinstance(decoder.next_outcome(), codec.UnparsedPdu)
    assert decoder.next_outcome() == EnquireLink(sequence_number=3)


def test_unknown_command_id_is_answered_with_generic_nack_and_skipped() -> None:
    decoder = codec.PduDecoder()
    decoder.feed(wire("00000014 00000099 00000000 00000005 deadbeef"))
    decoder.feed(bytes(EnquireLink(sequence_number=6)))
    outcome = decoder.next_outcome()
    assert isinstance(outcome, codec.UnparsedPdu)
    assert outcome.error == S.ESME_RINVCMDID
    assert outcome.answer() == GenericNack(sequence_number=5, command_status=S.ESME_RINVCMDID)
    assert decoder.next_outcome() == EnquireLink(sequence_number=6)


def test_unknown_response_id_is_not_answered() -> None:
    outcome = one(wire("00000010 80000099 00000000 00000005"))
    assert isinstance(outcome, codec.UnparsedPdu)
    assert outcome.is_response and outcome.answer() is None


def test_unparsed_request_without_response_class_gets_generic_nack() -> None:
    outcome = one(wire('00000011 0000000b 00000000 00000005 "x"'))  # outbind, no NUL
    assert isinstance(outcome, codec.UnparsedPdu)
    assert outcome.answer() == GenericNack(sequence_number=5, command_status=S.ESME_RINVCMDLEN)


@pytest.mark.parametrize(
    ("data", "length"),
    [
        (wire("00000000"), 0),  # command_length 0: judged from its 4 octets alone
        (wire("0000000f 00000004"), 15),
        ((MAX_PDU_SIZE + 1).to_bytes(4, "big"), MAX_PDU_SIZE + 1),
        (wire("ffffffff 00000004 00000000 00000009"), 0xFFFFFFFF),
    ],
)
def test_impossible_command_length_breaks_framing(data: bytes, length: int) -> None:
    decoder = codec.PduDecoder()
    decoder.feed(data)
    outcome = decoder.next_outcome()
    assert isinstance(outcome, codec.BrokenFraming)
    assert outcome.command_length == length
    assert outcome.answer().command_status == S.ESME_RINVCMDLEN
    # fatal: the decoder keeps saying so, whatever comes next
    decoder.feed(bytes(EnquireLink(sequence_number=1)))
    assert decoder.next_outcome() is outcome


def test_broken_framing_keeps_the_sequence_number_when_it_was_readable() -> None:
    outcome = one(wire("00000008 00000004 00000000 0000002a"))
    assert isinstance(outcome, codec.BrokenFraming)
    assert outcome.answer() == GenericNack(sequence_number=42, command_status=S.ESME_RINVCMDLEN)


def test_max_pdu_size_is_configurable() -> None:
    decoder = codec.PduDecoder(max_pdu_size=64)
    decoder.feed(submit_sm(GOOD_SUBMIT_BODY + "0424 0020" + "00" * 32))
    assert isinstance(decoder.next_outcome(), codec.BrokenFraming)


def test_feeding_without_draining_hits_the_buffer_limit() -> None:
    decoder = codec.PduDecoder(max_pdu_size=64, max_buffered=100)
    decoder.feed(b"\0" * 60)
    with pytest.raises(BufferLimitExceeded):
        decoder.feed(b"\0" * 41)
    assert decoder.buffered == 60


def test_consumed_pdus_free_buffer_space() -> None:
    link = bytes(EnquireLink(sequence_number=1))
    decoder = codec.PduDecoder(max_pdu_size=64, max_buffered=64)
    for _ in range(10):  # 160 octets through a 64-octet buffer
        decoder.feed(link)
        assert decoder.next_outcome() == EnquireLink(sequence_number=1)


def test_one_shot_decode_rejects_anything_but_exactly_one_pdu() -> None:
    link = bytes(EnquireLink(sequence_number=1))
    with pytest.raises(FramingError):
        codec.decode(link + b"\0")
    with pytest.raises(FramingError):
        codec.decode(link[:-1])
    with pytest.raises(FramingError):
        codec.decode(link[:8])


# ----------------------------------------------------------------- leniency


def test_negative_bind_resp_with_a_garbage_body_is_an_error_not_a_broken_link() -> None:
    # status ESME_RBINDFAIL, body "ff" without a terminator
    pdu = codec.decode(wire("00000011 80000009 0000000d 00000001 ff"))
    assert pdu == BindTransceiverResp(sequence_number=1, command_status=S.ESME_RBINDFAIL)


def test_positive_response_with_a_garbage_body_is_unparsed() -> None:
    outcome = one(wire("00000011 80000009 00000000 00000001 ff"))
    assert isinstance(outcome, codec.UnparsedPdu)
    assert outcome.answer() is None


def test_empty_response_bodies_decode_as_defaults() -> None:
    assert codec.decode(wire("00000010 80000005 00000000 00000003")) == DeliverSmResp(
        sequence_number=3)
    assert codec.decode(wire("00000010 80000004 00000058 00000003")) == SubmitSmResp(
        sequence_number=3, command_status=S.ESME_RTHROTTLED)


def test_long_passwords_round_trip() -> None:
    bind = BindTransceiver(system_id="acme", password="p" * 40)
    assert codec.decode(bytes(bind)) == bind


def test_password_is_not_in_repr() -> None:
    assert "hunter2" not in repr(BindTransceiver(system_id="acme", password="hunter2"))
    assert "hunter2" not in repr(Outbind(system_id="acme", password="hunter2"))


# ----------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    ("pdu", "field", "status"),
    [
        (SubmitSm(source_addr="A" * 21), "source_addr", S.ESME_RINVSRCADR),
        (SubmitSm(destination_addr="1" * 21), "destination_addr", S.ESME_RINVDSTADR),
        (SubmitSm(source_addr="Zoë€"), "source_addr", S.ESME_RINVSRCADR),
        (SubmitSm(source_addr="A\0B"), "source_addr", S.ESME_RINVSRCADR),
        (SubmitSm(short_message=b"x" * 255), "short_message", S.ESME_RINVMSGLEN),
        (SubmitSm(esm_class=256), "esm_class", S.ESME_RINVESMCLASS),
        (SubmitSm(priority_flag=-1), "priority_flag", S.ESME_RINVPRTFLG),
        (SubmitSm(validity_period="2411"), "validity_period", S.ESME_RINVEXPIRY),
        (BindTransceiver(password="p" * 65), "password", S.ESME_RINVPASWD),
        (BindTransceiver(system_id="s" * 16), "system_id", S.ESME_RINVSYSID),
        (SubmitMulti(dest_addresses=(SmeAddress(1, 1, "4" * 21),)),
         "dest_addresses.address", S.ESME_RINVDSTADR),
        (SubmitMulti(dest_addresses=(SmeAddress(1, 1, "4"),) * 255),
         "dest_addresses", S.ESME_RINVNUMDESTS),
        (AlertNotification(esme_addr="e" * 65), "esme_addr", S.ESME_RINVDSTADR),
    ],
)
def test_encoding_a_value_over_its_limit_names_the_field(pdu: object, field: str,
                                                         status: S) -> None:
    with pytest.raises(InvalidField) as err:
        bytes(pdu)  # type: ignore[call-overload]
    assert (err.value.field, err.value.status) == (field, status)


def test_header_out_of_range_is_invalid_field() -> None:
    with pytest.raises(InvalidField):
        bytes(EnquireLink(sequence_number=-1))


def test_tlv_over_65535_octets_is_refused() -> None:
    with pytest.raises(InvalidField):
        bytes(SubmitSm(tlvs=(Tlv(0x0424, b"x" * 65536),)))


def test_unknown_tlvs_keep_their_place_between_known_ones() -> None:
    tlvs = (Tlv(0x3FFF, b""), T.MESSAGE_STATE(2), Tlv(0x1401, b"\x00" * 3), Tlv(0x0999, b"z"))
    pdu = DeliverSm(tlvs=tlvs)
    data = bytes(pdu)
    assert codec.decode(data).tlvs == tlvs
    assert data.endswith(wire("3fff 0000 0427 0001 02 1401 0003 000000 0999 0001 7a"))


def test_with_header_copies_everything_but_the_header() -> None:
    pdu = SubmitSm(source_addr="HERALD", short_message=b"x", tlvs=(T.SAR_MSG_REF_NUM(9),))
    copy = pdu.with_header(77)
    assert copy.sequence_number == 77 and copy.source_addr == "HERALD"
    assert copy.with_header(0) == pdu


# ----------------------------------------------------------- response helpers


def test_responses_carry_the_request_sequence_number() -> None:
    req = SubmitSm(sequence_number=5)
    assert req.response(message_id="abc") == SubmitSmResp(sequence_number=5, message_id="abc")
    bind = BindTransceiver(sequence_number=9)
    assert bind.response(S.ESME_RBINDFAIL) == BindTransceiverResp(
        sequence_number=9, command_status=S.ESME_RBINDFAIL)
    multi = SubmitMulti(sequence_number=2).response(
        message_id="m", unsuccess_smes=(UnsuccessSme(1, 1, "44", 11),))
    assert multi.sequence_number == 2 and multi.unsuccess_smes[0].error_status_code == 11


def test_requests_without_responses_refuse_to_make_one() -> None:
    with pytest.raises(LocalProtocolError):
        Outbind().response()
    with pytest.raises(LocalProtocolError):
        AlertNotification().response()


# ----------------------------------------------------------------- TLV typing


def test_typed_tlv_values() -> None:
    pdu = DeliverSm(tlvs=(
        T.RECEIPTED_MESSAGE_ID("5f3a9c"), T.MESSAGE_STATE(5),
        T.NETWORK_ERROR_CODE(T.NetworkErrorCode(3, 34)), T.MESSAGE_PAYLOAD(b"\x00\x01"),
    ))
    back = codec.decode(bytes(pdu))
    assert back.tlv(T.RECEIPTED_MESSAGE_ID) == "5f3a9c"
    assert back.tlv(T.MESSAGE_STATE) == 5
    assert back.tlv(T.NETWORK_ERROR_CODE) == T.NetworkErrorCode(3, 34)
    assert back.tlv(T.MESSAGE_PAYLOAD) == b"\x00\x01"
    assert back.tlv(T.SAR_MSG_REF_NUM) is None
    assert T.RECEIPTED_MESSAGE_ID("x").value == b"x\0"


def test_c_string_tlv_without_its_nul_is_accepted() -> None:
    assert T.RECEIPTED_MESSAGE_ID.get((Tlv(0x001E, b"5f3a9c"),)) == "5f3a9c"


@pytest.mark.parametrize(
    ("tlv", "status"),
    [
        (Tlv(0x0427, b"\x00\x02"), S.ESME_RINVPARLEN),  # message_state is 1 octet
        (Tlv(0x0423, b"\x03\x00"), S.ESME_RINVPARLEN),  # network_error_code is 3
        (Tlv(0x001E, b"a\0b\0"), S.ESME_RINVOPTPARAMVAL),
        (Tlv(0x001E, b"a" * 66), S.ESME_RINVPARLEN),
    ],
)
def test_bad_known_tlvs_fail_on_read_not_on_decode(tlv: Tlv, status: S) -> None:
    pdu = codec.decode(bytes(DeliverSm(tlvs=(tlv,))))  # the PDU itself decodes
    with pytest.raises(InvalidTlvValue) as err:
        T.validate_tlvs(pdu.tlvs)
    assert err.value.status == status


def test_building_tlvs_checks_their_limits() -> None:
    with pytest.raises(InvalidField):
        T.SAR_TOTAL_SEGMENTS(256)
    with pytest.raises(InvalidField):
        T.CALLBACK_NUM(b"123")  # 4..19 octets
    with pytest.raises(InvalidField):
        T.RECEIPTED_MESSAGE_ID("x" * 65)


def test_every_standard_tag_has_a_definition() -> None:
    from herald.smpp.constants import Tag

    assert set(T.TLV_DEFS) == set(Tag)
    assert Tlv(0x0424, b"").name == "message_payload"
    assert Tlv(0x1401, b"").name == "tlv_0x1401"


# ------------------------------------------------------- frozen, fast or not


def test_pdus_are_frozen_whichever_way_they_were_built() -> None:
    import dataclasses

    built = SubmitSm(source_addr="HERALD", sequence_number=3)
    decoded = codec.decode(bytes(built))
    copied = built.with_header(4)
    replaced = dataclasses.replace(built, source_addr="OTHER")
    for pdu in (built, decoded, copied, replaced):
        assert type(pdu) is SubmitSm
        with pytest.raises(dataclasses.FrozenInstanceError):
            pdu.source_addr = "x"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del pdu.sequence_number  # type: ignore[misc]
    assert decoded == built and hash(decoded) == hash(built)
    assert replaced.source_addr == "OTHER" and replaced.sequence_number == 3


def test_subclasses_of_a_pdu_keep_their_class() -> None:
    import dataclasses

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Tagged(SubmitSm):
        note: str = ""

    tagged = Tagged(source_addr="HERALD", note="n")
    assert type(tagged) is Tagged and tagged.note == "n" and tagged.source_addr == "HERALD"


def test_construction_rejects_unknown_fields_like_a_dataclass() -> None:
    with pytest.raises(TypeError):
        SubmitSm(sourceaddr="HERALD")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        SubmitSm("HERALD")  # type: ignore[misc]
