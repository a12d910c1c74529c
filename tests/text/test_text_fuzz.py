"""Decoder fuzzing: hostile bytes may only raise the package's own errors.

Strict decoders raise `DecodeError` (or another `TextError`), lenient ones
never raise; no IndexError, UnicodeError or ValueError from below escapes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.text import (
    DecodeError,
    Encoding,
    SmscDefault,
    TextError,
    decode,
    encode,
    gsm_decode,
    read_message,
    unpack_septets,
)

TEXT_ENCODINGS = [Encoding.GSM7, Encoding.ASCII, Encoding.LATIN1, Encoding.UCS2]

# Bytes biased towards the troublesome values: escapes, surrogate halves, high bit.
hostile = st.lists(
    st.one_of(st.integers(0, 255), st.sampled_from([0x1B, 0xD8, 0xDB, 0xDC, 0xDF, 0x80, 0xFF])),
    max_size=300,
).map(bytes)


@settings(max_examples=300)
@given(hostile, st.sampled_from(TEXT_ENCODINGS))
def test_strict_decoders_raise_only_decode_error(data: bytes, encoding: Encoding) -> None:
    try:
        text = decode(data, encoding)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
    else:
        # Whatever strict decoding accepts, encoding gives back octet for octet.
        assert encode(text, encoding) == data


@settings(max_examples=300)
@given(hostile, st.sampled_from(TEXT_ENCODINGS))
def test_lenient_decoders_never_raise(data: bytes, encoding: Encoding) -> None:
    text = decode(data, encoding, strict=False)
    if encoding is Encoding.GSM7:
        # Never longer than the input: no expansion a hostile length could exploit.
        assert len(text) <= len(data)


@settings(max_examples=300)
@given(hostile, st.integers(0, 6), st.one_of(st.none(), st.integers(-5, 400)))
def test_unpack_raises_only_decode_error(data: bytes, fill: int, count: int | None) -> None:
    try:
        septets = unpack_septets(data, fill_bits=fill, count=count)
    except DecodeError:
        assert count is not None
        return
    assert septets.isascii()
    assert len(septets) * 7 <= len(data) * 8
    gsm_decode(septets, strict=False)


@settings(max_examples=500)
@given(
    hostile,
    st.sampled_from([0x00, 0x40, 0x43, 0xC0]),
    st.integers(0, 255),
    st.sampled_from(list(SmscDefault)),
    st.booleans(),
    st.booleans(),
)
def test_read_message_raises_only_text_errors(
    data: bytes, esm_class: int, data_coding: int, default: SmscDefault, strict: bool,
    packed: bool,
) -> None:
    try:
        inbound = read_message(data, esm_class=esm_class, data_coding=data_coding,
                               smsc_default=default, strict=strict, packed=packed)
    except TextError:
        return
    if inbound.text is None:
        assert inbound.coding.encoding is Encoding.BINARY
    if inbound.udh is not None:
        assert inbound.udh.length <= len(data)


def test_oversized_packed_input_is_refused() -> None:
    with pytest.raises(DecodeError):
        unpack_septets(bytes(70000))
