"""SMSC simulator throughput: submits/s and receipts/s through herald's SmppClient,
against `herald sim` and two other SMSC simulators in the same run.

    .venv/bin/python bench/sim.py            # 20,000 messages per run, windows 10 and 64, 3 rounds
    .venv/bin/python bench/sim.py --quick    # 5,000 messages, 1 round

What runs: each simulator in its own process on 127.0.0.1, with receipts sent
as soon as possible (no configured delay), and this process as the ESME:
``--binds`` transceiver binds of herald's ``SmppClient``, each with ``window``
submits in flight, submitting the same OTP-like submit_sm (GSM text, receipt
requested) to distinct numbers, and answering every deliver_sm at once. After
a warm-up of ``WARMUP`` messages (receipts included), the clock runs from the
first timed submit to the last submit_sm_resp (submits/s) and to the last
receipt (receipts/s: complete messages per second).

The simulators:

- ``herald sim``: ``python -m herald sim --receipt-delay 0`` (``herald sim+rec``
  with ``--record``, when asked for with ``--record``);
- ``npm smpp``: tests/peers/node/server.js (node 20, npm smpp 0.5.1; it writes
  one JSON line per event, to a file here, as its harness reads them);
- ``smpp34``: the Rust-core server of PyPI smpp34 1.5.0 with the Python
  answer loop every smpp34 application writes (``next()``, ``accept()``, then
  an awaited ``deliver_sm`` for the receipt), in a child of this script.

Besides the rates, the table shows each simulator's CPU time per complete
message (user + system from /proc, over the timed part), which is what a
simulator costs the benchmark it serves, and the share of a core it used.
With 2 cores shared by the driver and the simulator, the slower of the two
limits the rate; the CPU figure separates them. ``ratio`` columns compare
herald sim with each peer in the same round (rate: higher is better for
herald; CPU: lower is better for herald). Nothing here is asserted; figures
move with the machine's load (compare rows of one run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NODE_SERVER = ROOT / "tests" / "peers" / "node" / "server.js"
SOURCE = "HERALD"
TEXT = b"Your code is 482913"
SYSTEM_ID, PASSWORD = "bench", "bench123"
WINDOWS = (10, 64)
COUNT, QUICK_COUNT = 20_000, 5_000
WARMUP = 500
#: Bound on one run (warm-up + timed messages + receipts).
RUN_TIMEOUT = 120.0
#: Bound on a simulator printing its port.
START_TIMEOUT = 20.0
START_ATTEMPTS = 5
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


# ---- the smpp34 simulator (runs in a child: ``bench/sim.py _smpp34``) -------------------


async def smpp34_serve() -> None:
    import smpp34

    for attempt in range(START_ATTEMPTS):
        port = free_port()
        server = smpp34.Server("127.0.0.1", port, system_id="smpp34")
        try:
            await server.start()
            break
        except smpp34.SmppError:
            if attempt == START_ATTEMPTS - 1:
                raise
    print(json.dumps({"port": port}), flush=True)
    esmes: dict[str, Any] = {}
    tasks: set[asyncio.Task[Any]] = set()
    count = 0
    stamp = time.strftime("%y%m%d%H%M", time.gmtime())

    async def receipt(esme: Any, event: Any, message_id: str) -> None:
        text = (f"id:{message_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp}"
                f" stat:DELIVRD err:000 text:").encode()
        await esme.deliver_sm(event.source_addr, text, source_addr=event.destination_addr,
                              esm_class=0x04, tlvs=[
                                  smpp34.Tlv(0x001E, message_id.encode() + b"\0"),
                                  smpp34.Tlv(0x0427, b"\x02")])

    while True:
        event = await server.next()
        if isinstance(event, smpp34.Esme):
            esmes[event.session_id] = event
        elif isinstance(event, smpp34.SubmitSmEvent):
            count += 1
            message_id = str(count)
            event.accept(message_id)
            esme = esmes.get(event.session_id)
            if esme is not None and event.registered_delivery & 1:
                task = asyncio.ensure_future(receipt(esme, event, message_id))
                tasks.add(task)
                task.add_done_callback(tasks.discard)


# ---- simulators as processes ------------------------------------------------------------


@dataclass
class Smsc:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Any

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _command(name: str, record: Path) -> list[str]:
    if name.startswith("herald sim"):
        extra = ["--record", str(record)] if name.endswith("+rec") else []
        return [sys.executable, "-m", "herald", "sim", "--listen", "127.0.0.1:0",
                "--receipt-delay", "0", "--seed", "1", *extra]
    if name == "npm smpp":
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed (scripts/peers)")
        return [node, str(NODE_SERVER), json.dumps({"receipt_delay_ms": 0})]
    if name == "smpp34":
        return [sys.executable, os.path.abspath(__file__), "_smpp34"]
    raise ValueError(name)


def start(name: str, record: Path) -> Smsc:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - Smsc.stop (or the failure path) closes it
    proc = subprocess.Popen(_command(name, record), stdin=subprocess.PIPE, stdout=log,
                            stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:  # bounded: START_TIMEOUT
        log.seek(0)
        first = log.readline()
        if first.endswith(b"\n"):
            text = first.decode()
            if "listening on" in text:  # herald sim
                port = int(text.split("listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
            else:
                port = int(json.loads(text)["port"])
            log.seek(0, os.SEEK_END)
            return Smsc(name, proc, port, log)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    log.close()
    raise RuntimeError(f"{name} did not start")


# ---- the ESME: herald's SmppClient ------------------------------------------------------


async def drive(port: int, window: int, binds: int, count: int) -> dict[str, float]:
    from herald.net import ClientHandler, ClientSettings, SmppClient, SmppConnection
    from herald.smpp.pdus import BindTransceiver, Request, SubmitSm
    from herald.smpp.session import SessionConfig
    from herald.smpp.states import Role

    loop = asyncio.get_running_loop()
    receipts = 0
    want = 0
    all_in: asyncio.Future[None] = loop.create_future()

    class Count(ClientHandler):
        def on_request(self, client: SmppClient, conn: SmppConnection,
                       request: Request) -> None:
            nonlocal receipts
            conn.respond(request.response())
            if getattr(request, "esm_class", 0) & 0x3C == 0x04:
                receipts += 1
                if receipts >= want and not all_in.done():
                    all_in.set_result(None)

    clients = [SmppClient(ClientSettings(
        "127.0.0.1", port, BindTransceiver(system_id=SYSTEM_ID, password=PASSWORD),
        session=SessionConfig(role=Role.ESME, window=window, response_timeout=60),
        name=f"bench-{k}"), Count()) for k in range(binds)]
    for client in clients:
        await client.start()
    for client in clients:
        await client.wait_bound(10)
    pdus = [SubmitSm(source_addr=SOURCE, dest_addr_ton=1, dest_addr_npi=1,
                     destination_addr=f"4477{i:08d}", registered_delivery=1,
                     short_message=TEXT) for i in range(WARMUP + count)]
    failures = 0

    async def worker(client: SmppClient, share: list[SubmitSm]) -> None:
        nonlocal failures
        for pdu in share:
            if (await client.submit(pdu)).command_status != 0:
                failures += 1

    async def run(batch: list[SubmitSm]) -> None:
        slots = window * binds
        await asyncio.gather(*(worker(clients[k % binds], batch[k::slots])
                               for k in range(slots)))

    try:
        want = WARMUP
        await asyncio.wait_for(run(pdus[:WARMUP]), RUN_TIMEOUT)
        await asyncio.wait_for(asyncio.shield(all_in), RUN_TIMEOUT)
        all_in = loop.create_future()
        want = WARMUP + count
        started = time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.wait_for(run(pdus[WARMUP:]), RUN_TIMEOUT)
        submitted = time.perf_counter()
        await asyncio.wait_for(asyncio.shield(all_in), RUN_TIMEOUT)
        finished = time.perf_counter()
        client_cpu = time.process_time() - cpu0
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.stop(timeout=2)
    return {"submit_s": submitted - started, "total_s": finished - started,
            "client_cpu": client_cpu, "failures": failures}


def measure(name: str, window: int, binds: int, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return _measure(name, window, binds, count, Path(tmp) / "record.tsv")


def _measure(name: str, window: int, binds: int, count: int,
             record: Path) -> dict[str, float]:
    smsc = start(name, record)
    try:
        cpu_before = cpu_seconds(smsc.proc.pid)
        result = asyncio.run(drive(smsc.port, window, binds, count))
        server_cpu = cpu_seconds(smsc.proc.pid) - cpu_before
    finally:
        smsc.stop()
    # the warm-up's CPU is in server_cpu too: scale by the timed share
    result["server_cpu"] = server_cpu * count / (count + WARMUP)
    result["submits_per_s"] = count / result["submit_s"]
    result["receipts_per_s"] = count / result["total_s"]
    result["server_us"] = result["server_cpu"] / count * 1e6
    result["client_us"] = result["client_cpu"] / count * 1e6
    result["server_core"] = result["server_cpu"] / result["total_s"]
    return result


def main() -> None:
    if sys.argv[1:2] == ["_smpp34"]:
        asyncio.run(smpp34_serve())
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 messages, one round")
    parser.add_argument("--rounds", type=int, help="rounds per cell (default 3, quick 1)")
    parser.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS))
    parser.add_argument("--binds", type=int, default=1, help="transceiver binds (default 1)")
    parser.add_argument("--peers", nargs="*", default=["npm smpp", "smpp34"],
                        help="peer simulators to measure (default: npm smpp, smpp34)")
    parser.add_argument("--record", action="store_true",
                        help="also herald sim with --record (the record's cost)")
    args = parser.parse_args()
    count = QUICK_COUNT if args.quick else COUNT
    rounds = args.rounds or (1 if args.quick else 3)
    names = ["herald sim", *(["herald sim+rec"] if args.record else []), *args.peers]
    print(f"herald SmppClient ({args.binds} bind(s)) -> SMSC simulator -> receipts; "
          f"{count} messages per run, median of {rounds} round(s); "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    header = (f"{'simulator':<14} {'window':>6} {'submits/s':>10} {'receipts/s':>11} "
              f"{'sim us/msg':>11} {'sim core':>9} {'client us/msg':>14} "
              f"{'rate ratio':>11} {'cpu ratio':>10}")
    print(header)
    print("-" * len(header))
    for window in args.windows:
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for _ in range(rounds):
            for name in names:  # alternate within a round: load hits all alike
                result = measure(name, window, args.binds, count)
                if result["failures"]:
                    print(f"  {name}: {result['failures']} submits refused", file=sys.stderr)
                runs[name].append(result)

        def med(name: str, key: str, runs: dict[str, list[dict[str, float]]] = runs) -> float:
            return statistics.median(r[key] for r in runs[name])

        ours_rate, ours_cpu = med("herald sim", "receipts_per_s"), med("herald sim", "server_us")
        for name in names:
            rate, cpu = med(name, "receipts_per_s"), med(name, "server_us")
            ratios = ("" if name == "herald sim" else
                      f"{ours_rate / rate:>10.2f}x {ours_cpu / cpu:>9.2f}x")
            print(f"{name:<14} {window:>6} {med(name, 'submits_per_s'):>10.0f} {rate:>11.0f} "
                  f"{cpu:>11.1f} {med(name, 'server_core'):>8.0%} "
                  f"{med(name, 'client_us'):>14.1f} {ratios}")


if __name__ == "__main__":
    main()
