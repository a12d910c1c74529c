"""Encoded messages beyond the scenario corpus, shared by the oracle, tshark
and fuzz tests: other MAP versions (v2 cancelLocation, sendAuthenticationInfo,
forwardSM), other operations, XUDT, routing on SSN + point code, and TCAP
Abort / ReturnError / Reject shapes. Built with herald's encoder."""

from __future__ import annotations

from herald.signaling import build, encode, invoke
from herald.signaling.map_codec import encode_tpdu
from herald.signaling.map_ops import MapAc, ac_oid
from herald.signaling.map_types import (
    AddressString,
    CancelLocationArg,
    ForwardSmArg,
    InsertSubscriberDataArg,
    ProvideRoamingNumberArg,
    ReportSmDeliveryStatusArg,
    RoutingInfoForSmArg,
    SendAuthenticationInfoArg,
    SmRpDa,
    SmRpDaKind,
    SmRpOa,
    SmRpOaKind,
    SmsTpdu,
    TpAddress,
)
from herald.signaling.message import (
    Dialogue,
    DialogueKind,
    GlobalTitle,
    Reject,
    ReturnError,
    RoutingIndicator,
    RoutingLabel,
    SccpAddress,
    SccpMessageType,
    TcapMessage,
    TcapMessageType,
)


def extra_messages() -> list[bytes]:
    """Messages the corpus does not carry: other versions, operations, SCCP
    message types and TCAP shapes, built with herald's encoder."""
    def gt(digits: str, ssn: int) -> SccpAddress:
        return SccpAddress(RoutingIndicator.GLOBAL_TITLE, ssn, None, GlobalTitle(digits))

    hlr, vlr = gt("19991000001", 6), gt("28882000001", 7)
    by_ssn = SccpAddress(RoutingIndicator.SSN, 8, 0x0123)
    label = RoutingLabel(0x0A0A, 0x0101, 3, 0, 0, 5)
    imsi = "001010000009999"

    def begin(ac: tuple[int, int] | None, *components: object, kind: SccpMessageType =
              SccpMessageType.UDT, calling: SccpAddress = hlr, called: SccpAddress = vlr,
              tid: int = 1) -> bytes:
        dialogue = None if ac is None else Dialogue(DialogueKind.REQUEST, ac_oid(*ac))
        tcap = TcapMessage(TcapMessageType.BEGIN, tid.to_bytes(4, "big"), None, dialogue,
                           tuple(components))  # type: ignore[arg-type]
        return encode(build(label, called, calling, tcap, kind=kind))

    tpdu = encode_tpdu(SmsTpdu(0, TpAddress("4477009000", 1, 1), 0, 4), b"hello", 5)
    messages = [
        begin((MapAc.LOCATION_CANCELLATION, 3), invoke(1, CancelLocationArg(imsi, None, 0))),
        begin((MapAc.LOCATION_CANCELLATION, 2),
              invoke(1, CancelLocationArg(imsi, b"\x01\x02\x03\x04", None, False)), tid=2),
        begin((MapAc.ROAMING_NUMBER_ENQUIRY, 3),
              invoke(1, ProvideRoamingNumberArg(imsi, AddressString("28882000001"),
                                                AddressString("19995001234"))), tid=3),
        begin((MapAc.SHORT_MSG_MT_RELAY, 2),
              invoke(1, ForwardSmArg(SmRpDa(SmRpDaKind.LMSI, lmsi=b"\x00\x00\x00\x07"),
                                     SmRpOa(SmRpOaKind.SERVICE_CENTRE,
                                            AddressString("28881000001")), tpdu), 46), tid=4),
        begin((MapAc.INFO_RETRIEVAL, 2),
              invoke(1, SendAuthenticationInfoArg(imsi, None, False)), tid=5),
        begin((MapAc.SUBSCRIBER_DATA_MNGT, 3),
              invoke(1, InsertSubscriberDataArg(imsi, AddressString("19995009999"))), tid=6),
        begin((MapAc.SHORT_MSG_GATEWAY, 3),
              invoke(1, ReportSmDeliveryStatusArg(AddressString("19995003333"),
                                                  AddressString("19990000001"), 1)), tid=60),
        begin((MapAc.SHORT_MSG_GATEWAY, 3),
              invoke(1, RoutingInfoForSmArg(AddressString("19995001111"), False,
                                            AddressString("28881000001"))),
              kind=SccpMessageType.XUDT, tid=7),
        begin((MapAc.SHORT_MSG_GATEWAY, 2),
              invoke(1, RoutingInfoForSmArg(AddressString("19995002222"), True,
                                            AddressString("28881000001"))),
              calling=by_ssn, tid=8),
    ]
    for tcap in (
        TcapMessage(TcapMessageType.ABORT, None, b"\x00\x00\x00\x09", abort_cause=1),
        TcapMessage(TcapMessageType.END, None, b"\x00\x00\x00\x0a",
                    Dialogue(DialogueKind.RESPONSE, ac_oid(MapAc.SHORT_MSG_GATEWAY, 3), True, 0,
                             (1, 0)), (ReturnError(1, 27),)),
        TcapMessage(TcapMessageType.CONTINUE, b"\x00\x00\x00\x0b", b"\x00\x00\x00\x0c", None,
                    (Reject(1, 1, 2),)),
    ):
        messages.append(encode(build(label, vlr, hlr, tcap)))
    return messages
