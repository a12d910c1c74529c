"""herald against Debian Kannel 1.4.5 on the customer's HTTP round trip.

    .venv/bin/python bench/vs_kannel.py                    # 4 settings x 3 rounds, + SMPP path
    .venv/bin/python bench/vs_kannel.py --quick            # 1 round, small N: a smoke run
    .venv/bin/python bench/vs_kannel.py --only closed32 --rounds 5
    .venv/bin/python bench/vs_kannel.py --herald-src /tmp/old/src   # herald from another tree
    .venv/bin/python bench/vs_kannel.py --kannel-store file          # Kannel with its store file

Theory of operation. Every run starts fresh processes on 127.0.0.1 (2 shared
cores; the load average is printed before each run):

    load generator ──HTTP──> gateway ──one SMPP transceiver bind──> herald sim
    (this process)           (Kannel or herald)                     (upstream SMSC)
    callback sink  <──HTTP── gateway <──deliver_sm receipt────────────────┘
    (own process)

- **Upstream**: ``herald sim --receipt-delay 0 --record FILE`` (``--window``
  only with ``--sim-window``; its default is 64 receipts in flight per bind).
  The record gives the time each submit_sm arrived upstream; a message is
  found there by the sha256 of its text, which is unique per message. With
  a receipt delay of 0 the sim writes a few per cent of receipts *before*
  their submit_sm_resp (its receipt timer pops what is due within 5 ms in
  the same loop turn, while answers go out one turn later; seen with tshark:
  28 of 1,050 receipts, exactly the 28 Kannel could not match). Kannel drops
  such a receipt for good ("got DLR but could not find message"), so those
  messages count as lost for Kannel and the notes under the table say how
  many; herald matches them. ``--receipt-delay 0.02`` avoids it.
- **Kannel**: bearerbox + smsbox from a kannel.conf written here. One
  ``smsc = smpp`` group, ``transceiver-mode = true``, ``max-pending-submits =
  64``, no ``throughput`` (unlimited); bearerbox ``dlr-storage = internal``
  (memory), ``sms-outgoing-queue-limit = -1`` and ``sms-incoming-queue-limit =
  -1`` (no queue bound; Kannel's own default cap is 1,000,000),
  ``smsbox-max-pending = 1000`` (messages bearerbox -> smsbox awaiting smsbox's
  ack, default 100; smsbox acks a DLR as soon as it has started the dlr-url
  request); smsbox ``max-pending-requests = 512`` (dlr-url requests in flight,
  Kannel's default, far above what the sink needs), ``http-request-retry = 0``
  (default: the sink never fails), ``immediate-sendsms-reply = false`` (the
  default: sendsms answers 202 "0: Accepted for delivery" once bearerbox has
  taken the message, the moment closest to herald's "stored, then 202"). No
  message store by default (Kannel then keeps its queue in memory only, which
  herald never does); ``--kannel-store file`` adds ``store-type = file``
  (each message appended and fflush()ed, no fsync: it survives a crash of
  the process, as herald's SQLite WAL with synchronous NORMAL does).
  ``log-level = 2`` and ``-v 2`` (warnings, in the log files and on the
  console) and no access logs, like herald's default
  (``--log-level warning``, no access log). Each message is ``GET
  /cgi-bin/sendsms?...&dlr-mask=19&dlr-url=...`` (19 = delivered +
  undelivered + SMSC reject: final states only); the dlr-url is
  ``http://127.0.0.1:SINK/dlr?t=<token>&d=%d``.
- **herald**: ``herald serve --config FILE`` on a fresh data dir, one
  connector to the sim with 1 bind, window 64, TPS 100,000, an account made
  with ``herald accounts create shop --rate-limit 100000`` (the CLI of the
  herald under test, so its own store schema); default ``[webhooks]`` settings (concurrency 32)
  but a short backoff. Each message is ``POST /v1/messages`` with
  ``reference = <token>``, ``callback_url = http://127.0.0.1:SINK/hook`` and
  ``callback_events = "final"``. A herald that does not know
  ``callback_events`` answers 422 naming it: the first request finds out, the
  run falls back to requests without it (herald then also posts a ``sent``
  event per message, which the sink receives and does not count), and a
  warning line says so. **herald, batched callbacks** is a third system:
  the same, after ``herald accounts set shop --webhook-batch 100
  --webhook-batch-wait 20``; when that command is refused the row says "not
  available in this herald".
- **Load generator** (this process, asyncio): a minimal keep-alive HTTP/1.1
  client per connection (one request at a time on each; httpx would cost
  more CPU than the gateways). Closed loop: ``--count`` messages, C workers
  each with its own connection. Open loop: a fixed rate for ``--duration``
  seconds, each message on an idle connection or a new one, at most
  ``--max-in-flight`` (4,000) outstanding; when that bound is reached the
  schedule slips, shown as "send lag p99". A request that gets no answer in
  30 s counts as an error.
- **Callback sink**: its own process (this script, ``_sink``), so its parsing
  never competes with the load generator's event loop: an ``asyncio.Protocol``
  on httptools' parser (a hand-rolled one, Content-Length bodies only, when
  httptools is missing), keep-alive, answering 200 with an empty body. It
  takes Kannel's GET dlr-url calls and herald's POSTed events, one per POST or
  ``{"events": [...]}``, and appends ``token, arrival time, status`` to a
  file this process reads as it grows.
  Final = Kannel ``%d`` 1, 2 or 16; herald ``message.status`` with status
  delivered, undelivered, expired, rejected or failed. Signatures are not
  checked.

Each run: start sim, sink, gateway (fresh: a new data dir for herald, a new
bearerbox + smsbox for Kannel); a warm-up of ``--warmup`` messages (closed
loop, receipts awaited) on the same connections; then the timed part; then
the wait for the final receipts, until all are in, or ``--quiet`` (5 s) pass
without a new one, or ``--drain-timeout`` (60 s) after the last accept;
then everything is stopped. Settings run one after another; within a
setting, rounds interleave the systems (Kannel, herald, herald batched,
Kannel, ...). Figures per run, medians over rounds in the tables, with
every round's value in the last column:

- **accepted/s**: accepted / (first request sent -> last accept answer);
- **receipts/s**: final receipts / (first request sent -> last final receipt
  at the sink), the end-to-end rate;
- **receipt latency** p50/p99: request sent -> final receipt at the sink;
- **to upstream** p50/p99: request sent -> submit_sm at the sim (both
  ``time.time()`` on one machine);
- **accept latency** p50/p99: request sent -> 202 answer;
- **CPU ms/msg**: user + system CPU of the gateway's whole process tree
  (bearerbox + smsbox; herald serve and any process it starts; from
  /proc/PID/stat, children reaped included) from the first request to the
  end of the wait for final receipts, divided by the messages sent; and the CPU seconds of
  the sim, the sink and the load generator for context;
- counts: accepted, final receipts, lost (accepted, no final receipt within
  the drain bound), refused/errors, callback POSTs and events per POST.

Ratios are herald / Kannel of the medians: above 1 is better for rates,
below 1 is better for latencies and CPU. At the end, unless ``--no-smpp``,
``bench/e2e.py --only smpp`` runs as a subprocess and its table is printed
as it is (herald's SMPP path; Kannel has no SMPP server side to compare).
Nothing is asserted; every wait is bounded; on any failure or interrupt
every child (bearerbox, smsbox, herald, sim, sink) is killed with its
process group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, cast

SCRIPT: Final = Path(__file__).resolve()
ROOT: Final = SCRIPT.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from crash.procs import (  # noqa: E402
    HERALD,
    HeraldProcess,
    SimProcess,
    herald_config,
)
from herald.sim import read_records  # noqa: E402

try:  # the sink's parser when available (a project dependency since f47a4ff)
    import httptools
except ImportError:  # pragma: no cover - the hand-rolled parser takes over
    httptools = None  # type: ignore[assignment]

# -- settings and bounds ---------------------------------------------------------------

COUNT, QUICK_COUNT = 5_000, 1_000
DURATION, QUICK_DURATION = 10.0, 2.0
WARMUP, QUICK_WARMUP = 300, 100
#: Outstanding requests in the open loop (one connection each, HTTP/1.1 has no
#: multiplexing); the schedule slips when they are all taken.
MAX_IN_FLIGHT: Final = 4_000
#: Seconds after the last accept answer to wait for final receipts.
DRAIN_TIMEOUT: Final = 60.0
#: Seconds without a new final receipt after which the missing ones count as lost
#: (Kannel drops some receipts for good, see ``Kannel.unmatched_receipts``).
QUIET: Final = 5.0
#: Seconds one HTTP request to a gateway may take (then: an error, the
#: connection is dropped).
REQUEST_TIMEOUT: Final = 30.0
#: Bound on sending one run's messages (the load part alone), seconds.
LOAD_TIMEOUT: Final = 600.0
#: Bound on Kannel's start (measured ~1 s) and on its stop, seconds.
KANNEL_START_TIMEOUT: Final = 30.0
STOP_GRACE: Final = 5.0
#: Seconds the sim needs to flush its record (it flushes every 0.5 s).
RECORD_FLUSH: Final = 1.0
#: Poll period of the sink's output file and of start waits, seconds.
POLL: Final = 0.1
#: Bound on the SMPP path run (bench/e2e.py), seconds.
SMPP_TIMEOUT: Final = 1_800.0
SMPP_COUNT, QUICK_SMPP_COUNT = 20_000, 3_000
UPSTREAM_WINDOW, UPSTREAM_TPS = 64, 100_000
KANNEL_PENDING_SUBMITS: Final = 64
#: Kannel dlr-mask: 1 delivered + 2 undelivered + 16 SMSC reject (final states).
KANNEL_DLR_MASK: Final = 19
KANNEL_FINAL_TYPES: Final = {"1": "delivered", "2": "undelivered", "16": "rejected"}
HERALD_FINAL: Final = frozenset({"delivered", "undelivered", "expired", "rejected", "failed"})
WEBHOOK_BATCH, WEBHOOK_BATCH_WAIT = 100, 20
#: The account's rate limit, messages/s (the highest an older herald accepts).
ACCOUNT_RATE: Final = 100_000
#: Bound on one herald CLI command (accounts create / set), seconds.
CLI_TIMEOUT: Final = 120.0
SENDER: Final = "SHOP"
NUMBER_PREFIX: Final = "4479111"  # UK mobile range, + 5 digits (herald checks numbers)
SINK_READY: Final = "sink listening on"

SETTINGS: Final = {  # name -> (title, closed-loop concurrency or None, open-loop rate or None)
    "closed32": ("closed loop, 32 in flight", 32, None),
    "closed8": ("closed loop, 8 in flight", 8, None),
    "open500": ("open loop, 500 msg/s", None, 500.0),
    "open2000": ("open loop, 2,000 msg/s", None, 2_000.0),
}
KANNEL, HERALD_SYS, BATCHED = "Kannel", "herald", "herald batched"
CLOCK_TICK: Final = os.sysconf("SC_CLK_TCK")


# -- processes: CPU of a tree, process groups -------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime+cutime+cstime in ticks) of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), sum(int(f) for f in fields[11:15])


def tree_cpu(roots: Sequence[int]) -> float:
    """CPU seconds of ``roots`` and all their live descendants (children they
    reaped are in their cutime/cstime), from /proc."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], ticks[int(entry.name)] = st
    wanted = {r for r in roots if r in ticks}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in wanted and pid not in wanted}
        wanted |= more
        grew = bool(more)
    return sum(ticks[p] for p in wanted) / CLOCK_TICK


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


#: Process group leaders started by this script; killed on the way out, whatever happens.
CHILD_GROUPS: set[int] = set()


def kill_group(pgid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_all_children() -> None:
    for pgid in list(CHILD_GROUPS):
        kill_group(pgid)
        CHILD_GROUPS.discard(pgid)


async def stop_proc(proc: asyncio.subprocess.Process, grace: float = STOP_GRACE) -> None:
    """SIGTERM the process's group, wait ``grace`` s, then SIGKILL the group."""
    if proc.returncode is None:
        kill_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            kill_group(proc.pid)
            await asyncio.wait_for(proc.wait(), grace)
    kill_group(proc.pid)  # anything it left in its group
    CHILD_GROUPS.discard(proc.pid)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def free_ports(count: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


# -- the load generator's HTTP client ---------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection, one request at a time; requests are
    prebuilt bytes. Just enough HTTP for Kannel's and herald's answers
    (Content-Length bodies; ``Connection: close`` honoured)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        reused = self.writer is not None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            partial = exc.partial if isinstance(exc, asyncio.IncompleteReadError) else b""
            if not reused or partial:
                raise
            # the server closed an idle keep-alive connection (Kannel does after a
            # while): nothing was answered, so the request goes again on a new one
            self.close()
            return await self.request(raw)
        status = int(head.split(b" ", 2)[1])
        length, close = 0, head.startswith(b"HTTP/1.0")
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Msg:
    token: str
    text: str
    raw: bytes  # the whole HTTP request
    sent: float = 0.0  # time.time() when written
    due: float = 0.0  # open loop: when it was scheduled
    accepted: float | None = None
    status: int | None = None


@dataclass
class Load:
    """What the load generator saw in one timed part."""

    first: float = 0.0
    last_accept: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    peak_in_flight: int = 0


async def send(conn: Conn, msg: Msg, load: Load) -> bool:
    """Send one message; False when the connection failed (dropped)."""
    msg.sent = time.time()
    try:
        status, _ = await asyncio.wait_for(conn.request(msg.raw), REQUEST_TIMEOUT)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
            IndexError, TimeoutError) as exc:
        load.errors[type(exc).__name__] += 1
        conn.close()
        return False
    msg.status = status
    load.statuses[status] += 1
    if status == 202:
        msg.accepted = time.time()
        load.last_accept = max(load.last_accept, msg.accepted)
    return True


async def closed_loop(conns: list[Conn], msgs: list[Msg]) -> Load:
    """Each connection sends the next message when its previous answer came."""
    load = Load(connections=len(conns), peak_in_flight=len(conns))
    work: Iterator[Msg] = iter(msgs)
    load.first = time.time()

    async def worker(conn: Conn) -> None:
        for msg in work:  # the workers share one iterator
            await send(conn, msg, load)

    async with asyncio.timeout(LOAD_TIMEOUT), asyncio.TaskGroup() as group:
        for conn in conns:
            group.create_task(worker(conn))
    return load


async def open_loop(port: int, idle: list[Conn], msgs: list[Msg], rate: float,
                    max_in_flight: int) -> Load:
    """Message k is due at start + k/rate, whatever the answers do, on an idle
    connection or a new one; at most ``max_in_flight`` outstanding."""
    load = Load(connections=len(idle))
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    in_flight = 0
    start_loop, start_wall = loop.time() + 0.01, time.time() + 0.01

    async def one(msg: Msg) -> None:
        nonlocal in_flight
        conn = idle.pop() if idle else None
        if conn is None:
            conn = Conn(port)
            load.connections += 1
        in_flight += 1
        load.peak_in_flight = max(load.peak_in_flight, in_flight)
        try:
            if await send(conn, msg, load):
                idle.append(conn)
        finally:
            in_flight -= 1
            slots.release()

    load.first = start_wall
    deadline = loop.time() + LOAD_TIMEOUT
    for k, msg in enumerate(msgs):
        due = start_loop + k / rate
        msg.due = start_wall + k / rate
        if (delay := due - loop.time()) > 0.001:
            await asyncio.sleep(delay)
        await asyncio.wait_for(slots.acquire(), max(0.0, deadline - loop.time()))
        task = asyncio.create_task(one(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=max(1.0, deadline - loop.time()))
    for task in tasks:
        task.cancel()
    return load


# -- the callback sink (its own process) -------------------------------------------------


def record_request(out: list[str], path: bytes, body: bytes, now: float) -> None:
    """Append one callback's events: ``E<TAB>time<TAB>token<TAB>status<TAB>final``
    per event, ``P<TAB>events`` per request, ``X<TAB>why`` for what is unreadable."""
    if path.startswith(b"/dlr?"):  # Kannel: ?t=<token>&d=<%d>
        query = dict(p.split(b"=", 1) for p in path[5:].split(b"&") if b"=" in p)
        token, kind = query.get(b"t", b"").decode(), query.get(b"d", b"").decode()
        final = kind in KANNEL_FINAL_TYPES
        out.append(f"E\t{now:.6f}\t{token}\t{KANNEL_FINAL_TYPES.get(kind, kind)}"
                   f"\t{int(final)}\nP\t1\n")
        return
    try:
        doc = json.loads(body)
        events = doc.get("events", [doc])
    except (ValueError, AttributeError):
        out.append("X\tunreadable body\n")
        return
    for event in events:
        event = event if isinstance(event, dict) else {}
        message = event.get("message") or {}
        status = str(message.get("status"))
        final = event.get("type") == "message.status" and status in HERALD_FINAL
        out.append(f"E\t{now:.6f}\t{message.get('reference')}\t{status}\t{int(final)}\n")
    out.append(f"P\t{len(events)}\n")


OK_ANSWER: Final = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class HttptoolsSink(asyncio.Protocol):
    """The sink's HTTP/1.1 server side on httptools' parser (keep-alive)."""

    def __init__(self, out: list[str]) -> None:
        assert httptools is not None
        self.out = out
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.now = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.now = time.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.out.append("X\tHTTP parse error\n")
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        record_request(self.out, self.url, b"".join(self.body), self.now)
        self.url, self.body = b"", []
        self.transport.write(OK_ANSWER)
        if not self.parser.should_keep_alive():
            self.transport.close()


class PlainSink(asyncio.Protocol):
    """The same without httptools: a minimal parser (Content-Length bodies only;
    a chunked request is answered 501 and counted as a problem)."""

    MAX_HEAD: Final = 16 * 1024

    def __init__(self, out: list[str]) -> None:
        self.out = out
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        now = time.time()
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buf[:end])
            lower = head.lower()
            length = 0
            if (at := lower.find(b"\r\ncontent-length:")) >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17: stop if stop >= 0 else None])
            elif b"\r\ntransfer-encoding:" in lower:
                self.out.append("X\tchunked request\n")
                self.transport.write(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
                self.transport.close()
                return
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4: total])
            del self.buf[:total]
            line = head.split(b"\r\n", 1)[0].split(b" ")
            record_request(self.out, line[1] if len(line) > 2 else b"", body, now)
            self.transport.write(OK_ANSWER)
        if len(self.buf) > self.MAX_HEAD:
            self.transport.close()


async def sink_main(out_path: Path) -> None:
    """The sink process: serve until SIGTERM, flushing records every 50 ms."""
    out: list[str] = []
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    protocol = PlainSink if httptools is None else HttptoolsSink
    server = await loop.create_server(lambda: protocol(out), "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    with out_path.open("a") as f:
        print(f"{SINK_READY} {port} ({protocol.__name__})", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
            if out:
                f.write("".join(out))
                f.flush()
                out.clear()
    server.close()


class Sink:
    """The parent's side: starts the sink process and follows its record."""

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "sink.tsv"
        self.log = workdir / "sink.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.offset = 0
        self.partial = b""
        self.finals: dict[str, float] = {}
        self.final_status: Counter[str] = Counter()
        self.nonfinal: Counter[str] = Counter()
        self.posts = 0
        self.events = 0
        self.problems: Counter[str] = Counter()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        self.path.touch()
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, str(SCRIPT), "_sink", str(self.path),
                stdout=log, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True)
        CHILD_GROUPS.add(self.proc.pid)
        deadline = time.monotonic() + 60
        while not (text := self.log.read_text()).startswith(SINK_READY):
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"callback sink did not start:\n{tail(self.log)}")
            await asyncio.sleep(0.05)
        self.port = int(text.split()[3])

    def poll(self) -> None:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            parts = raw.decode().split("\t")
            if parts[0] == "E":
                self.events += 1
                if parts[4] == "1":
                    if parts[2] not in self.finals:
                        self.finals[parts[2]] = float(parts[1])
                        self.final_status[parts[3]] += 1
                else:
                    self.nonfinal[parts[3]] += 1
            elif parts[0] == "P":
                self.posts += 1
            else:
                self.problems[parts[-1]] += 1

    async def wait_finals(self, tokens: list[str], timeout: float, quiet: float) -> bool:
        """Until every token has its final receipt (True), or ``timeout`` s pass, or
        no new final receipt came for ``quiet`` s (False: the rest are lost)."""
        now = time.monotonic()
        deadline, last_news = now + timeout, now
        pending = set(tokens)
        while True:
            self.poll()
            left = {t for t in pending if t not in self.finals}
            if not left:
                return True
            now = time.monotonic()
            if len(left) < len(pending):
                last_news = now
            pending = left
            if now > deadline or now - last_news > quiet:
                return False
            await asyncio.sleep(POLL)

    async def stop(self) -> None:
        if self.proc is not None:
            await stop_proc(self.proc)


# -- the gateways ---------------------------------------------------------------------


class Gateway:
    """A system under test: started fresh per run, HTTP requests prebuilt."""

    name: str
    port: int = 0

    async def start(self, sim_port: int, sink_port: int) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def roots(self) -> list[int]:
        raise NotImplementedError

    def request(self, msg: Msg, number: str) -> bytes:
        raise NotImplementedError

    def logs(self) -> str:
        return ""

    def unmatched_receipts(self) -> int:
        """Receipts the gateway said it could not match to a message, so far."""
        return 0


class Kannel(Gateway):
    """bearerbox + smsbox with the kannel.conf of the module docstring."""

    def __init__(self, workdir: Path, *, store: str) -> None:
        self.name = KANNEL if store == "memory" else f"{KANNEL} (store {store})"
        self.workdir = workdir
        self.store = store
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.user, self.password, self.admin_password = "bench", "benchpw", "adminpw"
        self.sink_port = 0

    def config(self, sim_port: int, admin: int, box: int, sendsms: int) -> str:
        w = self.workdir
        store = ([f"store-type = {self.store}", f'store-location = "{w / "kannel.store"}"']
                 if self.store != "memory" else [])
        return "\n".join([
            "group = core", f"admin-port = {admin}", "admin-interface = 127.0.0.1",
            f'admin-password = "{self.admin_password}"',
            f'status-password = "{self.admin_password}"', 'admin-allow-ip = "127.0.0.1"',
            f"smsbox-port = {box}", "smsbox-interface = 127.0.0.1", 'box-allow-ip = "127.0.0.1"',
            f'log-file = "{w / "bearerbox.log"}"', "log-level = 2",
            "dlr-storage = internal", "sms-outgoing-queue-limit = -1",
            "sms-incoming-queue-limit = -1", "smsbox-max-pending = 1000", *store, "",
            "group = smsc", "smsc = smpp", "smsc-id = sim", "host = 127.0.0.1",
            f"port = {sim_port}", "transceiver-mode = true", 'smsc-username = "herald"',
            'smsc-password = "simpass"', 'system-type = ""',
            f"max-pending-submits = {KANNEL_PENDING_SUBMITS}", "reconnect-delay = 1",
            f'log-file = "{w / "smsc.log"}"', "log-level = 2", "",
            "group = smsbox", "bearerbox-host = 127.0.0.1", f"bearerbox-port = {box}",
            f"sendsms-port = {sendsms}", "sendsms-interface = 127.0.0.1",
            "immediate-sendsms-reply = false", "max-pending-requests = 512",
            "http-request-retry = 0", f'log-file = "{w / "smsbox.log"}"', "log-level = 2", "",
            "group = sendsms-user", f'username = "{self.user}"', f'password = "{self.password}"',
            "max-messages = 1", "",
        ])

    async def _spawn(self, program: str, conf: Path) -> asyncio.subprocess.Process:
        with (self.workdir / f"{Path(program).name}.out").open("wb") as out:
            # -v 2: warnings on stderr too (log-level only covers the log files; the
            # console default is debug, a few lines per message)
            proc = await asyncio.create_subprocess_exec(
                program, "-v", "2", str(conf), cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        CHILD_GROUPS.add(proc.pid)
        return proc

    def _status_ok(self, admin: int) -> bool:
        url = f"http://127.0.0.1:{admin}/status.xml?password={self.admin_password}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                root = ET.fromstring(answer.read())
        except (OSError, ET.ParseError):
            return False
        smsc = (next(iter(root.iter("smsc")), None))
        boxes = [b for b in root.iter("box") if b.findtext("type") == "smsbox"
                 and (b.findtext("status") or "").startswith("on-line")]
        return smsc is not None and (smsc.findtext("status") or "").startswith("online") \
            and bool(boxes)

    async def start(self, sim_port: int, sink_port: int) -> None:
        self.sink_port = sink_port
        bearerbox = shutil.which("bearerbox", path="/usr/sbin:/usr/local/sbin:/sbin")
        smsbox = shutil.which("smsbox", path="/usr/sbin:/usr/local/sbin:/sbin")
        if bearerbox is None or smsbox is None:
            raise SystemExit("Kannel is not installed: run scripts/peers")
        admin, box, self.port = free_ports(3)
        conf = self.workdir / "kannel.conf"
        conf.write_text(self.config(sim_port, admin, box, self.port))
        self.procs["bearerbox"] = await self._spawn(bearerbox, conf)
        deadline = time.monotonic() + KANNEL_START_TIMEOUT
        while not await asyncio.to_thread(_port_open, box):
            self._check(deadline, "bearerbox's box port")
            await asyncio.sleep(POLL)
        self.procs["smsbox"] = await self._spawn(smsbox, conf)
        while not (await asyncio.to_thread(self._status_ok, admin)
                   and await asyncio.to_thread(_port_open, self.port)):
            self._check(deadline, "the SMPP bind online and smsbox attached")
            await asyncio.sleep(POLL)

    def _check(self, deadline: float, what: str) -> None:
        for name, proc in self.procs.items():
            if proc.returncode is not None:
                raise RuntimeError(f"Kannel {name} exited ({proc.returncode}) waiting for "
                                   f"{what}\n{self.logs()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"Kannel: no {what} in {KANNEL_START_TIMEOUT} s\n{self.logs()}")

    async def stop(self) -> None:
        for name in ("smsbox", "bearerbox"):  # bearerbox waits for its boxes
            if (proc := self.procs.pop(name, None)) is not None:
                await stop_proc(proc)

    def roots(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def request(self, msg: Msg, number: str) -> bytes:
        dlr = f"http://127.0.0.1:{self.sink_port}/dlr?t={msg.token}&d=%d"
        query = urllib.parse.urlencode({
            "username": self.user, "password": self.password, "to": f"+{number}",
            "from": SENDER, "text": msg.text, "dlr-mask": KANNEL_DLR_MASK, "dlr-url": dlr})
        return (f"GET /cgi-bin/sendsms?{query} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{self.port}\r\n\r\n").encode()

    def unmatched_receipts(self) -> int:
        """Receipts bearerbox could not match to a sent message, from its logs."""
        count = 0
        for name in ("bearerbox.log", "smsc.log"):
            with contextlib.suppress(OSError):
                count += (self.workdir / name).read_text(errors="replace").count(
                    "got DLR but could not find message")
        return count

    def logs(self) -> str:
        names = ("bearerbox.log", "smsc.log", "smsbox.log", "bearerbox.out", "smsbox.out")
        return "\n".join(f"==> {n}\n{tail(self.workdir / n)}" for n in names
                         if (self.workdir / n).exists())


def _port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class HeraldFeatures:
    """What this herald turned out to know (found on first use, then kept)."""

    callback_events: bool | None = None  # None: not probed yet
    batch: bool | None = None
    batch_error: str = ""


class Herald(Gateway):
    """``herald serve`` on a fresh data dir; ``batched`` sets the account's
    webhook batching with the CLI first."""

    def __init__(self, workdir: Path, args: argparse.Namespace, features: HeraldFeatures, *,
                 batched: bool) -> None:
        self.name = BATCHED if batched else HERALD_SYS
        self.workdir = workdir
        self.args = args
        self.features = features
        self.batched = batched
        self.proc: HeraldProcess | None = None
        self.sink_port = 0
        self.head = b""

    def env(self) -> dict[str, str] | None:
        return {"PYTHONPATH": str(self.args.herald_src)} if self.args.herald_src else None

    async def cli(self, *args: str) -> tuple[int, str]:
        """Run the CLI of the herald under test (its own store schema): exit code, output."""
        env = {**os.environ, **(self.env() or {})}
        proc = await asyncio.create_subprocess_exec(
            *HERALD, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL, env=env, cwd=self.workdir, start_new_session=True)
        CHILD_GROUPS.add(proc.pid)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), CLI_TIMEOUT)
        finally:
            await stop_proc(proc)
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace")

    async def create_account(self, data: Path) -> str:
        """``herald accounts create``; returns the API key it prints once."""
        code, out = await self.cli("accounts", "create", "shop", "--data-dir", str(data),
                                   "--rate-limit", str(ACCOUNT_RATE))
        key = next((w for w in out.split() if w.startswith("hk_")), None)
        if code != 0 or key is None:
            raise RuntimeError(f"herald accounts create failed ({code}):\n{out}")
        return key

    async def enable_batching(self, data: Path) -> bool:
        """``herald accounts set shop --webhook-batch ...``; False when refused."""
        code, out = await self.cli("accounts", "set", "shop", "--data-dir", str(data),
                                   "--webhook-batch", str(WEBHOOK_BATCH),
                                   "--webhook-batch-wait", str(WEBHOOK_BATCH_WAIT))
        if code != 0:
            lines = out.strip().splitlines()
            self.features.batch_error = lines[-1] if lines else f"exit {code}"
            return False
        return True

    async def start(self, sim_port: int, sink_port: int) -> None:
        self.sink_port = sink_port
        data = self.workdir / "data"
        api_key = await self.create_account(data)
        if self.batched:
            self.features.batch = await self.enable_batching(data)
            if not self.features.batch:
                return
        self.port, smpp_port = free_ports(2)
        python: tuple[str, ...] = HERALD
        loop = None
        if self.args.loop is not None:
            if self.args.herald_src:  # an older herald may not know `loop`
                if self.args.loop == "uvloop":
                    python = (sys.executable, str(ROOT / "bench" / "e2e.py"), "_uvloop")
            else:  # herald.toml's `loop`: every process of herald serve
                loop = self.args.loop
        self.proc = HeraldProcess(self.workdir, herald_config(
            data, self.port, smpp_port, sim_port, binds=1, window=UPSTREAM_WINDOW,
            tps=UPSTREAM_TPS, http_rate=100_000, processes=self.args.processes, loop=loop),
            python=python, env=self.env())
        self.head = (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                     f"Authorization: Bearer {api_key}\r\n"
                     "Content-Type: application/json\r\n").encode()
        try:
            await self.proc.start()
        finally:
            if self.proc.proc is not None:
                CHILD_GROUPS.add(self.proc.pid)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.proc is not None:
            with contextlib.suppress(Exception):
                await self.proc.stop()
            await self.proc.ensure_dead()
            kill_group(self.proc.pid)
            CHILD_GROUPS.discard(self.proc.pid)

    def roots(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.running else []

    def request(self, msg: Msg, number: str) -> bytes:
        events = ',"callback_events":"final"' if self.features.callback_events is not False \
            else ""
        body = (f'{{"to":"+{number}","from":"{SENDER}","text":"{msg.text}",'
                f'"reference":"{msg.token}",'
                f'"callback_url":"http://127.0.0.1:{self.sink_port}/hook"{events}}}').encode()
        return self.head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    def logs(self) -> str:
        return tail(self.proc.log) if self.proc is not None else ""


# -- one run ---------------------------------------------------------------------------


def content_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def upstream_times(record: Path) -> dict[str, float]:
    """content hash -> first arrival upstream."""
    times: dict[str, float] = {}
    for r in read_records(record, strict=False):
        times.setdefault(r.content, r.time)
    return times


def pcts(values: list[float]) -> tuple[float, float] | None:
    """(p50, p99) in ms."""
    if len(values) < 2:
        return (1000 * values[0],) * 2 if values else None
    q = statistics.quantiles(values, n=100, method="inclusive")
    return 1000 * q[49], 1000 * q[98]


@dataclass
class Run:
    """One system's figures in one round of one setting."""

    system: str
    load_before: float
    sent: int = 0
    accepted: int = 0
    finals: int = 0
    lost: int = 0
    refused: int = 0
    errors: int = 0
    accepted_rate: float | None = None
    receipts_rate: float | None = None
    receipt_lat: tuple[float, float] | None = None
    upstream_lat: tuple[float, float] | None = None
    accept_lat: tuple[float, float] | None = None
    send_lag: tuple[float, float] | None = None
    cpu_ms: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)
    posts: int = 0
    events: int = 0
    connections: int = 0
    peak_in_flight: int = 0
    notes: list[str] = field(default_factory=list)
    skipped: str = ""


class Bench:
    def __init__(self, args: argparse.Namespace, workroot: Path) -> None:
        self.args = args
        self.workroot = workroot
        self.features = HeraldFeatures()
        self.runs = 0
        self.warnings: list[str] = []

    def messages(self, gateway: Gateway, n: int, tag: str) -> list[Msg]:
        msgs = []
        for k in range(n):
            token = f"{tag}{self.runs:03d}x{k:06d}"
            msg = Msg(token, f"Your code is {k % 1_000_000:06d} ref {token}", b"")
            msg.raw = gateway.request(msg, f"{NUMBER_PREFIX}{k % 100_000:05d}")
            msgs.append(msg)
        return msgs

    def gateway(self, system: str, workdir: Path) -> Gateway:
        if system == KANNEL:
            return Kannel(workdir, store=self.args.kannel_store)
        return Herald(workdir, self.args, self.features, batched=system == BATCHED)

    async def probe(self, gateway: Gateway, conn: Conn) -> None:
        """Does this herald know ``callback_events``? One request tells."""
        msg = self.messages(gateway, 1, "p")[0]
        status, body = await asyncio.wait_for(conn.request(msg.raw), REQUEST_TIMEOUT)
        if status == 422 and b"callback_events" in body:
            self.features.callback_events = False
            self.warnings.append(
                "WARNING: this herald refuses callback_events (422): requests are sent "
                "without it, herald posts a 'sent' and a final event per message, and the "
                "sink counts only the final ones")
            print(f"# {self.warnings[-1]}", flush=True)
        elif status == 202:
            self.features.callback_events = True
        else:
            raise RuntimeError(f"herald answered the probe {status}: {body[:300]!r}")

    async def run(self, system: str, setting: str) -> Run:
        a = self.args
        _, concurrency, rate = SETTINGS[setting]
        self.runs += 1
        workdir = self.workroot / f"run{self.runs:03d}-{setting}-{system.replace(' ', '-')}"
        workdir.mkdir()
        result = Run(system, os.getloadavg()[0])
        if system == BATCHED and self.features.batch is False:
            result.skipped = "not available in this herald"
            return result
        record = workdir / "upstream.tsv"
        extra = ("--window", str(a.sim_window)) if a.sim_window else ()
        sim = SimProcess(workdir, record=record, receipt_delay=a.receipt_delay, seed=self.runs,
                         extra=extra)
        sink = Sink(workdir)
        gateway = self.gateway(system, workdir)
        conns: list[Conn] = []
        try:
            await sim.start()
            assert sim.proc is not None
            CHILD_GROUPS.add(sim.pid)
            await sink.start()
            await gateway.start(sim.port, sink.port)
            if system == BATCHED and self.features.batch is False:
                result.skipped = "not available in this herald"
                return result
            warm_conns = concurrency or 32
            conns = [Conn(gateway.port) for _ in range(warm_conns)]
            if isinstance(gateway, Herald) and self.features.callback_events is None:
                await self.probe(gateway, conns[0])
            warm = self.messages(gateway, a.warmup, "w")
            await closed_loop(conns, warm)
            warm_ok = [m.token for m in warm if m.accepted is not None]
            if len(warm_ok) < len(warm):
                result.notes.append(f"warm-up: {len(warm) - len(warm_ok)} not accepted")
            if not await sink.wait_finals(warm_ok, a.drain_timeout, a.quiet):
                result.notes.append("warm-up: not every final receipt arrived")
            n = a.count if rate is None else round(rate * a.duration)
            msgs = self.messages(gateway, n, "m")
            unmatched0 = gateway.unmatched_receipts()
            roots = gateway.roots()
            cpu0 = (tree_cpu(roots), tree_cpu([sim.pid]), tree_cpu([sink.pid]), self_cpu())
            posts0, events0, nonfinal0 = sink.posts, sink.events, Counter(sink.nonfinal)
            if rate is None:
                load = await closed_loop(conns, msgs)
            else:
                load = await open_loop(gateway.port, conns, msgs, rate, a.max_in_flight)
            accepted = [m for m in msgs if m.accepted is not None]
            done = await sink.wait_finals([m.token for m in accepted],
                                          max(0.0, load.last_accept + a.drain_timeout
                                              - time.time()), a.quiet)
            cpu1 = (tree_cpu(roots), tree_cpu([sim.pid]), tree_cpu([sink.pid]), self_cpu())
            self.figures(result, msgs, load, sink, cpu0, cpu1, posts0, events0)
            unmatched = (unmatched0, gateway.unmatched_receipts() - unmatched0)
            self.notes(result, load, sink, sink.nonfinal - nonfinal0, unmatched, done=done)
            await asyncio.sleep(RECORD_FLUSH)
            upstream = upstream_times(record)
            result.upstream_lat = pcts([upstream[h] - m.sent for m in msgs
                                        if (h := content_hash(m.text)) in upstream])
        except Exception:
            print(f"# {system} failed; logs:\n{gateway.logs()}\n==> sim\n{tail(sim.log)}",
                  file=sys.stderr)
            raise
        finally:
            for c in conns:
                c.close()
            with contextlib.suppress(Exception):
                await gateway.stop()
            with contextlib.suppress(Exception):
                await sink.stop()
            if sim.proc is not None:
                with contextlib.suppress(Exception):
                    await stop_proc(sim.proc, grace=30)
            if not a.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        return result

    def notes(self, r: Run, load: Load, sink: Sink, nonfinal: Counter[str],
              unmatched: tuple[int, int], *, done: bool) -> None:
        """What a reader of the table should know about one run."""
        a = self.args
        if not done:
            r.notes.append(f"{r.lost} accepted messages had no final receipt (waited until "
                           f"{a.quiet:.0f} s passed without one, at most {a.drain_timeout:.0f} "
                           "s after the last accept)")
        if any(unmatched):
            r.notes.append(
                f"the gateway logged {unmatched[1]} receipts it could not match in the timed "
                f"part ({unmatched[0]} in the warm-up): Kannel drops a receipt read before its "
                "submit_sm_resp ('got DLR but could not find message'; see the docstring)")
        if r.system == BATCHED and r.posts and r.events <= 1.05 * r.posts:
            r.notes.append("batching was accepted by the CLI, but herald posted about one "
                           "event per POST")
        if load.errors:
            r.notes.append(f"request errors {dict(load.errors)}")
        if refused := {s: c for s, c in load.statuses.items() if s != 202}:
            r.notes.append(f"refused {refused}")
        if sink.problems:
            r.notes.append(f"sink problems {dict(sink.problems)}")
        if nonfinal:
            r.notes.append(f"non-final events at the sink (not counted) {dict(nonfinal)}")

    @staticmethod
    def figures(r: Run, msgs: list[Msg], load: Load, sink: Sink,
                cpu0: tuple[float, ...], cpu1: tuple[float, ...], posts0: int,
                events0: int) -> None:
        accepted = [m for m in msgs if m.accepted is not None]
        finals = [(m, sink.finals[m.token]) for m in accepted if m.token in sink.finals]
        r.sent, r.accepted, r.finals = len(msgs), len(accepted), len(finals)
        r.lost = r.accepted - r.finals
        r.refused = sum(c for s, c in load.statuses.items() if s != 202)
        r.errors = sum(load.errors.values())
        if accepted:
            r.accepted_rate = len(accepted) / (load.last_accept - load.first)
            r.accept_lat = pcts([m.accepted - m.sent for m in accepted if m.accepted])
        if finals:
            r.receipts_rate = len(finals) / (max(t for _, t in finals) - load.first)
            r.receipt_lat = pcts([t - m.sent for m, t in finals])
        if any(m.due for m in msgs):
            r.send_lag = pcts([m.sent - m.due for m in msgs if m.sent])
        names = ("system", "sim", "sink", "load generator")
        r.cpu = {k: b - a for k, a, b in zip(names, cpu0, cpu1, strict=True)}
        r.cpu_ms = 1000 * r.cpu["system"] / len(msgs) if msgs else None
        r.posts, r.events = sink.posts - posts0, sink.events - events0
        r.connections, r.peak_in_flight = load.connections, load.peak_in_flight


# -- tables ------------------------------------------------------------------------------

Getter = Callable[[Run], float | None]


def _pick(attr: str, index: int | None = None) -> Getter:
    def get(r: Run) -> float | None:
        value = getattr(r, attr)
        if index is not None and value is not None:
            value = value[index]
        return cast(float | None, value)

    return get


#: (figure, getter, format, ratio shown)
FIGURES: Final[list[tuple[str, Getter, str, bool]]] = [
    ("accepted/s", _pick("accepted_rate"), "{:,.0f}", True),
    ("end-to-end receipts/s", _pick("receipts_rate"), "{:,.0f}", True),
    ("receipt latency p50 ms", _pick("receipt_lat", 0), "{:,.1f}", True),
    ("receipt latency p99 ms", _pick("receipt_lat", 1), "{:,.1f}", True),
    ("request -> upstream p50 ms", _pick("upstream_lat", 0), "{:,.1f}", True),
    ("request -> upstream p99 ms", _pick("upstream_lat", 1), "{:,.1f}", True),
    ("request -> accept p50 ms", _pick("accept_lat", 0), "{:,.1f}", True),
    ("request -> accept p99 ms", _pick("accept_lat", 1), "{:,.1f}", True),
    ("CPU ms/msg, system (tree)", _pick("cpu_ms"), "{:.3f}", True),
    ("CPU s, system (tree)", lambda r: r.cpu.get("system"), "{:.2f}", False),
    ("CPU s, sim", lambda r: r.cpu.get("sim"), "{:.2f}", False),
    ("CPU s, sink", lambda r: r.cpu.get("sink"), "{:.2f}", False),
    ("CPU s, load generator", lambda r: r.cpu.get("load generator"), "{:.2f}", False),
    ("sent", _pick("sent"), "{:,.0f}", False),
    ("accepted", _pick("accepted"), "{:,.0f}", False),
    ("final receipts", _pick("finals"), "{:,.0f}", False),
    ("lost (no final in time)", _pick("lost"), "{:,.0f}", False),
    ("refused + errors", lambda r: r.refused + r.errors, "{:,.0f}", False),
    ("events per callback POST", lambda r: r.events / r.posts if r.posts else None, "{:.1f}",
     False),
    ("send lag p99 ms (open loop)", _pick("send_lag", 1), "{:,.1f}", False),
    ("connections used", _pick("connections"), "{:,.0f}", False),
    ("peak requests in flight", _pick("peak_in_flight"), "{:,.0f}", False),
    ("load avg (1 min) before", _pick("load_before"), "{:.2f}", False),
]


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return spec.format(value)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def table(setting: str, runs: dict[str, list[Run]], systems: list[str]) -> str:
    title = SETTINGS[setting][0]
    base = systems[0]
    head = ["figure", *[f"{s} median" for s in systems]]
    head += [f"{s}/{base}" for s in systems[1:]]
    head.append("rounds (" + "; ".join(systems) + ")")
    rows = []
    for label, get, spec, ratio in FIGURES:
        medians = {s: _median([get(r) for r in runs.get(s, []) if not r.skipped])
                   for s in systems}
        row = [label, *[_fmt(medians[s], spec) for s in systems]]
        for s in systems[1:]:
            m, b = medians[s], medians[base]
            row.append(f"{m / b:.2f}" if ratio and m is not None and b else "")
        row.append("; ".join(" ".join(_fmt(get(r), spec) if not r.skipped else "n/a"
                                      for r in runs.get(s, [])) for s in systems))
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"### {title}", "",
             "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in
                                             zip(row[1:], widths[1:], strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    for s in systems:
        for k, r in enumerate(runs.get(s, []), 1):
            if r.skipped:
                lines.append(f"- {s}, round {k}: {r.skipped}")
            lines.extend(f"- {s}, round {k}: {note}" for note in r.notes)
    return "\n".join(lines)


# -- the SMPP path (bench/e2e.py) ------------------------------------------------------


def smpp_path(args: argparse.Namespace) -> None:
    count = args.smpp_count or (QUICK_SMPP_COUNT if args.quick else SMPP_COUNT)
    command = [sys.executable, str(ROOT / "bench" / "e2e.py"), "--only", "smpp",
               "--count", str(count)]
    if args.quick:
        command += ["--warmup", "500"]
    if args.herald_src:
        command += ["--herald-src", str(args.herald_src)]
    if args.loop is not None:
        command += ["--loop", args.loop]
    if args.sim_window:
        command += ["--sim-window", str(args.sim_window)]
    print(f"\n### herald's SMPP path: {' '.join(command[1:])}\n", flush=True)
    proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
    CHILD_GROUPS.add(proc.pid)
    try:
        proc.wait(SMPP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"# bench/e2e.py did not finish in {SMPP_TIMEOUT:.0f} s: interrupted", flush=True)
        kill_group(proc.pid, signal.SIGINT)  # e2e.py stops its own children on SIGINT
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait()
    finally:
        CHILD_GROUPS.discard(proc.pid)


# -- main ------------------------------------------------------------------------------


async def bench_all(args: argparse.Namespace) -> None:
    workroot = Path(tempfile.mkdtemp(prefix="herald-vs-kannel-"))
    bench = Bench(args, workroot)
    systems = [KANNEL if args.kannel_store == "memory" else f"{KANNEL} (store file)",
               HERALD_SYS]
    if not args.no_batched:
        systems.append(BATCHED)
    settings = [args.only] if args.only else list(SETTINGS)
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    try:
        for setting in settings:
            runs: dict[str, list[Run]] = {}
            for round_no in range(1, args.rounds + 1):
                for system in systems:
                    key = KANNEL if system.startswith(KANNEL) else system
                    result = await bench.run(key, setting)
                    result.system = system
                    runs.setdefault(system, []).append(result)
                    print(progress(setting, round_no, result), flush=True)
            print()
            print(table(setting, runs, systems))
            if BATCHED in systems and bench.features.batch is False:
                print(f"\nbatched callbacks: not available in this herald "
                      f"({bench.features.batch_error})")
            print(flush=True)
        for warning in dict.fromkeys(bench.warnings):
            print(f"# {warning}")
    finally:
        if args.keep:
            print(f"# work directory kept: {workroot}")
        else:
            shutil.rmtree(workroot, ignore_errors=True)


def progress(setting: str, round_no: int, r: Run) -> str:
    if r.skipped:
        return f"# {setting} round {round_no} {r.system}: {r.skipped}"
    return (f"# {setting} round {round_no} {r.system}: load {r.load_before:.2f}, "
            f"accepted/s {_fmt(r.accepted_rate, '{:,.0f}')}, receipts/s "
            f"{_fmt(r.receipts_rate, '{:,.0f}')}, receipt p50/p99 "
            f"{_fmt(_pick('receipt_lat', 0)(r), '{:.1f}')}/"
            f"{_fmt(_pick('receipt_lat', 1)(r), '{:.1f}')} ms, CPU ms/msg "
            f"{_fmt(r.cpu_ms, '{:.3f}')}, lost {r.lost}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_sink":
        asyncio.run(sink_main(Path(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"1 round, {QUICK_COUNT} msgs closed loop, {QUICK_DURATION:.0f} s "
                             "open loop, small SMPP run")
    parser.add_argument("--only", choices=list(SETTINGS))
    parser.add_argument("--rounds", type=int, help="rounds per setting (default 3)")
    parser.add_argument("--count", type=int, help=f"closed-loop messages (default {COUNT})")
    parser.add_argument("--duration", type=float,
                        help=f"open-loop seconds (default {DURATION:.0f})")
    parser.add_argument("--warmup", type=int, help=f"warm-up messages per run ({WARMUP})")
    parser.add_argument("--max-in-flight", type=int, default=MAX_IN_FLIGHT)
    parser.add_argument("--drain-timeout", type=float, default=DRAIN_TIMEOUT,
                        help="seconds after the last accept to wait for final receipts")
    parser.add_argument("--quiet", type=float, default=QUIET,
                        help="stop waiting for final receipts after this many seconds "
                             f"without a new one (default {QUIET:.0f})")
    parser.add_argument("--receipt-delay", default="0",
                        help="the sim's --receipt-delay (default 0)")
    parser.add_argument("--sim-window", type=int,
                        help="the sim's receipt window per bind (default: the sim's, 64)")
    parser.add_argument("--kannel-store", choices=("memory", "file"), default="memory",
                        help="Kannel's message store (default none: memory only)")
    parser.add_argument("--herald-src", type=Path,
                        help="run herald from this src dir (e.g. a worktree of an older "
                             "commit); the sim, sink and load generator stay")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"),
                        help="herald's event loop (herald.toml's loop; default: herald's own;"
                        " with --herald-src, uvloop installed by bench/e2e.py _uvloop)")
    parser.add_argument("--processes", type=int, choices=(1, 2),
                        help="herald serve's processes (default: its own, auto)")
    parser.add_argument("--no-batched", action="store_true",
                        help="skip the 'herald, batched callbacks' system")
    parser.add_argument("--no-smpp", action="store_true", help="skip bench/e2e.py --only smpp")
    parser.add_argument("--smpp-count", type=int)
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.count = args.count or (QUICK_COUNT if args.quick else COUNT)
    args.duration = args.duration or (QUICK_DURATION if args.quick else DURATION)
    args.warmup = args.warmup if args.warmup is not None else (
        QUICK_WARMUP if args.quick else WARMUP)
    if args.herald_src:
        args.herald_src = args.herald_src.resolve()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):  # the open loop may hold many sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"# bench/vs_kannel.py: {args.rounds} round(s); closed loop {args.count} msgs; "
          f"open loop {args.duration:.0f} s, max {args.max_in_flight} in flight; warm-up "
          f"{args.warmup}/run; Kannel store {args.kannel_store}; sim receipt delay "
          f"{args.receipt_delay}, receipt window {args.sim_window or '64 (the sim default)'}; "
          f"herald loop {args.loop or 'its default'}"
          + (f"; herald from {args.herald_src}" if args.herald_src else ""))
    print(f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on "
          f"{os.cpu_count()} CPUs; fd limit {max(soft, hard)}", flush=True)
    try:
        asyncio.run(bench_all(args))
        if not args.no_smpp:
            smpp_path(args)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("# interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        kill_all_children()
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
