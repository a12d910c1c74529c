"""TCAP (ITU-T Q.773): transaction portion, dialogue portion and components.

Theory of operation
-------------------
A TCAP message is one BER value (§4.2): [APPLICATION 2] Begin, [4] End, [5]
Continue, [7] Abort or [1] Unidirectional. Inside, in a fixed order: the
originating and/or destination transaction id ([APPLICATION 8]/[9], 1-4
octets), an optional dialogue portion ([APPLICATION 11], an EXTERNAL holding
an AARQ, AARE, ABRT or AUDT whose application-context-name is the MAP AC), and
an optional component portion ([APPLICATION 12]: invoke, returnResult(Not)Last,
returnError, reject). An Abort carries a P-AbortCause or a dialogue portion.

:func:`parse_tcap` walks the BER once with offsets into the caller's buffer.
The MAP layer plugs in through two callbacks (argument and result decoders) so
that TCAP stays ignorant of MAP while the decoded value comes out complete in
one pass. Errors in the transaction portion carry a P-AbortCause, errors inside
a component a Reject problem (see :mod:`herald.signaling.errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from herald.signaling._ber import (
    decode_integer,
    decode_oid,
    encode_integer,
    encode_oid,
    read_tlv,
    tlv,
)
from herald.signaling.errors import (
    EncodeError,
    PAbortCause,
    RejectProblem,
    TcapComponentError,
    TcapError,
)
from herald.signaling.map_types import MapArgument, MapResult
from herald.signaling.message import (
    Component,
    Dialogue,
    DialogueKind,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    TcapMessage,
    TcapMessageType,
)

__all__ = [
    "DIALOGUE_AS_ID",
    "MAX_COMPONENTS",
    "UNI_DIALOGUE_AS_ID",
    "ArgumentDecoder",
    "ResultDecoder",
    "decode_tcap",
    "encode_tcap",
    "parse_tcap",
]

#: Q.773 §4.2.3: {itu-t recommendation q 773 as(1) dialogue-as(1) version1(1)}.
DIALOGUE_AS_ID: Final = (0, 0, 17, 773, 1, 1, 1)
#: Q.773 §4.2.3: {... as(1) uni-dialogue-as(2) version1(1)}.
UNI_DIALOGUE_AS_ID: Final = (0, 0, 17, 773, 1, 2, 1)

#: Components in one message. MAP sends one or two; a bound keeps a hostile
#: message from making the decoder build thousands of values.
MAX_COMPONENTS: Final = 16

#: Transaction ids are 1..4 octets (Q.773 §4.2.1).
MAX_TID_OCTETS: Final = 4

#: Dialogue portions remembered by (message type, encoding): a link repeats a
#: few dozen AARQ/AARE forms. Bounded: a peer varying them only churns it.
DIALOGUE_CACHE_SIZE: Final = 512
_DIALOGUE_CACHES: Final[dict[TcapMessageType, dict[bytes, Dialogue]]] = {
    t: {} for t in TcapMessageType
}

# Values are built with every field given to tuple.__new__ (see codec._new).
_new: Final = tuple.__new__

#: Decodes an invoke's parameter: (opcode, buffer, TLV start, TLV end,
#: application context) -> value or None. Raises MapError.
ArgumentDecoder = Callable[[int, bytes, int, int, "tuple[int, ...] | None"], MapArgument | None]
#: Decodes a return result's parameter likewise.
ResultDecoder = Callable[[int, bytes, int, int, "tuple[int, ...] | None"], MapResult | None]

# Tags (identifier octets), Q.773 §4.2.
_OTID: Final = 0x48
_DTID: Final = 0x49
_PABORT: Final = 0x4A
_DIALOGUE_PORTION: Final = 0x6B
_COMPONENT_PORTION: Final = 0x6C
_EXTERNAL: Final = 0x28
_OID: Final = 0x06
_SINGLE_ASN1: Final = 0xA0
_AARQ: Final = 0x60
_AARE: Final = 0x61
_ABRT: Final = 0x64
_INVOKE: Final = 0xA1
_RRL: Final = 0xA2
_RE: Final = 0xA3
_REJECT: Final = 0xA4
_RRNL: Final = 0xA7
_INTEGER: Final = 0x02
_NULL: Final = 0x05
_SEQUENCE: Final = 0x30

_TYPES: Final = {t.value: t for t in TcapMessageType}
_ABORT: Final = TcapMessageType.ABORT
_UNI: Final = TcapMessageType.UNIDIRECTIONAL
# Which transaction ids each message type carries (Q.773 §3.1, table 3).
_TIDS: Final = {
    TcapMessageType.UNIDIRECTIONAL: (False, False),
    TcapMessageType.BEGIN: (True, False),
    TcapMessageType.END: (False, True),
    TcapMessageType.CONTINUE: (True, True),
    TcapMessageType.ABORT: (False, True),
}

_BAD_TP: Final = PAbortCause.BADLY_FORMATTED_TRANSACTION_PORTION
_BAD_COMPONENT: Final = RejectProblem.GENERAL_BADLY_STRUCTURED_COMPONENT


_CE: Final = TcapComponentError


# ---------------------------------------------------------------------- decoding


def parse_tcap(
    buf: bytes,
    pos: int,
    end: int,
    decode_argument: ArgumentDecoder | None = None,
    decode_result: ResultDecoder | None = None,
) -> TcapMessage:
    """Decode the TCAP message that must fill ``buf[pos:end]`` exactly."""
    if pos >= end:
        raise TcapError("empty TCAP message", pos, PAbortCause.UNRECOGNIZED_MESSAGE_TYPE)
    kind = _TYPES.get(buf[pos])
    if kind is None:
        raise TcapError(f"message type tag 0x{buf[pos]:02x}", pos,
                        PAbortCause.UNRECOGNIZED_MESSAGE_TYPE)
    # read_tlv's fast path inline (the tag is a known low tag): a short length
    # that ends the buffer exactly; anything else takes the general reader.
    p = pos + 2
    if p <= end and buf[pos + 1] < 0x80 and p + buf[pos + 1] == end:
        stop = end
    else:
        _, p, stop, nxt = read_tlv(buf, pos, end, TcapError)
        if nxt != end:
            raise TcapError("octets after the TCAP message", nxt, _BAD_TP)
    want_otid, want_dtid = _TIDS[kind]
    otid = dtid = None
    if want_otid:
        n = buf[p + 1] if p + 1 < stop else 0
        if 1 <= n <= MAX_TID_OCTETS and buf[p] == _OTID and p + 2 + n <= stop:
            otid = buf[p + 2 : p + 2 + n]
            p += 2 + n
        else:
            otid, p = _tid(buf, p, stop, _OTID, "originating")
    if want_dtid:
        n = buf[p + 1] if p + 1 < stop else 0
        if 1 <= n <= MAX_TID_OCTETS and buf[p] == _DTID and p + 2 + n <= stop:
            dtid = buf[p + 2 : p + 2 + n]
            p += 2 + n
        else:
            dtid, p = _tid(buf, p, stop, _DTID, "destination")
    dialogue = None
    abort_cause = None
    components: tuple[Component, ...] = ()
    if kind is _ABORT:
        if p < stop:
            tag, s, e, p = read_tlv(buf, p, stop, TcapError)
            if tag == _PABORT:
                abort_cause = decode_integer(buf, s, e, TcapError) if e - s == 1 else -1
                if not 0 <= abort_cause <= 0x7F:
                    raise TcapError("P-AbortCause is not one octet", s, _BAD_TP)
            elif tag == _DIALOGUE_PORTION:
                dialogue = _dialogue(buf, s, e, kind)
            else:
                raise TcapError(f"abort reason tag 0x{tag:02x}", s - 2, _BAD_TP)
    else:
        if p < stop and buf[p] == _DIALOGUE_PORTION:
            # read_tlv inline, as above (and for the component portion).
            n = buf[p + 1] if p + 1 < stop else 0x80
            if n < 0x80 and p + 2 + n <= stop:
                s = p + 2
                e = p = s + n
            else:
                _, s, e, p = read_tlv(buf, p, stop, TcapError)
            # One cache per message type: an AARQ is valid in a Begin only,
            # so validity depends on it.
            cache = _DIALOGUE_CACHES[kind]
            key = buf[s:e]
            dialogue = cache.get(key)
            if dialogue is None:
                dialogue = _dialogue(buf, s, e, kind)
                if len(cache) >= DIALOGUE_CACHE_SIZE:
                    cache.clear()
                cache[key] = dialogue
        if p < stop and buf[p] == _COMPONENT_PORTION:
            n = buf[p + 1] if p + 1 < stop else 0x80
            if n < 0x80 and p + 2 + n <= stop:
                s = p + 2
                e = p = s + n
            else:
                _, s, e, p = read_tlv(buf, p, stop, TcapError)
            ac = None if dialogue is None else dialogue.application_context
            components = _components(buf, s, e, ac, decode_argument, decode_result)
        if kind is _UNI and not components:
            raise TcapError("unidirectional message without components", p, _BAD_TP)
    if p != stop:
        raise TcapError(f"unexpected tag 0x{buf[p]:02x} in {kind.name}", p,
                        PAbortCause.INCORRECT_TRANSACTION_PORTION)
    return _new(TcapMessage, (kind, otid, dtid, dialogue, components, abort_cause))


def _tid(buf: bytes, pos: int, end: int, tag: int, which: str) -> tuple[bytes, int]:
    if pos >= end or buf[pos] != tag:
        raise TcapError(f"missing {which} transaction id", pos,
                        PAbortCause.INCORRECT_TRANSACTION_PORTION)
    _, s, e, nxt = read_tlv(buf, pos, end, TcapError)
    if not 1 <= e - s <= MAX_TID_OCTETS:
        raise TcapError(f"{which} transaction id of {e - s} octets", pos, _BAD_TP)
    return buf[s:e], nxt


def _dialogue(buf: bytes, pos: int, end: int, kind: TcapMessageType) -> Dialogue:
    """[APPLICATION 11] contents: EXTERNAL { direct-reference, [0] PDU }."""
    tag, xs, xe, nxt = read_tlv(buf, pos, end, TcapError)
    if tag != _EXTERNAL or nxt != end:
        raise TcapError("dialogue portion is not one EXTERNAL", pos, _BAD_TP)
    tag, os_, oe, p = read_tlv(buf, xs, xe, TcapError)
    if tag != _OID:
        raise TcapError("dialogue EXTERNAL without direct-reference", xs, _BAD_TP)
    as_id = decode_oid(buf, os_, oe, TcapError)
    uni = kind is TcapMessageType.UNIDIRECTIONAL
    if as_id != (UNI_DIALOGUE_AS_ID if uni else DIALOGUE_AS_ID):
        raise TcapError(f"dialogue abstract syntax {as_id}", os_, _BAD_TP)
    if p >= xe:
        raise TcapError("dialogue EXTERNAL without single-ASN1-type", p, _BAD_TP)
    tag, s, e, p2 = read_tlv(buf, p, xe, TcapError)
    if tag != _SINGLE_ASN1 or p2 != xe:
        raise TcapError("dialogue EXTERNAL without single-ASN1-type", p, _BAD_TP)
    tag, ps, pe, p3 = read_tlv(buf, s, e, TcapError)
    if p3 != e:
        raise TcapError("octets after the dialogue PDU", p3, _BAD_TP)
    if uni:
        if tag != _AARQ:
            raise TcapError(f"unidialogue PDU tag 0x{tag:02x}", s, _BAD_TP)
        return _aarq(buf, ps, pe, DialogueKind.UNIDIRECTIONAL)
    if tag == _AARQ:
        if kind is not TcapMessageType.BEGIN:
            raise TcapError(f"AARQ in {kind.name}", s, _BAD_TP)
        return _aarq(buf, ps, pe, DialogueKind.REQUEST)
    if tag == _AARE:
        if kind not in (TcapMessageType.CONTINUE, TcapMessageType.END,
                        TcapMessageType.ABORT):
            raise TcapError(f"AARE in {kind.name}", s, _BAD_TP)
        return _aare(buf, ps, pe)
    if tag == _ABRT:
        if kind is not TcapMessageType.ABORT:
            raise TcapError(f"ABRT in {kind.name}", s, _BAD_TP)
        return _abrt(buf, ps, pe)
    raise TcapError(f"dialogue PDU tag 0x{tag:02x}", s, _BAD_TP)


def _version(buf: bytes, s: int, e: int) -> None:
    # protocol-version [0] IMPLICIT BIT STRING { version1 (0) }: 07 80.
    if e - s != 2 or buf[s + 1] & 0x80 == 0:
        raise TcapError("protocol version is not version1", s, _BAD_TP)


def _user_information(buf: bytes, p: int, end: int) -> tuple[bytes | None, int]:
    if p < end and buf[p] == 0xBE:
        _, s, e, p = read_tlv(buf, p, end, TcapError)
        return buf[s:e], p
    return None, p


def _ac_name(buf: bytes, p: int, end: int) -> tuple[tuple[int, ...], int]:
    tag, s, e, p = read_tlv(buf, p, end, TcapError)
    if tag != 0xA1:
        raise TcapError("dialogue PDU without application-context-name", s - 2, _BAD_TP)
    tag, os_, oe, inner = read_tlv(buf, s, e, TcapError)
    if tag != _OID or inner != e:
        raise TcapError("application-context-name is not one OID", s, _BAD_TP)
    return decode_oid(buf, os_, oe, TcapError), p


def _aarq(buf: bytes, p: int, end: int, kind: DialogueKind) -> Dialogue:
    version = False
    if p < end and buf[p] == 0x80:
        _, s, e, p = read_tlv(buf, p, end, TcapError)
        _version(buf, s, e)
        version = True
    ac, p = _ac_name(buf, p, end)
    info, p = _user_information(buf, p, end)
    if p != end:
        raise TcapError("unexpected field in AARQ", p, _BAD_TP)
    return Dialogue(kind, ac, version, user_information=info)


def _aare(buf: bytes, p: int, end: int) -> Dialogue:
    version = False
    if p < end and buf[p] == 0x80:
        _, s, e, p = read_tlv(buf, p, end, TcapError)
        _version(buf, s, e)
        version = True
    ac, p = _ac_name(buf, p, end)
    tag, s, e, p = read_tlv(buf, p, end, TcapError)
    if tag != 0xA2:
        raise TcapError("AARE without result", s - 2, _BAD_TP)
    result = _explicit_int(buf, s, e)
    tag, s, e, p = read_tlv(buf, p, end, TcapError)
    if tag != 0xA3:
        raise TcapError("AARE without result-source-diagnostic", s - 2, _BAD_TP)
    source, ds, de, inner = read_tlv(buf, s, e, TcapError)
    if source not in (0xA1, 0xA2) or inner != e:
        raise TcapError("result-source-diagnostic is neither user nor provider", s, _BAD_TP)
    diagnostic = (source & 0x0F, _explicit_int(buf, ds, de))
    info, p = _user_information(buf, p, end)
    if p != end:
        raise TcapError("unexpected field in AARE", p, _BAD_TP)
    return Dialogue(DialogueKind.RESPONSE, ac, version, result, diagnostic, user_information=info)


def _explicit_int(buf: bytes, s: int, e: int) -> int:
    tag, is_, ie, nxt = read_tlv(buf, s, e, TcapError)
    if tag != _INTEGER or nxt != e:
        raise TcapError("expected one INTEGER", s, _BAD_TP)
    return decode_integer(buf, is_, ie, TcapError)


def _abrt(buf: bytes, p: int, end: int) -> Dialogue:
    tag, s, e, p = read_tlv(buf, p, end, TcapError)
    if tag != 0x80:
        raise TcapError("ABRT without abort-source", s - 2, _BAD_TP)
    source = decode_integer(buf, s, e, TcapError)
    info, p = _user_information(buf, p, end)
    if p != end:
        raise TcapError("unexpected field in ABRT", p, _BAD_TP)
    return Dialogue(DialogueKind.ABORT, None, False, abort_source=source, user_information=info)


def _components(
    buf: bytes,
    p: int,
    end: int,
    ac: tuple[int, ...] | None,
    decode_argument: ArgumentDecoder | None,
    decode_result: ResultDecoder | None,
) -> tuple[Component, ...]:
    # The usual portion: one invoke or one returnResultLast filling it, with a
    # short length (what the loop below would find in one pass).
    if p + 2 <= end and buf[p + 1] < 0x80 and p + 2 + buf[p + 1] == end:
        tag = buf[p]
        if tag == _INVOKE:
            return (_invoke(buf, p + 2, end, ac, decode_argument),)
        if tag == _RRL:
            return (_return_result(buf, p + 2, end, True, ac, decode_result),)
    out: list[Component] = []
    while p < end:
        if len(out) == MAX_COMPONENTS:
            raise _CE(f"more than {MAX_COMPONENTS} components", p,
                            PAbortCause.RESOURCE_LIMITATION)
        # read_tlv's fast path inline: low tag, short length.
        tag = buf[p]
        n = buf[p + 1] if p + 1 < end else 0x80
        if n < 0x80 and p + 2 + n <= end and tag & 0x1F != 0x1F:
            s = p + 2
            e = p = s + n
        else:
            tag, s, e, p = read_tlv(buf, p, end, _CE)
        if tag == _INVOKE:
            out.append(_invoke(buf, s, e, ac, decode_argument))
        elif tag in (_RRL, _RRNL):
            out.append(_return_result(buf, s, e, tag == _RRL, ac, decode_result))
        elif tag == _RE:
            out.append(_return_error(buf, s, e))
        elif tag == _REJECT:
            out.append(_reject(buf, s, e))
        else:
            raise _CE(f"component tag 0x{tag:02x}", s - 2, None,
                            RejectProblem.GENERAL_UNRECOGNIZED_COMPONENT)
    if not out:
        raise _CE("empty component portion", end, None, _BAD_COMPONENT)
    return tuple(out)


def _invoke_id(buf: bytes, p: int, end: int) -> tuple[int, int]:
    tag, s, e, p = read_tlv(buf, p, end, _CE)
    if tag != _INTEGER:
        raise _CE("component without invoke id", s - 2, None,
                        RejectProblem.GENERAL_MISTYPED_COMPONENT)
    value = decode_integer(buf, s, e, _CE)
    if not -128 <= value <= 127:
        raise _CE(f"invoke id {value}", s, None, _BAD_COMPONENT)
    return value, p


def _code(
    buf: bytes, p: int, end: int, what: str
) -> tuple[int | None, tuple[int, ...] | None, int]:
    """A local (INTEGER) or global (OID) operation or error code."""
    tag, s, e, p = read_tlv(buf, p, end, _CE)
    if tag == _INTEGER:
        return decode_integer(buf, s, e, _CE), None, p
    if tag == _OID:
        return None, decode_oid(buf, s, e, _CE), p
    raise _CE(f"{what} is neither local nor global", s - 2, None,
                    RejectProblem.GENERAL_MISTYPED_COMPONENT)


def _invoke(buf: bytes, p: int, end: int, ac: tuple[int, ...] | None,
            decode_argument: ArgumentDecoder | None) -> Invoke:
    # Fast path: one-octet invoke id and local opcode (02 01 xx), as MAP sends.
    if p + 3 <= end and buf[p] == _INTEGER and buf[p + 1] == 1:
        invoke_id = buf[p + 2] - 256 if buf[p + 2] > 127 else buf[p + 2]
        p += 3
    else:
        invoke_id, p = _invoke_id(buf, p, end)
    linked = None
    if p < end and buf[p] == 0x80:
        _, s, e, p = read_tlv(buf, p, end, _CE)
        linked = decode_integer(buf, s, e, _CE)
    if p >= end:
        raise _CE("invoke without operation code", p, None, _BAD_COMPONENT)
    global_op = None
    if p + 3 <= end and buf[p] == _INTEGER and buf[p + 1] == 1:
        opcode: int | None = buf[p + 2] - 256 if buf[p + 2] > 127 else buf[p + 2]
        p += 3
    else:
        opcode, global_op, p = _code(buf, p, end, "operation code")
    parameter = argument = None
    if p < end:
        start = p
        if not (p + 1 < end and buf[p + 1] < 0x80 and p + 2 + buf[p + 1] == end
                and buf[p] & 0x1F != 0x1F):
            _, _, _, p = read_tlv(buf, p, end, _CE)
            if p != end:
                raise _CE("octets after the invoke parameter", p, None, _BAD_COMPONENT)
        parameter = buf[start:end]
        if opcode is not None and decode_argument is not None:
            argument = decode_argument(opcode, buf, start, end, ac)
    return _new(Invoke, (invoke_id, opcode, parameter, argument, linked, global_op))


def _return_result(buf: bytes, p: int, end: int, last: bool, ac: tuple[int, ...] | None,
                   decode_result: ResultDecoder | None) -> ReturnResult:
    if p + 3 <= end and buf[p] == _INTEGER and buf[p + 1] == 1:
        invoke_id = buf[p + 2] - 256 if buf[p + 2] > 127 else buf[p + 2]
        p += 3
    else:
        invoke_id, p = _invoke_id(buf, p, end)
    if p == end:
        return _new(ReturnResult, (invoke_id, last, None, None, None, None))
    tag, s, e, p = read_tlv(buf, p, end, _CE)
    if tag != _SEQUENCE or p != end:
        raise _CE("return result is not invoke id + SEQUENCE", s - 2, None,
                        RejectProblem.GENERAL_MISTYPED_COMPONENT)
    global_op = None
    if s + 3 <= e and buf[s] == _INTEGER and buf[s + 1] == 1:
        opcode: int | None = buf[s + 2] - 256 if buf[s + 2] > 127 else buf[s + 2]
        q = s + 3
    else:
        opcode, global_op, q = _code(buf, s, e, "operation code")
    parameter = result = None
    if q < e:
        start = q
        _, _, _, q = read_tlv(buf, q, e, _CE)
        if q != e:
            raise _CE("octets after the result parameter", q, None, _BAD_COMPONENT)
        parameter = buf[start:e]
        if opcode is not None and decode_result is not None:
            result = decode_result(opcode, buf, start, e, ac)
    return _new(ReturnResult, (invoke_id, last, opcode, parameter, result, global_op))


def _return_error(buf: bytes, p: int, end: int) -> ReturnError:
    invoke_id, p = _invoke_id(buf, p, end)
    if p >= end:
        raise _CE("return error without error code", p, None, _BAD_COMPONENT)
    code, global_code, p = _code(buf, p, end, "error code")
    parameter = None
    if p < end:
        start = p
        _, _, _, p = read_tlv(buf, p, end, _CE)
        if p != end:
            raise _CE("octets after the error parameter", p, None, _BAD_COMPONENT)
        parameter = buf[start:end]
    return ReturnError(invoke_id, code, parameter, global_code)


def _reject(buf: bytes, p: int, end: int) -> Reject:
    tag, s, e, p = read_tlv(buf, p, end, _CE)
    if tag == _INTEGER:
        invoke_id: int | None = decode_integer(buf, s, e, _CE)
    elif tag == _NULL and e == s:
        invoke_id = None
    else:
        raise _CE("reject without invoke id", s - 2, None, _BAD_COMPONENT)
    tag, s, e, p = read_tlv(buf, p, end, _CE)
    if tag not in (0x80, 0x81, 0x82, 0x83) or p != end:
        raise _CE("reject without one problem", s - 2, None, _BAD_COMPONENT)
    return Reject(invoke_id, tag & 0x0F, decode_integer(buf, s, e, _CE))


def decode_tcap(data: bytes | bytearray | memoryview) -> TcapMessage:
    """Decode one TCAP message without MAP argument decoding. Raises TcapError."""
    buf = bytes(data)
    return parse_tcap(buf, 0, len(buf))


# ---------------------------------------------------------------------- encoding


def _encode_int(tag: int, value: int) -> bytes:
    try:
        return tlv(tag, encode_integer(value))
    except ValueError as exc:
        raise EncodeError(str(exc)) from None


def _encode_oid(oid: tuple[int, ...]) -> bytes:
    try:
        return tlv(_OID, encode_oid(oid))
    except ValueError as exc:
        raise EncodeError(str(exc)) from None


def _encode_code(local: int | None, global_: tuple[int, ...] | None, what: str) -> bytes:
    if (local is None) == (global_ is None):
        raise EncodeError(f"{what}: exactly one of a local or a global code")
    return _encode_int(_INTEGER, local) if local is not None else _encode_oid(global_ or ())


def _encode_dialogue(d: Dialogue) -> bytes:
    version = tlv(0x80, b"\x07\x80") if d.protocol_version else b""
    info = b"" if d.user_information is None else tlv(0xBE, d.user_information)

    def ac() -> bytes:
        if d.application_context is None:
            raise EncodeError(f"{d.kind.value} needs an application context")
        return tlv(0xA1, _encode_oid(d.application_context))

    match d.kind:
        case DialogueKind.REQUEST | DialogueKind.UNIDIRECTIONAL:
            pdu = tlv(_AARQ, version + ac() + info)
        case DialogueKind.RESPONSE:
            if d.result is None or d.diagnostic is None or d.diagnostic[0] not in (1, 2):
                raise EncodeError("AARE needs a result and a (user|provider) diagnostic")
            diag = tlv(0xA0 | d.diagnostic[0], _encode_int(_INTEGER, d.diagnostic[1]))
            pdu = tlv(_AARE, version + ac() + tlv(0xA2, _encode_int(_INTEGER, d.result))
                      + tlv(0xA3, diag) + info)
        case DialogueKind.ABORT:
            if d.abort_source is None:
                raise EncodeError("ABRT needs an abort source")
            pdu = tlv(_ABRT, _encode_int(0x80, d.abort_source) + info)
    as_id = UNI_DIALOGUE_AS_ID if d.kind is DialogueKind.UNIDIRECTIONAL else DIALOGUE_AS_ID
    return tlv(_DIALOGUE_PORTION, tlv(_EXTERNAL, _encode_oid(as_id) + tlv(_SINGLE_ASN1, pdu)))


def _encode_component(c: Component) -> bytes:
    match c:
        case Invoke():
            linked = b"" if c.linked_id is None else _encode_int(0x80, c.linked_id)
            return tlv(_INVOKE, _encode_int(_INTEGER, c.invoke_id) + linked
                       + _encode_code(c.opcode, c.global_opcode, "invoke")
                       + (c.parameter or b""))
        case ReturnResult():
            body = _encode_int(_INTEGER, c.invoke_id)
            if c.opcode is not None or c.global_opcode is not None:
                body += tlv(_SEQUENCE, _encode_code(c.opcode, c.global_opcode, "result")
                            + (c.parameter or b""))
            elif c.parameter is not None:
                raise EncodeError("a result parameter needs its operation code")
            return tlv(_RRL if c.last else _RRNL, body)
        case ReturnError():
            return tlv(_RE, _encode_int(_INTEGER, c.invoke_id)
                       + _encode_code(c.error_code, c.global_error, "return error")
                       + (c.parameter or b""))
        case Reject():
            if not 0 <= c.problem_type <= 3:
                raise EncodeError(f"reject problem type {c.problem_type}")
            invoke = b"\x05\x00" if c.invoke_id is None else _encode_int(_INTEGER, c.invoke_id)
            return tlv(_REJECT, invoke + _encode_int(0x80 | c.problem_type, c.problem_code))
    raise EncodeError(f"not a component: {type(c).__name__}")  # pragma: no cover


def encode_tcap(message: TcapMessage) -> bytes:
    """The BER encoding of ``message``. Raises EncodeError when a field the
    message type requires is missing or one it forbids is present."""
    want_otid, want_dtid = _TIDS[message.kind]
    body = b""
    for want, tid, tag, which in ((want_otid, message.otid, _OTID, "otid"),
                                  (want_dtid, message.dtid, _DTID, "dtid")):
        if want != (tid is not None):
            raise EncodeError(f"{message.kind.name} {'needs' if want else 'has no'} {which}")
        if tid is not None:
            if not 1 <= len(tid) <= MAX_TID_OCTETS:
                raise EncodeError(f"{which} of {len(tid)} octets")
            body += tlv(tag, tid)
    if message.kind is TcapMessageType.ABORT:
        if message.components:
            raise EncodeError("an Abort carries no components")
        if message.abort_cause is not None and message.dialogue is not None:
            raise EncodeError("an Abort carries a P-AbortCause or a dialogue, not both")
        if message.abort_cause is not None:
            body += _encode_int(_PABORT, message.abort_cause)
    if message.dialogue is not None:
        body += _encode_dialogue(message.dialogue)
    if message.components:
        if len(message.components) > MAX_COMPONENTS:
            raise EncodeError(f"more than {MAX_COMPONENTS} components")
        body += tlv(_COMPONENT_PORTION,
                    b"".join(_encode_component(c) for c in message.components))
    elif message.kind is TcapMessageType.UNIDIRECTIONAL:
        raise EncodeError("a Unidirectional message needs components")
    return tlv(message.kind, body)
