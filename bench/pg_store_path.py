"""The PostgreSQL store's path of a message, without the nodes: server CPU per message.

    .venv/bin/python bench/pg_store_path.py                        # this tree, 3 rounds
    .venv/bin/python bench/pg_store_path.py --trees /tmp/base/src src --rounds 4
    .venv/bin/python bench/pg_store_path.py --batch 10 --source http

What ``herald serve``'s dispatcher asks of the store for each message, through
the store port (``PostgresStore``): accept a batch (one ``accept`` of the
batch for SMPP; ``--source http``: one ``accept`` per message, at once, as
HTTP single sends share a commit), claim it, record its part, apply its
``delivered`` receipt and, for SMPP (``registered_delivery``), claim and
complete the deliver_sm receipt that the lifecycle wrote for the customer.
``--loops`` such loops run at once. Each tree (``--trees``: herald's src
directories, run in turns round after round so that the machine's load weighs
on each alike) runs in a process of its own on a fresh database of one private
cluster (fsync and synchronous_commit on), migrated by that tree.

Reported per tree: the server's CPU per message (the postmaster's children),
median and range of the rounds, and msg/s (moves with the machine's load).
End to end with the nodes: bench/e2e_cluster.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pg_lifecycle import _server_cpu

_CHILD = "--child"


async def _path(url: str, postmaster: int, count: int, batch: int, loops: int,
                source: str) -> dict[str, float]:
    # herald from the tree on PYTHONPATH (this process is that tree's).
    from herald.ids import SortableIdGenerator
    from herald.store import (
        Channel,
        NewMessage,
        ReceiptUpdate,
        SegmentRecord,
        Source,
        Status,
    )
    from herald.store.postgres import PostgresStore

    store = await PostgresStore.open(url, max_connections=8)
    account = await store.create_account("acme", time.time(), rate_limit=1e9, bind_limit=10)
    ids = SortableIdGenerator()
    smpp = source == "smpp"
    started = done = 0

    async def loop() -> None:
        nonlocal started, done
        while started < count:
            started += batch
            now = time.time()
            messages = [NewMessage(
                id=ids.new_id(now), account_id=account.id,
                source=Source.SMPP if smpp else Source.HTTP, to=f"+4477009{n:05d}",
                sender="ACME", body=b"Your code is 123456", encoding="gsm7", data_coding=0,
                segments=1, accepted_at=now, expires_at=now + 3600,
                registered_delivery=1 if smpp else 0) for n in range(batch)]  # fmt: skip
            if smpp:
                await store.accept(messages)
            else:
                await asyncio.gather(*(store.accept([m]) for m in messages))
            claimed = await store.claim(batch, now, 60.0)
            await store.record_segments([SegmentRecord(m.id, 0, "up", f"U{m.id}", f"u{m.id}", now)
                                         for m in claimed])  # fmt: skip
            await store.apply_receipts([ReceiptUpdate("up", f"u{m.id}", Status.DELIVERED, now)
                                        for m in claimed])  # fmt: skip
            if smpp:
                events = await store.claim_outbox(Channel.SMPP, now, 30.0, 10 * batch)
                await store.complete_outbox([e.id for e in events])
            done += len(claimed)

    cpu, start = _server_cpu(postmaster), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(loops)))
    elapsed, cpu = time.perf_counter() - start, _server_cpu(postmaster) - cpu
    await store.aclose()
    return {"messages": done, "rate": done / elapsed, "server_us": cpu / max(1, done) * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", nargs="+", default=["src"], metavar="SRC",
                        help="herald src directories, measured in turns (default: src)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=6000, help="messages per tree and round")
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--source", choices=("smpp", "http"), default="smpp")
    parser.add_argument(_CHILD, nargs=2, metavar=("URL", "POSTMASTER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_path(args.child[0], int(args.child[1]), args.count,
                                           args.batch, args.loops, args.source))))
        return 0

    from peers.postgres import PgCluster

    trees = [str(Path(t).resolve()) for t in args.trees]
    results: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    print(f"# store path: {args.count} {args.source} messages per round, batch {args.batch},"
          f" {args.loops} loops; load average before: {os.getloadavg()}", flush=True)
    cluster = PgCluster.start()
    try:
        postmaster = cluster.server_pid
        assert postmaster is not None
        n = 0
        for r in range(args.rounds):
            for tree in trees:
                n += 1
                url = cluster.create_database(f"path_{n}")
                out = subprocess.run(
                    [sys.executable, __file__, _CHILD, url, str(postmaster),
                     "--count", str(args.count), "--batch", str(args.batch),
                     "--loops", str(args.loops), "--source", args.source],
                    env={**os.environ, "PYTHONPATH": tree}, capture_output=True, text=True,
                    check=True, timeout=900)
                got = json.loads(out.stdout.strip().splitlines()[-1])
                results[tree].append(got)
                print(f"# round {r + 1} {tree}: {got['rate']:,.0f} msg/s,"
                      f" server {got['server_us']:.0f} µs/msg", flush=True)
    finally:
        cluster.stop()
    print("| tree | server µs/msg (median, range) | msg/s (median, range) |")
    print("|---|---|---|")
    for tree, runs in results.items():
        us, rate = [g["server_us"] for g in runs], [g["rate"] for g in runs]
        print(f"| {tree} | {statistics.median(us):.0f} ({min(us):.0f}-{max(us):.0f}) |"
              f" {statistics.median(rate):,.0f} ({min(rate):,.0f}-{max(rate):,.0f}) |")
    print(f"# load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
