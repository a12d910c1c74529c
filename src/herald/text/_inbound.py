"""Reading a received short_message: header, coding and text in one call.

The SMPP pipeline calls `read_message` for every submit_sm and deliver_sm
body. GSM 7-bit bodies come back unpacked (one septet per octet) whatever
the link carried, so the parts of a concatenated message can be joined as
octets, by `Reassembler`, before a single `decode`: joining first also
repairs senders that cut an escape pair or a surrogate pair in two.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._codec import DataCoding, Encoding, SmscDefault, decode, parse_data_coding
from ._gsm import fill_bits_after, unpack_septets
from ._udh import UDHI, Udh, parse_udh

__all__ = ["Inbound", "read_message"]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received body. `text` is None for binary data."""

    coding: DataCoding
    udh: Udh | None
    body: bytes  # after the UDH; GSM 7-bit always unpacked
    text: str | None


def read_message(
    short_message: bytes,
    *,
    esm_class: int,
    data_coding: int,
    smsc_default: SmscDefault,
    strict: bool = True,
    packed: bool = False,
) -> Inbound:
    """Parse the UDH (if esm_class has 0x40), interpret data_coding, decode the text.

    `packed` is the connector setting for GSM 7-bit bodies sent 8-into-7.
    Raises `UdhError`, `DataCodingError`, and in strict mode `DecodeError`;
    with `strict=False` bad characters become U+FFFD instead.
    """
    coding = parse_data_coding(data_coding, smsc_default)
    udh: Udh | None = None
    body = short_message
    if esm_class & UDHI:
        udh, body = parse_udh(short_message)
    if coding.encoding is Encoding.GSM7 and packed:
        fill = fill_bits_after(udh.length) if udh is not None else 0
        # The UDH occupies whole octets, so the septets start `fill` bits into `body`.
        body = unpack_septets(body, fill_bits=fill)
    if coding.encoding is Encoding.BINARY:
        return Inbound(coding, udh, body, None)
    return Inbound(coding, udh, body, decode(body, coding.encoding, strict=strict))
