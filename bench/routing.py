"""Routing decisions per second: what dispatch pays per claimed message to route it.

    .venv/bin/python bench/routing.py            # 200,000 decisions per case
    .venv/bin/python bench/routing.py --quick    # 20,000

Cases, each deciding for messages to distinct numbers (+49 17x, in a plan
range of Telekom Deutschland), one process, no I/O:

- ``prefix routes``: no rules, the ``[[routes]]`` table alone (as before rules);
- ``rules, uncached``: ``herald.routing.Router.decide`` with a least-cost
  rule priced by the example buy lists of operator-a and operator-b
  (``examples/``) behind five rules that do not match, with the network
  lookup and the country of the number per message;
- ``rules, live``: ``herald.routes.LiveRouting.decide`` as dispatch calls it,
  with its decision cache (hits after the first message per key);
- ``rules, +44 uncached``: as the second for +44 7700 numbers, whose country
  code several regions share (the country comes from ``phonenumbers``);
- ``explain``: a decision with its explanation (``herald routes explain``).

The peer is the plain prefix lookup of the first case. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from herald.intake import Network, NumberIndex, NumberingPlan  # noqa: E402
from herald.rating import PriceList, parse_price_list  # noqa: E402
from herald.routes import LiveRouting  # noqa: E402
from herald.routing import (  # noqa: E402
    ConnectorPrices,
    Route,
    RouteQuery,
    Router,
    RouteTable,
    country_of,
    parse_routes,
)
from herald.store import (  # noqa: E402
    Message,
    NumberTable,
    NumberTableKind,
    PriceSide,
    Priority,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StoredRoutes,
)

NOT_MATCHING = """
[[rule]]
name = "otp"
tags = ["otp"]
failover = ["operator-b"]
[[rule]]
name = "other-account"
accounts = ["someone-else"]
failover = ["operator-b"]
[[rule]]
name = "france"
countries = ["FR"]
failover = ["operator-b"]
[[rule]]
name = "bulk"
priorities = ["bulk"]
failover = ["operator-b"]
[[rule]]
name = "sunday-night"
days = ["sun"]
hours = [23, 0]
failover = ["operator-b"]
"""
ROUTES = NOT_MATCHING + """
[[rule]]
name = "least-cost"
least_cost = ["operator-a", "operator-b"]
"""
NOW = 1_800_000_000.0  # a Friday


def message(n: int, to: str) -> Message:
    return Message(
        id=f"06hh{n:022d}", account_id=1, source=Source.HTTP, to=to, sender="ACME", body=b"x",
        encoding="gsm7", data_coding=0, udhi=False, segments=1, reference=None, metadata=None,
        callback_url=None, registered_delivery=0, test=False, send_at=None,
        expires_at=NOW + 600, status=Status.QUEUED, error_code=None, error_permanent=False,
        accepted_at=NOW, queued_at=None, sent_at=None, done_at=None, attempt=1)


def timed(n: int, fn: Callable[[int], object]) -> float:
    """Microseconds per call of ``fn(k)``, k in 0..n-1 (best of 3)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for k in range(n):
            fn(k)
        best = min(best, time.perf_counter() - started)
    return best / n * 1e6


def buy_lists() -> dict[str, PriceList]:
    """The example buy lists of operator-a and operator-b (``examples/``)."""
    lists = {}
    for name in ("operator-a", "operator-b"):
        with (ROOT / "examples" / f"buy-{name}.csv").open(newline="", encoding="utf-8") as fh:
            lists[name] = parse_price_list(fh)
    return lists


async def live_routing(data: Path, plan: NumberingPlan, fallback: RouteTable) -> LiveRouting:
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    await store.put_routes(StoredRoutes(ROUTES, "bench", NOW))
    for name, prices in buy_lists().items():
        await store.put_price_list(prices.stored(PriceSide.BUY, name, NOW))
    await store.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(), len(plan),
                                             NOW))
    routing = LiveRouting(store, fallback, {"operator-a", "operator-b"}, lambda: NOW)
    await routing.refresh()
    await store.aclose()
    return routing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 decisions per case")
    n = 20_000 if parser.parse_args().quick else 200_000
    plan = NumberingPlan.build([("4917", Network("262", "01", "Telekom Deutschland")),
                                ("447700", Network("234", "30", "EE"))])
    index = NumberIndex(plan)
    fallback = RouteTable([Route("", ("operator-b",))])
    parsed = parse_routes(ROUTES)
    prices = ConnectorPrices(buy_lists())
    router = Router(parsed.rules, fallback=fallback, prices=prices, policy=parsed.health)
    de = [f"4917{k:09d}" for k in range(n)]
    uk = [f"447700{k:06d}" for k in range(n)]

    def uncached(numbers: list[str]) -> Callable[[int], object]:
        def one(k: int) -> object:
            to = numbers[k]
            query = RouteQuery(f"m{k}", "acme", to, "ACME", Priority.TRANSACTIONAL, None,
                               index.network_of(to), country_of(to))
            return router.decide(query, NOW)
        return one

    with tempfile.TemporaryDirectory() as tmp:
        live = asyncio.run(live_routing(Path(tmp) / "data", plan, fallback))
    messages = [message(k, de[k]) for k in range(n)]
    cases = [
        ("prefix routes", lambda k: fallback.lookup(de[k])),
        ("rules, uncached", uncached(de)),
        ("rules, live (cached)", lambda k: live.decide(messages[k])),
        ("rules, +44 uncached", uncached(uk)),
        ("explain", lambda k: router.decide(
            RouteQuery("m", "acme", de[k], "ACME", Priority.TRANSACTIONAL, None,
                       index.network_of(de[k]), "DE"), NOW, explain=True)),
    ]
    print(f"routing decisions, {n:,} per case, best of 3; 6 rules, the last one deciding")
    print(f"{'case':<24} {'us/decision':>12} {'decisions/s':>12}")
    for name, fn in cases:
        us = timed(n, fn)
        print(f"{name:<24} {us:>12.2f} {1e6 / us:>12,.0f}")


if __name__ == "__main__":
    main()
