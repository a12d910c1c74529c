"""One-time codes behind a campaign: priority classes and fair shares (issue 9).

``herald serve`` runs as a process (two processes, as by default) with one
connector to ``herald sim`` limited to ``--tps`` (50) messages per second.
In one run:

1. account **A** queues ``--backlog`` (100,000) bulk messages (batch API,
   10,000 a request): at 50/s, over half an hour of work;
2. account **C** queues ``--other`` (1,000) bulk messages: the same class as
   A's, accepted later;
3. account **B** sends ``--otps`` (100) one-time codes (``priority: otp``), one
   every ``1 / --otp-rate`` seconds, each its own request.

Printed: each OTP's latency from the moment its request was sent to the
moment the simulator read its submit_sm (percentiles, and how many took
longer than a second or were not out by ``--wait`` seconds after the last
one), and each account's share of the submits the simulator read while the
OTPs went out (from the first OTP request to the last OTP submit). Destination
numbers tell the accounts apart in the simulator's record.

``--compare DIR`` runs the same again with herald's code from another tree
(e.g. ``src`` of a commit before priorities, which ignores the class: its
requests then go without ``priority``, as that tree refuses the field). The
tables of both runs are printed together. Traffic stays on loopback; every
phase is bounded in count and time. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from crash.procs import HeraldProcess, SimProcess, free_port, herald_config  # noqa: E402
from herald.sim import read_records  # noqa: E402

BATCH = 10_000  # the batch API's largest request
# Destinations: one number range per account (all valid North American numbers).
RANGES = {"A": "1415555", "B": "1415556", "C": "1415557"}

# Run with the target tree's herald: the three accounts and their API keys.
_MAKE_ACCOUNTS = """
import asyncio, json, sys, time
from pathlib import Path
from herald.accounts import Accounts
from herald.store import SQLiteConfig, SQLiteStore

async def main(data):
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    accounts = Accounts(store)
    keys = {}
    for name in ("A", "B", "C"):
        _, key = await accounts.create(name, time.time(), rate_limit=1e6, bind_limit=4)
        keys[name] = key.key
    accounts.close()
    await store.aclose()
    print(json.dumps(keys))

asyncio.run(main(Path(sys.argv[1])))
"""


@dataclass
class Result:
    tree: str
    classes: bool  # whether the tree took the priority field
    accept_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, per OTP that went out
    missing: int = 0
    shares: Counter[str] = field(default_factory=Counter)
    window: float = 0.0


def _message(account: str, n: int, priority: str | None) -> dict[str, object]:
    body: dict[str, object] = {"to": f"+{RANGES[account]}{n % 10_000:04d}", "from": "ACME",
                               "text": f"{account} message {n}"}
    if priority is not None:
        body["priority"] = priority
    return body


async def _queue(http: httpx.AsyncClient, key: str, account: str, count: int,
                 priority: str | None) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    for start in range(0, count, BATCH):
        batch = [_message(account, n, priority) for n in range(start, min(count, start + BATCH))]
        r = await http.post("/v1/messages/batch", json={"messages": batch}, headers=auth,
                            timeout=120)
        if r.status_code not in (200, 202) or r.json()["refused"]:
            raise SystemExit(f"batch of {account} refused: {r.status_code} {r.text[:300]}")


async def run_once(args: argparse.Namespace, src: Path | None) -> Result:
    work = Path(tempfile.mkdtemp(prefix="herald-priority-"))
    data = work / "data"
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    made = await asyncio.create_subprocess_exec(sys.executable, "-c", _MAKE_ACCOUNTS, str(data),
                                                env=env, stdout=subprocess.PIPE)
    out, _ = await made.communicate()
    if made.returncode:
        raise SystemExit("creating the accounts failed")
    keys: dict[str, str] = json.loads(out)
    record = work / "upstream.tsv"
    sim = SimProcess(work, record=record, receipt_delay="0", seed=1)
    await sim.start()
    http_port, smpp_port = free_port(), free_port()
    herald = HeraldProcess(work, herald_config(data, http_port, smpp_port, sim.port, binds=1,
                                               window=10, tps=args.tps),
                           env={"PYTHONPATH": str(src)} if src is not None else None)
    await herald.start()
    result = Result(str(src) if src else "this tree", classes=True)
    otp_sent: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
            probe = await http.post("/v1/messages", json={**_message("A", 0, "bulk"), "test": True},
                                    headers={"Authorization": f"Bearer {keys['A']}"})
            result.classes = probe.status_code == 200
            bulk = "bulk" if result.classes else None
            began = time.monotonic()
            await _queue(http, keys["A"], "A", args.backlog, bulk)
            await _queue(http, keys["C"], "C", args.other, bulk)
            result.accept_seconds = time.monotonic() - began
            auth = {"Authorization": f"Bearer {keys['B']}"}
            for n in range(args.otps):
                body = _message("B", n, "otp" if result.classes else None)
                sent = time.time()
                r = await http.post("/v1/messages", json=body, headers=auth)
                if r.status_code != 202:
                    raise SystemExit(f"OTP refused: {r.status_code} {r.text[:300]}")
                otp_sent[str(body["to"]).lstrip("+")] = sent
                await asyncio.sleep(max(0.0, sent + 1 / args.otp_rate - time.time()))
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:  # bounded: until every OTP is out or --wait
            await asyncio.sleep(0.5)
            seen = {r.destination for r in read_records(record, strict=False)}
            if all(to in seen for to in otp_sent):
                break
    finally:
        with contextlib.suppress(Exception):
            await herald.stop()
        await herald.ensure_dead()
        with contextlib.suppress(Exception):
            await sim.stop()
    records = read_records(record, strict=False)
    shutil.rmtree(work, ignore_errors=True)
    first: dict[str, float] = {}
    for r in records:
        if r.destination in otp_sent and r.destination not in first:
            first[r.destination] = r.time
    result.latencies = sorted(first[to] - otp_sent[to] for to in first)
    result.missing = len(otp_sent) - len(first)
    start = min(otp_sent.values())
    # To the last OTP out; with some never out, to the end of the run.
    end = max(first.values()) if not result.missing else max(r.time for r in records)
    result.window = end - start
    for r in records:
        if start <= r.time <= end:
            result.shares[next(a for a, p in RANGES.items() if r.destination.startswith(p))] += 1
    return result


def _pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    return f"{1000 * values[min(len(values) - 1, int(q * len(values)))]:.0f}"


def report(args: argparse.Namespace, results: list[Result]) -> None:
    print(f"one connector at {args.tps:g} msg/s; A queues {args.backlog:,} bulk, C {args.other:,}"
          f" bulk, then B sends {args.otps} OTPs at {args.otp_rate:g}/s\n")
    print(f"{'herald':<28} {'classes':>7} {'OTP p50':>8} {'p90':>7} {'p99':>7} {'max':>7}"
          f" {'> 1 s':>6} {'not out':>8}   (ms; request sent -> submit_sm at the upstream)")
    for r in results:
        late = sum(1 for x in r.latencies if x > 1.0)
        print(f"{r.tree[-28:]:<28} {'yes' if r.classes else 'no':>7} {_pct(r.latencies, 0.5):>8}"
              f" {_pct(r.latencies, 0.9):>7} {_pct(r.latencies, 0.99):>7}"
              f" {_pct(r.latencies, 1.0):>7} {late:>6} {r.missing:>8}")
    print(f"\n{'herald':<28} {'window s':>8} {'A (bulk)':>9} {'C (bulk)':>9} {'B (otp)':>8}"
          "   share of the submits while the OTPs went out")
    for r in results:
        total = sum(r.shares.values()) or 1
        cells = [f"{100 * r.shares[a] / total:8.1f}%" for a in ("A", "C", "B")]
        print(f"{r.tree[-28:]:<28} {r.window:8.1f} {cells[0]} {cells[1]} {cells[2]:>8}")
    print("\naccepting the backlogs took " + ", ".join(f"{r.accept_seconds:.1f} s ({r.tree[-28:]})"
                                                      for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 bulk, 30 OTPs")
    parser.add_argument("--tps", type=float, default=50.0, help="the connector's rate (50)")
    parser.add_argument("--backlog", type=int, default=100_000, help="A's bulk (100,000)")
    parser.add_argument("--other", type=int, default=1_000, help="C's bulk (1,000)")
    parser.add_argument("--otps", type=int, default=100, help="B's OTPs (100)")
    parser.add_argument("--otp-rate", type=float, default=10.0, help="OTPs per second (10)")
    parser.add_argument("--wait", type=float, default=20.0,
                        help="seconds to wait for the last OTPs after sending (20)")
    parser.add_argument("--compare", type=Path, help="also run herald from this src directory")
    args = parser.parse_args()
    if args.quick:
        args.backlog, args.otps, args.wait = 10_000, 30, 10.0

    async def both() -> list[Result]:
        results = [await run_once(args, None)]
        if args.compare:
            results.append(await run_once(args, args.compare))
        return results

    report(args, asyncio.run(both()))


if __name__ == "__main__":
    main()
