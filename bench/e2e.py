"""End to end: customers -> herald (subprocess, durable SQLite) -> herald sim -> receipts back.

    .venv/bin/python bench/e2e.py                  # 50,000 SMPP messages, HTTP single + batch
    .venv/bin/python bench/e2e.py --quick          # 10,000 SMPP messages, smaller HTTP runs
    .venv/bin/python bench/e2e.py --profile        # + py-spy profile of herald under SMPP load
    .venv/bin/python bench/e2e.py --loop uvloop    # herald on uvloop (pip install uvloop)
    .venv/bin/python bench/e2e.py --only smpp      # one part: smpp | http | hooks | batch

Three processes on 127.0.0.1, sharing the machine's 2 cores (with whatever
else runs there: the load average is printed before and after):

- ``herald serve --config FILE`` (fresh data dir; SQLite WAL, synchronous
  NORMAL, group commit: every id is answered after its commit; with
  ``--herald-src DIR`` herald's code comes from another tree), one
  connector to the simulator: 2 transceiver binds x window 64, TPS 100,000;
- ``herald sim --receipt-delay 0 --record FILE`` (the upstream SMSC; its
  record gives when each submit_sm arrived upstream);
- this script, the load generator (customers).

**SMPP** (``smpp`` rows): ``--binds`` transceiver binds of herald's own
``SmppClient`` to herald's SMPP listener, ``--window`` submits in flight on
each, submit_sm with registered_delivery 1 and a unique GSM text per message;
every deliver_sm receipt answered at once. A warm-up of ``--warmup`` messages
(receipts included) runs first; then ``--count`` messages are timed, from the
first submit to the last submit_sm_resp (**accepted/s**) and to the last
receipt at the customer (**delivered/s**: accepted, stored, claimed,
submitted upstream, segment recorded, receipt applied, receipt sent to the
customer and answered). Latencies per message, from herald's own
``accepted_at`` (read from the store afterwards): to the submit_sm's arrival
upstream (the sim's record) and to the receipt's arrival at the customer.

**Yardstick** (``raw`` row, the peer of the SMPP row): the same load
generator bound straight to the same simulator, no herald in between. Its
rate is this machine's ceiling for the generator + simulator pair; ``ratio``
= herald / raw, in the same run. (No other SMPP platform here accepts SMPP
customers: Kannel is an ESME gateway; it is the HTTP rows' subject in
``tests/interop``, not a throughput peer.)

**HTTP** (``http single``, ``http batch`` rows): ``--http-workers``
keep-alive connections POSTing one message each to /v1/messages, then
``--batch-workers`` POSTing batches of ``--batch-size`` to
/v1/messages/batch; the load generator is a minimal HTTP/1.1 client
(``RawHttp``: httpx itself costs ~4 ms of CPU per request here and would set
the pace). These messages carry no callback_url: delivered = final in the
store (``done_at``, polled read-only). The ``http single +hooks`` row sends
``--http-webhooks`` messages with a callback_url served by this script, and
a message counts as delivered when its ``delivered`` webhook arrives (herald
POSTs a ``sent`` and a ``delivered`` event per message; ``--callback-events
final``: the final one only). With ``--rate R`` that row is an open loop
instead: message k is POSTed at start + k/R, whatever the answers do (at most
``--http-workers`` in flight), as at a steady customer load where nothing
batches by itself; it then prints the receipt latency per message. That row
(open or closed loop) also prints, per herald process, CPU and wake-ups
(voluntary context switches of its main thread) per message.

CPU seconds per process over each timed part: herald, sim, this load
generator (from /proc/PID/stat), and per message. ``--profile`` samples
herald with py-spy (``pip install py-spy``; not a project dependency) during
the SMPP part and prints the top functions by own time and by inclusive time,
per thread. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from crash.load import WebhookReceiver  # noqa: E402
from crash.procs import (  # noqa: E402
    HERALD,
    HeraldProcess,
    SimProcess,
    cpu_seconds,
    create_account,
    free_port,
    herald_config,
)
from herald.net import ClientHandler, ClientSettings, SmppClient, SmppConnection  # noqa: E402
from herald.sim import read_records  # noqa: E402
from herald.smpp.pdus import BindTransceiver, DeliverSm, Request, SubmitSm  # noqa: E402
from herald.smpp.receipts import receipt_of  # noqa: E402
from herald.smpp.session import SessionConfig  # noqa: E402
from herald.smpp.states import Role  # noqa: E402

COUNT, QUICK_COUNT = 50_000, 10_000
WARMUP = 2_000
HTTP_SINGLE, QUICK_HTTP_SINGLE = 10_000, 3_000
HTTP_BATCH, QUICK_HTTP_BATCH = 50_000, 10_000
HTTP_WEBHOOKS, QUICK_HTTP_WEBHOOKS = 5_000, 2_000
#: Bound on one timed part (submits, receipts, webhooks), seconds.
PART_TIMEOUT = 600.0
#: Seconds the sim needs to flush its record (it flushes every 0.5 s).
RECORD_FLUSH = 1.5
UPSTREAM_BINDS, UPSTREAM_WINDOW, UPSTREAM_TPS = 2, 64, 100_000
SENDER = "SHOP"
NUMBER_PREFIX = "4479111"


def content_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()[:32]


def wakeups(pid: int) -> float:
    """Voluntary context switches of a live process so far (each is a sleep: an
    event-loop wake-up, or a wait for a lock or the disk)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return float(line.split()[1])
    return 0.0


def self_cpu() -> float:
    return cpu_seconds(os.getpid())


async def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll ``check`` every 50 ms (the figures' resolution is the arrival times
    recorded by the callbacks, not this poll) until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3 if values else (float("nan"),) * 3
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[89], q[98]


@dataclass
class Part:
    """One timed part's figures."""

    name: str
    count: int
    accept_seconds: float
    deliver_seconds: float | None
    cpu: dict[str, float]  # process -> CPU seconds over the part
    to_upstream: tuple[float, float, float] | None = None  # p50/p90/p99, seconds
    to_final: tuple[float, float, float] | None = None  # receipt applied in the store
    to_receipt: tuple[float, float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def accepted_rate(self) -> float:
        return self.count / self.accept_seconds

    @property
    def delivered_rate(self) -> float | None:
        return None if self.deliver_seconds is None else self.count / self.deliver_seconds


# -- the SMPP customer ----------------------------------------------------------------


class Customer(ClientHandler):
    """``binds`` transceivers submitting ``texts`` with ``window`` in flight each."""

    def __init__(self, port: int, system_id: str, password: str, *, binds: int,
                 window: int) -> None:
        self.window = window
        self.acked: dict[str, tuple[str, float]] = {}  # text -> (id, time)
        self.receipts: dict[str, float] = {}  # id -> arrival
        self.refused: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        session = SessionConfig(role=Role.ESME, window=window, response_timeout=60.0)
        self.clients = [
            SmppClient(ClientSettings("127.0.0.1", port,
                                      BindTransceiver(system_id=system_id, password=password),
                                      session=session, name=f"customer-{n}"), self)
            for n in range(binds)
        ]

    async def start(self) -> None:
        for client in self.clients:
            await client.start()
        for client in self.clients:
            await client.wait_bound(30)

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop(5) for c in self.clients), return_exceptions=True)

    def on_request(self, client: SmppClient, conn: SmppConnection, request: Request) -> None:
        if isinstance(request, DeliverSm) and request.esm_class & 0x04:
            receipt = receipt_of(request)
            self.receipts.setdefault(receipt.message_id, time.time())
        conn.respond(request.response())

    async def submit_all(self, texts: list[str]) -> tuple[float, float]:
        """Submit every text; returns (first send, last response) times."""
        queue = iter(texts)
        first = time.time()

        async def worker(client: SmppClient) -> None:
            for text in queue:  # the workers share one iterator
                pdu = SubmitSm(source_addr=SENDER, source_addr_ton=5,
                               destination_addr=f"{NUMBER_PREFIX}{len(self.acked) % 100_000:05d}",
                               dest_addr_ton=1, registered_delivery=1,
                               short_message=text.encode("ascii"))
                try:
                    resp = await client.submit(pdu)
                except Exception as exc:  # counted; a benchmark reports, it does not stop
                    self.errors[type(exc).__name__] += 1
                    continue
                if resp.command_status == 0:
                    self.acked[text] = (resp.message_id, time.time())  # type: ignore[attr-defined]
                else:
                    self.refused[resp.command_status] += 1

        await asyncio.gather(*(worker(c) for c in self.clients for _ in range(self.window)))
        return first, max((t for _, t in self.acked.values()), default=first)

    async def wait_receipts(self, ids: list[str], timeout: float) -> float | None:
        """The last receipt's arrival once every id has one; None on timeout."""
        if not await wait_until(lambda: all(i in self.receipts for i in ids), timeout):
            return None
        return max(self.receipts[i] for i in ids)


def accepted_at(db: Path, ids: list[str]) -> dict[str, tuple[float, float | None]]:
    """id -> (accepted_at, done_at) from the store."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        wanted = set(ids)
        return {i: (at, done) for i, at, done in
                conn.execute("SELECT id, accepted_at, done_at FROM messages") if i in wanted}
    finally:
        conn.close()


def upstream_times(record: Path) -> dict[str, float]:
    """content hash -> first arrival upstream."""
    times: dict[str, float] = {}
    for r in read_records(record, strict=False):
        times.setdefault(r.content, r.time)
    return times


class RawHttp:
    """One keep-alive HTTP/1.1 connection POSTing JSON, one request at a time.

    The load generator's client: httpx costs about 4 ms of CPU per request
    here with 64 pooled connections (its pool polls every idle socket on each
    request, encode/httpcore#928), so it, not herald, would set the pace.
    This speaks just enough HTTP/1.1 for herald's answers (Content-Length).
    """

    def __init__(self, host: str, port: int, api_key: str) -> None:
        self.host, self.port = host, port
        self.head = (f"Host: {host}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
                     "Content-Type: application/json\r\n").encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: object) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        body = json.dumps(payload).encode()
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\n" + self.head
                          + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                          + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = await self.reader.readexactly(length)
        return status, json.loads(answer) if answer else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# -- parts ------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.record = workdir / "upstream.tsv"
        self.sim = SimProcess(workdir, record=self.record, receipt_delay="0", seed=1,
                              extra=("--window", str(args.sim_window)))
        self.herald: HeraldProcess | None = None
        self.serial = 0
        self.profiles: dict[str, list[str]] = {}

    def texts(self, n: int, tag: str) -> list[str]:
        start, self.serial = self.serial, self.serial + n
        return [f"e2e {tag} {i:09d}" for i in range(start, start + n)]

    def cpu(self) -> dict[str, float]:
        out = {"sim": cpu_seconds(self.sim.pid), "load generator": self_cpu()}
        if self.herald is not None and self.herald.running:
            # herald serve and its delivery process, when it runs one
            pids = [self.herald.pid, self.herald.delivery_pid()]
            out["herald"] = sum(cpu_seconds(pid) for pid in pids if pid is not None)
            # per process, and their wake-ups (context switches)
            for name, pid in zip(("front", "delivery"), pids, strict=True):
                if pid is not None:
                    out[name] = cpu_seconds(pid)
                    out[name + " wake-ups"] = wakeups(pid)
        return out

    async def start_sim(self) -> None:
        await self.sim.start()

    async def start_herald(self) -> None:
        data = self.workdir / "data"
        self.creds = await create_account(data, "shop")
        self.db = data / "herald.db"
        self.http_port, self.smpp_port = free_port(), free_port()
        python, loop = HERALD, None
        if self.args.loop is not None:
            if self.args.herald_src:  # an older herald may not know `loop`
                if self.args.loop == "uvloop":
                    python = (sys.executable, str(SCRIPT), "_uvloop")
            else:  # herald.toml's `loop`: both of its processes
                loop = self.args.loop
        self.herald = HeraldProcess(self.workdir, herald_config(
            data, self.http_port, self.smpp_port, self.sim.port, binds=UPSTREAM_BINDS,
            window=UPSTREAM_WINDOW, tps=UPSTREAM_TPS, processes=self.args.processes,
            loop=loop), python=python,
            env={"PYTHONPATH": str(self.args.herald_src)} if self.args.herald_src else None)
        await self.herald.start()

    async def stop(self) -> None:
        if self.herald is not None:
            with contextlib.suppress(Exception):
                await self.herald.stop()
            await self.herald.ensure_dead()
        with contextlib.suppress(Exception):
            await self.sim.stop()

    # SMPP through herald, and the raw yardstick ------------------------------------------

    async def smpp(self, *, raw: bool) -> Part:
        a = self.args
        if raw:
            customer = Customer(self.sim.port, "herald", "simpass", binds=a.binds,
                                window=a.window)
        else:
            customer = Customer(self.smpp_port, self.creds.system_id, self.creds.password,
                                binds=a.binds, window=a.window)
        await customer.start()
        try:
            warm = self.texts(a.warmup, "raw-warm" if raw else "warm")
            await customer.submit_all(warm)
            warm_ids = [customer.acked[t][0] for t in warm if t in customer.acked]
            await customer.wait_receipts(warm_ids, PART_TIMEOUT)
            texts = self.texts(a.count, "raw" if raw else "smpp")
            profiler = None if raw or not a.profile else Profiler(self.herald, self.workdir,
                                                                  "smpp")
            if profiler is not None:
                await profiler.start()
            before = self.cpu()
            first, last_ack = await customer.submit_all(texts)
            ids = [customer.acked[t][0] for t in texts if t in customer.acked]
            last_receipt = await customer.wait_receipts(ids, PART_TIMEOUT)
            after = self.cpu()
            if profiler is not None:
                self.profiles["smpp"] = await profiler.stop()
        finally:
            await customer.stop()
        part = Part("raw (no herald)" if raw else "smpp", len(ids), last_ack - first,
                    None if last_receipt is None else last_receipt - first,
                    {k: after[k] - before[k] for k in after if k in before})
        if customer.refused or customer.errors:
            part.notes.append(f"refused {dict(customer.refused)}, errors {dict(customer.errors)}")
        if last_receipt is None:
            part.notes.append("not every receipt arrived in time")
        if not raw:
            await asyncio.sleep(RECORD_FLUSH)
            accepted = accepted_at(self.db, ids)
            upstream = upstream_times(self.record)
            to_up, to_final, to_rc = [], [], []
            for text in texts:
                if text not in customer.acked:
                    continue
                message_id = customer.acked[text][0]
                times = accepted.get(message_id)
                if times is None:
                    continue
                at, done = times
                if done is not None:
                    to_final.append(done - at)
                if (up := upstream.get(content_hash(text))) is not None:
                    to_up.append(up - at)
                if (rc := customer.receipts.get(message_id)) is not None:
                    to_rc.append(rc - at)
            part.to_upstream, part.to_receipt = percentiles(to_up), percentiles(to_rc)
            part.to_final = percentiles(to_final)
        return part

    # HTTP ------------------------------------------------------------------------------

    async def http(self, *, batch: bool, webhooks: bool = False) -> Part:
        a = self.args
        receiver = WebhookReceiver()
        await receiver.start()
        name = f"http batch of {a.batch_size}" if batch else "http single"
        n = a.http_batch if batch else a.http_single
        if webhooks:
            name, n = name + " +hooks", a.http_webhooks
        workers = a.batch_workers if batch else a.http_workers
        texts = self.texts(n, "batch" if batch else "http")
        ids: list[str] = []
        sent: dict[str, float] = {}
        errors: Counter[str] = Counter()

        def item(text: str, k: int) -> dict[str, Any]:
            fields = {"to": f"+{NUMBER_PREFIX}{k % 100_000:05d}", "from": SENDER, "text": text}
            if webhooks:
                fields["callback_url"] = receiver.url
                if a.callback_events:
                    fields["callback_events"] = a.callback_events
            return fields

        clients = [RawHttp("127.0.0.1", self.http_port, self.creds.api_key)
                   for _ in range(workers)]
        try:
            # warm-up: open the connections and fill herald's caches (API key...)
            await asyncio.gather(*(c.post("/v1/messages", item(f"warm {k}", k))
                                   for k, c in enumerate(clients)))
            profiler = Profiler(self.herald, self.workdir, name) if a.profile else None
            if profiler is not None:
                await profiler.start()
            before = self.cpu()
            first = time.time()
            if batch:
                chunks = [texts[i:i + a.batch_size] for i in range(0, n, a.batch_size)]
                work = iter(chunks)

                async def batch_worker(client: RawHttp) -> None:
                    for chunk in work:
                        status, body = await client.post("/v1/messages/batch", {
                            "messages": [item(t, k) for k, t in enumerate(chunk)]})
                        if status != 202:
                            errors[str(status)] += len(chunk)
                            continue
                        ids.extend(x["id"] for x in body["results"] if x["status"] == "accepted")

                await asyncio.gather(*(batch_worker(c) for c in clients))
            elif a.rate and webhooks:
                await open_loop(clients, [item(t, k) for k, t in enumerate(texts)], a.rate,
                                ids, errors, sent)
            else:
                work_single = iter(enumerate(texts))

                async def single_worker(client: RawHttp) -> None:
                    for k, text in work_single:
                        status, body = await client.post("/v1/messages", item(text, k))
                        if status == 202:
                            ids.append(body["id"])
                        else:
                            errors[str(status)] += 1

                await asyncio.gather(*(single_worker(c) for c in clients))
            last_ack = time.time()
        finally:
            for c in clients:
                c.close()
        if webhooks:
            finals = receiver.final_times
        else:  # delivered = final in the store (done_at), polled
            finals = {}

            def poll() -> bool:
                finals.update((i, done) for i, (_, done) in accepted_at(self.db, ids).items()
                              if done is not None)
                return len(finals) >= len(ids)

        await wait_until((lambda: all(i in finals for i in ids)) if webhooks else poll,
                         PART_TIMEOUT)
        after = self.cpu()
        if profiler is not None:
            self.profiles[name] = await profiler.stop()
        done = all(i in finals for i in ids)
        await receiver.close()
        part = Part(name, len(ids),
                    last_ack - first,
                    max(finals[i] for i in ids) - first if done and ids else None,
                    {k: after[k] - before[k] for k in after if k in before})
        if sent and done:
            part.to_receipt = percentiles([finals[i] - sent[i] for i in ids])
        if ids:
            per = {k: 1000 * v / len(ids) for k, v in part.cpu.items()
                   if k in ("front", "delivery", "front wake-ups", "delivery wake-ups")}
            part.notes.append("per message: " + ", ".join(
                f"{k} {v:.3f} ms" if "wake" not in k else f"{k} {v / 1000:.2f}"
                for k, v in per.items()))
        part.notes.append(f"webhook POSTs received: {receiver.posts}" if webhooks else
                          "no callback_url: delivered = final in the store (done_at), polled")
        if errors:
            part.notes.append(f"errors {dict(errors)}")
        if not done:
            part.notes.append("not every delivered webhook arrived in time")
        return part


async def open_loop(clients: list[RawHttp], items: list[dict[str, Any]], rate: float,
                    ids: list[str], errors: Counter[str], sent: dict[str, float]) -> None:
    """Item k is POSTed at start + k/rate on an idle client, whatever the answers
    do (an open loop: nothing batches that would not at this rate); at most
    ``len(clients)`` in flight (then the sends fall behind)."""
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[RawHttp] = asyncio.Queue()
    for c in clients:
        idle.put_nowait(c)
    tasks: set[asyncio.Task[None]] = set()

    async def one(client: RawHttp, fields: dict[str, Any]) -> None:
        at = time.time()
        try:
            status, body = await client.post("/v1/messages", fields)
        finally:
            idle.put_nowait(client)
        if status == 202:
            ids.append(body["id"])
            sent[body["id"]] = at
        else:
            errors[str(status)] += 1

    start = loop.time() + 0.01
    for k, fields in enumerate(items):
        if (delay := start + k / rate - loop.time()) > 0.0005:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(await idle.get(), fields))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks), timeout=PART_TIMEOUT)


# -- profile ----------------------------------------------------------------------------


def _spawn(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Profiler:
    """py-spy sampling herald (all threads, not the idle ones) until stopped."""

    def __init__(self, herald: HeraldProcess | None, workdir: Path, name: str) -> None:
        assert herald is not None
        self.pid = herald.pid
        self.out = workdir / f"profile-{name}.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy")
        if spy is None:
            raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
        self.proc = _spawn(
            [spy, "record", "--pid", str(self.pid), "--rate", "200", "--format", "raw",
             "--threads", "--subprocesses", "--nonblocking", "--duration", "3600",
             "-o", str(self.out)])
        await asyncio.sleep(1.0)  # py-spy attaches

    async def stop(self) -> list[str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(self.proc.wait, 60)
        return self.out.read_text().splitlines() if self.out.exists() else []


def _frame(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``: one entry per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    if "herald" in parts:
        path = "/".join(parts[parts.index("herald"):])
    elif parts:
        path = parts[-1]
    return f"{name} ({path})"


def _thread_kind(frames: list[str]) -> str:
    text = ";".join(frames)
    if "_writer.py" in text and "_run" in text:
        return "store writer"
    if "herald-store-read" in text or "_sqlite_conn.py" in text:
        return "store readers"
    if "asyncio/base_events.py" in text or "run_forever" in text:
        return "event loop"
    return "other threads"


#: Where a sample's time belongs: the innermost frame from one of these files decides.
COMPONENTS = (
    ("herald/store/_writer.py", "store writer (SQLite writes, group commit)"),
    ("herald/store/_sqlite_conn.py", "store readers (SQLite reads)"),
    ("herald/smpp_front/_notifier.py", "SMPP notifier (receipts to customers)"),
    ("herald/smpp_front/", "SMPP intake (submit_sm -> rows -> accept)"),
    ("herald/intake/", "SMPP intake (submit_sm -> rows -> accept)"),
    ("herald/dispatch/", "dispatch (claim, submit, segments, receipts in)"),
    ("herald/webhooks/", "webhook sender"),
    ("herald/api/", "HTTP API"),
    ("herald/net/", "SMPP I/O shell (net) and session/codec"),
    ("herald/smpp/", "SMPP I/O shell (net) and session/codec"),
    ("asyncio/", "event loop (select, transports, callbacks)"),
    ("selectors.py", "event loop (select, transports, callbacks)"),
)


def _component(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, name in COMPONENTS:
            if marker in frame:
                return name
    return "other"


def profile_tables(lines: list[str], top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    components: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first is the thread
        if not frames:
            continue
        total += count
        threads[_thread_kind(frames)] += count
        components[_component(frames)] += count
        names = [_frame(f) for f in frames]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    if not total:
        return "(no samples)"
    out = [f"samples: {total} (non-idle, all threads); by thread: " + ", ".join(
        f"{k} {100 * v / total:.0f}%" for k, v in threads.most_common())]
    out += ["", f"| {'by component (innermost herald/asyncio frame)':<80} | {'%':>6} |",
            f"|{'-' * 82}|{'-' * 8}|"]
    out += [f"| {name:<80} | {100 * n / total:>6.1f} |" for name, n in components.most_common()]
    generic = ("herald/cli.py", "herald/__main__.py", "herald/serve_cli.py")
    mine: Counter[str] = Counter({k: v for k, v in inclusive.items()
                                  if "(herald/" in k and not any(g in k for g in generic)})
    for title, counter in (("own time", own), ("inclusive time", inclusive),
                           ("inclusive time, herald's functions", mine)):
        out += ["", f"| {'top by ' + title:<80} | {'%':>6} |", f"|{'-' * 82}|{'-' * 8}|"]
        out += [f"| {name[:80]:<80} | {100 * n / total:>6.1f} |"
                for name, n in counter.most_common(top)]
    return "\n".join(out)


# -- output -----------------------------------------------------------------------------


def ms(triple: tuple[float, float, float] | None) -> str:
    return "-" if triple is None else " / ".join(f"{1000 * v:.0f}" for v in triple)


def table(parts: list[Part], raw: Part | None) -> str:
    head = (f"| {'part':<18} | {'msgs':>6} | {'accepted/s':>10} | {'delivered/s':>11} |"
            f" {'ratio':>5} | {'accept->upstream p50/90/99 ms':>29} |"
            f" {'accept->final p50/90/99 ms':>26} | {'accept->receipt p50/90/99 ms':>28} |"
            f" {'CPU s herald/sim/load':>21} |"
            f" {'CPU ms/msg herald':>17} |")
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for p in ([raw] if raw else []) + parts:
        ratio = "-"
        if raw is not None and p is not raw and p.name == "smpp" and p.delivered_rate \
                and raw.delivered_rate:
            ratio = f"{p.delivered_rate / raw.delivered_rate:.2f}"
        delivered = f"{p.delivered_rate:,.0f}" if p.delivered_rate else "-"
        cpu = " / ".join(f"{p.cpu.get(k, 0):.1f}" for k in ("herald", "sim", "load generator"))
        per = f"{1000 * p.cpu['herald'] / p.count:.3f}" if "herald" in p.cpu and p.count else "-"
        lines.append(
            f"| {p.name:<18} | {p.count:>6} | {p.accepted_rate:>10,.0f} | {delivered:>11} |"
            f" {ratio:>5} | {ms(p.to_upstream):>29} | {ms(p.to_final):>26} |"
            f" {ms(p.to_receipt):>28} | {cpu:>21} |"
            f" {per:>17} |")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="herald-e2e-"))
    bench = Bench(args, workdir)
    parts: list[Part] = []
    raw: Part | None = None
    try:
        await bench.start_sim()
        if args.only in (None, "smpp"):
            # before herald binds: the sim sends receipts to any receiver bind of
            # the system_id that submitted, and herald's binds use the same one
            raw = await bench.smpp(raw=True)
        await bench.start_herald()
        if args.only in (None, "smpp"):
            parts.append(await bench.smpp(raw=False))
        if args.only in (None, "http"):
            parts.append(await bench.http(batch=False))
        if args.only in (None, "hooks") and args.http_webhooks:
            parts.append(await bench.http(batch=False, webhooks=True))
        if args.only in (None, "batch"):
            parts.append(await bench.http(batch=True))
    finally:
        await bench.stop()
    print(table(parts, raw))
    for p in ([raw] if raw else []) + parts:
        for note in p.notes:
            print(f"# {p.name}: {note}")
    for name, lines in bench.profiles.items():
        print()
        print(f"## herald during '{name}', py-spy (200 samples/s)")
        print(profile_tables(lines, args.top))
    if args.keep:
        print(f"# work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_uvloop":  # herald on uvloop (child process)
        import uvloop

        from herald.cli import main as herald_main

        uvloop.install()
        sys.argv = ["herald", *sys.argv[2:]]
        sys.exit(herald_main())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    parser.add_argument("--binds", type=int, default=4, help="customer binds (default 4)")
    parser.add_argument("--window", type=int, default=64, help="per customer bind (default 64)")
    parser.add_argument("--http-single", type=int)
    parser.add_argument("--http-workers", type=int, default=64)
    parser.add_argument("--http-batch", type=int)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-workers", type=int, default=4)
    parser.add_argument("--http-webhooks", type=int,
                        help="messages in the HTTP single part with webhooks (0: skip it)")
    parser.add_argument("--rate", type=float,
                        help="the hooks part as an open loop: POST one message every 1/RATE "
                             "s (at most --http-workers in flight); per-process CPU and "
                             "wake-ups printed")
    parser.add_argument("--callback-events",
                        help="the hooks part's callback_events (e.g. final; default herald's)")
    parser.add_argument("--sim-window", type=int, default=64,
                        help="deliver_sm (receipts) in flight per bind from the sim (default 64)")
    parser.add_argument("--only", choices=("smpp", "http", "hooks", "batch"))
    parser.add_argument("--processes", type=int, choices=(1, 2),
                        help="herald serve's processes (default: its own, auto)")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"),
                        help="herald's event loop (default: herald's own, auto: uvloop where"
                        " installed)")
    parser.add_argument("--herald-src", type=Path,
                        help="run herald from this src dir (e.g. a git worktree of an older "
                             "commit) to compare before/after; the load generator stays")
    parser.add_argument("--profile", action="store_true", help="py-spy herald in each part")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    args.count = args.count or (QUICK_COUNT if args.quick else COUNT)
    args.http_single = args.http_single or (QUICK_HTTP_SINGLE if args.quick else HTTP_SINGLE)
    if args.http_webhooks is None:
        args.http_webhooks = QUICK_HTTP_WEBHOOKS if args.quick else HTTP_WEBHOOKS
    args.http_batch = args.http_batch or (QUICK_HTTP_BATCH if args.quick else HTTP_BATCH)
    logging.basicConfig(level=logging.ERROR)
    loop_name = args.loop or "herald's default"
    print(f"# bench/e2e.py: SMPP {args.count} messages ({args.binds} binds x window "
          f"{args.window}), HTTP {args.http_single} single ({args.http_workers} workers) + "
          f"{args.http_batch} in batches of {args.batch_size}; herald loop {loop_name}; "
          f"upstream {UPSTREAM_BINDS} binds x window {UPSTREAM_WINDOW}, sim receipt window "
          f"{args.sim_window}"
          + (f"; herald from {args.herald_src}" if args.herald_src else ""))
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs", flush=True)
    asyncio.run(run(args))
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
