"""Delivery receipt text (SMPP 3.4 Appendix B and its variants in the wild),
receipt TLVs, and message-id matching."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.smpp import tlv as T
from herald.smpp.constants import EsmType, MessageState
from herald.smpp.errors import ReceiptError
from herald.smpp.message_id import (
    IdPolicy,
    ids_match,
    normalize_message_id,
    receipt_id_keys,
    submit_id_keys,
)
from herald.smpp.pdus import DataSm, DeliverSm
from herald.smpp.receipts import (
    STAT_STATES,
    Receipt,
    format_receipt,
    is_receipt,
    parse_receipt,
    receipt_of,
    stat_from_state,
    state_from_stat,
)
from herald.smpp.tlv import Tlv

M = MessageState
SPEC_TEXT = ("id:0123456789 sub:001 dlvrd:001 submit date:2411250338 done date:2411250339"
             " stat:DELIVRD err:000 text:Your code is 1234")
SPEC_RECEIPT = Receipt(
    message_id="0123456789", stat="DELIVRD", state=M.DELIVERED, sub=1, dlvrd=1,
    submit_date=datetime(2024, 11, 25, 3, 38), done_date=datetime(2024, 11, 25, 3, 39),
    err="000", text="Your code is 1234",
)


def test_the_appendix_b_form() -> None:
    assert parse_receipt(SPEC_TEXT) == SPEC_RECEIPT
    assert parse_receipt(SPEC_TEXT.encode()) == SPEC_RECEIPT
    assert format_receipt(SPEC_RECEIPT) == SPEC_TEXT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 12-digit dates, with seconds
        ("id:77 sub:001 dlvrd:001 submit date:241125033801 done date:241125033959 "
         "stat:DELIVRD err:000 text:x",
         {"submit_date": datetime(2024, 11, 25, 3, 38, 1),
          "done_date": datetime(2024, 11, 25, 3, 39, 59)}),
        # 14-digit dates with the century
        ("id:77 submit date:20241125033801 stat:DELIVRD",
         {"submit_date": datetime(2024, 11, 25, 3, 38, 1)}),
        # "Text:" capitalised, "submit_date"/"done_date" with underscores
        ("id:77 submit_date:2411250338 done_date:2411250339 stat:DELIVRD Text:Hi",
         {"text": "Hi", "submit_date": datetime(2024, 11, 25, 3, 38)}),
        # fields missing: only id and stat
        ("id:ab12 stat:UNDELIV", {"message_id": "ab12", "state": M.UNDELIVERABLE,
                                  "sub": None, "err": None, "text": None}),
        # extra vendor fields are kept, in order
        ("id:77 sub:001 dlvrd:000 submit date:2411250338 done date:2411250339 stat:UNDELIV "
         "err:034 mccmnc:23415 smsc:UK1 text:Hello",
         {"extras": (("mccmnc", "23415"), ("smsc", "UK1")), "err": "034"}),
        # text comes last and keeps its colons, even a fake "stat:"
        ("id:77 stat:DELIVRD err:000 text:Code: 1234 stat:EXPIRED",
         {"text": "Code: 1234 stat:EXPIRED", "state": M.DELIVERED}),
        # lower-case stat word; unreadable date
        ("id:77 submit date:2413990000 stat:delivrd", {"stat": "DELIVRD",
                                                       "submit_date": None}),
        # a vendor word this table does not know: UNKNOWN, word kept
        ("id:77 stat:QUEUED", {"stat": "QUEUED", "state": M.UNKNOWN}),
        # padding spaces
        ("id: 77  sub:001 stat: ENROUTE ", {"message_id": "77", "state": M.ENROUTE}),
    ],
)
def test_variants_seen_in_the_wild(text: str, expected: dict[str, object]) -> None:
    receipt = parse_receipt(text)
    for attr, value in expected.items():
        assert getattr(receipt, attr) == value, attr


def test_fields_that_locate_or_identify_a_subscriber_are_dropped() -> None:
    text = ("id:77 stat:DELIVRD imsi:234150000000001 msc:447700000001 vlr:447700000002 "
            "sgsn:10.0.0.1 cellid:1234 lac:99 imei:356938035643809 mccmnc:23415 text:x")
    receipt = parse_receipt(text)
    assert receipt.extras == (("mccmnc", "23415"),)
    for secret in ("234150000000001", "447700000001", "447700000002", "10.0.0.1",
                   "1234", "356938035643809"):
        assert secret not in repr(receipt)
        assert secret not in format_receipt(receipt)


@pytest.mark.parametrize("text", ["Hello there", "", "id:77 err:000", "stat:DELIVRD err:0",
                                  "id: stat:DELIVRD"])
def test_text_that_is_not_a_receipt(text: str) -> None:
    with pytest.raises(ReceiptError):
        parse_receipt(text)


@pytest.mark.parametrize(
    ("stat", "state"),
    [("DELIVRD", M.DELIVERED), ("EXPIRED", M.EXPIRED), ("DELETED", M.DELETED),
     ("UNDELIV", M.UNDELIVERABLE), ("ACCEPTD", M.ACCEPTED), ("UNKNOWN", M.UNKNOWN),
     ("REJECTD", M.REJECTED), ("ENROUTE", M.ENROUTE),
     ("DELIVERED", M.DELIVERED), ("FAILED", M.UNDELIVERABLE), ("REJECTED", M.REJECTED)],
)
def test_stat_words(stat: str, state: MessageState) -> None:
    assert state_from_stat(stat) is state
    assert parse_receipt(f"id:1 stat:{stat}").state is state


def test_stat_and_state_are_inverse_for_the_spec_words() -> None:
    for state in MessageState:
        assert state_from_stat(stat_from_state(state)) is state
    assert state_from_stat("QUEUED") is None
    assert set(STAT_STATES.values()) == set(MessageState)


# ------------------------------------------------------------------- from PDUs


def dlr(text: bytes = b"", *tlvs: Tlv, esm_class: int = EsmType.DELIVERY_RECEIPT) -> DeliverSm:
    return DeliverSm(esm_class=esm_class, short_message=text, tlvs=tlvs)


def test_tlvs_win_over_the_text() -> None:
    pdu = dlr(b"id:0000000255 stat:ENROUTE err:000 text:x",
              T.RECEIPTED_MESSAGE_ID("ff"), T.MESSAGE_STATE(M.DELIVERED),
              T.NETWORK_ERROR_CODE(T.NetworkErrorCode(3, 0)))
    receipt = receipt_of(pdu)
    assert (receipt.message_id, receipt.state) == ("ff", M.DELIVERED)
    assert receipt.stat == "ENROUTE"  # the text's word is still reported as sent
    assert receipt.network_error == T.NetworkErrorCode(3, 0)
    assert receipt.err == "000"


def test_tlv_only_receipt() -> None:
    receipt = receipt_of(dlr(b"", T.RECEIPTED_MESSAGE_ID("abc"), T.MESSAGE_STATE(M.EXPIRED)))
    assert (receipt.message_id, receipt.state, receipt.stat) == ("abc", M.EXPIRED, "EXPIRED")


def test_malformed_tlvs_fall_back_to_the_text() -> None:
    pdu = dlr(b"id:77 stat:UNDELIV", Tlv(0x0427, b"\x00\x05"), Tlv(0x0427 - 9, b""),
              Tlv(0x001E, b"a\0b"))
    receipt = receipt_of(pdu)
    assert (receipt.message_id, receipt.state) == ("77", M.UNDELIVERABLE)


def test_message_state_outside_3_4_falls_back_to_the_text() -> None:
    receipt = receipt_of(dlr(b"id:77 stat:DELIVRD", T.MESSAGE_STATE(9)))
    assert receipt.state is M.DELIVERED


def test_text_in_message_payload_and_data_sm() -> None:
    assert receipt_of(dlr(b"", T.MESSAGE_PAYLOAD(b"id:9 stat:DELIVRD"))).message_id == "9"
    data_sm = DataSm(esm_class=EsmType.DELIVERY_RECEIPT,
                     tlvs=(T.MESSAGE_PAYLOAD(b"id:9 stat:REJECTD"),))
    assert receipt_of(data_sm).state is M.REJECTED


def test_no_id_or_no_state_anywhere() -> None:
    with pytest.raises(ReceiptError):
        receipt_of(dlr(b"hello"))
    with pytest.raises(ReceiptError):
        receipt_of(dlr(b"", T.MESSAGE_STATE(2)))


def test_is_receipt() -> None:
    assert is_receipt(dlr())
    assert is_receipt(dlr(esm_class=EsmType.INTERMEDIATE_NOTIFICATION | 0x40))
    assert not is_receipt(dlr(esm_class=0))
    assert is_receipt(dlr(b"", T.RECEIPTED_MESSAGE_ID("x"), esm_class=0))


# ------------------------------------------------------------------ properties

_word = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
                min_size=1, max_size=20)
_date = st.datetimes(datetime(2000, 1, 1), datetime(2068, 12, 31)).map(
    lambda d: d.replace(microsecond=0))
_extra_key = st.from_regex(r"[a-z]{2,8}", fullmatch=True).filter(
    lambda k: k not in {"id", "sub", "dlvrd", "stat", "err", "text", "imsi", "imei", "msc",
                        "vlr", "sgsn", "cell", "cellid", "ci", "lac", "loc", "location",
                        "lat", "lon", "lng", "mscaddr", "submit", "done"})


@settings(deadline=None)  # no per-example deadline: the machine is shared
@given(
    message_id=_word, state=st.sampled_from(MessageState), sub=st.none() | st.integers(0, 999),
    dlvrd=st.none() | st.integers(0, 999), submit=st.none() | _date, done=st.none() | _date,
    err=st.none() | _word, text=st.none() | st.text(max_size=40),
    extras=st.lists(st.tuples(_extra_key, _word), max_size=3, unique_by=lambda kv: kv[0]),
)
def test_format_then_parse_is_identity(message_id: str, state: MessageState, sub: int | None,
                                       dlvrd: int | None, submit: datetime | None,
                                       done: datetime | None, err: str | None,
                                       text: str | None,
                                       extras: list[tuple[str, str]]) -> None:
    receipt = Receipt(message_id=message_id, stat=stat_from_state(state), state=state,
                      sub=sub, dlvrd=dlvrd, submit_date=submit, done_date=done, err=err,
                      text=text, extras=tuple(extras))
    assert parse_receipt(format_receipt(receipt, seconds=True)) == receipt


# ----------------------------------------------------------------- message ids


@pytest.mark.parametrize(
    ("submit", "receipt", "policy", "match"),
    [
        ("AbC123", "AbC123", IdPolicy.AS_IS, True),
        ("AbC123", "abc123", IdPolicy.AS_IS, False),
        ("AbC123", "abc123", IdPolicy.CASE_INSENSITIVE, True),
        ("12345", "0000012345", IdPolicy.NORMALIZED, True),  # zero-padded to 10 digits
        ("a1b2-c3d4-e5f6", "A1B2C3D4E5F6", IdPolicy.NORMALIZED, True),  # hyphens, case
        ("12345", "123450", IdPolicy.NORMALIZED, False),
        ("1A2B", "6699", IdPolicy.HEX_TO_DEC, True),
        ("1a2b", "0000006699", IdPolicy.HEX_TO_DEC, True),
        ("1A2B", "6698", IdPolicy.HEX_TO_DEC, False),
        ("1A2B", "1A2B", IdPolicy.HEX_TO_DEC, False),  # the receipt side is decimal
        ("6699", "1a2b", IdPolicy.DEC_TO_HEX, True),
        ("6699", "00001A2B", IdPolicy.DEC_TO_HEX, True),
        ("xyz-1", "XYZ1", IdPolicy.HEX_TO_DEC, True),  # neither side numeric: normalised
        ("1A2B", "6699", IdPolicy.ANY, True),
        ("1A2B", "1a2b", IdPolicy.ANY, True),
        ("1A2B", "6700", IdPolicy.ANY, False),
    ],
)
def test_ids_match(submit: str, receipt: str, policy: IdPolicy, match: bool) -> None:
    assert ids_match(submit, receipt, policy) is match


def test_normalize_message_id() -> None:
    assert normalize_message_id(" 000-0A ") == "a"
    assert normalize_message_id("0000") == "0"
    assert normalize_message_id("") == ""


def test_overlong_ids_are_not_read_as_numbers() -> None:
    huge = "f" * 5000
    assert submit_id_keys(huge, IdPolicy.HEX_TO_DEC) == (huge,)
    assert receipt_id_keys("9" * 5000, IdPolicy.ANY) == ("9" * 5000,)


@settings(deadline=None)
@given(n=st.integers(0, 2**64), pad=st.integers(0, 12), upper=st.booleans())
def test_hex_and_padded_decimal_forms_of_one_number_match(n: int, pad: int,
                                                          upper: bool) -> None:
    hexa = format(n, "X" if upper else "x")
    assert ids_match(hexa, str(n).zfill(pad), IdPolicy.HEX_TO_DEC)
    assert ids_match(str(n), hexa.zfill(pad), IdPolicy.DEC_TO_HEX)
    assert not ids_match(hexa, str(n + 1), IdPolicy.HEX_TO_DEC)
