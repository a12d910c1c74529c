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
from typing import Any

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
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SendAuthenticationInfoArg,
    SendImsiArg,
    SendRoutingInfoArg,
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


# Each extractor returns the MAP keyword arguments of Facts for one type.
_Fields = dict[str, Any]


def _sri_sm(a: RoutingInfoForSmArg) -> _Fields:
    return {
        "msisdn": a.msisdn.digits,
        "service_centre": a.service_centre.digits,
        "delivery_not_intended": a.delivery_not_intended is not None,
    }


def _forward_sm(a: ForwardSmArg) -> _Fields:
    oa = a.oa
    out: _Fields = {
        "sm_rp_da": a.da.kind,
        "imsi": a.da.imsi or "",
        "lmsi": _lmsi(a.da.lmsi),
        "tp_pid": None if a.tpdu is None else a.tpdu.pid,
    }
    if oa.kind is SmRpOaKind.SERVICE_CENTRE:
        out["service_centre"] = _digits(oa.address)
    elif oa.kind is SmRpOaKind.MSISDN:
        out["msisdn"] = _digits(oa.address)
    return out


def _psi(a: ProvideSubscriberInfoArg) -> _Fields:
    return {"imsi": a.imsi, "lmsi": _lmsi(a.lmsi)}


def _ati(a: AnyTimeInterrogationArg) -> _Fields:
    return {"imsi": a.imsi or "", "msisdn": _digits(a.msisdn)}


def _sri(a: SendRoutingInfoArg) -> _Fields:
    return {"msisdn": a.msisdn.digits}


def _ul(a: UpdateLocationArg) -> _Fields:
    return {
        "imsi": a.imsi,
        "msc_number": a.msc_number.digits,
        "vlr_number": a.vlr_number.digits,
        "lmsi": _lmsi(a.lmsi),
    }


def _isd(a: InsertSubscriberDataArg) -> _Fields:
    return {"imsi": a.imsi or "", "msisdn": _digits(a.msisdn)}


def _cl(a: CancelLocationArg) -> _Fields:
    return {"imsi": a.imsi, "lmsi": _lmsi(a.lmsi)}


def _prn(a: ProvideRoamingNumberArg) -> _Fields:
    return {"imsi": a.imsi, "msc_number": a.msc_number.digits, "msisdn": _digits(a.msisdn)}


def _sai(a: SendAuthenticationInfoArg) -> _Fields:
    return {"imsi": a.imsi}


def _send_imsi(a: SendImsiArg) -> _Fields:
    return {"msisdn": a.msisdn.digits}


def _psl(a: ProvideSubscriberLocationArg) -> _Fields:
    return {"imsi": a.imsi or "", "msisdn": _digits(a.msisdn)}


def _sri_sm_res(r: RoutingInfoForSmRes) -> _Fields:
    return {"imsi": r.imsi, "msc_number": r.network_node.digits, "lmsi": _lmsi(r.lmsi)}


def _ul_res(r: UpdateLocationRes) -> _Fields:
    return {}


_EXTRACTORS: dict[type, Callable[[Any], _Fields]] = {
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


def _component_kind(c: Invoke | ReturnResult | ReturnError | Reject) -> ComponentKind:
    if isinstance(c, Invoke):
        return ComponentKind.INVOKE
    if isinstance(c, ReturnResult):
        return (
            ComponentKind.RETURN_RESULT_LAST if c.last else ComponentKind.RETURN_RESULT_NOT_LAST
        )
    if isinstance(c, ReturnError):
        return ComponentKind.RETURN_ERROR
    return ComponentKind.REJECT


def facts_from_message(
    msg: SignalingMessage, time: float, direction: Direction = Direction.UNKNOWN
) -> Facts:
    """The facts of one decoded message seen at ``time`` (seconds, the caller's
    clock). Never raises on a value the decoder produced."""
    sccp, tcap = msg.sccp, msg.tcap
    calling, called = sccp.calling, sccp.called
    oid = None if tcap.dialogue is None else tcap.dialogue.application_context
    ac = map_ac(oid)
    components = tcap.components

    invokes: list[int] = []
    global_opcode = False
    opcode: int | None = None
    payload: object = None
    for comp in components:
        if isinstance(comp, Invoke):
            if comp.opcode is None:
                global_opcode = True
                continue
            if not invokes:
                payload = comp.argument
                opcode = comp.opcode
            invokes.append(comp.opcode)
        elif isinstance(comp, ReturnResult) and comp.global_opcode is not None:
            global_opcode = True
    if not invokes:
        for comp in components:
            if isinstance(comp, ReturnResult):
                opcode, payload = comp.opcode, comp.result
                break

    extract = _EXTRACTORS.get(type(payload)) if payload is not None else None
    fields = extract(payload) if extract is not None else {}
    return Facts(
        time=time,
        calling_gt=calling.gt.digits if calling.gt is not None else "",
        called_gt=called.gt.digits if called.gt is not None else "",
        calling_ssn=calling.ssn or 0,
        called_ssn=called.ssn or 0,
        opc=msg.label.opc,
        dpc=msg.label.dpc,
        direction=direction,
        sccp=sccp.kind,
        tcap=tcap.kind,
        otid=tcap.otid or b"",
        dtid=tcap.dtid or b"",
        ac=None if ac is None else (int(ac[0]), ac[1]),
        ac_other=oid is not None and ac is None,
        component=_component_kind(components[0]) if components else None,
        opcode=opcode,
        invokes=tuple(invokes),
        global_opcode=global_opcode,
        **fields,
    )
