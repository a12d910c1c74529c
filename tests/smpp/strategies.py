"""Hypothesis strategies for SMPP values, read from the PDU classes' own field
specs so a new field or a changed limit is covered without touching this file."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from herald.smpp._codegen import field_specs
from herald.smpp._fields import U8, CString, Field, ShortMessage, Time
from herald.smpp._multi import DestAddresses, UnsuccessSmes
from herald.smpp.constants import Tag
from herald.smpp.pdus import PDU_CLASSES, DistributionList, Pdu, SmeAddress, UnsuccessSme
from herald.smpp.tlv import Tlv

# Any octet but NUL, as Latin-1 text: what a C-Octet String can carry.
_CHARS = st.characters(min_codepoint=1, max_codepoint=255)
octet = st.integers(0, 255)


def c_string(max_octets: int) -> st.SearchStrategy[str]:
    """Text that fits a C-Octet String of ``max_octets`` including its NUL."""
    return st.text(_CHARS, max_size=max_octets - 1)


def smpp_time() -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), st.text(_CHARS, min_size=16, max_size=16))


def tlv() -> st.SearchStrategy[Tlv]:
    known = st.sampled_from(sorted(Tag))
    vendor = st.integers(0x1400, 0x3FFF)
    anything = st.integers(0, 0xFFFF)
    return st.builds(Tlv, st.one_of(known, vendor, anything), st.binary(max_size=300))


def tlvs() -> st.SearchStrategy[tuple[Tlv, ...]]:
    return st.lists(tlv(), max_size=6).map(tuple)


_SME = st.builds(SmeAddress, octet, octet, c_string(21))
_DL = st.builds(DistributionList, c_string(21))
_UNSUCCESS = st.builds(UnsuccessSme, octet, octet, c_string(21), st.integers(0, 0xFFFFFFFF))


def for_spec(spec: Field) -> st.SearchStrategy[Any]:
    """Valid values for one mandatory-field spec."""
    if isinstance(spec, U8):
        return octet
    if isinstance(spec, Time):
        return smpp_time()
    if isinstance(spec, CString):
        return c_string(spec.max)
    if isinstance(spec, ShortMessage):
        return st.binary(max_size=254)
    if isinstance(spec, DestAddresses):
        return st.lists(st.one_of(_SME, _DL), max_size=8).map(tuple)
    if isinstance(spec, UnsuccessSmes):
        return st.lists(_UNSUCCESS, max_size=8).map(tuple)
    raise TypeError(f"no strategy for {spec!r}")


def pdu_of(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    fields = {name: for_spec(spec) for name, spec in field_specs(cls)}
    return st.builds(
        cls,
        sequence_number=st.integers(0, 0x7FFFFFFF),
        command_status=st.one_of(st.just(0), st.integers(0, 0xFFFFFFFF)),
        tlvs=tlvs(),
        **fields,
    )


PDU_CLASS_LIST = sorted(PDU_CLASSES.values(), key=lambda c: c.command_id)
any_pdu = st.one_of([pdu_of(cls) for cls in PDU_CLASS_LIST])
