"""The inline proxy between two real M3UA endpoints on loopback TCP.

Endpoint A connects to the proxy; the proxy connects to endpoint B. Every wait
is bounded (WAIT seconds); "nothing arrived" is shown by ordering, not by
sleeping: a later message that must arrive proves the earlier one did not.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from herald.guard.audit import AuditLog, verify
from herald.guard.inspector import Inspector
from herald.guard.proxy import GuardProxy, parse_address, sctp_support
from herald.signaling import decode
from herald.signaling.m3ua import Framer
from herald.signaling.message import SccpMessageType
from herald.signaling.policy import Engine

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HLR, policy

WAIT = 5.0


@dataclass
class Endpoint:
    """One side of an M3UA association: reads whole messages into a queue."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        framer = Framer()
        while data := await self.reader.read(65536):
            self._arrived(data)
            for msg in framer.feed(data):
                self.received.put_nowait(msg)

    def _arrived(self, data: bytes) -> None:
        """Every chunk read, before it is framed (a subclass may keep them)."""

    async def send(self, *messages: bytes) -> None:
        for m in messages:
            self.writer.write(m)
        await self.writer.drain()

    async def next(self) -> bytes:
        return await asyncio.wait_for(self.received.get(), WAIT)

    async def close(self) -> None:
        self.writer.close()
        if self.task is not None:
            self.task.cancel()


@dataclass
class Rig:
    proxy: GuardProxy
    a: Endpoint
    b: Endpoint


async def _rig(
    on_block: str, audit: AuditLog | None = None, extra_policy: str = ""
) -> tuple[Rig, asyncio.Server]:
    accepted: asyncio.Queue[Endpoint] = asyncio.Queue()

    async def on_b(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = Endpoint(reader, writer)
        endpoint.start()
        accepted.put_nowait(endpoint)

    server_b = await asyncio.start_server(on_b, "127.0.0.1", 0)
    b_host, b_port = server_b.sockets[0].getsockname()[:2]
    inspector = Inspector(Engine(policy(extra_policy)), audit)
    proxy = GuardProxy(inspector, (b_host, b_port), on_block=on_block, return_cause=3)
    host, port = await proxy.start("127.0.0.1", 0)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)
    a = Endpoint(reader, writer)
    a.start()
    b = await asyncio.wait_for(accepted.get(), WAIT)
    return Rig(proxy, a, b), server_b


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    on_block = getattr(request, "param", "udts")
    r, server = await _rig(on_block)
    try:
        yield r
    finally:
        await r.a.close()
        await r.b.close()
        await r.proxy.close()
        server.close()


async def test_asp_management_passes_both_ways_unchanged(rig: Rig) -> None:
    await rig.a.send(fx.aspup())
    assert await rig.b.next() == fx.aspup()
    await rig.b.send(fx.aspup_ack(), fx.beat(b"hello"))
    assert await rig.a.next() == fx.aspup_ack()
    assert await rig.a.next() == fx.beat(b"hello")
    assert rig.proxy.stats.passed_through == 3


async def test_allowed_data_arrives_byte_identical_both_ways(rig: Rig) -> None:
    sri, otid = fx.sri_sm()
    await rig.a.send(sri)
    assert await rig.b.next() == sri
    answer = fx.sri_sm_result(otid)
    await rig.b.send(answer)
    assert await rig.a.next() == answer
    mt = fx.mt_fsm()
    await rig.a.send(mt)
    assert await rig.b.next() == mt
    assert rig.proxy.stats.forwarded == 3 and rig.proxy.stats.blocked == 0
    assert rig.proxy.latency.total == 3


async def test_blocked_data_is_answered_with_a_udts(rig: Rig) -> None:
    attack = fx.ati()
    allowed, _ = fx.sri_sm()
    await rig.a.send(attack, allowed)
    assert await rig.b.next() == allowed  # the ATI never reached B
    back = decode(await rig.a.next())
    assert back.sccp.kind is SccpMessageType.UDTS
    assert back.sccp.return_cause == 3
    assert back.called_digits == FOREIGN and back.calling_digits == HLR
    assert back.sccp.data == decode(attack).sccp.data  # Q.714 §4.2: the data goes back
    assert (back.label.opc, back.label.dpc) == (200, 100)
    assert rig.proxy.stats.blocked == 1 and rig.proxy.stats.by_rule == {"cat1": 1}


async def test_no_udts_when_the_sender_did_not_ask_for_returns(rig: Rig) -> None:
    await rig.a.send(fx.ati(return_on_error=False), fx.aspup())
    assert await rig.b.next() == fx.aspup()
    await rig.b.send(fx.beat())
    assert await rig.a.next() == fx.beat()  # and no UDTS came before it
    assert rig.proxy.stats.udts_sent == 0


@pytest.mark.parametrize("rig", ["drop"], indirect=True)
async def test_drop_mode_answers_nothing(rig: Rig) -> None:
    await rig.a.send(fx.ati(), fx.aspup())
    assert await rig.b.next() == fx.aspup()
    await rig.b.send(fx.beat())
    assert await rig.a.next() == fx.beat()
    assert (rig.proxy.stats.blocked, rig.proxy.stats.udts_sent) == (1, 0)


async def test_traffic_from_the_peer_side_is_judged_too(rig: Rig) -> None:
    await rig.b.send(fx.ati(), fx.beat())
    back = decode(await rig.b.next())  # B gets the UDTS
    assert back.sccp.kind is SccpMessageType.UDTS
    assert await rig.a.next() == fx.beat()  # A got only the heartbeat


async def test_a_framing_error_closes_both_connections(rig: Rig) -> None:
    await rig.a.send(b"\x02\x00\x01\x01\x00\x00\x00\x10" + bytes(8))  # M3UA version 2
    assert rig.b.task is not None
    await asyncio.wait_for(rig.b.task, WAIT)  # B sees end of stream
    assert rig.proxy.stats.framing_errors == 1


async def test_blocks_are_audited(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    audit = AuditLog(log)
    r, server = await _rig("drop", audit)
    try:
        await r.a.send(fx.ati(), fx.aspup())
        assert await r.b.next() == fx.aspup()
    finally:
        await r.a.close()
        await r.b.close()
        await r.proxy.close()
        server.close()
        audit.close()
    records = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["content"]["rule"], x["content"]["mode"]) for x in records] == [("cat1", "proxy")]
    assert verify(log).ok


async def test_sctp_transport_when_the_kernel_has_it() -> None:
    ok, why = sctp_support()
    if not ok:
        pytest.skip(f"SCTP not available here: {why}")
    inspector = Inspector(Engine(policy()))
    proxy = GuardProxy(inspector, ("127.0.0.1", 9), transport="sctp")
    _, port = await proxy.start("127.0.0.1", 0)
    assert port > 0
    await proxy.close()


def test_addresses_parse() -> None:
    assert parse_address("127.0.0.1:2905") == ("127.0.0.1", 2905)
    assert parse_address("[::1]:0") == ("::1", 0)
    for bad in ("2905", "host:", "host:70000", ":1"):
        with pytest.raises(ValueError):
            parse_address(bad)


async def test_close_ends_open_connections_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    r, server = await _rig("drop")
    try:
        await r.a.send(fx.aspup())
        assert await r.b.next() == fx.aspup()
        await asyncio.wait_for(r.proxy.close(), WAIT)  # connections still open
        assert r.a.task is not None and r.b.task is not None
        await asyncio.wait_for(asyncio.gather(r.a.task, r.b.task), WAIT)  # both see EOF
        assert not r.proxy._handlers
    finally:
        await r.a.close()
        await r.b.close()
        server.close()
    assert "Exception in callback" not in caplog.text
