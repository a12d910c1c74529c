"""SQL statement runs per message in the delivery process's store writes (SQLite).

    PYTHONPATH=src .venv/bin/python bench/lifecycle_statements.py            # 4,000 messages
    PYTHONPATH=src .venv/bin/python bench/lifecycle_statements.py --batch 50 --rounds 5
    PYTHONPATH=/other/tree/src .venv/bin/python bench/lifecycle_statements.py   # its peer

What the delivery process writes for each message after its accept, through
the store's own API on a fresh data directory (the writer on the loop, as
``herald serve`` runs it): the claim (``claim``, up to ``--batch`` a call),
the segment record (``record_segments``: a part's submit_sm_resp), the
receipt (``apply_receipts``: delivered), the webhook sender's claim of the
outbox (``claim_outbox``) and its completion (``complete_outbox``). Each
phase is written ``--batch`` messages a transaction, the segment records of
one slice together with the receipts of the slice before it (as they
interleave live), and one message in ``--parked`` (per cent) has its receipt
read before its segment record (parked, then applied by the record).

Counted on the writer's connection in a first round: statement runs
(``sqlite3``'s trace callback, which fires for every trigger program entered
and every statement in it too), rows changed (``total_changes``, triggers'
and temporary tables' rows included) and transactions, per message. Then the
loop thread's CPU per message by phase (``thread_time`` around each write,
the asyncio machinery included), medians of ``--rounds`` rounds run without
the trace callback (it costs a Python call per statement run); each round on
a fresh store. The account hears
final statuses only (herald's default), so each message makes one webhook
event. Nothing is asserted; figures move with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from herald.ids import SortableIdGenerator
from herald.store import (
    Channel,
    NewMessage,
    ReceiptUpdate,
    SegmentRecord,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
)

T0 = 1_800_000_000.0
PHASES = ("claim", "segment+receipt", "outbox claim", "outbox done")


class Trace:
    """Statement runs and rows changed on one connection, by phase (``count``: the
    trace callback costs the interpreter a call per statement run, so the rounds
    that time the CPU run without it)."""

    def __init__(self, conn: object, count: bool) -> None:
        self.conn = conn
        self.phase = "setup"
        self.runs: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.commits: Counter[str] = Counter()
        self.cpu: dict[str, float] = {}
        self._changes = conn.total_changes  # type: ignore[attr-defined]
        if count:
            conn.set_trace_callback(self._traced)  # type: ignore[attr-defined]

    def _traced(self, sql: str) -> None:
        self.runs[self.phase] += 1
        if sql == "COMMIT":
            self.commits[self.phase] += 1

    def enter(self, phase: str) -> None:
        changes = self.conn.total_changes  # type: ignore[attr-defined]
        self.rows[self.phase] += changes - self._changes
        self._changes = changes
        self.phase = phase


def _messages(account_id: int, n: int) -> list[NewMessage]:
    ids = SortableIdGenerator()
    return [
        NewMessage(id=ids.new_id(T0 + i * 1e-4), account_id=account_id, source=Source.HTTP,
                   to=f"+4477{i:08d}", sender="BENCH", body=b"Your code is 123456",
                   encoding="gsm7", data_coding=0, segments=1, accepted_at=T0,
                   expires_at=T0 + 86_400)
        for i in range(n)
    ]


async def one_round(n: int, batch: int, parked: float, count: bool) -> Trace:
    with tempfile.TemporaryDirectory(prefix="herald-stmts-") as tmp:
        store = SQLiteStore.open(SQLiteConfig(data_dir=Path(tmp), writer="loop"))
        try:
            account = await store.create_account("bench", T0, rate_limit=1e6, bind_limit=1,
                                                 callback_url="http://127.0.0.1:9/hook")
            messages = _messages(account.id, n)
            for i in range(0, n, 1000):
                await store.accept(messages[i:i + 1000])
            trace = Trace(store._writer._conn, count)  # type: ignore[attr-defined]  # the loop's
            every = round(100 / parked) if parked > 0 else 0

            async def timed(phase: str, write: object) -> None:
                trace.enter(phase)
                t = time.thread_time()
                await write  # type: ignore[misc]
                trace.cpu[phase] = trace.cpu.get(phase, 0.0) + time.thread_time() - t
                trace.enter("setup")

            claimed: list[str] = []
            while len(claimed) < n:
                got: list[str] = []

                async def claim(into: list[str] = got) -> None:
                    into += [m.id for m in await store.claim(batch, T0 + 1, 60.0)]

                await timed("claim", claim())
                if not got:
                    break
                claimed += got
            slices = [claimed[i:i + batch] for i in range(0, len(claimed), batch)]

            def receipts(ids: list[str]) -> list[ReceiptUpdate]:
                return [ReceiptUpdate("up", f"k{m}", Status.DELIVERED, T0 + 3) for m in ids]

            def records(ids: list[str]) -> list[SegmentRecord]:
                return [SegmentRecord(m, 0, "up", f"K{m}", f"k{m}", T0 + 2, check_at=T0 + 3602)
                        for m in ids]

            early = {m for k, m in enumerate(claimed) if every and k % every == 0}
            previous: list[str] = []
            for ids in [*slices, []]:
                # one transaction: this slice's records, the last slice's receipts (and the
                # early receipts of this slice, parked before their records)
                async def both(ids: list[str] = ids, previous: list[str] = previous) -> None:
                    writes = []
                    if ids:
                        writes.append(store.apply_receipts(receipts([m for m in ids
                                                                      if m in early])))
                        writes.append(store.record_segments(records(ids)))
                    writes.append(store.apply_receipts(receipts([m for m in previous
                                                                  if m not in early])))
                    await asyncio.gather(*writes)

                await timed("segment+receipt", both())
                previous = ids
            while True:
                events: list[int] = []

                async def claim_outbox(into: list[int] = events) -> None:
                    into += [e.id for e in await store.claim_outbox(Channel.WEBHOOK, T0 + 5,
                                                                    30.0, batch)]

                await timed("outbox claim", claim_outbox())
                if not events:
                    break
                await timed("outbox done", store.complete_outbox(events))
            delivered = await store.get_messages(claimed)
            final = Counter(m.status for m in delivered.values())
            if final != Counter({Status.DELIVERED: n}):
                raise SystemExit(f"not every message delivered: {final}")
            return trace
        finally:
            await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=4_000)
    parser.add_argument("--batch", type=int, default=20, help="messages a transaction")
    parser.add_argument("--parked", type=float, default=5.0,
                        help="per cent of receipts read before their segment record")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1,000 messages, one round")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds = 1_000, 1
    import herald
    print(f"herald from {Path(herald.__file__).parent}; {args.messages} messages, "
          f"{args.batch} a transaction, {args.parked:g} % parked, {args.rounds} rounds")
    counted = asyncio.run(one_round(args.messages, args.batch, args.parked, True))
    traces = [asyncio.run(one_round(args.messages, args.batch, args.parked, False))
              for _ in range(args.rounds)]
    n = args.messages
    print(f"{'phase':<18}{'runs/msg':>10}{'rows/msg':>10}{'txn/msg':>9}{'cpu us/msg':>12}"
          f"{'(range)':>16}")
    for phase in (*PHASES, "total"):
        def of(counter: Mapping[str, float], phase: str = phase) -> float:
            return (sum(counter.get(p, 0) for p in PHASES) if phase == "total"
                    else counter.get(phase, 0))
        t = counted
        cpus = sorted(of(tr.cpu) / n * 1e6 for tr in traces)
        print(f"{phase:<18}{of(t.runs) / n:>10.2f}{of(t.rows) / n:>10.2f}"
              f"{of(t.commits) / n:>9.3f}{statistics.median(cpus):>12.1f}"
              f"{f'{cpus[0]:.1f}-{cpus[-1]:.1f}':>16}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
