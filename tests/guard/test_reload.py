"""Policy reload: ``GuardProxy.reload`` keeps state and switches rules, and
``herald guard proxy`` does it on SIGHUP, recording it in the audit log."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from herald.guard.audit import verify
from herald.signaling import decode
from herald.signaling.message import SccpMessageType

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HOME_MSISDN, NEAR_SMSC, POLICY_TOML, policy
from .proxy_process import line_with, proxy_process
from .test_proxy import _rig

DENY_SRI_SM = '[deny]\noperations = ["sendRoutingInfoForSM"]\n[proxy]\non_block = "udts"\n'


async def test_reload_switches_rules_and_keeps_state() -> None:
    rig, server = await _rig("udts")
    try:
        sri, otid = fx.sri_sm()
        await rig.a.send(sri)
        assert await rig.b.next() == sri
        dialogues = rig.proxy.inspector.engine.state_sizes["dialogues"]
        assert dialogues == 1
        rig.proxy.reload(policy(DENY_SRI_SM))
        assert rig.proxy.inspector.engine.state_sizes["dialogues"] == dialogues  # kept
        again, _ = fx.sri_sm()
        await rig.a.send(again)
        back = decode(await rig.a.next())
        assert back.sccp.kind is SccpMessageType.UDTS
        assert rig.proxy.stats.by_rule == {"deny-list": 1}
        # the answer to the lookup made before the reload still passes
        answer = fx.sri_sm_result(otid)
        await rig.b.send(answer)
        assert await rig.a.next() == answer
    finally:
        await rig.a.close()
        await rig.b.close()
        await rig.proxy.close()
        server.close()


def test_a_reload_that_needs_the_interconnect_side_changes_nothing() -> None:
    from herald.guard.inspector import Inspector
    from herald.guard.proxy import GuardProxy
    from herald.signaling.policy import Engine

    proxy = GuardProxy(Inspector(Engine(policy())), ("127.0.0.1", 9))
    with pytest.raises(ValueError, match="interconnect"):
        proxy.reload(policy('[home_routing]\nrouter_gt = "19990009999"\n'))
    assert proxy.home_router is None and not proxy.inspector.engine.policy.home_routing.enabled


def test_a_reload_whose_correlation_store_is_away_changes_nothing() -> None:
    """Home routing turned on by a reload, its PostgreSQL store unreachable:
    the reload is refused whole (the policy in force stays)."""
    from herald.guard.inspector import Inspector
    from herald.guard.pg_state import PgLink, PostgresCorrelations
    from herald.guard.proxy import GuardProxy
    from herald.signaling.policy import Engine, Policy
    from herald.store import StoreUnavailable
    from peers.postgres import free_port

    def correlations(p: Policy) -> PostgresCorrelations:
        link = PgLink(f"postgresql://guard@127.0.0.1:{free_port()}/herald")
        link.open()  # nothing listens there
        return PostgresCorrelations(link, p.salt, p.home_routing.max_entries)

    proxy = GuardProxy(Inspector(Engine(policy())), ("127.0.0.1", 9),
                       interconnect="listen", correlations=correlations)  # fmt: skip
    with pytest.raises(StoreUnavailable):
        proxy.reload(policy('[home_routing]\nrouter_gt = "19990009999"\n' + DENY_SRI_SM))
    assert proxy.home_router is None
    assert proxy.inspector.engine.policy.deny.operations == frozenset()


async def test_sighup_reloads_the_policy_and_audits_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)
    audit = tmp_path / "audit.jsonl"
    async with proxy_process(path, "--audit", str(audit), stderr=True) as running:
        process = running.process
        assert process.stdout is not None and process.stderr is not None
        a, b = await running.connect()
        sri, _ = fx.sri_sm(NEAR_SMSC, HOME_MSISDN)
        await a.send(sri)
        assert await b.next() == sri  # allowed by the first policy

        path.write_text(POLICY_TOML + "[home\n")  # broken: refused, old policy stays
        process.send_signal(signal.SIGHUP)
        assert "reload refused" in await line_with(process.stderr, "reload refused")
        await a.send(sri)
        assert await b.next() == sri

        path.write_text(POLICY_TOML + DENY_SRI_SM)
        process.send_signal(signal.SIGHUP)
        assert "reloaded" in await line_with(process.stdout, "reloaded")
        await a.send(fx.sri_sm(FOREIGN)[0])
        assert decode(await a.next()).sccp.kind is SccpMessageType.UDTS  # now denied
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0
    records = [json.loads(x) for x in audit.read_text().splitlines()]
    kinds = [(r["kind"], r["content"].get("event") or r["content"].get("who")
              or r["content"].get("rule")) for r in records]  # fmt: skip
    assert kinds == [("note", "policy-reload-refused"), ("policy-change", "SIGHUP"),
                     ("verdict", "deny-list")]  # fmt: skip
    assert "+operations = [\"sendRoutingInfoForSM\"]" in records[1]["content"]["diff"]
    assert "test-salt" not in audit.read_text()
    assert verify(audit).ok
