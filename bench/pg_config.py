"""The operator's configuration on the PostgreSQL store: what a number-table
import costs, and what the delivery-health index costs the receipt path.

    .venv/bin/python bench/pg_config.py                 # 100,000-entry tables, 3 rounds
    .venv/bin/python bench/pg_config.py --ported 1000000 --rounds 5 --receipts 40000

1. Number tables: a synthetic numbering plan and ported-number table
   (bench/number_tables.py's generator, ``--prefixes`` and ``--ported``
   entries) built as ``herald numbers import-*`` builds them, then stored with
   ``put_number_table`` and read back with ``get_number_table``, on the
   PostgreSQL store and, for reference, on the SQLite store. A table is one
   row whatever its size (its built index is opaque to the store): one
   ``bytea`` parameter in one statement. ``pg, pglz``: with the column's
   default storage (compressed), for comparison with the store's (external,
   uncompressed).
2. Receipts: ``--receipts`` messages accepted, their parts recorded, then
   their final receipts applied in batches of 100 (what the receipt path
   does), with and without ``segments_final``, the partial index on
   ``segments (connector, updated_at) WHERE status >= delivered`` that
   ``delivery_counts`` and ``recent_finals`` read. With it, the receipt's
   update of its segment is not HOT (an indexed column changes). Reported:
   receipts per second, the server's CPU per receipt (the postmaster's
   children) and the share of the segments' updates that were HOT.

Variants run in turns, round after round, each on a fresh database of one
private cluster, so that the machine's load weighs on each alike. Nothing is
asserted; compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from herald.ids import SortableIdGenerator  # noqa: E402
from herald.intake import parse_plan, parse_ported  # noqa: E402
from herald.store import (  # noqa: E402
    NewMessage,
    NumberTable,
    NumberTableKind,
    ReceiptUpdate,
    SegmentRecord,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    Store,
)
from herald.store.postgres import PostgresStore  # noqa: E402
from number_tables import synthetic  # noqa: E402
from peers.postgres import PgCluster  # noqa: E402
from pg_lifecycle import _server_cpu  # noqa: E402

RECEIPT_BATCH = 100
WRITE_BATCH = 500
T0 = 1_800_000_000.0


Tables = dict[NumberTableKind, NumberTable]


async def _tables(store: Store | PostgresStore, tables: Tables) -> dict[str, float]:
    times: dict[str, float] = {}
    for kind, table in tables.items():
        started = time.perf_counter()
        await store.put_number_table(table)
        times[f"put {kind.value}"] = time.perf_counter() - started
        started = time.perf_counter()
        read = await store.get_number_table(kind)
        times[f"get {kind.value}"] = time.perf_counter() - started
        assert read is not None and read.data == table.data
    return times


async def _tables_on(where: str | Path, tables: Tables, *,
                     compressed: bool = False) -> dict[str, float]:  # fmt: skip
    """:func:`_tables` on a PostgreSQL database (a URL; ``compressed``: with
    PostgreSQL's default storage of the column) or a SQLite data directory."""
    store: Store | PostgresStore
    if isinstance(where, Path):
        store = SQLiteStore.open(SQLiteConfig(data_dir=where))
    else:
        store = await PostgresStore.open(where)
        if compressed:
            async with store._pool.acquire() as conn:
                await conn.execute(
                    "ALTER TABLE number_tables ALTER COLUMN data SET STORAGE EXTENDED")
    try:
        return await _tables(store, tables)
    finally:
        await store.aclose()


async def _receipts(dsn: str, count: int, index: bool,
                    postmaster: int) -> tuple[float, float, float]:  # fmt: skip
    store = await PostgresStore.open(dsn)
    try:
        async with store._pool.acquire() as conn:
            if not index:
                await conn.execute("DROP INDEX segments_final")
        account = await store.create_account("bench", T0, rate_limit=1e6, bind_limit=1)
        ids = SortableIdGenerator()
        messages = [NewMessage(
            id=ids.new_id(T0), account_id=account.id, source=Source.HTTP, to=f"+4477009{n:05d}",
            sender="ACME", body=b"code", encoding="gsm7", data_coding=0, segments=1,
            accepted_at=T0, expires_at=T0 + 3600) for n in range(count)]  # fmt: skip
        for start in range(0, count, WRITE_BATCH):
            chunk = messages[start:start + WRITE_BATCH]
            await store.accept(chunk)
            await store.record_segments([SegmentRecord(m.id, 0, "up1", m.id, m.id, T0 + 1)
                                         for m in chunk])  # fmt: skip
        async with store._pool.acquire() as conn:
            await conn.execute("ANALYZE segments")
            before = await conn.fetchrow("SELECT pg_stat_get_tuples_hot_updated(oid) AS hot,"
                                         " pg_stat_get_tuples_updated(oid) AS upd"
                                         " FROM pg_class WHERE relname = 'segments'")  # fmt: skip
        started, cpu = time.perf_counter(), _server_cpu(postmaster)
        for start in range(0, count, RECEIPT_BATCH):
            await store.apply_receipts([ReceiptUpdate("up1", m.id, Status.DELIVERED, T0 + 2)
                                        for m in messages[start:start + RECEIPT_BATCH]])
        elapsed, cpu = time.perf_counter() - started, _server_cpu(postmaster) - cpu
        async with store._pool.acquire() as conn:
            await conn.execute("SELECT pg_stat_force_next_flush()")
            await asyncio.sleep(0.2)  # the statistics of this backend reach the view
            after = await conn.fetchrow("SELECT pg_stat_get_tuples_hot_updated(oid) AS hot,"
                                        " pg_stat_get_tuples_updated(oid) AS upd"
                                        " FROM pg_class WHERE relname = 'segments'")  # fmt: skip
        updates = after["upd"] - before["upd"]
        return count / elapsed, cpu / count * 1e6, (after["hot"] - before["hot"]) / max(1, updates)
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefixes", type=int, default=100_000)
    parser.add_argument("--ported", type=int, default=100_000)
    parser.add_argument("--receipts", type=int, default=20_000, help="0: tables only")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args(argv)
    print(f"# bench/pg_config.py: {os.cpu_count()} CPUs, load average"
          f" {os.getloadavg()[0]:.1f}")  # fmt: skip
    generated = synthetic(args.prefixes, args.ported, 1, args.seed)
    plan, ported = parse_plan(generated.plan_csv), parse_ported(generated.ported_csv)
    tables = {kind: NumberTable(kind, t.to_bytes(), len(t), T0)
              for kind, t in ((NumberTableKind.PLAN, plan), (NumberTableKind.PORTED, ported))}
    table_times: dict[str, list[dict[str, float]]] = {
        "postgresql": [], "pg, pglz": [], "sqlite": []}  # fmt: skip
    receipts: dict[str, list[tuple[float, float, float]]] = {"with segments_final": [],
                                                       "without": []}  # fmt: skip
    cluster = PgCluster.start()
    try:
        postmaster = cluster.server_pid
        assert postmaster is not None
        n = 0
        for _ in range(args.rounds):
            for name in ("postgresql", "pg, pglz"):
                n += 1
                dsn = cluster.create_database(f"bench_{n}")
                table_times[name].append(asyncio.run(
                    _tables_on(dsn, tables, compressed=name != "postgresql")))
                cluster.drop_database(f"bench_{n}")
            with tempfile.TemporaryDirectory() as tmp:
                table_times["sqlite"].append(asyncio.run(_tables_on(Path(tmp), tables)))
            for variant in receipts if args.receipts else ():
                n += 1
                dsn = cluster.create_database(f"bench_{n}")
                receipts[variant].append(asyncio.run(
                    _receipts(dsn, args.receipts, variant != "without", postmaster)))
                cluster.drop_database(f"bench_{n}")
    finally:
        cluster.stop()
    print(f"\n# number tables ({args.rounds} rounds, medians in ms)")
    print(f"{'table':10} {'entries':>10} {'octets':>12} {'store':>11} {'put':>8} {'get':>8}")
    for kind, table in tables.items():
        for name, runs in table_times.items():
            put = statistics.median(r[f"put {kind.value}"] for r in runs) * 1000
            get = statistics.median(r[f"get {kind.value}"] for r in runs) * 1000
            print(f"{kind.value:10} {table.entries:>10,} {len(table.data):>12,} {name:>11}"
                  f" {put:>8.1f} {get:>8.1f}")
    if not args.receipts:
        return 0
    print(f"\n# final receipts, {args.receipts:,} in batches of {RECEIPT_BATCH}"
          f" ({args.rounds} rounds)")
    print(f"{'variant':22} {'receipts/s median':>18} {'range':>15} {'server us/receipt':>18}"
          f" {'HOT updates':>12}")
    for variant, rounds in receipts.items():
        rates = [r for r, _, _ in rounds]
        print(f"{variant:22} {statistics.median(rates):>18,.0f}"
              f" {min(rates):>7,.0f}-{max(rates):<7,.0f}"
              f" {statistics.median(c for _, c, _ in rounds):>18.0f}"
              f" {statistics.median(h for _, _, h in rounds):>11.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
