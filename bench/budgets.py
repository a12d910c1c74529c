"""What an account's rate limit costs a message: in one process (SQLite) and shared
by the nodes (PostgreSQL, ``herald.cluster.budgets``).

    .venv/bin/python bench/budgets.py                       # both parts
    .venv/bin/python bench/budgets.py --before /tmp/old/src # and an older tree's gate

Part 1 (``gate``): ``Gate.charge_messages`` (the API's message budget, the
call every send makes) on a SQLite store, µs of CPU per call, in a child
process per source tree (``--before``: a checkout of another commit's
``src``), the trees taking turns ``--rounds`` times.

Part 2 (``shared``): ``SharedBudgets.take`` on a private PostgreSQL cluster
(tests/peers/postgres.py), the clock advancing ``1 / rate`` per message so
the account sends at exactly its rate: µs of client CPU per message, wall µs
per message, and round trips to the store per message, for a few rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALLS = 200_000
RATES = (10.0, 100.0, 1000.0, 10_000.0)
MESSAGES = 5_000


async def _gate_child(calls: int) -> float:
    """µs of CPU per ``charge_messages`` (sync before, async after: either is timed)."""
    from prometheus_client import CollectorRegistry

    from herald.accounts import Accounts
    from herald.api import ApiContext
    from herald.api._auth import Gate
    from herald.ids import SortableIdGenerator
    from herald.metrics import Metrics
    from herald.store import SQLiteConfig, SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore.open(SQLiteConfig(data_dir=Path(tmp)))
        accounts = Accounts(store)
        try:
            account = await store.create_account("bench", time.time(), rate_limit=1e12,
                                                 bind_limit=1)  # fmt: skip
            gate = Gate(ApiContext(store=store, accounts=accounts, ids=SortableIdGenerator(),
                                   clock=time.time, metrics=Metrics(CollectorRegistry())))
            now = time.time()
            start = time.process_time()
            for _ in range(calls):
                r = gate.charge_messages(account, 1, now)
                if r is not None:
                    await r
            return (time.process_time() - start) / calls * 1e6
        finally:
            accounts.close()
            await store.aclose()


def gate_part(args: argparse.Namespace) -> None:
    trees = {"this tree": ROOT / "src"}
    if args.before:
        trees = {"before": Path(args.before), **trees}
    results: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, src in trees.items():
            env = {**os.environ, "PYTHONPATH": str(src)}
            out = subprocess.run([sys.executable, __file__, "--child", str(args.calls)],
                                 env=env, check=True, capture_output=True, text=True)
            results[name].append(json.loads(out.stdout))
    print(f"Gate.charge_messages, SQLite, {args.calls} calls, µs CPU per call"
          f" (median of {args.rounds}; each round)")
    for name, values in results.items():
        rounds = " ".join(f"{v:.2f}" for v in values)
        print(f"  {name:10} {statistics.median(values):.2f}   ({rounds})")


async def _shared(dsn: str, rate: float, messages: int) -> tuple[float, float, float, int]:
    from herald.cluster.budgets import SharedBudgets
    from herald.store.postgres import PostgresStore

    store = await PostgresStore.open(dsn)
    try:
        budgets, key = SharedBudgets(store, "bench", 100), f"account-{rate:g}"
        capacity = rate  # one second of burst
        now, step = time.time(), 1.0 / rate
        refused = 0
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(messages):
            wait = budgets.take_now(key, rate, capacity, 1, now)
            if wait is None:
                wait = await budgets.take(key, rate, capacity, 1, now)
            refused += wait > 0
            now += step
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return cpu / messages * 1e6, wall / messages * 1e6, budgets.asked / messages, refused
    finally:
        await store.aclose()


def shared_part(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from peers.postgres import PgCluster

    cluster = PgCluster.start()
    try:
        from herald.store.postgres import PostgresStore

        dsn = cluster.create_database("budgets")

        async def migrate() -> None:
            await (await PostgresStore.open(dsn)).aclose()

        asyncio.run(migrate())
        print(f"SharedBudgets.take, PostgreSQL on this machine, {args.messages} messages"
              " at the account's rate")
        print("  rate msg/s | client CPU µs/msg | wall µs/msg | round trips/msg | refused")
        for rate in RATES:
            cpu, wall, asked, refused = asyncio.run(_shared(dsn, rate, args.messages))
            print(f"  {rate:10,.0f} | {cpu:17.1f} | {wall:11.1f} | {asked:15.3f} | {refused}")
    finally:
        cluster.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="another tree's src directory, timed in turns")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--parts", default="gate,shared")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_gate_child(args.child))))
        return 0
    parts = args.parts.split(",")
    if "gate" in parts:
        gate_part(args)
    if "shared" in parts:
        shared_part(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
