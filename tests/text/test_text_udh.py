"""User data header parsing and building (TS 23.040 §9.2.3.24)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.text import (
    Concat,
    InformationElement,
    LocalTextError,
    UdhError,
    build_udh,
    concat_element,
    parse_udh,
)


def test_concat_8bit_reference() -> None:
    # 05: UDHL, 00: IEI concat 8-bit, 03: IEDL, CC: ref, 02: total, 01: seq.
    udh, rest = parse_udh(bytes.fromhex("050003CC0201") + b"hello")
    assert udh.concat == Concat(0xCC, 2, 1)
    assert udh.elements == (InformationElement(0x00, bytes.fromhex("CC0201")),)
    assert udh.length == 6
    assert rest == b"hello"


def test_concat_16bit_reference() -> None:
    udh, rest = parse_udh(bytes.fromhex("06080412340302"))
    assert udh.concat == Concat(0x1234, 3, 2)
    assert rest == b""


def test_port_addressing_and_concat_together() -> None:
    # WAP push: IE 05 (16-bit ports 0x0B84 -> 0x23F0) then 8-bit concat.
    data = bytes.fromhex("0B05040B8423F0000301020141")
    udh, rest = parse_udh(data)
    assert [e.iei for e in udh.elements] == [0x05, 0x00]
    assert udh.elements[0].data == bytes.fromhex("0B8423F0")
    assert udh.concat == Concat(1, 2, 1)
    assert rest == b"\x41"


def test_empty_header_is_valid() -> None:
    udh, rest = parse_udh(b"\x00abc")
    assert udh.elements == () and udh.concat is None and udh.length == 1
    assert rest == b"abc"


@pytest.mark.parametrize(
    ("hexed", "fragment"),
    [
        ("", "empty"),
        ("05000301", "overruns"),  # UDHL 5, only 3 octets follow
        ("FF", "overruns"),
        ("0300050101", "overruns UDHL"),  # IE says 5 octets, UDHL leaves 1
        ("01000102", "cut"),  # UDHL 1: an IE header needs 2
        ("040002CC02", "length 2"),  # concat IE must be 3 octets
        ("0508031234020155", "length 3"),  # 16-bit concat IE must be 4 octets
    ],
)
def test_hostile_lengths(hexed: str, fragment: str) -> None:
    with pytest.raises(UdhError) as info:
        parse_udh(bytes.fromhex(hexed))
    assert fragment in str(info.value)
    assert info.value.command_status == 0x43  # ESME_RINVESMCLASS


@pytest.mark.parametrize("numbers", ["0002", "0200", "0203", "0000"])
def test_impossible_numbering_is_ignored_per_spec(numbers: str) -> None:
    # TS 23.040 §9.2.3.24.1: total 0, seq 0 or seq > total: ignore the IE.
    udh, _ = parse_udh(bytes.fromhex("050003CC" + numbers))
    assert udh.concat is None
    assert len(udh.elements) == 1


def test_last_concat_occurrence_wins() -> None:
    udh, _ = parse_udh(bytes.fromhex("0B" "0003010201" "080400070302"))
    assert udh.concat == Concat(7, 3, 2)


def test_build_vectors() -> None:
    assert build_udh([concat_element(0xCC, 2, 1, wide=False)]).hex() == "050003cc0201"
    assert build_udh([concat_element(0x1234, 3, 2, wide=True)]).hex() == "06080412340302"
    assert build_udh([]) == b"\x00"


@pytest.mark.parametrize(
    ("reference", "total", "seq", "wide"),
    [(256, 2, 1, False), (-1, 2, 1, False), (65536, 2, 1, True), (1, 0, 0, False),
     (1, 2, 3, False), (1, 256, 1, True), (1, 2, 0, True)],
)
def test_concat_element_ranges(reference: int, total: int, seq: int, wide: bool) -> None:
    with pytest.raises(LocalTextError):
        concat_element(reference, total, seq, wide=wide)


def test_build_limits() -> None:
    with pytest.raises(LocalTextError):
        build_udh([InformationElement(0x70, bytes(256))])
    with pytest.raises(LocalTextError):
        build_udh([InformationElement(0x100, b"")])
    with pytest.raises(LocalTextError):  # 1 + 2 + 137 = 140: no room for data
        build_udh([InformationElement(0x70, bytes(137))])
    assert len(build_udh([InformationElement(0x70, bytes(136))])) == 139


elements = st.lists(
    st.builds(InformationElement, st.integers(0x01, 0x07), st.binary(max_size=20)), max_size=5
)


@given(elements, st.binary(max_size=40))
def test_build_parse_round_trip(items: list[InformationElement], body: bytes) -> None:
    header = build_udh(items)
    udh, rest = parse_udh(header + body)
    assert udh.elements == tuple(items)
    assert udh.length == len(header)
    assert rest == body


@given(st.binary(max_size=300))
def test_fuzz_only_udh_error_escapes(data: bytes) -> None:
    try:
        udh, rest = parse_udh(data)
    except UdhError:
        return
    assert udh.length + len(rest) == len(data)
    if udh.length < 140:  # build refuses headers that leave no room for user data
        assert build_udh(udh.elements) == data[: udh.length]
