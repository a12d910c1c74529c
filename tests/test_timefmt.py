"""herald.timefmt: the one RFC 3339 formatter equals the standard library's."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from herald.timefmt import rfc3339


def _library(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))  # 1970..2100
def test_it_is_the_librarys_isoformat_with_a_z(seconds: float) -> None:
    assert rfc3339(seconds) == _library(seconds)


def test_rounding_at_the_edges_of_a_second() -> None:
    for seconds in (1_800_000_000.9999996, 1_800_000_000.9995, 1_800_000_000.0004999,
                    0.0, 1_799_999_999.999999):  # fmt: skip
        assert rfc3339(seconds) == _library(seconds)
