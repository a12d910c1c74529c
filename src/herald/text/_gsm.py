"""GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1) and septet packing (§6.1.2).

Theory of operation
-------------------
Text is held in *unpacked* form: one septet per octet, an extension character
being two octets (0x1B escape, then its code). That is what SMPP carries for
data_coding 0 in practice, and it makes counting, cutting and validating a
matter of `len`, slicing and one table lookup per character done in C:

* encoding is `codecs.charmap_encode` with a dict that maps each code point to
  its septet or to its two-octet escape pair; plain ASCII text (most A2P
  traffic) takes a faster path: one `bytes.translate` through a 256-octet
  table, plus one `bytes.replace` per distinct escaped character present;
* decoding is `codecs.charmap_decode` with a 256-entry table (octets above
  0x7F are undefined there, so strict decoding rejects them for free), then
  one regular-expression pass that folds escape pairs, run only when the text
  holds an escape at all.

*Packed* form (8 septets in 7 octets, least significant bit first, §6.1.2.1)
is produced from the unpacked form with big-integer lane arithmetic: the whole
message is one integer and three mask/shift steps squeeze 8-bit lanes into
7-bit ones (16-, 32- and 64-bit lanes in turn), so the cost stays in C
whatever the length. Fill bits after a user data header (TS 23.040
§9.2.3.24) are a left shift of the packed integer.

Strict and lenient decoding
---------------------------
Strict (the default) raises `DecodeError` on an octet above 0x7F, on an escape
to a code that is not one of the ten extension characters, and on an escape
with nothing after it. Lenient decoding never raises and follows the receiving
rules of TS 23.038 §6.2.1.1: an unknown escaped code shows as its character in
the basic table, an escape to the (undefined) second extension table (0x1B
0x1B) shows as a space; an octet above 0x7F and a dangling escape become
U+FFFD.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from ._errors import DecodeError, EncodeError, LocalTextError

__all__ = [
    "BASIC_TABLE",
    "ESCAPE",
    "EXTENSION_TABLE",
    "MAX_SEPTETS",
    "fill_bits_after",
    "gsm_decode",
    "gsm_encode",
    "gsm_encode_or_none",
    "is_gsm",
    "pack_septets",
    "unpack_septets",
]

# TS 23.038 §6.2.1, codes 0x00..0x7F. 0x1B is the escape to the extension
# table; it is not a character, so it is excluded from encoding below.
BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
ESCAPE: Final = 0x1B

# TS 23.038 §6.2.1.1: the ten characters reached through 0x1B. 0x0A is the
# page break (form feed); a phone without the extension mechanism shows LF.
EXTENSION_TABLE: Final[dict[int, str]] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

# The longest septet string that fits the largest SMPP body: message_payload
# has a 2-octet length (SMPP 3.4 §5.3.2.32), 65535 octets, 8/7 septets each.
MAX_SEPTETS: Final = 65535 * 8 // 7

_CR: Final = 0x0D
_REPLACEMENT: Final = "\ufffd"

assert len(BASIC_TABLE) == 128 and len(set(BASIC_TABLE)) == 128

_ENCODE_MAP: Final[dict[int, int | bytes]] = {
    ord(char): code for code, char in enumerate(BASIC_TABLE) if code != ESCAPE
}
_ENCODE_MAP.update({ord(char): bytes((ESCAPE, code)) for code, char in EXTENSION_TABLE.items()})

# charmap_decode treats U+FFFE as "undefined": octets 0x80..0xFF are errors.
_DECODE_TABLE: Final = BASIC_TABLE + "\ufffe" * 128

# Escape folding works on decoded text: the character after "\x1b" is the
# basic-table character of the escaped code.
_ESCAPED_STRICT: Final[dict[str, str]] = {
    BASIC_TABLE[code]: char for code, char in EXTENSION_TABLE.items()
}
_ESCAPE_PAIR: Final = re.compile("\x1b(.?)", re.DOTALL)
# Strict mode: the first octet above 0x7F, or escape not followed by one of
# the ten extension codes, whichever comes first.
_STRICT_BAD: Final = re.compile(
    b"[\x80-\xff]|\x1b(?:[^" + re.escape(bytes(sorted(EXTENSION_TABLE))) + b"]|\\Z)"
)


# ASCII fast path for encoding (most A2P traffic is plain ASCII): the ASCII
# characters that are one GSM septet, the ones that are escape pairs, and one
# 256-octet table mapping the former to their septets (the latter to themselves).
_ASCII_DIRECT: Final = bytes(
    b for b in range(128) if chr(b) in BASIC_TABLE and b != ESCAPE
)
_ASCII_ESCAPED: Final[dict[int, bytes]] = {
    ord(char): bytes((ESCAPE, code)) for code, char in EXTENSION_TABLE.items() if char.isascii()
}
_ASCII_TO_GSM: Final = bytes(
    BASIC_TABLE.index(chr(b)) if b in _ASCII_DIRECT else b for b in range(256)
)
# No septet produced from a direct character, and no octet of an escape pair,
# equals an escaped character's octet: escapes can be substituted one after
# the other once the table translation is done.
assert not {_ASCII_TO_GSM[b] for b in _ASCII_DIRECT} & set(_ASCII_ESCAPED)
assert not set(b"".join(_ASCII_ESCAPED.values())) & set(_ASCII_ESCAPED)
_ASCII_ESCAPED_OCTETS: Final = bytes(sorted(_ASCII_ESCAPED))


def _encode_ascii(text: str) -> bytes | None:
    """Septets for ASCII `text` in a few C passes, or None to take the general path."""
    raw = text.encode("ascii")
    rest = raw.translate(None, _ASCII_DIRECT)
    if not rest:
        return raw.translate(_ASCII_TO_GSM)
    if rest.translate(None, _ASCII_ESCAPED_OCTETS):
        return None  # a character outside the tables: let charmap report where
    septets = raw.translate(_ASCII_TO_GSM)
    for octet in set(rest):  # at most 8 distinct escaped characters
        septets = septets.replace(bytes((octet,)), _ASCII_ESCAPED[octet])
    return septets


def _fold_lenient(match: re.Match[str]) -> str:
    follower = match[1]
    if not follower:
        return _REPLACEMENT  # escape at the very end: half of a pair
    if follower == "\x1b":
        return " "  # TS 23.038 §6.2.1.1: second extension table not defined
    return _ESCAPED_STRICT.get(follower, follower)


def _fold_strict(match: re.Match[str]) -> str:
    follower = match[1]
    folded = _ESCAPED_STRICT.get(follower)
    if folded is None:
        # The follower is a basic-table character: its index is the octet.
        raise _fault(b"\x1b" + bytes((BASIC_TABLE.index(follower),)) if follower else b"\x1b",
                     0, match.start())
    return folded


def _fault(septets: bytes, at: int, offset: int) -> DecodeError:
    """The error for the bad octet or escape at `septets[at]`, reported at `offset`."""
    if septets[at] != ESCAPE:
        reason = f"octet 0x{septets[at]:02X} is not a septet"
    elif at + 1 == len(septets):
        reason = "escape at end of data"
    else:
        reason = f"unknown extension code 0x{septets[at + 1]:02X}"
    return DecodeError("GSM 7-bit", offset, reason)


def gsm_encode(text: str) -> bytes:
    """Encode `text` to unpacked septets (one per octet, escapes as two octets).

    Raises `EncodeError` (with the position) if a character is in neither the
    basic nor the extension table; the caller then picks UCS-2 or rejects.
    """
    if text.isascii():
        septets = _encode_ascii(text)
        if septets is not None:
            return septets
    try:
        return codecs.charmap_encode(text, "strict", _ENCODE_MAP)[0]
    except UnicodeEncodeError as exc:
        raise EncodeError("GSM 7-bit", text, exc.start, "not in TS 23.038 tables") from None


def gsm_encode_or_none(text: str) -> bytes | None:
    """`gsm_encode(text)`, or None when the text is not GSM (no exception built)."""
    if text.isascii():
        septets = _encode_ascii(text)
        if septets is not None:
            return septets
    try:
        return codecs.charmap_encode(text, "strict", _ENCODE_MAP)[0]
    except UnicodeEncodeError:
        return None


def is_gsm(text: str) -> bool:
    """True if every character of `text` is in the basic or extension table."""
    return gsm_encode_or_none(text) is not None


def gsm_decode(septets: bytes, *, strict: bool = True) -> str:
    """Decode unpacked septets to text (see the module docstring for the two modes).

    Raises `DecodeError` in strict mode only; never raises in lenient mode.
    """
    if strict:
        if not septets.isascii():
            # Always an error; report whichever fault comes first.
            bad = _STRICT_BAD.search(septets)
            at = bad.start() if bad is not None else 0
            raise _fault(septets, at, at)
        text = codecs.charmap_decode(septets, "strict", _DECODE_TABLE)[0]
        # One octet per character, so a match position is the byte offset.
        return _ESCAPE_PAIR.sub(_fold_strict, text) if "\x1b" in text else text
    text = codecs.charmap_decode(septets, "replace", _DECODE_TABLE)[0]
    return _ESCAPE_PAIR.sub(_fold_lenient, text) if "\x1b" in text else text


def fill_bits_after(udh_octets: int) -> int:
    """Fill bits between a UDH of `udh_octets` (UDHL included) and the first septet.

    TS 23.040 §9.2.3.24: the septets start on a septet boundary counted from
    the start of the user data. 6 octets (8-bit concat) -> 1, 7 (16-bit) -> 0.
    """
    return -(udh_octets * 8) % 7


def _lane_mask(lane_bits: int, keep_bits: int, septets: int) -> int:
    lanes = -(-septets * 8 // lane_bits) + 1
    return int.from_bytes(((1 << keep_bits) - 1).to_bytes(lane_bits // 8, "little") * lanes,
                          "little")


# One mask per lane width, sized for MAX_SEPTETS; `v & mask` costs only the
# length of `v` in CPython, so short messages do not pay for the long masks.
_M16: Final = _lane_mask(16, 7, MAX_SEPTETS + 8)
_M32: Final = _lane_mask(32, 14, MAX_SEPTETS + 8)
_M64: Final = _lane_mask(64, 28, MAX_SEPTETS + 8)


def _check_fill(fill_bits: int) -> None:
    if not 0 <= fill_bits <= 6:
        raise LocalTextError(f"fill_bits must be 0..6, got {fill_bits}")


def pack_septets(septets: bytes, *, fill_bits: int = 0) -> bytes:
    """Pack unpacked septets 8-into-7 octets after `fill_bits` zero bits.

    When the last octet would end with 7 spare bits, a CR septet fills them,
    so that a receiver counting septets from octets does not read a trailing
    "@" (TS 23.038 §6.1.2.3.1, the CBS/USSD rule; harmless where TP-UDL or a
    `count` gives the true length). Raises `LocalTextError` for an octet above
    0x7F, a bad `fill_bits` or more than MAX_SEPTETS septets.
    """
    _check_fill(fill_bits)
    if not septets.isascii():
        raise LocalTextError("septets must be 0x00..0x7F")
    if len(septets) > MAX_SEPTETS:
        raise LocalTextError(f"{len(septets)} septets exceed MAX_SEPTETS ({MAX_SEPTETS})")
    if (fill_bits + 7 * len(septets)) % 8 == 1:
        septets += b"\r"
    count = len(septets)
    groups = -(-count // 8)
    value = int.from_bytes(septets, "little")
    low = value & _M16
    value = low | ((value - low) >> 1)  # 16-bit lanes: 7+7 bits
    low = value & _M32
    value = low | ((value - low) >> 2)  # 32-bit lanes: 14+14 bits
    low = value & _M64
    value = low | ((value - low) >> 4)  # 64-bit lanes: 28+28 bits
    squeezed = bytearray(value.to_bytes(8 * groups, "little"))
    del squeezed[7::8]  # the empty eighth octet of every 64-bit lane
    total_bits = fill_bits + 7 * count
    if fill_bits:
        value = int.from_bytes(squeezed, "little") << fill_bits
        return value.to_bytes(-(-total_bits // 8), "little")
    return bytes(squeezed[: -(-total_bits // 8)])


def unpack_septets(packed: bytes, *, fill_bits: int = 0, count: int | None = None) -> bytes:
    """Unpack `packed` (after `fill_bits` bits) into one septet per octet.

    `count` is the septet count when known (TP-UDL minus the header septets);
    it must fit in the data, else `DecodeError`. Without it every whole septet
    is returned, except a CR that ends exactly on the last octet boundary,
    which is taken as the padding `pack_septets` adds. A text that really ends
    with such a CR loses it: pass `count` where the sender gives one.
    """
    _check_fill(fill_bits)
    if len(packed) > 65535:
        raise DecodeError("packed GSM 7-bit", 65535, "longer than any SMPP body")
    available = max(0, (8 * len(packed) - fill_bits) // 7)
    strip_padding = count is None
    if count is None:
        count = available
    elif not 0 <= count <= available:
        raise DecodeError(
            "packed GSM 7-bit", len(packed), f"{count} septets announced, {available} present"
        )
    if count == 0:
        return b""
    value = (int.from_bytes(packed, "little") >> fill_bits) & ((1 << (7 * count)) - 1)
    groups = -(-count // 8)
    compact = value.to_bytes(7 * groups, "little")
    spread = bytearray(8 * groups)
    for lane_octet in range(7):
        spread[lane_octet::8] = compact[lane_octet::7]
    value = int.from_bytes(spread, "little")
    low = value & _M64
    value = low | ((value - low) << 4)
    low = value & _M32
    value = low | ((value - low) << 2)
    low = value & _M16
    value = low | ((value - low) << 1)
    septets = value.to_bytes(8 * groups, "little")[:count]
    if strip_padding and septets[-1] == _CR and (fill_bits + 7 * count) % 8 == 0:
        return septets[:-1]
    return septets
