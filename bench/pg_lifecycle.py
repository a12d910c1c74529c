"""What the message lifecycle costs the PostgreSQL store loop, and how best to run it.

    .venv/bin/python bench/pg_lifecycle.py                  # 3 rounds of 8 s per variant
    .venv/bin/python bench/pg_lifecycle.py --quick          # 1 round of 3 s
    .venv/bin/python bench/pg_lifecycle.py --rounds 5 --seconds 10 --workers 4

The loop is bench/cluster.py's, on one node: each worker accepts a batch of
100 (one statement) for its connector, then twice claims 50 and completes
them as ``sent``. Every message belongs to an account with a callback URL and
is charged (a CDR) and has its part recorded, so the step to ``sent`` emits
what it does in production: a webhook event (the account hears ``sent``),
the CDR's buy price (its part's connector has a buy list), the message leaves
the queue and waits for its receipt (``awaiting_receipts``). Variants, each
on a fresh database of one private cluster (fsync and synchronous_commit
on), run in turns round after round so that the machine's load weighs on
each alike:

- ``none``: no lifecycle (the dispatch core alone: emits nothing);
- ``triggers``: the store's statement-level triggers (store/postgres/_lifecycle.py),
  with the commit watchers' (store/postgres/_watch.py: a notice and a
  ``pg_notify`` per statement that writes outbox events or ends messages);
- ``unwatched``: ``triggers`` without the commit watchers' triggers (what they cost);
- ``cte``: no triggers; the completion statement itself carries the emits as
  data-modifying CTEs (one statement, the same conditions): what issuing the
  lifecycle from Python as set-based statements would cost at best (the
  completion's own emits only; a receipt's roll-up would need its own).

Reported per variant: completed msg/s (median of the rounds, and the range),
server CPU µs per message (the postmaster's children: the pool's backends),
and a check that each variant wrote one webhook event and priced each CDR
(``none``: none). Figures move with the machine's load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from herald.ids import SortableIdGenerator  # noqa: E402
from herald.store import NewMessage, Source, Status, StatusEvents  # noqa: E402
from herald.store.lifecycle import Emit  # noqa: E402
from herald.store.postgres import (  # noqa: E402
    Completion,
    DispatchQueue,
    connection,
    create_pool,
    install_lifecycle,
    migrate,
)
from herald.store.postgres._lifecycle import (  # noqa: E402
    emit_condition,
    webhook_condition,
)
from herald.store.postgres._sql import COMPLETE  # noqa: E402
from peers.postgres import PgCluster  # noqa: E402

ACCEPT_BATCH = 100
CLAIM_BATCH = 50
LEASE = 60.0
VARIANTS = ("none", "triggers", "unwatched", "cte")

_SENT, _FINAL = int(Status.SENT), int(Status.DELIVERED)

# The completion with the emits of the step as data-modifying CTEs over the
# rows it marked (RETURNING gives the new row; the status before is read in
# the same snapshot). Only what the bench's steps need beyond the queue exit
# (which COMPLETE does): the wait for a receipt (awaiting_receipts), the
# webhook event and the buy price.
COMPLETE_WITH_EMITS = COMPLETE.replace(
    "), marked AS (",
    "), before AS (SELECT m.seq, m.status FROM messages m JOIN gone g ON g.seq = m.seq"
    "), marked AS (",
).replace(
    "    RETURNING m.seq\n)",
    "    RETURNING m.seq, m.id, m.account_id, m.status, m.callback_url, m.webhook_events,"
    " m.test, m.sent_at, m.done_at, m.segments, m.expires_at\n"
    "), steps AS (SELECT n.*, b.status AS old_status FROM marked n JOIN before b"
    " ON b.seq = n.seq"
    "), awaited AS (\n"
    "    INSERT INTO awaiting_receipts (seq, expires_at) SELECT seq, expires_at FROM steps\n"
    f"    WHERE status = {_SENT} AND old_status < {_SENT} ON CONFLICT DO NOTHING\n"
    "), hooks AS (\n"
    "    INSERT INTO outbox (channel, kind, account_id, subject_id, status, url, created_at,"
    " next_attempt_at)\n"
    "    SELECT 0, 0, n.account_id, n.id, n.status, u.url, u.at, u.at\n"
    "    FROM steps n LEFT JOIN accounts a ON a.id = n.account_id\n"
    "    CROSS JOIN LATERAL (SELECT coalesce(n.callback_url, a.callback_url) AS url,\n"
    "        coalesce(n.webhook_events, a.webhook_events) AS events,\n"
    f"        CASE WHEN n.status >= {_FINAL} THEN n.done_at ELSE n.sent_at END AS at) u\n"
    f"    WHERE {emit_condition(Emit.WEBHOOK, 'n.old_status', 'n.status')}\n"
    f"      AND {webhook_condition('n.status', 'u.url', 'u.events', 'n.test')}\n"
    "), priced AS (\n"
    "    UPDATE cdrs c SET connector = x.connector,\n"
    "        buy = (div(x.t, 10000) + CASE WHEN mod(x.t, 10000) > 5000 OR (mod(x.t, 10000) = 5000"
    " AND mod(div(x.t, 10000), 2) = 1) THEN 1 ELSE 0 END)::bigint\n"
    "    FROM (SELECT b.message_id, f.connector, n.segments::numeric * coalesce(\n"
    "          (SELECT price FROM prices WHERE side = 1 AND owner = f.connector AND kind = 0"
    " AND key = b.network),\n"
    "          (SELECT price FROM prices WHERE side = 1 AND owner = f.connector AND kind = 1"
    " AND key = b.country),\n"
    "          (SELECT price FROM prices WHERE side = 1 AND owner = f.connector AND kind = 2"
    " AND key = '')) AS t\n"
    "        FROM steps n JOIN cdrs b ON b.message_id = n.id\n"
    "        CROSS JOIN LATERAL (SELECT s.connector FROM segments s WHERE s.message_seq = n.seq"
    " ORDER BY s.idx LIMIT 1) f\n"
    f"        WHERE {emit_condition(Emit.BUY_PRICE, 'n.old_status', 'n.status')}) x\n"
    "    WHERE c.message_id = x.message_id\n"
    ")",
)


async def _prepare(dsn: str, variant: str, connectors: int) -> int:
    """Migrate (and install the triggers or not); an account with a callback
    URL, a balance, and a buy price per connector. Returns the account id."""
    async with connection(dsn) as conn:
        await migrate(conn)
        if variant in ("triggers", "unwatched"):
            await install_lifecycle(conn)
        if variant != "triggers":  # the commit watchers' (migration _V10_MESSAGES)
            await conn.execute("DROP TRIGGER outbox_watch ON outbox;"
                               " DROP TRIGGER messages_watch_finals ON messages")
        account: int = await conn.fetchval(
            "INSERT INTO accounts (name, created_at, rate_limit, bind_limit, callback_url)"
            " VALUES ('acme', 0, 'Infinity', 1, 'https://hooks.example/x') RETURNING id")
        await conn.execute("UPDATE accounts SET webhook_events = $1", int(StatusEvents.ALL))
        await conn.execute("INSERT INTO balances (account_id, balance) VALUES ($1, 10^15)",
                           account)  # fmt: skip
        for c in range(connectors):
            await conn.execute("INSERT INTO prices VALUES (1, $1, 2, '', 300000000)", f"c{c}")
        return account


def _server_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster's live children (the pool's backends)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


async def _run(dsn: str, variant: str, workers: int, seconds: float, postmaster: int) -> dict[
        str, float]:
    account = await _prepare(dsn, variant, workers)
    pool = await create_pool(dsn, min_size=workers, max_size=workers)
    queue = DispatchQueue(pool, "bench")
    ids = SortableIdGenerator()
    completed = 0
    cpu0 = _server_cpu(postmaster)
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal completed
        connector = f"c{index}"
        while time.perf_counter() < deadline:
            now = time.time()
            batch = [
                NewMessage(
                    id=ids.new_id(now), account_id=account, source=Source.HTTP,
                    to=f"+4477009{n:05d}", sender="ACME", body=b"Your code is 123456",
                    encoding="gsm7", data_coding=0, segments=1,
                    accepted_at=now, expires_at=now + 3600,
                )
                for n in range(ACCEPT_BATCH)
            ]
            async with pool.acquire() as conn, conn.transaction():  # a charged accept
                await conn.execute(
                    "INSERT INTO cdrs (message_id, account_id, accepted_at, country, segments,"
                    " price_key, sell) SELECT id, $2, $3, '44', 1, 'default', 50000"
                    " FROM unnest($1::text[]) AS id", [m.id for m in batch], account, now)
                await DispatchQueue(conn, "bench").accept(batch, [connector] * ACCEPT_BATCH)
                # Each part as recorded upstream by the time its message is
                # complete (the CDR's connector comes from it); without the
                # triggers' roll-up, which would mark it sent here already.
                await conn.execute("SET LOCAL session_replication_role = replica")
                await conn.execute(
                    f"INSERT INTO segments (message_seq, idx, connector, upstream_id,"
                    f" upstream_key, status, updated_at) SELECT seq, 0, $2, id, id, {_SENT}, $3"
                    " FROM messages WHERE id = ANY ($1::text[])",
                    [m.id for m in batch], connector, now)
            for _ in range(ACCEPT_BATCH // CLAIM_BATCH):
                claims = await queue.claim(connector, CLAIM_BATCH, now, LEASE)
                if variant == "cte":
                    rows = await pool.fetch(
                        COMPLETE_WITH_EMITS, "bench", [c.seq for c in claims],
                        [c.attempt for c in claims], [_SENT] * len(claims),
                        [None] * len(claims), [now] * len(claims))
                    completed += len(rows)
                else:
                    ended = await queue.complete(
                        [Completion(c.seq, c.attempt, Status.SENT) for c in claims], now)
                    completed += len(ended)  # not "+= len(await ...)": a lost update

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(workers)))
    elapsed = time.perf_counter() - start
    cpu = _server_cpu(postmaster) - cpu0
    hooks = await pool.fetchval("SELECT count(*) FROM outbox")
    priced = await pool.fetchval("SELECT count(*) FROM cdrs WHERE buy IS NOT NULL")
    queued = await pool.fetchval("SELECT count(*) FROM dispatch_queue")
    await pool.close()
    return {"rate": completed / elapsed, "server_us": cpu / max(1, completed) * 1e6,
            "hooks": hooks / max(1, completed), "priced": priced / max(1, completed),
            "left_queued": queued}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 3.0
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    cluster = PgCluster.start()
    try:
        postmaster = int((cluster.root / "data" / "postmaster.pid").read_text().split()[0])
        n = 0
        for _ in range(args.rounds):
            for variant in VARIANTS:
                n += 1
                dsn = cluster.create_database(f"bench_{n}")
                results[variant].append(asyncio.run(
                    _run(dsn, variant, args.workers, args.seconds, postmaster)))
                cluster.drop_database(f"bench_{n}")
    finally:
        cluster.stop()
    print(f"store loop + the step to 'sent', {args.workers} workers, {args.rounds} rounds"
          f" of {args.seconds:g} s per variant (cores: {os.cpu_count()})")
    print(f"{'variant':<10} {'msg/s median':>13} {'range':>15} {'server us/msg':>14}"
          f" {'hooks/msg':>10} {'priced/msg':>11}")
    for variant, runs in results.items():
        rates = [r["rate"] for r in runs]
        print(f"{variant:<10} {statistics.median(rates):>13,.0f}"
              f" {min(rates):>7,.0f}-{max(rates):<7,.0f}"
              f" {statistics.median(r['server_us'] for r in runs):>14.0f}"
              f" {statistics.median(r['hooks'] for r in runs):>10.2f}"
              f" {statistics.median(r['priced'] for r in runs):>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
