"""SMPP session throughput over loopback: herald client -> herald server, side by
side with smpp34 client -> smpp34 server, in the same run.

    .venv/bin/python bench/session.py            # windows 1, 10, 64; 3 rounds
    .venv/bin/python bench/session.py --quick    # fewer messages, 1 round
    .venv/bin/python bench/session.py --single   # client and server in one process

What is measured: submit_sm -> submit_sm_resp per second at a window of 1, 10
and 64 requests in flight. The client runs ``window`` coroutines, each
submitting its share of the messages one after another; the server answers
every submit_sm at once with a decimal id from a counter (no store, no text
decoding), so the figure is the SMPP path alone: codec, session, asyncio
shell. The first ``window * WARMUP_PER_SLOT`` answers are not timed.

How it runs (``--split``, the default): each pair is two fresh processes, the
server in one and the client in the other, so neither side shares an
interpreter or an event loop with its peer (a deployed herald meets its
customers over the network). Pairs run one after another, never at once,
alternating herald and smpp34 in every round; the table shows the median of
the rounds. ``--single`` runs client and server on one event loop in one
process instead (the Python work of both ends then shares one core).

The same submit_sm (GSM text, 19 octets, same addresses) goes through both
pairs. smpp34 1.5.0 does its framing, codec and window in Rust on tokio
threads; its "Python path" is what every application pays: one awaited
``submit_sm`` per message on the client and one ``next()`` + ``accept()`` per
message on the server, in Python. Nothing here is asserted; figures move with
the machine's load (compare rows of one run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

SOURCE, DESTINATION = "HERALD", "447700900123"
TEXT = b"Your code is 482913"
SYSTEM_ID, PASSWORD = "bench", "bench123"
WINDOWS = (1, 10, 64)
# Messages per run, by window: a window of 1 is bound by round trips, so fewer.
COUNTS = {1: 5_000, 10: 20_000, 64: 40_000}
QUICK_COUNTS = {1: 1_000, 10: 4_000, 64: 8_000}
# Untimed answers per window slot before the clock starts (imports, first
# allocations, the peer's first reads).
WARMUP_PER_SLOT = 20
# Bound on one client run (bind + warm-up + messages); a run over it reports
# how far it got.
RUN_TIMEOUT = 120.0
# Bound on a server process printing its port.
START_TIMEOUT = 15.0
# Attempts when a free port is taken before smpp34's server binds it.
START_ATTEMPTS = 5


# Tasks that must outlive the call that created them (asyncio keeps weak references).
KEEP: set[asyncio.Future[None]] = set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def emit(record: dict[str, Any]) -> None:
    """One JSON line to the parent, then leave without interpreter teardown:
    smpp34 1.5.0 can crash at exit while tokio threads hold Python objects
    (tests/peers/README.md), which must not lose a finished measurement."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    os._exit(0)


# ---- herald -----------------------------------------------------------------------------


async def herald_server(port: int) -> Any:
    from herald.net import ServerConnection, ServerHandler, ServerSettings, SmppServer
    from herald.smpp.pdus import BindRequest, BindResponse, Request, SubmitSm

    class Answer(ServerHandler):
        def __init__(self) -> None:
            self.count = 0

        async def authenticate(self, conn: ServerConnection, bind: BindRequest) -> BindResponse:
            return bind.response(system_id="herald")

        def on_request(self, conn: ServerConnection, request: Request) -> None:
            assert isinstance(request, SubmitSm)
            self.count += 1
            conn.respond(request.response(message_id=str(self.count)))

    server = SmppServer(Answer(), ServerSettings(port=port))
    await server.start()
    return server


async def herald_client(port: int, window: int) -> tuple[Callable[[], Awaitable[int]], Any]:
    from herald.net import ClientSettings, SmppClient
    from herald.smpp.pdus import BindTransceiver, SubmitSm
    from herald.smpp.session import SessionConfig
    from herald.smpp.states import Role

    client = SmppClient(ClientSettings(
        "127.0.0.1", port, BindTransceiver(system_id=SYSTEM_ID, password=PASSWORD),
        session=SessionConfig(role=Role.ESME, window=window, response_timeout=60)))
    await client.start()
    await client.wait_bound(10)
    pdu = SubmitSm(source_addr=SOURCE, destination_addr=DESTINATION, short_message=TEXT)

    async def submit() -> int:
        return (await client.submit(pdu)).command_status

    return submit, client.stop


# ---- smpp34 -----------------------------------------------------------------------------


async def smpp34_server(port: int) -> Any:
    import smpp34

    server = smpp34.Server("127.0.0.1", port, system_id="smpp34")
    await server.start()

    async def answer() -> None:
        count = 0
        while True:
            event = await server.next()
            if isinstance(event, smpp34.SubmitSmEvent):
                count += 1
                event.accept(str(count))

    KEEP.add(asyncio.ensure_future(answer()))
    return server


async def smpp34_client(port: int, window: int) -> tuple[Callable[[], Awaitable[int]], Any]:
    import smpp34

    client = smpp34.Client("127.0.0.1", port, SYSTEM_ID, PASSWORD, bind_type="TRX",
                           window_size=window)
    smsc = await client.connect()

    async def submit() -> int:
        resp = await smsc.submit_sm(DESTINATION, TEXT, source_addr=SOURCE)
        return int(resp.command_status)

    async def stop() -> None:
        await asyncio.wait_for(smsc.unbind(), 2)

    return submit, stop


SERVERS = {"herald": herald_server, "smpp34": smpp34_server}
CLIENTS = {"herald": herald_client, "smpp34": smpp34_client}


# ---- one measurement ----------------------------------------------------------------------


async def drive(submit: Callable[[], Awaitable[int]], window: int, count: int) -> dict[str, Any]:
    """``window`` coroutines submit ``count`` messages in all; time the last
    ``count`` after the warm-up."""
    warmup = window * WARMUP_PER_SLOT
    failures = 0
    done = 0
    started = 0.0

    async def worker(share: int) -> None:
        nonlocal failures, done, started
        for _ in range(share):
            if await submit() != 0:
                failures += 1
            done += 1
            if done == warmup:
                started = time.perf_counter()

    total = warmup + count
    shares = [total // window + (1 if k < total % window else 0) for k in range(window)]
    with contextlib.suppress(TimeoutError):  # reported as a short count
        await asyncio.wait_for(asyncio.gather(*(worker(s) for s in shares)), RUN_TIMEOUT)
    elapsed = time.perf_counter() - started if started else float("nan")
    timed = max(0, done - warmup)
    return {"count": timed, "seconds": elapsed, "failures": failures,
            "rate": timed / elapsed if started and elapsed > 0 else 0.0}


async def run_client(impl: str, port: int, window: int, count: int) -> dict[str, Any]:
    submit, stop = await CLIENTS[impl](port, window)
    result = await drive(submit, window, count)
    with contextlib.suppress(Exception):  # measured already; a slow unbind does not matter
        await asyncio.wait_for(stop(), 2)
    return result


async def start_server(impl: str) -> int:
    """Start ``impl``'s server on a free port (smpp34 cannot report one it picked
    from port 0); retry when another process took the port first."""
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        try:
            await SERVERS[impl](port)
            return port
        except Exception as exc:
            if attempt == START_ATTEMPTS or "in use" not in str(exc):
                raise
    raise AssertionError("unreachable")


async def run_single(impl: str, window: int, count: int) -> dict[str, Any]:
    port = await start_server(impl)
    return await run_client(impl, port, window, count)


async def serve(impl: str) -> None:
    port = await start_server(impl)
    print(json.dumps({"port": port}), flush=True)
    loop = asyncio.get_running_loop()
    closed = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: closed.done() or closed.set_result(None))
    await closed  # the parent closes our stdin when the run is over
    os._exit(0)


# ---- the parent ---------------------------------------------------------------------------


def child(*args: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), *args]


def measure_split(impl: str, window: int, count: int) -> dict[str, Any]:
    """``impl`` is "herald", "smpp34", or "<server>/<client>" for a cross pair."""
    server_impl, _, client_impl = impl.partition("/")
    client_impl = client_impl or server_impl
    server = subprocess.Popen(child("_serve", server_impl), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # bounded by the server's own start
        if not line:
            raise RuntimeError(f"{server_impl} server did not start")
        port = json.loads(line)["port"]
        done = subprocess.run(child("_client", client_impl, str(port), str(window), str(count)),
                              capture_output=True, text=True, timeout=RUN_TIMEOUT + 30,
                              check=False)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"{impl} client gave no result: {done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def measure_single(impl: str, window: int, count: int) -> dict[str, Any]:
    done = subprocess.run(child("_single", impl, str(window), str(count)), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT + 30, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{impl} pair gave no result: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        role, impl, *rest = sys.argv[1:]
        if role == "_serve":
            asyncio.run(serve(impl))
        elif role == "_client":
            port, window, count = map(int, rest)
            emit(asyncio.run(run_client(impl, port, window, count)))
        elif role == "_single":
            window, count = map(int, rest)
            emit(asyncio.run(run_single(impl, window, count)))
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one round")
    parser.add_argument("--single", action="store_true",
                        help="client and server in one process (default: two processes)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per cell (default 3)")
    parser.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS))
    parser.add_argument("--cross", action="store_true",
                        help="also herald client -> smpp34 server and smpp34 client -> herald "
                             "server (two-process mode): which end limits a pair")
    args = parser.parse_args()
    counts = QUICK_COUNTS if args.quick else COUNTS
    rounds = args.rounds or (1 if args.quick else 3)
    measure = measure_single if args.single else measure_split
    mode = "one process per pair" if args.single else "server and client in separate processes"
    print(f"submit_sm -> submit_sm_resp over loopback, {mode}; median of {rounds} round(s)")
    header = (f"{'window':>6} {'messages':>9} {'herald msg/s':>13} {'smpp34 msg/s':>13} "
              f"{'herald/smpp34':>14}   rounds (herald | smpp34)")
    print(header)
    print("-" * len(header))
    for window in args.windows:
        count = counts.get(window, counts[max(counts)])
        rates: dict[str, list[float]] = {"herald": [], "smpp34": []}
        for _ in range(rounds):
            for impl in ("herald", "smpp34"):
                result = measure(impl, window, count)
                if result["failures"] or result["count"] < count:
                    print(f"  {impl} window {window}: {result}", file=sys.stderr)
                rates[impl].append(result["rate"])
        ours, peer = (statistics.median(rates[k]) for k in ("herald", "smpp34"))
        detail = (" ".join(f"{r:.0f}" for r in rates["herald"]) + " | "
                  + " ".join(f"{r:.0f}" for r in rates["smpp34"]))
        print(f"{window:>6} {count:>9} {ours:>13.0f} {peer:>13.0f} "
              f"{ours / peer if peer else float('nan'):>13.2f}x   {detail}")
    if args.cross:
        cross(args.windows, counts, rounds)


def cross(windows: list[int], counts: dict[int, int], rounds: int) -> None:
    pairs = ("smpp34/herald", "herald/smpp34")
    print(f"\ncross pairs (server/client), two processes; median of {rounds} round(s)")
    header = f"{'window':>6} {'messages':>9} " + " ".join(f"{p + ' msg/s':>20}" for p in pairs)
    print(header)
    print("-" * len(header))
    for window in windows:
        count = counts.get(window, counts[max(counts)])
        rates = {p: statistics.median(measure_split(p, window, count)["rate"]
                                      for _ in range(rounds)) for p in pairs}
        print(f"{window:>6} {count:>9} " + " ".join(f"{rates[p]:>20.0f}" for p in pairs))


if __name__ == "__main__":
    main()
