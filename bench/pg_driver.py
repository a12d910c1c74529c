"""PostgreSQL driver choice: asyncpg against psycopg 3 on the store loop's statements.

    .venv/bin/python bench/pg_driver.py            # 6 rounds of 300 cycles per driver
    .venv/bin/python bench/pg_driver.py --quick    # 2 rounds of 60 cycles
    .venv/bin/python bench/pg_driver.py --dsn postgresql://...   # an existing database

What runs: a private PostgreSQL cluster (tests/peers/postgres.py; fsync and
synchronous_commit on) with the PostgreSQL store's schema
(``herald.store.postgres``), and per driver one connection on asyncio doing
cycles of the store loop with the store's own statements
(``herald.store.postgres._sql``), each one statement and one commit:

- ``accept``: 100 messages in one ``INSERT ... SELECT FROM unnest(...)``
  (22 arrays) that also queues them;
- ``claim``: 50 messages, ``UPDATE ... WHERE seq IN (SELECT ... FOR UPDATE
  SKIP LOCKED) RETURNING`` joined to the messages (30 columns back);
- ``complete``: those 50 leave the queue and become ``sent`` (unnest of 4 arrays);

claim and complete twice per accept, so the queue stays at its start size.
Reported per message and per statement kind: wall µs and the client
process's CPU µs (``time.process_time``), plus the server backend's CPU µs
per message over the whole round (from /proc: 10 ms ticks, so per round
only). Drivers alternate round by round; the table gives medians and every
round's client CPU. Both drivers run their native way: asyncpg prepared
statements with binary I/O; psycopg's ``AsyncConnection`` with server-side
prepared statements (``prepare=True``) and binary results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from herald.ids import SortableIdGenerator  # noqa: E402
from herald.store import Priority, Source, Status  # noqa: E402
from herald.store.postgres._schema import MIGRATIONS  # noqa: E402
from herald.store.postgres._sql import ACCEPT, ACCEPT_COLUMNS, CLAIM, COMPLETE  # noqa: E402
from peers.postgres import PgCluster  # noqa: E402

T0 = 1_800_000_000.0
ACCEPT_BATCH = 100
CLAIM_BATCH = 50
CONNECTOR = "c1"
OWNER = "bench"
LEASE = 60.0
KINDS = ("accept", "claim", "complete")

#: The statement with ``$n`` placeholders, in psycopg's ``%(pn)s`` style (a
#: placeholder may repeat, as ``$4`` does in CLAIM).
def to_psycopg(sql: str) -> str:
    return re.sub(r"\$(\d+)", r"%(p\1)b", sql)


def psycopg_params(args: Sequence[Any]) -> dict[str, Any]:
    return {f"p{n}": v for n, v in enumerate(args, 1)}


def accept_arrays(ids: SortableIdGenerator, n: int, now: float) -> list[list[Any]]:
    """The 22 parallel arrays of one accept of ``n`` messages (an OTP-sized body)."""
    rows: dict[str, list[Any]] = {name: [] for name, _t in ACCEPT_COLUMNS}
    for i in range(n):
        values = {
            "id": ids.new_id(now), "account_id": 1, "source": int(Source.HTTP),
            "to_addr": f"+4477009{i:05d}", "from_addr": "ACME",
            "body": b"Your code is 123456", "encoding": "gsm7", "data_coding": 0,
            "udhi": False, "segments": 1, "reference": None, "metadata": None,
            "callback_url": None, "registered_delivery": 0, "test": False,
            "send_at": None, "expires_at": now + 3600, "accepted_at": now,
            "webhook_events": None, "priority": int(Priority.TRANSACTIONAL), "tag": None,
            "connector": CONNECTOR,
        }
        for name, value in values.items():
            rows[name].append(value)
    return [rows[name] for name, _t in ACCEPT_COLUMNS]


@dataclass
class Round:
    driver: str
    messages: int = 0
    wall: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    server_cpu: float = 0.0
    seconds: float = 0.0

    def us(self, what: dict[str, float], kind: str) -> float:
        return what[kind] / max(self.counts[kind], 1) * 1e6

    @property
    def client_cpu_total(self) -> float:
        return sum(self.cpu.values()) / max(self.messages, 1) * 1e6

    @property
    def wall_total(self) -> float:
        return sum(self.wall.values()) / max(self.messages, 1) * 1e6


def backend_cpu(pid: int) -> float:
    """utime + stime of a server backend, in seconds (root reads /proc of postgres)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: One statement through a driver: (sql, args) -> (rows, their column names).
Execute = Callable[[str, Sequence[Any]], Awaitable[tuple[list[Any], list[str]]]]


async def cycles(driver: str, execute: Execute, pid: int, n: int) -> Round:
    ids = SortableIdGenerator()
    result = Round(driver)
    server0 = backend_cpu(pid)
    started = time.perf_counter()
    now = T0
    for _ in range(n):
        now += 0.01
        arrays = accept_arrays(ids, ACCEPT_BATCH, now)
        await timed(result, "accept", ACCEPT_BATCH, execute(ACCEPT, arrays))
        for _half in range(ACCEPT_BATCH // CLAIM_BATCH):
            rows, names = await timed(
                result, "claim", CLAIM_BATCH,
                execute(CLAIM, [CONNECTOR, CLAIM_BATCH, OWNER, now, LEASE]),
            )
            seq, attempt = names.index("seq"), names.index("claim_attempt")
            seqs = [r[seq] for r in rows]
            attempts = [r[attempt] for r in rows]
            await timed(
                result, "complete", len(seqs),
                execute(COMPLETE, [OWNER, seqs, attempts, [int(Status.SENT)] * len(seqs),
                                   [None] * len(seqs), [now] * len(seqs)]),
            )
        result.messages += ACCEPT_BATCH
    result.seconds = time.perf_counter() - started
    result.server_cpu = backend_cpu(pid) - server0
    return result


async def timed(
    result: Round, kind: str, count: int, call: Awaitable[tuple[list[Any], list[str]]]
) -> tuple[list[Any], list[str]]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rows = await call
    result.cpu[kind] += time.process_time() - cpu0
    result.wall[kind] += time.perf_counter() - wall0
    result.counts[kind] += count
    return rows


async def run_asyncpg(dsn: str, n: int) -> Round:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")

        async def execute(sql: str, args: Sequence[Any]) -> tuple[list[Any], list[str]]:
            rows = await conn.fetch(sql, *args)
            return rows, list(rows[0].keys()) if rows else []

        await cycles("asyncpg", execute, pid, 3)  # warm the statement cache
        return await cycles("asyncpg", execute, pid, n)
    finally:
        await conn.close()


async def run_psycopg(dsn: str, n: int) -> Round:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor(binary=True)
        await cur.execute("SELECT pg_backend_pid()")
        pid = (await cur.fetchone())[0]  # type: ignore[index]
        converted = {sql: to_psycopg(sql) for sql in (ACCEPT, CLAIM, COMPLETE)}

        async def execute(sql: str, args: Sequence[Any]) -> tuple[list[Any], list[str]]:
            await cur.execute(converted[sql], psycopg_params(args), prepare=True)
            if cur.description is None:
                return [], []
            return await cur.fetchall(), [d.name for d in cur.description]

        await cycles("psycopg", execute, pid, 3)
        return await cycles("psycopg", execute, pid, n)
    finally:
        await conn.close()


RUNNERS = {"asyncpg": run_asyncpg, "psycopg": run_psycopg}


async def prepare(dsn: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for sql in MIGRATIONS:
            await conn.execute(sql)
    finally:
        await conn.close()


def report(rounds: list[Round], runners: dict[str, object]) -> None:
    print(f"\nper message (median of {len(rounds) // len(runners)} rounds per driver); "
          "µs; client = this process, server = its backend")
    head = (f"{'driver':<9} {'msg/s':>7} {'wall':>6} {'client':>7} {'server':>7} | "
            + " ".join(f"{k + ' wall/cpu':>18}" for k in KINDS) + " | client CPU per round")
    print(head)
    print("-" * len(head))
    for driver in runners:
        mine = [r for r in rounds if r.driver == driver]
        if not mine:
            continue

        def med(f: Callable[[Round], float], rs: list[Round] = mine) -> float:
            return statistics.median(f(r) for r in rs)

        parts = " ".join(
            f"{med(lambda r, k=k: r.us(r.wall, k)):>8.1f}/"
            f"{med(lambda r, k=k: r.us(r.cpu, k)):>8.1f} "
            for k in KINDS
        )
        print(
            f"{driver:<9} {med(lambda r: r.messages / r.seconds):>7.0f} "
            f"{med(lambda r: r.wall_total):>6.0f} {med(lambda r: r.client_cpu_total):>7.1f} "
            f"{med(lambda r: r.server_cpu / r.messages * 1e6):>7.1f} | {parts}| "
            + " ".join(f"{r.client_cpu_total:.1f}" for r in mine)
        )


async def main_async(args: argparse.Namespace) -> None:
    runners = dict(RUNNERS)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        print("psycopg is not installed (pip install 'psycopg[binary]'): asyncpg alone")
        del runners["psycopg"]
    cluster = None if args.dsn else PgCluster.start()
    try:
        rounds: list[Round] = []
        for i in range(args.rounds):
            order = list(runners) if i % 2 == 0 else list(reversed(runners))
            for driver in order:
                # A fresh database per round: no round inherits another's dead rows.
                name = f"bench_{i}_{driver}"
                dsn = args.dsn or cluster.create_database(name)  # type: ignore[union-attr]
                if cluster is not None or not rounds:
                    await prepare(dsn)
                r = await runners[driver](dsn, args.cycles)
                if cluster is not None:
                    cluster.drop_database(name)
                rounds.append(r)
                print(f"round {i + 1} {driver:<8} {r.messages / r.seconds:>7.0f} msg/s "
                      f"client {r.client_cpu_total:.1f} µs/msg", flush=True)
        report(rounds, runners)
    finally:
        if cluster is not None:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 60 cycles")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per driver (default 6)")
    parser.add_argument("--cycles", type=int, default=None,
                        help="accept+2x(claim+complete) cycles per round (default 300)")
    parser.add_argument("--dsn", default=None,
                        help="an existing, empty database, used by every round "
                             "(default: a private cluster, a fresh database per round)")
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.quick else 6)
    args.cycles = args.cycles or (60 if args.quick else 300)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
