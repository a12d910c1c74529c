"""Segmentation of outbound text and data into SMPP parts.

Theory of operation
-------------------
The text is encoded once, GSM 7-bit in unpacked form, so that every
capacity is a count of octets of the encoded string: septets for GSM
(an extension character is two), two per UTF-16 unit for UCS-2, one per
octet otherwise. Cutting is then slicing. A cut that would leave an escape
octet (0x1B) at the end of a part moves back by one, and a cut that would
leave a high surrogate (0xD800..0xDBFF) at the end of a UCS-2 part moves
back by two: no part ever ends in half a character. Packing to 7-bit, when
asked for, happens per part after the cut, with the fill bits that follow
the part's UDH; a packed part that would end exactly on an octet boundary
with a CR gives that CR to the next part, since a receiver without a septet
count takes such a CR for padding (TS 23.038 §6.1.2.3.1). Only a message's
very last character can still be read that way.

Capacities (TS 23.040 §9.2.3.24.1 and §9.2.3.24.8; 140 octets of user data):

    encoding    single  UDH 8-bit ref (6 oct)  UDH 16-bit ref (7 oct)  SAR
    GSM 7-bit   160     153 septets            152 septets             152
    UCS-2       70      67 units (134 oct)     66 units (132 oct)      66
    8-bit       140     134 octets             133 octets              133

SAR parts carry no UDH in the PDU, but the SMSC must put a concatenation IE
on the air interface to deliver them as one message, and sar_msg_ref_num is
16-bit (SMPP 3.4 §5.3.2.22), so the header it adds can be the 7-octet one.
Filling a SAR part to the single-message size (160/70/140) would force the
SMSC to re-segment or reject it; herald therefore cuts SAR parts at the
16-bit-reference capacity. Latin-1 and ASCII bodies are cut at the 8-bit
capacities (one octet per character on the SMPP link; what the SMSC does on
the air is its business).

A text that fits the single-message capacity is one part without UDH or SAR
whatever the method. `Method.PAYLOAD` always yields one part (the whole body
goes in the message_payload TLV, SMPP 3.4 §5.3.2.32).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from ._codec import (
    Encoding,
    MessageClass,
    SmscDefault,
    choose_encoding,
    data_coding_for,
    encode,
)
from ._errors import LocalTextError, MessageTooLong, TooManyParts
from ._gsm import ESCAPE, fill_bits_after, gsm_encode_or_none, pack_septets
from ._udh import IEI_CONCAT_8, IEI_CONCAT_16, MAX_USER_DATA_OCTETS, Concat

__all__ = [
    "MAX_PARTS",
    "MAX_PAYLOAD_OCTETS",
    "Analysis",
    "Method",
    "Part",
    "Segmented",
    "analyze",
    "capacity",
    "split_binary",
    "split_text",
]

# TS 23.040 §9.2.3.24.1: the part count is one octet.
MAX_PARTS: Final = 255
# SMPP 3.4 §5.3.2.32: message_payload has a 2-octet length.
MAX_PAYLOAD_OCTETS: Final = 65535


class Method(enum.Enum):
    """How a long message travels to the SMSC."""

    UDH8 = "udh8"  # UDH 05 00 03 ref total seq, esm_class |= 0x40
    UDH16 = "udh16"  # UDH 06 08 04 refH refL total seq, esm_class |= 0x40
    SAR = "sar"  # SMPP TLVs sar_msg_ref_num/sar_total_segments/sar_segment_seqnum
    PAYLOAD = "payload"  # one PDU, whole body in message_payload


_CR: Final = 0x0D
_SEQ_OCTET: Final = tuple(bytes((seq,)) for seq in range(256))

# Hot-path helpers compare members by identity: on Python 3.11 an Enum-keyed
# dict lookup runs Enum.__hash__ in Python, which dominated the per-part cost.


def _octets_per_unit(encoding: Encoding) -> int:
    """Encoded octets per unit: septets are one octet each in unpacked form."""
    return 2 if encoding is Encoding.UCS2 else 1


def _udh_octets(method: Method) -> int:
    """Octets of the concatenation UDH a method costs (UDHL included).

    SAR is charged the 16-bit IE that the SMSC may add on the air (module
    docstring); PAYLOAD has no parts to number.
    """
    if method is Method.UDH8:
        return 6
    return 0 if method is Method.PAYLOAD else 7


def _octet_capacity(encoding: Encoding, udh_octets: int) -> int:
    """Encoded octets that fit next to a UDH of `udh_octets` (0: none)."""
    room = MAX_USER_DATA_OCTETS - udh_octets
    if encoding is Encoding.GSM7:
        return (room * 8 - fill_bits_after(udh_octets)) // 7
    if encoding is Encoding.UCS2:
        return room - room % 2  # a UTF-16 unit is never split (§9.2.3.24.8)
    return room


def capacity(encoding: Encoding, method: Method, *, multipart: bool) -> int:
    """Units per part: septets (GSM), UTF-16 units (UCS-2) or octets.

    `multipart=False` is the single-message size; with PAYLOAD there is no
    per-part limit short of MAX_PAYLOAD_OCTETS.
    """
    if method is Method.PAYLOAD:
        return MAX_PAYLOAD_OCTETS // _octets_per_unit(encoding)
    udh = _udh_octets(method) if multipart else 0
    return _octet_capacity(encoding, udh) // _octets_per_unit(encoding)


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm worth of message.

    `short_message` (= `udh` + `payload`) is the PDU body; set esm_class bit
    0x40 when `udhi`; send `sar` as the three SAR TLVs when not None. With
    Method.PAYLOAD put `payload` in message_payload and leave short_message
    empty. `units` counts this part's septets, UTF-16 units or octets.
    """

    payload: bytes
    udh: bytes
    sar: Concat | None
    data_coding: int
    units: int

    @property
    def udhi(self) -> bool:
        return bool(self.udh)

    @property
    def short_message(self) -> bytes:
        return self.udh + self.payload


@dataclass(frozen=True, slots=True)
class Segmented:
    """A message cut into parts, with what billing and the API report."""

    encoding: Encoding
    data_coding: int
    method: Method
    packed: bool
    units: int
    parts: tuple[Part, ...]

    @property
    def segments(self) -> int:
        return len(self.parts)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What a text would cost, without building the parts."""

    encoding: Encoding
    data_coding: int
    method: Method
    units: int  # septets (GSM), UTF-16 units (UCS-2), octets (others)
    characters: int  # code points of the text
    segments: int
    per_part: int  # capacity of each part, in `units`


def _cut(
    data: bytes, encoding: Encoding, per_part: int, max_parts: int, packed_fill: int | None
) -> list[int]:
    """End offsets of the parts of `data`, never inside an escape or surrogate pair.

    `packed_fill` is the fill-bit count when GSM parts will be packed, else None.
    """
    if len(data) > 2 * max_parts * per_part:
        raise TooManyParts(-(-len(data) // per_part), max_parts)
    gsm = encoding is Encoding.GSM7
    ucs2 = encoding is Encoding.UCS2
    ends: list[int] = []
    pos = 0
    # Each pass advances by per_part - 2 > 0 octets and the input is bounded
    # above, so the loop runs at most ~2 * max_parts times.
    while pos < len(data):
        end = pos + per_part
        if end >= len(data):
            end = len(data)
        elif gsm:
            if data[end - 1] == ESCAPE:
                end -= 1  # TS 23.038 §6.2.1.1: keep the escape with its code
            elif (
                packed_fill is not None
                and data[end - 1] == _CR
                and (packed_fill + 7 * (end - pos)) % 8 == 0
            ):
                # A packed part ending on an octet boundary with CR reads like
                # CR padding (see pack_septets): carry the CR over instead.
                end -= 1
        elif ucs2 and 0xD8 <= data[end - 2] <= 0xDB:
            end -= 2  # high surrogate: keep the pair together
        ends.append(end)
        pos = end
    if len(ends) > max_parts:
        raise TooManyParts(len(ends), max_parts)
    return ends


def _check(method: Method, reference: int, max_parts: int) -> None:
    # 8-bit IE: one octet; 16-bit IE and sar_msg_ref_num (SMPP 3.4 §5.3.2.22): two.
    if method is not Method.PAYLOAD and not 0 <= reference <= (
        0xFF if method is Method.UDH8 else 0xFFFF
    ):
        raise LocalTextError(f"reference {reference} out of range for {method.value}")
    if not 1 <= max_parts <= MAX_PARTS:
        raise LocalTextError(f"max_parts must be 1..{MAX_PARTS}, got {max_parts}")


def _units(encoding: Encoding, octets: int) -> int:
    return octets // _octets_per_unit(encoding)


def _plan(
    data: bytes, encoding: Encoding, method: Method, max_parts: int, packed: bool
) -> tuple[list[int], int]:
    """Part end offsets and the per-part capacity in encoded octets."""
    if method is Method.PAYLOAD:
        if len(data) > MAX_PAYLOAD_OCTETS:
            raise MessageTooLong(f"{len(data)} octets exceed message_payload's 65535")
        return [len(data)], MAX_PAYLOAD_OCTETS
    single = _octet_capacity(encoding, 0)
    if len(data) <= single:
        return [len(data)], single
    per_part = _octet_capacity(encoding, _udh_octets(method))
    fill = 0 if method is Method.SAR else fill_bits_after(_udh_octets(method))
    return _cut(data, encoding, per_part, max_parts, fill if packed else None), per_part


def _udh_prefix(method: Method, reference: int, total: int) -> bytes:
    """The concatenation UDH of every part but its last octet (the sequence number).

    Equal to `build_udh([concat_element(reference, total, seq, ...)])[:-1]`,
    which the tests check; built once per message instead of once per part.
    """
    if method is Method.UDH8:
        return bytes((5, IEI_CONCAT_8, 3, reference, total))
    if method is Method.UDH16:
        return bytes((6, IEI_CONCAT_16, 4, reference >> 8, reference & 0xFF, total))
    return b""  # SAR and PAYLOAD carry no UDH


def _build(
    data: bytes,
    encoding: Encoding,
    data_coding: int,
    method: Method,
    reference: int,
    packed: bool,
    max_parts: int,
) -> Segmented:
    _check(method, reference, max_parts)
    ends, _ = _plan(data, encoding, method, max_parts, packed)
    total = len(ends)
    # Everything that does not depend on the part is settled before the loop.
    prefix = _udh_prefix(method, reference, total) if total > 1 else b""
    fill = fill_bits_after(len(prefix) + 1) if prefix else 0
    pack = packed and encoding is Encoding.GSM7
    sar = total > 1 and method is Method.SAR
    per_unit = _octets_per_unit(encoding)
    parts: list[Part] = []
    start = 0
    for seq, end in enumerate(ends, start=1):
        chunk = data[start:end]
        parts.append(
            Part(
                pack_septets(chunk, fill_bits=fill) if pack else chunk,
                prefix + _SEQ_OCTET[seq] if prefix else b"",
                Concat(reference, total, seq) if sar else None,
                data_coding,
                (end - start) // per_unit,
            )
        )
        start = end
    return Segmented(
        encoding, data_coding, method, packed, _units(encoding, len(data)), tuple(parts)
    )


def split_text(
    text: str,
    *,
    method: Method = Method.UDH8,
    reference: int = 0,
    encoding: Encoding | None = None,
    smsc_default: SmscDefault = SmscDefault.GSM7,
    allow_latin1: bool = False,
    message_class: MessageClass | None = None,
    packed: bool = False,
    max_parts: int = MAX_PARTS,
) -> Segmented:
    """Encode `text` and cut it into parts ready for submit_sm.

    `encoding=None` picks the cheapest (`choose_encoding`). `reference` is the
    concatenation reference the caller allocates per destination (0..255 for
    UDH8, 0..65535 otherwise). `packed` packs GSM 7-bit parts 8-into-7.
    Raises `EncodeError` (text not representable in the forced encoding),
    `EncodingUnavailable` (no data_coding for it on this upstream),
    `TooManyParts`/`MessageTooLong`, or `LocalTextError` for a bad argument.
    """
    _check(method, reference, max_parts)
    encoding, data = _encode_cheapest(text, encoding, smsc_default, allow_latin1, method, max_parts)
    data_coding = data_coding_for(encoding, smsc_default, message_class)
    return _build(data, encoding, data_coding, method, reference, packed, max_parts)


def _encode_cheapest(
    text: str,
    encoding: Encoding | None,
    smsc_default: SmscDefault,
    allow_latin1: bool,
    method: Method,
    max_parts: int,
) -> tuple[Encoding, bytes]:
    """`encoding` (or the cheapest one) and the text encoded in it, encoding once."""
    if method is not Method.PAYLOAD and len(text) > 2 * max_parts * MAX_USER_DATA_OCTETS:
        # Every character costs at least one encoded octet: refuse before encoding.
        raise TooManyParts(len(text) // MAX_USER_DATA_OCTETS, max_parts)
    if encoding is None and smsc_default is SmscDefault.GSM7:
        septets = gsm_encode_or_none(text)
        if septets is not None:
            return Encoding.GSM7, septets
    if encoding is None:
        encoding = choose_encoding(text, smsc_default=smsc_default, allow_latin1=allow_latin1)
    return encoding, encode(text, encoding)


def split_binary(
    data: bytes,
    *,
    method: Method = Method.UDH8,
    reference: int = 0,
    data_coding: int = 0x04,
    max_parts: int = MAX_PARTS,
) -> Segmented:
    """Cut opaque octets (data_coding 2, 4 or 0xF4..0xF7) into parts.

    Same errors as `split_text` for the limits and arguments.
    """
    if not 0 <= data_coding <= 0xFF:
        raise LocalTextError(f"data_coding {data_coding} does not fit one octet")
    return _build(data, Encoding.BINARY, data_coding, method, reference, False, max_parts)


def analyze(
    text: str,
    *,
    method: Method = Method.UDH8,
    encoding: Encoding | None = None,
    smsc_default: SmscDefault = SmscDefault.GSM7,
    allow_latin1: bool = False,
    message_class: MessageClass | None = None,
    packed: bool = False,
    max_parts: int = MAX_PARTS,
) -> Analysis:
    """Encoding, data_coding, units and segment count of `text`, as `split_text` would cut it.

    Raises what `split_text` raises.
    """
    _check(method, 0, max_parts)
    encoding, data = _encode_cheapest(text, encoding, smsc_default, allow_latin1, method, max_parts)
    data_coding = data_coding_for(encoding, smsc_default, message_class)
    ends, per_part = _plan(data, encoding, method, max_parts, packed)
    return Analysis(
        encoding,
        data_coding,
        method,
        _units(encoding, len(data)),
        len(text),
        len(ends),
        _units(encoding, per_part),
    )
