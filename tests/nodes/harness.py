"""Several ``herald serve`` nodes on one PostgreSQL under HTTP and SMPP load, checked.

The cluster tests (``tests/nodes``) and ``bench/cluster_faults.py`` run these:
real ``herald serve`` processes (``processes = 1``: the node is one process, so
a SIGKILL kills all of it) on one database, one connector to the simulator
(in this process, so it can count the sessions bound at every moment and keep
every submit with its arrival time), and customers of the crash test's kind
(``tests/crash/load.py``: every message a unique text, a ledger of what each
customer was told) sending to every node over HTTP and SMPP.

Load. Each node's own customers send ``http_rate + smpp_rate`` messages a
second; on top, a **top-up** posts HTTP batches to the first node whenever
fewer than ``backlog`` seconds of the connector's ``tps`` wait in the queue,
so the connector is always the bottleneck (what a rate measurement needs)
however many nodes run, without a backlog that takes minutes to drain.

Measurements, on the simulator's clock of arrival:

- the most sessions bound to the simulator at once, over the whole run;
- the submit rate in each window a scenario marks (``Cluster.mark``);
- per SIGKILL: the slots the node held, and how long after the kill each was
  held by another node (``connector_slots.acquired_at``, the server's clock on
  this same machine); the messages it had claimed, and how long after the kill
  none was its own any more (the leader requeues a dead node's claims once its
  registration ends: its slots and claims carry the same node id);
- at the end, once every stored message is final: acknowledged messages not
  stored, stored ones not final, and duplicates upstream (a text submitted
  twice) per kill or restart, by ``tests/crash/verify.py``'s attribution; of
  the others, those whose first copy came on a session that was cut (closed
  without a completed unbind: a slot lost at its deadline, its unbind not
  answered within half the margin, so the parts in flight on it were sent
  again), per session, at most a window each; any other is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx

from crash.load import HttpLoad, Ledger, SmppLoad, content_hash
from crash.procs import HeraldProcess, free_port
from crash.verify import KILL_SLACK, duplicates
from herald.accounts import Accounts
from herald.sim import SimConfig, Simulator
from herald.store import Status
from herald.store.postgres import open_served

__all__ = ["Cluster", "ClusterPlan", "Kill", "Report", "Window", "database_restarts",
           "nodes_come_and_go"]

#: Polling period of every wait here (seconds).
POLL: Final = 0.05
#: Messages per top-up request (one HTTP batch).
TOP_UP_BATCH: Final = 100
#: Seconds the load gets to wind down once stopped.
LOAD_STOP_TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class ClusterPlan:
    """What a cluster run does; rates are messages per second, times seconds."""

    tps: float = 100.0  # the connector's limit, for the whole cluster
    binds: int = 3
    window: int = 10
    # [cluster] timings (docs/leases.md): short, so a dead node's slots and
    # claims come back within seconds
    lease: float = 2.0
    margin: float = 0.5
    renew_every: float = 0.5
    claim_lease: float = 6.0
    http_rate: float = 20.0  # each node's HTTP customers
    smpp_rate: float = 20.0  # each node's SMPP customer
    backlog: float = 2.0  # seconds of tps the top-up keeps queued
    receipt_delay: tuple[float, float] = (0.05, 0.3)
    drain_timeout: float = 90.0
    seed: int = 0

    @property
    def slot_rate(self) -> float:
        return self.tps / self.binds


@dataclass
class Window:
    """A stretch of the run whose submit rate is measured."""

    label: str
    start: float
    end: float
    submits: int = 0

    @property
    def rate(self) -> float:
        return self.submits / (self.end - self.start)


@dataclass
class Kill:
    """A fault: a node's SIGKILL, or (``node`` None) a PostgreSQL restart."""

    node: str | None
    at: float  # time.time() of the SIGKILL, or of the server's start after the stop
    slots: list[int]  # the node's at that moment (a restart: every slot)
    reowned_after: list[float] = field(default_factory=list)  # per slot, seconds after `at`
    duplicates: int = 0  # extra submits upstream put on this fault
    claims: int = 0  # messages the node had claimed at that moment (dispatch_queue)
    requeued_after: float | None = None  # seconds after `at` until none was its own

    @property
    def what(self) -> str:
        return "PostgreSQL restart" if self.node is None else f"kill -9 of {self.node}"


@dataclass
class Report:
    plan: ClusterPlan
    most_bound: int
    windows: list[Window]
    kills: list[Kill]
    acked: int
    outcomes: Counter[tuple[str, str]]
    stored: int
    lost: list[str]
    not_final: list[str]
    finals: Counter[str]
    submits: int
    duplicates: int
    #: duplicates no kill (nor restart) explains, nor a session cut at a slot's
    #: deadline (``cuts``)
    duplicates_without_kill: int
    #: per session cut (closed without a completed unbind) with no kill, the
    #: duplicates whose first copy came on it: at most a window each
    cuts: dict[int, int] = field(default_factory=dict)
    #: submits per second of the simulator's clock, from the first window's start
    series: list[int] = field(default_factory=list)
    #: (second of the series, what happened): node starts, joins, kills
    events: list[tuple[float, str]] = field(default_factory=list)
    #: (second of the series) of each duplicated text's copies
    duplicate_times: list[list[float]] = field(default_factory=list)
    #: the simulator's bound sessions around the first moment over the binds:
    #: (second of the series, what, connection id, peer port, bound after)
    breach: list[tuple[float, str, int, int, int]] = field(default_factory=list)

    def window(self, label: str) -> Window:
        return next(w for w in self.windows if w.label == label)

    def problems(self) -> list[str]:
        """What breaks the cluster's promises (rates are checked by the tests)."""
        found = []
        if self.most_bound > self.plan.binds:
            found.append(f"{self.most_bound} sessions bound at once, configured {self.plan.binds}")
        if self.lost:
            found.append(f"{len(self.lost)} acknowledged messages lost: {self.lost[:10]}")
        if self.not_final:
            found.append(f"{len(self.not_final)} messages not final: {self.not_final[:10]}")
        if self.duplicates_without_kill:
            found.append(f"{self.duplicates_without_kill} duplicates upstream with no kill"
                         " and no session cut")
        for session, count in self.cuts.items():
            if count > self.plan.window:
                found.append(f"session {session} cut: {count} duplicates upstream, over"
                             f" its window {self.plan.window}")
        for kill in self.kills:
            # A kill: what the node had in flight or unrecorded; a restart: what
            # every node had when its writes began to fail (dispatch submits
            # nothing more until the store takes a write again).
            bound = len(kill.slots) * self.plan.window
            if kill.duplicates > bound:
                found.append(f"{kill.what}: {kill.duplicates} duplicates upstream, "
                             f"over window x its binds = {bound}")
        return found

    def table(self) -> str:
        """The figures, as markdown rows."""
        rows = [f"| window | seconds | submits | rate/s | of tps {self.plan.tps:g} |",
                "|---|---|---|---|---|"]
        rows += [f"| {w.label} | {w.end - w.start:.1f} | {w.submits} | {w.rate:.1f} | "
                 f"{w.rate / self.plan.tps:.3f} |" for w in self.windows]
        rows.append("")
        rows.append(f"most sessions bound at once: {self.most_bound} (binds {self.plan.binds})")
        for k in self.kills:
            if k.node is None:
                rows.append(f"{k.what}: duplicates upstream {k.duplicates} (window x binds "
                            f"{len(k.slots) * self.plan.window})")
                continue
            reown = ", ".join(f"{s:.2f}" for s in k.reowned_after)
            requeued = "-" if k.requeued_after is None else f"{k.requeued_after:.2f}"
            rows.append(f"{k.what}: slots {k.slots}, re-owned after {reown} s "
                        f"(lease {self.plan.lease:g} s); its {k.claims} claims requeued after "
                        f"{requeued} s (claim lease {self.plan.claim_lease:g} s); duplicates "
                        f"upstream {k.duplicates} (bound {len(k.slots) * self.plan.window})")
        rows.append(f"acknowledged {self.acked}, stored {self.stored}, lost {len(self.lost)}, "
                    f"not final {len(self.not_final)}, finals {dict(self.finals)}")
        if self.series:
            rows.append("submits per second: " + " ".join(map(str, self.series)))
            rows.append("events: " + "; ".join(f"{t:.1f} s {what}" for t, what in self.events))
        if self.breach:
            rows.append("bound sessions around the breach: " + "; ".join(
                f"{t:.2f} s #{conn} (:{port}) {what} -> {n}"
                for t, what, conn, port, n in self.breach))
        if self.duplicate_times:
            rows.append("duplicated texts, seconds of their copies: " + " ".join(
                "/".join(f"{t:.1f}" for t in times) for times in self.duplicate_times[:40]))
        rows.append(f"submits upstream {self.submits}, duplicates {self.duplicates} "
                    f"({self.duplicates_without_kill} without a kill or a cut; per session"
                    f" cut with no kill: {self.cuts}); "
                    f"customers: {dict(self.outcomes)}")
        return "\n".join(rows)


class CountingSim(Simulator):
    """The simulator, counting the sessions bound at every moment (all nodes')."""

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.bound: set[Any] = set()
        self.most = 0
        #: (time.time(), "bound" | "closed" and why, connection id, its peer's
        #: port, sessions bound after it): what a report shows of a breach
        self.changes: list[tuple[float, str, int, int, int]] = []
        self.breach: int | None = None  # index in changes of the first count over `limit`
        self.limit = 0
        #: per record (same index): the connection it came on; and how each
        #: connection ended (CloseReason's value: "unbound" is a clean unbind)
        self.sessions: list[int] = []
        self.ends: dict[int, str] = {}

    def on_bound(self, conn: Any) -> None:
        self.bound.add(conn)
        self.most = max(self.most, len(self.bound))
        self._note(conn, "bound")
        if self.limit and len(self.bound) > self.limit and self.breach is None:
            self.breach = len(self.changes) - 1
        super().on_bound(conn)

    def on_request(self, conn: Any, request: Any) -> None:
        kept = len(self.records)
        super().on_request(conn, request)
        self.sessions.extend([conn.conn_id] * (len(self.records) - kept))

    def on_closed(self, conn: Any, reason: Any) -> None:
        self.ends[conn.conn_id] = str(getattr(reason, "value", reason))
        if conn in self.bound:
            self.bound.discard(conn)
            self._note(conn, f"closed ({getattr(reason, 'value', reason)})")
        super().on_closed(conn, reason)

    def _note(self, conn: Any, what: str) -> None:
        peer = conn.peer[1] if conn.peer else 0
        self.changes.append((time.time(), what, conn.conn_id, peer, len(self.bound)))

    def around_breach(self, count: int = 12) -> list[tuple[float, str, int, int, int]]:
        """The changes before and after the first moment over the limit."""
        if self.breach is None:
            return []
        return self.changes[max(0, self.breach - count):self.breach + count]


def node_config(home: Path, dsn: str, plan: ClusterPlan, sim_port: int,
                http_port: int, smpp_port: int) -> str:
    """A node's herald.toml: its own data dir and loopback ports, the shared
    database, the [cluster] timings, one transceiver connector to the simulator."""
    return f"""\
data_dir = "{home / 'data'}"
processes = 1

[store]
url = "{dsn}"

[cluster]
lease = {plan.lease}
margin = {plan.margin}
renew_every = {plan.renew_every}
claim_lease = {plan.claim_lease}

[http]
listen = "127.0.0.1:{http_port}"
default_account_rate = 100000

[smpp]
listen = "127.0.0.1:{smpp_port}"

[[connectors]]
name = "sim"
host = "127.0.0.1"
port = {sim_port}
system_id = "herald"
password = "simpass"
binds = {plan.binds}
window = {plan.window}
tps = {plan.tps}
reconnect_min = 0.1
reconnect_max = 1

[[routes]]
prefix = ""
connectors = ["sim"]
"""


class Node:
    """One ``herald serve`` and its own customers (an HTTP client and an SMPP bind)."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.name = name
        self.cluster = cluster
        home = cluster.workdir / name
        home.mkdir()
        self.http_port, self.smpp_port = free_port(), free_port()
        plan = cluster.plan
        self.proc = HeraldProcess(home, node_config(
            home, cluster.dsn, plan, cluster.sim.port, self.http_port, self.smpp_port))
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.http = HttpLoad(self.url, cluster.api_key, cluster.ledger, workers=2,
                             rate=plan.http_rate)
        self.smpp = SmppLoad(self.smpp_port, "shop", cluster.smpp_password, cluster.ledger,
                             binds=1, window=4, rate=plan.smpp_rate)
        self.stop = asyncio.Event()
        self.load: asyncio.Future[Any] | None = None

    async def start(self) -> None:
        await self.proc.start()
        await self.smpp.start()
        self.load = asyncio.gather(self.http.run(self.stop), self.smpp.run(self.stop))

    async def stop_load(self) -> None:
        self.stop.set()
        if self.load is not None:
            try:
                await asyncio.wait_for(self.load, LOAD_STOP_TIMEOUT)
            finally:
                await self.smpp.close()
            self.load = None


class Cluster:
    """``async with Cluster(workdir, dsn, plan) as cluster``: the simulator and the
    database ready (migrated, account "shop"); then ``add_node``, ``mark``,
    ``kill``, and ``finish`` for the report. Every node is stopped on exit."""

    def __init__(self, workdir: Path, dsn: str, plan: ClusterPlan,
                 log: Callable[[str], None] = lambda _: None) -> None:
        self.workdir, self.dsn, self.plan, self.log = workdir, dsn, plan, log
        self.sim = CountingSim(SimConfig(port=0, receipt_delay=plan.receipt_delay,
                                         seed=plan.seed, keep_records=True))
        self.sim.limit = plan.binds
        self.ledger = Ledger(tag="cluster")
        self.nodes: list[Node] = []
        self.windows: list[Window] = []
        self.kills: list[Kill] = []
        self.api_key = self.smpp_password = ""
        self._db: asyncpg.Pool | None = None
        self._top_up: asyncio.Task[None] | None = None
        self._stop_top_up = asyncio.Event()
        self.events: list[tuple[float, str]] = []

    def note(self, what: str) -> None:
        self.events.append((time.time(), what))
        self.log(what)

    async def __aenter__(self) -> Cluster:
        await self.sim.start()
        store = await open_served(self.dsn, migrate=True, max_connections=2)
        accounts = Accounts(store)
        try:  # what `herald accounts create` and `add-smpp` do
            account, key = await accounts.create("shop", time.time(), rate_limit=1e6,
                                                 bind_limit=16)
            self.api_key = key.key
            self.smpp_password = (await accounts.add_smpp(account.id, "shop",
                                                          time.time())).password
        finally:
            accounts.close()
            await store.aclose()
        self._db = await asyncpg.create_pool(self.dsn, min_size=1, max_size=2)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop_top_up.set()
        if self._top_up is not None:
            self._top_up.cancel()
            with contextlib.suppress(BaseException):
                await self._top_up
        for node in self.nodes:
            node.stop.set()
            if node.load is not None:
                node.load.cancel()
                with contextlib.suppress(BaseException):
                    await node.load
            await node.smpp.close()
            await node.proc.ensure_dead()
        if self._db is not None:
            await self._db.close()
        await self.sim.stop()

    # -- the database, read as an operator would ------------------------------------

    async def query(self, sql: str, *args: Any) -> list[Any]:
        """``sql`` on the shared database; ``[]`` while it is away (a restart)."""
        assert self._db is not None
        try:
            return list(await self._db.fetch(sql, *args))
        except Exception:  # asyncpg's errors while the server restarts are of many kinds
            return []

    async def backlog(self) -> int | None:
        rows = await self.query("SELECT count(*) FROM dispatch_queue")
        return int(rows[0][0]) if rows else None

    # -- nodes and load ---------------------------------------------------------------

    async def add_node(self) -> Node:
        """Start one more node (it joins the slots' fair share) and its customers."""
        node = Node(self, f"node{len(self.nodes)}")
        self.nodes.append(node)
        self.note(f"{node.name} starting")
        await node.start()
        if self._top_up is None:
            self._top_up = asyncio.create_task(self._keep_backlog(node))
        self.note(f"{node.name} up (pid {node.proc.pid})")
        return node

    async def _keep_backlog(self, node: Node) -> None:
        """HTTP batches to ``node`` while fewer than ``backlog`` seconds of tps wait."""
        target = self.plan.backlog * self.plan.tps
        async with httpx.AsyncClient(base_url=node.url, timeout=30,
                                     headers={"Authorization": f"Bearer {self.api_key}"}) as c:
            while not self._stop_top_up.is_set():
                queued = await self.backlog()
                if queued is not None and queued < target and node.proc.running:
                    await self._batch(c)
                else:
                    await asyncio.sleep(0.2)

    async def _batch(self, client: httpx.AsyncClient) -> None:
        attempts = [self.ledger.new("http") for _ in range(TOP_UP_BATCH)]
        items = [{"to": "+" + self.ledger.number(), "from": "SHOP", "text": a.text}
                 for a in attempts]
        try:
            answer = await client.post("/v1/messages/batch", json={"messages": items})
        except httpx.HTTPError as exc:
            outcome = "unsent" if isinstance(exc, httpx.ConnectError) else "unknown"
            for a in attempts:
                a.outcome, a.detail = outcome, type(exc).__name__
            await asyncio.sleep(0.2)
            return
        if answer.status_code != 202:
            for a in attempts:
                a.outcome, a.detail = "refused", str(answer.status_code)
            await asyncio.sleep(0.2)
            return
        for result in answer.json()["results"]:
            a = attempts[result["index"]]
            if result["status"] == "accepted":
                self.ledger.ack(a, result["id"])
            else:
                a.outcome, a.detail = "refused", "batch item"

    async def bound(self, node: Node, binds: int, timeout: float = 30.0) -> None:
        """Wait until ``node`` has ``binds`` sessions bound upstream (its /healthz)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                    health = (await client.get(f"{node.url}/healthz")).json()
                    if health["upstreams"]["sim"]["bound"] == binds:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{node.name} not bound {binds} times in {timeout} s")
                await asyncio.sleep(POLL * 4)

    async def filled(self, timeout: float = 30.0) -> None:
        """Wait until the top-up has queued its backlog (the limit is the bottleneck)."""
        deadline = time.monotonic() + timeout
        target = self.plan.backlog * self.plan.tps
        while (queued := await self.backlog()) is None or queued < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"backlog {queued} after {timeout} s")
            await asyncio.sleep(POLL * 4)

    async def shared(self, nodes: list[Node], timeout: float = 30.0) -> None:
        """Wait until ``nodes`` hold every slot between them, each its fair share
        (floor or ceil of binds / nodes), as their /healthz report their binds."""
        floor, ceil = self.plan.binds // len(nodes), -(-self.plan.binds // len(nodes))
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                counts = []
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                    for node in nodes:
                        health = (await client.get(f"{node.url}/healthz")).json()
                        counts.append(health["upstreams"]["sim"]["bound"])
                if (len(counts) == len(nodes) and sum(counts) == self.plan.binds
                        and all(floor <= n <= ceil for n in counts)):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"binds {counts} of {len(nodes)} nodes not shared "
                                         f"fairly in {timeout} s")
                await asyncio.sleep(POLL * 4)

    def since(self, label: str, start: float) -> Window:
        """The window ``label`` from ``start`` (``time.time()``) to now."""
        window = Window(label, start, time.time())
        self.windows.append(window)
        return window

    async def mark(self, label: str, seconds: float) -> Window:
        """Let the load run ``seconds`` and measure it as the window ``label``."""
        window = Window(label, time.time(), 0.0)
        await asyncio.sleep(seconds)
        window.end = time.time()
        self.windows.append(window)
        return window

    async def kill(self, node: Node) -> Kill:
        """SIGKILL ``node`` (its customers stop) and wait until its slots are
        held by others; record when each was taken."""
        pid = node.proc.pid
        owner = f"%-{pid}-______"
        held = [r[0] for r in await self.query(
            "SELECT slot FROM connector_slots WHERE owner LIKE $1 ORDER BY slot", owner)]
        claims = "SELECT count(*) FROM dispatch_queue WHERE owner LIKE $1"
        await node.proc.kill()
        kill = Kill(node.name, time.time(), held)
        kill.claims = (await self.query(claims, owner))[0][0]
        self.kills.append(kill)
        self.note(f"{node.name} killed")
        node.stop.set()
        await node.stop_load()
        deadline = time.monotonic() + 10 * self.plan.lease + 30
        while True:
            rows = await self.query(
                "SELECT acquired_at FROM connector_slots WHERE slot = ANY($1::int[])"
                " AND owner IS NOT NULL AND owner NOT LIKE $2", held, owner)
            if len(rows) == len(held) and not kill.reowned_after:
                kill.reowned_after = [float(r[0]) - kill.at for r in rows]
            if kill.requeued_after is None and not (await self.query(claims, owner))[0][0]:
                kill.requeued_after = time.time() - kill.at
            if kill.reowned_after and kill.requeued_after is not None:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the slots {held} or claims of {node.name} not re-owned")
            await asyncio.sleep(POLL)
        self.note(f"{node.name}'s slots {held} re-owned")
        return kill

    async def _node_states(self) -> str:
        """Each live node's binds and connector gauges (/healthz, /metrics), for a report."""
        said = []
        async with httpx.AsyncClient(timeout=5) as client:
            for node in self.nodes:
                if not node.proc.running:
                    continue
                try:
                    health = (await client.get(f"{node.url}/healthz")).json()
                    metrics = (await client.get(f"{node.url}/metrics")).text
                except httpx.HTTPError as exc:
                    said.append(f"{node.name}: {exc!r}")
                    continue
                gauges = [line for line in metrics.splitlines() if not line.startswith("#")
                          and ("connector" in line or "unsent" in line or "binds" in line)]
                said.append(f"{node.name}: {health.get('upstreams')} {' '.join(gauges)}")
        return "; ".join(said)

    # -- the end ---------------------------------------------------------------------

    async def finish(self) -> Report:
        """Stop the load, wait until every stored message is final, stop the
        nodes, and check what the store, the simulator and the customers say."""
        self._stop_top_up.set()
        if self._top_up is not None:
            await asyncio.wait_for(self._top_up, LOAD_STOP_TIMEOUT)
        for node in self.nodes:
            await node.stop_load()
        deadline = time.monotonic() + self.plan.drain_timeout
        while True:
            rows = await self.query("SELECT count(*) FROM messages WHERE status < $1",
                                    int(Status.DELIVERED))
            if rows and rows[0][0] == 0:
                break
            if time.monotonic() > deadline:  # the report names what is not final
                self.note("not drained; the nodes say: " + await self._node_states())
                break
            await asyncio.sleep(POLL * 10)
        for node in self.nodes:
            if node.proc.running:
                await node.proc.stop()
        statuses = {r[0]: Status(r[1]) for r in await self.query(
            "SELECT id, status FROM messages")}
        for window in self.windows:
            window.submits = sum(1 for r in self.sim.records
                                 if window.start <= r.time < window.end)
        acked = list(self.ledger.acked())
        hashes = {content_hash(a.text): a.text for a in self.ledger.attempts.values()}
        dups = duplicates(self.sim.records, hashes, [k.at for k in self.kills])
        cuts, unexplained = self._cut_duplicates(hashes)
        start = self.windows[0].start if self.windows else 0.0
        for kill, count in zip(self.kills, dups.per_kill, strict=True):
            kill.duplicates = count
        return Report(
            plan=self.plan, most_bound=self.sim.most, windows=self.windows, kills=self.kills,
            acked=len(acked), outcomes=self.ledger.outcomes(), stored=len(statuses),
            lost=[a.id for a in acked if a.id is not None and a.id not in statuses],
            not_final=[i for i, s in statuses.items() if not s.final],
            finals=Counter(s.label for s in statuses.values() if s.final),
            submits=sum(1 for r in self.sim.records if r.content in hashes),
            duplicates=dups.total, duplicates_without_kill=unexplained, cuts=cuts,
            duplicate_times=self._duplicate_times(hashes),
            series=self._series(), events=[
                (at - self.windows[0].start, what) for at, what in self.events
            ] if self.windows else [],
            breach=[(at - start, *rest) for at, *rest in self.sim.around_breach()],
        )

    def _cut_duplicates(self, hashes: dict[str, str]) -> tuple[dict[int, int], int]:
        """The duplicates no kill explains (``duplicates``' rule), split: per
        session cut (closed without a completed unbind: a slot lost at its
        deadline whose unbind was not answered in time, docs/leases.md), those
        whose first copy came on it (parts in flight whose answer the node
        never read: sent again, at most a window per cut); and the rest."""
        kills = [k.at for k in self.kills]
        copies: dict[str, list[tuple[float, int]]] = {}
        records, sessions = self.sim.records, self.sim.sessions
        for r, session in zip(records, sessions, strict=False):
            if r.content in hashes:
                copies.setdefault(r.content, []).append((r.time, session))
        cuts: Counter[int] = Counter()
        rest = 0
        for seen in copies.values():
            seen.sort()
            for (before, session), (after, _) in itertools.pairwise(seen):
                if any(before - KILL_SLACK <= t <= after for t in kills):
                    continue
                if self.sim.ends.get(session, "open") not in ("unbound", "open"):
                    cuts[session] += 1
                else:
                    rest += 1
        return dict(cuts), rest

    def _duplicate_times(self, hashes: dict[str, str]) -> list[list[float]]:
        start = self.windows[0].start if self.windows else 0.0
        seen: dict[str, list[float]] = {}
        for r in self.sim.records:
            if r.content in hashes:
                seen.setdefault(r.content, []).append(round(r.time - start, 2))
        return [times for times in seen.values() if len(times) > 1]

    def _series(self) -> list[int]:
        if not self.windows:
            return []
        start = self.windows[0].start
        counts: Counter[int] = Counter(int(r.time - start) for r in self.sim.records
                                       if r.time >= start)
        return [counts[s] for s in range(max(counts, default=-1) + 1)]


# -- the scenarios ---------------------------------------------------------------------


async def nodes_come_and_go(workdir: Path, dsn: str, plan: ClusterPlan, phase: float,
                            log: Callable[[str], None] = lambda _: None) -> Report:
    """1, 2, then 3 nodes (each window from the moment the next node is started,
    so its join is inside), then ``kill -9`` of the third and a fourth joining
    (one window from the kill to ``phase`` after the fourth has its share)."""
    async with Cluster(workdir, dsn, plan, log) as cluster:
        first = await cluster.add_node()
        await cluster.bound(first, plan.binds)
        await cluster.filled()
        await cluster.mark("1 node", phase)
        live = [first]
        for n in (2, 3):
            start = time.time()
            live.append(await cluster.add_node())
            await cluster.shared(live)
            cluster.note(f"binds shared by {n} nodes")
            await asyncio.sleep(phase)
            cluster.since(f"{n} nodes (from the join)", start)
        kill = await cluster.kill(live.pop())
        live.append(await cluster.add_node())
        await cluster.shared(live)
        cluster.note("binds shared again")
        await asyncio.sleep(phase)
        cluster.since("kill -9 of one, another joins", kill.at)
        return await cluster.finish()


async def database_restarts(workdir: Path, plan: ClusterPlan, phase: float, down: float,
                            log: Callable[[str], None] = lambda _: None) -> Report:
    """Three nodes on a PostgreSQL server of their own, under load: the server
    is stopped (fast shutdown: every connection ends), ``down`` seconds later
    started again on the same port, and the load goes on for ``phase``."""
    from peers.postgres import PgCluster

    server = await asyncio.to_thread(PgCluster.start)
    try:
        dsn = await asyncio.to_thread(server.create_database, "herald")
        async with Cluster(workdir, dsn, plan, log) as cluster:
            nodes = list(await asyncio.gather(*(cluster.add_node() for _ in range(3))))
            await cluster.shared(nodes)
            await cluster.filled()
            await cluster.mark("3 nodes", phase)
            began = time.time()
            cluster.note("PostgreSQL stopping")
            await asyncio.to_thread(server.shut_down)
            cluster.note("PostgreSQL stopped")
            await asyncio.sleep(down)
            await asyncio.to_thread(server.start_again)
            cluster.note("PostgreSQL started again")
            # Its duplicates: texts sent before it was back and again after
            # (what the nodes sent while their records could not be written).
            cluster.kills.append(Kill(None, time.time(), list(range(plan.binds))))
            await cluster.shared(nodes, timeout=60)
            cluster.since("the restart, until the binds are shared again", began)
            await cluster.mark("3 nodes after the restart", phase)
            return await cluster.finish()
    finally:
        await asyncio.to_thread(server.stop)
