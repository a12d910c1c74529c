"""HTTP API throughput: messages/s and server CPU through an ASGI server on loopback into
a real SQLite store.

    .venv/bin/python bench/api.py              # the table, then single sends per server
    .venv/bin/python bench/api.py --quick      # shorter runs
    .venv/bin/python bench/api.py --front uvicorn/h11/asyncio --fronts none
    .venv/bin/python bench/api.py --fronts all --rounds 3 --cases single
    .venv/bin/python bench/api.py --profile    # then a profiled herald pass: top functions

Each server runs in its own process (no access log) on a fresh data directory;
the load comes from this process over keep-alive loopback connections, with
pre-built requests and a minimal HTTP/1.1 client (so the client costs far less
than the server; on a 2-core machine it still takes some of the second core).
Every message has its own destination number, so herald's per-number verdict
cache never hits.

Cases: ``single``: POST /v1/messages, one message per request, 64
connections; ``batch N``: POST /v1/messages/batch with N messages, a few
connections.

Apps, measured in the same run:

- ``herald``: :func:`herald.api.create_app` as ``herald serve`` mounts it:
  bearer key (argon2id, cached after the first request), rate limits, every
  intake check (phonenumbers, GSM/UCS-2 encoding and parts), ``store.accept``,
  problem handling, metrics. A plain single send takes the app's fast path
  (``herald.api._fast``).
- ``herald+tables``: the same app checking each destination against a
  numbering plan of 100,000 prefixes, 1,000,000 ported numbers and a route
  table (``docs/numbers.md``; synthetic, fixed seed, built when the server starts).
- ``herald+controls``: the same app for an account with controls
  (``docs/accounts.md``): a sender list, a country list, a per-country sender
  rule and 100,000 opted-out numbers (none of them sent to), all checked on
  each message from memory.
- ``herald+quota``: the same app for an account with a daily quota (never
  reached): each accept counts it in its own transaction.
- ``herald+billing``: the same app with the account billed (docs/billing.md):
  every message priced by a sell list and charged from its balance in the
  accepting transaction (a CDR row and a balance update per message).
- ``herald+classes``: the same app with five ``[[classes]]`` entries in the
  routes (``docs/routing.md``): four that do not match (other accounts, a
  group, a tag, a sender) and a last one that does (by prefix), so each send
  walks all five when its cache (by account, prefix class, sender, tag) misses.
  ``herald`` has the routes-less :class:`~herald.routes.LiveClasses` that
  ``herald serve`` has.
- ``herald-route``: the same app with ``fast_send=False``: every send through
  the FastAPI route (pydantic, Starlette's request and middleware), as before
  the fast path.
- ``asgi+store`` (peer): a bare ASGI app that parses the JSON and
  ``store.accept``-s a record built with no checks at all: the server plus
  the store, the floor for an API that stores before it answers.
- ``asgi`` (peer): the same without the store: the server's own ceiling here.

Fronts (ASGI server / HTTP parser / event loop): ``uvicorn/h11/asyncio``,
``uvicorn/h11/uvloop``, ``uvicorn/httptools/asyncio``,
``uvicorn/httptools/uvloop``, ``uvicorn/herald/asyncio``,
``uvicorn/herald/uvloop`` (``herald serve``'s: uvicorn with herald's protocol,
which answers plain sends before ASGI), ``granian/asyncio``, ``granian/uvloop``
(granian embedded in the process's loop, one runtime thread; only if granian
is installed: it is not a dependency). The first table runs every case on
``--front``; the second runs ``--cases`` on each of ``--fronts``, apps
interleaved, ``--rounds`` times, and prints medians.

``herald/peer`` is herald's rate over ``asgi+store``'s. Server CPU is the
server process's user+system time (all threads: the store's writer, granian's
runtime) per message, in microseconds. Figures move with the machine's load;
compare rows of one run. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import random
import re
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from herald.accounts import Accounts
from herald.api import ApiContext, create_app
from herald.api._protocol import protocol_for
from herald.billing import PriceLists
from herald.config import HttpConfig
from herald.ids import SortableIdGenerator
from herald.intake import (
    NO_RULES,
    DestinationRules,
    Network,
    NumberIndex,
    NumberingPlan,
    PortedNumbers,
)
from herald.metrics import Metrics
from herald.numbers import route_check
from herald.rating import parse_price_list
from herald.routes import LiveClasses
from herald.routing import Route, RouteTable
from herald.store import (
    AccountControls,
    NewMessage,
    OptOutChange,
    PriceSide,
    Source,
    SQLiteConfig,
    SQLiteStore,
    StoredRoutes,
)

APPS = ("herald", "herald+tables", "herald+controls", "herald+quota", "herald+billing",
        "herald+classes", "herald-route", "asgi+store", "asgi")
FRONTS = (
    "uvicorn/h11/asyncio", "uvicorn/h11/uvloop", "uvicorn/httptools/asyncio",
    "uvicorn/httptools/uvloop", "uvicorn/herald/asyncio", "uvicorn/herald/uvloop",
    "granian/asyncio", "granian/uvloop",
)  # fmt: skip
#: ``herald serve``'s: uvicorn with herald's protocol (``api/_protocol.py``: uvicorn's
#: httptools protocol answering plain sends before ASGI), on uvloop.
DEFAULT_FRONT = "uvicorn/herald/uvloop"
TEXT = "Your code is 123456"
_AREAS = ("415", "212", "310", "646", "617", "312", "206", "305", "404", "512", "702", "303")
_ACCEPTED = re.compile(rb'^\{"accepted":(\d+)')


def _granian_installed() -> bool:
    try:
        import granian  # noqa: F401
    except ImportError:
        return False
    return True


# -- servers (child processes) ---------------------------------------------------------


def _bare_app(store: SQLiteStore | None, account_id: int) -> Any:
    ids = SortableIdGenerator()

    def record(item: dict[str, Any], now: float) -> NewMessage:
        return NewMessage(
            id=ids.new_id(now), account_id=account_id, source=Source.HTTP,
            to=item["to"].lstrip("+"), sender=item["from"], body=item["text"].encode(),
            encoding="gsm7", data_coding=0, segments=1, accepted_at=now,
            expires_at=now + 172_800,
        )  # fmt: skip

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        payload = json.loads(body)
        items = payload.get("messages", [payload])
        now = time.time()
        messages = [record(item, now) for item in items]
        if store is not None:
            await store.accept(messages)
        answer = json.dumps(
            {"accepted": len(messages), "ids": [m.id for m in messages]}, separators=(",", ":")
        ).encode()
        await send({"type": "http.response.start", "status": 202, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})

    return app


class _Listener:
    """One ASGI server in this process's loop: uvicorn or granian (embedded)."""

    def __init__(self, front: str, app: Any) -> None:
        self.server = front.split("/")[0]
        if self.server == "uvicorn":
            http: Any = front.split("/")[1]
            if http == "herald":
                http = protocol_for(getattr(app, "fast_send", None))
            self._uvicorn = uvicorn.Server(uvicorn.Config(
                app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                lifespan="off", http=http,
            ))  # fmt: skip
        else:
            from granian.constants import Interfaces
            from granian.server.embed import Server

            with socket.socket() as probe:  # granian binds per worker: give it a free port
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            self._granian = Server(
                app, address="127.0.0.1", port=self.port, interface=Interfaces.ASGINL,
                log_enabled=False,
            )  # fmt: skip

    async def start(self) -> int:
        if self.server == "uvicorn":
            self._task = asyncio.create_task(self._uvicorn.serve())
            for _ in range(200):
                if self._uvicorn.started:
                    break
                await asyncio.sleep(0.05)
            port: int = self._uvicorn.servers[0].sockets[0].getsockname()[1]
            return port
        self._task = asyncio.create_task(self._granian.serve())
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        return self.port

    async def stop(self) -> None:
        if self.server == "uvicorn":
            self._uvicorn.should_exit = True
        else:
            self._granian.signal_handler_interrupt()
        await self._task


async def _serve(app_kind: str, front: str, data_dir: str, conn: Connection,
                 profile: bool) -> None:  # fmt: skip
    store = SQLiteStore.open(SQLiteConfig(data_dir=Path(data_dir)))
    accounts = None
    if app_kind.startswith("herald"):
        accounts = Accounts(store)  # real argon2id parameters
        account, issued = await accounts.create("bench", time.time(), rate_limit=1e9)
        key = issued.key
        rules = _tables() if app_kind == "herald+tables" else NO_RULES
        await _controls(store, account.id, app_kind)
        prices = PriceLists(store)
        if app_kind == "herald+billing":  # every message priced and charged with its accept
            await store.put_price_list(parse_price_list(["destination,price\n", "+1,0.005\n"])
                                       .stored(PriceSide.SELL, str(account.id), time.time()))
            await store.adjust_balance(account.id, add=10**15)
            await prices.refresh()
        if app_kind == "herald+classes":
            await store.put_routes(StoredRoutes(CLASS_ENTRIES, "bench", time.time()))
        classes = LiveClasses(store)
        await classes.refresh()
        app: Any = create_app(ApiContext(
            store=store, accounts=accounts, ids=SortableIdGenerator(), clock=time.time,
            metrics=Metrics(CollectorRegistry()), config=HttpConfig(default_account_rate=1e9),
            destinations=lambda: rules, prices=prices.sell, classes=classes,
        ), fast_send=app_kind != "herald-route")  # fmt: skip
    else:
        account = await store.create_account("bench", time.time(), rate_limit=1e9, bind_limit=1)
        key = "-"
        app = _bare_app(store if app_kind == "asgi+store" else None, account.id)
    listener = _Listener(front, app)
    conn.send((await listener.start(), key))
    profiler = cProfile.Profile() if profile else None
    while True:  # commands from the parent: "profile-on", "stop"
        command = await asyncio.to_thread(conn.recv)
        if command == "profile-on" and profiler is not None:
            profiler.enable()
        elif command == "stop":
            break
    report = ""
    if profiler is not None:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
        report = out.getvalue()
    await listener.stop()
    await store.aclose()
    if accounts is not None:
        accounts.close()
    conn.send(report)


async def _controls(store: SQLiteStore, account_id: int, app_kind: str) -> None:
    """The account controls of ``herald+controls`` and ``herald+quota``."""
    if app_kind == "herald+quota":
        await store.set_controls(account_id, AccountControls(daily_quota=10**9))
    elif app_kind == "herald+controls":
        await store.set_controls(account_id, AccountControls(
            senders=("ACME", "SHOP*"), countries=("US", "CA"), sender_rules=("US:alphanumeric",)))
        now = time.time()
        for start in range(0, 100_000, 10_000):  # numbers outside the areas sent to
            await store.change_opt_outs(account_id, [
                OptOutChange(f"1999{n:07d}", True, now, "bench")
                for n in range(start, start + 10_000)])  # fmt: skip


#: The routes of ``herald+classes``: five entries, the last one matching.
CLASS_ENTRIES = """
[groups]
vip = ["acme", "globex"]

[[classes]]
accounts = ["other"]
priority = "otp"

[[classes]]
groups = ["vip"]
priority = "otp"

[[classes]]
tags = ["login"]
priority = "otp"

[[classes]]
senders = ["SHOP"]
priority = "marketing"

[[classes]]
prefixes = ["1"]
priority = "bulk"
"""


def _tables() -> DestinationRules:
    """A numbering plan of 100,000 prefixes (every exchange of the areas sent to,
    the rest elsewhere), 1,000,000 ported numbers and a route check: what each
    send is checked against in ``herald+tables`` (synthetic, fixed seed)."""
    rnd = random.Random(5)
    nets = [Network(f"{310 + k % 7}", f"{k:03d}", f"Net {k}") for k in range(200)]
    plan = {f"1{a}{x}": rnd.choice(nets) for a in _AREAS for x in range(200, 1000)}
    while len(plan) < 100_000:
        plan.setdefault(f"{rnd.choice((33, 39, 44, 49, 61, 81))}{rnd.randrange(10**6):06d}",
                        rnd.choice(nets))  # fmt: skip
    ported: dict[str, tuple[str, str, str]] = {}
    while len(ported) < 1_000_000:
        number = f"1{rnd.choice(_AREAS)}{rnd.randrange(200, 1000)}{rnd.randrange(10**4):04d}"
        net = rnd.choice(nets)
        ported[number] = (number, net.mcc, net.mnc)
    index = NumberIndex(NumberingPlan.build(plan.items()), PortedNumbers.build(ported.values()))
    return DestinationRules(index, route_check(RouteTable([Route("1", ("upstream",))])))


def _server_main(app_kind: str, front: str, data_dir: str, conn: Connection,
                 profile: bool) -> None:  # fmt: skip
    coro = _serve(app_kind, front, data_dir, conn, profile)
    if front.endswith("/uvloop"):
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    else:
        asyncio.run(coro)


# -- client ------------------------------------------------------------------------------


def _numbers() -> Any:
    """Distinct valid US numbers: +1 <area> <exchange 200..999> <line>."""
    n = 0
    while True:
        area = _AREAS[n % len(_AREAS)]
        rest = n // len(_AREAS)
        yield f"+1{area}{200 + (rest // 10_000) % 800}{rest % 10_000:04d}"
        n += 1


_NUMBERS = _numbers()  # one sequence for the whole run: no number is sent twice


def _request(path: str, key: str, payload: object) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True)
class Case:
    name: str
    per_request: int
    connections: int
    requests: int


CASES = (
    Case("single", 1, 64, 60_000),
    Case("batch 1,000", 1_000, 4, 150),
    Case("batch 10,000", 10_000, 2, 20),
)


@dataclass
class Outcome:
    app: str
    front: str
    case: Case
    requests: int
    messages: int
    seconds: float
    latencies: list[float]
    codes: Counter[int]
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """Server CPU per message, microseconds."""
        return self.cpu_seconds / self.messages * 1e6 if self.messages else 0.0


async def _load(port: int, requests: list[bytes], connections: int, seconds: float) -> tuple[
    int, int, float, list[float], Counter[int]
]:
    pending = iter(requests)
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    accepted = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in pending:
                start = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                found = re.search(rb"(?i)content-length: *(\d+)", head)
                if found is None:
                    raise RuntimeError(f"no Content-Length in {head!r}")
                body = await reader.readexactly(int(found[1]))
                latencies.append(time.perf_counter() - start)
                codes[status] += 1
                if status == 202:
                    match = _ACCEPTED.match(body)
                    accepted += int(match[1]) if match else 1
                if time.perf_counter() > deadline:
                    break
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies), accepted, time.perf_counter() - start, latencies, codes


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_server(
    app_kind: str, front: str, cases: list[Case], seconds: float, profile: bool
) -> tuple[list[Outcome], str]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory(prefix="herald-bench-api-") as tmp:
        proc = ctx.Process(target=_server_main, args=(app_kind, front, tmp, child, profile))
        proc.start()
        report = ""
        try:
            for _ in range(600):  # a minute at most; at once if the child died
                if parent.poll(0.1) or not proc.is_alive():
                    break
            if not parent.poll():
                raise RuntimeError(f"the {app_kind} server on {front} did not start")
            port, key = parent.recv()
            outcomes = _run_cases(proc.pid, parent, port, key, app_kind, front, cases, seconds,
                                  profile)  # fmt: skip
        finally:
            with contextlib.suppress(OSError):
                parent.send("stop")
                report = parent.recv() if proc.is_alive() and parent.poll(60) else ""
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    return outcomes, report


def _run_cases(
    pid: int, parent: Connection, port: int, key: str, app_kind: str, front: str,
    cases: list[Case], seconds: float, profile: bool,
) -> list[Outcome]:  # fmt: skip
    warm = [_request("/v1/messages", key, {"to": next(_NUMBERS), "from": "ACME", "text": TEXT})]
    asyncio.run(_load(port, warm, 1, 30))  # the first request verifies the key (argon2)
    if profile:
        parent.send("profile-on")
    outcomes = []
    for case in cases:
        path = "/v1/messages" if case.per_request == 1 else "/v1/messages/batch"
        requests = []
        for _ in range(case.requests):
            items = [{"to": next(_NUMBERS), "from": "ACME", "text": TEXT}
                     for _ in range(case.per_request)]  # fmt: skip
            payload = items[0] if case.per_request == 1 else {"messages": items}
            requests.append(_request(path, key, payload))
        cpu = _cpu(pid)
        done, messages, elapsed, latencies, codes = asyncio.run(
            _load(port, requests, case.connections, seconds)
        )
        cpu = _cpu(pid) - cpu
        outcome = Outcome(app_kind, front, case, done, messages, elapsed, latencies, codes, cpu)
        outcomes.append(outcome)
        print(f"  {front:<26} {app_kind:<12} {case.name:<13} {outcome.rate:>9,.0f} msgs/s"
              f" {outcome.cpu_us:>7.1f} us/msg", flush=True)  # fmt: skip
    return outcomes


def _ms(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def _table(front: str, apps: list[str], cases: list[Case], seconds: float) -> None:
    """Every case on one front, one server process per app (as before the fronts)."""
    results: dict[tuple[str, str], Outcome] = {}
    for app_kind in apps:
        outcomes, _ = _run_server(app_kind, front, cases, seconds, profile=False)
        for outcome in outcomes:
            results[(app_kind, outcome.case.name)] = outcome
    print(f"\n# every case on {front}")
    header = (
        f"{'case':<13} {'app':<12} {'conns':>5} {'requests':>8} {'msgs/s':>9} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'CPU us/msg':>10} {'non-2xx':>7} {'herald/peer':>11}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        peer = results[("asgi+store", case.name)].rate if "asgi+store" in apps else 0.0
        for app_kind in apps:
            r = results[(app_kind, case.name)]
            bad = sum(n for code, n in r.codes.items() if code >= 300)
            ratio = f"{r.rate / peer:.2f}" if app_kind.startswith("herald") and peer else ""
            print(f"{case.name:<13} {app_kind:<12} {case.connections:>5} {r.requests:>8} "
                  f"{r.rate:>9,.0f} {_ms(r.latencies, 50):>8.1f} {_ms(r.latencies, 99):>8.1f} "
                  f"{r.cpu_us:>10.1f} {bad:>7} {ratio:>11}")  # fmt: skip
    print()


def _fronts_table(
    fronts: list[str], apps: list[str], cases: list[Case], seconds: float, rounds: int
) -> None:
    """``cases`` on each front: one process per (front, app) and round, rounds
    interleaved; medians of the rounds (CPU per message and rate), then the range."""
    runs: dict[tuple[str, str, str], list[Outcome]] = {}
    for round_ in range(rounds):
        print(f"# round {round_ + 1} of {rounds} (load average {os.getloadavg()[0]:.1f})",
              flush=True)  # fmt: skip
        for front in fronts:
            for app_kind in apps:
                outcomes, _ = _run_server(app_kind, front, cases, seconds, profile=False)
                for outcome in outcomes:
                    runs.setdefault((front, app_kind, outcome.case.name), []).append(outcome)
    for case in cases:
        print(f"\n# {case.name}: server CPU per message (us), median of {rounds} round(s)"
              f" [min-max]; msgs/s median")  # fmt: skip
        header = f"{'front':<26}" + "".join(f" {a:>22}" for a in apps)
        print(header)
        print("-" * len(header))
        for front in fronts:
            cells = []
            for app_kind in apps:
                got = runs[(front, app_kind, case.name)]
                cpu = [o.cpu_us for o in got]
                rate = statistics.median(o.rate for o in got)
                bad = sum(n for o in got for code, n in o.codes.items() if code >= 300)
                span = f"[{min(cpu):.0f}-{max(cpu):.0f}]" if rounds > 1 else ""
                flag = "!" if bad else ""
                cells.append(f"{statistics.median(cpu):>5.0f}{span:<10}{rate:>6,.0f}/s{flag}")
            print(f"{front:<26}" + "".join(f" {c:>22}" for c in cells))
        if any(c.endswith("!") for c in cells):
            print("('!': some answers were not 2xx)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--profile", action="store_true", help="profile the herald server")
    parser.add_argument("--front", default=DEFAULT_FRONT, choices=(*FRONTS, "none"),
                        help=f"the front of the first table (default {DEFAULT_FRONT})")
    parser.add_argument("--fronts", default="all",
                        help="comma-separated fronts of the second table, 'all' or 'none'")
    parser.add_argument("--cases", default="single",
                        help="cases of the second table: comma-separated names or 'all'")
    parser.add_argument("--apps", default=",".join(APPS), help="comma-separated apps")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the second table")
    args = parser.parse_args()  # fmt: skip
    seconds = 2.0 if args.quick else 6.0
    apps = [a for a in args.apps.split(",") if a]
    unknown = set(apps) - set(APPS)
    if unknown:
        parser.error(f"unknown apps {sorted(unknown)}; choose from {APPS}")
    if args.fronts == "all":
        fronts = [f for f in FRONTS if _granian_installed() or not f.startswith("granian")]
    elif args.fronts == "none":
        fronts = []
    else:
        fronts = args.fronts.split(",")
        if set(fronts) - set(FRONTS):
            parser.error(f"unknown fronts {sorted(set(fronts) - set(FRONTS))}")
    by_name = {c.name.replace(",", "").replace(" ", ""): c for c in CASES}
    chosen = list(CASES) if args.cases == "all" else [
        by_name[n.replace(",", "").replace(" ", "")] for n in args.cases.split(",")
    ]  # fmt: skip
    granian = "granian installed" if _granian_installed() else "granian not installed"
    print(f"# bench/api.py: {seconds:g} s per case, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}, uvicorn "
          f"{uvicorn.__version__}, {granian}")  # fmt: skip
    if args.front != "none":
        _table(args.front, apps, list(CASES), seconds)
    if fronts:
        _fronts_table(fronts, apps, chosen, seconds, args.rounds)
    if args.profile and args.front != "none":  # a separate pass: the profiler slows the server
        print(f"\n# herald server on {args.front} under cProfile (all cases again), by own time:",
              flush=True)  # fmt: skip
        print(_run_server("herald", args.front, list(CASES), seconds, profile=True)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
