"""Retention on the PostgreSQL store: purging days of history by DELETE or by DROP.

    .venv/bin/python bench/pg_retention.py              # 1,000,000 rows over 10 days, purge 3
    .venv/bin/python bench/pg_retention.py --rows 200000 --rounds 1

``--rows`` fraud decisions (the partitioned history table of migration V12,
rows shaped as the pumping defence writes them) spread evenly over ``--days``
UTC days are loaded into two tables of one fresh database:

- ``delete``: the table as it was before V12 (one heap, its primary key and
  four indexes); the oldest ``--purge-days`` days go by ``DELETE ... WHERE
  created_at < cutoff``, then ``VACUUM`` (without which the space and the
  dead index entries stay: the purge is only done once vacuumed);
- ``drop``: the store's own ``fraud_decisions``, in day partitions
  (``HistoryPartitions.maintain``, as the cluster's leader runs it); the same
  days go by ``maintain(now, keep)``, which drops their partitions.

Reported per round: seconds for each step, and the WAL each wrote (what a
replica must receive and replay). Variants run in turns on a private cluster,
so the machine's load weighs on both alike. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from herald.store.postgres import HistoryPartitions, connection, create_pool, migrate  # noqa: E402
from herald.store.postgres._history import DAY  # noqa: E402
from peers.postgres import PgCluster  # noqa: E402

#: The table as migration V4 made it (before V12 partitioned it).
PLAIN = """
CREATE TABLE fraud_plain (
    id text PRIMARY KEY, account_id bigint NOT NULL, created_at double precision NOT NULL,
    to_number text NOT NULL, action text NOT NULL, reasons text NOT NULL,
    engine boolean NOT NULL, country text, price_micros bigint, currency text,
    verification_id text, message_id text, request text NOT NULL);
CREATE INDEX fraud_plain_account ON fraud_plain (account_id, created_at);
CREATE INDEX fraud_plain_country ON fraud_plain (account_id, country, created_at);
CREATE INDEX fraud_plain_time ON fraud_plain (created_at);
CREATE INDEX fraud_plain_verification ON fraud_plain (verification_id, created_at)
    WHERE verification_id IS NOT NULL;
"""

#: $1 rows from $2 every $3 seconds, shaped as the defence writes them.
FILL = """
INSERT INTO {table} (id, account_id, created_at, to_number, action, reasons, engine,
    country, price_micros, currency, verification_id, message_id, request)
SELECT 'd' || lpad(n::text, 12, '0'), 1 + n % 50, $2::float8 + n * $3::float8,
    '+4477009' || lpad((n % 100000)::text, 5, '0'), 'allow',
    '[{{"code": "within_budget", "country": "GB", "details": {{"excess": 0.1}}}}]', true,
    'GB', 40000, 'EUR', CASE WHEN n % 3 = 0 THEN 'v' || n END, 'm' || n,
    '{{"use_case": "login", "ip": "192.0.2.1", "mcc_mnc": "23415"}}'
FROM generate_series(0, $1::int - 1) AS n
"""


async def _wal(conn: Any) -> int:
    lsn: int = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    return int(lsn)


async def _timed(conn: Any, step: Any) -> tuple[float, int]:
    """Seconds and WAL bytes of ``step()``."""
    wal = await _wal(conn)
    began = time.perf_counter()
    await step()
    return time.perf_counter() - began, await _wal(conn) - wal


async def _round(dsn: str, rows: int, days: int, purge: int, variant: str) -> dict[str, float]:
    # The history lies ahead of the migration's "before" partition (which ends
    # tomorrow), on a simulated clock whose "now" is its end.
    start = time.time() // DAY * DAY + 2 * DAY
    now = start + days * DAY
    every = days * DAY / rows
    cutoff = start + purge * DAY
    out: dict[str, float] = {}
    async with connection(dsn) as conn:
        await migrate(conn)
        pool = await create_pool(dsn, max_size=2)
        try:
            parts = HistoryPartitions(pool)
            if variant == "delete":
                await conn.execute(PLAIN)
                table = "fraud_plain"
            else:
                for day in range(0, days + 1, 3):  # maintain() makes 4 days at a time
                    await parts.maintain(start + day * DAY)
                await parts.maintain(now)  # so that the timed call only drops
                table = "fraud_decisions"
            await conn.execute(FILL.format(table=table), rows, start, every)
            await conn.execute(f"VACUUM ANALYZE {table}")
            await conn.execute("CHECKPOINT")
            out["rows"] = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE created_at < $1", cutoff)
            if variant == "delete":
                out["purge s"], out["purge WAL MB"] = await _timed(conn, lambda: conn.execute(
                    "DELETE FROM fraud_plain WHERE created_at < $1", cutoff))
                out["vacuum s"], out["vacuum WAL MB"] = await _timed(
                    conn, lambda: conn.execute("VACUUM fraud_plain"))
            else:
                # The partitions wholly older than cutoff go (the migration's
                # empty "before" too).
                out["purge s"], out["purge WAL MB"] = await _timed(
                    conn, lambda: parts.maintain(now, now - cutoff))
                out["vacuum s"], out["vacuum WAL MB"] = 0.0, 0.0
            left = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE created_at < $1",
                                       cutoff)  # fmt: skip
            assert left == 0, f"{variant}: {left} rows left"
        finally:
            await pool.close()
    for key in ("purge WAL MB", "vacuum WAL MB"):
        out[key] /= 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--purge-days", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if not 0 < args.purge_days < args.days:
        parser.error("--purge-days must be between 1 and --days - 1")
    print(f"# bench/pg_retention.py: {os.cpu_count()} CPUs, load average"
          f" {os.getloadavg()[0]:.1f}; {args.rows:,} rows over {args.days} days,"
          f" purging the oldest {args.purge_days}")  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {"delete": [], "drop": []}
    cluster = PgCluster.start()
    try:
        n = 0
        for _ in range(args.rounds):
            for variant in results:
                n += 1
                dsn = cluster.create_database(f"bench_{n}")
                results[variant].append(asyncio.run(
                    _round(dsn, args.rows, args.days, args.purge_days, variant)))
                cluster.drop_database(f"bench_{n}")
                r = results[variant][-1]
                print(f"  {variant}: {r['rows']:,.0f} rows purged in {r['purge s']:.3f} s"
                      f" (+ vacuum {r['vacuum s']:.3f} s)", flush=True)  # fmt: skip
    finally:
        cluster.stop()
    keys = ("purge s", "purge WAL MB", "vacuum s", "vacuum WAL MB")
    print(f"\n# medians of {args.rounds} rounds")
    print(f"{'variant':8} {'rows purged':>12} " + " ".join(f"{k:>14}" for k in keys)
          + f" {'total s':>9}")  # fmt: skip
    for variant, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in (*keys, "rows")}
        total = statistics.median(r["purge s"] + r["vacuum s"] for r in runs)
        print(f"{variant:8} {med['rows']:>12,.0f} "
              + " ".join(f"{med[k]:>14.3f}" for k in keys) + f" {total:>9.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
