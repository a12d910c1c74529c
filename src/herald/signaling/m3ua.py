"""M3UA (RFC 4666): the common header, parameters, and the messages a guard
or proxy meets: DATA, ASP state and traffic maintenance, heartbeat, NTFY, ERR,
and the SS7 signalling network management messages (DUNA, DAVA, ...).

Theory of operation
-------------------
Every M3UA message is an 8-octet common header (§3.1: version 1, a reserved
octet, message class, message type, 32-bit length including the header and all
padding) followed by parameters, each a tag/length/value with the value padded
to a multiple of 4 octets (§3.2). :func:`decode_m3ua` validates the header,
walks the parameters once, checks each message's mandatory and allowed
parameters against :data:`_LAYOUT` (a table, one row per message), and returns
one frozen value per message kind. :func:`encode_m3ua` is its inverse.

The DATA hot path does not build a :class:`Data` value: :func:`parse_data`
returns the routing label and the *offsets* of the user data, so the SCCP
decoder reads the same buffer without a copy.

Over TCP (RFC 4666 has no TCP mapping; the common header's length delimits
messages, as every M3UA-over-TCP implementation does) use :class:`Framer`.
Errors are :class:`~herald.signaling.errors.M3uaError` carrying the ERR code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from herald.signaling.errors import EncodeError, M3uaError
from herald.signaling.errors import M3uaErrorCode as Code
from herald.signaling.message import RoutingLabel

__all__ = [
    "MAX_MESSAGE_LENGTH",
    "AspState",
    "AspTraffic",
    "Data",
    "DestinationState",
    "Error",
    "Framer",
    "Heartbeat",
    "Kind",
    "M3uaMessage",
    "Notify",
    "Parameter",
    "RegistrationMessage",
    "Tag",
    "decode_m3ua",
    "encode_m3ua",
    "message_length",
    "parse_data",
]

VERSION: Final = 1
HEADER_LENGTH: Final = 8

#: Largest message accepted. The biggest SCCP payload is an LUDT (Q.713
#: §4.21: 3952 octets of user data plus addresses); 16 KiB leaves room for
#: every parameter RFC 4666 defines. A bigger length field is a framing attack.
MAX_MESSAGE_LENGTH: Final = 16 * 1024

#: Routing contexts in one parameter (RFC 4666 §3.8.1 allows a list): a bound
#: on the work a hostile ASPAC can cause.
MAX_ROUTING_CONTEXTS: Final = 64

#: Affected point codes in one DUNA/DAVA/... (4 octets each).
MAX_AFFECTED_POINT_CODES: Final = 64

#: Parameters in one message: DATA needs 4, NTFY 4; 32 is plenty.
MAX_PARAMETERS: Final = 32

#: Octets of the Protocol Data parameter before the user data (§3.3.1).
_LABEL_LENGTH: Final = 12


class Tag(IntEnum):
    """RFC 4666 §3.2 parameter tags (common and M3UA-specific)."""

    INFO_STRING = 0x0004
    ROUTING_CONTEXT = 0x0006
    DIAGNOSTIC_INFORMATION = 0x0007
    HEARTBEAT_DATA = 0x0009
    TRAFFIC_MODE_TYPE = 0x000B
    ERROR_CODE = 0x000C
    STATUS = 0x000D
    ASP_IDENTIFIER = 0x0011
    AFFECTED_POINT_CODE = 0x0012
    CORRELATION_ID = 0x0013
    NETWORK_APPEARANCE = 0x0200
    USER_CAUSE = 0x0204
    CONGESTION_INDICATIONS = 0x0205
    CONCERNED_DESTINATION = 0x0206
    ROUTING_KEY = 0x0207
    REGISTRATION_RESULT = 0x0208
    DEREGISTRATION_RESULT = 0x0209
    LOCAL_ROUTING_KEY_IDENTIFIER = 0x020A
    DESTINATION_POINT_CODE = 0x020B
    SERVICE_INDICATORS = 0x020C
    ORIGINATING_POINT_CODE_LIST = 0x020E
    PROTOCOL_DATA = 0x0210
    REGISTRATION_STATUS = 0x0212
    DEREGISTRATION_STATUS = 0x0213


class Kind(IntEnum):
    """Message class and type (RFC 4666 §3.1.2-3.1.3) as ``class << 8 | type``."""

    ERR = 0x0000
    NTFY = 0x0001
    DATA = 0x0101
    DUNA = 0x0201
    DAVA = 0x0202
    DAUD = 0x0203
    SCON = 0x0204
    DUPU = 0x0205
    DRST = 0x0206
    ASPUP = 0x0301
    ASPDN = 0x0302
    BEAT = 0x0303
    ASPUP_ACK = 0x0304
    ASPDN_ACK = 0x0305
    BEAT_ACK = 0x0306
    ASPAC = 0x0401
    ASPIA = 0x0402
    ASPAC_ACK = 0x0403
    ASPIA_ACK = 0x0404
    REG_REQ = 0x0901
    REG_RSP = 0x0902
    DEREG_REQ = 0x0903
    DEREG_RSP = 0x0904


_T: Final = Tag
_RC: Final = _T.ROUTING_CONTEXT
_NA: Final = _T.NETWORK_APPEARANCE
_INFO: Final = _T.INFO_STRING
_APC: Final = _T.AFFECTED_POINT_CODE

# Per message: (mandatory tags, optional tags). RFC 4666 §3.3-3.8; the
# "conditional" Routing Context counts as optional here (its condition depends
# on configuration the codec does not have).
_LAYOUT: Final[dict[Kind, tuple[frozenset[int], frozenset[int]]]] = {
    Kind.DATA: (frozenset({_T.PROTOCOL_DATA}), frozenset({_NA, _RC, _T.CORRELATION_ID})),
    Kind.DUNA: (frozenset({_APC}), frozenset({_NA, _RC, _INFO})),
    Kind.DAVA: (frozenset({_APC}), frozenset({_NA, _RC, _INFO})),
    Kind.DAUD: (frozenset({_APC}), frozenset({_NA, _RC, _INFO})),
    Kind.DRST: (frozenset({_APC}), frozenset({_NA, _RC, _INFO})),
    Kind.SCON: (
        frozenset({_APC}),
        frozenset({_NA, _RC, _T.CONCERNED_DESTINATION, _T.CONGESTION_INDICATIONS, _INFO}),
    ),
    Kind.DUPU: (frozenset({_APC, _T.USER_CAUSE}), frozenset({_NA, _RC, _INFO})),
    Kind.ASPUP: (frozenset(), frozenset({_T.ASP_IDENTIFIER, _INFO})),
    Kind.ASPUP_ACK: (frozenset(), frozenset({_T.ASP_IDENTIFIER, _INFO})),
    Kind.ASPDN: (frozenset(), frozenset({_INFO})),
    Kind.ASPDN_ACK: (frozenset(), frozenset({_INFO})),
    Kind.BEAT: (frozenset(), frozenset({_T.HEARTBEAT_DATA})),
    Kind.BEAT_ACK: (frozenset(), frozenset({_T.HEARTBEAT_DATA})),
    Kind.ASPAC: (frozenset(), frozenset({_T.TRAFFIC_MODE_TYPE, _RC, _INFO})),
    Kind.ASPAC_ACK: (frozenset(), frozenset({_T.TRAFFIC_MODE_TYPE, _RC, _INFO})),
    Kind.ASPIA: (frozenset(), frozenset({_RC, _INFO})),
    Kind.ASPIA_ACK: (frozenset(), frozenset({_RC, _INFO})),
    Kind.NTFY: (frozenset({_T.STATUS}), frozenset({_T.ASP_IDENTIFIER, _RC, _INFO})),
    Kind.ERR: (
        frozenset({_T.ERROR_CODE}),
        frozenset({_RC, _NA, _APC, _T.DIAGNOSTIC_INFORMATION}),
    ),
    Kind.REG_REQ: (frozenset({_T.ROUTING_KEY}), frozenset()),
    Kind.REG_RSP: (frozenset({_T.REGISTRATION_RESULT}), frozenset()),
    Kind.DEREG_REQ: (frozenset({_RC}), frozenset()),
    Kind.DEREG_RSP: (frozenset({_T.DEREGISTRATION_RESULT}), frozenset()),
}

# Parameters that are one 32-bit value, and those that are lists of them.
_U32: Final = frozenset(
    {_NA, _T.TRAFFIC_MODE_TYPE, _T.ERROR_CODE, _T.ASP_IDENTIFIER, _T.CORRELATION_ID,
     _T.CONCERNED_DESTINATION, _T.CONGESTION_INDICATIONS, _T.STATUS, _T.USER_CAUSE}
)
_U32_LIST: Final = frozenset({_RC, _APC})
_CLASSES: Final = frozenset(k >> 8 for k in Kind)


@dataclass(frozen=True, slots=True)
class Parameter:
    """A raw parameter (tag and unpadded value), for the registration messages."""

    tag: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Data:
    """DATA (§3.3.1): the routing label and the SS7 user part's bytes."""

    label: RoutingLabel
    #: Not in repr: the SS7 payload carries subscriber identities.
    user_data: bytes = field(repr=False)
    routing_context: int | None = None
    network_appearance: int | None = None
    correlation_id: int | None = None
    kind: Kind = Kind.DATA


@dataclass(frozen=True, slots=True)
class AspState:
    """ASPUP, ASPUP ACK, ASPDN, ASPDN ACK (§3.5.1-3.5.4)."""

    kind: Kind
    asp_identifier: int | None = None
    info: str | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """BEAT and BEAT ACK (§3.5.5-3.5.6): the ACK echoes ``data``."""

    kind: Kind
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class AspTraffic:
    """ASPAC, ASPAC ACK, ASPIA, ASPIA ACK (§3.7). ``traffic_mode``: 1 override,
    2 loadshare, 3 broadcast."""

    kind: Kind
    routing_contexts: tuple[int, ...] = ()
    traffic_mode: int | None = None
    info: str | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """NTFY (§3.8.2): status type (1 AS state change, 2 other) and information."""

    status_type: int
    status_info: int
    asp_identifier: int | None = None
    routing_contexts: tuple[int, ...] = ()
    info: str | None = None
    kind: Kind = Kind.NTFY


@dataclass(frozen=True, slots=True)
class Error:
    """ERR (§3.8.1)."""

    error_code: int
    routing_contexts: tuple[int, ...] = ()
    network_appearance: int | None = None
    affected_point_codes: tuple[int, ...] = ()
    diagnostic: bytes | None = None
    kind: Kind = Kind.ERR


@dataclass(frozen=True, slots=True)
class DestinationState:
    """DUNA, DAVA, DAUD, SCON, DUPU, DRST (§3.4). Affected point codes are the
    32-bit fields (mask octet, 24-bit point code). ``user_cause`` (DUPU) is the
    32-bit Cause/User; ``congestion_level`` and ``concerned_destination``
    belong to SCON."""

    kind: Kind
    affected_point_codes: tuple[int, ...]
    routing_contexts: tuple[int, ...] = ()
    network_appearance: int | None = None
    info: str | None = None
    user_cause: int | None = None
    congestion_level: int | None = None
    concerned_destination: int | None = None


@dataclass(frozen=True, slots=True)
class RegistrationMessage:
    """REG REQ/RSP, DEREG REQ/RSP (§3.6): kept as raw parameters."""

    kind: Kind
    parameters: tuple[Parameter, ...]


M3uaMessage = (
    Data | AspState | Heartbeat | AspTraffic | Notify | Error | DestinationState
    | RegistrationMessage
)

_HEADER: Final = struct.Struct("!BBBBI")
_PARAM: Final = struct.Struct("!HH")
_LABEL: Final = struct.Struct("!IIBBBB")


# ---------------------------------------------------------------------- decoding


def message_length(header: bytes) -> int:
    """Total length announced by an M3UA common header (its first 8 octets).

    Raises M3uaError for a version other than 1 or a length outside
    [8, MAX_MESSAGE_LENGTH] or not a multiple of 4: over a stream that is a
    framing error (close the connection).
    """
    if len(header) < HEADER_LENGTH:
        raise M3uaError("truncated common header", len(header))
    version, _reserved, _cls, _type, length = _HEADER.unpack_from(header, 0)
    if version != VERSION:
        raise M3uaError(f"version {version}", 0, Code.INVALID_VERSION)
    if length < HEADER_LENGTH or length > MAX_MESSAGE_LENGTH or length % 4:
        raise M3uaError(f"message length {length}", 4)
    return int(length)


def _header(buf: bytes) -> Kind:
    length = message_length(buf)
    if length != len(buf):
        raise M3uaError(f"message length {length} but {len(buf)} octets", 4)
    cls, typ = buf[2], buf[3]
    try:
        return Kind((cls << 8) | typ)
    except ValueError:
        if cls not in _CLASSES:
            raise M3uaError(f"message class {cls}", 2, Code.UNSUPPORTED_MESSAGE_CLASS) from None
        raise M3uaError(f"message type {typ}", 3, Code.UNSUPPORTED_MESSAGE_TYPE) from None


def _parameters(buf: bytes, kind: Kind) -> dict[int, tuple[int, int]]:
    """Walk the parameters: tag -> (value start, value end), checked against
    the message's layout."""
    mandatory, optional = _LAYOUT[kind]
    found: dict[int, tuple[int, int]] = {}
    pos, end = HEADER_LENGTH, len(buf)
    while pos < end:
        if len(found) == MAX_PARAMETERS:
            raise M3uaError("too many parameters", pos, Code.PARAMETER_FIELD_ERROR)
        if pos + 4 > end:
            raise M3uaError("truncated parameter header", pos, Code.PARAMETER_FIELD_ERROR)
        tag, length = _PARAM.unpack_from(buf, pos)
        stop = pos + length
        if length < 4 or stop > end:
            raise M3uaError(f"parameter length {length}", pos + 2, Code.PARAMETER_FIELD_ERROR)
        if tag not in mandatory and tag not in optional:
            raise M3uaError(f"parameter 0x{tag:04x} in {kind.name}", pos,
                            Code.UNEXPECTED_PARAMETER)
        if tag in found:
            raise M3uaError(f"repeated parameter 0x{tag:04x}", pos, Code.UNEXPECTED_PARAMETER)
        found[tag] = (pos + 4, stop)
        pos = stop + (-length % 4)
    if pos != end:
        raise M3uaError("parameter padding past the message end", end, Code.PARAMETER_FIELD_ERROR)
    # (frozenset - dict keys is a set at run time, not the frozenset mypy
    # infers: mypyc's compiled check refuses it.)
    missing = [t for t in mandatory if t not in found]
    if missing:
        raise M3uaError(f"{kind.name} without parameter 0x{min(missing):04x}", end,
                        Code.MISSING_PARAMETER)
    return found


#: Routing labels remembered by their 12 octets: a link carries a handful of
#: OPC/DPC pairs times 16 SLS values. Bounded like every decoder cache.
LABEL_CACHE_SIZE: Final = 1024
_LABEL_CACHE: Final[dict[bytes, RoutingLabel]] = {}
_DATA_TAGS: Final = frozenset({Tag.PROTOCOL_DATA, _NA, _RC, _T.CORRELATION_ID})


#: The usual DATA layouts' first octets in one read (RFC 4666 §3.1, §3.3.1):
#: common header, then either Routing Context (tag, length, value) and the
#: Protocol Data tag and length, or the Protocol Data tag and length at once.
_DATA_HEAD: Final = struct.Struct("!IIIIHH")
_DATA_WORD: Final = 0x01000101  # version 1, reserved, class 1 (transfer), type 1 (DATA)
_RC_WORD: Final = 0x00060008  # Routing Context holding one value
_PD_WORD_TAG: Final = Tag.PROTOCOL_DATA.value


def parse_data(buf: bytes) -> tuple[RoutingLabel, int, int, int | None, int | None, int | None]:
    """The hot path: a DATA message's routing label and user data *offsets*.

    Returns ``(label, user_start, user_end, routing_context,
    network_appearance, correlation_id)``. Raises M3uaError (a non-DATA
    message raises with code UNEXPECTED_MESSAGE; use decode_m3ua for those).
    Checks exactly what :func:`decode_m3ua` checks, in one pass.
    """
    n = len(buf)
    # Fast path for the two usual layouts, [Routing Context] + Protocol Data
    # ending the message: nothing else can be present, so the general walk
    # (_parse_data) would find exactly this. One struct read instead of a
    # dozen index operations.
    if n >= 20:
        # Typed: compiled, the six values are then machine integers (struct
        # returns Any, and every comparison on Any is a generic call).
        head: tuple[int, int, int, int, int, int] = _DATA_HEAD.unpack_from(buf)
        word, length, third, rc, tag, size = head
        if word == _DATA_WORD and length == n and not n & 3 and n <= MAX_MESSAGE_LENGTH:
            if third == _RC_WORD:
                if tag == _PD_WORD_TAG and size > 4 + _LABEL_LENGTH and (
                    16 + size + (-size & 3) == n
                ):
                    label = _LABEL_CACHE.get(buf[20:32]) or _label(buf, 20)
                    return label, 32, 16 + size, rc, None, None
            elif third >> 16 == _PD_WORD_TAG:
                size = third & 0xFFFF
                if size > 4 + _LABEL_LENGTH and 8 + size + (-size & 3) == n:
                    label = _LABEL_CACHE.get(buf[12:24]) or _label(buf, 12)
                    return label, 24, 8 + size, None, None, None
    if n < HEADER_LENGTH or buf[0] != VERSION or buf[2] != 1 or buf[3] != 1:
        kind = _header(buf)  # raises the precise error for a bad header
        raise M3uaError(f"{kind.name} is not DATA", 2, Code.UNEXPECTED_MESSAGE)
    if int.from_bytes(buf[4:8], "big") != n or n % 4 or n > MAX_MESSAGE_LENGTH:
        _header(buf)
    return _parse_data(buf, n)


def _label(buf: bytes, start: int) -> RoutingLabel:
    raw = buf[start : start + _LABEL_LENGTH]
    label = _LABEL_CACHE.get(raw)
    if label is None:
        opc, dpc, si, ni, mp, sls = _LABEL.unpack(raw)
        if opc >> 24 or dpc >> 24:
            raise M3uaError("point code wider than 24 bits", start, Code.INVALID_PARAMETER_VALUE)
        label = RoutingLabel(opc, dpc, si, ni, mp, sls)
        if len(_LABEL_CACHE) >= LABEL_CACHE_SIZE:
            _LABEL_CACHE.clear()
        _LABEL_CACHE[raw] = label
    return label


def _parse_data(
    buf: bytes, n: int
) -> tuple[RoutingLabel, int, int, int | None, int | None, int | None]:
    pd = rc = na = corr = None
    seen: set[int] = set()
    pos = HEADER_LENGTH
    # Each parameter consumes >= 4 octets: at most n / 4 passes.
    while pos < n:
        if pos + 4 > n:
            raise M3uaError("truncated parameter header", pos, Code.PARAMETER_FIELD_ERROR)
        tag = (buf[pos] << 8) | buf[pos + 1]
        length = (buf[pos + 2] << 8) | buf[pos + 3]
        stop = pos + length
        if length < 4 or stop > n:
            raise M3uaError(f"parameter length {length}", pos + 2, Code.PARAMETER_FIELD_ERROR)
        if tag not in _DATA_TAGS:
            raise M3uaError(f"parameter 0x{tag:04x} in DATA", pos, Code.UNEXPECTED_PARAMETER)
        if tag in seen:
            raise M3uaError(f"repeated parameter 0x{tag:04x}", pos, Code.UNEXPECTED_PARAMETER)
        seen.add(tag)
        if tag == Tag.PROTOCOL_DATA:
            pd = pos + 4, stop
        elif length != 8:
            # NA, RC (one value in DATA, RFC 4666 §3.3.1) and correlation id.
            code = Code.INVALID_ROUTING_CONTEXT if tag == _RC else Code.PARAMETER_FIELD_ERROR
            raise M3uaError(f"parameter 0x{tag:04x} is not one 32-bit value", pos + 2, code)
        else:
            v = int.from_bytes(buf[pos + 4 : stop], "big")
            if tag == _RC:
                rc = v
            elif tag == _NA:
                na = v
            else:
                corr = v
        pos = stop + (-length % 4)
    if pos != n:
        raise M3uaError("parameter padding past the message end", n, Code.PARAMETER_FIELD_ERROR)
    if pd is None:
        raise M3uaError("DATA without protocol data", n, Code.MISSING_PARAMETER)
    start, stop = pd
    if stop - start <= _LABEL_LENGTH:
        raise M3uaError("protocol data without user data", start - 2,
                        Code.PARAMETER_FIELD_ERROR)
    return _label(buf, start), start + _LABEL_LENGTH, stop, rc, na, corr


def _u32(buf: bytes, params: dict[int, tuple[int, int]], tag: int) -> int | None:
    span = params.get(tag)
    if span is None:
        return None
    if span[1] - span[0] != 4:
        raise M3uaError(f"parameter 0x{tag:04x} is not 4 octets", span[0] - 2,
                        Code.PARAMETER_FIELD_ERROR)
    return int.from_bytes(buf[span[0] : span[1]], "big")


def _u32_list(buf: bytes, params: dict[int, tuple[int, int]], tag: int,
              limit: int = MAX_ROUTING_CONTEXTS) -> tuple[int, ...]:
    span = params.get(tag)
    if span is None:
        return ()
    n, rest = divmod(span[1] - span[0], 4)
    if rest or n == 0 or n > limit:
        raise M3uaError(f"parameter 0x{tag:04x} is not a list of 1..{limit} words",
                        span[0] - 2, Code.PARAMETER_FIELD_ERROR)
    return struct.unpack_from(f"!{n}I", buf, span[0])


def _text(buf: bytes, params: dict[int, tuple[int, int]], tag: int) -> str | None:
    span = params.get(tag)
    if span is None:
        return None
    try:
        return buf[span[0] : span[1]].decode("ascii")
    except UnicodeDecodeError:
        # RFC 4666 §3.8.1: INFO String is 7-bit US-ASCII.
        raise M3uaError("INFO String is not ASCII", span[0],
                        Code.INVALID_PARAMETER_VALUE) from None


def _raw(buf: bytes, params: dict[int, tuple[int, int]], tag: int) -> bytes | None:
    span = params.get(tag)
    return None if span is None else bytes(buf[span[0] : span[1]])


def decode_m3ua(data: bytes | bytearray | memoryview) -> M3uaMessage:
    """Decode one complete M3UA message. Raises M3uaError (see module doc)."""
    buf = bytes(data)
    kind = _header(buf)
    if kind is Kind.DATA:
        label, start, stop, rc, na, corr = parse_data(buf)
        return Data(label, buf[start:stop], rc, na, corr)
    p = _parameters(buf, kind)
    rcs = _u32_list(buf, p, _RC)
    info = _text(buf, p, _INFO)
    if kind in (Kind.ASPUP, Kind.ASPUP_ACK, Kind.ASPDN, Kind.ASPDN_ACK):
        return AspState(kind, _u32(buf, p, _T.ASP_IDENTIFIER), info)
    if kind in (Kind.BEAT, Kind.BEAT_ACK):
        return Heartbeat(kind, _raw(buf, p, _T.HEARTBEAT_DATA))
    if kind in (Kind.ASPAC, Kind.ASPAC_ACK, Kind.ASPIA, Kind.ASPIA_ACK):
        return AspTraffic(kind, rcs, _u32(buf, p, _T.TRAFFIC_MODE_TYPE), info)
    if kind is Kind.NTFY:
        status = _u32(buf, p, _T.STATUS) or 0
        return Notify(status >> 16, status & 0xFFFF, _u32(buf, p, _T.ASP_IDENTIFIER), rcs, info)
    apcs = _u32_list(buf, p, _APC, MAX_AFFECTED_POINT_CODES)
    if kind is Kind.ERR:
        return Error(_u32(buf, p, _T.ERROR_CODE) or 0, rcs, _u32(buf, p, _NA), apcs,
                     _raw(buf, p, _T.DIAGNOSTIC_INFORMATION))
    if kind in (Kind.DUNA, Kind.DAVA, Kind.DAUD, Kind.SCON, Kind.DUPU, Kind.DRST):
        return DestinationState(
            kind, apcs, rcs, _u32(buf, p, _NA), info,
            user_cause=_u32(buf, p, _T.USER_CAUSE),
            congestion_level=_u32(buf, p, _T.CONGESTION_INDICATIONS),
            concerned_destination=_u32(buf, p, _T.CONCERNED_DESTINATION),
        )
    params = tuple(
        Parameter(tag, buf[s:e]) for tag, (s, e) in sorted(p.items(), key=lambda i: i[1])
    )
    return RegistrationMessage(kind, params)


# ---------------------------------------------------------------------- encoding


def _param(tag: int, value: bytes) -> bytes:
    length = 4 + len(value)
    if length > 0xFFFF:
        raise EncodeError(f"parameter 0x{tag:04x} of {len(value)} octets")
    return _PARAM.pack(tag, length) + value + b"\0" * (-length % 4)


def _words(values: tuple[int, ...]) -> bytes:
    try:
        return struct.pack(f"!{len(values)}I", *values)
    except struct.error as exc:
        raise EncodeError(f"not 32-bit values: {values}") from exc


def _opt_u32(tag: int, value: int | None) -> bytes:
    return b"" if value is None else _param(tag, _words((value,)))


def _opt_list(tag: int, values: tuple[int, ...]) -> bytes:
    return _param(tag, _words(values)) if values else b""


def _opt_text(tag: int, value: str | None) -> bytes:
    return b"" if value is None else _param(tag, value.encode("ascii"))


def _body(msg: M3uaMessage) -> bytes:
    match msg:
        case Data(label=lb):
            if lb.opc >> 24 or lb.dpc >> 24 or lb.opc < 0 or lb.dpc < 0:
                raise EncodeError("point codes are at most 24 bits")
            try:
                head = _LABEL.pack(lb.opc, lb.dpc, lb.si, lb.ni, lb.mp, lb.sls)
            except struct.error as exc:
                raise EncodeError(f"routing label out of range: {lb}") from exc
            return (
                _opt_u32(_NA, msg.network_appearance)
                + _opt_u32(_RC, msg.routing_context)
                + _param(Tag.PROTOCOL_DATA, head + msg.user_data)
                + _opt_u32(_T.CORRELATION_ID, msg.correlation_id)
            )
        case AspState():
            return _opt_u32(_T.ASP_IDENTIFIER, msg.asp_identifier) + _opt_text(_INFO, msg.info)
        case Heartbeat():
            return b"" if msg.data is None else _param(Tag.HEARTBEAT_DATA, msg.data)
        case AspTraffic():
            return (
                _opt_u32(_T.TRAFFIC_MODE_TYPE, msg.traffic_mode)
                + _opt_list(_RC, msg.routing_contexts)
                + _opt_text(_INFO, msg.info)
            )
        case Notify():
            if not (0 <= msg.status_type <= 0xFFFF and 0 <= msg.status_info <= 0xFFFF):
                raise EncodeError("NTFY status type/info are 16-bit")
            return (
                _param(Tag.STATUS, _words(((msg.status_type << 16) | msg.status_info,)))
                + _opt_u32(_T.ASP_IDENTIFIER, msg.asp_identifier)
                + _opt_list(_RC, msg.routing_contexts)
                + _opt_text(_INFO, msg.info)
            )
        case Error():
            return (
                _param(Tag.ERROR_CODE, _words((msg.error_code,)))
                + _opt_list(_RC, msg.routing_contexts)
                + _opt_u32(_NA, msg.network_appearance)
                + _opt_list(_APC, msg.affected_point_codes)
                + (b"" if msg.diagnostic is None
                   else _param(Tag.DIAGNOSTIC_INFORMATION, msg.diagnostic))
            )
        case DestinationState():
            if not msg.affected_point_codes:
                raise EncodeError(f"{msg.kind.name} needs an affected point code")
            return (
                _opt_u32(_NA, msg.network_appearance)
                + _opt_list(_RC, msg.routing_contexts)
                + _param(Tag.AFFECTED_POINT_CODE, _words(msg.affected_point_codes))
                + _opt_u32(_T.CONCERNED_DESTINATION, msg.concerned_destination)
                + _opt_u32(_T.CONGESTION_INDICATIONS, msg.congestion_level)
                + _opt_u32(_T.USER_CAUSE, msg.user_cause)
                + _opt_text(_INFO, msg.info)
            )
        case RegistrationMessage():
            return b"".join(_param(p.tag, p.value) for p in msg.parameters)
    raise EncodeError(f"not an M3UA message: {type(msg).__name__}")  # pragma: no cover


def encode_m3ua(msg: M3uaMessage) -> bytes:
    """The wire form of ``msg``. Raises EncodeError for out-of-range values."""
    body = _body(msg)
    length = HEADER_LENGTH + len(body)
    if length > MAX_MESSAGE_LENGTH:
        raise EncodeError(f"M3UA message of {length} octets")
    return _HEADER.pack(VERSION, 0, msg.kind >> 8, msg.kind & 0xFF, length) + body


# ----------------------------------------------------------------------- framing


class Framer:
    """Splits an M3UA-over-TCP byte stream into messages (sans-I/O).

    ``feed(data)`` returns the complete messages now available, in order; an
    invalid common header raises M3uaError, after which the stream cannot be
    resynchronised (close the connection). Buffered bytes never exceed one
    message of MAX_MESSAGE_LENGTH.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        # Each pass consumes >= HEADER_LENGTH octets, so the loop is bounded
        # by len(buffer) / 8.
        while len(self._buffer) >= HEADER_LENGTH:
            length = message_length(bytes(self._buffer[:HEADER_LENGTH]))
            if len(self._buffer) < length:
                break
            out.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
        return out
