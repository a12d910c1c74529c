"""Number tables: lookups per second and memory with a 100,000-prefix numbering
plan and 1,000,000 ported numbers, and what importing and reloading them costs.

    .venv/bin/python bench/number_tables.py            # 100,000 prefixes, 1,000,000 ported
    .venv/bin/python bench/number_tables.py --quick    # 10,000 and 100,000: a few seconds

The tables are synthetic, generated from a fixed seed (``--seed``): 1,000
networks; plan prefixes of 3 to 9 digits under 1- to 3-digit country codes
that begin with 1..8 (plus ``4917``, so German mobile numbers are in it);
ported numbers of 11 or 12 digits under random plan prefixes. Lookups are
made with E.164 digit strings of three kinds, each a list of distinct
numbers: *ported* (in the ported table), *plan only* (under a plan prefix,
not ported), *miss* (beginning with 9: no prefix covers it).

Measured in one run, one process:

1. import: CSV text -> ``parse_plan`` / ``parse_ported`` (parse, check, build
   the index: what ``herald numbers import-*`` does besides reading the file),
   the stored form's size, the store write (SQLite, as the CLI does), and the
   reload a running herald makes (``NumberTables.refresh``: store read,
   ``from_bytes`` on a worker thread, the swap) with the longest event-loop
   stall a 1 ms ticker saw meanwhile (and with no reload, for reference).
2. memory: ``tracemalloc`` of the loaded index (what every herald process
   holds) and the peak while loading; the RSS growth of loading it in a
   fresh interpreter (the dict peer: building it from the CSV lines).
3. lookups per second of ``NumberIndex.network_of``.
4. the per-message cost at acceptance: ``normalize_destination`` of a number
   whose ``phonenumbers`` verdict is cached, without and with the tables and
   a route check (the part ``bench/api.py``'s single sends now pay).

Peers: *dict*, the plain-Python way on the same data: a ``dict`` of ported
number strings and a ``dict`` of prefixes probed from the longest (what
``herald.routing`` does for routes), its memory by ``tracemalloc`` too;
``phonenumbers.carrier.name_for_number`` on pre-parsed numbers, with its own
carrier prefix data (not these tables): what a library lookup costs. Nothing
is asserted; figures move with the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import carrier

from herald.intake import (
    DestinationRules,
    IntakePolicy,
    Network,
    NumberIndex,
    NumberingPlan,
    PortedNumbers,
    normalize_destination,
    parse_plan,
    parse_ported,
)
from herald.numbers import NumberTables
from herald.store import NumberTable, NumberTableKind, SQLiteConfig, SQLiteStore

NETWORKS = 1_000
#: Country codes the plan uses: 1 to 3 digits beginning with 1..8 (9 is for misses).
CODES = [str(c) for c in (1, 7, 20, 27, 30, 31, 33, 34, 39, 44, 46, 49, 52, 55, 61, 81, 86,
                          234, 254, 351, 380, 420, 598, 852, 880)]  # fmt: skip


@dataclass
class Tables:
    plan_csv: list[str]
    ported_csv: list[str]
    plan: dict[str, Network]
    ported: dict[str, Network]
    probes: dict[str, list[str]]


def _digits(rnd: random.Random, count: int) -> str:
    return str(rnd.randrange(10**count)).zfill(count) if count else ""


def synthetic(prefixes: int, ported: int, probes: int, seed: int) -> Tables:
    rnd = random.Random(seed)
    networks = [Network(f"{rnd.randint(200, 799):03d}", f"{rnd.randint(0, 99):02d}", f"Net {k}")
                for k in range(NETWORKS)]  # fmt: skip
    plan: dict[str, Network] = {"4917": networks[0]}
    while len(plan) < prefixes:
        code = rnd.choice(CODES)
        plan.setdefault(code + _digits(rnd, rnd.randint(2, 9 - len(code))), rnd.choice(networks))
    names = list(plan)
    moved: dict[str, Network] = {}
    while len(moved) < ported:
        prefix = rnd.choice(names)
        number = prefix + _digits(rnd, rnd.randint(11, 12) - len(prefix))
        net = rnd.choice(networks)
        moved.setdefault(number, Network(net.mcc, net.mnc))
    plan_only: list[str] = []
    while len(plan_only) < probes:
        prefix = rnd.choice(names)
        number = prefix + _digits(rnd, rnd.randint(11, 12) - len(prefix))
        if number not in moved:
            plan_only.append(number)
    found = {
        "ported": rnd.sample(list(moved), probes),
        "plan only": plan_only,
        "miss": ["9" + _digits(rnd, 11) for _ in range(probes)],
    }
    plan_csv = ["prefix,mcc,mnc,network\n",
                *(f"{p},{n.mcc},{n.mnc},{n.name}\n" for p, n in plan.items())]  # fmt: skip
    ported_csv = ["number,mcc,mnc\n", *(f"{p},{n.mcc},{n.mnc}\n" for p, n in moved.items())]
    return Tables(plan_csv, ported_csv, plan, moved, found)


# -- measuring ----------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _rate(fn: Callable[[str], object], numbers: list[str], budget: float) -> float:
    """Best calls per second over rounds of the whole list, for about ``budget`` seconds."""
    best = 0.0
    deadline = time.perf_counter() + budget
    while True:
        started = time.perf_counter()
        for number in numbers:
            fn(number)
        elapsed = time.perf_counter() - started
        best = max(best, len(numbers) / elapsed)
        if time.perf_counter() >= deadline:
            return best


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _rss_growth(kind: str, files: list[str], conn: Connection) -> None:
    """In a fresh interpreter: the RSS growth of loading the tables from ``files``
    (the inputs are read before the baseline)."""
    if kind == "herald":
        plan_data, ported_data = (Path(f).read_bytes() for f in files)
        before = _rss()
        index = NumberIndex(NumberingPlan.from_bytes(plan_data),
                            PortedNumbers.from_bytes(ported_data))  # fmt: skip
    else:
        plan_lines, ported_lines = (Path(f).read_text().splitlines()[1:] for f in files)
        before = _rss()
        networks: dict[tuple[str, ...], Network] = {}
        index = ({f[0]: networks.setdefault(tuple(f[1:]), Network(*f[1:3]))
                  for f in (line.split(",") for line in ported_lines)},
                 {f[0]: networks.setdefault(tuple(f[1:]), Network(*f[1:]))
                  for f in (line.split(",") for line in plan_lines)})  # fmt: skip
    gc.collect()
    conn.send(_rss() - before)
    del index


def _rss_in_child(kind: str, files: list[str]) -> int:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_rss_growth, args=(kind, files, child))
    process.start()
    try:
        if not parent.poll(120):
            raise TimeoutError("the memory probe did not answer")
        growth: int = parent.recv()
    finally:
        process.join(10)
    return growth


def _traced(build: Callable[[], Any]) -> tuple[Any, int, int]:
    """What ``build`` returns, the memory it still holds and the peak (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = build()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, current, peak


def _dict_lookup(ported: dict[str, Network], plan: dict[str, Network]) -> Callable[[str], object]:
    longest = max(map(len, plan))

    def lookup(digits: str) -> object:
        found = ported.get(digits)
        if found is not None:
            return found
        for size in range(min(len(digits), longest), 0, -1):
            found = plan.get(digits[:size])
            if found is not None:
                return found
        return None

    return lookup


async def _stall(during: Callable[[], Any] | None, seconds: float = 0.3) -> tuple[float, Any]:
    """The longest late wake-up (ms) of a 1 ms ticker while ``during()`` runs
    (or for ``seconds`` when it is ``None``), and its result."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    running = True

    async def tick() -> None:
        nonlocal worst
        while running:
            before = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - before - 0.001)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    worst = 0.0
    result = await during() if during is not None else await asyncio.sleep(seconds)
    running = False
    await ticker
    return worst * 1000, result


async def _store_round(plan: NumberingPlan, ported: PortedNumbers, data_dir: Path
                       ) -> dict[str, float]:  # fmt: skip
    """Write as ``herald numbers`` does (its own store), then reload as a running
    herald does (another store on the same file, its writer on the loop)."""
    times: dict[str, float] = {}
    cli = SQLiteStore.open(SQLiteConfig(data_dir=data_dir))
    server = SQLiteStore.open(SQLiteConfig(data_dir=data_dir, writer="loop"))
    try:
        tables = NumberTables(server)
        await tables.refresh()
        for kind, table in ((NumberTableKind.PLAN, plan), (NumberTableKind.PORTED, ported)):
            data = table.to_bytes()
            started = time.perf_counter()
            await cli.put_number_table(NumberTable(kind, data, len(table), time.time()))
            times[f"store write, {kind.value}"] = time.perf_counter() - started
        times["idle stall ms"], _ = await _stall(None)
        started = time.perf_counter()
        times["reload stall ms"], changed = await _stall(tables.refresh)
        times["reload"] = time.perf_counter() - started
        assert changed and tables.rules().index.has_plan
    finally:
        await cli.aclose()
        await server.aclose()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller tables, shorter runs")
    parser.add_argument("--seed", type=int, default=9, help="of the synthetic tables")
    args = parser.parse_args()
    prefixes, ported_count = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
    probes = 20_000 if args.quick else 100_000
    budget = 0.4 if args.quick else 1.5
    print(f"# bench/number_tables.py: {prefixes:,} plan prefixes, {ported_count:,} ported numbers,"
          f" {probes:,} numbers per lookup case, seed {args.seed}; {os.cpu_count()} CPUs,"
          f" load average {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}")  # fmt: skip
    tables, generated = _timed(lambda: synthetic(prefixes, ported_count, probes, args.seed))
    print(f"# generated in {generated:.1f} s\n")

    plan, plan_s = _timed(lambda: parse_plan(tables.plan_csv))
    ported, ported_s = _timed(lambda: parse_ported(tables.ported_csv))
    plan_data, ported_data = plan.to_bytes(), ported.to_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        store_times = asyncio.run(_store_round(plan, ported, Path(tmp) / "data"))
        files = {name: Path(tmp) / name for name in ("plan", "ported", "plan.csv", "ported.csv")}
        files["plan"].write_bytes(plan_data)
        files["ported"].write_bytes(ported_data)
        files["plan.csv"].write_text("".join(tables.plan_csv))
        files["ported.csv"].write_text("".join(tables.ported_csv))
        rss_index = _rss_in_child("herald", [str(files["plan"]), str(files["ported"])])
        rss_peer = _rss_in_child("dict", [str(files["plan.csv"]), str(files["ported.csv"])])
    print("# import and reload")
    print(f"{'step':52} {'seconds':>9} {'octets':>12}")
    print("-" * 75)
    print(f"{'plan: CSV -> parse, check, build':52} {plan_s:9.2f} {len(plan_data):12,}")
    print(f"{'ported: CSV -> parse, check, build':52} {ported_s:9.2f} {len(ported_data):12,}")
    for step in ("store write, plan", "store write, ported", "reload"):
        label = step if step != "reload" else "reload in a running herald (both tables)"
        print(f"{label:52} {store_times[step]:9.3f}")
    print(f"{'longest event-loop stall during the reload (ms)':52}"
          f" {store_times['reload stall ms']:9.1f}")
    print(f"{'longest event-loop stall, idle, for reference (ms)':52}"
          f" {store_times['idle stall ms']:9.1f}\n")

    index, held, peak = _traced(lambda: NumberIndex(NumberingPlan.from_bytes(plan_data),
                                                    PortedNumbers.from_bytes(ported_data)))
    del plan, ported
    gc.collect()

    def peer_tables() -> tuple[dict[str, Network], dict[str, Network]]:
        # fresh key strings, as a dict built from a file would hold
        return ({"".join(k): v for k, v in tables.ported.items()},
                {"".join(k): v for k, v in tables.plan.items()})  # fmt: skip

    (peer_ported, peer_plan), peer_held, peer_peak = _traced(peer_tables)
    print("# memory of the loaded tables")
    print(f"{'structure':44} {'held MB':>9} {'peak MB':>9} {'RSS +MB':>9}")
    print("-" * 74)
    print(f"{'herald NumberIndex (sorted arrays)':44} {held / 1e6:9.1f} {peak / 1e6:9.1f}"
          f" {rss_index / 1e6:9.1f}")
    print(f"{'dict peer (str keys -> shared Network)':44} {peer_held / 1e6:9.1f}"
          f" {peer_peak / 1e6:9.1f} {rss_peer / 1e6:9.1f}")
    print(f"{'herald / peer':44} {held / peer_held:9.2f}\n")

    peer = _dict_lookup(peer_ported, peer_plan)
    for numbers in tables.probes.values():  # both find the same MCC/MNC
        for number in numbers[:1000]:
            ours, theirs = index.network_of(number), peer(number)
            assert (ours and (ours.mcc, ours.mnc)) == (theirs and (theirs.mcc, theirs.mnc))
    print("# lookups per second (network of a number)")
    print(f"{'case':12} {'herald':>12} {'dict peer':>12} {'herald/peer':>12}")
    print("-" * 51)
    for kind, numbers in tables.probes.items():
        ours = _rate(index.network_of, numbers, budget)
        theirs = _rate(peer, numbers, budget)
        print(f"{kind:12} {ours:12,.0f} {theirs:12,.0f} {ours / theirs:12.2f}")
    rnd = random.Random(args.seed)
    parsed = [phonenumbers.parse(f"+49170{_digits(rnd, 7)}") for _ in range(2000)]
    lib = _rate(lambda n: carrier.name_for_number(n, "en"), parsed, budget)  # type: ignore[arg-type]
    print(f"{'phonenumbers.carrier.name_for_number, its own data':51} {lib:12,.0f}\n")

    policy = IntakePolicy(require_valid_number=False)
    rules = DestinationRules(index, lambda digits: digits.startswith(("4", "3")))
    german = [f"+49170{_digits(rnd, 7)}" for _ in range(2000)]  # the verdict cache holds them
    for number in german:
        normalize_destination(number, policy=policy, rules=rules)
    plain = _rate(lambda n: normalize_destination(n, policy=policy), german, budget)
    checked = _rate(lambda n: normalize_destination(n, policy=policy, rules=rules), german,
                    budget)  # fmt: skip
    print("# acceptance: normalize_destination of a number with a cached verdict")
    print(f"{'rules':44} {'us/call':>9}")
    print("-" * 54)
    print(f"{'none (as before number tables)':44} {1e6 / plain:9.2f}")
    print(f"{'plan + ported + route check':44} {1e6 / checked:9.2f}")
    print(f"{'added per message':44} {1e6 / checked - 1e6 / plain:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
