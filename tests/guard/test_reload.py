"""Policy reload: ``GuardProxy.reload`` keeps state and switches rules, and
``herald guard proxy`` does it on SIGHUP, recording it in the audit log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from herald.guard.audit import verify
from herald.signaling import decode
from herald.signaling.message import SccpMessageType

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HOME_MSISDN, NEAR_SMSC, POLICY_TOML, policy
from .test_proxy import WAIT, Endpoint, _rig

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


async def _line(stream: asyncio.StreamReader, contains: str) -> str:
    """The next line of ``stream`` that holds ``contains`` (bounded)."""
    for _ in range(20):
        line = (await asyncio.wait_for(stream.readline(), 30)).decode()
        if contains in line or not line:
            return line
    raise AssertionError(f"no line with {contains!r}")


async def test_sighup_reloads_the_policy_and_audits_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML)
    audit = tmp_path / "audit.jsonl"
    home: asyncio.Queue[Endpoint] = asyncio.Queue()

    async def on_b(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = Endpoint(reader, writer)
        endpoint.start()
        home.put_nowait(endpoint)

    server = await asyncio.start_server(on_b, "127.0.0.1", 0)
    b_port = server.sockets[0].getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "herald", "guard", "proxy", "--listen", "127.0.0.1:0",
        "--peer", f"127.0.0.1:{b_port}", "--policy", str(path), "--audit", str(audit),
        "--duration", "60",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    a = b = None
    try:
        assert process.stdout is not None and process.stderr is not None
        line = await _line(process.stdout, "listening on")
        port = int(line.split("listening on ")[1].split(",")[0].rsplit(":", 1)[1])
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), WAIT)
        a = Endpoint(reader, writer)
        a.start()
        b = await asyncio.wait_for(home.get(), WAIT)
        sri, _ = fx.sri_sm(NEAR_SMSC, HOME_MSISDN)
        await a.send(sri)
        assert await b.next() == sri  # allowed by the first policy

        path.write_text(POLICY_TOML + "[home\n")  # broken: refused, old policy stays
        process.send_signal(signal.SIGHUP)
        assert "reload refused" in await _line(process.stderr, "reload refused")
        await a.send(sri)
        assert await b.next() == sri

        path.write_text(POLICY_TOML + DENY_SRI_SM)
        process.send_signal(signal.SIGHUP)
        assert "reloaded" in await _line(process.stdout, "reloaded")
        await a.send(fx.sri_sm(FOREIGN)[0])
        assert decode(await a.next()).sccp.kind is SccpMessageType.UDTS  # now denied
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for endpoint in (a, b):
            if endpoint is not None:
                await endpoint.close()
        server.close()
    assert process.returncode == 0
    records = [json.loads(x) for x in audit.read_text().splitlines()]
    kinds = [(r["kind"], r["content"].get("event") or r["content"].get("who")
              or r["content"].get("rule")) for r in records]  # fmt: skip
    assert kinds == [("note", "policy-reload-refused"), ("policy-change", "SIGHUP"),
                     ("verdict", "deny-list")]  # fmt: skip
    assert "+operations = [\"sendRoutingInfoForSM\"]" in records[1]["content"]["diff"]
    assert "test-salt" not in audit.read_text()
    assert verify(audit).ok
