"""An independent capture for ``bench/guard.py``: mixed MAP traffic whose every
layer (M3UA, SCCP, TCAP and the MAP argument) is encoded by pycrate, not by
herald, under a policy of its own.

herald's own capture (``herald.guard.corpus.big_capture``) is encoded by
herald's encoder, repeats a few node addresses (the decoder's caches nearly
always hit) and routes every lookup on a node's GT. This one differs where a
real interconnect does: lookups are routed on the subscriber's number (the
called GT changes with every SRI-SM), called and calling parties carry a
nature of address and an SSN, dozens of SMSCs and MSCs, random 4-octet
transaction ids, SMS text of varying length, and pycrate's encodings (its
dialogue portions, lengths and argument layouts). The mix: SMS to home
subscribers from partners' SMSCs (SRI-SM, its answer, the MT-ForwardSM and
its answer), home subscribers roaming in partner networks (UpdateLocation
with the HLR's InsertSubscriberData, authentication, their MO-ForwardSMs),
home-network location updates, and about 10% attacks from a network without
an agreement (AnyTimeInterrogation, ProvideSubscriberInfo, SendRoutingInfo,
SendIMSI, SRI-SM).

Numbering is fictional: MCC 999 is reserved for internal use (E.212), and
the GTs are under the international networks' code 883.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pycrate_mobile.M3UA as PM3UA
import pycrate_mobile.SCCP as PSCCP
from pycrate_asn1dir import TCAP_MAPv2v3
from pycrate_mobile.TS23038 import encode_7b
from pycrate_mobile.TS24008_IE import encode_bcd

__all__ = ["POLICY_TOML", "independent_capture"]

_TCAP_MAP = TCAP_MAPv2v3.TCAP_MAP_Messages.TCAP_MAP_Message

HOME_MCC, HOME_MNC = "999", "70"
HLRS = [f"88370{i:06d}" for i in range(1, 5)]
MSCS = [f"88371{i:06d}" for i in range(1, 21)]  # MSC and VLR share the node's GT
HOME_SMSC = "883720000001"
PARTNERS = {  # name: (mcc, mnc, GT prefix, region)
    "east": ("999", "71", "88381", "east"),
    "west": ("999", "72", "88382", "west"),
}
FOREIGN = [f"88390{i:06d}" for i in range(1, 9)]  # no agreement

POLICY_TOML = f"""\
# herald guard policy for bench/guard.py's independent (pycrate-encoded) capture.
name = "independent"
salt = "independent-bench-salt-not-a-secret"

[regions]
home = {{ lat = 47.0, lon = 8.0 }}
east = {{ lat = 48.2, lon = 16.4 }}
west = {{ lat = 48.9, lon = 2.4 }}

[home]
mcc = "{HOME_MCC}"
mnc = "{HOME_MNC}"
gt_prefixes = ["8837"]
msisdn_prefixes = ["8836"]
region = "home"
""" + "".join(
    f'\n[[partners]]\nname = "{name}"\nmcc = "{mcc}"\nmnc = "{mnc}"\n'
    f'gt_prefixes = ["{prefix}"]\nregion = "{region}"\n'
    for name, (mcc, mnc, prefix, region) in PARTNERS.items()
)

# Q.713 §3.4: route on GT, GT indicator 4 (TT, NP, ES, NAI), SSN present.
SSN_HLR, SSN_VLR, SSN_MSC, SSN_GSMSCF = 6, 7, 8, 147
DIALOGUE_AS: tuple[int, ...] = (0, 0, 17, 773, 1, 1, 1)


def _ac(context: int, version: int = 3) -> tuple[int, ...]:
    """A MAP application context (TS 29.002 §17.3.2)."""
    return (0, 4, 0, 0, 1, 0, context, version)


AC_SMS_GATEWAY, AC_MT_RELAY, AC_MO_RELAY = _ac(20), _ac(25), _ac(21)
AC_LOC_UP, AC_AUTH, AC_ATI, AC_PSI = _ac(1), _ac(14), _ac(29), _ac(28)
AC_SRI, AC_IMSI = _ac(5), _ac(26, 2)


def _isdn(digits: str) -> bytes:
    """ISDN-AddressString: international, E.164, then TBCD (TS 29.002 §17.7.8)."""
    return b"\x91" + encode_bcd(digits)


def _party(digits: str, ssn: int) -> dict[str, Any]:
    return {
        "AddrInd": {"RoutingInd": 0, "GTInd": 4, "SSNInd": 1, "PCInd": 0},
        "SSN": ssn,
        "GT": {"TranslationType": 0, "NumberingPlan": 1, "NAI": 4,
               "EncodingScheme": 1 if len(digits) % 2 else 2, "Addr": digits},
    }


def _dialogue(ac: tuple[int, ...], answer: bool) -> dict[str, Any]:
    if answer:
        pdu = ("dialogueResponse", {
            "protocol-version": (1, 1), "application-context-name": ac, "result": 0,
            "result-source-diagnostic": ("dialogue-service-user", 0)})
    else:
        pdu = ("dialogueRequest", {"protocol-version": (1, 1), "application-context-name": ac})
    return {"direct-reference": DIALOGUE_AS,
            "encoding": ("single-ASN1-type", ("DialoguePDU", pdu))}


def _invoke(invoke_id: int, opcode: int, argument: tuple[Any, Any]) -> tuple[str, Any]:
    return ("basicROS", ("invoke", {"invokeId": ("present", invoke_id),
                                    "opcode": ("local", opcode), "argument": argument}))


def _result(invoke_id: int, opcode: int | None = None,
            result: tuple[Any, Any] | None = None) -> tuple[str, Any]:
    value: dict[str, Any] = {"invokeId": ("present", invoke_id)}
    if opcode is not None:
        value["result"] = {"opcode": ("local", opcode), "result": result}
    return ("basicROS", ("returnResult", value))


def _deliver_tpdu(originator: str, text: str, pid: int = 0) -> bytes:
    """SMS-DELIVER (TS 23.040 §9.2.2.1), GSM 7-bit text."""
    packed, septets = encode_7b(text)
    digits = encode_bcd(originator)
    return (bytes([0x04, len(originator), 0x91]) + digits + bytes([pid, 0x00])
            + bytes.fromhex("32103141520040") + bytes([septets]) + packed)


def _submit_tpdu(reference: int, destination: str, text: str) -> bytes:
    """SMS-SUBMIT (TS 23.040 §9.2.2.2), no validity period, GSM 7-bit text."""
    packed, septets = encode_7b(text)
    return (bytes([0x01, reference & 0xFF, len(destination), 0x91]) + encode_bcd(destination)
            + bytes([0x00, 0x00, septets]) + packed)


class _Capture:
    """Encodes messages with pycrate into (time, M3UA bytes) records."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.records: list[tuple[float, bytes]] = []
        # One SCCP and one M3UA message, their values replaced per record
        # (building pycrate's objects costs far more than encoding them).
        self.sccp = PSCCP.SCCPUnitData()
        self.m3ua = PM3UA.M3UA_DATA()
        params = self.m3ua[1]
        params.clear()
        params.add_prm(PM3UA.M3UATag.RoutingContext)
        params[-1][2].set_val([21])
        params.add_prm(PM3UA.M3UATag.ProtocolData)
        self.protocol_data = params[-1][2]

    def tid(self) -> bytes:
        return self.rng.getrandbits(32).to_bytes(4, "big")

    def send(self, now: float, called: tuple[str, int], calling: tuple[str, int],
             tcap: tuple[str, dict[str, Any]]) -> None:
        _TCAP_MAP.set_val(tcap)
        self.sccp.set_val({"ProtocolClass": {"Handling": 8, "Class": 0},
                           "CalledPartyAddr": {"Value": _party(*called)},
                           "CallingPartyAddr": {"Value": _party(*calling)},
                           "Data": {"Value": _TCAP_MAP.to_ber()}})
        self.protocol_data.set_val({"OPC": 0x2A1, "DPC": 0x0102, "SI": 3, "NI": 0, "MP": 0,
                                    "SLS": self.rng.randrange(16),
                                    "Data": self.sccp.to_bytes()})
        self.records.append((now, self.m3ua.to_bytes()))


class _Traffic:
    """The flows; state enough that benign traffic stays benign (each roaming
    subscriber registers in one partner network, and sends SMS only from
    there; subscribers at home never roam)."""

    def __init__(self, capture: _Capture) -> None:
        self.c = capture
        rng = capture.rng
        # Sparse numbers: an SMSC's lookups of random subscribers are not a sweep.
        self.subscribers = [(f"8836{n:07d}", f"{HOME_MCC}{HOME_MNC}{n:010d}")
                            for n in rng.sample(range(10**7), 50_000)]
        self.smscs = {name: [f"{prefix}1{i:05d}" for i in range(1, 26)]
                      for name, (_, _, prefix, _) in PARTNERS.items()}
        self.vlrs = {name: [f"{prefix}2{i:05d}" for i in range(1, 11)]
                     for name, (_, _, prefix, _) in PARTNERS.items()}
        self.roaming: dict[str, tuple[str, str, str]] = {}  # msisdn: (imsi, partner, VLR)
        self.roamers: list[str] = []  # in registration order

    def sms_mt(self, now: float) -> float:
        rng, c = self.c.rng, self.c
        msisdn, imsi = rng.choice(self.subscribers)
        smsc = rng.choice(self.smscs[rng.choice(list(PARTNERS))])
        hlr, msc = rng.choice(HLRS), rng.choice(MSCS)
        otid = c.tid()
        c.send(now, (msisdn, SSN_HLR), (smsc, SSN_MSC), ("begin", {
            "otid": otid, "dialoguePortion": _dialogue(AC_SMS_GATEWAY, False),
            "components": [_invoke(1, 45, (("MAP-SM-DataTypes", "RoutingInfoForSM-Arg"), {
                "msisdn": _isdn(msisdn), "sm-RP-PRI": True,
                "serviceCentreAddress": _isdn(smsc)}))]}))
        now += rng.uniform(0.002, 0.02)
        c.send(now, (smsc, SSN_MSC), (hlr, SSN_HLR), ("end", {
            "dtid": otid, "dialoguePortion": _dialogue(AC_SMS_GATEWAY, True),
            "components": [_result(1, 45, (("MAP-SM-DataTypes", "RoutingInfoForSM-Res"), {
                "imsi": encode_bcd(imsi),
                "locationInfoWithLMSI": {"networkNode-Number": _isdn(msc)}}))]}))
        now += rng.uniform(0.01, 0.2)
        text = "".join(rng.choice("0123456789 abcdefghijklmnopqrstuvwxyz")
                       for _ in range(rng.randrange(20, 160)))
        otid = c.tid()
        c.send(now, (msc, SSN_MSC), (smsc, SSN_MSC), ("begin", {
            "otid": otid, "dialoguePortion": _dialogue(AC_MT_RELAY, False),
            "components": [_invoke(1, 44, ("MT-ForwardSM-Arg", {
                "sm-RP-DA": ("imsi", encode_bcd(imsi)),
                "sm-RP-OA": ("serviceCentreAddressOA", _isdn(smsc)),
                "sm-RP-UI": _deliver_tpdu(f"883{rng.randrange(10**8):08d}", text)}))]}))
        now += rng.uniform(0.05, 0.5)
        c.send(now, (smsc, SSN_MSC), (msc, SSN_MSC), ("end", {
            "dtid": otid, "dialoguePortion": _dialogue(AC_MT_RELAY, True),
            "components": [_result(1)]}))
        return now

    def roam(self, now: float) -> float:
        """A home subscriber registers in a partner network (once)."""
        rng, c = self.c.rng, self.c
        if self.roamers and rng.random() < 0.5:
            return self.auth(now, rng.choice(self.roamers[-2000:]))
        msisdn, imsi = rng.choice(self.subscribers[len(self.subscribers) // 2:])
        if msisdn in self.roaming:
            return now
        partner = rng.choice(list(PARTNERS))
        vlr = rng.choice(self.vlrs[partner])
        hlr = rng.choice(HLRS)
        otid, hlr_tid = c.tid(), c.tid()
        c.send(now, (hlr, SSN_HLR), (vlr, SSN_VLR), ("begin", {
            "otid": otid, "dialoguePortion": _dialogue(AC_LOC_UP, False),
            "components": [_invoke(1, 2, (("MAP-MS-DataTypes", "UpdateLocationArg"), {
                "imsi": encode_bcd(imsi), "msc-Number": _isdn(vlr),
                "vlr-Number": _isdn(vlr)}))]}))
        now += rng.uniform(0.005, 0.03)
        c.send(now, (vlr, SSN_VLR), (hlr, SSN_HLR), ("continue", {
            "otid": hlr_tid, "dtid": otid, "dialoguePortion": _dialogue(AC_LOC_UP, True),
            "components": [_invoke(1, 7, (("MAP-MS-DataTypes", "InsertSubscriberDataArg"), {
                "msisdn": _isdn(msisdn)}))]}))
        now += rng.uniform(0.005, 0.03)
        c.send(now, (hlr, SSN_HLR), (vlr, SSN_VLR), ("continue", {
            "otid": otid, "dtid": hlr_tid, "components": [_result(1)]}))
        now += rng.uniform(0.005, 0.03)
        c.send(now, (vlr, SSN_VLR), (hlr, SSN_HLR), ("end", {
            "dtid": otid, "components": [_result(1, 2, (
                ("MAP-MS-DataTypes", "UpdateLocationRes"), {"hlr-Number": _isdn(hlr)}))]}))
        self.roaming[msisdn] = (imsi, partner, vlr)
        self.roamers.append(msisdn)
        return now

    def auth(self, now: float, msisdn: str) -> float:
        rng, c = self.c.rng, self.c
        imsi, _, vlr = self.roaming[msisdn]
        hlr = rng.choice(HLRS)
        otid = c.tid()
        c.send(now, (hlr, SSN_HLR), (vlr, SSN_VLR), ("begin", {
            "otid": otid, "dialoguePortion": _dialogue(AC_AUTH, False),
            "components": [_invoke(1, 56, (("MAP-MS-DataTypes", "SendAuthenticationInfoArg"), {
                "imsi": encode_bcd(imsi), "numberOfRequestedVectors": 3}))]}))
        now += rng.uniform(0.005, 0.03)
        c.send(now, (vlr, SSN_VLR), (hlr, SSN_HLR), ("end", {
            "dtid": otid, "dialoguePortion": _dialogue(AC_AUTH, True),
            "components": [_result(1, 56, (
                ("MAP-MS-DataTypes", "SendAuthenticationInfoRes"), {}))]}))
        return now

    def sms_mo(self, now: float) -> float:
        """A roaming home subscriber's SMS, from the partner's MSC to the home SMSC."""
        rng, c = self.c.rng, self.c
        if not self.roamers:
            return self.roam(now)
        msisdn = rng.choice(self.roamers[-2000:])
        _, _, vlr = self.roaming[msisdn]
        text = "".join(rng.choice("abcdefghij klmnopqrstuvwxyz")
                       for _ in range(rng.randrange(5, 120)))
        otid = c.tid()
        c.send(now, (HOME_SMSC, SSN_MSC), (vlr, SSN_MSC), ("begin", {
            "otid": otid, "dialoguePortion": _dialogue(AC_MO_RELAY, False),
            "components": [_invoke(1, 46, ("MO-ForwardSM-Arg", {
                "sm-RP-DA": ("serviceCentreAddressDA", _isdn(HOME_SMSC)),
                "sm-RP-OA": ("msisdn", _isdn(msisdn)),
                "sm-RP-UI": _submit_tpdu(rng.randrange(256), f"883{rng.randrange(10**8):08d}",
                                         text)}))]}))
        now += rng.uniform(0.05, 0.3)
        c.send(now, (vlr, SSN_MSC), (HOME_SMSC, SSN_MSC), ("end", {
            "dtid": otid, "dialoguePortion": _dialogue(AC_MO_RELAY, True),
            "components": [_result(1)]}))
        return now

    def home_update(self, now: float) -> float:
        """Home-network location update (observed only), for the half of the
        subscribers that never roams (a jump abroad within seconds of a home
        update is what cat3-velocity blocks)."""
        rng, c = self.c.rng, self.c
        _, imsi = rng.choice(self.subscribers[: len(self.subscribers) // 2])
        vlr, hlr = rng.choice(MSCS), rng.choice(HLRS)
        otid = c.tid()
        c.send(now, (hlr, SSN_HLR), (vlr, SSN_VLR), ("begin", {
            "otid": otid, "dialoguePortion": _dialogue(AC_LOC_UP, False),
            "components": [_invoke(1, 2, (("MAP-MS-DataTypes", "UpdateLocationArg"), {
                "imsi": encode_bcd(imsi), "msc-Number": _isdn(vlr),
                "vlr-Number": _isdn(vlr)}))]}))
        now += rng.uniform(0.005, 0.03)
        c.send(now, (vlr, SSN_VLR), (hlr, SSN_HLR), ("end", {
            "dtid": otid, "components": [_result(1, 2, (
                ("MAP-MS-DataTypes", "UpdateLocationRes"), {"hlr-Number": _isdn(hlr)}))]}))
        return now

    def attack(self, now: float) -> float:
        """One lookup from a network without an agreement (blocked or alerted)."""
        rng, c = self.c.rng, self.c
        msisdn, imsi = rng.choice(self.subscribers)
        node = rng.choice(FOREIGN)
        kind = rng.randrange(5)
        if kind == 0:
            ac, op, called, arg = AC_ATI, 71, (msisdn, SSN_HLR), ("AnyTimeInterrogationArg", {
                "subscriberIdentity": ("msisdn", _isdn(msisdn)),
                "requestedInfo": {"locationInformation": 0, "subscriberState": 0},
                "gsmSCF-Address": _isdn(node)})
        elif kind == 1:
            ac, op, called, arg = AC_PSI, 70, (rng.choice(MSCS), SSN_VLR), (
                "ProvideSubscriberInfoArg", {"imsi": encode_bcd(imsi),
                                             "requestedInfo": {"locationInformation": 0}})
        elif kind == 2:
            ac, op, called, arg = AC_SRI, 22, (msisdn, SSN_HLR), (
                ("MAP-CH-DataTypes", "SendRoutingInfoArg"), {
                    "msisdn": _isdn(msisdn), "interrogationType": "basicCall",
                    "gmsc-OrGsmSCF-Address": _isdn(node)})
        elif kind == 3:
            ac, op, called, arg = AC_IMSI, 58, (msisdn, SSN_HLR), (
                "ISDN-AddressString", _isdn(msisdn))
        else:
            ac, op, called, arg = AC_SMS_GATEWAY, 45, (msisdn, SSN_HLR), (
                ("MAP-SM-DataTypes", "RoutingInfoForSM-Arg"), {
                    "msisdn": _isdn(msisdn), "sm-RP-PRI": True,
                    "serviceCentreAddress": _isdn(node)})
        c.send(now, called, (node, SSN_GSMSCF if op in (70, 71) else SSN_MSC), ("begin", {
            "otid": c.tid(), "dialoguePortion": _dialogue(ac, False),
            "components": [_invoke(rng.randrange(1, 128), op, arg)]}))
        return now


def independent_capture(messages: int = 10_000, seed: int = 1) -> list[tuple[float, bytes]]:
    """``messages`` records (time, M3UA DATA bytes) in time order, encoded by
    pycrate; judge them under :data:`POLICY_TOML`. Deterministic for a given
    ``seed``; about 2 ms a message to build."""
    capture = _Capture(random.Random(seed))
    traffic = _Traffic(capture)
    flows: list[tuple[float, Callable[[float], float]]] = [
        (0.50, traffic.sms_mt), (0.12, traffic.roam), (0.12, traffic.sms_mo),
        (0.14, traffic.home_update), (0.12, traffic.attack),
    ]
    weights = [w for w, _ in flows]
    start = now = 1_750_000_000.0
    while len(capture.records) < messages:
        (_, flow), = capture.rng.choices(flows, weights)
        flow(now)
        now += capture.rng.expovariate(300.0)  # ~300 flows a second
    records = sorted(capture.records, key=lambda r: r[0])[:messages]
    assert records[0][0] >= start
    return records
