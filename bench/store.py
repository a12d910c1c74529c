"""Store throughput: accepts/s and status/segment updates/s through the SQLite store.

    .venv/bin/python bench/store.py            # the full table (about a minute)
    .venv/bin/python bench/store.py --quick    # fewer messages, fewer settings

What runs, each on a fresh data directory in a tmp dir:

- ``accept xN``: concurrent callers each ``await store.accept(...)`` of N
  messages (1 = one HTTP request, 50 = a batch request), until all are in.
- ``lifecycle``: the writes dispatch and receipt correlation make for every
  message after it is accepted: ``claim`` (in chunks of 500), then per
  message ``record_segment`` (submit_sm_resp) and ``apply_receipt`` (the
  receipt; half of them arrive *before* the segment and are parked), so the
  message goes queued → sent → delivered, with a webhook URL on the account
  (two outbox events per message). Reported as updates/s (claims count one
  per message) and as complete messages/s.

The peer, measured in the same run on the same schema and disk: raw
``sqlite3`` in one thread doing the same inserts / updates with
``executemany``, one transaction per batch of the size herald's writer ended up
using (rows per commit), same ``synchronous`` mode. It is the ceiling for
this schema on this machine; ``herald/raw`` is the share of it the async,
group-committing store keeps. Figures move with the machine's load; compare
rows of one run. Nothing here is asserted.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from herald.ids import SortableIdGenerator
from herald.store import (
    NewMessage,
    ReceiptUpdate,
    SegmentRecord,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
)
from herald.store._sqlite_conn import migrate
from herald.store._sqlite_sql import (
    INSERT_MESSAGE,
    RECEIPT_APPLY,
    RECEIPT_PARK,
    RECORD_SEGMENT,
    row_from_message,
)

T0 = 1_800_000_000.0


@dataclass
class Result:
    name: str
    sync: str
    interval_ms: float
    callers: int
    ops: int
    seconds: float
    rows_per_commit: float
    p50_ms: float
    p99_ms: float
    raw_ops_per_s: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


def _messages(account_id: int, n: int) -> list[NewMessage]:
    ids = SortableIdGenerator()
    return [
        NewMessage(
            id=ids.new_id(T0 + i * 1e-4),
            account_id=account_id,
            source=Source.HTTP,
            to=f"+4477{i:08d}",
            sender="BENCH",
            body=b"Your code is 123456",
            encoding="gsm7",
            data_coding=0,
            segments=1,
            accepted_at=T0,
            expires_at=T0 + 86_400,
            reference=f"ref-{i}",
        )
        for i in range(n)
    ]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return (samples[0] * 1000, samples[0] * 1000) if samples else (0.0, 0.0)
    q = statistics.quantiles(samples, n=100)
    return q[49] * 1000, q[98] * 1000


def _open(tmp: Path, sync: str, interval: float) -> SQLiteStore:
    return SQLiteStore.open(
        SQLiteConfig(data_dir=tmp, synchronous=sync, commit_interval=interval)  # type: ignore[arg-type]
    )


async def _accept(
    tmp: Path, sync: str, interval: float, n: int, callers: int, per_call: int
) -> Result:
    store = _open(tmp, sync, interval)
    account = await store.create_account("bench", T0, rate_limit=1e6, bind_limit=1)
    messages = _messages(account.id, n)
    chunks = [messages[i : i + per_call] for i in range(0, n, per_call)]
    latencies: list[float] = []
    commits0 = store.commits

    async def caller(k: int) -> None:
        for chunk in chunks[k::callers]:
            t = time.perf_counter()
            await store.accept(chunk)
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(callers)))
    seconds = time.perf_counter() - start
    commits = store.commits - commits0
    await store.aclose()
    rows_per_commit = n / commits
    raw = _raw_accept(tmp / "raw", sync, [row_from_message(m) for m in messages], rows_per_commit)
    p50, p99 = _percentiles(latencies)
    return Result(
        f"accept x{per_call}", sync, interval * 1000, callers, n, seconds, rows_per_commit,
        p50, p99, raw,
    )  # fmt: skip


async def _lifecycle(tmp: Path, sync: str, interval: float, n: int, callers: int) -> Result:
    store = _open(tmp, sync, interval)
    account = await store.create_account(
        "bench", T0, rate_limit=1e6, bind_limit=1, callback_url="http://127.0.0.1:9/hook"
    )
    messages = _messages(account.id, n)
    for i in range(0, n, 1000):
        await store.accept(messages[i : i + 1000])
    latencies: list[float] = []
    commits0, writes0 = store.commits, store.writes
    claimed: asyncio.Queue[str | None] = asyncio.Queue()

    async def claimer() -> None:
        for _ in range(n):  # bounded: at most one claim per message
            batch = await store.claim(500, T0 + 1, lease=300)
            if not batch:
                break
            for m in batch:
                claimed.put_nowait(m.id)
        for _ in range(callers):
            claimed.put_nowait(None)

    async def worker() -> None:
        while (mid := await claimed.get()) is not None:
            key = mid[-12:]
            t = time.perf_counter()
            if key[-1] in "02468ace":  # the receipt beats the submit_sm_resp: parked
                await store.apply_receipts([ReceiptUpdate("up", key, Status.DELIVERED, T0 + 3)])
                await store.record_segments([SegmentRecord(mid, 0, "up", key.upper(), key, T0 + 2,
                                           check_at=T0 + 3602)])
            else:
                await store.record_segments([SegmentRecord(mid, 0, "up", key.upper(), key, T0 + 2,
                                           check_at=T0 + 3602)])
                await store.apply_receipts([ReceiptUpdate("up", key, Status.DELIVERED, T0 + 3)])
            latencies.append((time.perf_counter() - t) / 2)

    start = time.perf_counter()
    await asyncio.gather(claimer(), *(worker() for _ in range(callers)))
    seconds = time.perf_counter() - start
    commits = store.commits - commits0
    writes = store.writes - writes0
    check = await store.get_message(messages[-1].id)
    assert check.status is Status.DELIVERED, check
    await store.aclose()
    raw = _raw_lifecycle(tmp / "raw", sync, messages, writes / commits)
    p50, p99 = _percentiles(latencies)
    return Result(
        "lifecycle", sync, interval * 1000, callers, 3 * n, seconds, writes / commits, p50, p99,
        raw,
    )  # fmt: skip


# -- the peer: raw sqlite3, same schema, same statements, one thread ------------------


def _raw_connect(tmp: Path, sync: str) -> sqlite3.Connection:
    tmp.mkdir()
    config = SQLiteConfig(data_dir=tmp, synchronous=sync)  # type: ignore[arg-type]
    migrate(config.path, config)
    conn = sqlite3.connect(config.path, isolation_level=None)
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute(
        "INSERT INTO accounts (name, created_at, rate_limit, bind_limit, callback_url)"
        " VALUES ('bench', 0, 1, 1, 'http://127.0.0.1:9/hook')"
    )
    return conn


def _raw_accept(tmp: Path, sync: str, rows: list[tuple[object, ...]], batch: float) -> float:
    conn = _raw_connect(tmp, sync)
    size = max(1, round(batch))
    start = time.perf_counter()
    for i in range(0, len(rows), size):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_MESSAGE, rows[i : i + size])
        conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return len(rows) / seconds


def _raw_lifecycle(tmp: Path, sync: str, messages: list[NewMessage], batch: float) -> float:
    conn = _raw_connect(tmp, sync)
    conn.executemany(INSERT_MESSAGE, [row_from_message(m) for m in messages])
    # Writes per commit in herald's run, in messages (three writes each).
    size = max(1, round(batch / 3))
    start = time.perf_counter()
    for i in range(0, len(messages), size):
        chunk = messages[i : i + size]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE messages SET status = 1, queued_at = ?2, due_at = ?3, attempt = attempt + 1"
            " WHERE id = ?1",
            [(m.id, T0 + 1, T0 + 300) for m in chunk],
        )
        conn.executemany(
            RECORD_SEGMENT,
            [(m.id, 0, "up", m.id[-12:].upper(), m.id[-12:], T0 + 2, T0 + 3602) for m in chunk],
        )
        receipts = [("up", m.id[-12:], Status.DELIVERED, None, T0 + 3) for m in chunk]
        conn.executemany(RECEIPT_APPLY, receipts)
        conn.executemany(RECEIPT_PARK, receipts)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return 3 * len(messages) / seconds


def _print(results: list[Result]) -> None:
    head = (
        f"{'scenario':<13}{'sync':<7}{'wait ms':>8}{'callers':>8}{'ops':>8}{'ops/s':>10}"
        f"{'rows/commit':>12}{'p50 ms':>8}{'p99 ms':>8}{'raw ops/s':>11}{'herald/raw':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.name:<13}{r.sync:<7}{r.interval_ms:>8.1f}{r.callers:>8}{r.ops:>8}{r.rate:>10,.0f}"
            f"{r.rows_per_commit:>12.0f}{r.p50_ms:>8.2f}{r.p99_ms:>8.2f}"
            f"{r.raw_ops_per_s:>11,.0f}{r.rate / r.raw_ops_per_s:>11.2f}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="5,000 messages, fewer settings")
    parser.add_argument("--dir", type=Path, help="where the databases go (default: a tmp dir)")
    args = parser.parse_args()
    n = 5_000 if args.quick else args.messages
    syncs: list[Literal["NORMAL", "FULL"]] = ["NORMAL"] if args.quick else ["NORMAL", "FULL"]
    intervals = [0.0] if args.quick else [0.0, 0.002]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmpdir:
        base = Path(tmpdir)
        print(
            f"# {n:,} messages per run; python {sys.version.split()[0]},"
            f" sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus, data in {base}"
        )
        k = 0
        for sync in syncs:
            for interval in intervals:
                for callers, per_call in ((64, 1), (512, 1), (64, 50)):
                    k += 1
                    results.append(
                        await _accept(base / f"r{k}", sync, interval, n, callers, per_call)
                    )
                for callers in (64, 512):
                    k += 1
                    results.append(await _lifecycle(base / f"r{k}", sync, interval, n, callers))
    _print(results)


if __name__ == "__main__":
    asyncio.run(main())
