"""facts_from_message on messages encoded and decoded by herald's codec."""

from __future__ import annotations

import pytest

from herald.signaling import decode
from herald.signaling import invoke as map_invoke
from herald.signaling.map_ops import MapAc
from herald.signaling.map_types import (
    OPCODES,
    AddressString,
    AnyTimeInterrogationArg,
    CancelLocationArg,
    InsertSubscriberDataArg,
    MapArgument,
    ProvideRoamingNumberArg,
    ProvideSubscriberInfoArg,
    ProvideSubscriberLocationArg,
    SendAuthenticationInfoArg,
    SendImsiArg,
    SendRoutingInfoArg,
    SmRpDaKind,
    UpdateLocationArg,
)
from herald.signaling.message import (
    Dialogue,
    DialogueKind,
    Invoke,
    TcapMessage,
    TcapMessageType,
)
from herald.signaling.policy import ComponentKind, Direction, Facts, TcapKind
from herald.signaling.policy.bridge import facts_from_message

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HLR, HOME_IMSI, HOME_MSISDN, MSC_HOME, NEAR_SMSC, NEAR_VLR

OTHER = "19996660000"


def _facts(data: bytes, t: float = 12.5) -> Facts:
    return facts_from_message(decode(data), t, Direction.INBOUND)


def test_sri_sm_begin() -> None:
    data, otid = fx.sri_sm()
    f = _facts(data)
    assert (f.time, f.direction) == (12.5, Direction.INBOUND)
    assert (f.calling_gt, f.called_gt, f.calling_ssn, f.called_ssn) == (NEAR_SMSC, HLR, 8, 6)
    assert (f.opc, f.dpc) == (100, 200)
    assert (f.tcap, f.otid, f.dtid) == (TcapKind.BEGIN, otid, b"")
    assert f.ac == (MapAc.SHORT_MSG_GATEWAY, 3) and not f.ac_other
    assert (f.component, f.opcode, f.invokes) == (ComponentKind.INVOKE, 45, (45,))
    assert (f.msisdn, f.service_centre, f.imsi) == (HOME_MSISDN, NEAR_SMSC, "")
    assert not f.delivery_not_intended


def test_sri_sm_result_carries_imsi_and_node() -> None:
    data = fx.sri_sm_result(b"\x00\x00\x00\x09")
    f = _facts(data)
    assert (f.tcap, f.dtid, f.component) == (
        TcapKind.END,
        b"\x00\x00\x00\x09",
        ComponentKind.RETURN_RESULT_LAST,
    )
    assert (f.opcode, f.invokes, f.imsi, f.msc_number) == (45, (), HOME_IMSI, MSC_HOME)
    assert f.ac is None


def test_mt_forward_sm_with_tp_pid() -> None:
    f = _facts(fx.mt_fsm(pid=0x40))
    assert (f.opcode, f.ac) == (44, (MapAc.SHORT_MSG_MT_RELAY, 3))
    assert (f.sm_rp_da, f.imsi, f.service_centre, f.tp_pid) == (
        SmRpDaKind.IMSI,
        HOME_IMSI,
        NEAR_SMSC,
        0x40,
    )


ADDR = AddressString
CASES: list[tuple[MapArgument, tuple[int, int], dict[str, object]]] = [
    (
        UpdateLocationArg(HOME_IMSI, ADDR(NEAR_VLR), ADDR(NEAR_VLR), b"\x01\x02\x03\x04"),
        (MapAc.NETWORK_LOC_UP, 3),
        {"imsi": HOME_IMSI, "msc_number": NEAR_VLR, "vlr_number": NEAR_VLR, "lmsi": "01020304"},
    ),
    (
        ProvideSubscriberInfoArg(HOME_IMSI, location_requested=True),
        (MapAc.SUBSCRIBER_INFO_ENQUIRY, 3),
        {"imsi": HOME_IMSI},
    ),
    (
        AnyTimeInterrogationArg(ADDR(FOREIGN), msisdn=ADDR(HOME_MSISDN)),
        (MapAc.ANY_TIME_INFO_ENQUIRY, 3),
        {"msisdn": HOME_MSISDN, "imsi": ""},
    ),
    (
        SendRoutingInfoArg(ADDR(HOME_MSISDN)),
        (MapAc.LOCATION_INFO_RETRIEVAL, 3),
        {"msisdn": HOME_MSISDN},
    ),
    (
        InsertSubscriberDataArg(HOME_IMSI, ADDR(HOME_MSISDN)),
        (MapAc.SUBSCRIBER_DATA_MNGT, 3),
        {"imsi": HOME_IMSI, "msisdn": HOME_MSISDN},
    ),
    (CancelLocationArg(HOME_IMSI), (MapAc.LOCATION_CANCELLATION, 3), {"imsi": HOME_IMSI}),
    (
        ProvideRoamingNumberArg(HOME_IMSI, ADDR(MSC_HOME)),
        (MapAc.ROAMING_NUMBER_ENQUIRY, 3),
        {"imsi": HOME_IMSI, "msc_number": MSC_HOME},
    ),
    (SendAuthenticationInfoArg(HOME_IMSI), (MapAc.INFO_RETRIEVAL, 3), {"imsi": HOME_IMSI}),
    (SendImsiArg(ADDR(HOME_MSISDN)), (MapAc.IMSI_RETRIEVAL, 2), {"msisdn": HOME_MSISDN}),
    (
        ProvideSubscriberLocationArg(0, ADDR(FOREIGN), msisdn=ADDR(HOME_MSISDN)),
        (MapAc.LOCATION_SVC_ENQUIRY, 3),
        {"msisdn": HOME_MSISDN},
    ),
]


@pytest.mark.parametrize(
    ("argument", "ac", "expected"), CASES, ids=[type(c[0]).__name__ for c in CASES]
)
def test_every_decoded_argument_reaches_the_facts(
    argument: MapArgument, ac: tuple[int, int], expected: dict[str, object]
) -> None:
    tcap, _ = fx._begin(map_invoke(1, argument), ac)
    f = _facts(fx.data(tcap, FOREIGN, OTHER))
    assert f.opcode == OPCODES[type(argument)][0]
    assert f.ac == ac
    for name, value in expected.items():
        assert getattr(f, name) == value, name


def test_no_dialogue_other_contexts_and_global_opcodes() -> None:
    arg = SendAuthenticationInfoArg(HOME_IMSI)
    bare = TcapMessage(TcapMessageType.BEGIN, otid=b"\x01", components=(map_invoke(1, arg),))
    f = _facts(fx.data(bare, FOREIGN, OTHER))
    assert (f.ac, f.ac_other, f.invokes) == (None, False, (56,))

    cap = TcapMessage(
        TcapMessageType.BEGIN,
        otid=b"\x02",
        dialogue=Dialogue(DialogueKind.REQUEST, (0, 4, 0, 0, 1, 21, 3, 4)),  # not MAP
        components=(map_invoke(1, arg),),
    )
    f = _facts(fx.data(cap, FOREIGN, OTHER))
    assert (f.ac, f.ac_other) == (None, True)

    glob = TcapMessage(
        TcapMessageType.BEGIN,
        otid=b"\x03",
        dialogue=Dialogue(DialogueKind.REQUEST, (0, 4, 0, 0, 1, 0, 29, 3)),
        components=(Invoke(1, None, None, None, None, (1, 2, 840, 7)),),
    )
    f = _facts(fx.data(glob, FOREIGN, OTHER))
    assert (f.global_opcode, f.invokes, f.opcode) == (True, (), None)


def test_repr_of_facts_masks_identifiers() -> None:
    f = _facts(fx.data(fx._begin(map_invoke(1, CASES[0][0]), CASES[0][1])[0], NEAR_VLR, HLR))
    text = repr(f)
    for secret in (HOME_IMSI, NEAR_VLR, HLR):
        assert secret not in text
