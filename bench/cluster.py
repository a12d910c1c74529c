"""The PostgreSQL store loop with 1 and 3 herald nodes (issue 10's benchmark table).

    .venv/bin/python bench/cluster.py                # 20 s per scenario: 1 node, 3 nodes
    .venv/bin/python bench/cluster.py --quick        # 4 s per scenario
    .venv/bin/python bench/cluster.py --nodes 1 2 3 --seconds 60 --workers 4
    .venv/bin/python bench/cluster.py --dsn postgresql://...   # an existing database
    .venv/bin/python bench/cluster.py --nodes 3 --seconds 300 --preload 5000000
    .venv/bin/python bench/cluster.py --port-claim --nodes 1    # the Store port's claim

What runs: a private PostgreSQL cluster (tests/peers/postgres.py: fsync and
``synchronous_commit`` on; or ``--dsn``), a fresh database per scenario with
the store's schema (``herald.store.postgres``). Each node is its own process
(this script with ``--node``) with an asyncpg pool and ``--workers`` loops,
each doing the store loop through
:class:`~herald.store.postgres.DispatchQueue` until the deadline: accept a
batch of 100 (one statement) for its connector (worker ``i`` uses ``c{i mod
4}`` (``--connectors``), so nodes share connectors and their claims contend
through ``SKIP LOCKED``), then twice claim 50 and complete them as ``sent``.
Every statement is one commit.

``--port-claim`` runs the same loop through the ``Store`` port instead
(:class:`~herald.store.postgres.PostgresStore`, what ``herald serve`` calls):
``accept`` 100 (queued unrouted), the port's ``claim`` 50 (classes, accounts
taking turns: worker ``i``'s messages are account ``1 + i mod N``'s, N =
``--connectors``) and ``update_statuses`` to ``sent``. Its transactions take
more round trips than DispatchQueue's single statements (the claim: the
waiting accounts, their candidates, the lease; BEGIN and COMMIT).

Reported per scenario: completed msg/s over the window (nodes start together),
the claim cycle (claim + complete of one batch) p50/p99/max, CPU µs per
message of the node processes and of the PostgreSQL server (the postmaster and
every backend, reaped ones included; only with a private cluster), "CPU bound"
= cores / (node + server CPU per message), the rate this run would reach with
every core to itself (on a shared machine the measured rate is lower; this one
is steadier), and the exactly-once check: after the nodes stop, whatever is
left queued is claimed and completed by a drainer, and then every accepted
message must be stored, ``sent``, out of the queue, and completed exactly once
(the completions each node's ``complete`` returned, plus the drainer's, hold
no seq twice). The exit status is 1 when that check fails. ``--statements N``
adds the N statements the server spent the most time on (pg_stat_statements:
µs and shared buffers per row), ``--waits`` what the active backends waited on
(pg_stat_activity sampled every 50 ms), per scenario; ``--server-set
NAME=VALUE`` sets the private cluster's (``postgres -c``). Below, the anchor
figures issue 10 measured on this machine (2 cores, PostgreSQL on the same
cores) and its goals. Figures move with the machine's load: compare rows of
one run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from herald.ids import SortableIdGenerator  # noqa: E402
from herald.store import NewMessage, Source, Status, StatusUpdate  # noqa: E402
from herald.store.postgres import (  # noqa: E402
    MAX_CLAIM,
    Completion,
    DispatchQueue,
    PostgresStore,
    connection,
    create_pool,
    migrate,
)
from peers.postgres import PgCluster  # noqa: E402
from store.postgres.history import fill_finished  # noqa: E402

ACCEPT_BATCH = 100
CLAIM_BATCH = 50
CONNECTORS = 4
LEASE = 60.0
CORES = os.cpu_count() or 1
START_DELAY = 2.0  # seconds from spawning the nodes to the common start (imports, pools)

#: The server settings docs/scale-out.md recommends for herald's write load
#: ("Preparing a database"), which the private cluster runs unless ``--stock``
#: (PostgreSQL's defaults, shared_buffers 128MB): checkpoints by time rather
#: than every ~0.5 GB of WAL (a quiet 3-node loop writes ~2 GB a minute), the
#: full-page images after each one compressed, and shared buffers that hold
#: the pages the loop dirties, so backends do not write them out themselves.
RECOMMENDED_SETTINGS = {
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "wal_compression": "lz4",
    "shared_buffers": "1GB",
}

#: Issue 10's figures on this machine, for comparison (msg/s unless stated).
ANCHORS = (
    ("store loop, 1 node, 20 s", "15.0-16.8k msg/s", ">= 12k msg/s"),
    ("store loop, 3 nodes, 20 s", "12.1-17.9k msg/s", ">= 12k and >= 0.8x 1 node"),
    ("3 nodes, 5 min, 5M rows", "11.1k (last min 90%)", ">= 10k, last min >= 90% of first"),
    ("claim cycle p99", "12 ms (8 s) - 79 ms (5 min)", "<= 100 ms (5 min), <= 20 ms at 500 msg/s"),
)


# -- one node (a process) ------------------------------------------------------------


@dataclass
class NodeResult:
    name: str
    accepted: int = 0
    #: seqs complete() returned (--port-claim: the ids claimed and marked sent)
    completed: list[Any] = field(default_factory=list)
    cycles: list[float] = field(default_factory=list)  # claim+complete seconds
    #: when each cycle ended, seconds from the common start (for the per-interval rows)
    ended: list[float] = field(default_factory=list)
    #: messages each cycle completed
    sizes: list[int] = field(default_factory=list)
    window: float = 0.0  # seconds from the common start to this node's last cycle
    cpu: float = 0.0  # this process's CPU seconds over the window


def _batch(ids: SortableIdGenerator, now: float, account_id: int = 1) -> list[NewMessage]:
    """One accept's messages."""
    return [
        NewMessage(
            id=ids.new_id(now), account_id=account_id, source=Source.HTTP,
            to=f"+4477009{n:05d}", sender="ACME", body=b"Your code is 123456",
            encoding="gsm7", data_coding=0, segments=1, accepted_at=now, expires_at=now + 3600,
        )
        for n in range(ACCEPT_BATCH)
    ]


def _cpu_since(usage0: resource.struct_rusage) -> float:
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    return (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)


async def run_node(
    dsn: str, name: str, workers: int, start_at: float, seconds: float, cycles: int | None,
    batch_window: float = 0.0, connectors: int = CONNECTORS,
) -> NodeResult:
    result = NodeResult(name)
    pool = await create_pool(dsn, min_size=workers, max_size=workers)
    queue = DispatchQueue(pool, name, batch_window=batch_window)
    ids = SortableIdGenerator()
    deadline = start_at + seconds
    await asyncio.sleep(max(0.0, start_at - time.time()))
    usage0 = resource.getrusage(resource.RUSAGE_SELF)

    async def worker(index: int) -> None:
        connector = f"c{index % connectors}"
        done = 0
        while time.time() < deadline and (cycles is None or done < cycles):
            done += 1
            now = time.time()
            await queue.accept(_batch(ids, now), [connector] * ACCEPT_BATCH)
            result.accepted += ACCEPT_BATCH
            for _ in range(ACCEPT_BATCH // CLAIM_BATCH):
                t0 = time.perf_counter()
                claims = await queue.claim(connector, CLAIM_BATCH, now, LEASE)
                ended = await queue.complete(
                    [Completion(c.seq, c.attempt, Status.SENT) for c in claims], now
                )
                result.cycles.append(time.perf_counter() - t0)
                result.ended.append(time.time() - start_at)
                result.sizes.append(len(ended))
                result.completed.extend(ended)

    try:
        await asyncio.gather(*(worker(i) for i in range(workers)))
    finally:
        result.window = time.time() - start_at
        result.cpu = _cpu_since(usage0)
        await pool.close()
    return result


async def run_port_node(
    dsn: str, name: str, workers: int, start_at: float, seconds: float, cycles: int | None,
    accounts: int = CONNECTORS,
) -> NodeResult:
    """:func:`run_node`'s loop through the Store port (``--port-claim``)."""
    result = NodeResult(name)
    store = await PostgresStore.open(dsn, max_connections=workers)
    ids = SortableIdGenerator()
    deadline = start_at + seconds
    await asyncio.sleep(max(0.0, start_at - time.time()))
    usage0 = resource.getrusage(resource.RUSAGE_SELF)

    async def worker(index: int) -> None:
        done = 0
        while time.time() < deadline and (cycles is None or done < cycles):
            done += 1
            now = time.time()
            await store.accept(_batch(ids, now, 1 + index % accounts))
            result.accepted += ACCEPT_BATCH
            for _ in range(ACCEPT_BATCH // CLAIM_BATCH):
                t0 = time.perf_counter()
                claimed = await store.claim(CLAIM_BATCH, now, LEASE)
                await store.update_statuses([StatusUpdate(m.id, Status.SENT, now)
                                             for m in claimed])  # fmt: skip
                result.cycles.append(time.perf_counter() - t0)
                result.ended.append(time.time() - start_at)
                result.sizes.append(len(claimed))
                result.completed.extend(m.id for m in claimed)

    try:
        await asyncio.gather(*(worker(i) for i in range(workers)))
    finally:
        result.window = time.time() - start_at
        result.cpu = _cpu_since(usage0)
        await store.aclose()
    return result


def node_main(spec: dict[str, Any]) -> None:
    if spec.get("port_claim"):
        result = asyncio.run(run_port_node(
            spec["dsn"], spec["name"], spec["workers"], spec["start_at"], spec["seconds"],
            spec["cycles"], spec["connectors"]))
    else:
        result = asyncio.run(run_node(
            spec["dsn"], spec["name"], spec["workers"], spec["start_at"], spec["seconds"],
            spec["cycles"], spec["batch_ms"] / 1000, spec["connectors"]))
    Path(spec["out"]).write_text(json.dumps(result.__dict__))


# -- the scenario (the parent) -------------------------------------------------------


@dataclass
class Scenario:
    nodes: int
    results: list[NodeResult]
    drained: list[int]
    stored: int
    statuses: dict[int, int]
    queue_left: int
    server_cpu: float | None
    preload_seconds: float = 0.0
    #: the server's CPU seconds per interval (--interval; with a private cluster)
    interval_cpu: list[float] = field(default_factory=list)
    #: --statements: the top statements by execution time, as lines
    statements: list[str] = field(default_factory=list)
    #: --waits: what the backends waited on (pg_stat_activity samples) -> samples
    waits: dict[str, int] = field(default_factory=dict)
    #: the server's counters at the start and at each interval's end (--interval)
    stats: list[ServerStats | None] = field(default_factory=list)
    #: the indexes of messages and dispatch_queue, bytes at the start and at the end
    indexes: list[tuple[str, int, int]] = field(default_factory=list)
    #: the server's values of RECOMMENDED_SETTINGS' names during the run
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.results)

    @property
    def completed(self) -> int:
        return sum(len(r.completed) for r in self.results)

    @property
    def rate(self) -> float:
        return self.completed / max(max(r.window for r in self.results), 1e-9)

    def cycle_ms(self, q: float) -> float:
        cycles = sorted(c for r in self.results for c in r.cycles)
        if not cycles:
            return 0.0
        return cycles[min(len(cycles) - 1, int(q * len(cycles)))] * 1000

    def intervals(self, width: float) -> list[tuple[float, float, float | None]]:
        """(msg/s, claim cycle p99 ms, server CPU µs per message) per ``width`` seconds
        of the window; the last interval takes the cycles that ended after the
        deadline, over its real length."""
        window = max(r.window for r in self.results)
        count = max(1, round(window / width - 0.49))  # a few ms past the deadline: no new one
        done = [0] * count
        cycles: list[list[float]] = [[] for _ in range(count)]
        for r in self.results:
            for at, size, cycle in zip(r.ended, r.sizes, r.cycles, strict=True):
                k = min(count - 1, int(at // width))
                done[k] += size
                cycles[k].append(cycle)
        rows = []
        for k in range(count):
            length = width if k < count - 1 else max(window - k * width, 1e-9)
            p99 = sorted(cycles[k])[int(0.99 * (len(cycles[k]) - 1))] * 1000 if cycles[k] else 0.0
            cpu = self.interval_cpu[k] if len(self.interval_cpu) == count else None
            per = None if cpu is None else cpu / max(done[k], 1) * 1e6
            rows.append((done[k] / length, p99, per))
        return rows

    def problems(self) -> list[str]:
        return exactly_once(
            self.accepted, [r.completed for r in self.results] + [self.drained],
            self.stored, self.statuses, self.queue_left,
        )


def exactly_once(
    accepted: int,
    completions: Sequence[Sequence[int]],
    stored: int,
    statuses: dict[int, int],
    queue_left: int,
) -> list[str]:
    """What breaks "every accepted message completed exactly once" (empty: nothing)."""
    problems = []
    seqs = [s for part in completions for s in part]
    if len(seqs) != len(set(seqs)):
        problems.append(f"{len(seqs) - len(set(seqs))} completions of a message already completed")
    if stored != accepted:
        problems.append(f"{accepted} accepted but {stored} stored")
    if len(set(seqs)) != accepted:
        problems.append(f"{accepted} accepted but {len(set(seqs))} completed")
    others = {Status(k).label: v for k, v in statuses.items() if k != Status.SENT}
    if others:
        problems.append(f"messages not sent: {others}")
    if queue_left:
        problems.append(f"{queue_left} left in the queue")
    return problems


def server_cpu(cluster: PgCluster | None) -> float | None:
    """CPU seconds of the postmaster, its live children and its reaped ones."""
    pid = None if cluster is None else cluster.server_pid
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own = int(entry.name) == pid
        if own or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
            if own:
                total += int(fields[13]) + int(fields[14])  # reaped backends
    return total / tick


#: What :func:`server_stats` reads at each interval's end: WAL written (records,
#: full-page images, bytes; pg_stat_wal), checkpoints (by time and requested,
#: buffers they wrote; pg_stat_bgwriter), autovacuum and autoanalyze runs of
#: ``messages``, the sizes of ``messages``, its indexes and the queue, and the
#: tables' blocks read from outside shared buffers or added (pg_statio_user_tables),
#: and of those the reads of ``messages``' indexes.
_STATS = """
SELECT w.wal_records, w.wal_fpi, w.wal_bytes::bigint,
       b.checkpoints_timed, b.checkpoints_req, b.buffers_checkpoint,
       b.buffers_backend, b.buffers_clean,
       t.autovacuum_count, t.autoanalyze_count,
       pg_relation_size('messages') AS heap, pg_indexes_size('messages') AS indexes,
       pg_total_relation_size('dispatch_queue') AS queue,
       (SELECT sum(heap_blks_read + coalesce(idx_blks_read, 0))::bigint
        FROM pg_statio_user_tables) AS blks_read,
       (SELECT coalesce(idx_blks_read, 0) FROM pg_statio_user_tables
        WHERE relname = 'messages') AS messages_idx_read,
       t.n_tup_upd, t.n_tup_hot_upd
FROM pg_stat_wal w, pg_stat_bgwriter b, pg_stat_user_tables t
WHERE t.relname = 'messages'
"""


@dataclass(frozen=True)
class ServerStats:
    """Cumulative server counters and sizes at one moment (:data:`_STATS`)."""

    wal_records: int
    wal_fpi: int
    wal_bytes: int
    checkpoints_timed: int
    checkpoints_req: int
    buffers_checkpoint: int
    buffers_backend: int
    buffers_clean: int
    autovacuum_count: int
    autoanalyze_count: int
    heap: int
    indexes: int
    queue: int
    blks_read: int
    messages_idx_read: int
    updates: int  # of messages, and of those HOT (no index entry written)
    hot_updates: int


async def server_stats(dsn: str) -> ServerStats | None:
    """The counters of :data:`_STATS` now (None before ``messages`` exists)."""
    async with connection(dsn) as conn:
        row = await conn.fetchrow(_STATS)
    return None if row is None else ServerStats(*(int(v) for v in row.values()))


def settings_in_force(dsn: str) -> dict[str, str]:
    """The server's current values of :data:`RECOMMENDED_SETTINGS`' names."""
    async def fetch() -> dict[str, str]:
        async with connection(dsn) as conn:
            return {name: await conn.fetchval(f"SHOW {name}") for name in RECOMMENDED_SETTINGS}
    return asyncio.run(fetch())


def index_sizes(dsn: str) -> list[tuple[str, int]]:
    """Each index of ``messages`` and ``dispatch_queue`` with its size in bytes."""
    async def fetch() -> list[tuple[str, int]]:
        async with connection(dsn) as conn:
            rows = await conn.fetch(
                "SELECT indexrelid::regclass::text AS name, pg_relation_size(indexrelid) AS size"
                " FROM pg_index WHERE indrelid IN ('messages'::regclass,"
                " 'dispatch_queue'::regclass) ORDER BY 2 DESC")
        return [(r["name"], r["size"]) for r in rows]
    return asyncio.run(fetch())


async def prepare(dsn: str, preload: int, statements: bool = False) -> None:
    async with connection(dsn) as conn:
        await migrate(conn)
        await conn.execute(
            "TRUNCATE messages, dispatch_queue, segments, outbox, awaiting_receipts")
        if preload:
            await fill_finished(conn, preload, time.time())
            await conn.execute("VACUUM ANALYZE messages")
            # The preload's dirty pages written now, not by the run's first checkpoint.
            await conn.execute("CHECKPOINT")
        if statements:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")


async def top_statements(dsn: str, top: int) -> list[str]:
    """This database's statements by execution time since :func:`prepare`, as
    lines: share, total ms, calls, rows, µs and shared buffers touched a row."""
    async with connection(dsn) as conn:
        rows = await conn.fetch(
            "SELECT calls, rows, total_exec_time, shared_blks_hit + shared_blks_read AS blks,"
            " query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
            " WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT $1", top)
    total = sum(r["total_exec_time"] for r in rows) or 1.0
    return [f"{r['total_exec_time'] / total:>5.0%} {r['total_exec_time']:>8.0f} ms "
            f"{r['calls']:>7} calls {r['rows']:>8} rows "
            f"{r['total_exec_time'] * 1000 / max(r['rows'], 1):>6.1f} µs/row "
            f"{r['blks'] / max(r['rows'], 1):>6.1f} buf/row  "
            + " ".join(r["query"].split())[:90] for r in rows]


async def sample_waits(dsn: str, stop: threading.Event, every: float = 0.05) -> dict[str, int]:
    """What this database's active backends wait on, sampled every ``every``
    seconds until ``stop`` is set (``CPU`` when running): wait event -> samples.
    A backend that is not a client's (an autovacuum worker) is named before it."""
    counts: dict[str, int] = {}
    async with connection(dsn) as conn:
        while not stop.is_set():
            for r in await conn.fetch(
                    "SELECT backend_type, wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE datname = current_database() AND state = 'active'"
                    " AND pid <> pg_backend_pid()"):
                key = "CPU" if r["wait_event"] is None else \
                    f"{r['wait_event_type']}:{r['wait_event']}"
                if r["backend_type"] != "client backend":
                    key = f"{r['backend_type']} {key}"
                counts[key] = counts.get(key, 0) + 1
            await asyncio.sleep(every)
    return counts


async def drain_and_count(
    dsn: str, connectors: int, port_claim: bool = False
) -> tuple[list[Any], int, dict[int, int], int]:
    """Claim and complete what the nodes left queued; then what is stored."""
    pool = await create_pool(dsn)
    try:
        drainer = DispatchQueue(pool, "drainer")
        drained: list[Any] = []
        now = time.time() + 2 * LEASE  # past every lease, so nothing is held
        if port_claim:  # a lapsed lease makes a port claim's row ready again by itself
            store = await PostgresStore.open(dsn)
            try:
                while claimed := await store.claim(MAX_CLAIM, now, LEASE):
                    await store.update_statuses([StatusUpdate(m.id, Status.SENT, now)
                                                 for m in claimed])  # fmt: skip
                    drained.extend(m.id for m in claimed)
            finally:
                await store.aclose()
        await drainer.requeue_expired(now)
        for connector in (f"c{i}" for i in range(connectors)):
            while claims := await drainer.claim(connector, MAX_CLAIM, now, LEASE):
                drained.extend(await drainer.complete(
                    [Completion(c.seq, c.attempt, Status.SENT) for c in claims], now))
        # The run's messages have herald's ids; the preloaded history's are decimal.
        ours = "FROM messages WHERE length(id) = $1"
        id_length = len(SortableIdGenerator().new_id(0.0))
        stored = await pool.fetchval(f"SELECT count(*) {ours}", id_length)
        rows = await pool.fetch(f"SELECT status, count(*) AS n {ours} GROUP BY status", id_length)
        left = await pool.fetchval("SELECT count(*) FROM dispatch_queue")
        return drained, stored, {r["status"]: r["n"] for r in rows}, left
    finally:
        await pool.close()


def run_scenario(
    dsn: str, cluster: PgCluster | None, nodes: int, args: argparse.Namespace
) -> Scenario:
    began = time.monotonic()
    asyncio.run(prepare(dsn, args.preload, bool(args.statements)))
    preload_seconds = time.monotonic() - began
    with tempfile.TemporaryDirectory(prefix="herald-cluster-") as tmp:
        start_at = time.time() + START_DELAY
        procs = []
        outs = []
        for i in range(nodes):
            out = Path(tmp) / f"node{i}.json"
            outs.append(out)
            spec = {"dsn": dsn, "name": f"node-{i}", "workers": args.workers,
                    "start_at": start_at, "seconds": args.seconds, "cycles": args.cycles,
                    "batch_ms": args.batch_ms, "connectors": args.connectors,
                    "port_claim": args.port_claim, "out": str(out)}
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--node", json.dumps(spec)], env=os.environ.copy()))
        cpu0 = None
        while time.time() < start_at - 0.2:
            time.sleep(0.05)
        cpu0 = server_cpu(cluster)
        stats = [asyncio.run(server_stats(dsn))] if args.interval else []
        sizes0 = index_sizes(dsn) if args.interval else []
        waits: dict[str, int] = {}
        stop = threading.Event()
        sampler = threading.Thread(  # beside the interval marks below
            target=lambda: waits.update(asyncio.run(sample_waits(dsn, stop))))
        if args.waits:
            sampler.start()
        # the server's CPU at each interval's end, while the nodes run (the last: after)
        marks: list[float | None] = []
        if args.interval:
            boundary = start_at + args.interval
            while boundary < start_at + args.seconds - args.interval / 2 \
                    and procs[0].poll() is None:
                time.sleep(max(0.0, boundary - time.time()))
                marks.append(server_cpu(cluster))
                stats.append(asyncio.run(server_stats(dsn)))
                boundary += args.interval
        limit = START_DELAY + args.seconds + 120
        for p in procs:
            if p.wait(timeout=limit) != 0:
                raise SystemExit(f"a node exited with {p.returncode}")
        cpu1 = server_cpu(cluster)
        marks.append(cpu1)
        if args.interval:
            stats.append(asyncio.run(server_stats(dsn)))
        stop.set()
        if args.waits:
            sampler.join()
        results = [NodeResult(**json.loads(o.read_text())) for o in outs]
    statements = asyncio.run(top_statements(dsn, args.statements)) if args.statements else []
    after = dict(index_sizes(dsn)) if args.interval else {}
    indexes = [(name, size, after.get(name, 0)) for name, size in sizes0]
    drained, stored, statuses, left = asyncio.run(
        drain_and_count(dsn, args.connectors, args.port_claim))
    return Scenario(
        nodes, results, drained, stored, statuses, left,
        None if cpu0 is None or cpu1 is None else cpu1 - cpu0, preload_seconds,
        interval_cpu(cpu0, marks), statements, waits, stats, indexes, settings_in_force(dsn),
    )


def interval_cpu(cpu0: float | None, marks: Sequence[float | None]) -> list[float]:
    """CPU seconds per interval from the readings at each end (none if one is missing)."""
    readings = [r for r in (cpu0, *marks) if r is not None]
    if len(readings) != len(marks) + 1:
        return []
    return [b - a for a, b in itertools.pairwise(readings)]


def server_intervals(s: Scenario, width: float) -> list[dict[str, float]]:
    """Per interval of ``width`` seconds between two readings (the last one
    taken after the nodes ended: it counts every cycle after): WAL bytes and
    full-page images a message, the share of WAL records that were full-page
    images, checkpoints by time and requested, buffers written by checkpoints
    and by backends, blocks read from outside shared buffers, autovacuum and
    autoanalyze runs of ``messages``, the share of its updates that were HOT,
    and at the interval's end the sizes of
    ``messages`` (heap, indexes) and the queue in bytes. Empty when a reading
    is missing."""
    readings = [x for x in s.stats if x is not None]
    if len(readings) < 2 or len(readings) != len(s.stats):
        return []
    done = [0] * (len(readings) - 1)
    for r in s.results:
        for at, size in zip(r.ended, r.sizes, strict=True):
            done[min(len(done) - 1, int(at // width))] += size
    rows = []
    for k, (a, b) in enumerate(itertools.pairwise(readings)):
        count = max(1, done[k])
        rows.append({
            "messages": done[k],
            "wal_bytes_per_msg": (b.wal_bytes - a.wal_bytes) / count,
            "fpi_per_msg": (b.wal_fpi - a.wal_fpi) / count,
            "fpi_share": (b.wal_fpi - a.wal_fpi) / max(1, b.wal_records - a.wal_records),
            "checkpoints_timed": b.checkpoints_timed - a.checkpoints_timed,
            "checkpoints_req": b.checkpoints_req - a.checkpoints_req,
            "buffers_checkpoint": b.buffers_checkpoint - a.buffers_checkpoint,
            "buffers_backend": b.buffers_backend - a.buffers_backend,
            "blks_read": b.blks_read - a.blks_read,
            "messages_idx_read": b.messages_idx_read - a.messages_idx_read,
            "autovacuum": b.autovacuum_count - a.autovacuum_count,
            "autoanalyze": b.autoanalyze_count - a.autoanalyze_count,
            "hot_share": (b.hot_updates - a.hot_updates) / max(1, b.updates - a.updates),
            "heap": b.heap, "indexes": b.indexes, "queue": b.queue,
        })  # fmt: skip
    return rows


def print_server_stats(s: Scenario, width: float) -> None:
    """:func:`server_intervals` as lines, and the indexes' growth."""
    rows = server_intervals(s, width)
    mb = 1 << 20
    if rows:
        print("  server per interval: WAL B/msg, FPI/msg, FPI share of WAL records, "
              "checkpoints time+req, buffers written by checkpoints / backends, blocks read or "
              "added (not in shared buffers), messages' autovacuum+analyze, HOT share of messages' "
              "updates; at the end: messages "
              "heap + indexes, queue (MB)")
    for k, r in enumerate(rows):
        span = f"{k * width:g}-{(k + 1) * width:g} s"
        print(f"  {span:>12} {r['wal_bytes_per_msg']:>6.0f} B {r['fpi_per_msg']:>5.2f} FPI "
              f"{r['fpi_share']:>4.0%}  ckpt {r['checkpoints_timed']:.0f}+"
              f"{r['checkpoints_req']:.0f}  buf {r['buffers_checkpoint']:>6.0f}/"
              f"{r['buffers_backend']:<6.0f} read {r['blks_read']:>6.0f} "
              f"({r['messages_idx_read']:.0f} messages' indexes) "
              f"av {r['autovacuum']:.0f}+{r['autoanalyze']:.0f} HOT {r['hot_share']:.0%}  "
              f"{r['heap'] / mb:>5.0f} + "
              f"{r['indexes'] / mb:>4.0f} MB, queue {r['queue'] / mb:.0f} MB")
    if s.indexes:
        print("  indexes (MB, start -> end): " + ", ".join(
            f"{name} {x / mb:.0f} -> {y / mb:.0f}" for name, x, y in s.indexes))


def report(scenarios: list[Scenario], args: argparse.Namespace) -> None:
    via = "the Store port's claim" if args.port_claim else "DispatchQueue"
    print(f"\nstore loop (accept {ACCEPT_BATCH} -> claim {CLAIM_BATCH} -> complete) via {via}, "
          f"{args.workers} workers per node, group commit {args.batch_ms:g} ms, "
          f"{args.preload} finished messages before, "
          + (f"{args.cycles} cycles per worker" if args.cycles else f"{args.seconds:g} s"))
    head = (f"{'nodes':>5} {'msg/s':>8} {'accepted':>9} {'cycle p50':>10} {'p99':>8} "
            f"{'max':>8} {'node CPU':>9} {'server CPU':>11} {'CPU bound':>10}  exactly once")
    print(head)
    print("-" * len(head))
    for s in scenarios:
        node_cpu = sum(r.cpu for r in s.results) / max(s.completed, 1) * 1e6
        server_us = None if s.server_cpu is None else s.server_cpu / max(s.completed, 1) * 1e6
        server = "-" if server_us is None else f"{server_us:.0f}"
        # msg/s if this run had every core to itself (a shared machine's rate is lower).
        bound = "-" if server_us is None else f"{CORES / (node_cpu + server_us) * 1e6:.0f}"
        problems = s.problems()
        print(f"{s.nodes:>5} {s.rate:>8.0f} {s.accepted:>9} {s.cycle_ms(0.5):>8.1f}ms "
              f"{s.cycle_ms(0.99):>6.1f}ms {s.cycle_ms(1.0):>6.1f}ms {node_cpu:>6.0f} µs "
              f"{server:>8} µs {bound:>10}  "
              + ("yes" if not problems else "NO: " + "; ".join(problems)))
    for s in scenarios if args.interval else ():
        rows = s.intervals(args.interval)
        print(f"\n{s.nodes} node(s) per {args.interval:g} s"
              + (f" ({args.preload} finished messages loaded in {s.preload_seconds:.0f} s)"
                 if args.preload else "") + ":")
        for k, (rate, p99, cpu) in enumerate(rows):
            span = f"{k * args.interval:g}-{(k + 1) * args.interval:g} s"
            print(f"  {span:>12} {rate:>8.0f} msg/s  cycle p99 {p99:>6.1f} ms"
                  + ("" if cpu is None else f"  server CPU {cpu:>4.0f} µs/msg"))
        print_server_stats(s, args.interval)
        first, last = rows[0], rows[-1]
        print(f"  last / first: {last[0] / max(first[0], 1e-9):.0%} of the rate"
              + ("" if first[2] is None or last[2] is None else
                 f", {last[2] / max(first[2], 1e-9):.0%} of the server CPU per message")
              + f"; worst interval's cycle p99 {max(r[1] for r in rows):.1f} ms")
    for s in scenarios:
        if s.statements:
            print(f"\n{s.nodes} node(s): PostgreSQL's statements by execution time "
                  "(pg_stat_statements, top level)")
            print("\n".join(s.statements))
        if s.waits:
            samples = sum(s.waits.values())
            print(f"\n{s.nodes} node(s): active backends' wait events ({samples} samples)")
            for event, n in sorted(s.waits.items(), key=lambda kv: -kv[1])[:10]:
                print(f"  {n / samples:>5.0%} {event}")
    if len(scenarios) > 1 and scenarios[0].nodes == 1:
        for s in scenarios[1:]:
            print(f"{s.nodes} nodes / 1 node: {s.rate / max(scenarios[0].rate, 1e-9):.2f}x")
    print("\nissue 10's anchors on this machine (PostgreSQL on the same 2 cores):")
    for what, anchor, goal in ANCHORS:
        print(f"  {what:<28} {anchor:<27} goal {goal}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s per scenario")
    parser.add_argument("--seconds", type=float, default=None,
                        help="length of each scenario's window (default 20)")
    parser.add_argument("--cycles", type=int, default=None,
                        help="stop each worker after this many cycles instead (tests)")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3],
                        help="node counts, one scenario each (default: 1 3)")
    parser.add_argument("--workers", type=int, default=4, help="store loops per node")
    parser.add_argument("--connectors", type=int, default=CONNECTORS,
                        help="connectors the loops share: loop i of every node uses "
                             f"c(i mod N) (default {CONNECTORS})")
    parser.add_argument("--batch-ms", type=float, default=0.0, metavar="MS",
                        help="group commit: a node's concurrent accepts and completions "
                             "within MS share a statement (default 0: each its own)")
    parser.add_argument("--preload", type=int, default=0, metavar="N",
                        help="N finished messages in the table before each scenario "
                             "(issue 10's 5-minute run: --preload 5000000 --seconds 300)")
    parser.add_argument("--interval", type=float, default=None, metavar="S",
                        help="also print msg/s and the claim cycle p99 per S seconds and "
                             "the last interval / the first (default: 60 when --seconds is "
                             "120 or more, else none)")
    parser.add_argument("--port-claim", action="store_true",
                        help="run the loop through the Store port (PostgresStore: accept, "
                             "claim, update_statuses) instead of DispatchQueue; worker i's "
                             "messages are account 1 + i mod --connectors's")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="the N statements PostgreSQL spent the most time on in each "
                             "scenario (pg_stat_statements, preloaded in the private cluster)")
    parser.add_argument("--waits", action="store_true",
                        help="sample what the active backends wait on (pg_stat_activity, "
                             "every 50 ms) through each scenario")
    parser.add_argument("--server-set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the private cluster (postgres -c), e.g. the "
                             "operator's group commit: commit_delay=1000 commit_siblings=5 "
                             "(repeatable; herald's own statements keep synchronous_commit on)")
    parser.add_argument("--stock", action="store_true",
                        help="run the private cluster on PostgreSQL's default settings, not "
                             "the recommended ones (RECOMMENDED_SETTINGS, docs/scale-out.md)")
    parser.add_argument("--dsn", default=None,
                        help="an existing database, emptied before each scenario "
                             "(default: a private cluster, a fresh database per scenario)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--node", help=argparse.SUPPRESS)  # internal: run one node
    args = parser.parse_args(argv)
    settings = dict(item.partition("=")[::2] for item in args.server_set)
    if any(not name or not value for name, value in settings.items()):
        parser.error("--server-set takes NAME=VALUE")
    if settings and args.dsn:
        parser.error("--server-set sets the private cluster's settings; not with --dsn")
    recommended = not (args.stock or args.dsn)
    settings = {**(RECOMMENDED_SETTINGS if recommended else {}), **settings}
    if args.statements:
        settings["shared_preload_libraries"] = "pg_stat_statements"
    if args.node:
        node_main(json.loads(args.node))
        return 0
    args.seconds = args.seconds or (4.0 if args.quick else 20.0)
    if args.interval is None and args.seconds >= 120:
        args.interval = 60.0
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {CORES} CPUs", flush=True)
    if settings:
        print(f"# server settings: {' '.join(f'{k}={v}' for k, v in settings.items())}"
              + (" (RECOMMENDED_SETTINGS: docs/scale-out.md, 'Preparing a database')"
                 if recommended else ""))
    elif args.stock:
        print("# server settings: PostgreSQL's defaults (--stock)")
    cluster = None if args.dsn else PgCluster.start(settings)
    scenarios = []
    try:
        for i, nodes in enumerate(args.nodes):
            dsn = args.dsn or cluster.create_database(f"cluster_{i}")  # type: ignore[union-attr]
            scenarios.append(run_scenario(dsn, cluster, nodes, args))
            s = scenarios[-1]
            print(f"{nodes} node(s): {s.rate:.0f} msg/s, {s.accepted} accepted", flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    report(scenarios, args)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps([
            {"nodes": s.nodes, "rate": s.rate, "accepted": s.accepted,
             "completed": s.completed, "drained": len(s.drained), "stored": s.stored,
             "p99_ms": s.cycle_ms(0.99), "problems": s.problems(), "waits": s.waits,
             "intervals": s.intervals(args.interval) if args.interval else [],
             "settings": s.settings,
             "server": server_intervals(s, args.interval) if args.interval else []}
            for s in scenarios
        ]))
    return 1 if any(s.problems() for s in scenarios) else 0


if __name__ == "__main__":
    sys.exit(main())
