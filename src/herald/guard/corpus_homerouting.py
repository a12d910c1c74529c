"""SMS home routing's scenario captures: test data, like :mod:`herald.guard.corpus`.

Home routing happens in ``herald guard proxy``, between the interconnect and
the home network, so its captures are taken on both sides of the proxy: what
arrives there and what the proxy sends on. Same numbering, policy (plus a
``[home_routing]`` table) and documentation addresses as the scan corpus.

========================  ======  ================================================
scenario                  kind    what happens
========================  ======  ================================================
sms-home-routed           benign  a partner's SMSC looks a home number up and is
                                  answered with a correlation IMSI and the
                                  router's GT; its MT-ForwardSM to the router is
                                  restored (real IMSI, serving MSC) and the MSC's
                                  answer leaves as the router's
rogue-lookup              attack  an SRI-SM from a network without agreement: the
                                  HLR's answer leaves with a correlation IMSI and
                                  the router's GT, never the IMSI or the MSC
correlation-replay        attack  the benign delivery sent again with its (used)
                                  correlation IMSI: refused (unidentifiedSubscriber)
correlation-foreign       attack  the rogue's correlation IMSI presented by another
                                  SMSC: refused (unidentifiedSubscriber)
========================  ======  ================================================

Each record is one message crossing one side: arriving at the proxy (``in``)
or sent by it (``out``). The proxy's messages are what herald's
:class:`~herald.signaling.homerouting.HomeRouter` writes when its correlation
MSINs are drawn from :func:`draws` (seeded): a proxy given the same draws
reproduces the captures byte for byte (``tests/guard/test_acceptance.py``
replays them through a real proxy). Nothing in the messages that leave for the
interconnect holds the subscriber's IMSI or the MSC's address.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from herald.guard.corpus import (
    AC_MT_RELAY,
    AC_SMS_GATEWAY,
    HLR,
    HOME_VLR,
    NEAR_SMSC,
    OP,
    POLICY_TOML,
    SSN_HLR,
    SSN_MSC,
    T0,
    Corpus,
    Label,
    _address,
    _deliver,
    _Flow,
    _inv,
    _isdn,
    _result,
    home_imsi,
    home_msisdn,
)
from herald.guard.pcap import write_pcap
from herald.signaling import decode, encode
from herald.signaling.homerouting import HomeRouter
from herald.signaling.map_types import (
    ForwardSmArg,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    SmRpDa,
    SmRpDaKind,
    SmRpOa,
    SmRpOaKind,
)
from herald.signaling.message import ReturnResult
from herald.signaling.policy import parse_policy

__all__ = [
    "HOME_ROUTING_POLICY",
    "HOME_ROUTING_SCENARIOS",
    "ROUTER_GT",
    "SEED",
    "HomeRoutingFiles",
    "HomeRoutingRecord",
    "build_home_routing",
    "draws",
    "write_home_routing",
]

ROUTER_GT: Final = "19990009999"  # the home SMS router
ROGUE_SMSC: Final = "46669000001"  # a network without agreement
OTHER_ROGUE: Final = "46669000002"
SEED: Final = 13

HOME_ROUTING_POLICY: Final = POLICY_TOML + f"""
[home_routing]
router_gt = "{ROUTER_GT}"
correlation_ttl_s = 30
"""

HOME_ROUTING_SCENARIOS: Final[dict[str, bool]] = {
    "sms-home-routed": False,
    "rogue-lookup": True,
    "correlation-replay": True,
    "correlation-foreign": True,
}

INTERCONNECT, HOME = "interconnect", "home"


def draws(seed: int = SEED) -> Callable[[int], int]:
    """The correlation MSIN draws the captures were made with."""
    return random.Random(seed).randrange


@dataclass(frozen=True, slots=True)
class HomeRoutingRecord:
    """One message crossing one side of the proxy. ``side``: ``interconnect``
    or ``home``; ``role``: ``in`` (arrives at the proxy) or ``out`` (the proxy
    sends it); ``outcome`` says what the proxy did: ``passed`` (unchanged),
    ``rewritten`` (answer with a correlation IMSI, or a node's answer as the
    router), ``restored`` (a delivery to the real node), ``refused`` (its
    refusal, sent back)."""

    time: float
    side: str
    role: str
    data: bytes
    label: Label
    outcome: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"side": self.side, "role": self.role, "outcome": self.outcome,
                **self.label.as_dict()}  # fmt: skip


@dataclass(frozen=True, slots=True)
class HomeRoutingFiles:
    interconnect: Path
    home: Path
    labels: Path
    policy: Path


class _Run:
    """Feeds messages to a seeded router the way the proxy does, recording
    both sides."""

    def __init__(self) -> None:
        self.router = HomeRouter(parse_policy(HOME_ROUTING_POLICY), randbelow=draws())
        self.records: list[HomeRoutingRecord] = []
        self._scratch = Corpus()
        self.flow = _Flow(self._scratch)

    def last(self) -> bytes:
        return self._scratch.messages.pop().data

    def inbound(self, t: float, label: Label, data: bytes) -> bytes | None:
        """From the interconnect; returns what the proxy sent back, if anything."""
        self.records.append(HomeRoutingRecord(t, INTERCONNECT, "in", data, label))
        outcome = self.router.from_interconnect(decode(data), t)
        if outcome is None:
            self.records.append(HomeRoutingRecord(t, HOME, "out", data, label, "passed"))
            return None
        if outcome.forward is not None:
            self.records.append(
                HomeRoutingRecord(t, HOME, "out", encode(outcome.forward), label, "restored")
            )
        if outcome.answer is not None:
            back = encode(outcome.answer)
            self.records.append(HomeRoutingRecord(t, INTERCONNECT, "out", back, label, "refused"))
            return back
        return None

    def outbound(self, t: float, label: Label, data: bytes) -> bytes:
        """From the home network; returns what left for the interconnect."""
        self.records.append(HomeRoutingRecord(t, HOME, "in", data, label))
        outcome = self.router.to_interconnect(decode(data), t)
        sent, how = data, "passed"
        if outcome is not None and outcome.forward is not None:
            sent, how = encode(outcome.forward), "rewritten"
        self.records.append(HomeRoutingRecord(t, INTERCONNECT, "out", sent, label, how))
        return sent


def _lookup(run: _Run, t: float, label: Label, smsc: str, msisdn: str, imsi: str) -> str:
    """SRI-SM from ``smsc``, the HLR's real answer; the correlation IMSI that left."""
    f = run.flow
    smsc_a, hlr_a = _address(smsc, SSN_MSC), _address(HLR, SSN_HLR)
    otid = f.begin(t, label, True, smsc_a, hlr_a, AC_SMS_GATEWAY,
                   _inv(RoutingInfoForSmArg(_isdn(msisdn), True, _isdn(smsc))))  # fmt: skip
    run.inbound(t, label, run.last())
    f.answer(t + 0.05, label, False, hlr_a, smsc_a, otid,
             _result(OP.SEND_ROUTING_INFO_FOR_SM, RoutingInfoForSmRes(imsi, _isdn(HOME_VLR))),
             ac=AC_SMS_GATEWAY)  # fmt: skip
    answer = decode(run.outbound(t + 0.05, label, run.last()))
    (result,) = answer.tcap.components
    assert isinstance(result, ReturnResult) and isinstance(result.result, RoutingInfoForSmRes)
    return result.result.imsi


def _delivery(run: _Run, t: float, label: Label, smsc: str, correlation: str) -> bytes:
    """The MT-ForwardSM from ``smsc`` to the router naming ``correlation``."""
    arg = ForwardSmArg(SmRpDa(SmRpDaKind.IMSI, imsi=correlation),
                       SmRpOa(SmRpOaKind.SERVICE_CENTRE, _isdn(smsc)), _deliver("19995550123"))
    run.flow.begin(t, label, True, _address(smsc, SSN_MSC), _address(ROUTER_GT, SSN_MSC),
                   AC_MT_RELAY, _inv(arg, OP.MT_FORWARD_SM))  # fmt: skip
    return run.last()


def build_home_routing(start: float = T0) -> list[HomeRoutingRecord]:
    """Both sides of the proxy through the four scenarios, in order."""
    run = _Run()
    t = start
    benign = Label("sms-home-routed", False)
    msisdn, imsi = home_msisdn(300), home_imsi(300)
    correlation = _lookup(run, t, benign, NEAR_SMSC, msisdn, imsi)
    mt = _delivery(run, t + 1.0, benign, NEAR_SMSC, correlation)
    run.inbound(t + 1.0, benign, mt)
    otid = decode(mt).tcap.otid
    assert otid is not None
    run.flow.answer(t + 1.2, benign, False, _address(HOME_VLR, SSN_MSC),
                    _address(NEAR_SMSC, SSN_MSC), otid, _result(OP.MT_FORWARD_SM),
                    ac=AC_MT_RELAY)  # fmt: skip
    run.outbound(t + 1.2, benign, run.last())

    rogue = Label("rogue-lookup", True, "allow")
    stolen = _lookup(run, t + 10, rogue, ROGUE_SMSC, home_msisdn(301), home_imsi(301))

    replay = Label("correlation-replay", True, "block", "home-routing")
    run.inbound(t + 20, replay, _delivery(run, t + 20, replay, NEAR_SMSC, correlation))

    foreign = Label("correlation-foreign", True, "block", "home-routing")
    run.inbound(t + 21, foreign, _delivery(run, t + 21, foreign, OTHER_ROGUE, stolen))
    return run.records


def write_home_routing(directory: Path | str) -> HomeRoutingFiles:
    """Write the captures (one pcap per side of the proxy), their labels (one
    JSON object per record, in the order the records happened: ``seq``,
    ``side``, ``index`` in that side's capture, ``role``, ``outcome``, and the
    scenario label) and the policy, under ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files = HomeRoutingFiles(out / "home-routing.interconnect.pcap",
                             out / "home-routing.home.pcap",
                             out / "home-routing.labels.jsonl",
                             out / "home-routing.policy.toml")  # fmt: skip
    records = build_home_routing()
    index = {INTERCONNECT: 0, HOME: 0}
    with files.labels.open("w") as labels:
        for seq, r in enumerate(records):
            labels.write(json.dumps({"seq": seq, "index": index[r.side], **r.as_dict()}) + "\n")
            index[r.side] += 1
    # Towards the home network is the capture's forward direction on each side.
    for path, side in ((files.interconnect, INTERCONNECT), (files.home, HOME)):
        toward_home = (("in",) if side == INTERCONNECT else ("out",))
        write_pcap(path, [(r.time, r.data, r.role not in toward_home)
                          for r in records if r.side == side])  # fmt: skip
    files.policy.write_text(HOME_ROUTING_POLICY)
    return files
