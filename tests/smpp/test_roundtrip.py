"""Property tests: every PDU class survives encode -> decode unchanged, whole and
split into arbitrary chunks."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herald.smpp import codec
from herald.smpp.pdus import Pdu

from .strategies import PDU_CLASS_LIST, any_pdu, pdu_of

# Generating PDUs with TLVs and address lists is slow on a loaded machine: that
# is not a failure of the code under test.
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large]


@pytest.mark.parametrize("cls", PDU_CLASS_LIST, ids=lambda c: c.__name__)
@settings(max_examples=30, deadline=None, suppress_health_check=_SLOW_DATA)
@given(data=st.data())
def test_round_trip(cls: type[Pdu], data: st.DataObject) -> None:
    pdu = data.draw(pdu_of(cls))
    wire = bytes(pdu)
    assert len(wire) == int.from_bytes(wire[:4], "big")
    assert codec.decode(wire) == pdu


@settings(max_examples=100, deadline=None, suppress_health_check=_SLOW_DATA)
@given(pdus=st.lists(any_pdu, min_size=1, max_size=5), cuts=st.lists(st.integers(0, 2000)))
def test_stream_split_anywhere(pdus: list[Pdu], cuts: list[int]) -> None:
    stream = b"".join(bytes(p) for p in pdus)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    decoder = codec.PduDecoder()
    got: list[codec.Outcome] = []
    for start, stop in itertools.pairwise(points):
        decoder.feed(stream[start:stop])
        for _ in range(len(pdus) + 1):
            outcome = decoder.next_outcome()
            if outcome is codec.NEED_DATA:
                break
            got.append(outcome)
    assert got == pdus
    assert decoder.buffered == 0
