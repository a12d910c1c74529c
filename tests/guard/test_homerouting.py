"""SMS home routing in the proxy, between two real M3UA endpoints on loopback.

Endpoint A is the interconnect (foreign SMSCs), endpoint B the home network
(HLR and serving MSC). Every byte A receives is kept and searched for the
subscriber's IMSI and the serving MSC's address, in every encoding they could
take (digits as text, TBCD/BCD octets). Labelled test fixtures, loopback only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from herald.guard.audit import AuditLog
from herald.guard.inspector import Inspector
from herald.guard.proxy import GuardProxy
from herald.signaling import SignalingMessage, decode
from herald.signaling._digits import encode_bcd
from herald.signaling.homerouting import HomeRouter
from herald.signaling.map_types import ForwardSmArg, RoutingInfoForSmRes
from herald.signaling.message import (
    ReturnError,
    ReturnResult,
    SccpMessageType,
    TcapMessageType,
)
from herald.signaling.policy import Engine

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HLR, HOME_IMSI, HOME_MSISDN, MSC_HOME, NEAR_SMSC, policy
from .test_proxy import WAIT, Endpoint

ROUTER = "19990009999"
OTHER_FOREIGN = "46669999999"
HOME_ROUTING = f"""
[home_routing]
router_gt = "{ROUTER}"
correlation_ttl_s = 30
"""
SECRETS = (HOME_IMSI, MSC_HOME)


def leaked(data: bytes, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Which secrets appear in ``data``: as text, or packed two digits an
    octet (TBCD and SCCP BCD alike begin with the same octets)."""
    found = []
    for secret in secrets:
        even = secret[: len(secret) // 2 * 2]
        packed = encode_bcd(even)
        assert packed is not None
        if secret.encode() in data or packed in data:
            found.append(secret)
    return found


@dataclass
class Recorder(Endpoint):
    """An endpoint that also keeps every byte it received."""

    raw: bytearray = field(default_factory=bytearray)

    def _arrived(self, data: bytes) -> None:
        self.raw += data


@dataclass
class Rig:
    proxy: GuardProxy
    a: Recorder
    b: Endpoint


async def _rig(
    extra: str = HOME_ROUTING, audit: AuditLog | None = None
) -> tuple[Rig, asyncio.Server]:
    accepted: asyncio.Queue[Endpoint] = asyncio.Queue()

    async def on_b(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = Endpoint(reader, writer)
        endpoint.start()
        accepted.put_nowait(endpoint)

    server_b = await asyncio.start_server(on_b, "127.0.0.1", 0)
    b_host, b_port = server_b.sockets[0].getsockname()[:2]
    p = policy(extra)
    proxy = GuardProxy(
        Inspector(Engine(p), audit),
        (b_host, b_port),
        on_block="udts",
        interconnect="listen",
        home_router=HomeRouter(p),
    )
    host, port = await proxy.start("127.0.0.1", 0)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)
    a = Recorder(reader, writer)
    a.start()
    b = await asyncio.wait_for(accepted.get(), WAIT)
    return Rig(proxy, a, b), server_b


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r, server = await _rig()
    try:
        yield r
    finally:
        await r.a.close()
        await r.b.close()
        await r.proxy.close()
        server.close()


async def _lookup(rig: Rig, smsc: str = FOREIGN, msisdn: str = HOME_MSISDN) -> SignalingMessage:
    """SRI-SM from ``smsc`` through the proxy, the HLR's real answer back:
    the answer as the SMSC received it."""
    sri, otid = fx.sri_sm(smsc, msisdn)
    await rig.a.send(sri)
    assert await rig.b.next() == sri  # the HLR gets the lookup unchanged
    await rig.b.send(fx.sri_sm_result(otid, smsc, lmsi=b"\x01\x02\x03\x04"))
    return decode(await rig.a.next())


def _correlation(answer: SignalingMessage) -> str:
    (result,) = answer.tcap.components
    assert isinstance(result, ReturnResult) and isinstance(result.result, RoutingInfoForSmRes)
    return result.result.imsi


async def _barrier(rig: Rig) -> None:
    """Proof by ordering that nothing else is on its way to B or A."""
    await rig.a.send(fx.beat(b"a"))
    assert await rig.b.next() == fx.beat(b"a")
    await rig.b.send(fx.beat(b"b"))
    assert await rig.a.next() == fx.beat(b"b")


async def test_benign_sms_is_delivered_through_the_router(rig: Rig) -> None:
    answer = await _lookup(rig)
    (result,) = answer.tcap.components
    assert isinstance(result, ReturnResult) and isinstance(result.result, RoutingInfoForSmRes)
    correlation = result.result.imsi
    assert correlation.startswith("00101") and len(correlation) == 15
    assert correlation != HOME_IMSI
    assert result.result.network_node.digits == ROUTER
    assert result.result.lmsi is None

    mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(mt)
    restored = decode(await rig.b.next())
    assert restored.called_digits == MSC_HOME  # to the real serving node
    assert restored.calling_digits == FOREIGN
    arg = restored.argument
    assert isinstance(arg, ForwardSmArg) and arg.da.imsi == HOME_IMSI
    original = decode(mt).argument
    assert isinstance(original, ForwardSmArg) and arg.user_data == original.user_data

    # The MSC accepts it; its answer leaves as the router.
    await rig.b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnResult(1)))
    done = decode(await rig.a.next())
    assert done.tcap.kind is TcapMessageType.END and done.tcap.dtid == otid
    assert done.calling_digits == ROUTER
    assert (done.label.opc, done.label.dpc) == (decode(mt).label.dpc, decode(mt).label.opc)
    assert done.tcap.components == (ReturnResult(1),)
    await _barrier(rig)
    assert leaked(bytes(rig.a.raw)) == []
    assert rig.proxy.stats.blocked == 0 and rig.proxy.stats.home_routed == 3


async def test_the_check_finds_a_leak(rig: Rig) -> None:
    # Guard against a vacuous byte check: without home routing for this
    # network (a partner exempted below would do the same), the real values
    # are in the answer and the check sees them.
    assert leaked(fx.sri_sm_result(b"\x00\x00\x00\x01", FOREIGN)) == list(SECRETS)
    assert leaked(fx.mt_fsm()) == list(SECRETS)


async def test_a_replayed_correlation_id_is_refused(rig: Rig) -> None:
    correlation = _correlation(await _lookup(rig))
    mt, _ = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(mt)
    await rig.b.next()  # delivered once
    replay, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(replay)
    refusal = decode(await rig.a.next())
    assert refusal.tcap.kind is TcapMessageType.END and refusal.tcap.dtid == otid
    assert refusal.calling_digits == ROUTER
    (error,) = refusal.tcap.components
    assert error == ReturnError(1, 5)  # unidentifiedSubscriber, as an MSC says it
    assert refusal.tcap.dialogue is not None and refusal.tcap.dialogue.result == 0
    await _barrier(rig)  # the replay never reached B
    assert rig.proxy.stats.by_rule == {"home-routing": 1}
    assert leaked(bytes(rig.a.raw)) == []


async def test_a_correlation_id_is_refused_to_another_smsc(rig: Rig) -> None:
    correlation = _correlation(await _lookup(rig))
    stolen, _ = fx.mt_fsm_begin(OTHER_FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(stolen)
    assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
    # Same calling GT, another service centre address in SM-RP-OA: refused too.
    correlation = _correlation(await _lookup(rig))
    spoofed, _ = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER,
                                 service_centre=OTHER_FOREIGN)
    await rig.a.send(spoofed)
    assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
    # A correlation id shown to the wrong SMSC is burnt for the right one too.
    mt, _ = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(mt)
    assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
    await _barrier(rig)
    assert rig.proxy.stats.by_rule == {"home-routing": 3}


async def test_an_unknown_correlation_id_is_refused(rig: Rig) -> None:
    for imsi in ("001010000000002", HOME_IMSI):  # never issued; the real one
        mt, _ = fx.mt_fsm_begin(FOREIGN, imsi=imsi, called=ROUTER)
        await rig.a.send(mt)
        assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
    await _barrier(rig)


async def test_hlr_errors_pass_by_code_only(rig: Rig) -> None:
    sri, otid = fx.sri_sm(FOREIGN)
    await rig.a.send(sri)
    await rig.b.next()
    # absentSubscriberSM with its diagnostic (imsi detached) and an extension.
    parameter = bytes.fromhex("3003800101")
    await rig.b.send(fx.answer(otid, HLR, FOREIGN, ReturnError(1, 6, parameter), ssns=(6, 8)))
    back = decode(await rig.a.next())
    assert back.tcap.components == (ReturnError(1, 6),)
    assert back.calling_digits == HLR


async def test_delivery_errors_pass_by_code_and_cause_only(rig: Rig) -> None:
    correlation = _correlation(await _lookup(rig))
    mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(mt)
    await rig.b.next()
    # sm-DeliveryFailure: memoryCapacityExceeded (0) with diagnostic info.
    parameter = bytes.fromhex("30070a0100040200ff")
    await rig.b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnError(1, 32, parameter)))
    back = decode(await rig.a.next())
    assert back.tcap.components == (ReturnError(1, 32, bytes.fromhex("30030a0100")),)
    assert back.calling_digits == ROUTER
    correlation = _correlation(await _lookup(rig))
    mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(mt)
    await rig.b.next()
    await rig.b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnError(1, 99)))  # not passed
    assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 34),)
    await _barrier(rig)
    assert leaked(bytes(rig.a.raw)) == []


async def test_a_returned_delivery_is_answered_by_the_router(rig: Rig) -> None:
    from herald.signaling import udts_response

    correlation = _correlation(await _lookup(rig))
    mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
    await rig.a.send(mt)
    restored = await rig.b.next()
    # The home network cannot reach the MSC: its SCCP returns the restored
    # message (real IMSI, real node as calling party) towards the SMSC.
    await rig.b.send(udts_response(restored, 5))
    back = decode(await rig.a.next())
    assert back.sccp.kind is SccpMessageType.UDT
    assert back.tcap.kind is TcapMessageType.END and back.tcap.dtid == otid
    assert back.tcap.components == (ReturnError(1, 34),)
    assert back.calling_digits == ROUTER
    await _barrier(rig)
    assert leaked(bytes(rig.a.raw)) == []


async def test_a_blocked_restored_delivery_is_answered_from_what_arrived(rig: Rig) -> None:
    correlation = _correlation(await _lookup(rig))
    silent, _ = fx.mt_fsm_begin(FOREIGN, pid=0x40, imsi=correlation, called=ROUTER)
    await rig.a.send(silent)
    back = decode(await rig.a.next())
    assert back.sccp.kind is SccpMessageType.UDTS
    assert back.calling_digits == ROUTER  # not the node it was restored to
    await _barrier(rig)
    assert rig.proxy.stats.by_rule == {"silent-sms": 1}
    assert leaked(bytes(rig.a.raw)) == []


async def test_exempt_partners_get_the_real_answer() -> None:
    r, server = await _rig(HOME_ROUTING + 'except_partners = ["near"]\n')
    try:
        answer = await _lookup(r, NEAR_SMSC)
        assert _correlation(answer) == HOME_IMSI
        answer = await _lookup(r, FOREIGN)
        assert _correlation(answer) != HOME_IMSI
    finally:
        await r.a.close()
        await r.b.close()
        await r.proxy.close()
        server.close()


async def test_refusals_are_audited_without_identifiers(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit = AuditLog(log)
    r, server = await _rig(audit=audit)
    try:
        mt, _ = fx.mt_fsm_begin(FOREIGN, imsi="001010000000002", called=ROUTER)
        await r.a.send(mt)
        await r.a.next()
    finally:
        await r.a.close()
        await r.b.close()
        await r.proxy.close()
        server.close()
        audit.close()
    text = log.read_text()
    (record,) = [json.loads(x) for x in text.splitlines()]
    assert record["content"]["rule"] == "home-routing"
    assert record["content"]["action"] == "block"
    assert record["content"]["origin"] == "foreign"
    assert record["content"]["sender"] == Engine(policy()).subscriber_hash("gt", FOREIGN)
    assert leaked(text.encode(), (*SECRETS, "001010000000002", ROUTER, FOREIGN)) == []


def test_home_routing_needs_the_interconnect_side() -> None:
    p = policy(HOME_ROUTING)
    with pytest.raises(ValueError, match="interconnect"):
        GuardProxy(Inspector(Engine(p)), ("127.0.0.1", 9), home_router=HomeRouter(p))


def test_the_cli_refuses_home_routing_without_the_interconnect_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from herald.cli import main

    from .builders import POLICY_TOML

    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML + HOME_ROUTING)
    code = main(["guard", "proxy", "--listen", "127.0.0.1:0", "--peer", "127.0.0.1:9",
                 "--policy", str(path)])  # fmt: skip
    assert code == 2
    assert "--interconnect" in capsys.readouterr().err


async def test_the_cli_proxy_home_routes(tmp_path: Path) -> None:
    """``herald guard proxy`` as an operator runs it, in its own process."""
    import signal

    from .builders import POLICY_TOML
    from .proxy_process import proxy_process

    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML + HOME_ROUTING)
    async with proxy_process(path, "--interconnect", "listen") as running:
        a, b = await running.connect(Recorder)
        answer = await _lookup(Rig(None, a, b))  # type: ignore[arg-type]
        correlation = _correlation(answer)
        assert correlation != HOME_IMSI
        mt, _ = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
        await a.send(mt)
        assert decode(await b.next()).called_digits == MSC_HOME
        running.process.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(running.process.communicate(), 30)
    assert running.process.returncode == 0
    assert "home-routed 2" in out.decode()
    assert leaked(bytes(a.raw)) == []
    assert leaked(out, (HOME_IMSI, MSC_HOME, correlation)) == []


async def test_a_long_message_opened_with_map_open_is_routed(rig: Rig) -> None:
    """TS 29.002 §12.9: the IMSI in MAP-OPEN's destination reference, the
    invoke (with noSM-RP-DA) in the TC-CONTINUE that follows."""
    from herald.signaling.homerouting import _map_open
    from herald.signaling.map_types import SmRpDa, SmRpDaKind

    correlation = _correlation(await _lookup(rig))
    begin, otid = fx.mt_fsm_open(FOREIGN, correlation, ROUTER)
    await rig.a.send(begin)
    opened = decode(await rig.b.next())
    assert opened.called_digits == MSC_HOME
    assert opened.tcap.dialogue is not None
    found = _map_open(opened.tcap.dialogue.user_information)
    assert found is not None and (found.destination, found.origination) == (HOME_IMSI, FOREIGN)

    msc_tid = b"\x0a\x0b\x0c\x0d"
    await rig.b.send(fx.tc_continue(msc_tid, otid, MSC_HOME, FOREIGN, accept=True))
    accepted = decode(await rig.a.next())
    assert accepted.calling_digits == ROUTER and accepted.tcap.otid == msc_tid

    segment = fx.tc_continue(otid, msc_tid, FOREIGN, ROUTER,
                             fx.mt_invoke(FOREIGN, SmRpDa(SmRpDaKind.NONE)))
    await rig.a.send(segment)
    delivered = decode(await rig.b.next())
    assert delivered.called_digits == MSC_HOME
    assert isinstance(delivered.argument, ForwardSmArg)
    await rig.b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnResult(1)))
    assert decode(await rig.a.next()).calling_digits == ROUTER
    await _barrier(rig)
    assert rig.proxy.stats.blocked == 0
    assert leaked(bytes(rig.a.raw)) == []
    # ... and the same MAP-OPEN again is a replay
    again, _ = fx.mt_fsm_open(FOREIGN, correlation, ROUTER)
    await rig.a.send(again)
    assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)


async def test_a_map_open_from_another_smsc_is_refused(rig: Rig) -> None:
    correlation = _correlation(await _lookup(rig))
    begin, _ = fx.mt_fsm_open(OTHER_FOREIGN, correlation, ROUTER)
    await rig.a.send(begin)
    assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
    await _barrier(rig)


async def test_metrics_count_home_routing_without_identifiers(rig: Rig) -> None:
    import httpx

    from herald.guard.metrics import MetricsServer, proxy_registry

    from .test_metrics import _samples

    server = MetricsServer(proxy_registry(rig.proxy))
    host, port = await server.start("127.0.0.1", 0)
    try:
        correlation = _correlation(await _lookup(rig))
        async with httpx.AsyncClient(timeout=WAIT) as client:
            text = (await client.get(f"http://{host}:{port}/metrics")).text
    finally:
        await server.close()
    got = _samples(text)
    assert got[("herald_guard_home_routed_total", ())] == 1
    assert got[("herald_guard_home_routing_entries", (("table", "correlations"),))] == 1
    assert got[("herald_guard_home_routing_entries", (("table", "lookups"),))] == 0
    assert leaked(text.encode(), (*SECRETS, correlation, ROUTER, FOREIGN)) == []
