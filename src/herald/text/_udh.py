"""User data header (3GPP TS 23.040 §9.2.3.24): parse and build.

A UDH sits at the front of short_message when esm_class has the UDHI bit
(0x40, SMPP 3.4 §5.2.12). Layout: UDHL (one octet, the length of what
follows), then information elements, each IEI, IEDL, IED[IEDL]. Every length
is attacker-controlled and checked against the octets actually present; a
length that overruns is `UdhError`, never an IndexError or a short read.

Concatenation (IE 0x00, 8-bit reference, §9.2.3.24.1; IE 0x08, 16-bit
reference, §9.2.3.24.8) is decoded into `Concat`. Per the spec, a
concatenation IE whose total is 0 or whose sequence number is 0 or above the
total is ignored (kept in `elements`, `concat` left None); when the IE occurs
more than once the last occurrence counts (§9.2.3.24).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ._errors import LocalTextError, UdhError

__all__ = [
    "IEI_CONCAT_8",
    "IEI_CONCAT_16",
    "MAX_USER_DATA_OCTETS",
    "UDHI",
    "Concat",
    "InformationElement",
    "Udh",
    "build_udh",
    "concat_element",
    "parse_udh",
]

UDHI: Final = 0x40  # SMPP 3.4 §5.2.12 esm_class bit 6: UDH indicator
IEI_CONCAT_8: Final = 0x00  # TS 23.040 §9.2.3.24.1
IEI_CONCAT_16: Final = 0x08  # TS 23.040 §9.2.3.24.8
# TS 23.040 §9.2.3.16: TP-User-Data holds at most 140 octets, header included.
MAX_USER_DATA_OCTETS: Final = 140

_CONCAT_IEDL: Final = {IEI_CONCAT_8: 3, IEI_CONCAT_16: 4}
_REFERENCE_LIMIT: Final = {IEI_CONCAT_8: 0xFF, IEI_CONCAT_16: 0xFFFF}


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation numbering, from a UDH IE or from SMPP SAR TLVs.

    `reference` is 0..255 (8-bit IE) or 0..65535 (16-bit IE, sar_msg_ref_num);
    `seq` runs 1..`total`, `total` 1..255.
    """

    reference: int
    total: int
    seq: int

    @property
    def valid(self) -> bool:
        """TS 23.040 §9.2.3.24.1: total 0, seq 0 or seq > total means "ignore"."""
        return 1 <= self.seq <= self.total <= 255 and 0 <= self.reference <= 0xFFFF


@dataclass(frozen=True, slots=True)
class InformationElement:
    """One IE: identifier and data (0..255 octets)."""

    iei: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Udh:
    """A parsed header. `length` counts the octets it occupied, UDHL included."""

    elements: tuple[InformationElement, ...]
    concat: Concat | None
    length: int


def parse_udh(short_message: bytes) -> tuple[Udh, bytes]:
    """Split `short_message` (UDHI set) into its header and the rest of the payload.

    Raises `UdhError` if the data is empty, UDHL overruns the data, an IE
    header or IE data overruns UDHL, or a concatenation IE has the wrong
    length. Answer ESME_RINVESMCLASS, or relay the octets without a header.
    """
    if not short_message:
        raise UdhError("UDHI set but short_message is empty")
    udhl = short_message[0]
    end = 1 + udhl
    if end > len(short_message):
        raise UdhError(f"UDHL {udhl} overruns the {len(short_message) - 1} octets present")
    elements: list[InformationElement] = []
    concat: Concat | None = None
    pos = 1
    while pos < end:  # each pass consumes >= 2 octets: bounded by UDHL/2
        if pos + 2 > end:
            raise UdhError(f"IE header at octet {pos} cut by UDHL {udhl}")
        iei, iedl = short_message[pos], short_message[pos + 1]
        data_end = pos + 2 + iedl
        if data_end > end:
            raise UdhError(f"IE 0x{iei:02X} length {iedl} overruns UDHL {udhl}")
        data = short_message[pos + 2 : data_end]
        elements.append(InformationElement(iei, data))
        if iei in _CONCAT_IEDL:
            if iedl != _CONCAT_IEDL[iei]:
                raise UdhError(f"concatenation IE 0x{iei:02X} with length {iedl}")
            reference = data[0] if iei == IEI_CONCAT_8 else (data[0] << 8) | data[1]
            found = Concat(reference, data[-2], data[-1])
            concat = found if found.valid else None
        pos = data_end
    return Udh(tuple(elements), concat, end), short_message[end:]


def concat_element(reference: int, total: int, seq: int, *, wide: bool) -> InformationElement:
    """The concatenation IE: 16-bit reference (IE 0x08) if `wide`, else 8-bit (0x00).

    Raises `LocalTextError` if a value is out of range.
    """
    iei = IEI_CONCAT_16 if wide else IEI_CONCAT_8
    if not 0 <= reference <= _REFERENCE_LIMIT[iei]:
        raise LocalTextError(f"reference {reference} out of range for IE 0x{iei:02X}")
    if not 1 <= seq <= total <= 255:
        raise LocalTextError(f"part {seq} of {total} is not a valid concatenation")
    ref = reference.to_bytes(2, "big") if wide else bytes((reference,))
    return InformationElement(iei, ref + bytes((total, seq)))


def build_udh(elements: Iterable[InformationElement]) -> bytes:
    """Serialise elements into a UDH, UDHL first.

    Raises `LocalTextError` for an IEI or IE longer than one octet can say, or
    a header that leaves no room in the 140-octet user data.
    """
    body = bytearray()
    for element in elements:
        if not 0 <= element.iei <= 0xFF or len(element.data) > 0xFF:
            raise LocalTextError(f"IE 0x{element.iei:X} with {len(element.data)} octets")
        body += bytes((element.iei, len(element.data)))
        body += element.data
    if 1 + len(body) >= MAX_USER_DATA_OCTETS:
        raise LocalTextError(f"UDH of {1 + len(body)} octets leaves no room for user data")
    return bytes((len(body),)) + bytes(body)
