"""Minimal BER (ITU-T X.690) reading and writing for TCAP and MAP.

Not a general ASN.1 library: a strict TLV walker over ``bytes`` with offsets,
and the handful of primitive types TCAP and MAP use (INTEGER, BOOLEAN, NULL,
OBJECT IDENTIFIER, OCTET STRING). Every reader takes the calling layer's error
class and raises it with the reason and absolute offset, so the caller sees
"TCAP at offset 17" or "MAP at offset 60", never a BER error.

Tags are returned as ints: the identifier octet for low tag numbers (the usual
case: ``0x30`` SEQUENCE, ``0x80`` [0] primitive, ``0xa1`` [1] constructed) and
``HIGH_TAG | (identifier octet << 16) | number`` for tag numbers >= 31, which
never collides with a low-form tag.
"""

from __future__ import annotations

from typing import Final

from herald.signaling.errors import DecodeError

__all__ = [
    "HIGH_TAG",
    "MAX_DEPTH",
    "MAX_INTEGER_OCTETS",
    "MAX_LENGTH_OCTETS",
    "MAX_OID_ARCS",
    "OID_CACHE_SIZE",
    "Fault",
    "decode_integer",
    "decode_oid",
    "encode_integer",
    "encode_oid",
    "read_tlv",
    "tlv",
]

#: Marker bit for high-tag-number-form tags (X.690 §8.1.2.4).
HIGH_TAG: Final = 1 << 30

#: Longest length field accepted: 3 octets (16 MiB) is far beyond any message
#: a SIGTRAN link carries; anything longer is hostile.
MAX_LENGTH_OCTETS: Final = 3

#: Nesting accepted while searching for the end of an indefinite-length value;
#: bounds the recursion a hostile message can cause.
MAX_DEPTH: Final = 24

#: INTEGER contents accepted: 4 octets covers every TCAP/MAP integer (invoke
#: ids, opcodes, causes); a longer one is an attack on the parser.
MAX_INTEGER_OCTETS: Final = 4

#: Arcs in an OID: application contexts have 8, dialogue-as-id 7.
MAX_OID_ARCS: Final = 16

#: Octets in one OID arc (base-128): 4 octets = 28 bits.
_MAX_ARC_OCTETS: Final = 4

_EOC_TAG: Final = 0x00


#: The error a decoding function raises: the calling layer's DecodeError class.
Fault = type[DecodeError]


def read_tlv(buf: bytes, pos: int, end: int, err: Fault) -> tuple[int, int, int, int]:
    """Read one TLV at ``pos`` that must fit before ``end``.

    Returns ``(tag, content_start, content_end, next_pos)``. For a definite
    length ``next_pos == content_end``; for an indefinite one (constructed
    only) ``content_end`` is where the end-of-contents octets start. Faults
    raise ``err(reason, offset)``.
    """
    # Fast path, nearly every TLV in TCAP/MAP: low tag number, short length.
    if pos + 2 <= end:
        length = buf[pos + 1]
        if length < 0x80 and buf[pos] & 0x1F != 0x1F:
            stop = pos + 2 + length
            if stop <= end:
                return buf[pos], pos + 2, stop, stop
    return _read_tlv(buf, pos, end, err, 0)


def _read_tlv(buf: bytes, pos: int, end: int, err: Fault, depth: int) -> tuple[int, int, int, int]:
    if pos + 2 > end:
        raise err("truncated TLV header", pos)
    ident = buf[pos]
    p = pos + 1
    if ident & 0x1F == 0x1F:
        number = 0
        for count in range(_MAX_ARC_OCTETS + 1):
            if p >= end:
                raise err("truncated tag number", p)
            octet = buf[p]
            p += 1
            number = (number << 7) | (octet & 0x7F)
            if not octet & 0x80:
                break
            if count == _MAX_ARC_OCTETS:
                raise err("tag number too long", p)
        tag = HIGH_TAG | (ident << 16) | number
        if p >= end:
            raise err("truncated length", p)
    else:
        tag = ident
    first = buf[p]
    p += 1
    if first < 0x80:
        stop = p + first
        if stop > end:
            raise err(f"length {first} exceeds the enclosing value", p - 1)
        return tag, p, stop, stop
    if first == 0x80:
        if not ident & 0x20:
            raise err("indefinite length on a primitive value", p - 1)
        stop = _find_eoc(buf, p, end, err, depth + 1)
        return tag, p, stop, stop + 2
    count = first & 0x7F
    if count > MAX_LENGTH_OCTETS:
        raise err(f"length field of {count} octets", p - 1)
    if p + count > end:
        raise err("truncated length", p)
    length = int.from_bytes(buf[p : p + count], "big")
    p += count
    stop = p + length
    if stop > end:
        raise err(f"length {length} exceeds the enclosing value", p - count - 1)
    return tag, p, stop, stop


def _find_eoc(buf: bytes, pos: int, end: int, err: Fault, depth: int) -> int:
    """Offset of the end-of-contents octets closing an indefinite value."""
    if depth > MAX_DEPTH:
        raise err("values nested too deeply", pos)
    # Each pass consumes >= 2 octets: bounded by the buffer length.
    while True:
        if pos + 2 > end:
            raise err("indefinite length without end-of-contents", pos)
        if buf[pos] == _EOC_TAG:
            if buf[pos + 1] != 0:
                raise err("malformed end-of-contents", pos)
            return pos
        pos = _read_tlv(buf, pos, end, err, depth)[3]


def decode_integer(buf: bytes, start: int, stop: int, err: Fault) -> int:
    """A two's-complement INTEGER's contents (X.690 §8.3)."""
    n = stop - start
    if n == 1:  # the common case: invoke ids, opcodes, causes
        v = buf[start]
        return v - 256 if v > 127 else v
    if n == 0:
        raise err("empty INTEGER", start)
    if n > MAX_INTEGER_OCTETS:
        raise err(f"INTEGER of {n} octets", start)
    return int.from_bytes(buf[start:stop], "big", signed=True)


_OID_CACHE: Final[dict[bytes, tuple[int, ...]]] = {}
#: OIDs remembered (application contexts repeat on every message); cleared when
#: full, so a peer sending random OIDs costs memory no larger than this.
OID_CACHE_SIZE: Final = 256


def decode_oid(buf: bytes, start: int, stop: int, err: Fault) -> tuple[int, ...]:
    """An OBJECT IDENTIFIER's contents (X.690 §8.19) as a tuple of arcs."""
    raw = buf[start:stop]
    cached = _OID_CACHE.get(raw)
    if cached is not None:
        return cached
    if not raw:
        raise err("empty OBJECT IDENTIFIER", start)
    arcs: list[int] = []
    value = 0
    octets = 0
    for i, octet in enumerate(raw):
        if octets == 0 and octet == 0x80:
            raise err("OID arc with a leading 0x80 octet", start + i)
        value = (value << 7) | (octet & 0x7F)
        octets += 1
        if octets > _MAX_ARC_OCTETS:
            raise err("OID arc too long", start + i)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
            octets = 0
    if octets:
        raise err("OID ends inside an arc", stop - 1)
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    oid = (*head, *arcs[1:])
    if len(oid) > MAX_OID_ARCS:
        raise err(f"OID of {len(oid)} arcs", start)
    if len(_OID_CACHE) >= OID_CACHE_SIZE:
        _OID_CACHE.clear()
    _OID_CACHE[raw] = oid
    return oid


# ----------------------------------------------------------------------- writing


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(body) > MAX_LENGTH_OCTETS:
        raise ValueError(f"BER value of {n} octets is too long")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """Definite-length encoding of ``content`` under a low-form ``tag`` octet."""
    return bytes((tag,)) + _length(len(content)) + content


def encode_integer(value: int) -> bytes:
    """Minimal two's-complement contents of an INTEGER."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    if size > MAX_INTEGER_OCTETS:
        raise ValueError(f"INTEGER {value} needs {size} octets")
    return value.to_bytes(size, "big", signed=True)


def encode_oid(oid: tuple[int, ...]) -> bytes:
    """Contents of an OBJECT IDENTIFIER."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] > 39) or len(oid) > MAX_OID_ARCS:
        raise ValueError(f"not an encodable OID: {oid}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0 or arc >= 1 << (7 * _MAX_ARC_OCTETS):
            raise ValueError(f"OID arc {arc} out of range")
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)
