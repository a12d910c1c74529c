"""``herald serve --store postgresql://...``: the platform on a shared PostgreSQL.

``herald serve`` refuses such a URL while :class:`PostgresStore` lacks a
method of the store port, naming them (computed, so the refusal ends by
itself); the end-to-end tests, real ``herald serve`` processes on a real
server, are then expected to fail, for the reason they print.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.cli import main
from herald.net import ClientSettings, SmppClient
from herald.numbers import CHECK_INTERVAL
from herald.sim import SimConfig, Simulator
from herald.smpp.pdus import BindTransceiver, SubmitSm
from herald.smpp.receipts import receipt_of
from herald.store import SchemaError, SQLiteStore
from herald.store import postgres as pg
from herald.store.postgres import (
    SCHEMA_VERSION,
    PostgresStore,
    connection,
    missing_methods,
    open_served,
    schema_version,
    serve_refusal,
)
from herald.store.postgres._serve import port_methods
from peers.postgres import free_port

from .test_serve import TO, Collect, Receiver, eventually

HERALD = [sys.executable, "-m", "herald"]
#: What the end-to-end tests would wait for: the port's methods PostgresStore lacks.
MISSING = missing_methods()
needs_the_whole_port = pytest.mark.xfail(
    bool(MISSING), strict=True,
    reason=f"herald serve refuses PostgreSQL while PostgresStore lacks {', '.join(MISSING)}")


def _toml(value: Any) -> str:
    """``value`` as a TOML value (inline tables and arrays: enough for these configs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # strings and numbers read the same in TOML


def _config(tmp_path: Path, http: int = 0, smpp: int = 0, **settings: Any) -> Path:
    """A herald.toml in ``tmp_path``: its data dir beside it, listening on loopback
    (port 0: any), one process unless ``settings`` say otherwise."""
    values = {"data_dir": str(tmp_path / "data"), "processes": 1,
              "http": {"listen": f"127.0.0.1:{http}"}, "smpp": {"listen": f"127.0.0.1:{smpp}"},
              **settings}  # fmt: skip
    path = tmp_path / "herald.toml"
    path.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in values.items()))
    return path


# -- the refusal, while the port is incomplete -----------------------------------------


def _stand_in(lacking: set[str]) -> type[PostgresStore]:
    """PostgresStore with every port method but ``lacking`` (whatever it has today)."""
    methods: dict[str, Any] = {n: lambda *a: None for n in port_methods()}
    return type("StandIn", (PostgresStore,), {**methods, **dict.fromkeys(lacking)})


def test_the_port_methods_are_every_protocols_methods() -> None:
    names = port_methods()
    # one of each protocol Store joins, plain defs returning awaitables too, and Store's own
    assert {"create_account", "accept", "record_segments", "watch_outbox", "put_number_table",
            "record_audit", "get_controls", "put_routes", "margin", "start_verification",
            "record_fraud_decision", "accept_chain", "backlog", "aclose"} <= names
    assert all(callable(getattr(SQLiteStore, n, None)) for n in names)  # the complete store
    assert not any(n.startswith("_") for n in names)


def test_serve_refuses_naming_the_methods_postgres_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pg._serve, "PostgresStore", _stand_in({"watch_outbox", "claim"}))
    url = "postgresql://herald:s3cret@127.0.0.1:5/herald"
    assert main(["serve", "--config", str(_config(tmp_path)), "--store", url]) == 2
    err = capsys.readouterr().err
    assert "2 methods of the store port are missing on it (claim, watch_outbox)" in err
    assert "s3cret" not in err and "herald:***@" in err
    assert not (tmp_path / "data").exists()  # refused before anything was started


def test_serve_refuses_what_herald_toml_names_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pg._serve, "PostgresStore", _stand_in({"backlog"}))
    config = _config(tmp_path, store={"url": "postgresql://herald@127.0.0.1:5/herald"})
    assert main(["serve", "--config", str(config)]) == 2
    assert "(backlog)" in capsys.readouterr().err


def test_the_refusal_ends_when_the_port_is_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg._serve, "PostgresStore", _stand_in(set()))
    assert serve_refusal("postgresql://herald@127.0.0.1:5/herald") is None
    assert serve_refusal("postgresql://herald@127.0.0.1:5") == (
        "'postgresql://herald@127.0.0.1:5' names no database (postgresql://host/DATABASE)")


def test_migrate_is_only_for_a_postgresql_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--config", str(_config(tmp_path)), "--migrate"]) == 2
    assert "--migrate is for a PostgreSQL store" in capsys.readouterr().err


# -- starting: the schema, an unreachable server ---------------------------------------


async def test_a_database_behind_this_herald_is_refused_unless_migrate(pg_dsn: str) -> None:
    with pytest.raises(SchemaError, match=r"schema version 0; this herald needs \d+: run "
                                          r"`herald db migrate --store postgresql://"):
        await open_served(pg_dsn, max_connections=2)
    async with connection(pg_dsn) as conn:
        assert await schema_version(conn) == 0  # nothing changed
    store = await open_served(pg_dsn, migrate=True, max_connections=2)
    await store.aclose()
    async with connection(pg_dsn) as conn:
        assert await schema_version(conn) == SCHEMA_VERSION
    store = await open_served(pg_dsn, max_connections=2)  # up to date: opens as it is
    await store.aclose()


def _as_if_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the refusal, to the store's opening (which fails first in these tests)."""
    monkeypatch.setattr(pg._serve, "missing_methods", lambda: ())


def test_serve_on_a_database_behind_says_to_migrate(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _as_if_complete(monkeypatch)
    assert main(["serve", "--config", str(_config(tmp_path)), "--store", pg_dsn]) == 1
    err = capsys.readouterr().err
    assert f"run `herald db migrate --store {pg_dsn}` first" in err
    assert "Traceback" not in err


def test_serve_on_an_unreachable_database_is_one_line_and_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _as_if_complete(monkeypatch)
    url = f"postgresql://herald:s3cret@127.0.0.1:{free_port()}/herald"
    assert main(["serve", "--config", str(_config(tmp_path)), "--store", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("herald serve: cannot connect to postgresql://herald:***@127.0.0.1:")
    assert "s3cret" not in err and "Traceback" not in err


# -- the whole platform on PostgreSQL, as a real process -------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.2), seed=7))
    await simulator.start()
    yield simulator
    await simulator.stop()


async def _herald(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *HERALD, *args, cwd=cwd, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def _prepare(url: str, cwd: Path) -> tuple[str, str, str]:
    """``herald db migrate`` and ``herald accounts create|add-smpp --store url``:
    the account "shop"'s API key, SMPP password and webhook signing secret."""
    for command in (("db", "migrate"), ("accounts", "create", "shop", "--bind-limit", "2"),
                    ("accounts", "add-smpp", "shop", "--system-id", "shop")):  # fmt: skip
        data = () if command[0] == "db" else ("--data-dir", "data")
        code, said = await _herald(*command, "--store", url, *data, cwd=cwd)
        assert code == 0, said
        if command[-1] == "2":
            key = said.split("once; herald keeps only a hash):\n")[1].split()[0]
            secret = said.split("back that file up):\n")[1].split()[0]
    return key, said.split("password:")[1].split()[0], secret


async def _serving(config: Path, url: str, cwd: Path, *more: str) -> tuple[Any, str]:
    """``herald serve --store url [more]`` started; (process, what it said up to and
    including its banner line: the last)."""
    proc = await asyncio.create_subprocess_exec(
        *HERALD, "serve", "--config", str(config), "--store", url, *more, cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    assert proc.stdout is not None
    said = ""
    try:
        async with asyncio.timeout(60):
            while "herald: HTTP API on" not in said:
                line = await proc.stdout.readline()
                if not line:
                    raise AssertionError(f"herald serve exited: {said}")
                said += line.decode()
    except BaseException:
        said += await _stop(proc)
        raise AssertionError(f"herald serve did not start ({proc.returncode}): {said}") from None
    return proc, said


async def _stop(proc: Any) -> str:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return str(out.decode())


@needs_the_whole_port
async def test_a_message_goes_through_herald_serve_on_postgresql(
    tmp_path: Path, pg_dsn: str, sim: Simulator
) -> None:
    # docs/scale-out.md's commands: migrate, create the account, serve.
    key, password, secret = await _prepare(pg_dsn, tmp_path)
    http, smpp = free_port(), free_port()
    config = _config(
        tmp_path, http, smpp, processes=2,  # the front, and the delivery process
        connectors=[{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                     "system_id": "herald", "password": "pw", "binds": 2, "tps": 500}],
        routes=[{"prefix": "", "connectors": ["sim"]}],
        webhooks={"block_private_addresses": False})  # the receiver is on 127.0.0.1
    proc, said = await _serving(config, pg_dsn, tmp_path)
    banner = said.splitlines()[-1]
    receiver = Receiver()
    try:
        hook = await receiver.start()
        assert "delivery in process" in banner and f"store {pg_dsn}" in banner
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", headers=auth,
                                     timeout=10) as client:  # fmt: skip
            answer = await client.post("/v1/messages", json={
                "to": TO, "from": "SHOP", "text": "Your order has shipped",
                "callback_url": f"http://127.0.0.1:{hook}/hook"})
            assert answer.status_code == 202, answer.text
            message_id = answer.json()["id"]

            async def delivered() -> bool:
                got = await client.get(f"/v1/messages/{message_id}")
                return bool(got.json()["status"] == "delivered")

            await eventually(delivered)
        await eventually(lambda: any(
            json.loads(body)["message"]["status"] == "delivered" for _, body in receiver.posts))
        # signed with the secret herald accounts printed (the data dir's master key)
        headers, body = receiver.posts[-1]
        fields = dict(part.split("=", 1) for part in headers["herald-signature"].split(","))
        assert hmac.compare_digest(fields["v1"], hmac.new(
            secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest())
        # SMPP in, the receipt back on the same bind (the front's notifier)
        collect = Collect()
        customer = SmppClient(ClientSettings(
            "127.0.0.1", smpp, BindTransceiver(system_id="shop", password=password)),
            collect)  # fmt: skip
        await customer.start()
        await customer.wait_bound(10)
        resp = await customer.submit(SubmitSm(
            source_addr="SHOP", source_addr_ton=5, destination_addr=TO[1:],
            registered_delivery=1, short_message=b"Your code is 4321"))  # fmt: skip
        assert resp.command_status == 0
        await eventually(lambda: len(collect.got) == 1)
        assert receipt_of(collect.got[0]).stat == "DELIVRD"
        await customer.stop()
    finally:
        await receiver.stop()
        out = await _stop(proc)
    assert proc.returncode == 0, out
    assert "herald: stopped" in out
    assert sim.counters.accepted >= 2
    assert not (tmp_path / "data" / "herald.db").exists()  # no SQLite store beside it


@needs_the_whole_port
async def test_intake_answers_retry_later_while_postgresql_is_away(
    tmp_path: Path, sim: Simulator
) -> None:
    from peers.postgres import PgCluster

    cluster = PgCluster.start()  # its own: the session's is shared
    try:
        url = cluster.create_database("outage")
        key, password, _ = await _prepare(url, tmp_path)
        http, smpp = free_port(), free_port()
        config = _config(
            tmp_path, http, smpp, processes=2,
            connectors=[{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                         "system_id": "herald", "password": "pw", "binds": 1, "tps": 500}],
            routes=[{"prefix": "", "connectors": ["sim"]}])
        proc, _ = await _serving(config, url, tmp_path)
        customer = SmppClient(ClientSettings(
            "127.0.0.1", smpp, BindTransceiver(system_id="shop", password=password)),
            Collect())  # fmt: skip
        try:
            async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{http}", timeout=10,
                    headers={"Authorization": f"Bearer {key}"}) as client:
                send = {"to": TO, "from": "SHOP", "text": "hello"}
                before = await client.post("/v1/messages", json=send)  # the key is known now
                assert before.status_code == 202, before.text
                await customer.start()
                await customer.wait_bound(10)
                submit = SubmitSm(source_addr="SHOP", source_addr_ton=5,
                                  destination_addr=TO[1:], short_message=b"hello")

                cluster.shut_down()
                await asyncio.sleep(2 * CHECK_INTERVAL)  # every reload meets the outage
                away = await client.post("/v1/messages", json=send)
                assert away.status_code == 503, away.text
                assert int(away.headers["Retry-After"]) > 0
                assert (await customer.submit(submit)).command_status == 0x58  # ESME_RTHROTTLED

                cluster.start_again()
                answers: list[httpx.Response] = []

                async def accepted() -> bool:  # no restart: the pools reconnect
                    answers.append(await client.post("/v1/messages", json=send))
                    return answers[-1].status_code == 202

                await eventually(accepted, timeout=30)
                assert {a.status_code for a in answers} <= {202, 503}
                assert (await customer.submit(submit)).command_status == 0

                async def delivered() -> bool:  # the three taken; nothing refused was kept
                    listed = (await client.get("/v1/messages")).json()["messages"]
                    return {m["status"] for m in listed} == {"delivered"} and len(listed) == 3

                await eventually(delivered, timeout=30)
                listed = (await client.get("/v1/messages")).json()["messages"]
                assert {before.json()["id"], answers[-1].json()["id"]} < {m["id"] for m in listed}
        finally:
            await customer.stop()
            out = await _stop(proc)
        assert proc.returncode == 0, out
        # an outage is a warning per retry in herald's log, not an error with a traceback
        assert [line for line in out.splitlines() if " ERROR herald" in line] == []
    finally:
        cluster.stop()



class CountingSim(Simulator):
    """The simulator, counting the sessions bound at every moment (all nodes')."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.bound: set[Any] = set()
        self.most = 0

    def on_bound(self, conn: Any) -> None:
        self.bound.add(conn)
        self.most = max(self.most, len(self.bound))
        super().on_bound(conn)

    def on_closed(self, conn: Any, reason: Any) -> None:
        self.bound.discard(conn)
        super().on_closed(conn, reason)


async def _has(http: int, binds: int) -> bool:
    """Whether this node has ``binds`` sessions bound to the connector "sim" (/healthz)."""
    async with httpx.AsyncClient(timeout=5) as client:
        health = (await client.get(f"http://127.0.0.1:{http}/healthz")).json()
    return bool(health["upstreams"]["sim"]["bound"] == binds)


async def _delivered(http: int, key: str) -> None:
    """One message sent through this node, and seen delivered."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http}", timeout=10,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        answer = await client.post("/v1/messages", json={"to": TO, "from": "SHOP",
                                                         "text": "hello"})  # fmt: skip
        assert answer.status_code == 202, answer.text
        url = f"/v1/messages/{answer.json()['id']}"

        async def delivered() -> bool:
            return bool((await client.get(url)).json()["status"] == "delivered")

        await eventually(delivered)


@needs_the_whole_port
async def test_two_nodes_share_a_connectors_binds(tmp_path: Path, pg_dsn: str) -> None:
    # docs/leases.md: a connector's binds are slots that the nodes share, so the
    # upstream never sees more sessions than `binds`, whichever nodes run.
    sim = CountingSim(SimConfig(port=0, receipt_delay=(0.05, 0.1), seed=3))
    await sim.start()
    nodes: list[Any] = []
    try:
        key, _, _ = await _prepare(pg_dsn, tmp_path)
        ports = free_port(), free_port()
        for name, http, share in (("a", ports[0], 2), ("b", ports[1], 1)):
            home = tmp_path / name
            home.mkdir()
            config = _config(
                home, http, connectors=[{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                                         "system_id": "herald", "password": "pw", "binds": 2,
                                         "tps": 200}],
                routes=[{"prefix": "", "connectors": ["sim"]}])
            nodes.append((await _serving(config, pg_dsn, home))[0])
            # the first takes both slots; the second joins and gets its fair one
            await eventually(partial(_has, http, share), timeout=30)
        await eventually(partial(_has, ports[0], 1), timeout=30)  # a gave one up
        for http in ports:  # both send, each on its own slot
            await _delivered(http, key)
        out = await _stop(nodes[0])  # hands its slot back: the other binds twice
        assert nodes[0].returncode == 0, out
        await eventually(partial(_has, ports[1], 2), timeout=30)
        assert sim.most <= 2  # never more sessions than the connector's binds
    finally:
        for proc in nodes:
            await _stop(proc)
        await sim.stop()



@needs_the_whole_port
async def test_one_node_leads_the_clusters_chores_and_another_takes_over(
    tmp_path: Path, pg_dsn: str
) -> None:
    # docs/leases.md: the leadership is a lease; its holder alone runs the chores
    # (here: making the history's day partitions); a stopped leader hands it over.
    code, out = await _herald("db", "migrate", "--store", pg_dsn, cwd=tmp_path)
    assert code == 0, out
    nodes: list[Any] = []
    said: list[str] = []
    try:
        async with connection(pg_dsn) as conn:

            async def leader() -> str | None:
                owner: str | None = await conn.fetchval(
                    "SELECT owner FROM connector_slots WHERE connector = ':leader'"
                    " AND expires_at > extract(epoch FROM clock_timestamp())")
                return owner

            started: list[str] = []  # what each said before its banner: on a quiet
            for name in ("a", "b"):  # machine the first leads before it serves
                home = tmp_path / name
                home.mkdir()
                proc, before = await _serving(_config(home, free_port()), pg_dsn, home,
                                              "--log-level", "info")  # fmt: skip
                nodes.append(proc)
                started.append(before)
                await eventually(lambda: _some(leader), timeout=30)
            first = await leader()
            assert first is not None and f"-{nodes[0].pid}-" in first  # the first node started
            said.append(started[0] + await _stop(nodes[0]))  # hands over at once
            assert nodes[0].returncode == 0, said[0]

            async def second() -> bool:
                return f"-{nodes[1].pid}-" in (await leader() or "")

            await eventually(second, timeout=15)  # its next cycle (2 s), within a lease (10 s)
        said.append(started[1] + await _stop(nodes[1]))
    finally:
        for proc in nodes:
            await _stop(proc)
    assert [s.count("leads the cluster") for s in said] == [1, 1]
    # The chores ran on the leader only: the days ahead were made once, by the first.
    assert ["history partitions: created" in s for s in said] == [True, False]


async def _some(get: Any) -> bool:
    return await get() is not None
