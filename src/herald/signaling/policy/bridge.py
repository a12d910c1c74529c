"""From the codec's decoded message to the engine's :class:`Facts`.

:func:`facts_from_message` reads a :class:`~herald.signaling.message.SignalingMessage`
(what :func:`herald.signaling.decode` returns) and flattens the parts the rules
use. The MAP fields come from the first invoke's decoded argument, or, for a
message that carries no invoke, from the first result's decoded result (the
SRI-SM answer with the IMSI and serving node). One extractor per argument type,
dispatched by type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from herald.signaling.map_ops import map_ac
from herald.signaling.map_types import (
    AddressString,
    AnyTimeInterrogationArg,
    CancelLocationArg,
    ForwardSmArg,
    InsertSubscriberDataArg,
    ProvideRoamingNumberArg,
    ProvideSubscriberInfoArg,
    ProvideSubscriberLocationArg,
    ReportSmDeliveryStatusArg,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SendAuthenticationInfoArg,
    SendImsiArg,
    SendRoutingInfoArg,
    SmRpDaKind,
    SmRpOaKind,
    UpdateLocationArg,
    UpdateLocationRes,
)
from herald.signaling.message import (
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    SignalingMessage,
)
from herald.signaling.policy.facts import ComponentKind, Direction, Facts

__all__ = ["facts_from_message"]


def _digits(address: AddressString | None) -> str:
    return "" if address is None else address.digits


def _lmsi(value: bytes | None) -> str:
    return "" if value is None else value.hex()


# Each extractor returns the MAP fields of Facts, in Facts' order:
# (imsi, msisdn, lmsi, msc_number, vlr_number, service_centre, sm_rp_da,
#  tp_pid, delivery_not_intended).
_Fields = tuple[str, str, str, str, str, str, SmRpDaKind | None, int | None, bool]
_NONE: Final[_Fields] = ("", "", "", "", "", "", None, None, False)
_MAP_FIELDS: Final = (
    "imsi",
    "msisdn",
    "lmsi",
    "msc_number",
    "vlr_number",
    "service_centre",
    "sm_rp_da",
    "tp_pid",
    "delivery_not_intended",
)
_HEAD_FIELDS: Final = (
    "time",
    "calling_gt",
    "called_gt",
    "calling_ssn",
    "called_ssn",
    "opc",
    "dpc",
    "direction",
    "sccp",
    "tcap",
    "otid",
    "dtid",
    "ac",
    "ac_other",
    "component",
    "opcode",
    "invokes",
    "global_opcode",
)
# facts_from_message builds Facts positionally: fail at import, not silently,
# if the two ever disagree.
if Facts._fields != _HEAD_FIELDS + _MAP_FIELDS:  # pragma: no cover
    raise ImportError("bridge.py and Facts disagree on the field order")


def _sri_sm(a: RoutingInfoForSmArg) -> _Fields:
    return (
        "",
        a.msisdn.digits,
        "",
        "",
        "",
        a.service_centre.digits,
        None,
        None,
        a.delivery_not_intended is not None,
    )


# Enum members as module constants (an Enum class attribute read is costly).
_OA_MSISDN: Final = SmRpOaKind.MSISDN
_OA_SERVICE_CENTRE: Final = SmRpOaKind.SERVICE_CENTRE


def _forward_sm(a: ForwardSmArg) -> _Fields:
    oa, da = a.oa, a.da
    oa_digits = _digits(oa.address)
    return (
        da.imsi or "",
        oa_digits if oa.kind == _OA_MSISDN else "",
        _lmsi(da.lmsi),
        "",
        "",
        oa_digits if oa.kind == _OA_SERVICE_CENTRE else "",
        da.kind,
        None if a.tpdu is None else a.tpdu.pid,
        False,
    )


def _psi(a: ProvideSubscriberInfoArg) -> _Fields:
    return (a.imsi, "", _lmsi(a.lmsi), "", "", "", None, None, False)


def _ati(a: AnyTimeInterrogationArg) -> _Fields:
    return (a.imsi or "", _digits(a.msisdn), "", "", "", "", None, None, False)


def _sri(a: SendRoutingInfoArg) -> _Fields:
    return ("", a.msisdn.digits, "", "", "", "", None, None, False)


def _ul(a: UpdateLocationArg) -> _Fields:
    return (
        a.imsi,
        "",
        _lmsi(a.lmsi),
        a.msc_number.digits,
        a.vlr_number.digits,
        "",
        None,
        None,
        False,
    )


def _isd(a: InsertSubscriberDataArg) -> _Fields:
    return (a.imsi or "", _digits(a.msisdn), "", "", "", "", None, None, False)


def _cl(a: CancelLocationArg) -> _Fields:
    return (a.imsi, "", _lmsi(a.lmsi), "", "", "", None, None, False)


def _prn(a: ProvideRoamingNumberArg) -> _Fields:
    return (a.imsi, _digits(a.msisdn), "", a.msc_number.digits, "", "", None, None, False)


def _sai(a: SendAuthenticationInfoArg) -> _Fields:
    return (a.imsi, "", "", "", "", "", None, None, False)


def _send_imsi(a: SendImsiArg) -> _Fields:
    return ("", a.msisdn.digits, "", "", "", "", None, None, False)


def _psl(a: ProvideSubscriberLocationArg) -> _Fields:
    return (a.imsi or "", _digits(a.msisdn), "", "", "", "", None, None, False)


def _sri_sm_res(r: RoutingInfoForSmRes) -> _Fields:
    return (r.imsi, "", _lmsi(r.lmsi), r.network_node.digits, "", "", None, None, False)


def _ul_res(r: UpdateLocationRes) -> _Fields:
    return _NONE


def _report_sm(a: ReportSmDeliveryStatusArg) -> _Fields:
    return ("", a.msisdn.digits, "", "", "", a.service_centre.digits, None, None, False)


_EXTRACTORS: Final[dict[type, Callable[[Any], _Fields]]] = {
    ReportSmDeliveryStatusArg: _report_sm,
    RoutingInfoForSmArg: _sri_sm,
    ForwardSmArg: _forward_sm,
    ProvideSubscriberInfoArg: _psi,
    AnyTimeInterrogationArg: _ati,
    SendRoutingInfoArg: _sri,
    UpdateLocationArg: _ul,
    InsertSubscriberDataArg: _isd,
    CancelLocationArg: _cl,
    ProvideRoamingNumberArg: _prn,
    SendAuthenticationInfoArg: _sai,
    SendImsiArg: _send_imsi,
    ProvideSubscriberLocationArg: _psl,
    RoutingInfoForSmRes: _sri_sm_res,
    UpdateLocationRes: _ul_res,
}

_INVOKE: Final = ComponentKind.INVOKE
_RESULT_LAST: Final = ComponentKind.RETURN_RESULT_LAST
_RESULT_NOT_LAST: Final = ComponentKind.RETURN_RESULT_NOT_LAST
_new: Final = tuple.__new__

_KIND_OF: Final[dict[type, ComponentKind]] = {
    Invoke: ComponentKind.INVOKE,
    ReturnError: ComponentKind.RETURN_ERROR,
    Reject: ComponentKind.REJECT,
}

# Application-context OID -> (id, version) or None; a handful of distinct
# values in practice. Cleared whole if hostile traffic floods it.
_AC_CACHE: Final[dict[tuple[int, ...], tuple[int, int] | None]] = {}
AC_CACHE_LIMIT: Final = 4096


def _map_ac(oid: tuple[int, ...]) -> tuple[int, int] | None:
    found = _AC_CACHE.get(oid, False)
    if found is not False:
        return found  # type: ignore[return-value]
    ac = map_ac(oid)
    value = None if ac is None else (int(ac[0]), ac[1])
    if len(_AC_CACHE) >= AC_CACHE_LIMIT:
        _AC_CACHE.clear()
    _AC_CACHE[oid] = value
    return value


def facts_from_message(
    msg: SignalingMessage, time: float, direction: Direction = Direction.UNKNOWN
) -> Facts:
    """The facts of one decoded message seen at ``time`` (seconds, the caller's
    clock). Never raises on a value the decoder produced."""
    label, sccp, tcap = msg.label, msg.sccp, msg.tcap
    calling, called = sccp.calling, sccp.called
    dialogue = tcap.dialogue
    oid = None if dialogue is None else dialogue.application_context
    ac = None if oid is None else _map_ac(oid)
    components = tcap.components

    global_opcode = False
    opcode: int | None = None
    payload: object = None
    component: ComponentKind | None = None
    if len(components) == 1:
        # The usual message: one invoke or one result.
        first = components[0]
        kind = type(first)
        # Narrowed by annotation, not read as a union: compiled, a field of a
        # known NamedTuple is read by index, of a union by a generic lookup
        # (and typing.cast would be a call in pure Python).
        if kind is Invoke:
            component = _INVOKE
            invoke: Invoke = first  # type: ignore[assignment]
            opcode = invoke.opcode
            if opcode is None:
                global_opcode = True
                invokes: tuple[int, ...] = ()
            else:
                invokes = (opcode,)
                payload = invoke.argument
        else:
            invokes = ()
            if kind is ReturnResult:
                result: ReturnResult = first  # type: ignore[assignment]
                component = _RESULT_LAST if result.last else _RESULT_NOT_LAST
                opcode = result.opcode
                payload = result.result
                global_opcode = result.global_opcode is not None
            else:
                component = _KIND_OF.get(kind)
    elif components:
        codes: list[int] = []
        first_result: ReturnResult | None = None
        for comp in components:
            kind = type(comp)
            if kind is Invoke:
                code = comp.opcode  # type: ignore[union-attr]
                if code is None:
                    global_opcode = True
                    continue
                if not codes:
                    payload = comp.argument  # type: ignore[union-attr]
                    opcode = code
                codes.append(code)
            elif kind is ReturnResult:
                if comp.global_opcode is not None:  # type: ignore[union-attr]
                    global_opcode = True
                if first_result is None:
                    first_result = comp  # type: ignore[assignment]
        if not codes and first_result is not None:
            opcode, payload = first_result.opcode, first_result.result
        invokes = tuple(codes)
        first = components[0]
        if type(first) is ReturnResult:
            component = _RESULT_LAST if first.last else _RESULT_NOT_LAST
        else:
            component = _KIND_OF.get(type(first))
    else:
        invokes = ()

    extract = None if payload is None else _EXTRACTORS.get(type(payload))
    cgt, dgt = calling.gt, called.gt
    # Positional, in Facts' field order (see facts.py): the fastest way to
    # build a NamedTuple.
    return _new(
        Facts,
        (
            time,
            "" if cgt is None else cgt.digits,
            "" if dgt is None else dgt.digits,
            calling.ssn or 0,
            called.ssn or 0,
            label.opc,
            label.dpc,
            direction,
            sccp.kind,
            tcap.kind,
            tcap.otid or b"",
            tcap.dtid or b"",
            ac,
            oid is not None and ac is None,
            component,
            opcode,
            invokes,
            global_opcode,
        )
        + (_NONE if extract is None else extract(payload)),
    )
