"""SMS home routing's correlations kept in the data directory: a delivery
reaches its subscriber across a restart of ``herald guard proxy`` and through
another proxy sharing the directory; a replayed or foreign correlation id is
still refused. Real proxies (in-process and as their own processes), real
M3UA endpoints on loopback, real SQLite files."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from herald.guard.correlations import FILE_NAME, SQLiteCorrelations
from herald.guard.inspector import Inspector
from herald.guard.proxy import GuardProxy
from herald.signaling import decode
from herald.signaling.homerouting import HomeRouter
from herald.signaling.map_types import ForwardSmArg
from herald.signaling.message import ReturnError, ReturnResult
from herald.signaling.policy import Engine
from herald.store import SQLiteConfig, SQLiteStore

from . import m3ua_fixtures as fx
from .builders import FOREIGN, HOME_IMSI, MSC_HOME, POLICY_TOML, policy
from .proxy_process import proxy_process
from .test_homerouting import (
    HOME_ROUTING,
    OTHER_FOREIGN,
    ROUTER,
    Recorder,
    Rig,
    _barrier,
    _correlation,
    _lookup,
    leaked,
)
from .test_proxy import WAIT, Endpoint


async def _data_dir(tmp_path: Path) -> Path:
    """A herald data directory (what ``herald serve`` writes)."""
    data = tmp_path / "data"
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    await store.aclose()
    return data


async def _stop(process: asyncio.subprocess.Process) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    return out.decode()


async def test_a_delivery_across_a_restart_of_the_proxy(tmp_path: Path) -> None:
    """SRI-SM answered by one ``herald guard proxy``; it stops; the next one,
    on the same data directory, restores the MT-ForwardSM that follows. A
    replay of it, and the id shown by another SMSC, are refused after the
    restart as before it."""
    data = await _data_dir(tmp_path)
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML + HOME_ROUTING)
    args = ("--interconnect", "listen", "--store", str(data))
    async with proxy_process(path, *args) as first:
        a, b = await first.connect(Recorder)
        correlation = _correlation(await _lookup(Rig(None, a, b)))  # type: ignore[arg-type]
        other = _correlation(await _lookup(Rig(None, a, b)))  # type: ignore[arg-type]
        # A third delivery is restored, and the proxy stops before the MSC answers.
        third = _correlation(await _lookup(Rig(None, a, b)))  # type: ignore[arg-type]
        pending, pending_tid = fx.mt_fsm_begin(FOREIGN, imsi=third, called=ROUTER)
        await a.send(pending)
        assert decode(await b.next()).called_digits == MSC_HOME
        out = await _stop(first.process)
    assert leaked(bytes(a.raw)) == []
    assert leaked(out.encode(), (HOME_IMSI, MSC_HOME, correlation)) == []

    async with proxy_process(path, *args) as second:
        a, b = await second.connect(Recorder)
        mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
        await a.send(mt)
        restored = decode(await b.next())
        assert restored.called_digits == MSC_HOME
        assert isinstance(restored.argument, ForwardSmArg)
        assert restored.argument.da.imsi == HOME_IMSI
        await b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnResult(1)))
        assert decode(await a.next()).calling_digits == ROUTER
        # The MSC's answer to the delivery restored before the restart leaves
        # as the router's too, not with the MSC's address.
        await b.send(fx.answer(pending_tid, MSC_HOME, FOREIGN, ReturnResult(1)))
        late = decode(await a.next())
        assert late.calling_digits == ROUTER and late.tcap.dtid == pending_tid
        await a.send(mt)  # replayed
        assert decode(await a.next()).tcap.components == (ReturnError(1, 5),)
        stolen, _ = fx.mt_fsm_begin(OTHER_FOREIGN, imsi=other, called=ROUTER)
        await a.send(stolen)  # another SMSC's
        assert decode(await a.next()).tcap.components == (ReturnError(1, 5),)
        await _barrier(Rig(None, a, b))  # type: ignore[arg-type]
        out = await _stop(second.process)
    assert "blocked 2" in out and "blocked by home-routing: 2" in out
    assert "sms-consistency" not in out  # the restored delivery was judged consistent
    assert leaked(bytes(a.raw)) == []
    assert (data / FILE_NAME).is_file()


async def _proxy(data: Path, b_port: int) -> GuardProxy:
    p = policy(HOME_ROUTING)
    store = SQLiteCorrelations(data, p.salt, p.home_routing.max_entries)
    router = HomeRouter(p, correlations=store)
    return GuardProxy(Inspector(Engine(p)), ("127.0.0.1", b_port), on_block="udts",
                      interconnect="listen", home_router=router)  # fmt: skip


async def test_two_proxies_share_the_correlations(tmp_path: Path) -> None:
    """An active pair behind a load balancer: the lookup through one proxy,
    the delivery through the other; the id serves once, whichever proxy."""
    accepted: asyncio.Queue[Endpoint] = asyncio.Queue()

    async def on_b(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = Endpoint(reader, writer)
        endpoint.start()
        accepted.put_nowait(endpoint)

    server = await asyncio.start_server(on_b, "127.0.0.1", 0)
    b_port = server.sockets[0].getsockname()[1]
    proxies = [await _proxy(tmp_path, b_port) for _ in range(2)]
    rigs: list[Rig] = []
    try:
        for proxy in proxies:
            host, port = await proxy.start("127.0.0.1", 0)
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)
            a = Recorder(reader, writer)
            a.start()
            rigs.append(Rig(proxy, a, await asyncio.wait_for(accepted.get(), WAIT)))
        one, two = rigs
        correlation = _correlation(await _lookup(one))
        mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
        await two.a.send(mt)
        restored = decode(await two.b.next())
        assert restored.called_digits == MSC_HOME
        assert isinstance(restored.argument, ForwardSmArg)
        assert restored.argument.da.imsi == HOME_IMSI
        # The MSC's answer comes back through the other proxy (the home
        # network load-shares too): it leaves as the router's all the same.
        await one.b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnResult(1)))
        done = decode(await one.a.next())
        assert done.calling_digits == ROUTER and done.tcap.components == (ReturnResult(1),)
        replay, _ = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
        await one.a.send(replay)  # the first proxy does not serve it again
        assert decode(await one.a.next()).tcap.components == (ReturnError(1, 5),)
        for rig in rigs:
            await _barrier(rig)
            assert leaked(bytes(rig.a.raw)) == []
        assert two.proxy.stats.blocked == 0
        assert one.proxy.stats.by_rule == {"home-routing": 1}
    finally:
        for rig in rigs:
            await rig.a.close()
            await rig.b.close()
        for proxy in proxies:
            await proxy.close()
        server.close()
