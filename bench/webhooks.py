"""Webhook POST cost: herald's own HTTP/1.1 client beside aiohttp's and httpx, in one run.

    .venv/bin/python bench/webhooks.py            # 20,000 POSTs per run, 3 interleaved rounds
    .venv/bin/python bench/webhooks.py --quick    # 5,000 POSTs per run, 1 round
    .venv/bin/python bench/webhooks.py --only herald/uvloop aiohttp/uvloop

What is measured: CPU time of the *sending* process per signed webhook POST
(``time.process_time``: user + system, all threads), over loopback, with
``--in-flight`` POSTs (32) outstanding, after ``--warmup`` untimed POSTs
(1,000). Each POST carries the same 306-octet JSON status event and fresh
``Herald-Timestamp`` / ``Herald-Signature`` headers (HMAC-SHA256 over the
body, herald's :func:`~herald.webhooks.signature_header`), so signing is in
every row alike. The answer's status is checked; its body is empty.

The clients, each with a pool of ``--in-flight`` connections to one origin:

- ``herald``: :class:`herald.webhooks._http.HttpClient` (``asyncio.Protocol``
  over httptools' C parser), ``max_per_origin`` = in flight; ``herald-8``:
  the same with its default ``max_per_origin`` of 8 (24 POSTs wait their turn);
- ``aiohttp``: ``aiohttp.ClientSession`` (``TCPConnector(limit_per_host=in
  flight)``), ``async with session.post(...)``: status read, body released;
- ``httpx``: ``httpx.AsyncClient`` as ``herald.webhooks.sender`` uses it
  today: ``send(request, stream=True)``, status read, body not read,
  ``aclose()``.

How it runs: the receiver is a separate process (a minimal ``asyncio.Protocol``
+ httptools request parser on uvloop, answering ``200`` with
``Content-Length: 0`` and keep-alive, counting the connections it accepts).
Each (client, loop) run is a fresh process, so no run inherits another's
loop, imports or heap; runs go one after another, never at once, every
configuration once per round, rounds interleaved. The table shows the median
of the rounds, with every round's figure; ``connections`` is what the
receiver accepted during the run (warm-up included). Nothing is asserted;
the machine's other load moves the figures (compare rows of one run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

COUNT, QUICK_COUNT = 20_000, 5_000
WARMUP, QUICK_WARMUP = 1_000, 500
IN_FLIGHT = 32
ROUNDS = 3
#: Bound on one client run (connect, warm-up, POSTs): httpx needs ~2 ms of CPU a POST.
RUN_TIMEOUT = 300.0
CONFIGS = ("herald/asyncio", "herald/uvloop", "herald-8/uvloop", "aiohttp/asyncio",
           "aiohttp/uvloop", "httpx/asyncio")  # fmt: skip
#: herald's default bound: 8 connections per origin, the other POSTs wait their turn.
PER_ORIGIN_DEFAULT = 8
SECRET = "whsec_bench_0123456789abcdef0123456789abcdef"
#: A status event as herald's payload builder writes it (compact JSON, 306 octets).
BODY = json.dumps(
    {
        "event_id": "evt_01JH2Q7R8S9T0V1W2X3Y4Z5A6B_delivered",
        "type": "message.status",
        "created_at": "2027-01-15T08:00:01.250Z",
        "data": {
            "message_id": "01JH2Q7R8S9T0V1W2X3Y4Z5A6B",
            "status": "delivered",
            "to": "+4477009001",
            "segments": 1,
            "accepted_at": "2027-01-15T08:00:00.123Z",
            "delivered_at": "2027-01-15T08:00:01.200Z",
        },
    },
    separators=(",", ":"),
).encode()
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def use_loop(name: str) -> None:
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# -- the receiver (its own process) -----------------------------------------------------------


async def receive() -> None:
    """Answer every request 200; on each line on stdin, print and reset the counts."""
    import httptools

    connections = requests = 0

    class Answer(asyncio.Protocol):
        def __init__(self) -> None:
            self.parser = httptools.HttpRequestParser(self)
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            nonlocal connections
            connections += 1
            self.transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                assert self.transport is not None
                self.transport.close()

        def on_message_complete(self) -> None:
            nonlocal requests
            requests += 1
            assert self.transport is not None
            self.transport.write(ANSWER)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Answer, "127.0.0.1", 0, backlog=1024)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    closed = loop.create_future()
    cpu = time.process_time()

    def command() -> None:
        nonlocal connections, requests, cpu
        if not sys.stdin.readline():
            if not closed.done():
                closed.set_result(None)
            return
        now = time.process_time()
        print(json.dumps({"connections": connections, "requests": requests, "cpu": now - cpu}),
              flush=True)  # fmt: skip
        connections = requests = 0
        cpu = now

    loop.add_reader(sys.stdin.fileno(), command)
    await closed  # the parent closes our stdin when the benchmark is over
    server.close()


# -- the clients -----------------------------------------------------------------------------

Post = Callable[[], Awaitable[int]]


def signed_headers() -> list[tuple[str, str]]:
    from herald.webhooks import (
        EVENT_ID_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        signature_header,
    )

    timestamp = int(time.time())
    return [
        ("Content-Type", "application/json"),
        ("Accept-Encoding", "identity"),
        (EVENT_ID_HEADER, "evt_01JH2Q7R8S9T0V1W2X3Y4Z5A6B_delivered"),
        (TIMESTAMP_HEADER, str(timestamp)),
        (SIGNATURE_HEADER, signature_header(SECRET, timestamp, BODY)),
    ]


async def herald_client(
    port: int, in_flight: int, per_origin: int | None = None
) -> tuple[Post, Callable[[], Awaitable[None]]]:
    from herald.webhooks._http import HttpClient, Origin

    client = HttpClient(max_per_origin=per_origin or in_flight)
    origin = Origin("http", "127.0.0.1", port, None)

    async def post() -> int:
        headers = [(k.encode(), v.encode()) for k, v in signed_headers()]
        return (await client.post(origin, b"/hook", headers, BODY)).status

    return post, client.aclose


async def aiohttp_client(port: int, in_flight: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=in_flight, limit_per_host=in_flight),
        auto_decompress=False,
    )
    url = f"http://127.0.0.1:{port}/hook"

    async def post() -> int:
        async with session.post(url, data=BODY, headers=signed_headers(),
                                allow_redirects=False) as response:  # fmt: skip
            return response.status

    return post, session.close


async def httpx_client(port: int, in_flight: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    import httpx

    from herald.webhooks._http import DEFAULT_USER_AGENT

    client = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
        headers={"User-Agent": DEFAULT_USER_AGENT},
    )
    url = httpx.URL(f"http://127.0.0.1:{port}/hook")

    async def post() -> int:
        request = client.build_request("POST", url, content=BODY, headers=signed_headers())
        response = await client.send(request, stream=True)
        try:
            return response.status_code
        finally:
            await response.aclose()

    return post, client.aclose


async def herald_8_client(port: int, in_flight: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    return await herald_client(port, in_flight, PER_ORIGIN_DEFAULT)


CLIENTS = {"herald": herald_client, "herald-8": herald_8_client, "aiohttp": aiohttp_client,
           "httpx": httpx_client}  # fmt: skip


async def drive(impl: str, port: int, count: int, warmup: int, in_flight: int) -> dict[str, Any]:
    """``in_flight`` coroutines POST ``warmup + count`` in all; time the last ``count``."""
    post, close = await CLIENTS[impl](port, in_flight)
    done = failures = 0
    started = cpu0 = 0.0

    async def worker(share: int) -> None:
        nonlocal done, failures, started, cpu0
        for _ in range(share):
            try:
                if await post() != 200:
                    failures += 1
            except Exception:
                failures += 1
            done += 1
            if done == warmup:
                started, cpu0 = time.perf_counter(), time.process_time()

    total = warmup + count
    shares = [total // in_flight + (1 if k < total % in_flight else 0) for k in range(in_flight)]
    with contextlib.suppress(TimeoutError):  # reported as a short count
        async with asyncio.timeout(RUN_TIMEOUT):
            await asyncio.gather(*(worker(s) for s in shares))
    cpu, seconds = time.process_time() - cpu0, time.perf_counter() - started
    with contextlib.suppress(Exception):
        await close()
    timed = max(0, done - warmup)
    return {"count": timed, "failures": failures, "cpu": cpu, "seconds": seconds}


# -- the parent ------------------------------------------------------------------------------


def child(*args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *args]


class Receiver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(child("_receive"), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        self.port = int(json.loads(self.read())["port"])

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded by the receiver's own start / answer
        if not line:
            raise RuntimeError("the receiver ended")
        return line

    def counts(self) -> dict[str, Any]:
        """Connections, requests and CPU seconds since the last call."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        result: dict[str, Any] = json.loads(self.read())
        return result

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(receiver: Receiver, config: str, count: int, warmup: int,
            in_flight: int) -> dict[str, Any]:  # fmt: skip
    impl, loop = config.split("/")
    receiver.counts()  # zero the receiver's counters
    done = subprocess.run(
        child("_client", impl, loop, str(receiver.port), str(count), str(warmup), str(in_flight)),
        capture_output=True, text=True, timeout=RUN_TIMEOUT + 30, check=False,
    )  # fmt: skip
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{config} gave no result: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    peer = receiver.counts()
    result["connections"] = peer["connections"]
    result["receiver_cpu"] = peer["cpu"]
    result["requests"] = peer["requests"]
    return result


def table(results: dict[str, list[dict[str, Any]]]) -> str:
    head = (f"| {'client':<8} | {'loop':<7} | {'CPU µs per POST':>15} | {'POSTs/s':>8} |"
            f" {'connections':>11} | {'receiver CPU µs/POST':>20} |"
            f" {'rounds: CPU µs per POST':<24} |")  # fmt: skip
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for config, runs in results.items():
        impl, loop = config.split("/")
        per_post = [1e6 * r["cpu"] / r["count"] for r in runs if r["count"]]
        rates = [r["count"] / r["seconds"] for r in runs if r["count"]]
        peer = [1e6 * r["receiver_cpu"] / r["requests"] for r in runs if r["requests"]]
        conns = sorted({r["connections"] for r in runs})
        conn_text = str(conns[0]) if len(conns) == 1 else f"{conns[0]}-{conns[-1]}"
        cpu = f"{statistics.median(per_post):,.1f}" if per_post else "-"
        rate = f"{statistics.median(rates):,.0f}" if rates else "-"
        peer_text = f"{statistics.median(peer):,.1f}" if peer else "-"
        detail = " ".join(f"{v:,.1f}" for v in per_post)
        lines.append(f"| {impl:<8} | {loop:<7} | {cpu:>15} | {rate:>8} | {conn_text:>11} |"
                     f" {peer_text:>20} | {detail:<24} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_receive":
        use_loop("uvloop")
        asyncio.run(receive())
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        impl, loop, *numbers = sys.argv[2:]
        use_loop(loop)
        result = asyncio.run(drive(impl, *map(int, numbers)))
        print(json.dumps(result), flush=True)
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer POSTs, one round")
    parser.add_argument("--count", type=int, help=f"timed POSTs per run (default {COUNT})")
    parser.add_argument("--warmup", type=int, help=f"untimed POSTs first (default {WARMUP})")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {ROUNDS})")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT)
    parser.add_argument("--only", nargs="+", choices=CONFIGS, help="client/loop pairs to run")
    args = parser.parse_args()
    count = args.count or (QUICK_COUNT if args.quick else COUNT)
    warmup = args.warmup if args.warmup is not None else (QUICK_WARMUP if args.quick else WARMUP)
    rounds = args.rounds or (1 if args.quick else ROUNDS)
    configs = args.only or list(CONFIGS)
    print(f"# bench/webhooks.py: {count} signed POSTs of {len(BODY)} octets per run after "
          f"{warmup} warm-up, {args.in_flight} in flight, receiver in its own process (uvloop); "
          f"median of {rounds} interleaved round(s)")  # fmt: skip
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    receiver = Receiver()
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    try:
        for _ in range(rounds):
            for config in configs:
                result = measure(receiver, config, count, warmup, args.in_flight)
                if result["failures"] or result["count"] < count:
                    print(f"# {config}: {result}", file=sys.stderr)
                results[config].append(result)
    finally:
        receiver.close()
    print(table(results))
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
