"""HTTP API throughput: messages/s through uvicorn on loopback into a real SQLite store.

    .venv/bin/python bench/api.py              # the full table (about a minute)
    .venv/bin/python bench/api.py --quick      # shorter runs
    .venv/bin/python bench/api.py --profile    # then a profiled herald pass: top functions

Each server runs in its own process (uvicorn, asyncio loop, h11, no access
log) on a fresh data directory; the load comes from this process over
keep-alive loopback connections, with pre-built requests and a minimal HTTP/1.1
client (so the client costs far less than the server; on a 2-core machine it
still takes some of the second core). Every message has its own destination
number, so herald's per-number verdict cache never hits.

Cases: ``single``: POST /v1/messages, one message per request, 64
connections; ``batch N``: POST /v1/messages/batch with N messages, a few
connections.

Servers, measured in the same run:

- ``herald``: :func:`herald.api.create_app` as ``herald serve`` mounts it:
  bearer key (argon2id, cached after the first request), rate limits,
  pydantic, every intake check (phonenumbers, GSM/UCS-2 encoding and parts),
  ``store.accept``, problem handling, metrics.
- ``asgi+store`` (peer): a bare ASGI app that parses the JSON and
  ``store.accept``-s a record built with no checks at all: uvicorn plus the
  store, the floor for an API that stores before it answers.
- ``asgi`` (peer): the same without the store: uvicorn's own ceiling here.

``herald/peer`` is herald's rate over ``asgi+store``'s. Server CPU is the
server process's user+system time (all threads, including the store's
writer) per 1,000 messages. Figures move with the machine's load; compare
rows of one run. Nothing here is asserted.
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
import re
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
from herald.config import HttpConfig
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.store import NewMessage, Source, SQLiteConfig, SQLiteStore

SERVERS = ("herald", "asgi+store", "asgi")
TEXT = "Your code is 123456"
_AREAS = ("415", "212", "310", "646", "617", "312", "206", "305", "404", "512", "702", "303")
_ACCEPTED = re.compile(rb'^\{"accepted":(\d+)')


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


async def _serve(kind: str, data_dir: str, conn: Connection, profile: bool) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=Path(data_dir)))
    accounts = None
    if kind == "herald":
        accounts = Accounts(store)  # real argon2id parameters
        account, issued = await accounts.create("bench", time.time(), rate_limit=1e9)
        key = issued.key
        app: Any = create_app(ApiContext(
            store=store, accounts=accounts, ids=SortableIdGenerator(), clock=time.time,
            metrics=Metrics(CollectorRegistry()), config=HttpConfig(default_account_rate=1e9),
        ))  # fmt: skip
    else:
        account = await store.create_account("bench", time.time(), rate_limit=1e9, bind_limit=1)
        key = "-"
        app = _bare_app(store if kind == "asgi+store" else None, account.id)
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off",
    ))  # fmt: skip
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    conn.send((server.servers[0].sockets[0].getsockname()[1], key))
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
    server.should_exit = True
    await task
    await store.aclose()
    if accounts is not None:
        accounts.close()
    conn.send(report)


def _server_main(kind: str, data_dir: str, conn: Connection, profile: bool) -> None:
    asyncio.run(_serve(kind, data_dir, conn, profile))


# -- client ------------------------------------------------------------------------------


def _numbers() -> Any:
    """Distinct valid US numbers: +1 <area> <exchange 200..999> <line>."""
    n = 0
    while True:
        area = _AREAS[n % len(_AREAS)]
        rest = n // len(_AREAS)
        yield f"+1{area}{200 + (rest // 10_000) % 800}{rest % 10_000:04d}"
        n += 1


def _request(path: str, key: str, payload: object) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Case:
    name: str
    per_request: int
    connections: int
    requests: int


@dataclass
class Outcome:
    server: str
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
    kind: str, cases: list[Case], seconds: float, profile: bool
) -> tuple[list[Outcome], str]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory(prefix="herald-bench-api-") as tmp:
        proc = ctx.Process(
            target=_server_main, args=(kind, tmp, child, profile and kind == "herald")
        )
        proc.start()
        report = ""
        try:
            if not parent.poll(60):
                raise RuntimeError(f"the {kind} server did not start")
            port, key = parent.recv()
            outcomes = _run_cases(proc.pid, parent, port, key, kind, cases, seconds, profile)
        finally:
            with contextlib.suppress(OSError):
                parent.send("stop")
                report = parent.recv() if parent.poll(60) else ""
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    return outcomes, report


def _run_cases(
    pid: int, parent: Connection, port: int, key: str, kind: str, cases: list[Case],
    seconds: float, profile: bool,
) -> list[Outcome]:  # fmt: skip
    numbers = _numbers()
    warm = [_request("/v1/messages", key, {"to": next(numbers), "from": "ACME", "text": TEXT})]
    asyncio.run(_load(port, warm, 1, 30))  # the first request verifies the key (argon2)
    if profile:
        parent.send("profile-on")
    outcomes = []
    for case in cases:
        path = "/v1/messages" if case.per_request == 1 else "/v1/messages/batch"
        requests = []
        for _ in range(case.requests):
            items = [{"to": next(numbers), "from": "ACME", "text": TEXT}
                     for _ in range(case.per_request)]  # fmt: skip
            payload = items[0] if case.per_request == 1 else {"messages": items}
            requests.append(_request(path, key, payload))
        cpu = _cpu(pid)
        done, messages, elapsed, latencies, codes = asyncio.run(
            _load(port, requests, case.connections, seconds)
        )
        cpu = _cpu(pid) - cpu
        outcomes.append(Outcome(kind, case, done, messages, elapsed, latencies, codes, cpu))
        print(f"  {kind:<11} {case.name:<13} {messages / elapsed:>9,.0f} msgs/s", flush=True)
    return outcomes


def _ms(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--profile", action="store_true", help="profile the herald server")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 6.0
    cases = [
        Case("single", 1, 64, 30_000),
        Case("batch 1,000", 1_000, 4, 150),
        Case("batch 10,000", 10_000, 2, 20),
    ]
    print(f"# bench/api.py: {seconds:g} s per case, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}, uvicorn "
          f"{uvicorn.__version__} (asyncio loop, h11)")  # fmt: skip
    results: dict[tuple[str, str], Outcome] = {}
    for kind in SERVERS:
        outcomes, _ = _run_server(kind, cases, seconds, profile=False)
        for outcome in outcomes:
            results[(kind, outcome.case.name)] = outcome
    header = (
        f"{'case':<13} {'server':<11} {'conns':>5} {'requests':>8} {'msgs/s':>9} {'p50 ms':>8}"
        f" {'p99 ms':>8} {'CPU ms/1k':>9} {'non-2xx':>7} {'herald/peer':>11}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        peer = results[("asgi+store", case.name)].rate
        for kind in SERVERS:
            r = results[(kind, case.name)]
            bad = sum(n for code, n in r.codes.items() if code >= 300)
            cpu = r.cpu_seconds / r.messages * 1e6 if r.messages else 0.0
            ratio = f"{r.rate / peer:.2f}" if kind == "herald" and peer else ""
            print(f"{case.name:<13} {kind:<11} {case.connections:>5} {r.requests:>8} "
                  f"{r.rate:>9,.0f} {_ms(r.latencies, 50):>8.1f} {_ms(r.latencies, 99):>8.1f} "
                  f"{cpu:>9.1f} {bad:>7} {ratio:>11}")  # fmt: skip
    if args.profile:  # a separate pass: the profiler slows the server several times
        print("\n# herald server under cProfile (all cases again), by own time:", flush=True)
        print(_run_server("herald", cases, seconds, profile=True)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
