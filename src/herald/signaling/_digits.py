"""Semi-octet digit strings: SCCP BCD global titles, MAP TBCD, TPDU addresses.

All three put the first digit in the *low* nibble of the first octet. They
differ in the filler of an odd count (SCCP: 0000 per Q.713 §3.4.2.3.1; TBCD and
TPDU: 1111 per TS 29.002 §17.7.8 and TS 23.040 §9.1.2.3) and in the extra
symbols allowed (TBCD: ``* # a b c`` for 1010-1110).

Decoding swaps the nibbles of every octet with ``bytes.translate`` and reads the
result with ``bytes.hex()``: both run in C, which matters on the hot path.
Functions return None for invalid input; the caller raises its layer's error.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "decode_bcd",
    "decode_digits",
    "decode_gsm7",
    "decode_tbcd",
    "encode_bcd",
    "encode_tbcd",
]

_SWAP: Final = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))

# TBCD nibbles 1010..1110 (TS 29.002 §17.7.8: TBCD-STRING) as hex() writes them,
# to their symbols; and back.
_TBCD_FROM_HEX: Final = str.maketrans("abcde", "*#abc")
_TBCD_TO_HEX: Final = str.maketrans("*#abc", "abcde")
_TBCD_SYMBOLS: Final = frozenset("0123456789*#abc")


def decode_tbcd(raw: bytes, *, digits_only: bool = False) -> str | None:
    """TBCD digits of ``raw``; None if invalid.

    A 1111 filler is allowed only as the last nibble. ``digits_only`` (IMSI)
    refuses ``* # a b c``.
    """
    h = raw.translate(_SWAP).hex()
    if h.endswith("f"):
        h = h[:-1]
    if h.isdigit():
        return h
    if not h:
        return ""
    if digits_only or "f" in h:
        return None
    return h.translate(_TBCD_FROM_HEX)


def decode_digits(raw: bytes) -> str | None:
    """TBCD of decimal digits only (an IMSI, TS 29.002 §17.7.8): at least one
    digit, a 1111 filler only as the last nibble; None otherwise. The same as
    ``decode_tbcd(raw, digits_only=True) or None``, without its branches."""
    h = raw.translate(_SWAP).hex()
    if h[-1:] == "f":
        h = h[:-1]
    return h if h.isdigit() else None


def encode_tbcd(digits: str) -> bytes | None:
    """TBCD octets for ``digits``; None if a symbol is not TBCD."""
    if not _TBCD_SYMBOLS.issuperset(digits):
        return None
    h = digits.translate(_TBCD_TO_HEX)
    if len(h) % 2:
        h += "f"
    return bytes.fromhex(h).translate(_SWAP)


def decode_bcd(raw: bytes, odd: bool) -> str | None:
    """Q.713 BCD global-title digits (0-9 only); None if invalid.

    ``odd``: the last octet's high nibble is a filler (0000; 1111 is tolerated,
    as some STPs send it).
    """
    h = raw.translate(_SWAP).hex()
    if odd:
        if not h or h[-1] not in "0f":
            return None
        h = h[:-1]
    if h.isdigit() or not h:
        return h
    return None


def encode_bcd(digits: str) -> bytes | None:
    """Q.713 BCD octets for decimal ``digits`` (odd count: 0000 filler)."""
    if not digits.isdigit() or not digits.isascii():
        return None
    h = digits + "0" if len(digits) % 2 else digits
    return bytes.fromhex(h).translate(_SWAP)


# TS 23.038 §6.2.1 GSM 7-bit default alphabet (escape 0x1B shown as a space:
# only used here to render alphanumeric originators, never to re-encode).
_GSM7: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x20ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def decode_gsm7(raw: bytes, septets: int) -> str | None:
    """``septets`` characters unpacked from GSM 7-bit packed ``raw``
    (TS 23.038 §6.1.2.1); None if ``raw`` is too short."""
    if (septets * 7 + 7) // 8 > len(raw):
        return None
    value = int.from_bytes(raw, "little")
    return "".join(_GSM7[(value >> (7 * i)) & 0x7F] for i in range(septets))
