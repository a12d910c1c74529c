"""tshark (Wireshark's dissectors) reads the messages SMS home routing writes,
field by field, as herald means them: the correlation IMSI and the router's
GT where the HLR put the subscriber's IMSI and serving node, the restored
delivery to the real node, the router's answers and refusals.

These tests talk to a real independent program and fail when it is missing
(``scripts/peers`` installs it): a routing rewrite nobody else can read is
not a rewrite.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from herald.guard.pcap import write_pcap
from herald.signaling import SignalingMessage, decode, encode, udts_response
from herald.signaling.homerouting import HomeRouter
from herald.signaling.message import ReturnError, ReturnResult

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HOME_IMSI, MSC_HOME, policy
from .test_homerouting import HOME_ROUTING, ROUTER
from .test_tshark import FIELDS, SEPARATOR, TIMEOUT_S, _normalise, herald_fields

pytestmark = pytest.mark.interop


def tshark_rows(capture: Path) -> list[dict[str, str]]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is not installed (run scripts/peers): the rewrite is unchecked")
    command = [tshark, "-n", "-r", str(capture), "-T", "fields", "-E", "occurrence=a",
               "-E", "aggregator=,", "-E", f"separator={SEPARATOR}"]  # fmt: skip
    for name in FIELDS.values():
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                         check=True).stdout  # fmt: skip
    return [_normalise(dict(zip(FIELDS, line.split(SEPARATOR), strict=True)))
            for line in out.splitlines()]  # fmt: skip


def routed_messages() -> tuple[str, list[tuple[str, bytes]]]:
    """One home-routed delivery and its refusals, as the router writes them:
    (name, M3UA bytes), and the correlation IMSI."""
    router = HomeRouter(policy(HOME_ROUTING))
    out: list[tuple[str, bytes]] = []

    def rewritten(msg: bytes, inbound: bool, now: float = 0.0) -> SignalingMessage:
        decoded = decode(msg)
        outcome = (router.from_interconnect if inbound else router.to_interconnect)(decoded, now)
        assert outcome is not None
        result = outcome.forward if outcome.forward is not None else outcome.answer
        assert result is not None
        return result

    sri, otid = fx.sri_sm(FOREIGN)
    assert router.from_interconnect(decode(sri), 0.0) is None
    answer = rewritten(fx.sri_sm_result(otid, FOREIGN, lmsi=b"\x01\x02\x03\x04"), False)
    out.append(("sri-sm answer", encode(answer)))
    (result,) = answer.tcap.components
    assert isinstance(result, ReturnResult) and result.result is not None
    correlation = result.result.imsi
    mt, mt_otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    restored = encode(rewritten(mt, True))
    out.append(("restored delivery", restored))
    node_answer = fx.answer(mt_otid, MSC_HOME, FOREIGN, ReturnError(1, 6, b"\x30\x03\x80\x01\x01"))
    out.append(("node answer", encode(rewritten(node_answer, False))))
    out.append(("replay refused", encode(rewritten(mt, True))))
    # A second delivery, returned by the home network's SCCP.
    sri, otid = fx.sri_sm(FOREIGN)
    router.from_interconnect(decode(sri), 0.0)
    second = rewritten(fx.sri_sm_result(otid, FOREIGN), False)
    (result,) = second.tcap.components
    assert isinstance(result, ReturnResult) and result.result is not None
    mt, _ = fx.mt_fsm_begin(FOREIGN, imsi=result.result.imsi, called=ROUTER)
    returned = udts_response(encode(rewritten(mt, True)), 5)
    out.append(("returned delivery answered", encode(rewritten(returned, False))))
    # A long message: MAP-OPEN names the correlation IMSI (destination reference).
    sri, otid = fx.sri_sm(FOREIGN)
    router.from_interconnect(decode(sri), 0.0)
    third = rewritten(fx.sri_sm_result(otid, FOREIGN), False)
    (result,) = third.tcap.components
    assert isinstance(result, ReturnResult) and result.result is not None
    opened, _ = fx.mt_fsm_open(FOREIGN, result.result.imsi, ROUTER)
    out.append(("restored map-open", encode(rewritten(opened, True))))
    return correlation, out


def test_tshark_reads_the_rewritten_messages_like_herald(tmp_path: Path) -> None:
    correlation, messages = routed_messages()
    capture = tmp_path / "routed.pcap"
    write_pcap(capture, [(1_700_000_000.0 + i, m) for i, (_, m) in enumerate(messages)])
    rows = tshark_rows(capture)
    assert len(rows) == len(messages)
    by_name = {}
    for (name, data), theirs in zip(messages, rows, strict=True):
        ours = herald_fields(decode(data))
        if name == "restored map-open":
            # herald's view reads components; MAP-OPEN's references are checked below.
            ours = {k: v for k, v in ours.items() if k not in ("imsi", "e164")}
        for key, value in ours.items():
            assert theirs[key] == value, f"{name} {key}: tshark {theirs[key]!r}, herald {value!r}"
        by_name[name] = theirs
    # Field by field, what a foreign SMSC is told:
    answer = by_name["sri-sm answer"]
    assert answer["imsi"] == correlation and answer["e164"] == ROUTER
    assert answer["opcodes"] == "45"
    node = by_name["node answer"]
    assert node["calling"] == ROUTER and node["called"] == FOREIGN
    assert node["opcodes"] == "6"  # absentSubscriberSM, without its diagnostic
    refused = by_name["replay refused"]
    assert refused["calling"] == ROUTER and refused["opcodes"] == "5"
    assert refused["ac"] == "0.4.0.0.1.0.25.3"  # the dialogue accepted, then the error
    returned = by_name["returned delivery answered"]
    assert returned["sccp_type"] == "0x09" and returned["calling"] == ROUTER
    assert returned["opcodes"] == "34"
    for name in ("sri-sm answer", "node answer", "replay refused", "returned delivery answered"):
        row = by_name[name]
        assert HOME_IMSI not in row.values() and MSC_HOME not in ",".join(row.values()), name
    # ... and what the home network's serving node is given.
    restored = by_name["restored delivery"]
    assert restored["imsi"] == HOME_IMSI and restored["called"] == MSC_HOME
    assert restored["calling"] == FOREIGN and restored["opcodes"] == "44"
    opened_row = by_name["restored map-open"]
    assert opened_row["imsi"] == HOME_IMSI and opened_row["called"] == MSC_HOME
    assert opened_row["e164"] == FOREIGN  # originationReference: the SMSC


def test_tshark_reads_the_corpus_home_routing_captures(tmp_path: Path) -> None:
    """The corpus's captures of both sides of the proxy, decoded by tshark:
    what the interconnect is told holds correlation IMSIs and the router's GT
    where the HLR put the IMSI and the MSC; the home side gets the real ones."""
    import json

    from herald.guard.corpus import HOME_VLR, home_imsi
    from herald.guard.corpus_homerouting import ROUTER_GT, write_home_routing

    files = write_home_routing(tmp_path)
    labels = [json.loads(line) for line in files.labels.read_text().splitlines()]
    sides = {"interconnect": tshark_rows(files.interconnect), "home": tshark_rows(files.home)}
    assert [len(rows) for rows in sides.values()] == [
        sum(label["side"] == side for label in labels) for side in sides
    ]
    secrets = (home_imsi(300), home_imsi(301), HOME_VLR)
    outcomes: dict[str, list[dict[str, str]]] = {}
    for label in labels:
        row = sides[label["side"]][label["index"]]
        if label["side"] == "interconnect" and label["role"] == "out":
            assert not any(s in ",".join(row.values()) for s in secrets), (label, row)
            outcomes.setdefault(f"{label['scenario']}/{label['outcome']}", []).append(row)
    answers = outcomes["sms-home-routed/rewritten"][:1] + outcomes["rogue-lookup/rewritten"]
    for row in answers:  # the SRI-SM answers: a correlation IMSI and the router's GT
        assert row["imsi"].startswith("00101") and len(row["imsi"]) == 15
        assert row["e164"] == ROUTER_GT and row["opcodes"] == "45"
    assert answers[0]["imsi"] != answers[1]["imsi"]
    node_answer = outcomes["sms-home-routed/rewritten"][1]
    assert node_answer["calling"] == ROUTER_GT
    assert node_answer["opcodes"] == ""  # a result without its parameter (no opcode)
    for name in ("correlation-replay/refused", "correlation-foreign/refused"):
        (row,) = outcomes[name]
        assert row["calling"] == ROUTER_GT and row["opcodes"] == "5"  # unidentifiedSubscriber
    restored = [sides["home"][label["index"]] for label in labels
                if label["outcome"] == "restored"]  # fmt: skip
    assert [(r["imsi"], r["called"]) for r in restored] == [(home_imsi(300), HOME_VLR)]
