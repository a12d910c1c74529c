"""SCCP connectionless messages (ITU-T Q.713): UDT, UDTS, XUDT, XUDTS.

Theory of operation
-------------------
A connectionless SCCP message is a fixed part (message type, then protocol
class or return cause, then for the X- variants a hop counter), one-octet
pointers to the mandatory variable parts (called address, calling address,
data) and, for XUDT/XUDTS, a pointer to the optional part (Q.713 §2.3-2.4).
Each pointer counts from its own octet; each variable part starts with a
one-octet length. The decoder checks that every pointer and length lands
inside the message and that the data part ends where the message (or the
optional part) begins: bytes nobody points at are refused, as trailing junk.

Addresses (§3.4) are an address indicator octet, then point code, SSN and
global title as the indicator announces. Parsed addresses are memoised by their
bytes (a link sees the same few dozen GTs over and over); the cache is bounded.
So is the whole *head* of a valid message (type to data length, see
``_HEAD_CACHE``): a message whose head was seen before costs one dictionary
probe and a check that its data ends the message. Called addresses that carry
a subscriber's number (an SRI-SM routed on the MSISDN) miss it and take the
full walk.

LUDT/LUDTS (two-octet pointers) and the connection-oriented classes are not
decoded: they raise :class:`SccpError`. Every error carries the Q.713 return
cause a UDTS answering it would use.
"""

from __future__ import annotations

from typing import Final

from herald.signaling._digits import decode_bcd, encode_bcd
from herald.signaling.errors import EncodeError, ReturnCause, SccpError
from herald.signaling.message import (
    GlobalTitle,
    RoutingIndicator,
    SccpAddress,
    SccpMessageType,
    Unitdata,
)

__all__ = [
    "MAX_GT_DIGITS",
    "OPT_END",
    "OPT_IMPORTANCE",
    "OPT_SEGMENTATION",
    "decode_address",
    "decode_unitdata",
    "encode_address",
    "encode_unitdata",
    "parse_unitdata",
    "udts_for",
]

#: Digits in a global title: E.164 has at most 15, E.214 (MGT) 15 + TT room;
#: Q.713 leaves it to the address length; more than 24 is junk.
MAX_GT_DIGITS: Final = 24

#: Q.713 §3.17: XUDT/XUDTS hop counter is 1..15 (0 would already be a violation).
MAX_HOP_COUNTER: Final = 15

#: Addresses remembered by their encoding (see module doc). A peer cycling
#: through random addresses only churns this many entries.
ADDRESS_CACHE_SIZE: Final = 1024

# Q.713 §3.1 optional-parameter names used by XUDT/XUDTS.
OPT_END: Final = 0x00
OPT_SEGMENTATION: Final = 0x10
OPT_IMPORTANCE: Final = 0x12
_OPT_LENGTHS: Final = {OPT_SEGMENTATION: 4, OPT_IMPORTANCE: 1}

# Fixed-part octets before the pointers, and the number of pointers.
_LAYOUT: Final = {
    SccpMessageType.UDT: (2, 3),
    SccpMessageType.UDTS: (2, 3),
    SccpMessageType.XUDT: (3, 4),
    SccpMessageType.XUDTS: (3, 4),
}
_SERVICE: Final = frozenset({SccpMessageType.UDTS, SccpMessageType.XUDTS})
_EXTENDED: Final = frozenset({SccpMessageType.XUDT, SccpMessageType.XUDTS})
_TYPES: Final = {t.value: t for t in SccpMessageType}

_ADDRESS_CACHE: Final[dict[bytes, SccpAddress]] = {}

#: Heads of valid messages without an optional part, remembered with what
#: they decoded to. A head is every octet from the message type to the data's
#: length octet: type, class, hop counter, pointers, both addresses and the
#: data length, i.e. everything the validity of the message depends on but
#: the data itself, which must then end the message exactly. Between a pair
#: of nodes the head repeats from message to message; a peer varying it only
#: churns this many entries.
HEAD_CACHE_SIZE: Final = 1024
_HEAD_CACHE: dict[bytes, tuple[SccpMessageType, SccpAddress, SccpAddress, int, bool,
                               int | None, int | None]] = {}

# Values are built with every field given to tuple.__new__ (see codec._new).
_new: Final = tuple.__new__

# Address indicator bit 7 -> its member, read once (calling an Enum class
# runs EnumMeta.__call__, interpreted even in the compiled build).
_ROUTING: Final = (RoutingIndicator.GLOBAL_TITLE, RoutingIndicator.SSN)
_ON_GT: Final = RoutingIndicator.GLOBAL_TITLE
_ON_SSN: Final = RoutingIndicator.SSN


# ---------------------------------------------------------------------- decoding


def decode_address(raw: bytes, base: int = 0) -> SccpAddress:
    """Decode a called/calling party address's contents (Q.713 §3.4).

    ``base`` is the offset of ``raw`` in the caller's buffer, for error offsets.
    """
    cached = _ADDRESS_CACHE.get(raw)
    if cached is not None:
        return cached
    address = _decode_address(raw, base)
    if len(_ADDRESS_CACHE) >= ADDRESS_CACHE_SIZE:
        _ADDRESS_CACHE.clear()
    _ADDRESS_CACHE[raw] = address
    return address


def _decode_address(raw: bytes, base: int) -> SccpAddress:
    if not raw:
        raise SccpError("empty address", base)
    ai = raw[0]
    pos = 1
    point_code = ssn = None
    if ai & 0x01:
        if len(raw) < pos + 2:
            raise SccpError("address truncated in the point code", base + pos)
        # §3.4.2.1: ITU 14-bit signalling point code, least significant octet first.
        point_code = raw[pos] | (raw[pos + 1] << 8)
        if point_code >> 14:
            raise SccpError("point code spare bits set", base + pos + 1)
        pos += 2
    if ai & 0x02:
        if len(raw) < pos + 1:
            raise SccpError("address truncated in the SSN", base + pos)
        ssn = raw[pos]
        pos += 1
    gti = (ai >> 2) & 0x0F
    routing = _ROUTING[(ai >> 6) & 0x01]
    gt = _global_title(raw, pos, gti, base) if gti else None
    if gt is None and pos != len(raw):
        raise SccpError("octets after an address without global title", base + pos)
    if routing is _ON_GT and gt is None:
        raise SccpError("route on GT without a global title", base,
                        ReturnCause.NO_TRANSLATION_FOR_NATURE)
    if routing is _ON_SSN and ssn is None:
        raise SccpError("route on SSN without a subsystem number", base,
                        ReturnCause.UNEQUIPPED_USER)
    # Every field given to tuple.__new__ (the NamedTuple's own __new__ is an
    # interpreted function): an address routed on a subscriber's number (an
    # SRI-SM's called party) misses the cache on every message.
    return _new(SccpAddress, (routing, ssn, point_code, gt, bool(ai & 0x80)))


def _global_title(raw: bytes, pos: int, gti: int, base: int) -> GlobalTitle:
    tt = np = nai = None
    n = len(raw)
    if gti == 1:
        # §3.4.2.3.1: odd/even indicator + nature of address.
        if pos + 1 > n:
            raise SccpError("global title truncated", base + pos)
        odd = bool(raw[pos] & 0x80)
        nai = raw[pos] & 0x7F
        pos += 1
    elif gti == 2:
        # §3.4.2.3.2: translation type only; digits BCD, even unless filled.
        if pos + 1 > n:
            raise SccpError("global title truncated", base + pos)
        tt = raw[pos]
        pos += 1
        odd = pos < n and raw[n - 1] >> 4 == 0x0F
    elif gti in (3, 4):
        need = 2 if gti == 3 else 3
        if pos + need > n:
            raise SccpError("global title truncated", base + pos)
        tt = raw[pos]
        np, es = raw[pos + 1] >> 4, raw[pos + 1] & 0x0F
        if gti == 4:
            if raw[pos + 2] & 0x80:
                raise SccpError("nature of address spare bit set", base + pos + 2)
            nai = raw[pos + 2] & 0x7F
        # §3.4.2.3.3: encoding scheme 1 = BCD odd, 2 = BCD even; the others
        # (unknown, national) cannot be read as digits.
        if es not in (1, 2):
            raise SccpError(f"global title encoding scheme {es}", base + pos + 1,
                            ReturnCause.NO_TRANSLATION_FOR_NATURE)
        odd = es == 1
        pos += need
    else:
        raise SccpError(f"global title indicator {gti}", base,
                        ReturnCause.NO_TRANSLATION_FOR_NATURE)
    digits = decode_bcd(raw[pos:], odd)
    if not digits:
        raise SccpError("global title digits are empty or not BCD", base + pos,
                        ReturnCause.NO_TRANSLATION_FOR_ADDRESS)
    if len(digits) > MAX_GT_DIGITS:
        raise SccpError(f"global title of {len(digits)} digits", base + pos,
                        ReturnCause.NO_TRANSLATION_FOR_ADDRESS)
    return _new(GlobalTitle, (digits, gti, tt, np, nai))


def parse_unitdata(buf: bytes, pos: int, end: int) -> tuple[Unitdata, int, int]:
    """The hot path: decode the SCCP message in ``buf[pos:end]``.

    Returns the value and the offsets of its user data in ``buf`` (the value's
    ``data`` holds a copy). Raises SccpError.
    """
    # A head seen before (see _HEAD_CACHE): the pointer to the data sits at
    # pos + 4 in a UDT/UDTS and at pos + 5 in an XUDT/XUDTS (Q.713 §4.10,
    # §4.18). Any other message type is never in the cache, whatever octet
    # this reads; a key cut short by the buffer's end matches no head (its
    # own pointer would make it longer).
    if pos + 5 < end:
        at = pos + 4 if buf[pos] < 0x11 else pos + 5
        d_s = at + buf[at] + 1
        head = _HEAD_CACHE.get(buf[pos:d_s])
        if head is not None:
            d_e = d_s + buf[d_s - 1]
            if d_e == end:
                kind, called, calling, protocol_class, return_on_error, cause, hop = head
                value = _new(Unitdata, (kind, called, calling, buf[d_s:d_e], protocol_class,
                                        return_on_error, cause, hop, None, None))
                return value, d_s, d_e
    return _parse_unitdata(buf, pos, end)


def _parse_unitdata(buf: bytes, pos: int, end: int) -> tuple[Unitdata, int, int]:
    """parse_unitdata without the head cache; remembers the head of a valid
    message without an optional part."""
    if pos >= end:
        raise SccpError("empty SCCP message", pos)
    t = buf[pos]
    if t == 0x09 or t == 0x0A:  # UDT, UDTS: 3 pointers after 2 octets
        ptr0, pointers = pos + 2, 3
    elif t == 0x11 or t == 0x12:  # XUDT, XUDTS: 4 pointers after 3 octets
        ptr0, pointers = pos + 3, 4
    else:
        raise SccpError(f"message type 0x{t:02x} not supported", pos,
                        ReturnCause.ERROR_IN_LOCAL_PROCESSING)
    kind = _TYPES[t]
    if ptr0 + pointers > end:
        raise SccpError(f"{kind.name} truncated in its fixed part", pos)
    second = buf[pos + 1]
    protocol_class = 0
    return_on_error = False
    cause: int | None = None
    if t == 0x0A or t == 0x12:
        cause = second
    else:
        # §3.6: bits 1-4 class (0 or 1 connectionless), bits 5-8 handling.
        protocol_class = second & 0x0F
        if protocol_class > 1:
            raise SccpError(f"protocol class {protocol_class} in {kind.name}", pos + 1,
                            ReturnCause.ERROR_IN_LOCAL_PROCESSING)
        handling = second >> 4
        if handling and handling != 8:
            raise SccpError(f"message handling 0x{handling:x}", pos + 1)
        return_on_error = handling == 8
    hop = None
    if pointers == 4:
        hop = buf[pos + 2]
        if not 1 <= hop <= MAX_HOP_COUNTER:
            raise SccpError(f"hop counter {hop}", pos + 2, ReturnCause.HOP_COUNTER_VIOLATION)
    # §2.3: each pointer counts from its own octet to its part's length octet.
    # The parts must follow each other exactly (called, calling, data, then the
    # optional part): octets that no pointer owns are refused.
    at = ptr0 + pointers
    if buf[ptr0] != pointers or at >= end:
        raise SccpError("pointer to the called party address is not to the first part", ptr0)
    cd_s = at + 1
    cd_e = cd_s + buf[at]
    if cd_e >= end or buf[ptr0 + 1] != cd_e - ptr0 - 1:
        raise SccpError("called party address and calling pointer disagree", at)
    cg_s = cd_e + 1
    cg_e = cg_s + buf[cd_e]
    if cg_e >= end or buf[ptr0 + 2] != cg_e - ptr0 - 2:
        raise SccpError("calling party address and data pointer disagree", cd_e)
    d_s = cg_e + 1
    d_e = d_s + buf[cg_e]
    if d_e > end:
        raise SccpError(f"data length {buf[cg_e]} beyond the message", cg_e)
    if d_e == d_s:
        raise SccpError("empty data", cg_e)
    segmentation = importance = None
    optional = pointers == 4 and buf[ptr0 + 3]
    if optional:
        if ptr0 + 3 + buf[ptr0 + 3] != d_e or d_e >= end:
            raise SccpError("pointer to the optional part is not after the data", ptr0 + 3)
        segmentation, importance = _optional(buf, d_e, end)
    elif d_e != end:
        raise SccpError("octets after the data", d_e)
    called = _ADDRESS_CACHE.get(buf[cd_s:cd_e]) or decode_address(buf[cd_s:cd_e], cd_s)
    calling = _ADDRESS_CACHE.get(buf[cg_s:cg_e]) or decode_address(buf[cg_s:cg_e], cg_s)
    if not optional:
        if len(_HEAD_CACHE) >= HEAD_CACHE_SIZE:
            _HEAD_CACHE.clear()
        _HEAD_CACHE[buf[pos:d_s]] = (kind, called, calling, protocol_class, return_on_error,
                                     cause, hop)
    value = _new(Unitdata, (kind, called, calling, buf[d_s:d_e], protocol_class,
                            return_on_error, cause, hop, segmentation, importance))
    return value, d_s, d_e


def _optional(buf: bytes, pos: int, end: int) -> tuple[bytes | None, int | None]:
    segmentation = importance = None
    seen: set[int] = set()
    # Each parameter consumes >= 2 octets: bounded by the message length.
    while pos < end:
        name = buf[pos]
        if name == OPT_END:
            if pos + 1 != end:
                raise SccpError("octets after end of optional parameters", pos + 1)
            return segmentation, importance
        if pos + 2 > end:
            raise SccpError("truncated optional parameter", pos)
        length = buf[pos + 1]
        start, stop = pos + 2, pos + 2 + length
        if stop > end:
            raise SccpError(f"optional parameter length {length}", pos + 1)
        want = _OPT_LENGTHS.get(name)
        if want is None or name in seen:
            raise SccpError(f"optional parameter 0x{name:02x}", pos)
        if length != want:
            raise SccpError(f"optional parameter 0x{name:02x} of {length} octets", pos + 1)
        seen.add(name)
        if name == OPT_SEGMENTATION:
            segmentation = buf[start:stop]
        else:
            importance = buf[start] & 0x07
        pos = stop
    raise SccpError("optional part without end of optional parameters", end)


def decode_unitdata(data: bytes | bytearray | memoryview) -> Unitdata:
    """Decode one whole SCCP connectionless message. Raises SccpError."""
    buf = bytes(data)
    return parse_unitdata(buf, 0, len(buf))[0]


# ---------------------------------------------------------------------- encoding


def encode_address(address: SccpAddress) -> bytes:
    """The contents of a called/calling party address (without its length)."""
    ai = (0x80 if address.national else 0) | (int(address.routing) << 6)
    out = bytearray(1)
    if address.point_code is not None:
        if not 0 <= address.point_code < 1 << 14:
            raise EncodeError(f"ITU point code {address.point_code} is not 14 bits")
        ai |= 0x01
        out += address.point_code.to_bytes(2, "little")
    if address.ssn is not None:
        if not 0 <= address.ssn <= 0xFF:
            raise EncodeError(f"SSN {address.ssn}")
        ai |= 0x02
        out.append(address.ssn)
    gt = address.gt
    if gt is not None:
        ai |= (gt.indicator & 0x0F) << 2
        out += _encode_gt(gt)
    out[0] = ai
    return bytes(out)


def _encode_gt(gt: GlobalTitle) -> bytes:
    digits = encode_bcd(gt.digits)
    if digits is None or len(gt.digits) > MAX_GT_DIGITS:
        raise EncodeError("global title digits must be 1..24 decimal digits")
    odd = len(gt.digits) % 2
    tt, np, nai = gt.translation_type, gt.numbering_plan, gt.nature

    def need(value: int | None, what: str, bits: int) -> int:
        if value is None or not 0 <= value < 1 << bits:
            raise EncodeError(f"GTI {gt.indicator} needs {what} (0..{(1 << bits) - 1})")
        return value

    if gt.indicator == 1:
        return bytes(((0x80 if odd else 0) | need(nai, "a nature of address", 7),)) + digits
    if gt.indicator == 2:
        if odd:
            raise EncodeError("GTI 2 carries an even number of digits")
        return bytes((need(tt, "a translation type", 8),)) + digits
    if gt.indicator in (3, 4):
        head = bytes((need(tt, "a translation type", 8),
                      (need(np, "a numbering plan", 4) << 4) | (1 if odd else 2)))
        if gt.indicator == 4:
            head += bytes((need(nai, "a nature of address", 7),))
        return head + digits
    raise EncodeError(f"global title indicator {gt.indicator}")


def encode_unitdata(message: Unitdata) -> bytes:
    """The wire form of a UDT/UDTS/XUDT/XUDTS. Raises EncodeError."""
    kind = message.kind
    fixed, pointers = _LAYOUT[kind]
    called = encode_address(message.called)
    calling = encode_address(message.calling)
    parts = [called, calling, message.data]
    if any(len(p) > 0xFF for p in parts) or not message.data:
        raise EncodeError("SCCP variable parts are 1..255 octets")
    if kind in _SERVICE:
        if message.return_cause is None or not 0 <= message.return_cause <= 0xFF:
            raise EncodeError(f"{kind.name} needs a return cause")
        second = message.return_cause
    else:
        if message.protocol_class not in (0, 1):
            raise EncodeError(f"protocol class {message.protocol_class}")
        second = message.protocol_class | (0x80 if message.return_on_error else 0)
    head = bytearray((kind, second))
    if kind in _EXTENDED:
        hop = MAX_HOP_COUNTER if message.hop_counter is None else message.hop_counter
        if not 1 <= hop <= MAX_HOP_COUNTER:
            raise EncodeError(f"hop counter {hop}")
        head.append(hop)
    optional = b""
    if kind in _EXTENDED and (message.segmentation is not None or message.importance is not None):
        if message.segmentation is not None:
            if len(message.segmentation) != 4:
                raise EncodeError("segmentation parameter is 4 octets")
            optional += bytes((OPT_SEGMENTATION, 4)) + message.segmentation
        if message.importance is not None:
            if not 0 <= message.importance <= 7:
                raise EncodeError(f"importance {message.importance}")
            optional += bytes((OPT_IMPORTANCE, 1, message.importance))
        optional += bytes((OPT_END,))
    # Pointers count from their own octet (§2.3).
    first = pointers
    second_ptr = first - 1 + 1 + len(called)
    third = second_ptr - 1 + 1 + len(calling)
    ptrs = [first, second_ptr, third]
    if pointers == 4:
        ptrs.append(third - 1 + 1 + len(message.data) if optional else 0)
    if any(p > 0xFF for p in ptrs):
        raise EncodeError("SCCP message too long for one-octet pointers")
    assert fixed == len(head)
    body = b"".join(bytes((len(p),)) + p for p in parts)
    return bytes(head) + bytes(ptrs) + body + optional


def udts_for(original: Unitdata, cause: ReturnCause | int) -> Unitdata:
    """The service message answering ``original`` (Q.713 §4.11, §4.19): UDTS
    for a UDT, XUDTS for an XUDT, addresses swapped, the data returned."""
    if original.kind in _SERVICE:
        raise EncodeError("a service message is never answered with another (Q.714 §4.2)")
    kind = SccpMessageType.XUDTS if original.kind in _EXTENDED else SccpMessageType.UDTS
    return Unitdata(kind, original.calling, original.called, original.data,
                    return_cause=int(cause),
                    hop_counter=MAX_HOP_COUNTER if kind in _EXTENDED else None)
