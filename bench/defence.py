"""The live pumping defence's cost per screened SMS, and its store reads per second.

    .venv/bin/python bench/defence.py                       # 1 and 2 processes, SQLite
    .venv/bin/python bench/defence.py --quick --tail-probe  # and fraud_tail alone
    .venv/bin/python bench/defence.py --nodes 2 --requests 4000
    .venv/bin/python bench/defence.py --herald-src /tmp/base/src   # another tree's herald

Screens ``--requests`` OTP sends (``LiveDefence.screen``, as ``POST /v1/messages``
with ``otp_messages`` on and ``POST /v1/verifications`` call it) through
``--nodes`` :class:`herald.defence.LiveDefence` on one SQLite file (each with
its own store: two intake processes), in turn, one at a time, ``--rate`` per
second of the callers' clock: numbers spread over many UK
ranges, as real traffic (allowed, the engine's usual path). Each allowed SMS
is accepted into the store (not timed) and delivered ``--receipt-after``
seconds later (not timed), so the receipts read back are as many as a live
herald's; ``--conversion`` of them are typed in 10-30 s after the send, through
a node chosen at random (stored, not timed; fed there with ``converted``, timed
with the screening that follows). Printed: the screening's cost per SMS (median, p90, p99 of the
wall time of ``screen``: the decision, its commit, and every poll of
receipts, other engines' decisions and conversions it makes; and the process's
CPU time during the calls, writer thread included, per SMS), and the store
calls per second of the callers' clock, by method, per node.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

COUNTRIES = (("44", "7700"), ("44", "7400"), ("44", "7900"))


class Counted:
    """A store whose calls are counted by method name."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return call


async def run(args: argparse.Namespace, nodes_n: int) -> dict[str, Any]:
    from herald.defence import LiveDefence
    from herald.ids import SortableIdGenerator
    from herald.rating import KeyKind, PriceKey, Rating
    from herald.store import NewMessage, Source, SQLiteConfig, SQLiteStore, Status, StatusUpdate

    rng = random.Random(args.seed)
    t0 = 1_800_000_000.0
    with tempfile.TemporaryDirectory(prefix="herald-defence-") as tmp:
        config = SQLiteConfig(data_dir=Path(tmp) / "data")
        stores = [SQLiteStore.open(config) for _ in range(nodes_n)]
        try:
            account = await stores[0].create_account("acme", t0, rate_limit=1e6,
                                                     bind_limit=2)  # fmt: skip
            counted = [Counted(store) for store in stores]
            nodes = [LiveDefence(c, SortableIdGenerator()) for c in counted]  # type: ignore[arg-type]
            for node in nodes:
                await node.prepare(t0)
            for c in counted:
                c.calls.clear()
            ids = SortableIdGenerator()
            price = Decimal("0.001")  # cheap domestic: a new account at --rate stays healthy
            costs: list[float] = []
            cpu = 0.0
            pending: list[tuple[float, str]] = []
            typing: list[tuple[float, str]] = []
            refused = 0
            for n in range(args.requests):
                now = t0 + n / args.rate
                cc, prefix = rng.choice(COUNTRIES)
                to = f"+{cc}{prefix}{rng.randrange(10**6):06d}"
                rating = Rating(PriceKey(KeyKind.COUNTRY, cc), price, 1, price, cc)
                message_id = ids.new_id(now)
                node = nodes[n % nodes_n]
                started, cpu_started = time.perf_counter(), time.process_time()
                screening = await node.screen(account_id=account.id, to=to, use_case="otp",
                                              message_id=message_id, rating=rating, now=now)
                costs.append(time.perf_counter() - started)
                cpu += time.process_time() - cpu_started
                refused += screening.refuse
                if not screening.refuse:
                    await stores[n % nodes_n].accept([NewMessage(
                        id=message_id, account_id=account.id, source=Source.HTTP, to=to,
                        sender="ACME", body=b"code", encoding="gsm7", data_coding=0,
                        segments=1, accepted_at=now, expires_at=now + 3600)])  # fmt: skip
                    pending.append((now + args.receipt_after, message_id))
                    if rng.random() < args.conversion:
                        typing.append((now + rng.uniform(10, 30), message_id))
                typed = [m for at, m in typing if at <= now]
                if typed:
                    typing = [(at, m) for at, m in typing if at > now]
                    for m in typed:
                        await stores[0].record_conversion(m, account.id, now)
                        where = rng.randrange(nodes_n)
                        started = time.perf_counter()
                        nodes[where].converted(m, now)
                        costs[-1] += time.perf_counter() - started
                due = [m for at, m in pending if at <= now]
                if due:
                    pending = [(at, m) for at, m in pending if at > now]
                    await stores[0].update_statuses(
                        [StatusUpdate(m, Status.DELIVERED, now) for m in due])
            seconds = args.requests / args.rate
            calls: Counter[str] = Counter()
            for c in counted:
                calls.update(c.calls)
            return {"costs": costs, "seconds": seconds, "calls": calls, "refused": refused,
                    "cpu": cpu}
        finally:
            for store in stores:
                await store.aclose()


async def tail_probe() -> str:
    """``fraud_tail`` on one SQLite store, 40 reads with nothing new and 40 after
    50 new engine decisions each."""
    from herald.store import FraudAction, FraudDecision, FraudReason, SQLiteConfig, SQLiteStore

    with tempfile.TemporaryDirectory(prefix="herald-defence-") as tmp:
        store = SQLiteStore.open(SQLiteConfig(data_dir=Path(tmp) / "data"))
        try:
            account = await store.create_account("acme", 1.8e9, rate_limit=1e6, bind_limit=1)
            cursor = (await store.fraud_tail(None)).cursor
            empty, full = [], []
            n = 0
            for _ in range(40):
                started = time.perf_counter()
                cursor = (await store.fraud_tail(cursor)).cursor
                empty.append(time.perf_counter() - started)
                for _ in range(50):
                    n += 1
                    await store.record_fraud_decision(FraudDecision(
                        f"d{n:06d}", account.id, 1.8e9 + n, "+447700900123", FraudAction.ALLOW,
                        (FraudReason("within_budget", "GB", {"excess": 0.1, "budget": 3.0}),),
                        True, "GB", 1000, "EUR", None, f"m{n}", {"use_case": "otp"}))
                started = time.perf_counter()
                tail = await store.fraud_tail(cursor)
                full.append(time.perf_counter() - started)
                cursor = tail.cursor
                assert len(tail.decisions) == 50
        finally:
            await store.aclose()
    return (f"fraud_tail: nothing new median {statistics.median(empty) * 1e6:.0f} us, "
            f"50 new decisions median {statistics.median(full) * 1e6:.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="SMS screened per run")
    parser.add_argument("--quick", action="store_true", help="500 SMS per run")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="SMS per second of the callers' clock")
    parser.add_argument("--receipt-after", type=float, default=5.0,
                        help="seconds from a send to its receipt")
    parser.add_argument("--conversion", type=float, default=0.8,
                        help="share of the codes sent that are typed in")
    parser.add_argument("--nodes", default="1,2", help="comma-separated: processes on one file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tail-probe", action="store_true",
                        help="time fraud_tail alone first (a tree that has it)")
    parser.add_argument("--herald-src", type=Path, help="import herald from this tree's src")
    args = parser.parse_args()
    if args.quick:
        args.requests = 500
    if args.requests > 200_000:
        parser.error("--requests: at most 200000")
    if args.herald_src:
        sys.path.insert(0, str(args.herald_src.resolve()))
    import herald

    print(f"herald from {Path(herald.__file__).parent}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.tail_probe:
        print(asyncio.run(tail_probe()))
    for nodes_n in (int(x) for x in args.nodes.split(",")):
        result = asyncio.run(run(args, nodes_n))
        costs = sorted(result["costs"])
        q = statistics.quantiles(costs, n=100)
        per_s = {name: round(count / result["seconds"] / nodes_n, 2)
                 for name, count in sorted(result["calls"].items())}
        print(f"nodes {nodes_n}: {len(costs)} screened ({result['refused']} refused), per SMS"
              " median "
              f" {statistics.median(costs) * 1e6:.0f} us, p90 {q[89] * 1e6:.0f} us, "
              f"p99 {q[98] * 1e6:.0f} us, CPU {result['cpu'] / len(costs) * 1e6:.0f} us;"
              f" store calls per node per second: {per_s}")


if __name__ == "__main__":
    main()
