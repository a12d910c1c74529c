"""The red line in the codec: decoded values never print who or where."""

from __future__ import annotations

import pytest

from herald.signaling import decode, invoke
from herald.signaling.map_types import (
    AddressString,
    ForwardSmArg,
    RoutingInfoForSmRes,
    SmRpDa,
    SmRpDaKind,
    SmRpOa,
    SmRpOaKind,
    UpdateLocationArg,
)
from herald.signaling.privacy import HASH_HEX_CHARS, MIN_SALT_BYTES, mask, salted_hash

from .vectors import MT_FSM_ARGUMENT, UL_M3UA

IMSI = "001010123456789"
SALT = b"s" * MIN_SALT_BYTES


def test_decoded_message_repr_hides_imsi_nodes_and_titles() -> None:
    msg = decode(UL_M3UA)
    for text in (repr(msg), str(msg), f"{msg}", repr(msg.tcap.components)):
        for secret in (IMSI, "0123456789", "2888000101", "2888000102", "1999000001"):
            assert secret not in text
        assert UL_M3UA[40:60].hex() not in text  # raw bytes are not dumped either
    # The home network of the IMSI (MCC 001, MNC 01) is no location: it stays.
    assert "00101**********" in repr(msg.argument)


def test_every_identifier_field_is_masked() -> None:
    values = [
        UpdateLocationArg(IMSI, AddressString("4477001"), AddressString("4477002"),
                          b"\x01\x02\x03\x04"),
        RoutingInfoForSmRes(IMSI, AddressString("4477003"), b"\x05\x06\x07\x08"),
        invoke(1, ForwardSmArg(SmRpDa(SmRpDaKind.LMSI, lmsi=b"\x09\x0a\x0b\x0c"),
                               SmRpOa(SmRpOaKind.MSISDN, AddressString("4477004")),
                               MT_FSM_ARGUMENT[-18:]), 44),
    ]
    for value in values:
        text = repr(value)
        for secret in ("4477001", "4477002", "4477003", "4477004", "0123456789",
                       "01020304", "05060708", "090a0b0c", "9991000001"):
            assert secret not in text, (secret, text)


def test_salted_hash_is_stable_keyed_and_namespaced() -> None:
    token = salted_hash(SALT, IMSI, kind="imsi")
    assert token == salted_hash(SALT, IMSI, kind="imsi")
    assert len(token) == HASH_HEX_CHARS and int(token, 16) >= 0
    assert IMSI not in token
    assert token != salted_hash(b"t" * MIN_SALT_BYTES, IMSI, kind="imsi")
    assert token != salted_hash(SALT, IMSI, kind="msisdn")
    assert token != salted_hash(SALT, "001010123456788", kind="imsi")
    with pytest.raises(ValueError):
        salted_hash(b"short", IMSI)


def test_mask_keeps_only_the_requested_prefix() -> None:
    assert mask("001010123456789", 5) == "00101**********"
    assert mask("12345") == "*****"
    assert mask("12", 5) == "12"


def test_raw_payloads_stay_out_of_reprs() -> None:
    # The M3UA and capture wrappers hold the whole SS7 payload (IMSIs in BCD).
    from herald.guard.pcap import CaptureRecord
    from herald.signaling.m3ua import decode_m3ua

    imsi_bcd = bytes.fromhex("00010121436587f9")
    for value in (decode_m3ua(UL_M3UA), CaptureRecord(0.0, UL_M3UA)):
        text = repr(value)
        assert repr(imsi_bcd)[2:-1] not in text and imsi_bcd.hex() not in text
        assert "user_data" not in text and "data=" not in text
