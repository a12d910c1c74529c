"""Encodings, the data_coding octet, and the cheapest-encoding choice.

Theory of operation
-------------------
An `Encoding` says how the octets of a short message map to text. The SMPP
data_coding octet (SMPP 3.4 §5.2.19) names one, with three twists handled
here and nowhere else:

* 0 is "SMSC default alphabet": its meaning is a property of the upstream, not
  of the PDU. Every function that reads or writes data_coding takes an explicit
  `SmscDefault` (GSM 7-bit, Latin-1 or ASCII), the per-connector setting.
* 0x10..0x7F, 0xC0..0xFF are the coding groups of 3GPP TS 23.038 §4: alphabet
  bits, message class bits, message-waiting indication. `parse_data_coding`
  returns them as typed fields.
* Values naming alphabets herald does not turn into text (JIS, Cyrillic,
  Hebrew, pictograms, KS C 5601, compressed text, reserved values) raise
  `DataCodingError`; the caller may still relay the octets untouched.

`encode`/`decode` dispatch on the encoding to the standard library codecs or
to the GSM tables. UCS-2 is UTF-16BE without a byte order mark (what handsets
and SMSCs send); characters outside the BMP travel as surrogate pairs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from ._errors import DataCodingError, DecodeError, EncodeError, EncodingUnavailable
from ._gsm import gsm_decode, gsm_encode, is_gsm, pack_septets, unpack_septets

__all__ = [
    "DataCoding",
    "Encoding",
    "MessageClass",
    "MessageWaiting",
    "SmscDefault",
    "WaitingKind",
    "choose_encoding",
    "data_coding_for",
    "decode",
    "encode",
    "parse_data_coding",
]


class Encoding(enum.Enum):
    """How the octets of a message body map to text."""

    GSM7 = "gsm7"  # TS 23.038 §6.2.1 default alphabet, one septet per octet
    ASCII = "ascii"  # IA5 / ITU-T T.50, data_coding 1
    LATIN1 = "latin1"  # ISO 8859-1, data_coding 3
    UCS2 = "ucs2"  # UTF-16BE, no BOM, data_coding 8
    BINARY = "binary"  # opaque octets, data_coding 2 or 4

    @property
    def unit(self) -> str:
        """What `units` counts for this encoding: septets, UTF-16 units or octets."""
        return _UNIT[self]


_UNIT: Final = {
    Encoding.GSM7: "septets",
    Encoding.ASCII: "octets",
    Encoding.LATIN1: "octets",
    Encoding.UCS2: "utf16-units",
    Encoding.BINARY: "octets",
}


class SmscDefault(enum.Enum):
    """What data_coding 0 means on a given upstream (a per-connector setting).

    SMPP 3.4 §5.2.19 leaves the SMSC default alphabet to the SMSC: most read it
    as GSM 03.38, some as Latin-1 (then "£" arrives as "B"), a few as ASCII.
    """

    GSM7 = "gsm7"
    LATIN1 = "latin1"
    ASCII = "ascii"

    @property
    def encoding(self) -> Encoding:
        return Encoding(self.value)


class MessageClass(enum.IntEnum):
    """TS 23.038 §4 message class (bits 1..0 when the class is indicated)."""

    FLASH = 0  # class 0: displayed at once, not stored
    ME = 1  # class 1: mobile-equipment specific
    SIM = 2  # class 2: (U)SIM specific
    TE = 3  # class 3: terminal-equipment specific


class WaitingKind(enum.IntEnum):
    """TS 23.038 §4 message waiting indication type (bits 1..0)."""

    VOICEMAIL = 0
    FAX = 1
    EMAIL = 2
    OTHER = 3


@dataclass(frozen=True, slots=True)
class MessageWaiting:
    """Coding groups 0xC0..0xEF: a message waiting indication (TS 23.038 §4)."""

    store: bool  # False for the "discard message" group 0xC0..0xCF
    active: bool  # bit 3, indication sense
    kind: WaitingKind


@dataclass(frozen=True, slots=True)
class DataCoding:
    """A data_coding octet, interpreted. `encoding` already resolves value 0."""

    value: int
    encoding: Encoding
    message_class: MessageClass | None = None
    auto_delete: bool = False  # TS 23.038 group 01xx: marked for automatic deletion
    waiting: MessageWaiting | None = None


# SMPP 3.4 §5.2.19, values 0x01..0x0F. 0 is handled apart (SMSC default).
_SMPP_TABLE: Final[dict[int, Encoding | str]] = {
    0x01: Encoding.ASCII,
    0x02: Encoding.BINARY,
    0x03: Encoding.LATIN1,
    0x04: Encoding.BINARY,
    0x05: "JIS (X 0208-1990) is not supported",
    0x06: "Cyrillic (ISO 8859-5) is not supported",
    0x07: "Latin/Hebrew (ISO 8859-8) is not supported",
    0x08: Encoding.UCS2,
    0x09: "pictogram encoding is not supported",
    0x0A: "ISO-2022-JP (music codes) is not supported",
    0x0B: "reserved",
    0x0C: "reserved",
    0x0D: "extended kanji JIS (X 0212-1990) is not supported",
    0x0E: "KS C 5601 is not supported",
    0x0F: "reserved",
}

# TS 23.038 §4, general data coding: alphabet in bits 3..2.
_GENERAL_ALPHABET: Final[dict[int, Encoding | None]] = {
    0b00: Encoding.GSM7,
    0b01: Encoding.BINARY,
    0b10: Encoding.UCS2,
    0b11: None,  # reserved
}


def parse_data_coding(value: int, smsc_default: SmscDefault) -> DataCoding:
    """Interpret a data_coding octet received in a PDU.

    Raises `DataCodingError` for reserved values, compressed text and
    alphabets herald does not decode (treat the body as opaque octets then).
    """
    if not 0 <= value <= 0xFF:
        raise DataCodingError(value & 0xFF, f"{value} does not fit one octet")
    if value == 0:
        return DataCoding(0, smsc_default.encoding)
    if value <= 0x0F:
        entry = _SMPP_TABLE[value]
        if isinstance(entry, str):
            raise DataCodingError(value, entry)
        return DataCoding(value, entry)
    group = value >> 4
    if group <= 0x7:  # 00xx general data coding, 01xx automatic deletion group
        if value & 0x20:
            raise DataCodingError(value, "compressed text (TS 23.038 §4 bit 5) is not supported")
        alphabet = _GENERAL_ALPHABET[(value >> 2) & 0b11]
        if alphabet is None:
            raise DataCodingError(value, "reserved alphabet")
        klass = MessageClass(value & 0b11) if value & 0x10 else None
        return DataCoding(value, alphabet, klass, auto_delete=bool(value & 0x40))
    if group <= 0xB:
        raise DataCodingError(value, "reserved coding group (TS 23.038 §4, 1000..1011)")
    if group <= 0xE:  # 1100 discard / 1101 store (GSM 7-bit), 1110 store (UCS-2)
        if value & 0x04:
            raise DataCodingError(value, "reserved bit 2 set in a message waiting group")
        waiting = MessageWaiting(
            store=group != 0xC, active=bool(value & 0x08), kind=WaitingKind(value & 0b11)
        )
        encoding = Encoding.UCS2 if group == 0xE else Encoding.GSM7
        return DataCoding(value, encoding, waiting=waiting)
    # 1111: data coding / message class; bit 3 is reserved and ignored on receipt.
    encoding = Encoding.BINARY if value & 0x04 else Encoding.GSM7
    return DataCoding(value, encoding, MessageClass(value & 0b11))


_EXPLICIT: Final = {
    Encoding.ASCII: 0x01,
    Encoding.LATIN1: 0x03,
    Encoding.UCS2: 0x08,
    Encoding.BINARY: 0x04,
}


def data_coding_for(
    encoding: Encoding,
    smsc_default: SmscDefault,
    message_class: MessageClass | None = None,
) -> int:
    """The data_coding octet to send `encoding` to an upstream with `smsc_default`.

    Without a message class: 0 when the encoding is the upstream's default,
    else the explicit SMPP 3.4 value. With one: 0xF0..0xF7 for GSM 7-bit and
    binary, 0x18..0x1B (TS 23.038 general group) for UCS-2. Raises
    `EncodingUnavailable` when no value exists: GSM 7-bit on an upstream whose
    default is not GSM (SMPP 3.4 has no other class-less GSM value), or a class
    with Latin-1/ASCII.
    """
    if message_class is not None:
        if encoding is Encoding.GSM7:
            return 0xF0 | message_class
        if encoding is Encoding.BINARY:
            return 0xF4 | message_class
        if encoding is Encoding.UCS2:
            return 0x18 | message_class
        raise EncodingUnavailable(f"no data_coding carries {encoding.value} with a message class")
    if encoding is smsc_default.encoding:
        return 0
    if encoding is Encoding.GSM7:
        raise EncodingUnavailable(
            f"GSM 7-bit has no data_coding on an upstream whose default is {smsc_default.value}"
        )
    return _EXPLICIT[encoding]


def encode(text: str, encoding: Encoding, *, packed: bool = False) -> bytes:
    """Encode `text` in `encoding` (GSM 7-bit unpacked unless `packed`).

    Raises `EncodeError` for a character the encoding cannot represent
    (including a lone surrogate for UCS-2). BINARY is not a text encoding:
    `EncodeError` too.
    """
    if encoding is Encoding.GSM7:
        septets = gsm_encode(text)
        return pack_septets(septets) if packed else septets
    if encoding is Encoding.BINARY:
        raise EncodeError("binary", text, 0, "binary is not a text encoding")
    try:
        return text.encode(_PY_CODEC[encoding])
    except UnicodeEncodeError as exc:
        raise EncodeError(encoding.value, text, exc.start, exc.reason) from None


_PY_CODEC: Final = {
    Encoding.ASCII: "ascii",
    Encoding.LATIN1: "latin-1",
    Encoding.UCS2: "utf-16-be",
}


def decode(
    payload: bytes,
    encoding: Encoding,
    *,
    strict: bool = True,
    packed: bool = False,
    fill_bits: int = 0,
    septets: int | None = None,
) -> str:
    """Decode a message body (without its UDH) to text.

    GSM 7-bit is unpacked unless `packed` (then `fill_bits` and the septet
    count `septets`, if known, apply). Strict decoding raises `DecodeError` on
    the first invalid octet: an odd UCS-2 length, a lone surrogate, an octet
    above 0x7F in GSM or ASCII, an unknown GSM escape. Lenient decoding
    (`strict=False`) never raises: each bad unit becomes U+FFFD (GSM escapes
    follow TS 23.038, see `gsm_decode`). BINARY raises `DecodeError`.
    """
    if encoding is Encoding.GSM7:
        if packed:
            return gsm_decode(
                unpack_septets(payload, fill_bits=fill_bits, count=septets), strict=strict
            )
        return gsm_decode(payload, strict=strict)
    if encoding is Encoding.BINARY:
        raise DecodeError("binary", 0, "binary data has no text form")
    if encoding is Encoding.UCS2 and len(payload) % 2 and strict:
        raise DecodeError("UCS-2", len(payload) - 1, "odd number of octets")
    codec = _PY_CODEC[encoding]
    try:
        # Lenient: Python's "replace" maps an odd trailing octet and every lone
        # surrogate to U+FFFD, an invalid ASCII octet likewise.
        return payload.decode(codec, "strict" if strict else "replace")
    except UnicodeDecodeError as exc:
        raise DecodeError(encoding.value, exc.start, exc.reason) from None


def choose_encoding(
    text: str,
    *,
    smsc_default: SmscDefault = SmscDefault.GSM7,
    allow_latin1: bool = False,
) -> Encoding:
    """The cheapest encoding that represents `text` on the given upstream.

    On a GSM-default upstream: GSM 7-bit if every character is in the basic or
    extension table, else Latin-1 if `allow_latin1` and it fits, else UCS-2.
    On a Latin-1- or ASCII-default upstream GSM 7-bit cannot be named, so the
    default alphabet is tried first (Latin-1 is then asked for by the
    connector), then UCS-2.
    """
    if smsc_default is SmscDefault.GSM7:
        if is_gsm(text):
            return Encoding.GSM7
        if allow_latin1 and _fits(text, "latin-1"):
            return Encoding.LATIN1
        return Encoding.UCS2
    if _fits(text, _PY_CODEC[smsc_default.encoding]):
        return smsc_default.encoding
    if allow_latin1 and _fits(text, "latin-1"):
        return Encoding.LATIN1
    return Encoding.UCS2


def _fits(text: str, codec: str) -> bool:
    if codec == "ascii":
        return text.isascii()
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True
