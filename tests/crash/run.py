"""One crash run: herald under HTTP and SMPP load, SIGKILLed and restarted, then checked.

Timeline::

    sim up -> account -> herald up -> load starts
    repeat `kills` times: load for a while -> SIGKILL herald -> (down a moment) -> restart
    load a little longer -> stop the load -> wait until every stored message is final
    -> (optionally) wait for every receipt and final webhook -> SIGTERM herald
    -> SIGTERM the sim (flushes its record) -> verify

The same ports and data directory serve every start, so the customers'
clients reconnect on their own, as they would to a real SMSC. The wait for
finals is bounded by ``drain_timeout``; it has to cover dispatch's lease (a
killed herald's claimed messages are claimable again after 20 s). SMPP
receipts and webhooks claimed by a killed herald wait for their own leases
(60 s and ``timeout`` + 30 s), which is why waiting for all of them is an
option (the long run uses it; the CI run checks that what arrived agrees).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from herald.sim import read_records
from herald.store.sqlite import DB_FILENAME

from .load import HttpLoad, Ledger, SmppLoad, WebhookReceiver
from .procs import HeraldProcess, SimProcess, create_account, free_port, herald_config
from .verify import Report, verify

__all__ = ["CrashPlan", "crash_run"]

#: Seconds the load gets to wind down (requests in flight finish) once stopped.
LOAD_STOP_TIMEOUT: Final = 60.0
#: Polling period of the drain waits.
DRAIN_POLL: Final = 0.5


@dataclass(frozen=True)
class CrashPlan:
    """What a crash run does; rates are messages per second, times seconds."""

    kills: int = 3
    # What each kill hits, in turn: "serve" (herald serve, then restarted) or
    # "delivery" (its delivery process, which herald serve restarts itself).
    targets: tuple[str, ...] = ("serve",)
    processes: int = 2
    load_before_kill: tuple[float, float] = (2.0, 4.0)  # drawn per kill
    downtime: tuple[float, float] = (0.0, 0.5)  # between the kill and the restart
    load_after: float = 3.0  # after the last restart
    http_rate: float = 100.0
    http_workers: int = 4
    batch_every: int = 5  # every 5th HTTP request is a batch...
    batch_size: int = 10  # ...of this many messages
    smpp_rate: float = 100.0
    smpp_binds: int = 2
    smpp_window: int = 8
    upstream_binds: int = 2
    upstream_window: int = 10
    upstream_tps: float = 5000.0
    receipt_delay: str = "0.1:0.5"
    webhooks: bool = True
    drain_timeout: float = 120.0
    await_notifications: bool = False
    notify_timeout: float = 150.0
    seed: int = 0

    @property
    def bound(self) -> int:
        """Duplicates upstream allowed per kill: submits in flight at once."""
        return self.upstream_binds * self.upstream_window


def pending(db: Path) -> int:
    """Stored messages without a final status."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM messages WHERE status < 10").fetchone()[0])
    finally:
        conn.close()


async def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(DRAIN_POLL)
    return True


async def crash_run(workdir: Path, plan: CrashPlan,
                    log: Callable[[str], None] = lambda _: None) -> Report:
    rng = random.Random(plan.seed)
    record = workdir / "upstream.tsv"
    data = workdir / "data"
    db = data / DB_FILENAME
    sim = SimProcess(workdir, record=record, receipt_delay=plan.receipt_delay, seed=plan.seed)
    herald: HeraldProcess | None = None
    receiver = WebhookReceiver()
    smpp: SmppLoad | None = None
    load: asyncio.Future[object] | None = None
    stop = asyncio.Event()
    try:
        await sim.start()
        creds = await create_account(data, "shop")
        http_port, smpp_port = free_port(), free_port()
        herald = HeraldProcess(workdir, herald_config(
            data, http_port, smpp_port, sim.port, binds=plan.upstream_binds,
            window=plan.upstream_window, tps=plan.upstream_tps, processes=plan.processes))
        restarts = [await herald.start()]
        await receiver.start()
        ledger = Ledger(tag="crash")
        http = HttpLoad(f"http://127.0.0.1:{http_port}", creds.api_key, ledger,
                        workers=plan.http_workers, rate=plan.http_rate,
                        batch_every=plan.batch_every, batch_size=plan.batch_size,
                        callback_url=receiver.url if plan.webhooks else None)
        smpp = SmppLoad(smpp_port, creds.system_id, creds.password, ledger,
                        binds=plan.smpp_binds, window=plan.smpp_window, rate=plan.smpp_rate)
        await smpp.start()
        load = asyncio.gather(http.run(stop), smpp.run(stop))
        kills: list[float] = []
        for n in range(plan.kills):
            await asyncio.sleep(rng.uniform(*plan.load_before_kill))
            if load.done():
                load.result()  # a load generator failed: raise its error
            kills.append(time.time())
            target = plan.targets[n % len(plan.targets)]
            if target == "delivery":
                restarts.append(await herald.kill_delivery())
            else:
                await herald.kill()
                await asyncio.sleep(rng.uniform(*plan.downtime))
                restarts.append(await herald.start())
            log(f"kill {n + 1}/{plan.kills} ({target}): restarted in {restarts[-1]:.2f} s, "
                f"{len(list(ledger.acked()))} acknowledged so far")
        await asyncio.sleep(plan.load_after)
        stop.set()
        await asyncio.wait_for(load, LOAD_STOP_TIMEOUT)
        drained = await _until(lambda: pending(db) == 0, plan.drain_timeout)
        log(f"every stored message final: {drained}")
        if plan.await_notifications:
            smpp_ids = [a.id for a in ledger.acked() if a.channel == "smpp"]
            http_ids = [a.id for a in ledger.acked() if a.channel == "http"]
            receipts, finals = smpp.receipts, receiver.final_times
            notified = await _until(
                lambda: all(i in receipts for i in smpp_ids)
                and (not plan.webhooks or all(i in finals for i in http_ids)),
                plan.notify_timeout)
            log(f"every receipt and final webhook arrived: {notified}")
        await herald.stop()
        await smpp.close()
        await receiver.close()
        await sim.stop()
        report = verify(db=db, records=read_records(record, strict=False), ledger=ledger,
                        kills=kills, bound=plan.bound, receipts=smpp.receipts,
                        webhooks=receiver.statuses)
        report.restart_seconds = restarts[1:]
        report.recovery_seconds = [
            (first - k) for k in kills if (first := ledger.first_ack_after(k)) is not None]
        return report
    finally:
        stop.set()
        if load is not None and not load.done():
            load.cancel()
            await asyncio.gather(load, return_exceptions=True)
        if herald is not None:
            await herald.ensure_dead()
        if smpp is not None:
            await smpp.close()
        await receiver.close()
        if sim.proc is not None and sim.proc.returncode is None:
            await sim.stop()
