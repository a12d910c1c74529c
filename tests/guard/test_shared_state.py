"""Two proxies sharing the guard's state through herald's store, as an active
pair behind a load balancer: what one engine learns reaches the other within
a share (locations, SMS correlations, deliveries, rates, lookups), and SMS
home routing's correlations serve either proxy, on the SQLite data directory
and on PostgreSQL. Real proxies, real M3UA endpoints on loopback, real SQLite
files and a real PostgreSQL cluster; the stored rows carry none of the
identifiers they protect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from herald.guard.correlations import SQLiteCorrelations, SQLiteLookups, SQLiteSnapshots
from herald.guard.inspector import Inspector
from herald.guard.pg_state import (
    BULK_TIMEOUT,
    TABLES,
    PgLink,
    PostgresCorrelations,
    PostgresLookups,
    PostgresSnapshots,
)
from herald.guard.proxy import GuardProxy
from herald.signaling import decode
from herald.signaling.homerouting import HomeRouter
from herald.signaling.map_types import ForwardSmArg
from herald.signaling.message import ReturnError, ReturnResult
from herald.signaling.policy import Action, Engine, Policy, Rule
from herald.signaling.policy.snapshot import encode

from . import m3ua_fixtures as fx
from .builders import (
    FAR_VLR,
    HOME_IMSI,
    HOME_MSISDN,
    MSC_HOME,
    NEAR_SMSC,
    NEAR_VLR,
    POLICY_TOML,
    mt_fsm,
    policy,
    sri_sm,
    sri_sm_result,
    update_location,
)
from .proxy_process import proxy_process
from .test_homerouting import (
    FOREIGN,
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

T = 1000.0


def _shared(source: Engine, target: Engine, now: float, since: float, age: float = 0.0) -> int:
    return target.restore_state(encode(source.copy_changes(now, since, 1000)), now, age,
                                share=True)  # fmt: skip


# ------------------------------------------------------------ the engine's part


def test_a_share_carries_what_changed_since_the_last() -> None:
    """Only entries changed at or after ``since``; one updated in place (a
    rate bucket) counts as changed, however old its key."""
    engine = Engine(policy())
    engine.inspect(update_location(T, NEAR_VLR))
    engine.inspect(update_location(T + 1, FAR_VLR, imsi="001010000000002"))
    engine.inspect(update_location(T + 5, NEAR_VLR, imsi="001010000000003"))
    engine.inspect(update_location(T + 9, NEAR_VLR))  # NEAR_VLR's bucket, updated in place
    tables = engine.copy_changes(T + 10, T + 6, 1).tables
    # The newest bucket is NEAR_VLR's (updated last), not FAR_VLR's (added later).
    assert [k for k, _ in tables["gt_buckets"]] == [NEAR_VLR]
    assert len(engine.copy_changes(T + 10, T + 6, 1000).tables["locations"]) == 1
    assert tables["dialogues"] == []  # answers come back through the same proxy
    assert engine.copy_changes(T + 10, T + 9.5, 1000).tables["locations"] == []


def test_a_change_made_before_a_merge_is_still_shared() -> None:
    """What another proxy shared goes to the old end of each table, so that
    the next share, walking back from the young end until it meets a run of
    entries older than the last share, still finds this engine's own change
    made before a thousand older merged ones arrived."""
    one, two = Engine(policy()), Engine(policy())
    for n in range(1000):
        one.inspect(update_location(T - 5 + n / 1000, NEAR_VLR, imsi=f"00101000000{n:04d}"))
    two.inspect(update_location(T + 0.5, NEAR_VLR, imsi="001010000009999"))
    assert _shared(one, two, T - 3, T - 6) >= 1000  # arriving late
    tables = two.copy_changes(T + 2, T, 5000).tables
    assert len(tables["locations"]) == 1  # its own, found behind the merged ones
    assert [k for k, _ in tables["gt_buckets"]] == [NEAR_VLR]


def test_a_location_learnt_by_one_proxy_holds_in_the_other() -> None:
    one, two = Engine(policy()), Engine(policy())
    assert one.inspect(update_location(T, NEAR_VLR)).action is Action.ALLOW
    assert _shared(one, two, T + 1, T - 1) > 0
    verdict = two.inspect(update_location(T + 60, FAR_VLR))
    assert (verdict.action, verdict.rule) == (Action.BLOCK, Rule.CAT3_VELOCITY)
    alone = Engine(policy())  # without the share: the first location seen
    assert alone.inspect(update_location(T + 60, FAR_VLR)).action is Action.ALLOW


def test_a_lookup_answered_by_one_is_delivered_through_the_other() -> None:
    """The SRI-SM through one proxy, the MT-ForwardSM through the other: it is
    consistent there, and the first owes no lookup-only alert for it."""
    one, two = Engine(policy()), Engine(policy())
    for engine in (one, two):
        engine.share_deliveries()
    begin = sri_sm(T, NEAR_SMSC)
    one.inspect(begin)
    one.inspect(sri_sm_result(T + 0.1, begin))
    assert _shared(one, two, T + 0.5, T - 1) > 0
    assert two.inspect(mt_fsm(T + 1, NEAR_SMSC)).action is Action.ALLOW
    alone = Engine(policy())
    assert alone.inspect(mt_fsm(T + 1, NEAR_SMSC)).rule is Rule.SMS_CONSISTENCY
    _shared(two, one, T + 1.5, T + 0.5)
    assert one.expire(T + 1000) == []
    # Unshared, the first would have said "a lookup only".
    other = Engine(policy())
    other.inspect(begin := sri_sm(T, NEAR_SMSC))
    other.inspect(sri_sm_result(T + 0.1, begin))
    assert [v.rule for v in other.expire(T + 1000)] == [Rule.LOOKUP_ONLY]


# ---------------------------------------------------------------- the stores


@dataclass
class Stores:
    """One proxy's view of the shared store: snapshots and correlations."""

    snapshots: Any
    correlations: Callable[[Policy], Any]
    lookups: Any
    rows: Callable[[], bytes]  # every stored octet, for the red-line check


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_stores(store_kind: str, tmp_path: Path,
                request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Stores]]:  # fmt: skip
    """A factory of per-proxy stores over one shared store, closed after."""
    opened: list[Any] = []
    if store_kind == "sqlite":

        def rows() -> bytes:
            return b"".join(p.read_bytes() for p in tmp_path.glob("guard-*.db*"))

        def make() -> Stores:
            snaps = SQLiteSnapshots(tmp_path, policy().salt)
            opened.append(snaps)

            def corr(p: Policy) -> Any:
                store = SQLiteCorrelations(tmp_path, p.salt, p.home_routing.max_entries)
                opened.append(store)
                return store

            lookups = SQLiteLookups(tmp_path, policy().salt, 1000)
            opened.append(lookups)
            return Stores(snaps, corr, lookups, rows)
    else:
        dsn = request.getfixturevalue("pg_store_dsn")

        def rows() -> bytes:
            link = PgLink(dsn, timeout=BULK_TIMEOUT)
            link.open()
            try:
                found = b""
                for table in TABLES:
                    got = link.call(lambda c, t=table: c.fetch(f"SELECT * FROM {t}"))  # type: ignore[misc]
                    found += b"".join(repr(tuple(r.values())).encode() for r in got)
                return found
            finally:
                link.close()

        def make() -> Stores:
            link = PgLink(dsn, timeout=BULK_TIMEOUT, name="snapshots")
            link.open()
            snaps = PostgresSnapshots(link, policy().salt)
            opened.append(snaps)

            def corr(p: Policy) -> Any:
                corr_link = PgLink(dsn, name="correlations")
                corr_link.open()
                store = PostgresCorrelations(corr_link, p.salt, p.home_routing.max_entries)
                opened.append(store)
                return store

            lookups_link = PgLink(dsn, name="lookups")
            lookups_link.open()
            lookups = PostgresLookups(lookups_link, policy().salt, 1000)
            opened.append(lookups)
            return Stores(snaps, corr, lookups, rows)

    yield make
    for store in opened:
        store.close()


@contextlib.asynccontextmanager
async def _pair(make: Callable[[], Stores], extra: str = "", *,
                lookups: bool = True) -> AsyncIterator[list[Rig]]:  # fmt: skip
    """Two proxies on one shared store (shares only when the test says:
    ``share_every`` is long; SRI-SM answers shared at once with ``lookups``),
    each with its A side connected and its B side."""
    accepted: asyncio.Queue[Endpoint] = asyncio.Queue()

    async def on_b(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoint = Endpoint(reader, writer)
        endpoint.start()
        accepted.put_nowait(endpoint)

    server = await asyncio.start_server(on_b, "127.0.0.1", 0)
    b_port = server.sockets[0].getsockname()[1]
    rigs: list[Rig] = []
    proxies: list[GuardProxy] = []
    try:
        for _ in range(2):
            stores = make()
            p = policy(extra)
            router = (HomeRouter(p, correlations=stores.correlations(p))
                      if p.home_routing.enabled else None)  # fmt: skip
            proxy = GuardProxy(Inspector(Engine(p)), ("127.0.0.1", b_port), on_block="udts",
                               interconnect="listen", home_router=router,
                               snapshots=stores.snapshots, share_every=600.0,
                               lookups=stores.lookups if lookups else None)  # fmt: skip
            proxies.append(proxy)
            await proxy.restore()
            host, port = await proxy.start("127.0.0.1", 0)
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), WAIT)
            a = Recorder(reader, writer)
            a.start()
            rigs.append(Rig(proxy, a, await asyncio.wait_for(accepted.get(), WAIT)))
        yield rigs
    finally:
        for rig in rigs:
            await rig.a.close()
            await rig.b.close()
        for proxy in proxies:
            await proxy.close()
        server.close()


SECRETS = (HOME_IMSI, MSC_HOME, HOME_MSISDN, NEAR_SMSC, FOREIGN)


async def test_an_sms_through_both_proxies_at_once(make_stores: Callable[[], Stores]) -> None:
    """An SMSC's lookup answered through one proxy, its delivery through the
    other at once (before any share): forwarded, as the answer was shared as
    it passed; and the first proxy owes no lookup-only alert for it. The
    store's rows hold no IMSI, node address, number or GT."""
    async with _pair(make_stores) as (one, two):
        sri, otid = fx.sri_sm(NEAR_SMSC)
        await one.a.send(sri)
        assert await one.b.next() == sri
        answer = fx.sri_sm_result(otid, NEAR_SMSC)
        await one.b.send(answer)
        assert await one.a.next() == answer
        await _barrier(one)  # the answer has been judged (and, on PostgreSQL, queued)
        if isinstance(one.proxy.lookups, PostgresLookups):
            one.proxy.lookups.wait()  # PostgreSQL's write is not waited for by the proxy
        mt, _ = fx.mt_fsm_begin(NEAR_SMSC)
        await two.a.send(mt, mt)  # two segments of one message
        assert await two.b.next() == mt
        assert await two.b.next() == mt
        elsewhere, _ = fx.mt_fsm_begin(NEAR_SMSC, imsi="001010000000002")
        await two.a.send(elsewhere)  # no lookup answered for this one: unrequested
        returned = decode(await two.a.next())  # blocked, and returned (a UDTS)
        assert returned.sccp.kind.name == "UDTS"
        await _barrier(two)
        assert two.proxy.stats.by_rule == {"sms-consistency": 1}
        loop_now = asyncio.get_running_loop().time()
        assert one.proxy.inspector.expire(loop_now + 1000) == []
        assert one.proxy.stats.blocked == 0
        rows = make_stores().rows()
    assert rows
    assert leaked(rows, SECRETS) == []


async def test_an_sms_through_both_proxies_a_share_later(
    make_stores: Callable[[], Stores],
) -> None:
    """The same through the engines' shares alone (no shared answers): the
    delivery through the other proxy a share after the answer is forwarded,
    and the share settles the first proxy's lookup."""
    async with _pair(make_stores, lookups=False) as (one, two):
        sri, otid = fx.sri_sm(NEAR_SMSC)
        await one.a.send(sri)
        assert await one.b.next() == sri
        answer = fx.sri_sm_result(otid, NEAR_SMSC)
        await one.b.send(answer)
        assert await one.a.next() == answer
        await one.proxy.share_state()
        assert await two.proxy.share_state() > 0
        mt, _ = fx.mt_fsm_begin(NEAR_SMSC)
        await two.a.send(mt)
        assert await two.b.next() == mt  # judged consistent: forwarded
        await two.proxy.share_state()
        assert await one.proxy.share_state() > 0
        loop_now = asyncio.get_running_loop().time()
        assert one.proxy.inspector.expire(loop_now + 1000) == []
        for rig in (one, two):
            await rig.proxy.save_state()
            assert rig.proxy.stats.blocked == 0
        rows = make_stores().rows()
    assert rows  # the shares and snapshots are there
    assert leaked(rows, SECRETS) == []


async def test_home_routing_through_both_proxies(make_stores: Callable[[], Stores]) -> None:
    """The pair behind a load balancer with SMS home routing: the correlation
    id handed out by one proxy is restored by the other; a replay, and the
    id shown by another SMSC, are refused by either."""
    async with _pair(make_stores, HOME_ROUTING) as (one, two):
        correlation = _correlation(await _lookup(one))
        other = _correlation(await _lookup(one))
        mt, otid = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
        await two.a.send(mt)
        restored = decode(await two.b.next())
        assert restored.called_digits == MSC_HOME
        assert isinstance(restored.argument, ForwardSmArg)
        assert restored.argument.da.imsi == HOME_IMSI
        await two.b.send(fx.answer(otid, MSC_HOME, FOREIGN, ReturnResult(1)))
        done = decode(await two.a.next())
        assert done.calling_digits == ROUTER and done.tcap.components == (ReturnResult(1),)
        for rig in (one, two):  # replayed, through either
            await rig.a.send(mt)
            assert decode(await rig.a.next()).tcap.components == (ReturnError(1, 5),)
        stolen, _ = fx.mt_fsm_begin(OTHER_FOREIGN, imsi=other, called=ROUTER)
        await two.a.send(stolen)  # another SMSC's id
        assert decode(await two.a.next()).tcap.components == (ReturnError(1, 5),)
        for rig in (one, two):
            await _barrier(rig)
            assert leaked(bytes(rig.a.raw)) == []
        assert one.proxy.stats.by_rule == {"home-routing": 1}
        assert two.proxy.stats.by_rule == {"home-routing": 2}
        rows = make_stores().rows()
    assert leaked(rows, (*SECRETS, correlation, other)) == []


async def test_two_proxy_processes_on_postgresql(pg_store_dsn: str, tmp_path: Path) -> None:
    """``herald guard proxy --store postgresql://...`` twice, as an operator
    runs the pair: the lookup through the first, its delivery through the
    second; the replay refused by the first."""
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML + HOME_ROUTING)
    args = ("--interconnect", "listen", "--store", pg_store_dsn)
    env = {"PYTHONHASHSEED": "4242"}
    async with proxy_process(path, *args, env=env) as first, \
            proxy_process(path, *args, env=env) as second:  # fmt: skip
        a1, b1 = await first.connect(Recorder)
        a2, b2 = await second.connect(Recorder)
        correlation = _correlation(await _lookup(Rig(None, a1, b1)))  # type: ignore[arg-type]
        mt, _ = fx.mt_fsm_begin(FOREIGN, imsi=correlation, called=ROUTER)
        await a2.send(mt)
        restored = decode(await b2.next())
        assert restored.called_digits == MSC_HOME
        assert isinstance(restored.argument, ForwardSmArg)
        assert restored.argument.da.imsi == HOME_IMSI
        await a1.send(mt)  # replayed through the first
        assert decode(await a1.next()).tcap.components == (ReturnError(1, 5),)
        for a, b in ((a1, b1), (a2, b2)):
            await _barrier(Rig(None, a, b))  # type: ignore[arg-type]
            assert leaked(bytes(a.raw)) == []


def test_postgresql_answers_a_question_after_the_writes_before_it(pg_store_dsn: str) -> None:
    """Answers are written without waiting; a question asked right after them
    is answered after them, on the link's one connection (never two
    statements at once on it)."""
    link = PgLink(pg_store_dsn, timeout=BULK_TIMEOUT, name="lookups")  # a loaded machine
    link.open()
    lookups = PostgresLookups(link, policy().salt, 1000)
    try:
        for n in range(20):
            lookups.answered(NEAR_SMSC, f"subscriber-{n}", MSC_HOME, 5.0, 65.0)
        assert lookups.find(NEAR_SMSC, "subscriber-19", 6.0) == (pytest.approx(5.0, abs=1),
                                                                 MSC_HOME)  # fmt: skip
        assert lookups.delivered(NEAR_SMSC, "subscriber-19")
        assert not lookups.delivered(NEAR_SMSC, "subscriber-18")
        assert lookups.find(NEAR_SMSC, "nobody", 6.0) is None
    finally:
        lookups.close()
