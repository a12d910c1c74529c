"""Encodings, data_coding interpretation (SMPP 3.4 §5.2.19, TS 23.038 §4), encoding choice."""

from __future__ import annotations

import pytest
from hypothesis import given

from herald.text import (
    DataCoding,
    DataCodingError,
    DecodeError,
    EncodeError,
    Encoding,
    EncodingUnavailable,
    MessageClass,
    MessageWaiting,
    SmscDefault,
    WaitingKind,
    choose_encoding,
    data_coding_for,
    decode,
    encode,
    parse_data_coding,
)

from .strategies import ascii_text, gsm_text, latin1_text, unicode_text

# --- UCS-2 (data_coding 8): UTF-16BE, no byte order mark ---------------------


@pytest.mark.parametrize(
    ("text", "hexed"),
    [
        ("A", "0041"),
        ("€", "20AC"),
        ("Привет", "041F04400438043204350442"),
        ("😀", "D83DDE00"),  # U+1F600 as a surrogate pair
        ("a😀b", "0061D83DDE000062"),
    ],
)
def test_ucs2_vectors(text: str, hexed: str) -> None:
    assert encode(text, Encoding.UCS2).hex().upper() == hexed
    assert decode(bytes.fromhex(hexed), Encoding.UCS2) == text


def test_ucs2_odd_length() -> None:
    with pytest.raises(DecodeError) as info:
        decode(b"\x00A\x00", Encoding.UCS2)
    assert info.value.offset == 2
    assert decode(b"\x00A\x00", Encoding.UCS2, strict=False) == "A\ufffd"


@pytest.mark.parametrize(
    ("hexed", "lenient"),
    [
        ("D83D", "\ufffd"),  # high surrogate at the end
        ("D83D0041", "\ufffdA"),  # high surrogate followed by a non-surrogate
        ("DE000041", "\ufffdA"),  # low surrogate first
        ("0041DE00", "A\ufffd"),
    ],
)
def test_ucs2_lone_surrogates(hexed: str, lenient: str) -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(hexed), Encoding.UCS2)
    assert decode(bytes.fromhex(hexed), Encoding.UCS2, strict=False) == lenient


def test_lone_surrogate_in_text_cannot_be_encoded() -> None:
    with pytest.raises(EncodeError) as info:
        encode("ab\ud83d", Encoding.UCS2)
    assert info.value.position == 2


def test_latin1_and_ascii() -> None:
    assert encode("£é", Encoding.LATIN1) == b"\xa3\xe9"
    assert decode(b"\xa3\xe9", Encoding.LATIN1) == "£é"
    with pytest.raises(EncodeError):
        encode("€", Encoding.LATIN1)
    assert encode("a{", Encoding.ASCII) == b"a{"
    with pytest.raises(EncodeError):
        encode("é", Encoding.ASCII)
    with pytest.raises(DecodeError) as info:
        decode(b"ab\xe9", Encoding.ASCII)
    assert info.value.offset == 2
    assert decode(b"ab\xe9", Encoding.ASCII, strict=False) == "ab\ufffd"


def test_binary_is_not_text() -> None:
    with pytest.raises(EncodeError):
        encode("x", Encoding.BINARY)
    with pytest.raises(DecodeError):
        decode(b"x", Encoding.BINARY)


def test_packed_gsm_through_the_generic_codec() -> None:
    packed = encode("hellohello", Encoding.GSM7, packed=True)
    assert packed.hex().upper() == "E8329BFD4697D9EC37"
    assert decode(packed, Encoding.GSM7, packed=True) == "hellohello"
    assert decode(packed, Encoding.GSM7, packed=True, septets=5) == "hello"


@given(gsm_text)
def test_gsm_round_trip(text: str) -> None:
    assert decode(encode(text, Encoding.GSM7), Encoding.GSM7) == text


@given(unicode_text)
def test_ucs2_round_trip(text: str) -> None:
    data = encode(text, Encoding.UCS2)
    assert len(data) == 2 * sum(2 if ord(c) > 0xFFFF else 1 for c in text)
    assert decode(data, Encoding.UCS2) == text


@given(latin1_text)
def test_latin1_round_trip(text: str) -> None:
    assert decode(encode(text, Encoding.LATIN1), Encoding.LATIN1) == text


@given(ascii_text)
def test_ascii_round_trip(text: str) -> None:
    assert decode(encode(text, Encoding.ASCII), Encoding.ASCII) == text


# --- data_coding -------------------------------------------------------------

G, L, A = SmscDefault.GSM7, SmscDefault.LATIN1, SmscDefault.ASCII


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        (0x00, G, DataCoding(0, Encoding.GSM7)),  # SMSC default, per connector
        (0x00, L, DataCoding(0, Encoding.LATIN1)),
        (0x00, A, DataCoding(0, Encoding.ASCII)),
        (0x01, L, DataCoding(1, Encoding.ASCII)),  # IA5
        (0x02, G, DataCoding(2, Encoding.BINARY)),
        (0x03, G, DataCoding(3, Encoding.LATIN1)),
        (0x04, G, DataCoding(4, Encoding.BINARY)),
        (0x08, G, DataCoding(8, Encoding.UCS2)),
        # TS 23.038 general group 00xx: bit 4 says bits 1..0 carry the class.
        (0x10, L, DataCoding(0x10, Encoding.GSM7, MessageClass.FLASH)),
        (0x11, G, DataCoding(0x11, Encoding.GSM7, MessageClass.ME)),
        (0x16, G, DataCoding(0x16, Encoding.BINARY, MessageClass.SIM)),
        (0x18, G, DataCoding(0x18, Encoding.UCS2, MessageClass.FLASH)),
        # 01xx: the same layout, message marked for automatic deletion.
        (0x40, G, DataCoding(0x40, Encoding.GSM7, auto_delete=True)),
        (0x48, G, DataCoding(0x48, Encoding.UCS2, auto_delete=True)),
        (0x53, G, DataCoding(0x53, Encoding.GSM7, MessageClass.TE, auto_delete=True)),
        # 1100 / 1101 / 1110: message waiting indication.
        (0xC0, G, DataCoding(0xC0, Encoding.GSM7,
                             waiting=MessageWaiting(False, False, WaitingKind.VOICEMAIL))),
        (0xD9, G, DataCoding(0xD9, Encoding.GSM7,
                             waiting=MessageWaiting(True, True, WaitingKind.FAX))),
        (0xE2, G, DataCoding(0xE2, Encoding.UCS2,
                             waiting=MessageWaiting(True, False, WaitingKind.EMAIL))),
        # 1111: bit 2 chooses GSM 7-bit or 8-bit data, bits 1..0 the class.
        (0xF0, L, DataCoding(0xF0, Encoding.GSM7, MessageClass.FLASH)),
        (0xF1, G, DataCoding(0xF1, Encoding.GSM7, MessageClass.ME)),
        (0xF6, G, DataCoding(0xF6, Encoding.BINARY, MessageClass.SIM)),
        (0xF8, G, DataCoding(0xF8, Encoding.GSM7, MessageClass.FLASH)),  # bit 3 reserved
    ],
)
def test_data_coding_vectors(value: int, default: SmscDefault, expected: DataCoding) -> None:
    assert parse_data_coding(value, default) == expected


@pytest.mark.parametrize(
    "value",
    [0x05, 0x06, 0x07, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,  # SMPP alphabets
     0x1C, 0x4C,  # reserved alphabet 11
     0x20, 0x30, 0x60,  # compressed
     0x80, 0xA5, 0xBF,  # reserved groups
     0xC4, 0xE7,  # reserved bit in a waiting group
     0x100, -1],
)
def test_data_coding_refused(value: int) -> None:
    with pytest.raises(DataCodingError):
        parse_data_coding(value, G)


def test_every_octet_is_interpreted_or_refused() -> None:
    parsed = 0
    for value in range(256):
        try:
            coding = parse_data_coding(value, G)
        except DataCodingError as exc:
            assert exc.value == value
            continue
        parsed += 1
        assert coding.value == value
        if value >= 0xF0:
            assert coding.message_class == value & 3
    # Counted from the tables: 0x00..0x0F: 0, 1, 2, 3, 4, 8. 0x10..0x1F, 0x40..0x4F,
    # 0x50..0x5F: 12 each (alphabet 11 reserved); 0x20..0x3F, 0x60..0x7F
    # compressed; 0x80..0xBF reserved; 0xC0..0xEF: 8 per group (bit 2
    # reserved); 0xF0..0xFF: all 16.
    assert parsed == 6 + 12 + 12 + 12 + 3 * 8 + 16


@pytest.mark.parametrize(
    ("encoding", "default", "klass", "value"),
    [
        (Encoding.GSM7, G, None, 0x00),
        (Encoding.LATIN1, L, None, 0x00),
        (Encoding.ASCII, A, None, 0x00),
        (Encoding.LATIN1, G, None, 0x03),
        (Encoding.ASCII, G, None, 0x01),
        (Encoding.UCS2, L, None, 0x08),
        (Encoding.BINARY, G, None, 0x04),
        (Encoding.GSM7, G, MessageClass.FLASH, 0xF0),
        (Encoding.GSM7, L, MessageClass.ME, 0xF1),  # the class values name GSM explicitly
        (Encoding.BINARY, G, MessageClass.SIM, 0xF6),
        (Encoding.UCS2, G, MessageClass.FLASH, 0x18),
    ],
)
def test_data_coding_for(
    encoding: Encoding, default: SmscDefault, klass: MessageClass | None, value: int
) -> None:
    assert data_coding_for(encoding, default, klass) == value
    back = parse_data_coding(value, default)
    assert (back.encoding, back.message_class) == (encoding, klass)


@pytest.mark.parametrize(
    ("encoding", "default", "klass"),
    [
        (Encoding.GSM7, L, None),  # SMPP 3.4 has no other class-less GSM value
        (Encoding.GSM7, A, None),
        (Encoding.LATIN1, G, MessageClass.FLASH),
        (Encoding.ASCII, G, MessageClass.ME),
    ],
)
def test_data_coding_unavailable(
    encoding: Encoding, default: SmscDefault, klass: MessageClass | None
) -> None:
    with pytest.raises(EncodingUnavailable):
        data_coding_for(encoding, default, klass)


# --- cheapest encoding ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "default", "latin1", "expected"),
    [
        ("Your code is 1234", G, False, Encoding.GSM7),
        ("Prix: 10€ {promo}", G, False, Encoding.GSM7),  # extension characters
        ("Grüße, Δ", G, False, Encoding.GSM7),
        ("Façade", G, False, Encoding.UCS2),  # ç is not in GSM
        ("Façade", G, True, Encoding.LATIN1),
        ("Façade €", G, True, Encoding.UCS2),
        ("Привет", G, True, Encoding.UCS2),
        ("hi 😀", G, False, Encoding.UCS2),
        ("", G, False, Encoding.GSM7),
        ("hello", L, False, Encoding.LATIN1),  # data_coding 0 is Latin-1 there
        ("10€", L, False, Encoding.UCS2),
        ("hello", A, False, Encoding.ASCII),
        ("héllo", A, False, Encoding.UCS2),
        ("héllo", A, True, Encoding.LATIN1),
    ],
)
def test_choose_encoding(text: str, default: SmscDefault, latin1: bool, expected: Encoding) -> None:
    assert choose_encoding(text, smsc_default=default, allow_latin1=latin1) is expected


@given(unicode_text)
def test_chosen_encoding_represents_the_text(text: str) -> None:
    for default in SmscDefault:
        encoding = choose_encoding(text, smsc_default=default)
        assert decode(encode(text, encoding), encoding) == text
        data_coding_for(encoding, default)  # always nameable on that upstream
