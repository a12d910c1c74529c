"""Message ids: base32hex text of (48-bit milliseconds, 80 random bits), time-ordered."""

from __future__ import annotations

import base64
import random

import pytest

from herald.ids import ID_LENGTH, SortableIdGenerator, id_time, is_valid_id

T0 = 1_800_000_000.0


def _reference(value: int) -> str:
    """RFC 4648 §7 base32hex via the standard library: the oracle."""
    return base64.b32hexencode(value.to_bytes(16, "big"))[:ID_LENGTH].decode().lower()


def test_ids_are_base32hex_of_time_and_random_bits() -> None:
    rng = random.Random(3)
    gen = SortableIdGenerator()
    for n in range(2000):
        now = T0 + n * 0.0037 + rng.random() * 0.001
        made = gen.new_id(now)
        value = (gen._last_ms << 80) | gen._last_random
        assert made == _reference(value)
        assert is_valid_id(made) and len(made) == ID_LENGTH
        assert id_time(made) == gen._last_ms / 1000


@pytest.mark.parametrize("value", [0, 1, (1 << 128) - 1, 1 << 127, 0x3FF, 0x155 << 100])
def test_edge_values_encode_like_the_standard_library(value: int) -> None:
    gen = SortableIdGenerator()
    gen._last_ms, gen._last_random = value >> 80, value & ((1 << 80) - 1)
    # the same millisecond again: the random part increments by one
    made = gen.new_id(gen._last_ms / 1000)
    expected = ((value >> 80) << 80 | ((value + 1) & ((1 << 80) - 1)))
    if value & ((1 << 80) - 1) == (1 << 80) - 1:  # wrapped: borrows the next millisecond
        expected = (((value >> 80) + 1) << 80)
    assert made == _reference(expected & ((1 << 128) - 1))


def test_ids_sort_like_their_creation_and_never_repeat() -> None:
    gen = SortableIdGenerator()
    times = [T0 + k * 0.0004 for k in range(3000)] + [T0 - 5.0]  # the clock steps back
    ids = [gen.new_id(t) for t in times]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_id_time_refuses_what_is_not_an_id() -> None:
    for text in ("", "x" * ID_LENGTH, "0" * (ID_LENGTH - 1), "W" * ID_LENGTH):
        with pytest.raises(ValueError):
            id_time(text)
