"""MAP argument and result codec (3GPP TS 29.002 §17.6-17.7), hand-written.

Theory of operation
-------------------
The TCAP decoder hands each invoke's parameter (a complete BER TLV, given as
offsets into the message buffer) to :func:`decode_argument` with the local
opcode and the dialogue's application context. A table maps the opcode to one
small function that walks the argument's SEQUENCE and keeps the fields of the
matching :mod:`herald.signaling.map_types` class; unknown fields are skipped
(MAP types are extensible: ``...`` markers), known ones are type- and
size-checked. Operations not in the table, and dialogues under a non-MAP
application context (CAP shares opcode numbers), decode to None.

Versions differ in shape, not just content: cancelLocation v3 is ``[3]``-tagged
while v1/v2 is the bare Identity; sendAuthenticationInfo v2 is the bare IMSI;
updateLocation results may be the bare hlr-Number (v2). The decoders branch on
the outer tag, which is what actually arrived, rather than on the AC version.

Failures raise :class:`~herald.signaling.errors.MapError` (answer: a Reject
with mistypedParameter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from herald.signaling._ber import decode_integer, encode_integer, read_tlv, tlv
from herald.signaling._digits import decode_digits, decode_tbcd, encode_tbcd
from herald.signaling.errors import EncodeError, MapError, RejectProblem
from herald.signaling.map_ops import MAP_AC_PREFIX
from herald.signaling.map_ops import MapOperation as Op
from herald.signaling.map_types import (
    AddressString,
    AnyTimeInterrogationArg,
    CancelLocationArg,
    ForwardSmArg,
    InsertSubscriberDataArg,
    MapArgument,
    MapResult,
    ProvideRoamingNumberArg,
    ProvideSubscriberInfoArg,
    ProvideSubscriberLocationArg,
    ReportSmDeliveryStatusArg,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SendAuthenticationInfoArg,
    SendImsiArg,
    SendRoutingInfoArg,
    SmRpDa,
    SmRpDaKind,
    SmRpOa,
    SmRpOaKind,
    UpdateLocationArg,
    UpdateLocationRes,
)
from herald.signaling.sms import decode_tpdu, encode_tpdu

__all__ = [
    "decode_argument",
    "decode_result",
    "decode_tpdu",
    "encode_argument",
    "encode_result",
    "encode_tpdu",
]

#: TS 29.002 §17.7.8: maxAddressLength, maxISDN-AddressLength (octets).
MAX_ADDRESS_OCTETS: Final = 20
MAX_ISDN_ADDRESS_OCTETS: Final = 9
#: TS 29.002 §17.7.8: IMSI ::= TBCD-STRING (SIZE (3..8)); LMSI (SIZE (4)).
IMSI_OCTETS: Final = (3, 8)
LMSI_OCTETS: Final = 4
#: Fields walked in one SEQUENCE (known and skipped extensions together).
MAX_FIELDS: Final = 48
#: AddressStrings remembered by their encoding (service centres, HLR numbers
#: repeat on every message); bounded like the SCCP address cache.
ADDRESS_CACHE_SIZE: Final = 1024

_BAD: Final = RejectProblem.INVOKE_MISTYPED_PARAMETER
_Span = tuple[int, int, int]  # tag, content start, content end

_ADDRESS_CACHE: Final[dict[bytes, AddressString]] = {}

# Values on the hot path are built with every field given to tuple.__new__
# (see herald.signaling.codec._new).
_new: Final = tuple.__new__


# ------------------------------------------------------------------ primitives


def _outer(buf: bytes, start: int, end: int, tag: int, what: str) -> tuple[int, int]:
    t, s, e, nxt = read_tlv(buf, start, end, MapError)
    if t != tag:
        raise MapError(f"{what}: expected tag 0x{tag:02x}, got 0x{t:02x}", start)
    if nxt != end:
        raise MapError(f"{what}: octets after the value", nxt)
    return s, e


def _children(buf: bytes, s: int, e: int) -> list[_Span]:
    if e - s > 2 * MAX_FIELDS:
        return _children_bounded(buf, s, e)
    # Every TLV takes at least 2 octets: this many octets cannot hold more
    # than MAX_FIELDS fields, so the loop needs no count.
    out: list[_Span] = []
    while s < e:
        # Inline fast path of read_tlv: low tag number, short definite length.
        n = buf[s + 1] if s + 1 < e else 0x80
        t = s + 2 + n
        if n < 0x80 and t <= e and buf[s] & 0x1F != 0x1F:
            out.append((buf[s], s + 2, t))
            s = t
        else:
            tag, cs, ce, s = read_tlv(buf, s, e, MapError)
            out.append((tag, cs, ce))
    return out


def _children_bounded(buf: bytes, s: int, e: int) -> list[_Span]:
    out: list[_Span] = []
    while s < e:
        if len(out) == MAX_FIELDS:
            raise MapError(f"more than {MAX_FIELDS} fields", s)
        tag, cs, ce, s = read_tlv(buf, s, e, MapError)
        out.append((tag, cs, ce))
    return out


def _by_tag(fields: list[_Span], known: frozenset[int], at: int) -> dict[int, tuple[int, int]]:
    found: dict[int, tuple[int, int]] = {}
    for tag, s, e in fields:
        if tag in known:
            if tag in found:
                raise MapError(f"field 0x{tag:02x} repeated", s)
            found[tag] = (s, e)
    return found


def _sequence(buf: bytes, start: int, end: int, what: str) -> list[_Span]:
    """The fields of the SEQUENCE that must fill ``buf[start:end]``."""
    if start + 1 < end and buf[start] == 0x30 and buf[start + 1] < 0x80 and (
            start + 2 + buf[start + 1] == end):
        return _children(buf, start + 2, end)  # short definite length: the usual case
    return _children(buf, *_outer(buf, start, end, 0x30, what))


def _need(found: dict[int, tuple[int, int]], tag: int, what: str, at: int) -> tuple[int, int]:
    span = found.get(tag)
    if span is None:
        raise MapError(f"missing {what}", at)
    return span


def _imsi(buf: bytes, s: int, e: int) -> str:
    if not IMSI_OCTETS[0] <= e - s <= IMSI_OCTETS[1]:
        raise MapError(f"IMSI of {e - s} octets", s)
    digits = decode_digits(buf[s:e])
    if digits is None:
        raise MapError("IMSI is not TBCD digits", s)
    return digits


def _lmsi(buf: bytes, s: int, e: int) -> bytes:
    if e - s != LMSI_OCTETS:
        raise MapError(f"LMSI of {e - s} octets", s)
    return buf[s:e]


def _address(buf: bytes, s: int, e: int, isdn: bool = True, cache: bool = True) -> AddressString:
    """TS 29.002 §17.7.8 (ISDN-)AddressString: ext/TON/NPI octet + TBCD.

    ``cache``: remember it by its encoding (node addresses: service centres,
    HLRs, VLRs repeat); subscriber numbers are not cached, so that a stream
    of distinct MSISDNs cannot flush the node addresses out.
    """
    if cache:
        raw = buf[s:e]
        cached = _ADDRESS_CACHE.get(raw)
        if cached is not None and (not isdn or e - s <= MAX_ISDN_ADDRESS_OCTETS):
            return cached
    limit = MAX_ISDN_ADDRESS_OCTETS if isdn else MAX_ADDRESS_OCTETS
    if not 1 <= e - s <= limit:
        raise MapError(f"address of {e - s} octets (1..{limit})", s)
    head = buf[s]
    if not head & 0x80:
        raise MapError("address with the extension bit clear", s)
    digits = decode_tbcd(buf[s + 1 : e])
    if digits is None:
        raise MapError("address digits are not TBCD", s + 1)
    value = _new(AddressString, (digits, (head >> 4) & 0x07, head & 0x0F))
    if cache:
        if len(_ADDRESS_CACHE) >= ADDRESS_CACHE_SIZE:
            _ADDRESS_CACHE.clear()
        _ADDRESS_CACHE[raw] = value
    return value


def _int(buf: bytes, s: int, e: int) -> int:
    return decode_integer(buf, s, e, MapError)


def _null(s: int, e: int) -> None:
    if e != s:
        raise MapError("NULL with contents", s)


def _bool(buf: bytes, s: int, e: int) -> bool:
    if e - s != 1:
        raise MapError("BOOLEAN is not one octet", s)
    return buf[s] != 0


# ------------------------------------------------------------------- arguments


def _sri_sm(buf: bytes, start: int, end: int) -> RoutingInfoForSmArg:
    # One pass over the fields, dispatching on the context tag (TS 29.002
    # §7.6.8: msisdn [0], sm-RP-PRI [1], serviceCentreAddress [2],
    # sm-deliveryNotIntended [10], imsi [12]); unknown tags are extensions.
    msisdn = sca = None
    pri: bool | None = None
    dni = None
    imsi = None
    for tag, s, e in _sequence(buf, start, end, "RoutingInfoForSM-Arg"):
        if tag == 0x80:
            if msisdn is not None:
                raise MapError("msisdn repeated", s)
            msisdn = _address(buf, s, e, True, False)  # a subscriber: not cached
        elif tag == 0x81:
            if pri is not None:
                raise MapError("sm-RP-PRI repeated", s)
            pri = _bool(buf, s, e)
        elif tag == 0x82:
            if sca is not None:
                raise MapError("serviceCentreAddress repeated", s)
            sca = _address(buf, s, e, False)
        elif tag == 0x8A:
            if dni is not None:
                raise MapError("sm-deliveryNotIntended repeated", s)
            dni = _int(buf, s, e)
            if dni not in (0, 1):  # onlyIMSI-requested, onlyMCC-MNC-requested
                raise MapError(f"sm-deliveryNotIntended {dni}", s)
        elif tag == 0x8C:
            if imsi is not None:
                raise MapError("imsi repeated", s)
            imsi = _imsi(buf, s, e)
    if msisdn is None or pri is None or sca is None:
        raise MapError("RoutingInfoForSM-Arg without msisdn, sm-RP-PRI and "
                       "serviceCentreAddress", start)
    return _new(RoutingInfoForSmArg, (msisdn, pri, sca, dni, imsi))


_DA_KINDS: Final = {k.value: k for k in SmRpDaKind}
# Members as module constants: an Enum class attribute read is costly.
_DA_IMSI: Final = SmRpDaKind.IMSI
_DA_LMSI: Final = SmRpDaKind.LMSI
_DA_NONE: Final = SmRpDaKind.NONE
_DA_ROAMING_NUMBER: Final = SmRpDaKind.ROAMING_NUMBER
_OA_NONE: Final = SmRpOaKind.NONE
_OA_MSISDN: Final = SmRpOaKind.MSISDN
_OA_KINDS: Final = {k.value: k for k in SmRpOaKind}
#: sm-RP-OA values remembered by their encoding (the same few SMSCs send).
OA_CACHE_SIZE: Final = 256
_OA_CACHE: Final[dict[bytes, SmRpOa]] = {}


def _forward_sm(buf: bytes, start: int, end: int) -> ForwardSmArg:
    fields = _sequence(buf, start, end, "ForwardSM-Arg")
    if len(fields) < 3:
        raise MapError("forwardSM without sm-RP-DA, sm-RP-OA and sm-RP-UI", start)
    (dt, ds, de), (ot, os_, oe), (ut, us, ue) = fields[:3]
    da_kind = _DA_KINDS.get(dt & 0x1F)
    if dt & 0xE0 != 0x80 or da_kind is None:
        raise MapError(f"sm-RP-DA tag 0x{dt:02x}", ds)
    if da_kind is _DA_IMSI:
        da = _new(SmRpDa, (da_kind, _imsi(buf, ds, de), None, None))
    elif da_kind is _DA_LMSI:
        da = _new(SmRpDa, (da_kind, None, _lmsi(buf, ds, de), None))
    elif da_kind is _DA_NONE:
        _null(ds, de)
        da = _new(SmRpDa, (da_kind, None, None, None))
    else:
        isdn = da_kind is _DA_ROAMING_NUMBER
        da = _new(SmRpDa, (da_kind, None, None, _address(buf, ds, de, isdn=isdn)))
    oa_raw = buf[os_ - 2 : oe] if os_ >= 2 and buf[os_ - 2] == ot else b""
    cached = _OA_CACHE.get(oa_raw) if oa_raw else None
    if cached is not None:
        oa = cached
    else:
        oa_kind = _OA_KINDS.get(ot & 0x1F)
        if ot & 0xE0 != 0x80 or oa_kind is None:
            raise MapError(f"sm-RP-OA tag 0x{ot:02x}", os_)
        if oa_kind is _OA_NONE:
            _null(os_, oe)
            oa = _new(SmRpOa, (oa_kind, None))
        elif oa_kind is _OA_MSISDN:  # a subscriber (MO): not cached
            oa = _new(SmRpOa, (oa_kind, _address(buf, os_, oe, cache=False)))
        else:
            oa = _new(SmRpOa, (oa_kind, _address(buf, os_, oe, isdn=False)))
            if oa_raw:
                if len(_OA_CACHE) >= OA_CACHE_SIZE:
                    _OA_CACHE.clear()
                _OA_CACHE[oa_raw] = oa
    if ut != 0x04:
        raise MapError("sm-RP-UI is not an OCTET STRING", us)
    more = False
    for tag, fs, fe in fields[3:]:
        if tag == 0x05:
            _null(fs, fe)
            more = True
    ui = buf[us:ue]
    return _new(ForwardSmArg, (da, oa, ui, decode_tpdu(ui, us), more))


def _requested_info(buf: bytes, s: int, e: int) -> tuple[bool, bool]:
    tags = {tag for tag, _, _ in _children(buf, s, e)}
    return 0x80 in tags, 0x81 in tags


def _psi(buf: bytes, start: int, end: int) -> ProvideSubscriberInfoArg:
    s, e = _outer(buf, start, end, 0x30, "ProvideSubscriberInfoArg")
    f = _by_tag(_children(buf, s, e), frozenset({0x80, 0x81, 0xA2}), s)
    imsi = _imsi(buf, *_need(f, 0x80, "imsi", s))
    lmsi = _lmsi(buf, *f[0x81]) if 0x81 in f else None
    loc, state = _requested_info(buf, *_need(f, 0xA2, "requestedInfo", s))
    return _new(ProvideSubscriberInfoArg, (imsi, lmsi, loc, state))


def _ati(buf: bytes, start: int, end: int) -> AnyTimeInterrogationArg:
    s, e = _outer(buf, start, end, 0x30, "AnyTimeInterrogationArg")
    f = _by_tag(_children(buf, s, e), frozenset({0xA0, 0xA1, 0x83}), s)
    is_, ie = _need(f, 0xA0, "subscriberIdentity", s)
    tag, cs, ce, nxt = read_tlv(buf, is_, ie, MapError)
    if nxt != ie or tag not in (0x80, 0x81):
        raise MapError("subscriberIdentity is neither imsi nor msisdn", is_)
    imsi = _imsi(buf, cs, ce) if tag == 0x80 else None
    msisdn = _address(buf, cs, ce, cache=False) if tag == 0x81 else None
    loc, state = _requested_info(buf, *_need(f, 0xA1, "requestedInfo", s))
    scf = _address(buf, *_need(f, 0x83, "gsmSCF-Address", s))
    return _new(AnyTimeInterrogationArg, (scf, imsi, msisdn, loc, state))


def _sri(buf: bytes, start: int, end: int) -> SendRoutingInfoArg:
    s, e = _outer(buf, start, end, 0x30, "SendRoutingInfoArg")
    f = _by_tag(_children(buf, s, e), frozenset({0x80, 0x83, 0x86}), s)
    msisdn = _address(buf, *_need(f, 0x80, "msisdn", s), cache=False)
    itype = _int(buf, *f[0x83]) if 0x83 in f else None
    gmsc = _address(buf, *f[0x86]) if 0x86 in f else None
    return _new(SendRoutingInfoArg, (msisdn, itype, gmsc))


def _update_location(buf: bytes, start: int, end: int) -> UpdateLocationArg:
    fields = _sequence(buf, start, end, "UpdateLocationArg")
    if len(fields) < 3 or (fields[0][0], fields[1][0], fields[2][0]) != (0x04, 0x81, 0x04):
        raise MapError("UpdateLocationArg is not imsi, msc-Number, vlr-Number", start)
    (_, i_s, i_e), (_, m_s, m_e), (_, v_s, v_e) = fields[:3]
    lmsi = None
    for tag, fs, fe in fields[3:]:
        if tag == 0x8A:
            lmsi = _lmsi(buf, fs, fe)
    return _new(UpdateLocationArg, (_imsi(buf, i_s, i_e), _address(buf, m_s, m_e),
                                    _address(buf, v_s, v_e), lmsi))


def _isd(buf: bytes, start: int, end: int) -> InsertSubscriberDataArg:
    s, e = _outer(buf, start, end, 0x30, "InsertSubscriberDataArg")
    f = _by_tag(_children(buf, s, e), frozenset({0x80, 0x81}), s)
    imsi = _imsi(buf, *f[0x80]) if 0x80 in f else None
    msisdn = _address(buf, *f[0x81], cache=False) if 0x81 in f else None
    return _new(InsertSubscriberDataArg, (imsi, msisdn))


def _identity(buf: bytes, tag: int, s: int, e: int) -> tuple[str, bytes | None]:
    """Identity ::= CHOICE { imsi IMSI, imsi-WithLMSI SEQUENCE {imsi, lmsi} }."""
    if tag == 0x04:
        return _imsi(buf, s, e), None
    if tag == 0x30:
        fields = _children(buf, s, e)
        if len(fields) < 2 or fields[0][0] != 0x04 or fields[1][0] != 0x04:
            raise MapError("IMSI-WithLMSI is not imsi, lmsi", s)
        return _imsi(buf, fields[0][1], fields[0][2]), _lmsi(buf, fields[1][1], fields[1][2])
    raise MapError(f"Identity tag 0x{tag:02x}", s)


def _cancel_location(buf: bytes, start: int, end: int) -> CancelLocationArg:
    tag, s, e, nxt = read_tlv(buf, start, end, MapError)
    if nxt != end:
        raise MapError("octets after CancelLocationArg", nxt)
    if tag != 0xA3:  # v1/v2: the bare Identity
        imsi, lmsi = _identity(buf, tag, s, e)
        return _new(CancelLocationArg, (imsi, lmsi, None, False))
    fields = _children(buf, s, e)
    if not fields:
        raise MapError("CancelLocationArg without identity", s)
    imsi, lmsi = _identity(buf, *fields[0])
    ctype = None
    for t, fs, fe in fields[1:]:
        if t == 0x0A:
            ctype = _int(buf, fs, fe)
    return _new(CancelLocationArg, (imsi, lmsi, ctype, True))


def _prn(buf: bytes, start: int, end: int) -> ProvideRoamingNumberArg:
    s, e = _outer(buf, start, end, 0x30, "ProvideRoamingNumberArg")
    f = _by_tag(_children(buf, s, e), frozenset({0x80, 0x81, 0x82}), s)
    imsi = _imsi(buf, *_need(f, 0x80, "imsi", s))
    msc = _address(buf, *_need(f, 0x81, "msc-Number", s))
    msisdn = _address(buf, *f[0x82], cache=False) if 0x82 in f else None
    return _new(ProvideRoamingNumberArg, (imsi, msc, msisdn))


def _sai(buf: bytes, start: int, end: int) -> SendAuthenticationInfoArg:
    tag, s, e, nxt = read_tlv(buf, start, end, MapError)
    if nxt != end:
        raise MapError("octets after SendAuthenticationInfoArg", nxt)
    if tag == 0x04:  # v2: the bare IMSI
        return _new(SendAuthenticationInfoArg, (_imsi(buf, s, e), None, False))
    if tag != 0x30:
        raise MapError(f"SendAuthenticationInfoArg tag 0x{tag:02x}", start)
    f = _by_tag(_children(buf, s, e), frozenset({0x80, 0x02}), s)
    imsi = _imsi(buf, *_need(f, 0x80, "imsi", s))
    vectors = _int(buf, *_need(f, 0x02, "numberOfRequestedVectors", s))
    if not 1 <= vectors <= 5:  # NumberOfRequestedVectors ::= INTEGER (1..5)
        raise MapError(f"numberOfRequestedVectors {vectors}", f[0x02][0])
    return _new(SendAuthenticationInfoArg, (imsi, vectors, True))


def _send_imsi(buf: bytes, start: int, end: int) -> SendImsiArg:
    s, e = _outer(buf, start, end, 0x04, "sendIMSI argument")
    return _new(SendImsiArg, (_address(buf, s, e, cache=False),))


def _psl(buf: bytes, start: int, end: int) -> ProvideSubscriberLocationArg:
    s, e = _outer(buf, start, end, 0x30, "ProvideSubscriberLocation-Arg")
    fields = _children(buf, s, e)
    if len(fields) < 2 or fields[0][0] != 0x30 or fields[1][0] != 0x04:
        raise MapError("ProvideSubscriberLocation-Arg is not locationType, mlc-Number", s)
    lt = _by_tag(_children(buf, fields[0][1], fields[0][2]), frozenset({0x80}), s)
    estimate = _int(buf, *_need(lt, 0x80, "locationEstimateType", fields[0][1]))
    mlc = _address(buf, fields[1][1], fields[1][2])
    f = _by_tag(fields[2:], frozenset({0x82, 0x83}), s)
    imsi = _imsi(buf, *f[0x82]) if 0x82 in f else None
    msisdn = _address(buf, *f[0x83], cache=False) if 0x83 in f else None
    return _new(ProvideSubscriberLocationArg, (estimate, mlc, msisdn, imsi))


# TS 29.002 §17.7.6: SM-DeliveryOutcome ::= ENUMERATED {memoryCapacityExceeded (0),
# absentSubscriber (1), successfulTransfer (2)}.
_MAX_DELIVERY_OUTCOME: Final = 2


def _report_sm(buf: bytes, start: int, end: int) -> ReportSmDeliveryStatusArg:
    # msisdn, serviceCentreAddress and sm-DeliveryOutcome, untagged and in
    # this order (TS 29.002 §17.6.5); what follows is optional and tagged.
    s, e = _outer(buf, start, end, 0x30, "ReportSM-DeliveryStatusArg")
    fields = _children(buf, s, e)
    if len(fields) < 3 or [f[0] for f in fields[:3]] != [0x04, 0x04, 0x0A]:
        raise MapError("ReportSM-DeliveryStatusArg is not msisdn, serviceCentreAddress, "
                       "sm-DeliveryOutcome", s)
    outcome = _int(buf, fields[2][1], fields[2][2])
    if not 0 <= outcome <= _MAX_DELIVERY_OUTCOME:
        raise MapError(f"sm-DeliveryOutcome {outcome}", fields[2][1])
    return _new(ReportSmDeliveryStatusArg, (
        _address(buf, fields[0][1], fields[0][2], cache=False),
        _address(buf, fields[1][1], fields[1][2], isdn=False),
        outcome,
    ))


_ArgDecoder = Callable[[bytes, int, int], MapArgument]
_ARGUMENTS: Final[dict[int, _ArgDecoder]] = {
    Op.SEND_ROUTING_INFO_FOR_SM: _sri_sm,
    Op.MT_FORWARD_SM: _forward_sm,
    Op.MO_FORWARD_SM: _forward_sm,
    Op.PROVIDE_SUBSCRIBER_INFO: _psi,
    Op.ANY_TIME_INTERROGATION: _ati,
    Op.SEND_ROUTING_INFO: _sri,
    Op.UPDATE_LOCATION: _update_location,
    Op.INSERT_SUBSCRIBER_DATA: _isd,
    Op.CANCEL_LOCATION: _cancel_location,
    Op.PROVIDE_ROAMING_NUMBER: _prn,
    Op.SEND_AUTHENTICATION_INFO: _sai,
    Op.SEND_IMSI: _send_imsi,
    Op.PROVIDE_SUBSCRIBER_LOCATION: _psl,
    Op.REPORT_SM_DELIVERY_STATUS: _report_sm,
}


_AC_IS_MAP: Final[dict[tuple[int, ...], bool]] = {}


def _is_map(ac: tuple[int, ...] | None) -> bool:
    # No AC (MAP v1, or a Continue/End after the dialogue opened): decode by
    # opcode. A non-MAP AC (CAP reuses the opcode numbers): do not.
    if ac is None:
        return True
    known = _AC_IS_MAP.get(ac)
    if known is None:
        known = ac[:6] == MAP_AC_PREFIX
        if len(_AC_IS_MAP) >= ADDRESS_CACHE_SIZE:  # bounded like the other caches
            _AC_IS_MAP.clear()
        _AC_IS_MAP[ac] = known
    return known


def decode_argument(
    opcode: int, buf: bytes, start: int, end: int, ac: tuple[int, ...] | None = None
) -> MapArgument | None:
    """Decode the invoke parameter TLV ``buf[start:end]`` of operation
    ``opcode``; None for operations (or non-MAP dialogues) not decoded."""
    decoder = _ARGUMENTS.get(opcode)
    if decoder is None:
        return None
    if ac is not None and not (_AC_IS_MAP.get(ac) or _is_map(ac)):
        return None
    return decoder(buf, start, end)


# --------------------------------------------------------------------- results


def _sri_sm_res(buf: bytes, start: int, end: int) -> RoutingInfoForSmRes:
    fields = _sequence(buf, start, end, "RoutingInfoForSM-Res")
    if len(fields) < 2 or fields[0][0] != 0x04 or fields[1][0] != 0xA0:
        raise MapError("RoutingInfoForSM-Res is not imsi, locationInfoWithLMSI", start)
    imsi = _imsi(buf, fields[0][1], fields[0][2])
    inner = _children(buf, fields[1][1], fields[1][2])
    if not inner or inner[0][0] != 0x81:
        raise MapError("locationInfoWithLMSI without networkNode-Number", fields[1][1])
    node = _address(buf, inner[0][1], inner[0][2])
    lmsi = None
    if len(inner) > 1 and inner[1][0] == 0x04:
        lmsi = _lmsi(buf, inner[1][1], inner[1][2])
    return _new(RoutingInfoForSmRes, (imsi, node, lmsi))


def _ul_res(buf: bytes, start: int, end: int) -> UpdateLocationRes:
    tag, s, e, nxt = read_tlv(buf, start, end, MapError)
    if nxt != end:
        raise MapError("octets after UpdateLocationRes", nxt)
    if tag == 0x04:  # v2 CHOICE: the bare hlr-Number
        return _new(UpdateLocationRes, (_address(buf, s, e),))
    if tag != 0x30:
        raise MapError(f"UpdateLocationRes tag 0x{tag:02x}", start)
    fields = _children(buf, s, e)
    if not fields or fields[0][0] != 0x04:
        raise MapError("UpdateLocationRes without hlr-Number", s)
    return _new(UpdateLocationRes, (_address(buf, fields[0][1], fields[0][2]),))


_RESULTS: Final[dict[int, Callable[[bytes, int, int], MapResult]]] = {
    Op.SEND_ROUTING_INFO_FOR_SM: _sri_sm_res,
    Op.UPDATE_LOCATION: _ul_res,
}


def decode_result(
    opcode: int, buf: bytes, start: int, end: int, ac: tuple[int, ...] | None = None
) -> MapResult | None:
    """Decode a return-result parameter TLV, like :func:`decode_argument`."""
    decoder = _RESULTS.get(opcode)
    if decoder is None:
        return None
    if ac is not None and not (_AC_IS_MAP.get(ac) or _is_map(ac)):
        return None
    return decoder(buf, start, end)


# -------------------------------------------------------------------- encoding


def _enc_address(a: AddressString, isdn: bool = True) -> bytes:
    digits = encode_tbcd(a.digits)
    if digits is None or not 0 <= a.nature <= 7 or not 0 <= a.numbering_plan <= 15:
        raise EncodeError("address digits must be TBCD; nature 0..7, plan 0..15")
    raw = bytes((0x80 | (a.nature << 4) | a.numbering_plan,)) + digits
    if len(raw) > (MAX_ISDN_ADDRESS_OCTETS if isdn else MAX_ADDRESS_OCTETS):
        raise EncodeError(f"address of {len(a.digits)} digits is too long")
    return raw


def _enc_imsi(imsi: str) -> bytes:
    raw = encode_tbcd(imsi)
    # TS 29.002 §17.7.8: TBCD-STRING (SIZE (3..8)), i.e. 5..16 digits.
    if raw is None or not imsi.isdigit() or not 5 <= len(imsi) <= 16:
        raise EncodeError("an IMSI is 5..16 decimal digits")
    return raw


def _enc_lmsi(lmsi: bytes) -> bytes:
    if len(lmsi) != LMSI_OCTETS:
        raise EncodeError("an LMSI is 4 octets")
    return lmsi


def _enc_int(tag: int, value: int) -> bytes:
    try:
        return tlv(tag, encode_integer(value))
    except ValueError as exc:
        raise EncodeError(str(exc)) from None


def _opt(tag: int, value: bytes | None) -> bytes:
    return b"" if value is None else tlv(tag, value)


def encode_argument(arg: MapArgument) -> bytes:
    """The invoke parameter (complete TLV) for ``arg``. Raises EncodeError."""
    match arg:
        case RoutingInfoForSmArg():
            return tlv(0x30, tlv(0x80, _enc_address(arg.msisdn))
                       + tlv(0x81, b"\xff" if arg.sm_rp_pri else b"\x00")
                       + tlv(0x82, _enc_address(arg.service_centre, isdn=False))
                       + (b"" if arg.delivery_not_intended is None
                          else _enc_int(0x8A, arg.delivery_not_intended))
                       + _opt(0x8C, None if arg.imsi is None else _enc_imsi(arg.imsi)))
        case ForwardSmArg():
            return tlv(0x30, _enc_da(arg.da) + _enc_oa(arg.oa) + tlv(0x04, arg.user_data)
                       + (b"\x05\x00" if arg.more_messages else b""))
        case ProvideSubscriberInfoArg():
            return tlv(0x30, tlv(0x80, _enc_imsi(arg.imsi))
                       + _opt(0x81, None if arg.lmsi is None else _enc_lmsi(arg.lmsi))
                       + tlv(0xA2, _enc_requested(arg.location_requested, arg.state_requested)))
        case AnyTimeInterrogationArg():
            if arg.imsi is not None and arg.msisdn is None:
                ident = tlv(0x80, _enc_imsi(arg.imsi))
            elif arg.msisdn is not None and arg.imsi is None:
                ident = tlv(0x81, _enc_address(arg.msisdn))
            else:
                raise EncodeError("ATI names exactly one of imsi and msisdn")
            return tlv(0x30, tlv(0xA0, ident)
                       + tlv(0xA1, _enc_requested(arg.location_requested, arg.state_requested))
                       + tlv(0x83, _enc_address(arg.gsm_scf)))
        case SendRoutingInfoArg():
            return tlv(0x30, tlv(0x80, _enc_address(arg.msisdn))
                       + (b"" if arg.interrogation_type is None
                          else _enc_int(0x83, arg.interrogation_type))
                       + _opt(0x86, None if arg.gmsc is None else _enc_address(arg.gmsc)))
        case UpdateLocationArg():
            return tlv(0x30, tlv(0x04, _enc_imsi(arg.imsi))
                       + tlv(0x81, _enc_address(arg.msc_number))
                       + tlv(0x04, _enc_address(arg.vlr_number))
                       + _opt(0x8A, None if arg.lmsi is None else _enc_lmsi(arg.lmsi)))
        case InsertSubscriberDataArg():
            return tlv(0x30, _opt(0x80, None if arg.imsi is None else _enc_imsi(arg.imsi))
                       + _opt(0x81, None if arg.msisdn is None else _enc_address(arg.msisdn)))
        case CancelLocationArg():
            ident = tlv(0x04, _enc_imsi(arg.imsi))
            if arg.lmsi is not None:
                ident = tlv(0x30, ident + tlv(0x04, _enc_lmsi(arg.lmsi)))
            if not arg.version3:
                if arg.cancellation_type is not None:
                    raise EncodeError("cancellationType exists only in v3")
                return ident
            return tlv(0xA3, ident + (b"" if arg.cancellation_type is None
                                      else _enc_int(0x0A, arg.cancellation_type)))
        case ProvideRoamingNumberArg():
            return tlv(0x30, tlv(0x80, _enc_imsi(arg.imsi))
                       + tlv(0x81, _enc_address(arg.msc_number))
                       + _opt(0x82, None if arg.msisdn is None else _enc_address(arg.msisdn)))
        case SendAuthenticationInfoArg():
            if not arg.version3:
                return tlv(0x04, _enc_imsi(arg.imsi))
            vectors = 1 if arg.requested_vectors is None else arg.requested_vectors
            return tlv(0x30, tlv(0x80, _enc_imsi(arg.imsi)) + _enc_int(0x02, vectors))
        case SendImsiArg():
            return tlv(0x04, _enc_address(arg.msisdn))
        case ProvideSubscriberLocationArg():
            return tlv(0x30, tlv(0x30, _enc_int(0x80, arg.location_estimate_type))
                       + tlv(0x04, _enc_address(arg.mlc_number))
                       + _opt(0x82, None if arg.imsi is None else _enc_imsi(arg.imsi))
                       + _opt(0x83, None if arg.msisdn is None else _enc_address(arg.msisdn)))
        case ReportSmDeliveryStatusArg():
            return tlv(0x30, tlv(0x04, _enc_address(arg.msisdn))
                       + tlv(0x04, _enc_address(arg.service_centre, isdn=False))
                       + _enc_int(0x0A, arg.outcome))
    raise EncodeError(f"not a MAP argument: {type(arg).__name__}")  # pragma: no cover


def _enc_requested(location: bool, state: bool) -> bytes:
    return (b"\x80\x00" if location else b"") + (b"\x81\x00" if state else b"")


def _enc_da(da: SmRpDa) -> bytes:
    tag = 0x80 | da.kind
    if da.kind is SmRpDaKind.IMSI and da.imsi is not None:
        return tlv(tag, _enc_imsi(da.imsi))
    if da.kind is SmRpDaKind.LMSI and da.lmsi is not None:
        return tlv(tag, _enc_lmsi(da.lmsi))
    if da.kind is SmRpDaKind.NONE:
        return tlv(tag, b"")
    if da.address is not None and da.kind in (SmRpDaKind.SERVICE_CENTRE,
                                              SmRpDaKind.ROAMING_NUMBER):
        return tlv(tag, _enc_address(da.address, isdn=da.kind is SmRpDaKind.ROAMING_NUMBER))
    raise EncodeError(f"sm-RP-DA {da.kind.name} without its value")


def _enc_oa(oa: SmRpOa) -> bytes:
    tag = 0x80 | oa.kind
    if oa.kind is SmRpOaKind.NONE:
        return tlv(tag, b"")
    if oa.address is None:
        raise EncodeError(f"sm-RP-OA {oa.kind.name} without its address")
    return tlv(tag, _enc_address(oa.address, isdn=oa.kind is SmRpOaKind.MSISDN))


def encode_result(res: MapResult) -> bytes:
    """The return-result parameter (complete TLV) for ``res``."""
    match res:
        case RoutingInfoForSmRes():
            inner = tlv(0x81, _enc_address(res.network_node)) + _opt(
                0x04, None if res.lmsi is None else _enc_lmsi(res.lmsi))
            return tlv(0x30, tlv(0x04, _enc_imsi(res.imsi)) + tlv(0xA0, inner))
        case UpdateLocationRes():
            return tlv(0x30, tlv(0x04, _enc_address(res.hlr_number)))
    raise EncodeError(f"not a MAP result: {type(res).__name__}")  # pragma: no cover
