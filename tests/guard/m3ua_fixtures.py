"""Encoded M3UA messages for the guard's adapter tests, built with herald's codec.

Numbering is the fictional plan of :mod:`.builders` (home 1999..., partner
"near" 2888..., no agreement 4666...). These are local test fixtures: they are
only ever written to loopback sockets and temporary files.
"""

from __future__ import annotations

import itertools

from herald.signaling import build, encode
from herald.signaling import invoke as map_invoke
from herald.signaling.m3ua import AspState, Heartbeat, Kind, encode_m3ua
from herald.signaling.map_ops import MapAc, ac_oid
from herald.signaling.map_types import (
    AddressString,
    AnyTimeInterrogationArg,
    ForwardSmArg,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SmRpDa,
    SmRpDaKind,
    SmRpOa,
    SmRpOaKind,
)
from herald.signaling.message import (
    Dialogue,
    DialogueKind,
    GlobalTitle,
    RoutingIndicator,
    RoutingLabel,
    SccpAddress,
    TcapMessage,
    TcapMessageType,
)
from herald.signaling.message import ReturnResult as TcReturnResult

from .builders import FOREIGN, HLR, HOME_IMSI, HOME_MSISDN, MSC_HOME, NEAR_SMSC

HLR_SSN, MSC_SSN, VLR_SSN, GSMSCF_SSN = 6, 8, 7, 147
_tids = itertools.count(1)


def address(digits: str, ssn: int) -> SccpAddress:
    return SccpAddress(RoutingIndicator.GLOBAL_TITLE, ssn=ssn, gt=GlobalTitle(digits))


def _begin(component: object, ac: tuple[int, int]) -> tuple[TcapMessage, bytes]:
    otid = next(_tids).to_bytes(4, "big")
    tcap = TcapMessage(
        TcapMessageType.BEGIN,
        otid=otid,
        dialogue=Dialogue(DialogueKind.REQUEST, ac_oid(*ac)),
        components=(component,),  # type: ignore[arg-type]
    )
    return tcap, otid


def data(
    tcap: TcapMessage,
    calling: str,
    called: str,
    *,
    ssns: tuple[int, int] = (8, 6),
    return_on_error: bool = True,
) -> bytes:
    return encode(
        build(
            RoutingLabel(opc=100, dpc=200),
            address(called, ssns[1]),
            address(calling, ssns[0]),
            tcap,
            return_on_error=return_on_error,
        )
    )


def ati(calling: str = FOREIGN, *, return_on_error: bool = True) -> bytes:
    """anyTimeInterrogation for a home subscriber: category 1 (blocked)."""
    arg = AnyTimeInterrogationArg(
        gsm_scf=AddressString(calling), imsi=HOME_IMSI, location_requested=True
    )
    tcap, _ = _begin(map_invoke(1, arg), (MapAc.ANY_TIME_INFO_ENQUIRY, 3))
    return data(tcap, calling, HLR, ssns=(GSMSCF_SSN, HLR_SSN), return_on_error=return_on_error)


def sri_sm(calling: str = NEAR_SMSC, msisdn: str = HOME_MSISDN) -> tuple[bytes, bytes]:
    """sendRoutingInfoForSM from an SMSC (allowed); returns (bytes, otid)."""
    arg = RoutingInfoForSmArg(
        msisdn=AddressString(msisdn), sm_rp_pri=True, service_centre=AddressString(calling)
    )
    tcap, otid = _begin(map_invoke(1, arg), (MapAc.SHORT_MSG_GATEWAY, 3))
    return data(tcap, calling, HLR), otid


def sri_sm_result(
    otid: bytes,
    requester: str = NEAR_SMSC,
    imsi: str = HOME_IMSI,
    node: str = MSC_HOME,
    lmsi: bytes | None = None,
) -> bytes:
    from herald.signaling.map_codec import encode_result

    res = RoutingInfoForSmRes(imsi=imsi, network_node=AddressString(node), lmsi=lmsi)
    parameter = encode_result(res)
    tcap = TcapMessage(
        TcapMessageType.END,
        dtid=otid,
        components=(TcReturnResult(1, True, 45, parameter, res),),
    )
    return data(tcap, HLR, requester, ssns=(HLR_SSN, 8))


def answer(
    otid: bytes, calling: str, called: str, component: object, *, ssns: tuple[int, int] = (8, 8)
) -> bytes:
    """A TC-END from ``calling`` closing ``called``'s dialogue ``otid``."""
    tcap = TcapMessage(TcapMessageType.END, dtid=otid, components=(component,))  # type: ignore[arg-type]
    return data(tcap, calling, called, ssns=ssns)


def mt_fsm_begin(
    calling: str = NEAR_SMSC,
    pid: int = 0,
    imsi: str = HOME_IMSI,
    called: str = MSC_HOME,
    service_centre: str | None = None,
) -> tuple[bytes, bytes]:
    """An MT-ForwardSM from SMSC ``calling``; returns (bytes, otid)."""
    tpdu = bytes([0x04, 0x0B, 0x91]) + bytes.fromhex("9199550500f1") + bytes([pid, 0x00])
    tpdu += bytes.fromhex("52117080000000") + bytes([0x02, 0xC8, 0x34])
    arg = ForwardSmArg(
        da=SmRpDa(SmRpDaKind.IMSI, imsi=imsi),
        oa=SmRpOa(SmRpOaKind.SERVICE_CENTRE, AddressString(service_centre or calling)),
        user_data=tpdu,
    )
    tcap, otid = _begin(map_invoke(1, arg, opcode=44), (MapAc.SHORT_MSG_MT_RELAY, 3))
    return data(tcap, calling, called, ssns=(8, MSC_SSN)), otid


def mt_fsm(calling: str = NEAR_SMSC, pid: int = 0, imsi: str = HOME_IMSI) -> bytes:
    return mt_fsm_begin(calling, pid, imsi)[0]


def aspup() -> bytes:
    return encode_m3ua(AspState(Kind.ASPUP, asp_identifier=7))


def aspup_ack() -> bytes:
    return encode_m3ua(AspState(Kind.ASPUP_ACK))


def beat(payload: bytes = b"ping") -> bytes:
    return encode_m3ua(Heartbeat(Kind.BEAT, payload))


def map_open(destination: str, origination: str) -> bytes:
    """A dialogue's user information: MAP-OPEN with destinationReference
    (an IMSI, E.212) and originationReference (an SMSC, E.164)."""
    from herald.signaling._ber import encode_oid, tlv
    from herald.signaling._digits import encode_tbcd
    from herald.signaling.homerouting import MAP_DIALOGUE_AS

    dest, orig = encode_tbcd(destination), encode_tbcd(origination)
    assert dest is not None and orig is not None
    refs = tlv(0x80, b"\x96" + dest) + tlv(0x81, b"\x91" + orig)
    return tlv(0x28, tlv(0x06, encode_oid(MAP_DIALOGUE_AS)) + tlv(0xA0, tlv(0xA0, refs)))


def mt_fsm_open(calling: str, imsi: str, called: str) -> tuple[bytes, bytes]:
    """A long message's first TC-BEGIN: MAP-OPEN only, no component."""
    otid = next(_tids).to_bytes(4, "big")
    dialogue = Dialogue(DialogueKind.REQUEST, ac_oid(MapAc.SHORT_MSG_MT_RELAY, 3),
                        user_information=map_open(imsi, calling))
    tcap = TcapMessage(TcapMessageType.BEGIN, otid=otid, dialogue=dialogue)
    return data(tcap, calling, called, ssns=(8, MSC_SSN)), otid


def tc_continue(
    otid: bytes, dtid: bytes, calling: str, called: str, *components: object,
    accept: bool = False,
) -> bytes:
    """A TC-CONTINUE; ``accept``: with the AARE accepting an MT relay dialogue."""
    dialogue = Dialogue(DialogueKind.RESPONSE, ac_oid(MapAc.SHORT_MSG_MT_RELAY, 3), result=0,
                        diagnostic=(1, 0)) if accept else None
    tcap = TcapMessage(TcapMessageType.CONTINUE, otid=otid, dtid=dtid, dialogue=dialogue,
                       components=components)  # type: ignore[arg-type]
    return data(tcap, calling, called, ssns=(8, 8))


def mt_invoke(smsc: str, da: SmRpDa, pid: int = 0) -> object:
    """An mt-ForwardSM invoke component to ``da`` from service centre ``smsc``."""
    tpdu = bytes([0x04, 0x0B, 0x91]) + bytes.fromhex("9199550500f1") + bytes([pid, 0x00])
    tpdu += bytes.fromhex("52117080000000") + bytes([0x02, 0xC8, 0x34])
    arg = ForwardSmArg(da=da, oa=SmRpOa(SmRpOaKind.SERVICE_CENTRE, AddressString(smsc)),
                       user_data=tpdu)
    return map_invoke(1, arg, opcode=44)
