"""Issue 4's acceptance: on the shipped scenario corpus every attack is blocked
or alerted by the intended rule and no benign message is blocked; the
detection table in docs/guard.md is the one the corpus produces today."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herald.cli import main
from herald.guard.corpus import SCENARIOS, write_corpus
from herald.guard.detection import BEGIN, END, evaluate, markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "guard.md"


def test_scan_of_the_corpus_matches_every_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_corpus(tmp_path)
    code = main(
        ["guard", "scan", str(files.pcap), "--policy", str(files.policy),
         "--pending", str(files.pending), "--labels", str(files.labels), "--format", "json"]
    )  # fmt: skip
    assert code == 1  # attacks were found
    verdicts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    labels = [json.loads(line) for line in files.labels.read_text().splitlines()]
    by_index = {v["index"]: v for v in verdicts if v["index"] is not None}
    assert sorted(by_index) == [label["index"] for label in labels]  # one verdict each

    wrong = []
    caught: dict[str, set[str]] = {}
    for label in labels:
        v = by_index[label["index"]]
        got = (v["action"], v["rule"] if v["action"] != "allow" else None)
        if got != (label["expected"], label["rule"]):
            wrong.append((label["index"], label["scenario"], label["expected"], got))
        if label["attack"] and v["action"] != "allow" and v["rule"] == label["rule"]:
            caught.setdefault(label["scenario"], set()).add(v["rule"])
        if not label["attack"]:
            assert v["action"] == "allow", (label, v)  # no benign message blocked
    assert not wrong, wrong
    attacks = {name for name, (attack, _) in SCENARIOS.items() if attack}
    assert set(caught) == attacks, attacks - set(caught)


def test_the_documented_detection_table_is_current(tmp_path: Path) -> None:
    evaluation = evaluate(tmp_path)
    assert not evaluation.mismatches and not evaluation.benign_blocked
    text = DOC.read_text()
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == markdown(evaluation).strip(), (
        "docs/guard.md's detection table is stale: run "
        "`.venv/bin/python -m herald.guard.detection --write docs/guard.md`"
    )


async def test_home_routing_scenarios_through_the_proxy() -> None:
    """Issue 13's home routing scenarios, through a real proxy on loopback:
    a benign SMS delivered through the router; an SRI-SM from a rogue network
    answered with a correlation id; a replayed and a foreign correlation id
    refused. Nothing the foreign side receives holds the IMSI or the node."""
    from herald.signaling import decode
    from herald.signaling.map_types import ForwardSmArg
    from herald.signaling.message import ReturnError, ReturnResult

    from . import m3ua_fixtures as fx
    from .builders import FOREIGN, HOME_IMSI, MSC_HOME
    from .test_homerouting import (
        OTHER_FOREIGN,
        ROUTER,
        _barrier,
        _correlation,
        _lookup,
        _rig,
        leaked,
    )

    rig, server = await _rig()
    try:
        # sms-home-routed (benign): lookup, delivery through the router, answer.
        correlation = _correlation(await _lookup(rig))
        mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
        await rig.a.send(mt)
        delivered = decode(await rig.b.next())
        assert isinstance(delivered.argument, ForwardSmArg)
        assert (delivered.argument.da.imsi, delivered.called_digits) == (HOME_IMSI, MSC_HOME)
        await rig.b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnResult(1)))
        assert decode(await rig.a.next()).tcap.components == (ReturnResult(1),)
        # rogue-lookup (attack): a network without agreement learns nothing.
        rogue = await _lookup(rig, OTHER_FOREIGN, "19995550009")
        assert _correlation(rogue) != HOME_IMSI
        # correlation-replay and correlation-foreign (attacks): refused.
        await rig.a.send(mt)
        assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
        stolen, _ = fx.mt_fsm_begin(FOREIGN, imsi=_correlation(rogue), called=ROUTER)
        await rig.a.send(stolen)
        assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
        await _barrier(rig)
        stats = rig.proxy.stats
        assert stats.by_rule == {"home-routing": 2} and stats.home_routed == 4
        assert leaked(bytes(rig.a.raw)) == []
    finally:
        await rig.a.close()
        await rig.b.close()
        await rig.proxy.close()
        server.close()


async def test_the_home_routing_captures_replay_through_the_proxy(tmp_path: Path) -> None:
    """The corpus's home routing captures (both sides of the proxy, four
    scenarios: a benign SMS delivered through the router; an SRI-SM from a
    rogue network answered with a correlation id; a replayed and a foreign
    correlation id refused), read back from their pcap files and replayed
    through a real proxy whose correlation draws are the captures' own: every
    message it sends, on either side, is the captured one, byte for byte; what
    left for the interconnect holds neither the IMSI nor the MSC's address."""
    import asyncio

    from herald.guard.corpus import HOME_VLR, home_imsi
    from herald.guard.corpus_homerouting import HOME_ROUTING_SCENARIOS, draws
    from herald.guard.inspector import Inspector
    from herald.guard.pcap import read_capture
    from herald.guard.policyfile import load_policy
    from herald.guard.proxy import GuardProxy
    from herald.signaling.homerouting import HomeRouter
    from herald.signaling.policy import Engine

    from .test_homerouting import leaked
    from .test_proxy import WAIT, Endpoint

    files = write_corpus(tmp_path).home_routing
    assert files is not None
    captured = {side: [r.data for r in read_capture(path)]
                for side, path in (("interconnect", files.interconnect), ("home", files.home))}
    labels = [json.loads(line) for line in files.labels.read_text().splitlines()]
    assert {label["scenario"] for label in labels} == set(HOME_ROUTING_SCENARIOS)
    secrets = (home_imsi(300), home_imsi(301), HOME_VLR)
    for label in labels:
        if label["side"] == "interconnect" and label["role"] == "out":
            assert leaked(captured["interconnect"][label["index"]], secrets) == []

    policy = load_policy(files.policy)
    accepted: asyncio.Queue[Endpoint] = asyncio.Queue()

    async def on_home(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = Endpoint(reader, writer)
        endpoint.start()
        accepted.put_nowait(endpoint)

    server = await asyncio.start_server(on_home, "127.0.0.1", 0)
    proxy = GuardProxy(Inspector(Engine(policy)), server.sockets[0].getsockname()[:2],
                       interconnect="listen",
                       home_router=HomeRouter(policy, randbelow=draws()))  # fmt: skip
    host, port = await proxy.start("127.0.0.1", 0)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)
    ends = {"interconnect": Endpoint(reader, writer)}
    ends["interconnect"].start()
    ends["home"] = await asyncio.wait_for(accepted.get(), WAIT)
    try:
        for label in labels:
            data = captured[label["side"]][label["index"]]
            end = ends[label["side"]]
            if label["role"] == "in":
                await end.send(data)
            else:
                assert await end.next() == data, label
    finally:
        for end in ends.values():
            await end.close()
        await proxy.close()
        server.close()
    stats = proxy.stats
    assert stats.by_rule == {"home-routing": 2}  # the replay and the foreign id
    # Two answers with a correlation IMSI, the restored delivery, the MSC's answer.
    assert stats.home_routed == sum(
        label["outcome"] in ("rewritten", "restored") for label in labels
    ) == 4
