"""Message retention: how fast a purge goes, and what the hot path's writes wait meanwhile.

    nice -n 19 .venv/bin/python bench/retention.py                  # both stores, 1M messages
    nice -n 19 .venv/bin/python bench/retention.py --store sqlite --messages 200000 --batch 500

A fresh store (SQLite in a temporary directory; PostgreSQL on a private
cluster) is filled with ``--messages`` final messages, each with a segment and
a CDR, accepted 40 to 10 days ago (cloned in SQL from one message that went
through the store: accepted, claimed, sent, delivered). Then, with a probe that
accepts one new message every ``--probe-every`` seconds and times each accept
(the hot path's write: the customer's acknowledgement waits for it):

1. the probe alone for ``--idle`` seconds (its baseline);
2. the margin sums brought up to date (what a retention pass does first: here
   all the clones are new to them);
3. with ``--texts``, a pass with ``text_days = 8``: every clone's text erased;
4. a retention pass with ``[store] message_days = 8`` (``herald.dispatch._retention``,
   steps of ``--batch`` messages): every clone goes; with ``--cdrs``, then a
   pass with ``cdr_days = 8`` over their CDRs.

Reported: the seconds and rate of each, and the probe's accept latency (median,
99th percentile, max) while idle and during each pass. Exit 1 if a clone was
left (``tests/bench/test_retention_run.py`` runs it with tiny counts).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from herald.config import StoreConfig  # noqa: E402
from herald.dispatch._retention import Retention  # noqa: E402
from herald.ids import SortableIdGenerator  # noqa: E402
from herald.store import (  # noqa: E402
    PURGE_BATCH,
    NewMessage,
    ReceiptUpdate,
    SegmentRecord,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    Store,
)

DAY = 86_400.0
IDS = SortableIdGenerator()

#: The clones' columns that differ from the template's (SQL on $i, the clone's
#: number, and the template row t), per store.
SQLITE_CLONE = {
    "id": "printf('r%012d', n.i)", "accepted_at": ":start + n.i * :every",
    "queued_at": ":start + n.i * :every", "sent_at": ":start + n.i * :every + 1",
    "done_at": ":start + n.i * :every + 5", "due_at": "NULL", "lease_until": "NULL",
    "expires_at": ":start + n.i * :every + 3600",
    "to_addr": "'+4477009' || printf('%05d', n.i % 100000)",
}
PG_CLONE = {
    "id": "'r' || lpad(n.i::text, 12, '0')", "accepted_at": "$2 + n.i * $3",
    "queued_at": "$2 + n.i * $3", "sent_at": "$2 + n.i * $3 + 1", "done_at": "$2 + n.i * $3 + 5",
    "expires_at": "$2 + n.i * $3 + 3600",
    "to_addr": "'+4477009' || lpad((n.i % 100000)::text, 5, '0')",
}


def message(account_id: int, now: float, n: int) -> NewMessage:
    return NewMessage(
        id=IDS.new_id(now), account_id=account_id, source=Source.HTTP,
        to=f"+4477008{n % 100000:05d}", sender="ACME", body=b"your code is 123456",
        encoding="gsm7", data_coding=0, segments=1, accepted_at=now, expires_at=now + 3600)


async def template(store: Store, now: float) -> tuple[int, str]:
    """An account and one delivered message through the store, to clone."""
    account = await store.create_account("bench", now, rate_limit=10**6, bind_limit=1)
    # The clones' CDRs are charged as they are inserted (SQLite's trigger).
    await store.adjust_balance(account.id, add=10**15)
    m = message(account.id, now - 40 * DAY, 0)
    await store.accept([m])
    await store.claim(10, now, 30)
    await store.record_segments([SegmentRecord(m.id, 0, "up1", "T", "t", now)])
    await store.apply_receipts([ReceiptUpdate("up1", "t", Status.DELIVERED, now)])
    return account.id, m.id


def fill_sqlite(path: Path, template_id: str, rows: int, start: float, every: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(messages)") if r[1] != "seq"]
        exprs = ", ".join(f"{SQLITE_CLONE.get(c, 't.' + c)}" for c in cols)
        conn.execute("BEGIN")
        conn.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :rows - 1)"
            f" INSERT INTO messages ({', '.join(cols)}) SELECT {exprs} FROM n,"
            " (SELECT * FROM messages WHERE id = :tpl) t",
            {"rows": rows, "start": start, "every": every, "tpl": template_id})
        conn.execute(
            "INSERT INTO segments (message_seq, idx, connector, upstream_id, upstream_key, status,"
            " updated_at) SELECT seq, 0, 'up1', 'U' || id, 'u' || id, 10, done_at FROM messages"
            " WHERE id >= 'r' AND id < 's'")
        conn.execute(
            "INSERT INTO cdrs (message_id, account_id, accepted_at, country, segments, price_key,"
            " sell, refunded, connector, buy) SELECT id, account_id, accepted_at, '44', 1, '+44',"
            " 1000, 0, 'up1', 500 FROM messages WHERE id >= 'r' AND id < 's'")
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def fill_postgres(dsn: str, template_id: str, rows: int, start: float,
                        every: float) -> None:  # fmt: skip
    from herald.store.postgres import connection

    async with connection(dsn) as conn:
        cols = [r[0] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages'"
            " AND column_name <> 'seq' ORDER BY ordinal_position")]  # fmt: skip
        exprs = ", ".join(f"{PG_CLONE.get(c, 't.' + c)}" for c in cols)
        async with conn.transaction():
            # A bulk load: without the lifecycle's triggers (the clones are final already).
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(
                f"INSERT INTO messages ({', '.join(cols)}) SELECT {exprs}"
                " FROM generate_series(0, $1::int - 1) n(i),"
                " (SELECT * FROM messages WHERE id = $4) t", rows, start, every, template_id)
            await conn.execute(
                "INSERT INTO segments (message_seq, idx, connector, upstream_id, upstream_key,"
                " status, updated_at) SELECT seq, 0, 'up1', 'U' || id, 'u' || id, 10, done_at"
                " FROM messages WHERE id LIKE 'r%'")
            await conn.execute(
                "INSERT INTO cdrs (message_id, account_id, accepted_at, country, segments,"
                " price_key, sell, refunded, connector, buy) SELECT id, account_id, accepted_at,"
                " '44', 1, '+44', 1000, 0, 'up1', 500 FROM messages WHERE id LIKE 'r%'")
        await conn.execute("VACUUM ANALYZE messages, segments, cdrs")


class Probe:
    """Accepts a message every ``every`` seconds; records each accept's seconds."""

    def __init__(self, store: Store, account_id: int, every: float) -> None:
        self._store = store
        self._account = account_id
        self._every = every
        self.waits: list[float] = []
        self._n = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():  # bounded by the caller's phase
            self._n += 1
            m = message(self._account, time.time(), self._n)
            began = time.perf_counter()
            await self._store.accept([m])
            self.waits.append(time.perf_counter() - began)
            await asyncio.sleep(self._every)

    def take(self) -> list[float]:
        waits, self.waits = self.waits, []
        return waits


def summary(waits: list[float]) -> str:
    if not waits:
        return "no accepts"
    ms = sorted(w * 1000 for w in waits)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (f"{len(ms):,} accepts: median {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms,"
            f" max {ms[-1]:.1f} ms")  # fmt: skip


async def phase(probe: Probe, work: Callable[[], Awaitable[Any]]) -> tuple[float, Any, list[float]]:
    """``work()`` with the probe running: seconds, its result, the probe's waits."""
    stop = asyncio.Event()
    task = asyncio.create_task(probe.run(stop))
    began = time.perf_counter()
    try:
        result = await work()
    finally:
        elapsed = time.perf_counter() - began
        stop.set()
        await task
    return elapsed, result, probe.take()


async def measure(store: Store, account_id: int, args: argparse.Namespace) -> bool:
    """The phases; whether every clone (and, with ``--cdrs``, its CDR) went."""
    probe = Probe(store, account_id, args.probe_every)
    seconds, _, waits = await phase(probe, lambda: asyncio.sleep(args.idle))
    print(f"  idle {seconds:.1f} s: {summary(waits)}", flush=True)
    now = time.time()
    seconds, _, waits = await phase(probe, lambda: store.margin(now, now, "account"))
    print(f"  margin sums brought up to date: {seconds:.2f} s; {summary(waits)}", flush=True)
    ok = True
    if args.texts:
        retention = Retention(store, StoreConfig(text_days=8), time.time, batch=args.batch)
        seconds, done, waits = await phase(probe, lambda: retention.run(time.time()))
        print(f"  erasure of {done.texts:,} texts: {seconds:.1f} s,"
              f" {done.texts / seconds:,.0f} texts/s; {summary(waits)}", flush=True)
        ok = done.texts == args.messages
    retention = Retention(store, StoreConfig(message_days=8), time.time, batch=args.batch)
    seconds, done, waits = await phase(probe, lambda: retention.run(time.time()))
    print(f"  purge of {done.messages:,} messages: {seconds:.1f} s,"
          f" {done.messages / seconds:,.0f} messages/s; {summary(waits)}", flush=True)
    ok = ok and done.messages == args.messages
    if args.cdrs:
        retention = Retention(store, StoreConfig(cdr_days=8), time.time, batch=args.batch)
        seconds, done, waits = await phase(probe, lambda: retention.run(time.time()))
        print(f"  purge of {done.cdrs:,} CDRs: {seconds:.1f} s,"
              f" {done.cdrs / seconds:,.0f} CDRs/s; {summary(waits)}", flush=True)
        ok = ok and done.cdrs == args.messages
    if not ok:
        print("  PROBLEM: not every clone was purged", flush=True)
    return ok


async def run_sqlite(args: argparse.Namespace, tmp: Path) -> bool:
    config = SQLiteConfig(data_dir=tmp / "sqlite")
    now = time.time()
    store = SQLiteStore.open(config)
    try:
        account_id, template_id = await template(store, now)
    finally:
        await store.aclose()
    began = time.perf_counter()
    fill_sqlite(config.data_dir / "herald.db", template_id, args.messages, now - 40 * DAY,
                30 * DAY / args.messages)  # fmt: skip
    print(f"sqlite: {args.messages:,} messages filled in {time.perf_counter() - began:.1f} s",
          flush=True)  # fmt: skip
    store = SQLiteStore.open(config)
    try:
        return await measure(store, account_id, args)
    finally:
        await store.aclose()


async def run_postgres(args: argparse.Namespace, dsn: str) -> bool:
    from herald.store.postgres import PostgresStore

    now = time.time()
    store = await PostgresStore.open(dsn)
    try:
        account_id, template_id = await template(store, now)
        began = time.perf_counter()
        await fill_postgres(dsn, template_id, args.messages, now - 40 * DAY,
                            30 * DAY / args.messages)  # fmt: skip
        print(f"postgresql: {args.messages:,} messages filled in"
              f" {time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
        return await measure(store, account_id, args)
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=PURGE_BATCH, help="rows per purge step")
    parser.add_argument("--probe-every", type=float, default=0.005)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--cdrs", action="store_true", help="then purge the CDRs as well")
    parser.add_argument("--texts", action="store_true",
                        help="erase the texts first (text_days) and time that too")
    parser.add_argument("--quick", action="store_true", help="50,000 messages, 1 s idle")
    parser.add_argument("--dsn", help="a PostgreSQL database to use (else a private cluster)")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.idle = min(args.messages, 50_000), 1.0
    print(f"# bench/retention.py: {os.cpu_count()} CPUs, load average"
          f" {os.getloadavg()[0]:.1f}; {args.messages:,} final messages, steps of"
          f" {args.batch:,}, a probe accept every {args.probe_every * 1000:g} ms", flush=True)
    ok = True
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="herald-retention-") as tmp:
            ok = asyncio.run(run_sqlite(args, Path(tmp))) and ok
    if args.store in ("postgresql", "both"):
        if args.dsn is not None:
            return 0 if asyncio.run(run_postgres(args, args.dsn)) and ok else 1
        from peers.postgres import PgCluster

        cluster = PgCluster.start()
        try:
            ok = asyncio.run(run_postgres(args, cluster.create_database("retention"))) and ok
        finally:
            cluster.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
