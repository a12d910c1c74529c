"""End to end on PostgreSQL: 1 and 3 ``herald serve`` nodes on one database, against SQLite.

    .venv/bin/python bench/e2e_cluster.py                 # 20,000 SMPP + 10,000 HTTP per setup
    .venv/bin/python bench/e2e_cluster.py --quick         # 5,000 + 3,000
    .venv/bin/python bench/e2e_cluster.py --setups sqlite pg1 pg3 --rounds 2
    .venv/bin/python bench/e2e_cluster.py --profile       # + py-spy of node 0 (front and delivery)
    .venv/bin/python bench/e2e_cluster.py --statements 20 --nested  # + the server's statements

Issue 10's end-to-end figure: customers' messages in over SMPP and HTTP,
out to the simulator, the receipt back, with herald on SQLite and on
PostgreSQL with 1 and 3 nodes in the same run (goal: >= 4,000 msg/s with 1
and with 3 nodes, and >= 0.75x SQLite).

What runs, all on 127.0.0.1 and the machine's cores (the load average is
printed before and after):

- one ``herald sim --receipt-delay 0`` for the whole run (the upstream SMSC);
- a private PostgreSQL cluster (tests/peers/postgres.py: fsync and
  ``synchronous_commit`` on), unless only ``sqlite`` runs;
- per setup, in turn (``--setups``, repeated ``--rounds`` times): a fresh
  store (SQLite: a fresh data dir; ``pgN``: a fresh database, ``herald db
  migrate``, the account made by ``herald accounts create|add-smpp
  --store``, its ``master.key`` copied to every node's data dir) and N
  ``herald serve`` processes with the same herald.toml (herald's default
  processes: the front and, on 2 CPUs or more, the delivery process; one
  connector to the simulator with ``--upstream-binds`` binds, which the nodes
  share through leases, docs/leases.md; timing starts once every bind is up).

Two timed parts per setup, each after a warm-up:

- **smpp**: ``--binds`` transceivers of herald's ``SmppClient``, bind ``i`` to
  node ``i mod N``, ``--window`` submits in flight on each, registered_delivery
  1; msg/s = messages / (last receipt at the customer - first submit). A
  receipt comes back on any of the customer's binds (the sim may answer on
  another node's upstream bind than the one that sent).
- **http**: ``--http-workers`` keep-alive connections spread over the nodes,
  one message per POST to /v1/messages, no callback_url; msg/s = messages /
  (the last one final in the store - first POST), the store polled every
  0.25 s (``done_at``).

CPU over each part, per message: herald's processes (every node's front
and delivery process), the PostgreSQL server (postmaster, backends, reaped
ones), the sim and this load generator; "CPU bound" = cores / (herald +
PostgreSQL CPU per message), the rate this setup would reach with every core
to itself. ``vs sqlite`` = msg/s / the SQLite setup's msg/s of the same part
and round. Nothing is asserted; the exit status is 1 when a part lost
messages (not every one acknowledged came back final).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SCRIPT = Path(__file__).resolve()
sys.path.insert(0, str(SCRIPT.parent))
sys.path.insert(0, str(SCRIPT.parents[1] / "tests"))

from cluster import server_cpu  # noqa: E402
from crash.procs import (  # noqa: E402
    HeraldProcess,
    SimProcess,
    cpu_seconds,
    create_account,
    free_port,
    herald_config,
)
from e2e import Customer, Profiler, RawHttp, profile_tables  # noqa: E402
from herald.accounts import Accounts, load_master_key  # noqa: E402
from herald.net import ClientSettings, SmppClient  # noqa: E402
from herald.smpp.pdus import BindTransceiver  # noqa: E402
from herald.smpp.session import SessionConfig  # noqa: E402
from herald.smpp.states import Role  # noqa: E402
from herald.store.postgres import PostgresStore, create_pool, open_served  # noqa: E402
from peers.postgres import PgCluster  # noqa: E402

COUNT, QUICK_COUNT = 20_000, 5_000
HTTP_COUNT, QUICK_HTTP_COUNT = 10_000, 3_000
WARMUP = 1_000
#: Bound on one timed part and on each wait for the nodes, seconds.
PART_TIMEOUT = 600.0
BIND_TIMEOUT = 60.0
#: Store polling period of the HTTP part (its figures' resolution is done_at).
POLL = 0.25
UPSTREAM_WINDOW, UPSTREAM_TPS = 64, 100_000
SENDER = "SHOP"
NUMBER_PREFIX = "4479111"
CORES = os.cpu_count() or 1
SETUPS = ("sqlite", "pg1", "pg3")


#: ``herald db migrate`` of the herald on PYTHONPATH, the URL its argument.
_MIGRATE = ("import asyncio, sys\n"
            "from herald.store.postgres import connection, migrate\n"
            "async def main():\n"
            "    async with connection(sys.argv[1]) as conn:\n"
            "        await migrate(conn)\n"
            "asyncio.run(main())\n")
#: A setup's suffix for herald from ``--base-src`` (before/after a change, one run).
BASE = "@base"


def nodes_of(setup: str) -> int:
    kind = setup.removesuffix(BASE)
    return 1 if kind == "sqlite" else int(kind.removeprefix("pg"))


def setup_name(setup: str) -> str:
    kind = setup.removesuffix(BASE)
    base = " (base)" if setup.endswith(BASE) else ""
    if kind == "sqlite":
        return "SQLite, 1 node" + base
    n = nodes_of(setup)
    return f"PostgreSQL, {n} node" + ("s" if n > 1 else "") + base


@dataclass
class Part:
    """One timed part of one setup."""

    setup: str
    name: str
    count: int  # acknowledged
    seconds: float | None  # first send -> last receipt / final; None: not all came back
    accept_seconds: float
    cpu: dict[str, float]  # herald front, herald delivery, postgres, sim, load generator
    notes: list[str] = field(default_factory=list)
    round: int = 0
    statements: list[str] = field(default_factory=list)  # --statements

    @property
    def rate(self) -> float | None:
        return None if not self.seconds else self.count / self.seconds

    def per_message(self, *keys: str) -> float:
        """CPU ms per message of these processes."""
        return 1000 * sum(self.cpu.get(k, 0.0) for k in keys) / max(self.count, 1)


class ClusterCustomer(Customer):
    """e2e.py's SMPP customer with its binds spread over several nodes."""

    def __init__(self, ports: Sequence[int], system_id: str, password: str, *, binds: int,
                 window: int) -> None:
        super().__init__(ports[0], system_id, password, binds=0, window=window)
        session = SessionConfig(role=Role.ESME, window=window, response_timeout=60.0)
        self.clients = [
            SmppClient(ClientSettings("127.0.0.1", ports[n % len(ports)],
                                      BindTransceiver(system_id=system_id, password=password),
                                      session=session, name=f"customer-{n}"), self)
            for n in range(binds)
        ]


class Setup:
    """One setup's store and nodes, started; ``stop`` ends them."""

    def __init__(self, bench: Bench, setup: str, workdir: Path) -> None:
        self.bench, self.setup, self.workdir = bench, setup, workdir
        self.nodes: list[HeraldProcess] = []
        self.http_ports: list[int] = []
        self.smpp_ports: list[int] = []
        self.url: str | None = None
        self.db: Path | None = None

    async def start(self) -> None:
        a = self.bench.args
        n = nodes_of(self.setup)
        began = time.monotonic()
        first_data = self.workdir / "node0" / "data"
        first_data.mkdir(parents=True)
        if self.setup.removesuffix(BASE) == "sqlite":
            creds = await create_account(first_data, "shop", bind_limit=64)
            self.api_key, self.system_id, self.password = (
                creds.api_key, creds.system_id, creds.password)
            self.db = first_data / "herald.db"
        else:
            cluster = self.bench.cluster
            assert cluster is not None
            self.db_name = f"e2e_{uuid.uuid4().hex[:12]}"  # the cluster may be a test's
            self.url = cluster.create_database(self.db_name)
            # What `herald db migrate` and `herald accounts create|add-smpp --store`
            # do, in this process (three more herald processes took 9 s each here
            # under load), and the master key every node shares.
            store: Any
            if self.setup.endswith(BASE):
                # The schema of the herald that serves it, migrated by that herald:
                # a newer one (this tree's) would be refused by it.
                migrated = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", _MIGRATE, self.url,
                    env={**os.environ, "PYTHONPATH": str(a.base_src)})
                if await migrated.wait():
                    raise RuntimeError(f"{self.setup}: the base tree's migration failed")
                store = PostgresStore(await create_pool(self.url, max_size=2))
            else:
                store = await open_served(self.url, migrate=True, max_connections=2)
            accounts = Accounts(store)
            try:
                now = time.time()
                account, key = await accounts.create("shop", now, rate_limit=1e6,
                                                     bind_limit=64)
                login = await accounts.add_smpp(account.id, "shop", now)
            finally:
                accounts.close()
                await store.aclose()
            self.api_key, self.system_id, self.password = key.key, "shop", login.password
            load_master_key(first_data)
        for i in range(n):
            home = self.workdir / f"node{i}"
            data = home / "data"
            if i:  # every node signs with the same master key (docs/scale-out.md)
                data.mkdir(parents=True)
                shutil.copy(first_data / "master.key", data / "master.key")
            http, smpp = free_port(), free_port()
            node = HeraldProcess(home, herald_config(
                data, http, smpp, self.bench.sim.port, binds=a.upstream_binds,
                window=UPSTREAM_WINDOW, tps=UPSTREAM_TPS, processes=a.processes),
                env={"PYTHONPATH": str(a.base_src)} if self.setup.endswith(BASE) else None)
            if self.url is not None:
                node.command = (*node.command, "--store", self.url)
            self.nodes.append(node)
            self.http_ports.append(http)
            self.smpp_ports.append(smpp)
        stored = time.monotonic()
        try:
            await asyncio.gather(*(node.start() for node in self.nodes))
            started = time.monotonic()
            await self.wait_binds()
        except BaseException:
            await self.stop()
            raise
        print(f"# {setup_name(self.setup)}: store and account {stored - began:.1f} s, nodes "
              f"listening {started - stored:.1f} s, upstream binds shared "
              f"{time.monotonic() - started:.1f} s", flush=True)

    async def wait_binds(self) -> None:
        """Until the nodes hold every upstream bind between them, each its share."""
        want = self.bench.args.upstream_binds
        share = want // len(self.nodes)
        deadline = time.monotonic() + BIND_TIMEOUT
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                bound = []
                for port in self.http_ports:
                    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                        health = (await client.get(f"http://127.0.0.1:{port}/healthz")).json()
                        bound.append(int(health["upstreams"]["sim"]["bound"]))
                if len(bound) == len(self.nodes) and sum(bound) == want and min(bound) >= share:
                    return
                if time.monotonic() > deadline:
                    raise SystemExit(f"{self.setup}: upstream binds per node {bound}, "
                                     f"not {want} shared within {BIND_TIMEOUT:.0f} s")
                await asyncio.sleep(0.25)

    def pids(self) -> tuple[list[int], list[int]]:
        """(front pids, delivery pids) of the running nodes."""
        fronts = [node.pid for node in self.nodes if node.running]
        deliveries = [pid for node in self.nodes if (pid := node.delivery_pid()) is not None]
        return fronts, deliveries

    async def finals(self, since: float) -> tuple[int, float | None]:
        """(messages accepted since ``since`` and final, the latest done_at among them)."""
        query = ("SELECT count(*), max(done_at) FROM messages "
                 "WHERE accepted_at >= {} AND done_at IS NOT NULL")
        if self.db is not None:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
            try:
                count, last = conn.execute(query.format("?"), (since,)).fetchone()
            finally:
                conn.close()
            return int(count), last
        import asyncpg  # only with PostgreSQL setups

        assert self.url is not None
        conn = await asyncpg.connect(self.url)
        try:
            row = await conn.fetchrow(query.format("$1"), since)
        finally:
            await conn.close()
        return int(row[0]), row[1]

    async def _sql(self, query: str) -> list[Any]:
        import asyncpg

        assert self.url is not None
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()

    async def reset_statements(self) -> None:
        """Empty pg_stat_statements (--statements; PostgreSQL setups)."""
        if self.url is not None and self.bench.args.statements:
            await self._sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await self._sql("SELECT pg_stat_statements_reset()")

    async def top_statements(self) -> list[str]:
        """This database's statements by execution time since the reset, as lines."""
        top = self.bench.args.statements
        if self.url is None or not top:
            return []
        rows = await self._sql(
            "SELECT calls, rows, total_exec_time, total_plan_time, toplevel, query"
            " FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            f" ORDER BY total_exec_time DESC LIMIT {int(top)}")
        total = sum(r["total_exec_time"] for r in rows if r["toplevel"]) or 1.0
        # --nested: a trigger's statements are listed too (marked "  >"), and
        # their time is also in their top-level statement's.
        return [f"{r['total_exec_time'] / total:>5.0%} {r['total_exec_time']:>9.0f} ms "
                f"(plan {r['total_plan_time']:>5.0f}) {r['calls']:>7} calls {r['rows']:>8} rows "
                + (" " if r["toplevel"] else ">") + " ".join(r["query"].split())[:110]
                for r in rows]

    async def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                if node.running:
                    await node.stop()
            await node.ensure_dead()
        if self.url is not None and self.bench.cluster is not None:
            with contextlib.suppress(Exception):  # a left database only costs disk
                self.bench.cluster.drop_database(self.db_name)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.sim = SimProcess(workdir, record=None, receipt_delay="0", seed=1,
                              extra=("--window", str(args.sim_window)))
        self.cluster: PgCluster | None = None
        self.serial = 0
        self.profiles: dict[str, list[str]] = {}

    def texts(self, n: int, tag: str) -> list[str]:
        start, self.serial = self.serial, self.serial + n
        return [f"e2e {tag} {i:09d}" for i in range(start, start + n)]

    def cpu(self, setup: Setup) -> dict[str, float]:
        fronts, deliveries = setup.pids()
        out = {"front": sum(cpu_seconds(p) for p in fronts),
               "delivery": sum(cpu_seconds(p) for p in deliveries),
               "sim": cpu_seconds(self.sim.pid), "load generator": cpu_seconds(os.getpid())}
        pg = server_cpu(self.cluster) if setup.url is not None else None
        if pg is not None:
            out["postgres"] = pg
        return out

    async def smpp(self, setup: Setup) -> Part:
        a = self.args
        customer = ClusterCustomer(setup.smpp_ports, setup.system_id, setup.password,
                                   binds=a.binds, window=a.window)
        await customer.start()
        profiler = None
        try:
            warm = self.texts(a.warmup, "warm")
            await customer.submit_all(warm)
            await customer.wait_receipts([customer.acked[t][0] for t in warm
                                          if t in customer.acked], PART_TIMEOUT)
            texts = self.texts(a.count, "smpp")
            if a.profile:
                profiler = Profiler(setup.nodes[0], self.workdir, f"{setup.setup}-smpp")
                await profiler.start()
            await setup.reset_statements()
            before = self.cpu(setup)
            first, last_ack = await customer.submit_all(texts)
            ids = [customer.acked[t][0] for t in texts if t in customer.acked]
            last = await customer.wait_receipts(ids, PART_TIMEOUT)
            after = self.cpu(setup)
            if profiler is not None:
                self.profiles[f"{setup.setup} smpp"] = await profiler.stop()
        finally:
            await customer.stop()
        part = Part(setup.setup, "smpp", len(ids), None if last is None else last - first,
                    last_ack - first, {k: after[k] - before[k] for k in after if k in before},
                    statements=await setup.top_statements())
        if customer.refused or customer.errors:
            part.notes.append(f"refused {dict(customer.refused)}, errors {dict(customer.errors)}")
        if last is None:
            missing = sum(1 for i in ids if i not in customer.receipts)
            part.notes.append(f"{missing} receipts did not arrive within {PART_TIMEOUT:.0f} s")
        return part

    async def http(self, setup: Setup) -> Part:
        a = self.args
        clients = [RawHttp("127.0.0.1", setup.http_ports[k % len(setup.http_ports)],
                           setup.api_key) for k in range(a.http_workers)]
        texts = self.texts(a.http_count, "http")
        ids: list[str] = []
        errors: Counter[str] = Counter()
        profiler = None

        def item(text: str, k: int) -> dict[str, Any]:
            return {"to": f"+{NUMBER_PREFIX}{k % 100_000:05d}", "from": SENDER, "text": text}

        try:
            # warm-up: the connections, each node's caches (the API key ...)
            await asyncio.gather(*(c.post("/v1/messages", item(f"warm {k}", k))
                                   for k, c in enumerate(clients)))
            await asyncio.sleep(0.1)  # so the warm-up's accepted_at precede `first`
            if a.profile:
                profiler = Profiler(setup.nodes[0], self.workdir, f"{setup.setup}-http")
                await profiler.start()
            await setup.reset_statements()
            before = self.cpu(setup)
            first = time.time()
            work = iter(enumerate(texts))

            async def worker(client: RawHttp) -> None:
                for k, text in work:  # the workers share one iterator
                    status, body = await client.post("/v1/messages", item(text, k))
                    if status == 202:
                        ids.append(body["id"])
                    else:
                        errors[str(status)] += 1

            await asyncio.gather(*(worker(c) for c in clients))
            last_ack = time.time()
        finally:
            for c in clients:
                c.close()
        deadline = time.monotonic() + PART_TIMEOUT
        final, last = await setup.finals(first)
        while final < len(ids) and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
            final, last = await setup.finals(first)
        after = self.cpu(setup)
        if profiler is not None:
            self.profiles[f"{setup.setup} http"] = await profiler.stop()
        seconds = last - first if final >= len(ids) and last is not None else None
        part = Part(setup.setup, "http", len(ids), seconds, last_ack - first,
                    {k: after[k] - before[k] for k in after if k in before},
                    statements=await setup.top_statements())
        if errors:
            part.notes.append(f"errors {dict(errors)}")
        if seconds is None:
            part.notes.append(f"{len(ids) - final} not final within {PART_TIMEOUT:.0f} s")
        return part


# -- output -----------------------------------------------------------------------------


def table(parts: list[Part]) -> str:
    head = (f"| {'setup':<26} | {'part':<4} | {'msgs':>6} | {'msg/s':>6} | {'vs sqlite':>9} |"
            f" {'accepted/s':>10} | {'herald ms/msg (front+delivery)':>30} |"
            f" {'postgres ms/msg':>15} | {'CPU bound':>9} | {'sim / load ms/msg':>17} |")
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    sqlite: dict[tuple[int, str], float] = {}
    for p in parts:
        if p.setup == "sqlite" and p.rate:  # the ratio is to this tree's SQLite
            sqlite[(p.round, p.name)] = p.rate
    for p in parts:
        rate = "-" if p.rate is None else f"{p.rate:,.0f}"
        base = sqlite.get((p.round, p.name))
        ratio = "-" if p.rate is None or base is None else f"{p.rate / base:.2f}x"
        herald = p.per_message("front", "delivery")
        split = f"{herald:.3f} ({p.per_message('front'):.3f}+{p.per_message('delivery'):.3f})"
        pg = "-" if "postgres" not in p.cpu else f"{p.per_message('postgres'):.3f}"
        bound = f"{CORES / (herald + p.per_message('postgres')) * 1000:,.0f}"
        others = f"{p.per_message('sim'):.3f} / {p.per_message('load generator'):.3f}"
        lines.append(
            f"| {setup_name(p.setup):<26} | {p.name:<4} | {p.count:>6} | {rate:>6} | {ratio:>9} |"
            f" {p.count / p.accept_seconds:>10,.0f} | {split:>30} | {pg:>15} | {bound:>9} |"
            f" {others:>17} |")
    return "\n".join(lines)


def medians(parts: list[Part]) -> str:
    """Per setup and part over the rounds: median msg/s and its ratio to SQLite's."""
    out = []
    keys = sorted({(p.setup, p.name) for p in parts}, key=lambda k: (SETUPS.index(k[0])
                                                                      if k[0] in SETUPS else 9, k))
    rates = {k: [p.rate for p in parts if (p.setup, p.name) == k and p.rate] for k in keys}
    for setup, name in keys:
        got = rates[(setup, name)]
        if not got:
            continue
        med = statistics.median(got)
        base = rates.get(("sqlite", name))
        ratio = f", {med / statistics.median(base):.2f}x SQLite" if base else ""
        out.append(f"#   {setup_name(setup):<26} {name:<4} median {med:,.0f} msg/s{ratio} "
                   f"(rounds: {', '.join(f'{r:,.0f}' for r in got)})")
    return "\n".join(out)


async def run(args: argparse.Namespace, cluster: PgCluster | None = None) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="herald-e2e-cluster-"))
    bench = Bench(args, workdir)
    parts: list[Part] = []
    own = cluster is None and any(s != "sqlite" for s in args.setups)
    try:
        await bench.sim.start()
        bench.cluster = PgCluster.start(
            {"shared_preload_libraries": "pg_stat_statements",
             "pg_stat_statements.track_planning": "on",
             "pg_stat_statements.track": "all" if args.nested else "top"}
            if args.statements else None,
        ) if own else cluster
        for rnd in range(args.rounds):
            for name in args.setups:
                setup = Setup(bench, name, workdir / f"r{rnd}-{name}")
                await setup.start()
                try:
                    for part in (await bench.smpp(setup), await bench.http(setup)):
                        part.round = rnd
                        parts.append(part)
                        print(f"# round {rnd + 1} {setup_name(name)} {part.name}: "
                              + ("-" if part.rate is None else f"{part.rate:,.0f}")
                              + f" msg/s ({part.count} messages)", flush=True)
                finally:
                    await setup.stop()
    finally:
        with contextlib.suppress(Exception):
            await bench.sim.stop()
        if own and bench.cluster is not None:
            bench.cluster.stop()
    print(table(parts))
    if args.rounds > 1:
        print(medians(parts))
    for p in parts:
        for note in p.notes:
            print(f"# {setup_name(p.setup)} {p.name}: {note}")
    for p in parts:
        if p.statements:
            print(f"\n## PostgreSQL's statements during {setup_name(p.setup)} {p.name} (round "
                  f"{p.round + 1}), by execution time (pg_stat_statements; > nested: in a trigger)")
            print("\n".join(p.statements))
    for name, lines in bench.profiles.items():
        print(f"\n## node 0 during '{name}' (front and delivery process), py-spy 200/s")
        print(profile_tables(lines, args.top))
    if args.json:
        args.json.write_text(json.dumps([
            {"round": p.round, "setup": p.setup, "part": p.name,
             "count": p.count, "rate": p.rate, "cpu": p.cpu, "notes": p.notes}
            for p in parts]))
    if args.keep:
        print(f"# work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(p.rate is None for p in parts) else 0


def main(argv: Sequence[str] | None = None, cluster: PgCluster | None = None) -> int:
    """The command line; ``cluster``: a running PostgreSQL cluster to use (tests)
    instead of a private one started and stopped here."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_COUNT} SMPP and {QUICK_HTTP_COUNT} HTTP messages per setup")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS),
                        help="sqlite and pgN (N herald serve nodes on one PostgreSQL), in "
                             f"this order each round (default: sqlite pg1 pg3); {BASE} after "
                             "one: herald from --base-src")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--count", type=int, help=f"SMPP messages per setup (default {COUNT})")
    parser.add_argument("--http-count", type=int,
                        help=f"HTTP messages per setup (default {HTTP_COUNT})")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="SMPP messages first")
    parser.add_argument("--binds", type=int, default=6,
                        help="customer SMPP binds, spread over the nodes (default 6)")
    parser.add_argument("--window", type=int, default=48, help="per customer bind (default 48)")
    parser.add_argument("--http-workers", type=int, default=48,
                        help="HTTP connections, spread over the nodes (default 48)")
    parser.add_argument("--upstream-binds", type=int, default=3,
                        help="the connector's binds to the sim, shared by the nodes (default 3)")
    parser.add_argument("--sim-window", type=int, default=64,
                        help="deliver_sm (receipts) in flight per bind from the sim (default 64)")
    parser.add_argument("--base-src", type=Path, metavar="DIR",
                        help=f"herald's src dir for the setups named with {BASE} (pg1{BASE}: "
                             "before a change, in the same run; the store's schema and the "
                             "load generator stay this tree's)")
    parser.add_argument("--processes", type=int, choices=(1, 2),
                        help="each node's processes (default: herald's own, auto: the front "
                             "and a delivery process on 2 CPUs or more)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy node 0 (front and delivery) during each part")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="the N statements PostgreSQL spent the most time on in each part "
                             "(pg_stat_statements, preloaded in the private cluster)")
    parser.add_argument("--nested", action="store_true",
                        help="with --statements: the triggers' statements too")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the parts here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    for setup in args.setups:
        kind = setup.removesuffix(BASE)
        if kind != "sqlite" and not (kind.startswith("pg") and kind[2:].isdigit()
                                     and int(kind[2:]) >= 1):
            parser.error(f"setup {setup!r}: sqlite or pgN (N >= 1 nodes), and {BASE} after it "
                         "for herald from --base-src")
        if setup.endswith(BASE) and args.base_src is None:
            parser.error(f"setup {setup}: {BASE} needs --base-src")
        if nodes_of(setup) > args.upstream_binds:
            parser.error(f"setup {setup}: more nodes than --upstream-binds "
                         f"({args.upstream_binds}); a node without a bind sends nothing")
    args.count = args.count or (QUICK_COUNT if args.quick else COUNT)
    args.http_count = args.http_count or (QUICK_HTTP_COUNT if args.quick else HTTP_COUNT)
    logging.basicConfig(level=logging.ERROR)
    print(f"# bench/e2e_cluster.py: setups {' '.join(args.setups)} x {args.rounds} round(s); "
          f"SMPP {args.count} messages ({args.binds} binds x window {args.window}), HTTP "
          f"{args.http_count} single ({args.http_workers} connections); upstream "
          f"{args.upstream_binds} binds x window {UPSTREAM_WINDOW}", flush=True)
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {CORES} CPUs", flush=True)
    status = asyncio.run(run(args, cluster))
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return status


if __name__ == "__main__":
    sys.exit(main())
