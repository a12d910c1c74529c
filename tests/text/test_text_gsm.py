"""GSM 7-bit default alphabet and septet packing (TS 23.038 §6.1.2, §6.2.1)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pycrate_mobile import TS23038  # independent implementation, used as an oracle

from herald.text import (
    BASIC_TABLE,
    EXTENSION_TABLE,
    DecodeError,
    EncodeError,
    LocalTextError,
    fill_bits_after,
    gsm_decode,
    gsm_encode,
    is_gsm,
    pack_septets,
    unpack_septets,
)

from .strategies import GSM_CHARS, GSM_EXTENSION, ascii_text, gsm_text

# (character, septet) pairs read off the TS 23.038 §6.2.1 code table: the
# places where GSM differs from ASCII, plus the controls it keeps.
BASIC_VECTORS = [
    ("@", 0x00), ("£", 0x01), ("$", 0x02), ("¥", 0x03), ("è", 0x04), ("Ç", 0x09),
    ("\n", 0x0A), ("Ø", 0x0B), ("\r", 0x0D), ("Å", 0x0E), ("Δ", 0x10), ("_", 0x11),
    ("Ξ", 0x1A), ("Æ", 0x1C), ("É", 0x1F), (" ", 0x20), ("¤", 0x24), ("¡", 0x40),
    ("A", 0x41), ("Ä", 0x5B), ("§", 0x5F), ("¿", 0x60), ("a", 0x61), ("ü", 0x7E),
    ("à", 0x7F),
]

# TS 23.038 §6.2.1.1: the ten characters behind the 0x1B escape.
EXTENSION_VECTORS = [
    ("\x0c", b"\x1b\x0a"), ("^", b"\x1b\x14"), ("{", b"\x1b\x28"), ("}", b"\x1b\x29"),
    ("\\", b"\x1b\x2f"), ("[", b"\x1b\x3c"), ("~", b"\x1b\x3d"), ("]", b"\x1b\x3e"),
    ("|", b"\x1b\x40"), ("€", b"\x1b\x65"),
]


@pytest.mark.parametrize(("char", "septet"), BASIC_VECTORS)
def test_basic_table_vectors(char: str, septet: int) -> None:
    assert gsm_encode(char) == bytes((septet,))
    assert gsm_decode(bytes((septet,))) == char


@pytest.mark.parametrize(("char", "pair"), EXTENSION_VECTORS)
def test_extension_characters_take_an_escape_pair(char: str, pair: bytes) -> None:
    assert gsm_encode(char) == pair
    assert gsm_decode(pair) == char


def test_tables_agree_with_pycrate() -> None:
    assert TS23038._GSM7bTab == BASIC_TABLE
    for code, char in EXTENSION_TABLE.items():
        assert TS23038._GSM7bExtLUT[code] == char


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("ok \x1b", 3),  # the escape code itself is not a character
        ("ok `", 3),
        ("ok ç", 3),  # only capital Ç is in the table; no silent case change
        ("ok Ñ\u0301", 4),  # combining accent
        ("ok 😀", 3),
        ("ok\t", 2),
    ],
)
def test_characters_outside_the_tables_are_refused(text: str, position: int) -> None:
    assert not is_gsm(text)
    with pytest.raises(EncodeError) as info:
        gsm_encode(text)
    assert info.value.position == position
    assert info.value.character == text[position]


def test_hello_packed_vector() -> None:
    # The classic "hellohello" SMS-SUBMIT user data: 10 septets in 9 octets.
    assert pack_septets(gsm_encode("hellohello")).hex().upper() == "E8329BFD4697D9EC37"
    assert gsm_decode(unpack_septets(bytes.fromhex("E8329BFD4697D9EC37"))) == "hellohello"


def test_seven_spare_bits_are_filled_with_cr() -> None:
    # 7 septets = 49 bits: the 7th octet has 7 spare bits, which a receiver
    # counting from the octet length would read as "@" (TS 23.038 §6.1.2.3.1).
    packed = pack_septets(b"1234567")
    assert len(packed) == 7
    assert unpack_septets(packed, count=8)[-1] == 0x0D
    assert unpack_septets(packed) == b"1234567"
    assert unpack_septets(packed, count=7) == b"1234567"


@pytest.mark.parametrize(("udh_octets", "fill"), [(0, 0), (6, 1), (7, 0), (3, 4), (12, 2)])
def test_fill_bits_after_udh(udh_octets: int, fill: int) -> None:
    assert fill_bits_after(udh_octets) == fill
    assert (udh_octets * 8 + fill) % 7 == 0


@given(gsm_text, st.integers(0, 6))
def test_packing_matches_pycrate(text: str, fill: int) -> None:
    septets = gsm_encode(text)
    assert pack_septets(septets, fill_bits=fill) == TS23038.encode_7b(text, fill)[0]


@given(gsm_text)
def test_unpacked_round_trip(text: str) -> None:
    assert gsm_decode(gsm_encode(text)) == text


@given(gsm_text, st.integers(0, 6))
def test_packed_round_trip_with_count(text: str, fill: int) -> None:
    septets = gsm_encode(text)
    packed = pack_septets(septets, fill_bits=fill)
    # A CR pad only ever fills the last octet: the length stays the minimum.
    assert len(packed) == -(-(fill + 7 * len(septets)) // 8)
    assert unpack_septets(packed, fill_bits=fill, count=len(septets)) == septets


@given(gsm_text, st.integers(0, 6))
def test_packed_round_trip_without_count(text: str, fill: int) -> None:
    # Without a count only a CR ending exactly on an octet boundary is ambiguous.
    assume(not text.endswith("\r"))
    assert gsm_decode(unpack_septets(pack_septets(gsm_encode(text), fill_bits=fill),
                                     fill_bits=fill)) == text


@pytest.mark.parametrize(
    ("data", "offset", "fragment"),
    [
        (b"ab\x80", 2, "0x80"),  # not a septet
        (b"\xff", 0, "0xFF"),
        (b"ab\x1b", 2, "escape at end"),  # half a pair
        (b"a\x1b\x01", 1, "0x01"),  # no such extension character
        (b"\x1b\x1b", 0, "0x1B"),  # escape to an undefined second table
        (b"\x1b\x0d", 0, "0x0D"),  # CR2: not one of the ten characters
        (b"a\x90\x1b\x01", 1, "0x90"),  # the first of two faults is reported
        (b"a\x1b\x01\x90", 1, "0x01"),
        (b"\x1b\x90", 0, "0x90"),
    ],
)
def test_strict_decoding_names_the_bad_octet(data: bytes, offset: int, fragment: str) -> None:
    with pytest.raises(DecodeError) as info:
        gsm_decode(data)
    assert info.value.offset == offset
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\x1b\x01x", "£x"),  # unknown code: the basic-table character (TS 23.038)
        (b"\x1b\x1bx", " x"),  # second extension table: a space
        (b"a\x80b", "a\ufffdb"),
        (b"ab\x1b", "ab\ufffd"),
        (b"\x1b\x65\x1b", "€\ufffd"),
        (b"\x1b\x1b\x1b\x65", " €"),
    ],
)
def test_lenient_decoding(data: bytes, text: str) -> None:
    assert gsm_decode(data, strict=False) == text


def test_pack_and_unpack_reject_bad_arguments() -> None:
    with pytest.raises(LocalTextError):
        pack_septets(b"\x80")
    with pytest.raises(LocalTextError):
        pack_septets(b"a", fill_bits=7)
    with pytest.raises(LocalTextError):
        unpack_septets(b"a", fill_bits=-1)
    with pytest.raises(DecodeError):
        unpack_septets(b"\x00" * 7, count=9)  # 56 bits hold 8 septets
    assert unpack_septets(b"\x00" * 7, count=8) == b"\x00" * 8
    assert unpack_septets(b"") == b""


def test_every_table_character_is_gsm() -> None:
    assert is_gsm("".join(GSM_CHARS))
    assert len(gsm_encode("".join(GSM_CHARS))) == 127 + 2 * 10


@given(ascii_text)
def test_ascii_fast_path_agrees_with_the_tables(text: str) -> None:
    table = set(GSM_CHARS)
    bad = [i for i, c in enumerate(text) if c not in table]
    if bad:
        with pytest.raises(EncodeError) as info:
            gsm_encode(text)
        assert info.value.position == bad[0]
        assert not is_gsm(text)
    else:
        assert is_gsm(text)
        assert pack_septets(gsm_encode(text)) == TS23038.encode_7b(text)[0]
        assert len(gsm_encode(text)) == len(text) + sum(c in GSM_EXTENSION for c in text)
