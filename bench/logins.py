"""Valid logins while others attack the SMPP listener (issue 8, items 1 and 2).

``herald serve`` runs as a process (two processes, as by default) with
``herald sim`` as its upstream. The script measures, in one run:

* **unbound flood**: one client address (127.0.0.2) opens ``--flood``
  connections that never bind. How many does herald keep open, and how long
  does a valid customer's bind from 127.0.0.1 take meanwhile (from connect to
  bind_resp; a bind that is refused or closed counts as failed)?
* **wrong binds**: ``--attackers`` clients, each from its own address
  (127.0.0.20, ...), bind with wrong passwords as fast as herald answers
  them, for ``--seconds``. Meanwhile valid first logins, each needing a
  password check: SMPP binds with logins not yet used, and HTTP requests
  with API keys not yet used (from 127.0.0.1). Their latency against the
  same logins made with nobody attacking, in the same run, is the ratio that
  matters; the attackers' answers show how many binds were checked
  (ESME_RINVPASWD) and how many refused unchecked (ESME_RBINDFAIL).

``--herald-src DIR`` runs herald's code from another tree (an older commit's
``src``, to compare before and after). The credentials are created by that
tree's own code. Traffic stays on loopback; every phase is bounded in time.
Prints tables; asserts nothing.
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
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from crash.procs import (  # noqa: E402
    HeraldProcess,
    SimProcess,
    cpu_seconds,
    free_port,
    herald_config,
)
from herald.smpp.codec import encode  # noqa: E402
from herald.smpp.pdus import BindTransceiver  # noqa: E402

#: Seconds one bind may take before it counts as failed.
BIND_TIMEOUT = 15.0
ATTACKER_BASE = 20  # attackers bind from 127.0.0.20, 127.0.0.21, ...

# Run with the target tree's herald: an account, fresh API keys and SMPP logins.
_MAKE_CREDENTIALS = """
import asyncio, json, sys, time
from pathlib import Path
from herald.accounts import Accounts
from herald.store import SQLiteConfig, SQLiteStore

async def main(data, count):
    store = SQLiteStore.open(SQLiteConfig(data_dir=data))
    accounts = Accounts(store)
    now = time.time()
    account, key = await accounts.create("victim", now, rate_limit=1e6, bind_limit=64)
    keys = [key.key] + [(await accounts.issue_api_key(account.id, now)).key
                        for _ in range(2 * count - 1)]
    logins = [(s.system_id, s.password) for s in
              [await accounts.add_smpp(account.id, f"victim{i}", now) for i in range(2 * count)]]
    accounts.close()
    await store.aclose()
    print(json.dumps({"keys": keys, "logins": logins}))

asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
"""


@dataclass
class Latencies:
    ok: list[float] = field(default_factory=list)
    failed: int = 0

    def row(self) -> str:
        if not self.ok:
            return f"{'-':>8} {'-':>8} {'-':>8} {len(self.ok):>4} {self.failed:>6}"
        ms = sorted(x * 1000 for x in self.ok)
        return (f"{statistics.median(ms):8.1f} {ms[int(0.9 * (len(ms) - 1))]:8.1f} "
                f"{ms[-1]:8.1f} {len(ms):>4} {self.failed:>6}")


async def bind_once(port: int, system_id: str, password: str, address: str = "127.0.0.1",
                    ) -> tuple[int | None, float]:
    """One bind on a new connection: (command_status or None if closed/timed out, seconds)."""
    start = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(BIND_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                           local_addr=(address, 0))
            writer.write(encode(BindTransceiver(system_id=system_id, password=password,
                                                sequence_number=1)))
            header = await reader.readexactly(16)
            return int.from_bytes(header[8:12], "big"), time.perf_counter() - start
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        return None, time.perf_counter() - start
    finally:
        if writer is not None:
            writer.close()


async def valid_binds(port: int, logins: list[tuple[str, str]], into: Latencies) -> None:
    for system_id, password in logins:
        status, seconds = await bind_once(port, system_id, password)
        if status == 0:
            into.ok.append(seconds)
        else:
            into.failed += 1
        await asyncio.sleep(0.2)


async def valid_requests(http_port: int, keys: list[str], into: Latencies) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                 timeout=BIND_TIMEOUT) as client:
        for key in keys:
            start = time.perf_counter()
            try:
                answer = await client.get("/v1/messages?limit=1",
                                          headers={"Authorization": f"Bearer {key}"})
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                into.ok.append(time.perf_counter() - start)
            else:
                into.failed += 1
            await asyncio.sleep(0.2)


async def attacker(port: int, address: str, until: float, answers: dict[str, int]) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1
        status, _ = await bind_once(port, "victim0", f"guess{n:04d}", address)
        name = {None: "closed", 0: "BOUND?!", 0x0D: "RBINDFAIL", 0x0E: "RINVPASWD",
                0x0F: "RINVSYSID"}.get(status, hex(status or 0))
        answers[name] = answers.get(name, 0) + 1


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="herald-logins-"))
    data = work / "data"
    env = dict(os.environ)
    if args.herald_src:
        env["PYTHONPATH"] = str(args.herald_src)
    made = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _MAKE_CREDENTIALS, str(data), str(args.logins), env=env,
        stdout=subprocess.PIPE)
    out, _ = await made.communicate()
    if made.returncode:
        raise SystemExit("creating the credentials failed")
    creds = json.loads(out)
    keys: list[str] = creds["keys"]
    logins = [tuple(x) for x in creds["logins"]]
    sim = SimProcess(work, record=None, receipt_delay="0", seed=1)
    await sim.start()
    http_port, smpp_port = free_port(), free_port()
    herald = HeraldProcess(work, herald_config(data, http_port, smpp_port, sim.port, binds=1,
                                               window=10, tps=100),
                           env={"PYTHONPATH": str(args.herald_src)} if args.herald_src else None)
    await herald.start()
    pids = [p for p in (herald.pid, herald.delivery_pid()) if p is not None]
    try:
        print(f"herald {'from ' + str(args.herald_src) if args.herald_src else '(this tree)'}"
              f", {len(pids)} process(es)\n")
        # -- quiet baseline
        quiet_smpp, quiet_http = Latencies(), Latencies()
        n = args.logins
        await valid_binds(smpp_port, logins[:n], quiet_smpp)  # type: ignore[arg-type]
        await valid_requests(http_port, keys[:n], quiet_http)

        # -- unbound flood from one address
        flood: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        refused = 0
        for _ in range(args.flood):
            try:
                flood.append(await asyncio.open_connection("127.0.0.1", smpp_port,
                                                           local_addr=("127.0.0.2", 0)))
            except OSError:
                refused += 1
        await asyncio.sleep(0.5)
        alive = sum(not r.at_eof() for r, _ in flood)  # herald's close shows as EOF
        during_flood = Latencies()
        for login in logins[:n]:
            status, seconds = await bind_once(smpp_port, *login)  # type: ignore[misc]
            if status == 0:
                during_flood.ok.append(seconds)
            else:
                during_flood.failed += 1
        for _, w in flood:
            w.close()
        await asyncio.sleep(0.5)

        # -- wrong-bind flood from several addresses, valid first logins meanwhile
        answers: dict[str, int] = {}
        cpu0 = sum(cpu_seconds(p) for p in pids)
        until = time.monotonic() + args.seconds
        attack_smpp, attack_http = Latencies(), Latencies()
        attackers = [asyncio.create_task(attacker(smpp_port, f"127.0.0.{ATTACKER_BASE + i}",
                                                  until, answers))
                     for i in range(args.attackers)]
        await asyncio.sleep(min(1.0, args.seconds / 4))
        await asyncio.gather(
            valid_binds(smpp_port, logins[n:2 * n], attack_smpp),  # type: ignore[arg-type]
            valid_requests(http_port, keys[n:2 * n], attack_http))
        await asyncio.gather(*attackers)
        cpu = sum(cpu_seconds(p) for p in pids) - cpu0

        print(f"unbound flood: {args.flood} connections from 127.0.0.2: "
              f"{args.flood - refused} connected, {alive} still open after 0.5 s")
        print(f"{'valid first logins':<34} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8} "
              f"{'ok':>4} {'failed':>6}")
        print(f"{'SMPP bind, quiet':<34} {quiet_smpp.row()}")
        print(f"{'SMPP bind (cached), unbound flood':<34} {during_flood.row()}")
        print(f"{'SMPP bind, during wrong binds':<34} {attack_smpp.row()}")
        print(f"{'HTTP request, quiet':<34} {quiet_http.row()}")
        print(f"{'HTTP request, during wrong binds':<34} {attack_http.row()}")
        for name, quiet, loud in (("SMPP", quiet_smpp, attack_smpp),
                                  ("HTTP", quiet_http, attack_http)):
            if quiet.ok and loud.ok:
                print(f"{name} first-login p50 under attack / quiet: "
                      f"{statistics.median(loud.ok) / statistics.median(quiet.ok):.2f}")
        total = sum(answers.values())
        print(f"\nwrong binds: {args.attackers} attackers x {args.seconds:g} s: {total} answered "
              f"({', '.join(f'{k} {v}' for k, v in sorted(answers.items()))}); "
              f"herald CPU {cpu:.2f} s")
    finally:
        with contextlib.suppress(Exception):
            await herald.stop()
        await herald.ensure_dead()
        with contextlib.suppress(Exception):
            await sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer logins, shorter attack")
    parser.add_argument("--flood", type=int, default=1000, help="unbound connections (1000)")
    parser.add_argument("--attackers", type=int, default=8, help="wrong-bind clients (8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="attack length (10 s)")
    parser.add_argument("--logins", type=int, default=10, help="valid logins per phase (10)")
    parser.add_argument("--herald-src", type=Path, help="run herald from this src directory")
    args = parser.parse_args()
    if args.quick:
        args.flood, args.seconds, args.logins = 300, 4.0, 5
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
