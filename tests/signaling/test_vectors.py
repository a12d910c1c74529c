"""Each layer against hand-written vectors from the specs (see vectors.py)."""

from __future__ import annotations

import pytest

from herald.signaling import decode, encode
from herald.signaling.m3ua import (
    AspState,
    AspTraffic,
    Data,
    DestinationState,
    Error,
    Heartbeat,
    Kind,
    Notify,
    decode_m3ua,
    encode_m3ua,
)
from herald.signaling.map_codec import decode_argument, encode_argument
from herald.signaling.map_ops import MapAc, MapOperation, map_ac
from herald.signaling.map_types import (
    ForwardSmArg,
    RoutingInfoForSmArg,
    SmRpDaKind,
    SmRpOaKind,
    UpdateLocationArg,
)
from herald.signaling.message import (
    DialogueKind,
    Invoke,
    RoutingIndicator,
    SccpMessageType,
    TcapMessageType,
)
from herald.signaling.sccp import decode_unitdata, encode_unitdata
from herald.signaling.tcap import decode_tcap, encode_tcap

from .vectors import (
    ASPAC,
    ASPUP,
    BEAT,
    DUNA,
    ERR,
    MT_FSM_ARGUMENT,
    NTFY,
    SRI_SM_ARGUMENT,
    UDTS,
    UL_ARGUMENT,
    UL_M3UA,
    UL_TCAP,
    UL_UDT,
    XUDT,
)

IMSI = "001010123456789"


def test_m3ua_data_routing_label_and_context() -> None:
    msg = decode_m3ua(UL_M3UA)
    assert isinstance(msg, Data)
    assert (msg.label.opc, msg.label.dpc) == (0x1234, 0x0101)
    assert (msg.label.si, msg.label.ni, msg.label.mp, msg.label.sls) == (3, 2, 0, 10)
    assert msg.routing_context == 7
    assert msg.network_appearance is None
    assert msg.user_data == UL_UDT
    assert encode_m3ua(msg) == UL_M3UA


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (ASPUP, AspState(Kind.ASPUP, asp_identifier=42)),
        (BEAT, Heartbeat(Kind.BEAT, b"heral")),
        (NTFY, Notify(1, 3, routing_contexts=(7,))),
        (ERR, Error(0x19)),
        (DUNA, DestinationState(Kind.DUNA, (0x1234,))),
        (ASPAC, AspTraffic(Kind.ASPAC, (7,), traffic_mode=2)),
    ],
    ids=["ASPUP", "BEAT", "NTFY", "ERR", "DUNA", "ASPAC"],
)
def test_m3ua_management_messages(wire: bytes, expected: object) -> None:
    decoded = decode_m3ua(wire)
    assert decoded == expected
    assert encode_m3ua(decoded) == wire


def test_sccp_udt_addresses() -> None:
    udt = decode_unitdata(UL_UDT)
    assert udt.kind is SccpMessageType.UDT
    assert udt.protocol_class == 0 and udt.return_on_error
    called, calling = udt.called, udt.calling
    assert called.routing is RoutingIndicator.GLOBAL_TITLE
    assert (called.ssn, called.point_code) == (6, None)
    assert called.gt is not None and calling.gt is not None
    assert called.gt.digits == "1999000001"
    assert (called.gt.indicator, called.gt.translation_type) == (4, 0)
    assert (called.gt.numbering_plan, called.gt.nature) == (1, 4)
    assert (calling.ssn, calling.gt.digits) == (7, "2888000102")
    assert udt.data == UL_TCAP
    assert encode_unitdata(udt) == UL_UDT


def test_sccp_xudt_optional_part_and_udts() -> None:
    xudt = decode_unitdata(XUDT)
    assert xudt.kind is SccpMessageType.XUDT
    assert (xudt.protocol_class, xudt.hop_counter, xudt.importance) == (1, 15, 4)
    assert xudt.called.routing is RoutingIndicator.SSN and xudt.called.ssn == 8
    assert xudt.data == bytes.fromhex("aabbcc")
    assert encode_unitdata(xudt) == XUDT
    udts = decode_unitdata(UDTS)
    assert udts.kind is SccpMessageType.UDTS
    assert udts.return_cause == 1
    assert (udts.called.point_code, udts.called.ssn) == (0x0101, 8)
    assert encode_unitdata(udts) == UDTS


def test_tcap_begin_dialogue_and_invoke() -> None:
    tcap = decode_tcap(UL_TCAP)
    assert tcap.kind is TcapMessageType.BEGIN
    assert tcap.otid == b"\x00\x00\x00\x01" and tcap.dtid is None
    assert tcap.dialogue is not None
    assert tcap.dialogue.kind is DialogueKind.REQUEST
    assert tcap.application_context == (0, 4, 0, 0, 1, 0, 1, 3)
    assert map_ac(tcap.application_context) == (MapAc.NETWORK_LOC_UP, 3)
    (component,) = tcap.components
    assert isinstance(component, Invoke)
    assert (component.invoke_id, component.opcode) == (1, MapOperation.UPDATE_LOCATION)
    assert component.parameter == UL_ARGUMENT
    assert component.argument is None  # decode_tcap alone does not decode MAP
    assert encode_tcap(tcap) == UL_TCAP


def test_map_update_location_argument() -> None:
    arg = decode_argument(MapOperation.UPDATE_LOCATION, UL_ARGUMENT, 0, len(UL_ARGUMENT))
    assert isinstance(arg, UpdateLocationArg)
    assert arg.imsi == IMSI
    assert (arg.msc_number.digits, arg.msc_number.nature, arg.msc_number.numbering_plan) == (
        "2888000101", 1, 1)
    assert arg.vlr_number.digits == "2888000102"
    assert encode_argument(arg) == UL_ARGUMENT


def test_map_sri_sm_argument() -> None:
    arg = decode_argument(45, SRI_SM_ARGUMENT, 0, len(SRI_SM_ARGUMENT))
    assert isinstance(arg, RoutingInfoForSmArg)
    assert arg.msisdn.digits == "199900005"
    assert arg.sm_rp_pri is True
    assert arg.service_centre.digits == "288"
    assert arg.delivery_not_intended == 0
    assert encode_argument(arg) == SRI_SM_ARGUMENT


def test_map_mt_forward_sm_sees_a_silent_sms() -> None:
    arg = decode_argument(44, MT_FSM_ARGUMENT, 0, len(MT_FSM_ARGUMENT))
    assert isinstance(arg, ForwardSmArg)
    assert arg.da.kind is SmRpDaKind.IMSI and arg.da.imsi == IMSI
    assert arg.oa.kind is SmRpOaKind.SERVICE_CENTRE
    assert arg.oa.address is not None and arg.oa.address.digits == "28880"
    assert arg.tpdu is not None
    assert (arg.tpdu.mti, arg.tpdu.pid, arg.tpdu.dcs) == (0, 0x40, 0)
    assert arg.tpdu.is_silent
    assert arg.tpdu.address.digits == "9991000001"
    assert encode_argument(arg) == MT_FSM_ARGUMENT


def test_map_argument_not_decoded_under_a_non_map_context() -> None:
    cap_ac = (0, 4, 0, 0, 1, 21, 3, 4)  # a CAP v3 context: CAP reuses opcode numbers
    assert decode_argument(2, UL_ARGUMENT, 0, len(UL_ARGUMENT), cap_ac) is None
    assert decode_argument(2, UL_ARGUMENT, 0, len(UL_ARGUMENT), None) is not None


def test_whole_stack() -> None:
    msg = decode(UL_M3UA)
    assert msg.label.opc == 0x1234 and msg.routing_context == 7
    assert msg.calling_digits == "2888000102" and msg.called_digits == "1999000001"
    assert (msg.calling.ssn, msg.called.ssn) == (7, 6)
    assert msg.operation == MapOperation.UPDATE_LOCATION
    assert map_ac(msg.application_context) == (MapAc.NETWORK_LOC_UP, 3)
    arg = msg.argument
    assert isinstance(arg, UpdateLocationArg) and arg.imsi == IMSI
    assert len(msg.invokes) == 1
    assert encode(msg) == UL_M3UA


def test_values_compare_by_class_and_fields() -> None:
    a = decode(UL_M3UA)
    assert a == decode(bytearray(UL_M3UA))
    assert hash(a) == hash(decode(memoryview(UL_M3UA)))
    arg = a.argument
    assert arg is not None
    # A plain NamedTuple would equal any tuple with the same items.
    assert arg != tuple(arg)
    assert a._replace(routing_context=8) != a
