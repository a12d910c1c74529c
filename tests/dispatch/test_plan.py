"""A stored message as one connector's submit_sm PDUs (pure: no sockets, no store)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from herald.dispatch import Unsendable, Upstream, build_submits, validity_period
from herald.smpp import decode
from herald.smpp.tlv import MESSAGE_PAYLOAD, SAR_MSG_REF_NUM, SAR_SEGMENT_SEQNUM, SAR_TOTAL_SEGMENTS
from herald.store import Message, Source, Status
from herald.text import Method, SmscDefault, analyze, gsm_encode, parse_udh

T0 = 1_800_000_000.0


def message(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "id": "m1", "account_id": 1, "source": Source.HTTP, "to": "447700900123",
        "sender": "HERALD", "body": b"hello", "encoding": "gsm7", "data_coding": 0,
        "udhi": False, "segments": 1, "reference": None, "metadata": None,
        "callback_url": None, "registered_delivery": 0, "test": False, "send_at": None,
        "expires_at": T0 + 3600, "status": Status.QUEUED, "error_code": None,
        "error_permanent": False, "accepted_at": T0, "queued_at": T0, "sent_at": None,
        "done_at": None, "attempt": 1,
    }
    values.update(fields)
    return Message(**values)


GSM = Upstream()
LATIN1 = Upstream(smsc_default=SmscDefault.LATIN1)
ASCII = Upstream(smsc_default=SmscDefault.ASCII)


def test_a_short_message_goes_as_stored_and_encodes() -> None:
    (pdu,) = build_submits(message(), GSM, reference=7)
    assert (pdu.short_message, pdu.data_coding, pdu.esm_class) == (b"hello", 0, 0)
    assert (pdu.destination_addr, pdu.dest_addr_ton, pdu.dest_addr_npi) == ("447700900123", 1, 1)
    assert pdu.registered_delivery == 1
    assert pdu.validity_period == validity_period(T0 + 3600)
    assert decode(bytes(pdu)) == pdu  # a PDU the codec writes and reads back


def test_validity_is_an_absolute_utc_time() -> None:
    at = datetime(2027, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()
    assert validity_period(at + 0.9) == "270304050607000+"


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("HERALD", ("HERALD", 5, 0)),
        ("+447700900123", ("447700900123", 1, 1)),
        ("447700900123", ("447700900123", 1, 1)),
        ("12345", ("12345", 3, 0)),
    ],
)
def test_sender_kinds_get_their_ton_and_npi(sender: str, expected: tuple[str, int, int]) -> None:
    (pdu,) = build_submits(message(sender=sender), GSM, reference=0)
    assert (pdu.source_addr, pdu.source_addr_ton, pdu.source_addr_npi) == expected


def test_a_connector_may_force_the_source_ton_and_npi() -> None:
    (pdu,) = build_submits(message(sender="12345"), Upstream(source_ton=0, source_npi=1),
                           reference=0)
    assert (pdu.source_addr_ton, pdu.source_addr_npi) == (0, 1)


def test_gsm_text_is_re_encoded_for_a_latin1_upstream() -> None:
    """'£' is GSM 0x01; on an upstream whose data_coding 0 is Latin-1 it must be 0xA3."""
    body = gsm_encode("£5 {ok}")
    (pdu,) = build_submits(message(body=body), LATIN1, reference=0)
    assert (pdu.short_message, pdu.data_coding) == ("£5 {ok}".encode("latin-1"), 0)
    (pdu,) = build_submits(message(body=gsm_encode("Ω €")), LATIN1, reference=0)
    assert (pdu.short_message, pdu.data_coding) == ("Ω €".encode("utf-16-be"), 8)
    (pdu,) = build_submits(message(body=gsm_encode("é")), ASCII, reference=0)
    assert (pdu.short_message, pdu.data_coding) == (b"\xe9", 3)  # Latin-1, named explicitly
    (pdu,) = build_submits(message(body=gsm_encode("plain")), ASCII, reference=0)
    assert (pdu.short_message, pdu.data_coding) == (b"plain", 0)


def test_explicit_data_codings_travel_unchanged() -> None:
    ucs2 = "hé".encode("utf-16-be")
    (pdu,) = build_submits(message(body=ucs2, encoding="ucs2", data_coding=8), LATIN1,
                           reference=0)
    assert (pdu.short_message, pdu.data_coding) == (ucs2, 8)
    (pdu,) = build_submits(message(body=b"\x01", data_coding=0xF0), LATIN1, reference=0)
    assert (pdu.short_message, pdu.data_coding) == (b"\x01", 0xF0)  # flash GSM: explicit
    latin = "é".encode("latin-1")
    (pdu,) = build_submits(message(body=latin, encoding="latin1", data_coding=0), GSM,
                           reference=0)
    assert (pdu.short_message, pdu.data_coding) == (latin, 3)  # intake's default was Latin-1
    (pdu,) = build_submits(message(body=latin, encoding="latin1", data_coding=0), LATIN1,
                           reference=0)
    assert pdu.data_coding == 0


TEXT = "".join(chr(ord("a") + i % 26) for i in range(400))


@pytest.mark.parametrize(
    ("method", "parts", "header"),
    [(Method.UDH8, 3, 6), (Method.UDH16, 3, 7), (Method.SAR, 3, 0), (Method.PAYLOAD, 1, 0)],
)
def test_long_messages_use_the_connectors_concatenation(
    method: Method, parts: int, header: int
) -> None:
    pdus = build_submits(message(body=TEXT.encode(), segments=3), Upstream(method=method),
                         reference=0x1234)
    assert len(pdus) == parts
    if method is Method.PAYLOAD:
        assert pdus[0].short_message == b""
        assert pdus[0].tlv(MESSAGE_PAYLOAD) == TEXT.encode()
        return
    body = b"".join(p.short_message[header:] for p in pdus)
    assert body == TEXT.encode()
    if method is Method.SAR:
        assert [(p.tlv(SAR_MSG_REF_NUM), p.tlv(SAR_TOTAL_SEGMENTS), p.tlv(SAR_SEGMENT_SEQNUM))
                for p in pdus] == [(0x1234, 3, 1), (0x1234, 3, 2), (0x1234, 3, 3)]
        assert all(p.esm_class == 0 for p in pdus)
    else:
        udhs = [parse_udh(p.short_message)[0].concat for p in pdus]
        ref = 0x34 if method is Method.UDH8 else 0x1234
        assert [(c.reference, c.total, c.seq) for c in udhs if c] == [
            (ref, 3, 1), (ref, 3, 2), (ref, 3, 3)]
        assert all(p.esm_class == 0x40 for p in pdus)


def test_the_part_count_follows_the_connector_not_intake() -> None:
    """152 < septets <= 153 per part: UDH8 needs 2 parts, UDH16 3 (the caller re-counts)."""
    text = "x" * 306
    assert analyze(text).segments == 2
    assert len(build_submits(message(body=text.encode(), segments=2), GSM, reference=1)) == 2
    assert len(build_submits(message(body=text.encode(), segments=2),
                             Upstream(method=Method.UDH16), reference=1)) == 3


def test_a_customers_own_udh_is_kept_as_one_part() -> None:
    udh = bytes((5, 0, 3, 9, 2, 1))
    (pdu,) = build_submits(message(body=udh + gsm_encode("£"), udhi=True), GSM, reference=0)
    assert (pdu.short_message, pdu.esm_class, pdu.data_coding) == (udh + b"\x01", 0x40, 0)
    (pdu,) = build_submits(message(body=udh + gsm_encode("£"), udhi=True), LATIN1, reference=0)
    assert (pdu.short_message, pdu.data_coding) == (udh + b"\xa3", 0)


def test_binary_bodies_split_as_octets() -> None:
    data = bytes(range(256)) + bytes(44)
    pdus = build_submits(message(body=data, encoding="binary", data_coding=4, segments=3), GSM,
                         reference=3)
    assert [p.data_coding for p in pdus] == [4, 4, 4]
    assert b"".join(p.short_message[6:] for p in pdus) == data


def test_what_a_connector_cannot_carry_is_unsendable() -> None:
    with pytest.raises(Unsendable):
        build_submits(message(encoding="klingon"), GSM, reference=0)
    udh = bytes((5, 0, 3, 9, 2, 1))
    greek = gsm_encode("Ω" * 130)  # 130 septets with a UDH: fine in GSM, 266 octets in UCS-2
    with pytest.raises(Unsendable):
        build_submits(message(body=udh + greek, udhi=True), LATIN1, reference=0)
    with pytest.raises(Unsendable):
        build_submits(message(body=bytes(70_000), encoding="binary", data_coding=4),
                      Upstream(method=Method.PAYLOAD), reference=0)
