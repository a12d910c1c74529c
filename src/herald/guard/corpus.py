"""The labelled scenario corpus: SS7 test traffic, benign and attack, as fixtures.

This is test data. It is built in memory and written only to files under a
directory the caller names (a pcap, its labels, the matching policy); nothing
here opens a socket, and the pcap's addresses are RFC 5737 documentation
addresses. The numbering is fictional: home network MCC 001 / MNC 01 (E.212
test network), partners 002/02 and 003/03, global titles and MSISDNs in
unassigned E.164 ranges (+1999, +2888, +3777, +4666).

Every message carries a :class:`Label`: its scenario, whether it belongs to an
attack, and the verdict and rule the guard is expected to give it *as a
message* (a reconnaissance probe that no single message betrays, like the
first lookups of a range sweep, is an attack message expected to be allowed;
the scenario as a whole is caught). Rule names are the policy engine's
(:class:`herald.signaling.policy.Rule` values).

Scenarios (see :data:`SCENARIOS`):

========================  ======  ================================================
scenario                  kind    what happens
========================  ======  ================================================
sms-delivery              benign  partner SMSC: SRI-SM, HLR answers, MT-ForwardSM
platform-sms              benign  platform GT delivers queued customer messages
roaming-outbound          benign  partner VLR registers a home subscriber (UL+ISD)
roaming-inbound           benign  home VLR registers a partner's subscriber
auth-info                 benign  SendAuthenticationInfo both ways
ati                       attack  AnyTimeInterrogation from a foreign GT (cat1)
psi                       attack  ProvideSubscriberInfo on a home IMSI (cat2)
sri                       attack  SendRoutingInfo from a foreign GT (cat1)
send-imsi                 attack  SendIMSI from a foreign GT (cat1)
psl                       attack  ProvideSubscriberLocation (cat1)
interception              attack  UL from a far network a minute after a near one,
                                  then the HLR's ISD (cat3-velocity)
platform-lookup           attack  lookup-only SRI-SM from the platform's GT
                                  (platform-egress)
silent-sms                attack  MT-ForwardSM with TP-PID 0x40 (silent-sms)
range-sweep               attack  SRI-SM over consecutive numbers from a network
                                  without agreement (sms-origin, range-sweep)
sms-without-lookup        attack  MT-ForwardSM with no SRI-SM (sms-consistency)
spoofed-sms               attack  MO-ForwardSM from a network without agreement
                                  claiming a home number (sms-spoofing)
vlr-mismatch              attack  UL whose VLR number is not the caller
                                  (address-mismatch)
no-dialogue               attack  TC-BEGIN without application context
                                  (tcap-sanity)
repeated-lookup           attack  the same number looked up again and again
                                  (repeated-lookup)
========================  ======  ================================================

:func:`write_corpus` writes ``corpus.pcap``, ``corpus.labels.jsonl`` (one JSON
object per message: index, scenario, attack, expected, rule),
``policy.toml`` and ``pending.txt`` (the numbers the platform has customer
messages queued for), and SMS home routing's captures, taken on both sides of
the proxy (:mod:`herald.guard.corpus_homerouting`: ``home-routing.*``).
:func:`big_capture` builds a large mixed capture in memory for the benchmark.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from herald.guard.pcap import write_pcap
from herald.signaling.m3ua import Data, encode_m3ua
from herald.signaling.map_codec import encode_argument, encode_result, encode_tpdu
from herald.signaling.map_ops import MapAc, MapOperation, ac_oid
from herald.signaling.map_types import (
    OPCODES,
    SILENT_SMS_PID,
    AddressString,
    AnyTimeInterrogationArg,
    ForwardSmArg,
    InsertSubscriberDataArg,
    MapArgument,
    MapResult,
    ProvideSubscriberInfoArg,
    ProvideSubscriberLocationArg,
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
    ReturnResult,
    RoutingIndicator,
    RoutingLabel,
    SccpAddress,
    SccpMessageType,
    TcapMessage,
    TcapMessageType,
    Unitdata,
)
from herald.signaling.sccp import encode_unitdata
from herald.signaling.tcap import encode_tcap

if TYPE_CHECKING:
    from herald.guard.corpus_homerouting import HomeRoutingFiles

__all__ = [
    "POLICY_TOML",
    "SCENARIOS",
    "Corpus",
    "CorpusFiles",
    "CorpusMessage",
    "Label",
    "big_capture",
    "build_corpus",
    "write_corpus",
]

# ------------------------------------------------------------------ numbering

HOME_MCC, HOME_MNC = "001", "01"
HLR = "19991000001"
HOME_VLR = "19992000001"  # VLR and MSC share the node's GT
HOME_SMSC = "19993000001"
PLATFORM = "19990000001"
NEAR_SMSC = "28881000001"
NEAR_VLR = "28882000001"
NEAR_HLR = "28883000001"
FAR_VLR = "37772000001"
FOREIGN = "46661234567"  # a network without a roaming agreement
FOREIGN_GMLC = "46661230045"

SSN_HLR, SSN_VLR, SSN_MSC, SSN_GMLC, SSN_GSMSCF = 6, 7, 8, 145, 147

#: The policy the corpus is labelled against (parsed by
#: herald.signaling.policy.parse_policy). Region coordinates are coarse and
#: fictional; "far" is far enough that no traveller crosses it in minutes.
POLICY_TOML: Final = f"""\
# herald guard policy for the labelled scenario corpus (test fixture).
name = "corpus"
salt = "corpus-fixture-salt-not-a-secret"

[regions]
home = {{ lat = 50.0, lon = 10.0 }}
near = {{ lat = 52.0, lon = 13.0 }}
far = {{ lat = -33.9, lon = 151.2 }}

[home]
mcc = "{HOME_MCC}"
mnc = "{HOME_MNC}"
gt_prefixes = ["1999"]
imsi_prefixes = ["{HOME_MCC}{HOME_MNC}"]
msisdn_prefixes = ["1999"]
region = "home"

[platform]
gts = ["{PLATFORM}"]

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

#: Capture start: 2023-11-14T22:13:20Z. Scenarios are spaced by this much so
#: one scenario's windows (lookup-only, sweeps) do not reach the next.
T0: Final = 1_700_000_000.0
SCENARIO_GAP_S: Final = 600.0

# M3UA routing label point codes (ITU 14-bit): the interconnect gateway and
# the home STP. SI 3 = SCCP, NI 0 = international network.
PC_INTERCONNECT, PC_HOME = 0x0A0A, 0x0101
ROUTING_CONTEXT: Final = 100


def home_imsi(n: int) -> str:
    return f"{HOME_MCC}{HOME_MNC}{n:010d}"


def near_imsi(n: int) -> str:
    return f"00202{n:010d}"


def home_msisdn(block: int, n: int = 1) -> str:
    """A home MSISDN; distinct ``block`` values are in distinct 1000-number
    ranges, so benign traffic to many subscribers never looks like a sweep."""
    return f"19995{block:03d}{n:03d}"


# --------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Label:
    """What a message is and what the guard should do with it."""

    scenario: str
    attack: bool
    expected: str = "allow"  # "allow" | "block" | "alert"
    rule: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"scenario": self.scenario, "attack": self.attack,
                "expected": self.expected, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class CorpusMessage:
    """One M3UA DATA message of the corpus. ``inbound``: sent from the
    interconnect towards the home network (else from the home side)."""

    timestamp: float
    data: bytes
    label: Label
    inbound: bool = True


@dataclass(slots=True)
class Corpus:
    messages: list[CorpusMessage] = field(default_factory=list)
    #: Numbers with a queued customer message (the platform egress store).
    pending: list[str] = field(default_factory=list)
    policy: str = POLICY_TOML

    def records(self) -> list[tuple[float, bytes]]:
        """``(timestamp, m3ua_bytes)`` in capture order, as a scanner reads them."""
        return [(m.timestamp, m.data) for m in self.messages]


@dataclass(frozen=True, slots=True)
class CorpusFiles:
    pcap: Path
    labels: Path
    policy: Path
    pending: Path
    #: SMS home routing's captures (herald.guard.corpus_homerouting).
    home_routing: HomeRoutingFiles | None = None


# ------------------------------------------------------------------- builder


def _address(digits: str, ssn: int) -> SccpAddress:
    return SccpAddress(RoutingIndicator.GLOBAL_TITLE, ssn, None, GlobalTitle(digits))


def _isdn(digits: str) -> AddressString:
    return AddressString(digits)


class _Flow:
    """Builds the messages of one corpus, numbering transactions."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._tid = 0

    def tid(self) -> bytes:
        self._tid += 1
        return self._tid.to_bytes(4, "big")

    def emit(self, t: float, label: Label, inbound: bool, calling: SccpAddress,
             called: SccpAddress, tcap: TcapMessage) -> None:
        opc, dpc = (PC_INTERCONNECT, PC_HOME) if inbound else (PC_HOME, PC_INTERCONNECT)
        sls = (tcap.otid or tcap.dtid or b"\0")[-1] & 0x0F
        sccp = Unitdata(SccpMessageType.UDT, called, calling, encode_tcap(tcap))
        data = encode_m3ua(Data(RoutingLabel(opc, dpc, 3, 0, 0, sls), encode_unitdata(sccp),
                                ROUTING_CONTEXT))
        self.corpus.messages.append(CorpusMessage(t, data, label, inbound))

    def begin(self, t: float, label: Label, inbound: bool, calling: SccpAddress,
              called: SccpAddress, ac: tuple[int, int] | None,
              components: tuple[Component, ...]) -> bytes:
        """A TC-BEGIN (with an AARQ unless ``ac`` is None); returns its otid."""
        otid = self.tid()
        dialogue = None if ac is None else Dialogue(DialogueKind.REQUEST, ac_oid(*ac))
        self.emit(t, label, inbound, calling, called,
                  TcapMessage(TcapMessageType.BEGIN, otid, None, dialogue, components))
        return otid

    def answer(self, t: float, label: Label, inbound: bool, calling: SccpAddress,
               called: SccpAddress, dtid: bytes, components: tuple[Component, ...], *,
               ac: tuple[int, int] | None = None, end: bool = True) -> bytes | None:
        """The responder's TC-END (or TC-CONTINUE, returning its new otid); an
        ``ac`` adds the AARE accepting the dialogue (first response only)."""
        dialogue = None
        if ac is not None:
            dialogue = Dialogue(DialogueKind.RESPONSE, ac_oid(*ac), True, 0, (1, 0))
        if end:
            tcap = TcapMessage(TcapMessageType.END, None, dtid, dialogue, components)
            otid = None
        else:
            otid = self.tid()
            tcap = TcapMessage(TcapMessageType.CONTINUE, otid, dtid, dialogue, components)
        self.emit(t, label, inbound, calling, called, tcap)
        return otid

    def cont(self, t: float, label: Label, inbound: bool, calling: SccpAddress,
             called: SccpAddress, otid: bytes, dtid: bytes,
             components: tuple[Component, ...]) -> None:
        self.emit(t, label, inbound, calling, called,
                  TcapMessage(TcapMessageType.CONTINUE, otid, dtid, None, components))


def _inv(arg: MapArgument, opcode: int | None = None) -> tuple[Component, ...]:
    code = opcode if opcode is not None else OPCODES[type(arg)][0]
    return (Invoke(1, code, encode_argument(arg)),)


def _result(opcode: int, res: MapResult | None = None, invoke_id: int = 1) -> tuple[
        Component, ...]:
    if res is None:
        return (ReturnResult(invoke_id),)
    return (ReturnResult(invoke_id, True, opcode, encode_result(res)),)


def _deliver(originator: str, pid: int = 0, text: bytes = b"\x31\xd9\x8c\x56\xb3\xdd\x70",
             septets: int = 8) -> bytes:
    # "12345678" in GSM 7-bit packing is 8 septets in 7 octets.
    return encode_tpdu(SmsTpdu(0, TpAddress(originator, 1, 1), pid, 0), text, septets)


AC_SMS_GATEWAY = (MapAc.SHORT_MSG_GATEWAY, 3)
AC_MT_RELAY = (MapAc.SHORT_MSG_MT_RELAY, 3)
AC_MO_RELAY = (MapAc.SHORT_MSG_MO_RELAY, 3)
AC_LOC_UP = (MapAc.NETWORK_LOC_UP, 3)
AC_INFO = (MapAc.INFO_RETRIEVAL, 3)
OP = MapOperation


# ----------------------------------------------------------------- scenarios


def _sms_flow(f: _Flow, t: float, label: Label, smsc: str, msisdn: str, imsi: str,
              *, sc_address: str | None = None, pid: int = 0,
              mt_label: Label | None = None) -> None:
    """SRI-SM from ``smsc`` to the home HLR, its answer, the MT-ForwardSM to the
    serving MSC and the MSC's acknowledgement."""
    sc = _isdn(sc_address or smsc)
    smsc_a, hlr_a, msc_a = _address(smsc, SSN_MSC), _address(HLR, SSN_HLR), _address(
        HOME_VLR, SSN_MSC)
    otid = f.begin(t, label, True, smsc_a, hlr_a, AC_SMS_GATEWAY,
                   _inv(RoutingInfoForSmArg(_isdn(msisdn), True, sc)))
    f.answer(t + 0.05, label, False, hlr_a, smsc_a, otid,
             _result(OP.SEND_ROUTING_INFO_FOR_SM,
                     RoutingInfoForSmRes(imsi, _isdn(HOME_VLR))), ac=AC_SMS_GATEWAY)
    mt = mt_label or label
    arg = ForwardSmArg(SmRpDa(SmRpDaKind.IMSI, imsi=imsi),
                       SmRpOa(SmRpOaKind.SERVICE_CENTRE, sc), _deliver("19995550123", pid))
    otid = f.begin(t + 1.0, mt, True, smsc_a, msc_a, AC_MT_RELAY,
                   _inv(arg, OP.MT_FORWARD_SM))
    if mt.expected == "allow":
        f.answer(t + 1.2, mt, False, msc_a, smsc_a, otid, _result(OP.MT_FORWARD_SM),
                 ac=AC_MT_RELAY)


def sms_delivery(f: _Flow, t: float) -> None:
    label = Label("sms-delivery", False)
    for i in range(6):
        _sms_flow(f, t + 10 * i, label, NEAR_SMSC, home_msisdn(100 + i), home_imsi(100 + i))


def _platform_flow(f: _Flow, t: float, label: Label, msisdn: str, imsi: str) -> None:
    """The platform delivers a queued customer message to a partner's
    subscriber: SRI-SM to the partner HLR, its answer, MT-ForwardSM, ack."""
    plat = _address(PLATFORM, SSN_MSC)
    hlr = _address(NEAR_HLR, SSN_HLR)
    msc = _address(NEAR_VLR, SSN_MSC)
    f.corpus.pending.append(msisdn)
    otid = f.begin(t, label, False, plat, hlr, AC_SMS_GATEWAY,
                   _inv(RoutingInfoForSmArg(_isdn(msisdn), True, _isdn(PLATFORM))))
    f.answer(t + 0.1, label, True, hlr, plat, otid,
             _result(OP.SEND_ROUTING_INFO_FOR_SM, RoutingInfoForSmRes(imsi, _isdn(NEAR_VLR))),
             ac=AC_SMS_GATEWAY)
    arg = ForwardSmArg(SmRpDa(SmRpDaKind.IMSI, imsi=imsi),
                       SmRpOa(SmRpOaKind.SERVICE_CENTRE, _isdn(PLATFORM)),
                       _deliver("19990000777"))
    otid = f.begin(t + 0.5, label, False, plat, msc, AC_MT_RELAY, _inv(arg, OP.MT_FORWARD_SM))
    f.answer(t + 0.8, label, True, msc, plat, otid, _result(OP.MT_FORWARD_SM), ac=AC_MT_RELAY)


def platform_sms(f: _Flow, t: float) -> None:
    label = Label("platform-sms", False)
    for i in range(3):
        _platform_flow(f, t + 10 * i, label, f"28885{i:03d}001", near_imsi(500 + i))


def _update_location(f: _Flow, t: float, label: Label, inbound: bool, vlr: str, hlr: str,
                     imsi: str, msisdn: str, *, vlr_number: str | None = None,
                     isd_label: Label | None = None, complete: bool = True) -> None:
    """UL from ``vlr`` to ``hlr``; the HLR's ISD (TC-CONTINUE); the VLR's ISD
    ack; the HLR's UL result (TC-END)."""
    vlr_a, hlr_a = _address(vlr, SSN_VLR), _address(hlr, SSN_HLR)
    arg = UpdateLocationArg(imsi, _isdn(vlr), _isdn(vlr_number or vlr))
    vlr_tid = f.begin(t, label, inbound, vlr_a, hlr_a, AC_LOC_UP, _inv(arg))
    isd = InsertSubscriberDataArg(None, _isdn(msisdn))
    hlr_tid = f.answer(t + 0.1, isd_label or label, not inbound, hlr_a, vlr_a, vlr_tid,
                       _inv(isd), ac=AC_LOC_UP, end=False)
    if not complete or hlr_tid is None:
        return
    f.cont(t + 0.2, label, inbound, vlr_a, hlr_a, vlr_tid, hlr_tid,
           _result(OP.INSERT_SUBSCRIBER_DATA))
    f.answer(t + 0.3, label, not inbound, hlr_a, vlr_a, vlr_tid,
             _result(OP.UPDATE_LOCATION, UpdateLocationRes(_isdn(hlr))))


def _sai(f: _Flow, t: float, label: Label, inbound: bool, vlr: str, hlr: str,
         imsi: str) -> None:
    vlr_a, hlr_a = _address(vlr, SSN_VLR), _address(hlr, SSN_HLR)
    otid = f.begin(t, label, inbound, vlr_a, hlr_a, AC_INFO,
                   _inv(SendAuthenticationInfoArg(imsi, 2)))
    # TS 29.002 §8.5.2: SendAuthenticationInfoRes (v3) ::= [3] SEQUENCE {...};
    # every field is optional and the vectors are irrelevant here: send none.
    f.answer(t + 0.1, label, not inbound, hlr_a, vlr_a, otid,
             (ReturnResult(1, True, OP.SEND_AUTHENTICATION_INFO, b"\xa3\x00"),), ac=AC_INFO)


def roaming_outbound(f: _Flow, t: float) -> None:
    label = Label("roaming-outbound", False)
    for i in range(3):
        _update_location(f, t + 20 * i, label, True, NEAR_VLR, HLR, home_imsi(200 + i),
                         home_msisdn(200 + i))


def roaming_inbound(f: _Flow, t: float) -> None:
    label = Label("roaming-inbound", False)
    for i in range(2):
        _update_location(f, t + 20 * i, label, False, HOME_VLR, NEAR_HLR, near_imsi(300 + i),
                         f"28886{i:03d}001")


def auth_info(f: _Flow, t: float) -> None:
    label = Label("auth-info", False)
    for i in range(3):
        _sai(f, t + 5 * i, label, True, NEAR_VLR, HLR, home_imsi(200 + i))
    _sai(f, t + 30, label, False, HOME_VLR, NEAR_HLR, near_imsi(300))


def _probe(f: _Flow, t: float, label: Label, calling: SccpAddress, called: SccpAddress,
           ac: tuple[int, int], arg: MapArgument) -> None:
    f.begin(t, label, True, calling, called, ac, _inv(arg))


def ati(f: _Flow, t: float, n: int = 0) -> None:
    label = Label("ati", True, "block", "cat1")
    _probe(f, t, label, _address(FOREIGN, SSN_GSMSCF), _address(HLR, SSN_HLR),
           (MapAc.ANY_TIME_INFO_ENQUIRY, 3),
           AnyTimeInterrogationArg(_isdn(FOREIGN), msisdn=_isdn(home_msisdn(101, n)),
                                   location_requested=True, state_requested=True))


def psi(f: _Flow, t: float, n: int = 0) -> None:
    label = Label("psi", True, "block", "cat2")
    _probe(f, t, label, _address(FOREIGN, SSN_HLR), _address(HOME_VLR, SSN_VLR),
           (MapAc.SUBSCRIBER_INFO_ENQUIRY, 3),
           ProvideSubscriberInfoArg(home_imsi(101 + 1000 * n), location_requested=True))


def sri(f: _Flow, t: float, n: int = 0) -> None:
    label = Label("sri", True, "block", "cat1")
    _probe(f, t, label, _address(FOREIGN, SSN_MSC), _address(HLR, SSN_HLR),
           (MapAc.LOCATION_INFO_RETRIEVAL, 3),
           SendRoutingInfoArg(_isdn(home_msisdn(102, n)), 0, _isdn(FOREIGN)))


def send_imsi(f: _Flow, t: float) -> None:
    label = Label("send-imsi", True, "block", "cat1")
    _probe(f, t, label, _address(FOREIGN, SSN_VLR), _address(HLR, SSN_HLR),
           (MapAc.IMSI_RETRIEVAL, 2), SendImsiArg(_isdn(home_msisdn(103))))


def psl(f: _Flow, t: float) -> None:
    label = Label("psl", True, "block", "cat1")
    _probe(f, t, label, _address(FOREIGN_GMLC, SSN_GMLC), _address(HOME_VLR, SSN_MSC),
           (MapAc.LOCATION_SVC_ENQUIRY, 3),
           ProvideSubscriberLocationArg(0, _isdn(FOREIGN_GMLC), _isdn(home_msisdn(104))))


def interception(f: _Flow, t: float) -> None:
    # A home subscriber registers in the near partner network (benign), and a
    # minute later "registers" from the far partner's VLR: the HLR would move
    # the subscriber (and its SMS, e.g. one-time codes) to the attacker.
    victim, msisdn = home_imsi(400), home_msisdn(400)
    _update_location(f, t, Label("interception", True), True, NEAR_VLR, HLR, victim, msisdn)
    attack = Label("interception", True, "block", "cat3-velocity")
    _update_location(f, t + 60, attack, True, FAR_VLR, HLR, victim, msisdn, complete=False)


def platform_lookup(f: _Flow, t: float) -> None:
    label = Label("platform-lookup", True, "block", "platform-egress")
    plat, hlr = _address(PLATFORM, SSN_MSC), _address(HLR, SSN_HLR)
    # A lookup that says so (sm-deliveryNotIntended), and one with no
    # customer message queued for the number: both are tracking, not delivery.
    f.begin(t, label, False, plat, hlr, AC_SMS_GATEWAY,
            _inv(RoutingInfoForSmArg(_isdn(home_msisdn(105)), True, _isdn(PLATFORM), 0)))
    f.begin(t + 5, label, False, plat, hlr, AC_SMS_GATEWAY,
            _inv(RoutingInfoForSmArg(_isdn(home_msisdn(106)), True, _isdn(PLATFORM))))


def silent_sms(f: _Flow, t: float, n: int = 0) -> None:
    probe = Label("silent-sms", True)
    _sms_flow(f, t, probe, NEAR_SMSC, home_msisdn(107, n), home_imsi(107 + 1000 * n),
              pid=SILENT_SMS_PID,
              mt_label=Label("silent-sms", True, "block", "silent-sms"))


def range_sweep(f: _Flow, t: float, n: int = 0) -> None:
    # Lookups of 12 consecutive numbers from a network without an agreement:
    # each is alerted at once as such (sms-origin); the engine's sweep
    # threshold (8 distinct numbers of one 1000-number range in 300 s, the
    # policy default) blocks the rest.
    smsc, hlr = _address(FOREIGN, SSN_MSC), _address(HLR, SSN_HLR)
    threshold = 8
    for i in range(12):
        label = (Label("range-sweep", True, "alert", "sms-origin") if i + 1 < threshold
                 else Label("range-sweep", True, "block", "range-sweep"))
        f.begin(t + 2 * i, label, True, smsc, hlr, AC_SMS_GATEWAY,
                _inv(RoutingInfoForSmArg(_isdn(f"19996{n % 10_000:04d}{i:03d}"), True,
                                         _isdn(FOREIGN))))


def sms_without_lookup(f: _Flow, t: float) -> None:
    label = Label("sms-without-lookup", True, "block", "sms-consistency")
    arg = ForwardSmArg(SmRpDa(SmRpDaKind.IMSI, imsi=home_imsi(108)),
                       SmRpOa(SmRpOaKind.SERVICE_CENTRE, _isdn(FOREIGN)), _deliver("4666"))
    f.begin(t, label, True, _address(FOREIGN, SSN_MSC), _address(HOME_VLR, SSN_MSC),
            AC_MT_RELAY, _inv(arg, OP.MT_FORWARD_SM))


def spoofed_sms(f: _Flow, t: float) -> None:
    # An MO-ForwardSM from a network without an agreement whose originator is a
    # home subscriber's number: fake messages "from" that subscriber.
    label = Label("spoofed-sms", True, "block", "sms-spoofing")
    submit = encode_tpdu(SmsTpdu(1, TpAddress("19995550123", 1, 1), 0, 0),
                         b"\x31\xd9\x8c\x56\xb3\xdd\x70", 8)
    arg = ForwardSmArg(SmRpDa(SmRpDaKind.SERVICE_CENTRE, address=_isdn(HOME_SMSC)),
                       SmRpOa(SmRpOaKind.MSISDN, _isdn(home_msisdn(111))), submit)
    f.begin(t, label, True, _address(FOREIGN, SSN_MSC), _address(HOME_SMSC, SSN_MSC),
            AC_MO_RELAY, _inv(arg, OP.MO_FORWARD_SM))


def vlr_mismatch(f: _Flow, t: float) -> None:
    label = Label("vlr-mismatch", True, "block", "address-mismatch")
    # The calling GT is the near partner's VLR but the VLR number names another
    # node: the HLR's ISD and later SMS would go to that node.
    vlr_a, hlr_a = _address(NEAR_VLR, SSN_VLR), _address(HLR, SSN_HLR)
    arg = UpdateLocationArg(home_imsi(201), _isdn(NEAR_VLR), _isdn("28882999999"))
    f.begin(t, label, True, vlr_a, hlr_a, AC_LOC_UP, _inv(arg))


def no_dialogue(f: _Flow, t: float) -> None:
    label = Label("no-dialogue", True, "block", "tcap-sanity")
    # MAP v1 style: no dialogue portion, hence no application context to key on.
    f.begin(t, label, True, _address(FOREIGN, SSN_MSC), _address(HLR, SSN_HLR), None,
            _inv(RoutingInfoForSmArg(_isdn(home_msisdn(109)), True, _isdn(FOREIGN))))


def repeated_lookup(f: _Flow, t: float) -> None:
    # One number looked up 7 times in 70 s; the policy default flags more than
    # 5 lookups of a number in 600 s (the default action for it is alert).
    smsc, hlr = _address(NEAR_SMSC, SSN_MSC), _address(HLR, SSN_HLR)
    for i in range(7):
        label = (Label("repeated-lookup", True) if i < 5
                 else Label("repeated-lookup", True, "alert", "repeated-lookup"))
        f.begin(t + 10 * i, label, True, smsc, hlr, AC_SMS_GATEWAY,
                _inv(RoutingInfoForSmArg(_isdn(home_msisdn(110)), True, _isdn(NEAR_SMSC))))


Scenario = Callable[[_Flow, float], None]

#: Scenario name -> (attack?, generator), in capture order. Benign scenarios
#: come first so that the state they build (locations, SMS correlations) is
#: what the attacks run into, as on a live link.
SCENARIOS: Final[dict[str, tuple[bool, Scenario]]] = {
    "sms-delivery": (False, sms_delivery),
    "platform-sms": (False, platform_sms),
    "auth-info": (False, auth_info),
    "roaming-outbound": (False, roaming_outbound),
    "roaming-inbound": (False, roaming_inbound),
    "ati": (True, ati),
    "psi": (True, psi),
    "sri": (True, sri),
    "send-imsi": (True, send_imsi),
    "psl": (True, psl),
    "interception": (True, interception),
    "platform-lookup": (True, platform_lookup),
    "silent-sms": (True, silent_sms),
    "range-sweep": (True, range_sweep),
    "sms-without-lookup": (True, sms_without_lookup),
    "spoofed-sms": (True, spoofed_sms),
    "vlr-mismatch": (True, vlr_mismatch),
    "no-dialogue": (True, no_dialogue),
    "repeated-lookup": (True, repeated_lookup),
}


def build_corpus(start: float = T0) -> Corpus:
    """The labelled corpus, deterministic, in capture order."""
    corpus = Corpus()
    flow = _Flow(corpus)
    for i, (_attack, scenario) in enumerate(SCENARIOS.values()):
        scenario(flow, start + i * SCENARIO_GAP_S)
    corpus.messages.sort(key=lambda m: m.timestamp)
    return corpus


def write_corpus(directory: Path | str, corpus: Corpus | None = None) -> CorpusFiles:
    """Write the corpus under ``directory`` (created if missing): the pcap,
    its labels, the policy and the pending-message numbers."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus() if corpus is None else corpus
    from herald.guard.corpus_homerouting import write_home_routing

    files = CorpusFiles(out / "corpus.pcap", out / "corpus.labels.jsonl", out / "policy.toml",
                        out / "pending.txt", write_home_routing(out))
    write_pcap(files.pcap, ((m.timestamp, m.data, not m.inbound) for m in corpus.messages))
    with files.labels.open("w") as labels:
        for index, m in enumerate(corpus.messages):
            labels.write(json.dumps({"index": index, **m.label.as_dict()}) + "\n")
    files.policy.write_text(corpus.policy)
    files.pending.write_text("".join(n + "\n" for n in corpus.pending))
    return files


# --------------------------------------------------------------- big capture

# Mix of the benchmark capture, in flows (not messages) per 100.
_BIG_MIX: Final[tuple[tuple[str, int], ...]] = (
    ("sms", 60), ("platform", 10), ("roaming", 10), ("auth", 10),
    ("ati", 2), ("psi", 2), ("sri", 2), ("silent", 2), ("sweep", 2),
)


def _big_flows(f: _Flow, rng: random.Random, flows: int, start: float) -> Iterator[None]:
    kinds = [k for k, n in _BIG_MIX for _ in range(n)]
    t = start
    for i in range(flows):
        t += rng.uniform(0.0, 0.02)
        kind = rng.choice(kinds)
        n = 1000 + i
        if kind == "sms":
            msisdn = home_msisdn(n % 1000, n // 1000 % 1000)
            _sms_flow(f, t, Label("sms-delivery", False), NEAR_SMSC, msisdn, home_imsi(n))
        elif kind == "platform":
            _platform_flow(f, t, Label("platform-sms", False), f"28887{n % 1_000_000:06d}",
                           near_imsi(n))
        elif kind == "roaming":
            _update_location(f, t, Label("roaming-outbound", False), True, NEAR_VLR, HLR,
                             home_imsi(n), home_msisdn(n % 1000, 999))
        elif kind == "auth":
            _sai(f, t, Label("auth-info", False), True, NEAR_VLR, HLR, home_imsi(n))
        elif kind == "ati":
            ati(f, t, i)
        elif kind == "psi":
            psi(f, t, i)
        elif kind == "sri":
            sri(f, t, i)
        elif kind == "silent":
            silent_sms(f, t, i)
        else:
            range_sweep(f, t, i)
        yield None


def big_capture(messages: int = 200_000, seed: int = 0, start: float = T0) -> Corpus:
    """A large mixed capture in memory (benign flows with ~10% attacks), for
    the benchmark. Deterministic for a given ``seed``; at least ``messages``
    long, cut to exactly that many in time order."""
    corpus = Corpus()
    flow = _Flow(corpus)
    rng = random.Random(seed)
    for _ in _big_flows(flow, rng, messages, start):
        if len(corpus.messages) >= messages:
            break
    corpus.messages.sort(key=lambda m: m.timestamp)
    del corpus.messages[messages:]
    return corpus
