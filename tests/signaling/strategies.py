"""Hypothesis strategies for every value the signaling codecs encode.

Each strategy draws values in the canonical form ``decode`` returns (e.g. an
invoke's ``argument`` is what decoding its parameter gives), so a round trip
must give back an *equal* value.
"""

from __future__ import annotations

from hypothesis import strategies as st

from herald.signaling import invoke
from herald.signaling.m3ua import (
    AspState,
    AspTraffic,
    Data,
    DestinationState,
    Error,
    Heartbeat,
    Kind,
    M3uaMessage,
    Notify,
)
from herald.signaling.map_codec import decode_result, encode_result, encode_tpdu
from herald.signaling.map_ops import MapAc, MapOperation, ac_oid
from herald.signaling.map_types import (
    AddressString,
    AnyTimeInterrogationArg,
    CancelLocationArg,
    ForwardSmArg,
    InsertSubscriberDataArg,
    MapArgument,
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
    SmsTpdu,
    TpAddress,
    UpdateLocationArg,
    UpdateLocationRes,
)
from herald.signaling.message import (
    Component,
    Dialogue,
    DialogueKind,
    GlobalTitle,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    RoutingIndicator,
    RoutingLabel,
    SccpAddress,
    SccpMessageType,
    SignalingMessage,
    TcapMessage,
    TcapMessageType,
    Unitdata,
)
from herald.signaling.tcap import encode_tcap

DIGITS = "0123456789"
TBCD = "0123456789*#abc"


def digits(lo: int, hi: int, alphabet: str = DIGITS) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=lo, max_size=hi)


imsis = digits(6, 15)
lmsis = st.binary(min_size=4, max_size=4)


def addresses(max_digits: int = 16) -> st.SearchStrategy[AddressString]:
    return st.builds(AddressString, digits(0, max_digits, TBCD), st.integers(0, 7),
                     st.integers(0, 15))


isdn = addresses(16)
long_address = addresses(38)


@st.composite
def global_titles(draw: st.DrawFn) -> GlobalTitle:
    gti = draw(st.integers(1, 4))
    text = draw(digits(1, 24))
    if gti == 2 and len(text) % 2:
        text += "0"
    tt = draw(st.integers(0, 255)) if gti >= 2 else None
    np = draw(st.integers(0, 15)) if gti >= 3 else None
    nai = draw(st.integers(0, 127)) if gti in (1, 4) else None
    return GlobalTitle(text, gti, tt, np, nai)


@st.composite
def sccp_addresses(draw: st.DrawFn) -> SccpAddress:
    routing = draw(st.sampled_from(RoutingIndicator))
    gt = draw(global_titles()) if routing is RoutingIndicator.GLOBAL_TITLE else draw(
        st.none() | global_titles())
    ssn = draw(st.integers(0, 255)) if routing is RoutingIndicator.SSN else draw(
        st.none() | st.integers(0, 255))
    pc = draw(st.none() | st.integers(0, (1 << 14) - 1))
    return SccpAddress(routing, ssn, pc, gt, draw(st.booleans()))


@st.composite
def tpdus(draw: st.DrawFn) -> bytes:
    mti = draw(st.sampled_from((0, 1)))
    address = TpAddress(draw(digits(0, 20, TBCD)), draw(st.sampled_from((0, 1, 2, 3, 4, 6))),
                        draw(st.integers(0, 15)))
    dcs = draw(st.sampled_from((0x00, 0x04, 0x08, 0xF0, 0xF4)))
    data = draw(st.binary(max_size=40))
    udl = len(data)
    if dcs in (0x00, 0xF0):  # GSM 7-bit: UDL counts septets
        udl = len(data) * 8 // 7
        data = data[: (udl * 7 + 7) // 8]
    return encode_tpdu(SmsTpdu(mti, address, draw(st.integers(0, 255)), dcs), data, udl)


forward_sm = st.builds(
    ForwardSmArg,
    st.one_of(
        st.builds(lambda i: SmRpDa(SmRpDaKind.IMSI, imsi=i), imsis),
        st.builds(lambda lm: SmRpDa(SmRpDaKind.LMSI, lmsi=lm), lmsis),
        st.builds(lambda a: SmRpDa(SmRpDaKind.SERVICE_CENTRE, address=a), long_address),
        st.builds(lambda a: SmRpDa(SmRpDaKind.ROAMING_NUMBER, address=a), isdn),
        st.just(SmRpDa(SmRpDaKind.NONE)),
    ),
    st.one_of(
        st.builds(lambda a: SmRpOa(SmRpOaKind.MSISDN, a), isdn),
        st.builds(lambda a: SmRpOa(SmRpOaKind.SERVICE_CENTRE, a), long_address),
        st.just(SmRpOa(SmRpOaKind.NONE)),
    ),
    tpdus(),
    st.none(),
    st.booleans(),
)

map_arguments: st.SearchStrategy[MapArgument] = st.one_of(
    st.builds(RoutingInfoForSmArg, isdn, st.booleans(), long_address,
              st.none() | st.sampled_from((0, 1)), st.none() | imsis),
    forward_sm,
    st.builds(ProvideSubscriberInfoArg, imsis, st.none() | lmsis, st.booleans(), st.booleans()),
    st.one_of(
        st.builds(AnyTimeInterrogationArg, isdn, imsis, st.none(), st.booleans(), st.booleans()),
        st.builds(AnyTimeInterrogationArg, isdn, st.none(), isdn, st.booleans(), st.booleans()),
    ),
    st.builds(SendRoutingInfoArg, isdn, st.none() | st.integers(0, 1), st.none() | isdn),
    st.builds(UpdateLocationArg, imsis, isdn, isdn, st.none() | lmsis),
    st.builds(InsertSubscriberDataArg, st.none() | imsis, st.none() | isdn),
    st.one_of(
        st.builds(CancelLocationArg, imsis, st.none() | lmsis, st.none() | st.integers(0, 2),
                  st.just(True)),
        st.builds(CancelLocationArg, imsis, st.none() | lmsis, st.none(), st.just(False)),
    ),
    st.builds(ProvideRoamingNumberArg, imsis, isdn, st.none() | isdn),
    st.one_of(
        st.builds(SendAuthenticationInfoArg, imsis, st.integers(1, 5), st.just(True)),
        st.builds(SendAuthenticationInfoArg, imsis, st.none(), st.just(False)),
    ),
    st.builds(SendImsiArg, isdn),
    st.builds(ProvideSubscriberLocationArg, st.integers(0, 5), isdn, st.none() | isdn,
              st.none() | imsis),
    st.builds(ReportSmDeliveryStatusArg, isdn, long_address, st.integers(0, 2)),
)


@st.composite
def invokes(draw: st.DrawFn) -> Invoke:
    invoke_id = draw(st.integers(-128, 127))
    linked = draw(st.none() | st.integers(-128, 127))
    if draw(st.integers(0, 5)) == 0:  # an operation the codec does not decode
        opcode = draw(st.sampled_from((5, 9, 37, 62, 200)))
        parameter = draw(st.none() | st.binary(max_size=8).map(lambda b: b"\x04" + bytes(
            (len(b),)) + b))
        return Invoke(invoke_id, opcode, parameter, None, linked)
    if draw(st.integers(0, 9)) == 0:  # a global operation code
        oid = draw(st.tuples(st.integers(0, 2), st.integers(0, 39),
                             st.integers(0, 1 << 20)))
        return Invoke(invoke_id, None, None, None, linked, oid)
    arg = draw(map_arguments)
    opcode = None
    if isinstance(arg, ForwardSmArg):
        opcode = draw(st.sampled_from((MapOperation.MT_FORWARD_SM, MapOperation.MO_FORWARD_SM)))
    return invoke(invoke_id, arg, opcode, linked)


@st.composite
def results(draw: st.DrawFn) -> ReturnResult:
    invoke_id = draw(st.integers(-128, 127))
    last = draw(st.booleans())
    which = draw(st.integers(0, 3))
    if which == 0:
        return ReturnResult(invoke_id, last)
    if which == 1:
        res = RoutingInfoForSmRes(draw(imsis), draw(isdn), draw(st.none() | lmsis))
        op = MapOperation.SEND_ROUTING_INFO_FOR_SM
    elif which == 2:
        res = UpdateLocationRes(draw(isdn))
        op = MapOperation.UPDATE_LOCATION
    else:
        return ReturnResult(invoke_id, last, MapOperation.INSERT_SUBSCRIBER_DATA, b"\x30\x00")
    parameter = encode_result(res)
    return ReturnResult(invoke_id, last, op, parameter,
                        decode_result(op, parameter, 0, len(parameter)))


components: st.SearchStrategy[Component] = st.one_of(
    invokes(),
    results(),
    st.builds(ReturnError, st.integers(-128, 127), st.integers(0, 127),
              st.none() | st.just(b"\x30\x00"), st.none()),
    st.builds(Reject, st.none() | st.integers(-128, 127), st.integers(0, 3), st.integers(0, 7)),
)

map_acs = st.builds(ac_oid, st.sampled_from(MapAc), st.integers(1, 4))
tids = st.binary(min_size=1, max_size=4)
user_info = st.none() | st.binary(max_size=6).map(lambda b: b"\x28" + bytes((len(b),)) + b)


@st.composite
def dialogues(draw: st.DrawFn, kind: TcapMessageType) -> Dialogue | None:
    if draw(st.booleans()):
        return None
    version = draw(st.booleans())
    if kind is TcapMessageType.BEGIN:
        return Dialogue(DialogueKind.REQUEST, draw(map_acs), version,
                        user_information=draw(user_info))
    if kind is TcapMessageType.UNIDIRECTIONAL:
        return Dialogue(DialogueKind.UNIDIRECTIONAL, draw(map_acs), version)
    if kind is TcapMessageType.ABORT and draw(st.booleans()):
        return Dialogue(DialogueKind.ABORT, None, False, abort_source=draw(st.integers(0, 1)),
                        user_information=draw(user_info))
    return Dialogue(DialogueKind.RESPONSE, draw(map_acs), version, draw(st.integers(0, 1)),
                    (draw(st.integers(1, 2)), draw(st.integers(0, 2))), None)


@st.composite
def tcap_messages(draw: st.DrawFn) -> TcapMessage:
    kind = draw(st.sampled_from(TcapMessageType))
    otid = draw(tids) if kind in (TcapMessageType.BEGIN, TcapMessageType.CONTINUE) else None
    dtid = draw(tids) if kind in (TcapMessageType.END, TcapMessageType.CONTINUE,
                                  TcapMessageType.ABORT) else None
    dialogue = draw(dialogues(kind))
    if kind is TcapMessageType.ABORT:
        cause = draw(st.integers(0, 4)) if dialogue is None and draw(st.booleans()) else None
        return TcapMessage(kind, otid, dtid, dialogue, (), cause)
    lo = 1 if kind is TcapMessageType.UNIDIRECTIONAL else 0
    comps = tuple(draw(st.lists(components, min_size=lo, max_size=3)))
    return TcapMessage(kind, otid, dtid, dialogue, comps)


labels = st.builds(RoutingLabel, st.integers(0, (1 << 24) - 1), st.integers(0, (1 << 24) - 1),
                   st.just(3), st.integers(0, 3), st.integers(0, 3), st.integers(0, 15))


@st.composite
def unitdata(draw: st.DrawFn, data: bytes) -> Unitdata:
    kind = draw(st.sampled_from(SccpMessageType))
    called, calling = draw(sccp_addresses()), draw(sccp_addresses())
    extended = kind in (SccpMessageType.XUDT, SccpMessageType.XUDTS)
    hop = draw(st.integers(1, 15)) if extended else None
    seg = draw(st.none() | st.binary(min_size=4, max_size=4)) if extended else None
    imp = draw(st.none() | st.integers(0, 7)) if extended else None
    if kind in (SccpMessageType.UDTS, SccpMessageType.XUDTS):
        return Unitdata(kind, called, calling, data, 0, False, draw(st.integers(0, 14)), hop,
                        seg, imp)
    return Unitdata(kind, called, calling, data, draw(st.integers(0, 1)), draw(st.booleans()),
                    None, hop, seg, imp)


@st.composite
def signaling_messages(draw: st.DrawFn) -> SignalingMessage:
    tcap = draw(tcap_messages())
    data = encode_tcap(tcap)
    sccp = draw(unitdata(data))
    return SignalingMessage(draw(labels), sccp, tcap, draw(st.none() | st.integers(0, 2**32 - 1)),
                            draw(st.none() | st.integers(0, 2**32 - 1)),
                            draw(st.none() | st.integers(0, 2**32 - 1)))


u32 = st.integers(0, 2**32 - 1)
rcs = st.lists(u32, max_size=4).map(tuple)
info = st.none() | st.text("abcdefghij -", max_size=12)

m3ua_messages: st.SearchStrategy[M3uaMessage] = st.one_of(
    st.builds(Data, labels, st.binary(min_size=1, max_size=64), st.none() | u32, st.none() | u32,
              st.none() | u32, st.just(Kind.DATA)),
    st.builds(AspState, st.sampled_from((Kind.ASPUP, Kind.ASPUP_ACK)), st.none() | u32, info),
    st.builds(AspState, st.sampled_from((Kind.ASPDN, Kind.ASPDN_ACK)), st.none(), info),
    st.builds(Heartbeat, st.sampled_from((Kind.BEAT, Kind.BEAT_ACK)),
              st.none() | st.binary(min_size=1, max_size=20)),
    st.builds(AspTraffic, st.sampled_from((Kind.ASPAC, Kind.ASPAC_ACK)), rcs,
              st.none() | st.integers(1, 3), info),
    st.builds(AspTraffic, st.sampled_from((Kind.ASPIA, Kind.ASPIA_ACK)), rcs, st.none(), info),
    st.builds(Notify, st.integers(1, 2), st.integers(0, 0xFFFF), st.none() | u32, rcs, info,
              st.just(Kind.NTFY)),
    st.builds(Error, u32, rcs, st.none() | u32, rcs,
              st.none() | st.binary(min_size=1, max_size=12), st.just(Kind.ERR)),
    st.builds(DestinationState, st.sampled_from((Kind.DUNA, Kind.DAVA, Kind.DAUD, Kind.DRST)),
              st.lists(u32, min_size=1, max_size=4).map(tuple), rcs, st.none() | u32, info,
              st.none(), st.none(), st.none()),
    st.builds(DestinationState, st.just(Kind.SCON), st.lists(u32, min_size=1, max_size=4).map(
        tuple), rcs, st.none() | u32, info, st.none(), st.none() | st.integers(0, 3),
        st.none() | u32),
    st.builds(DestinationState, st.just(Kind.DUPU), st.lists(u32, min_size=1, max_size=4).map(
        tuple), rcs, st.none() | u32, info, u32, st.none(), st.none()),
)
