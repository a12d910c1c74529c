"""Facts for the engine tests: a test policy and one builder per message shape.

All numbering is fictional: home PLMN 001-01 (GTs 1999...), partners 002-02
("near", GTs 2888...) and 003-03 ("far", GTs 3777...), and a network without
an agreement (GTs 4666...).
"""

from __future__ import annotations

from herald.signaling.map_ops import MapAc
from herald.signaling.map_types import SmRpDaKind
from herald.signaling.policy import (
    ComponentKind,
    Facts,
    Policy,
    TcapKind,
    parse_policy,
)

POLICY_TOML = """
name = "test"
salt = "test-salt-0123456789abcdef"

[regions]
home = { lat = 50.0, lon = 10.0 }
near = { lat = 52.0, lon = 13.0 }
far = { lat = -33.9, lon = 151.2 }

[home]
mcc = "001"
mnc = "01"
gt_prefixes = ["1999"]
imsi_prefixes = ["00101"]
msisdn_prefixes = ["1999"]
region = "home"

[platform]
gts = ["19990000001"]

[[partners]]
name = "near"
mcc = "002"
mnc = "02"
gt_prefixes = ["2888"]
region = "near"

[[partners]]
name = "far"
mcc = "003"
mnc = "03"
gt_prefixes = ["3777"]
region = "far"
"""

HLR = "19991000001"
VLR_HOME = "19992000001"
MSC_HOME = "19992000001"
PLATFORM = "19990000001"
NEAR_SMSC = "28881000001"
NEAR_VLR = "28882000001"
NEAR_HLR = "28883000001"
FAR_VLR = "37772000001"
FOREIGN = "46661234567"
HOME_IMSI = "001010000000001"
NEAR_IMSI = "002020000000001"
FAR_IMSI = "003030000000001"
HOME_MSISDN = "19995550001"


def policy(extra: str = "") -> Policy:
    return parse_policy(POLICY_TOML + extra)


_TID = [0]


def tid() -> bytes:
    _TID[0] += 1
    return _TID[0].to_bytes(4, "big")


def invoke(
    t: float,
    opcode: int,
    ac: tuple[int, int] | None,
    calling: str,
    called: str = HLR,
    **fields: object,
) -> Facts:
    """A TC-BEGIN carrying one invoke."""
    return Facts(
        time=t,
        calling_gt=calling,
        called_gt=called,
        tcap=TcapKind.BEGIN,
        otid=tid(),
        ac=ac,
        component=ComponentKind.INVOKE,
        opcode=opcode,
        invokes=(opcode,),
        **fields,  # type: ignore[arg-type]
    )


def sri_sm(t: float, calling: str, msisdn: str = HOME_MSISDN, **fields: object) -> Facts:
    return invoke(t, 45, (MapAc.SHORT_MSG_GATEWAY, 3), calling, HLR, msisdn=msisdn, **fields)


def sri_sm_result(
    t: float, begin: Facts, imsi: str = HOME_IMSI, node: str = MSC_HOME, hlr: str = HLR
) -> Facts:
    """The HLR's TC-END answering ``begin``: IMSI and serving node."""
    return Facts(
        time=t,
        calling_gt=hlr,
        called_gt=begin.calling_gt,
        tcap=TcapKind.END,
        dtid=begin.otid,
        component=ComponentKind.RETURN_RESULT_LAST,
        opcode=45,
        imsi=imsi,
        msc_number=node,
    )


def mt_fsm(
    t: float,
    calling: str,
    imsi: str = HOME_IMSI,
    node: str = MSC_HOME,
    pid: int = 0,
    **fields: object,
) -> Facts:
    return invoke(
        t,
        44,
        (MapAc.SHORT_MSG_MT_RELAY, 3),
        calling,
        node,
        imsi=imsi,
        sm_rp_da=SmRpDaKind.IMSI,
        tp_pid=pid,
        **fields,
    )


def update_location(
    t: float, vlr: str, imsi: str = HOME_IMSI, *, vlr_number: str | None = None
) -> Facts:
    return invoke(
        t,
        2,
        (MapAc.NETWORK_LOC_UP, 3),
        vlr,
        HLR,
        imsi=imsi,
        msc_number=vlr,
        vlr_number=vlr if vlr_number is None else vlr_number,
    )


def continue_from_responder(t: float, begin: Facts, opcode: int, **fields: object) -> Facts:
    """The responder's TC-CONTINUE inside ``begin``'s dialogue, carrying an invoke."""
    return Facts(
        time=t,
        calling_gt=begin.called_gt,
        called_gt=begin.calling_gt,
        tcap=TcapKind.CONTINUE,
        otid=tid(),
        dtid=begin.otid,
        component=ComponentKind.INVOKE,
        opcode=opcode,
        invokes=(opcode,),
        **fields,  # type: ignore[arg-type]
    )


def at(f: Facts, t: float) -> Facts:
    return f._replace(time=t, otid=tid() if f.otid else b"")
