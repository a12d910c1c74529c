"""Dispatch throughput and latency: herald's Dispatcher (store -> SMPP -> receipts -> store)
against `herald sim`, with a bare SmppClient on the same simulator as the yardstick.

    .venv/bin/python bench/dispatch.py                 # 20,000 messages, 2 binds x window 64
    .venv/bin/python bench/dispatch.py --quick         # 5,000 messages
    .venv/bin/python bench/dispatch.py --profile       # + the dispatch run's top functions
    .venv/bin/python bench/dispatch.py --tps 50 500    # rate accuracy at these TPS only
    .venv/bin/python bench/dispatch.py --rules         # routed by routing rules (RULES below)

What runs, in this order, against one `herald sim` process (receipts at once,
``--receipt-delay 0``) on 127.0.0.1:

1. **raw client** (the yardstick): herald's ``SmppClient`` with the same binds
   and window, submitting pre-built submit_sm PDUs and answering receipts, no
   store at all. It is the SMPP path's ceiling on this machine.
2. **dispatch, backlog**: ``--count`` messages are accepted into a fresh SQLite
   store first (not timed), then the Dispatcher starts and drains them:
   claim, route, build PDUs, submit, record every segment, apply every
   receipt, all durable. Timed from start to the last submit_sm_resp
   recorded (submits/s) and to the last message ``delivered`` (delivered/s).
3. **dispatch, steady**: messages are accepted at ``--rate`` per second for
   ``--seconds`` (in 10 ms batches, ``wake()`` after each commit, as intake
   does) and the latencies are read from the store and the simulator's
   record: acceptance -> submit_sm read by the upstream, acceptance ->
   receipt committed (``done_at``).
4. **rate accuracy**: for each ``--tps``, three seconds of traffic through a
   connector configured at that rate; the achieved rate is count / elapsed
   between the first and last submit the simulator recorded.

CPU is this process's (event loop + the store's writer and reader threads)
over the timed part, per message; the simulator's CPU is shown apart (it
shares the 2 cores). ``ratio`` = dispatch / raw client, in the same run.
With ``--rules`` the backlog and steady runs route by :data:`RULES` (stored
before dispatch starts): five rules that do not match, each on another
criterion, then a least-cost rule with a price list, and a numbering plan
that gives the destinations a network (so dispatch's decision cache applies,
as with any plan loaded). Without it, the ``[[routes]]`` prefix table decides, as before rules.
Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from herald.config import ConnectorConfig, HeraldConfig, RouteConfig  # noqa: E402
from herald.dispatch import Dispatcher, DispatchSettings  # noqa: E402
from herald.ids import SortableIdGenerator  # noqa: E402
from herald.intake import Network, NumberingPlan  # noqa: E402
from herald.metrics import Metrics  # noqa: E402
from herald.rating import parse_price_list  # noqa: E402
from herald.store import (  # noqa: E402
    NewMessage,
    NumberTable,
    NumberTableKind,
    PriceSide,
    Source,
    SQLiteConfig,
    SQLiteStore,
    StoredRoutes,
)

TEXT = b"Your code is 482913"
COUNT, QUICK = 20_000, 5_000
RUN_TIMEOUT = 180.0
START_TIMEOUT = 20.0
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
RULES_ON = False  # --rules
#: ``--rules``: what a message walks through before the rule that chooses.
RULES = """
[[rule]]
name = "otp"
tags = ["otp"]
failover = ["sim"]
[[rule]]
name = "other-account"
accounts = ["someone-else"]
failover = ["sim"]
[[rule]]
name = "france"
countries = ["FR"]
failover = ["sim"]
[[rule]]
name = "marketing"
priorities = ["marketing"]
failover = ["sim"]
[[rule]]
name = "night"
hours = [23, 23]
days = ["sun"]
failover = ["sim"]
[[rule]]
name = "uk-least-cost"
countries = ["GB"]
least_cost = ["sim"]
"""
#: sim's buy list (billing's form): least-cost rules price by it.
PRICES = "destination,price\n+44,0.0150\ndefault,0.0300\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


class Sim:
    """`herald sim` in its own process."""

    def __init__(self, record: Path | None = None) -> None:
        extra = ["--record", str(record), "--record-content", "hash"] if record else []
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "herald", "sim", "--listen", "127.0.0.1:0",
             "--receipt-delay", "0", "--seed", "1", *extra],
            stdout=self.log, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:  # bounded
            self.log.seek(0)
            first = self.log.readline()
            if b"listening on" in first:
                self.port = int(first.decode().split("listening on ", 1)[1].split()[0]
                                .rsplit(":", 1)[1])
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("herald sim did not start")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- 1. the yardstick: a bare SmppClient ----------------------------------------------


async def raw_client(port: int, binds: int, window: int, count: int) -> dict[str, float]:
    from herald.net import ClientHandler, ClientSettings, SmppClient, SmppConnection
    from herald.smpp.pdus import BindTransceiver, Request, SubmitSm
    from herald.smpp.session import SessionConfig
    from herald.smpp.states import Role

    loop = asyncio.get_running_loop()
    receipts = 0
    done: asyncio.Future[None] = loop.create_future()

    class Count(ClientHandler):
        def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
            nonlocal receipts
            conn.respond(request.response())
            receipts += 1
            if receipts >= count and not done.done():
                done.set_result(None)

    clients = [SmppClient(ClientSettings(
        "127.0.0.1", port, BindTransceiver(system_id="raw", password="pw"),
        session=SessionConfig(role=Role.ESME, window=window, response_timeout=60),
        name=f"raw-{k}"), Count()) for k in range(binds)]
    for c in clients:
        await c.start()
    for c in clients:
        await c.wait_bound(10)
    pdus = [SubmitSm(source_addr="HERALD", dest_addr_ton=1, dest_addr_npi=1,
                     destination_addr=f"4477{i:08d}", registered_delivery=1,
                     short_message=TEXT) for i in range(count)]

    async def worker(client: SmppClient, share: list[SubmitSm]) -> None:
        for pdu in share:
            await client.submit(pdu)

    slots = binds * window
    started, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.wait_for(asyncio.gather(
        *(worker(clients[k % binds], pdus[k::slots]) for k in range(slots))), RUN_TIMEOUT)
    submitted = time.perf_counter()
    await asyncio.wait_for(done, RUN_TIMEOUT)
    finished = time.perf_counter()
    cpu = time.process_time() - cpu0
    for c in clients:
        with contextlib.suppress(Exception):
            await c.stop(2)
    return {"submit_s": submitted - started, "total_s": finished - started, "cpu": cpu}


# ---- 2 and 3: herald's Dispatcher -----------------------------------------------------


async def store_rules(store: SQLiteStore) -> None:
    """``--rules``: the rules, sim's buy list, and a plan that gives +4477 a network."""
    await store.put_routes(StoredRoutes(RULES, "bench", time.time()))
    buy = parse_price_list(PRICES.splitlines())
    await store.put_price_list(buy.stored(PriceSide.BUY, "sim", time.time()))
    plan = NumberingPlan.build([("4477", Network("234", "30", "EE"))])
    await store.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(), len(plan),
                                             time.time()))


def herald_config(port: int, binds: int, window: int, tps: float = 100_000.0) -> HeraldConfig:
    return HeraldConfig(
        connectors=(ConnectorConfig(
            name="sim", host="127.0.0.1", port=port, system_id="herald", password="pw",
            binds=binds, window=window, tps=tps, response_timeout=60.0),),
        routes=(RouteConfig("", ("sim",)),),
    )


def rows(ids: SortableIdGenerator, account: int, start: int, n: int, now: float
         ) -> list[NewMessage]:
    return [NewMessage(id=ids.new_id(now), account_id=account, source=Source.HTTP,
                       to=f"4477{start + i:08d}", sender="HERALD", body=TEXT, encoding="gsm7",
                       data_coding=0, segments=1, accepted_at=now, expires_at=now + 3600)
            for i in range(n)]


def count_status(path: Path, status: int) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM messages WHERE status = ?",
                              (status,)).fetchone()[0])


async def wait_count(path: Path, status: int, count: int, poll: float = 0.05) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_TIMEOUT
    while loop.time() < deadline:  # bounded by RUN_TIMEOUT
        if await asyncio.to_thread(count_status, path, status) >= count:
            return time.perf_counter()
        await asyncio.sleep(poll)
    raise TimeoutError(f"{count} messages never reached status {status}")


async def backlog(port: int, binds: int, window: int, count: int, data: Path,
                  profile: cProfile.Profile | None) -> dict[str, float]:
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    account = (await store.create_account("bench", time.time(), rate_limit=1e6,
                                          bind_limit=10)).id
    if RULES_ON:
        await store_rules(store)
    ids = SortableIdGenerator()
    for start in range(0, count, 5000):
        await store.accept(rows(ids, account, start, min(5000, count - start), time.time()))
    metrics = Metrics(__import__("prometheus_client").CollectorRegistry())
    d = Dispatcher(store, herald_config(port, binds, window), metrics, time.time,
                   settings=DispatchSettings(poll_interval=0.2))
    labels = {"connector": "sim", "outcome": "ok"}
    started, cpu0 = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    await d.start()
    for _ in range(int(RUN_TIMEOUT / 0.01)):  # bounded by RUN_TIMEOUT
        if (metrics.registry.get_sample_value("herald_upstream_submits_total", labels)
                or 0) >= count:
            break
        await asyncio.sleep(0.01)
    submitted = time.perf_counter()
    finished = await wait_count(store.config.path, 10, count)
    if profile:
        profile.disable()
    cpu = time.process_time() - cpu0
    await d.stop()
    await store.aclose()
    return {"submit_s": submitted - started, "total_s": finished - started, "cpu": cpu}


async def steady(port: int, binds: int, window: int, rate: float, seconds: float, data: Path,
                 record: Path) -> dict[str, float]:
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    account = (await store.create_account("bench", time.time(), rate_limit=1e6,
                                          bind_limit=10)).id
    if RULES_ON:
        await store_rules(store)
    ids = SortableIdGenerator()
    metrics = Metrics(__import__("prometheus_client").CollectorRegistry())
    d = Dispatcher(store, herald_config(port, binds, window), metrics, time.time)
    await d.start()
    await asyncio.sleep(0.5)  # binds up
    accepted_at: dict[str, float] = {}
    tick, sent = 0.01, 0
    total = int(rate * seconds)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while sent < total:  # bounded: total messages
        due = min(total, int((loop.time() - t0) * rate) + 1)
        if due > sent:
            batch = rows(ids, account, 10_000_000 + sent, due - sent, time.time())
            await store.accept(batch)
            d.wake()
            for m in batch:
                accepted_at[m.to] = m.accepted_at
            sent = due
        await asyncio.sleep(tick)
    await wait_count(store.config.path, 10, total)
    await d.stop()
    with contextlib.closing(sqlite3.connect(store.config.path)) as db:
        done = [r[0] - r[1] for r in db.execute("SELECT done_at, accepted_at FROM messages")]
    await store.aclose()
    submit = []
    await asyncio.sleep(1.5)  # the simulator flushes its record every second
    for line in (await asyncio.to_thread(record.read_text)).splitlines():
        fields = line.split("\t")
        if len(fields) > 3 and fields[3] in accepted_at:
            submit.append(float(fields[0]) - accepted_at.pop(fields[3]))
    return {"submit": sorted(submit), "done": sorted(done)}


async def rate_accuracy(port: int, binds: int, window: int, tps: float, data: Path,
                        record: Path) -> float:
    """Achieved submits/s at the simulator (count / elapsed between the first and
    the last submit it recorded) for a connector configured at ``tps``."""
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    account = (await store.create_account("bench", time.time(), rate_limit=1e6,
                                          bind_limit=10)).id
    count = int(tps * 3)  # three seconds of traffic
    await store.accept(rows(SortableIdGenerator(), account, 0, count, time.time()))
    metrics = Metrics(__import__("prometheus_client").CollectorRegistry())
    d = Dispatcher(store, herald_config(port, binds, window, tps), metrics, time.time)
    await d.start()
    await wait_count(store.config.path, 10, count)
    await d.stop()
    await store.aclose()
    await asyncio.sleep(1.5)  # the simulator flushes its record every second
    times = sorted(float(line.split("\t")[0])
                   for line in (await asyncio.to_thread(record.read_text)).splitlines()
                   if line and not line.startswith("#"))
    return (len(times) - 1) / (times[-1] - times[0])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} messages")
    parser.add_argument("--count", type=int)
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rate", type=float, default=2000.0, help="steady: messages/s offered")
    parser.add_argument("--seconds", type=float, default=5.0, help="steady: how long")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--rules", action="store_true",
                        help="route by the routing rules of RULES (default: [[routes]] only)")
    parser.add_argument("--tps", type=float, nargs="*", default=[50.0, 200.0, 1000.0],
                        help="rate accuracy runs (3 s each); none: skip")
    args = parser.parse_args()
    global RULES_ON
    RULES_ON = args.rules
    count = args.count or (QUICK if args.quick else COUNT)
    print(f"dispatch -> herald sim (receipts at once); {count} messages, {args.binds} binds x "
          f"window {args.window}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
          + ("; routing rules" if RULES_ON else ""))
    header = (f"{'run':<18} {'submits/s':>10} {'delivered/s':>12} {'us/msg':>8} "
              f"{'sim us/msg':>11} {'ratio':>7}")
    print(header)
    print("-" * len(header))
    profile = cProfile.Profile() if args.profile else None
    raws: list[dict[str, float]] = []
    disps: list[dict[str, float]] = []
    for _ in range(args.rounds):
        for name in ("raw client", "dispatch backlog"):
            sim = Sim()
            try:
                cpu_before = sim.cpu()
                with tempfile.TemporaryDirectory() as tmp:
                    if name == "raw client":
                        result = asyncio.run(raw_client(sim.port, args.binds, args.window, count))
                    else:
                        result = asyncio.run(backlog(sim.port, args.binds, args.window, count,
                                                     Path(tmp) / "data", profile))
                result["sim_cpu"] = sim.cpu() - cpu_before
            finally:
                sim.stop()
            (raws if name == "raw client" else disps).append(result)

    def show(name: str, runs: list[dict[str, float]], ratio: str) -> float:
        sub = statistics.median(count / r["submit_s"] for r in runs)
        done = statistics.median(count / r["total_s"] for r in runs)
        us = statistics.median(r["cpu"] / count * 1e6 for r in runs)
        sim_us = statistics.median(r["sim_cpu"] / count * 1e6 for r in runs)
        print(f"{name:<18} {sub:>10.0f} {done:>12.0f} {us:>8.1f} {sim_us:>11.1f} {ratio:>7}")
        return done

    raw_rate = show("raw client", raws, "1.00x")
    disp_rate = statistics.median(count / r["total_s"] for r in disps)
    show("dispatch backlog", disps, f"{disp_rate / raw_rate:.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "record.tsv"
        sim = Sim(record)
        try:
            lat = asyncio.run(steady(sim.port, args.binds, args.window, args.rate, args.seconds,
                                     Path(tmp) / "data", record))
        finally:
            sim.stop()
    print(f"\nsteady {args.rate:.0f}/s for {args.seconds:g} s: latency ms "
          f"{'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for label, values in (("accept -> submit_sm", lat["submit"]),
                          ("accept -> receipt stored", lat["done"])):
        print(f"  {label:<26} {pct(values, 50):>7.1f} {pct(values, 95):>7.1f} "
              f"{pct(values, 99):>7.1f} {pct(values, 100):>7.1f}   ({len(values)} messages)")
    if args.tps:
        print(f"\nrate accuracy ({args.binds} binds, one token bucket): "
              f"{'configured':>10} {'achieved':>9} {'error':>7}")
        for tps in args.tps:
            with tempfile.TemporaryDirectory() as tmp:
                record = Path(tmp) / "record.tsv"
                sim = Sim(record)
                try:
                    got = asyncio.run(rate_accuracy(sim.port, args.binds, args.window, tps,
                                                    Path(tmp) / "data", record))
                finally:
                    sim.stop()
            print(f"{'':<43}{tps:>10.0f} {got:>9.1f} {got / tps - 1:>+7.2%}")
    if profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        print("\nprofile of the dispatch backlog run(s), by own time:")
        print("\n".join(out.getvalue().splitlines()[:45]))


if __name__ == "__main__":
    main()
