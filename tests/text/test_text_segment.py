"""Segmentation: capacities, boundaries, UDH/SAR/payload methods (TS 23.040 §9.2.3.24)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrate_mobile import TS23038

from herald.text import (
    MAX_PARTS,
    Concat,
    DecodeError,
    EncodeError,
    Encoding,
    EncodingUnavailable,
    LocalTextError,
    MessageClass,
    MessageTooLong,
    Method,
    Segmented,
    SmscDefault,
    TooManyParts,
    analyze,
    build_udh,
    capacity,
    concat_element,
    decode,
    fill_bits_after,
    parse_udh,
    split_binary,
    split_text,
    unpack_septets,
)

from .strategies import gsm_text, latin1_text, long_gsm_text, unicode_text

CONCAT = (Method.UDH8, Method.UDH16, Method.SAR)


@pytest.mark.parametrize(
    ("encoding", "single", "udh8", "udh16", "sar"),
    [
        (Encoding.GSM7, 160, 153, 152, 152),  # septets
        (Encoding.UCS2, 70, 67, 66, 66),  # UTF-16 units (140/134/132 octets)
        (Encoding.BINARY, 140, 134, 133, 133),  # octets
        (Encoding.LATIN1, 140, 134, 133, 133),
    ],
)
def test_capacities(encoding: Encoding, single: int, udh8: int, udh16: int, sar: int) -> None:
    assert capacity(encoding, Method.UDH8, multipart=False) == single
    got = [capacity(encoding, m, multipart=True) for m in CONCAT]
    assert got == [udh8, udh16, sar]


def test_161_gsm_characters_make_153_plus_8() -> None:
    result = split_text("a" * 161, reference=0x2A)
    assert (result.encoding, result.data_coding, result.units) == (Encoding.GSM7, 0, 161)
    assert [p.units for p in result.parts] == [153, 8]
    assert [p.udh.hex() for p in result.parts] == ["0500032a0201", "0500032a0202"]
    assert all(p.udhi and p.sar is None for p in result.parts)
    assert result.parts[0].short_message == bytes.fromhex("0500032a0201") + b"a" * 153


def test_160_gsm_characters_are_one_part_without_udh() -> None:
    for method in Method:
        result = split_text("a" * 160, method=method)
        assert result.segments == 1
        part = result.parts[0]
        assert (part.udh, part.sar, part.udhi, part.units) == (b"", None, False, 160)


def test_euro_at_position_153_moves_whole() -> None:
    # 152 septets, then "€" = 1B 65 would take septets 153-154: the pair moves.
    result = split_text("a" * 152 + "€" + "b" * 10)
    first, second = result.parts
    assert first.units == 152 and first.payload == b"a" * 152
    assert second.payload[:2] == b"\x1b\x65"
    assert result.units == 152 + 2 + 10


def test_euro_just_before_the_boundary_stays() -> None:
    result = split_text("a" * 151 + "€" + "b" * 10)
    assert result.parts[0].units == 153 and result.parts[0].payload.endswith(b"\x1b\x65")


def test_emoji_at_a_ucs2_boundary_moves_to_the_next_part() -> None:
    # 66 units of text, then U+1F600 (two units) where unit 67 is the last slot.
    result = split_text("x" * 66 + "😀" + "y" * 10)
    assert result.encoding is Encoding.UCS2 and result.data_coding == 8
    first, second = result.parts
    assert first.units == 66
    assert second.payload[:4] == bytes.fromhex("D83DDE00")


def test_ucs2_71_characters() -> None:
    assert split_text("ж" * 70).segments == 1
    assert [p.units for p in split_text("ж" * 71).parts] == [67, 4]
    assert [p.units for p in split_text("ж" * 71, method=Method.UDH16).parts] == [66, 5]


@pytest.mark.parametrize(("method", "reference"), [(Method.UDH8, 0xFE), (Method.UDH16, 0xABCD)])
def test_udh_equals_the_generic_builder(method: Method, reference: int) -> None:
    result = split_text("a" * 500, method=method, reference=reference)
    wide = method is Method.UDH16
    assert [p.udh for p in result.parts] == [
        build_udh([concat_element(reference, 4, seq, wide=wide)]) for seq in range(1, 5)
    ]


def test_udh16_layout() -> None:
    result = split_text("a" * 200, method=Method.UDH16, reference=0xBEEF)
    assert [p.udh.hex() for p in result.parts] == ["060804beef0201", "060804beef0202"]
    assert [p.units for p in result.parts] == [152, 48]


def test_sar_parts_carry_the_triple_and_no_udh() -> None:
    result = split_text("a" * 200, method=Method.SAR, reference=300)
    assert [p.sar for p in result.parts] == [Concat(300, 2, 1), Concat(300, 2, 2)]
    assert all(p.udh == b"" and not p.udhi for p in result.parts)
    assert [p.units for p in result.parts] == [152, 48]


def test_payload_is_one_part() -> None:
    result = split_text("a" * 1000, method=Method.PAYLOAD)
    assert result.segments == 1
    assert result.parts[0].payload == b"a" * 1000 and result.parts[0].udh == b""
    with pytest.raises(MessageTooLong):
        split_text("ж" * 40000, method=Method.PAYLOAD)


def test_binary_capacities() -> None:
    assert split_binary(bytes(140)).segments == 1
    assert [p.units for p in split_binary(bytes(141)).parts] == [134, 7]
    assert [p.units for p in split_binary(bytes(141), method=Method.UDH16).parts] == [133, 8]
    assert split_binary(bytes(141), data_coding=0xF5).parts[0].data_coding == 0xF5


def test_latin1_when_asked() -> None:
    result = split_text("ç" * 141, allow_latin1=True)
    assert (result.encoding, result.data_coding) == (Encoding.LATIN1, 3)
    assert [p.units for p in result.parts] == [134, 7]


def test_message_class_sets_data_coding_on_every_part() -> None:
    result = split_text("a" * 200, message_class=MessageClass.FLASH)
    assert {p.data_coding for p in result.parts} == {0xF0}
    with pytest.raises(EncodingUnavailable):
        split_text("hello", encoding=Encoding.LATIN1, message_class=MessageClass.FLASH)


def test_forced_encoding_that_cannot_carry_the_text() -> None:
    with pytest.raises(EncodeError):
        split_text("привет", encoding=Encoding.GSM7)


def test_255_parts_and_not_one_more() -> None:
    assert split_text("a" * (153 * 255)).segments == MAX_PARTS
    with pytest.raises(TooManyParts) as info:
        split_text("a" * (153 * 255 + 1))
    assert (info.value.needed, info.value.allowed) == (256, 255)
    assert info.value.command_status == 0x01  # ESME_RINVMSGLEN
    with pytest.raises(TooManyParts):
        split_text("a" * 10**6)  # refused before encoding
    with pytest.raises(TooManyParts):
        split_text("a" * 161, max_parts=1)
    assert split_text("a" * 153 * 10, max_parts=10).segments == 10


@pytest.mark.parametrize(
    ("method", "reference"),
    [(Method.UDH8, 256), (Method.UDH8, -1), (Method.UDH16, 65536), (Method.SAR, 70000)],
)
def test_reference_out_of_range(method: Method, reference: int) -> None:
    with pytest.raises(LocalTextError):
        split_text("a", method=method, reference=reference)


def test_bad_max_parts() -> None:
    for bad in (0, 256):
        with pytest.raises(LocalTextError):
            split_text("a", max_parts=bad)


def test_packed_parts_fit_and_match_pycrate() -> None:
    text = "Packed parts: " + "x{" * 120
    result = split_text(text, packed=True, reference=9)
    assert result.packed
    start = 0
    for part in result.parts:
        assert len(part.short_message) <= 140
        fill = fill_bits_after(len(part.udh))
        chunk = text[start:]
        septets = unpack_septets(part.payload, fill_bits=fill, count=part.units)
        piece = decode(septets, Encoding.GSM7)
        assert TS23038.encode_7b(piece, fill)[0] == part.payload
        assert chunk.startswith(piece)
        start += len(piece)
    assert start == len(text)


def test_analyze_reports_what_split_builds() -> None:
    report = analyze("Prix: 10€")
    assert (report.encoding, report.data_coding, report.units, report.characters) == (
        Encoding.GSM7, 0, 10, 9)
    assert (report.segments, report.per_part) == (1, 160)
    report = analyze("ж" * 100, method=Method.UDH16)
    assert (report.encoding, report.units, report.segments, report.per_part) == (
        Encoding.UCS2, 100, 2, 66)
    report = analyze("hello", smsc_default=SmscDefault.LATIN1)
    assert (report.encoding, report.data_coding) == (Encoding.LATIN1, 0)


# --- properties ------------------------------------------------------------


def _join(result: Segmented) -> str:
    """Decode each part on its own, strictly: a split pair would raise DecodeError."""
    out = []
    for part in result.parts:
        payload = part.payload
        if result.packed:
            fill = fill_bits_after(len(part.udh))
            payload = unpack_septets(payload, fill_bits=fill, count=part.units)
        out.append(decode(payload, result.encoding))
    return "".join(out)


def _check_parts(result: Segmented, per_part_units: int) -> None:
    total = result.segments
    for seq, part in enumerate(result.parts, start=1):
        assert part.units <= per_part_units
        if result.method is Method.PAYLOAD:
            assert len(part.payload) <= 65535
        elif result.encoding is Encoding.GSM7 and not result.packed:
            # Unpacked septets: one octet each on the SMPP link (<= 254 octets).
            assert len(part.payload) == part.units and len(part.short_message) <= 254
        else:
            assert len(part.short_message) <= 140  # TS 23.040 TP-UD
        if total == 1:
            assert part.udh == b"" and part.sar is None
        elif result.method is Method.SAR:
            assert part.sar is not None and (part.sar.total, part.sar.seq) == (total, seq)
        else:
            udh, rest = parse_udh(part.short_message)
            assert udh.concat is not None and (udh.concat.total, udh.concat.seq) == (total, seq)
            assert rest == part.payload
        if seq < total:
            # Cut as late as possible: a GSM part gives up at most the one septet
            # of an escape, a UCS-2 part the one unit of a high surrogate.
            pair = result.encoding in (Encoding.GSM7, Encoding.UCS2)
            assert part.units >= per_part_units - (1 if pair else 0)


@settings(max_examples=60)
@given(long_gsm_text, st.sampled_from(list(Method)), st.booleans())
def test_gsm_split_join(text: str, method: Method, packed: bool) -> None:
    result = split_text(text, method=method, reference=7, packed=packed)
    assert result.encoding is Encoding.GSM7
    assert _join(result) == text
    per_part = capacity(Encoding.GSM7, method, multipart=result.segments > 1)
    _check_parts(result, per_part)
    assert analyze(text, method=method).segments == result.segments


@settings(max_examples=60)
@given(unicode_text, st.sampled_from(list(Method)))
def test_ucs2_split_join(text: str, method: Method) -> None:
    result = split_text(text, method=method, encoding=Encoding.UCS2, reference=7)
    assert _join(result) == text
    per_part = capacity(Encoding.UCS2, method, multipart=result.segments > 1)
    _check_parts(result, per_part)
    assert sum(p.units for p in result.parts) == result.units


@settings(max_examples=40)
@given(latin1_text, st.sampled_from(list(Method)))
def test_latin1_split_join(text: str, method: Method) -> None:
    result = split_text(text, method=method, encoding=Encoding.LATIN1)
    assert _join(result) == text
    _check_parts(result, capacity(Encoding.LATIN1, method, multipart=result.segments > 1))


@settings(max_examples=40)
@given(st.binary(max_size=1500), st.sampled_from(list(Method)))
def test_binary_split_join(data: bytes, method: Method) -> None:
    result = split_binary(data, method=method, reference=3)
    assert b"".join(p.payload for p in result.parts) == data
    _check_parts(result, capacity(Encoding.BINARY, method, multipart=result.segments > 1))


@given(gsm_text)
def test_cheapest_choice_is_gsm_for_gsm_text(text: str) -> None:
    assert split_text(text).encoding is Encoding.GSM7


def test_a_split_pair_would_be_detected_by_the_join() -> None:
    # The property tests rely on strict per-part decoding to catch split pairs.
    with pytest.raises(DecodeError):
        decode(b"a\x1b", Encoding.GSM7)
    with pytest.raises(DecodeError):
        decode(bytes.fromhex("0061D83D"), Encoding.UCS2)
