"""The delivery process of ``herald serve``: dispatch to the operators and webhooks out.

Started by :class:`~herald.workers.DeliveryWorker` in the front process as
``python -c "from herald.workers._delivery_process import main; main()"``
with the link's socket inherited (its descriptor in ``HERALD_LINK_FD``) and
the pickled :class:`~herald.config.HeraldConfig` on standard input (from the
parent, which read and checked it: nothing else writes that pipe).

It opens the store the parent opened: the same data directory (the parent
created and migrated it), or the same PostgreSQL database (``[store] url``; a
pool of :data:`PG_POOL_DELIVERY` connections of its own), and runs a
:class:`~herald.dispatch.Dispatcher` and the
:class:`~herald.webhooks.WebhookSender`, and:

- claims when the front says messages were accepted (``ACCEPTED``);
- wakes its webhook sender after each of its commits that wrote webhook
  events (the receipts and MO that create them arrive here), and tells the
  front after those that wrote SMPP events (``EVENTS_SMPP``: receipts and MO
  for customers' binds, which live in the front);
- sends its metrics and its connectors' bound sessions (``UPSTREAMS``, which
  the front's ``/healthz`` reports) every :data:`METRICS_INTERVAL` seconds;
- stops gracefully on ``QUIT`` or SIGTERM (hands its messages back, unbinds),
  and at once when the front is gone: on Linux the kernel kills it with the
  front (``PR_SET_PDEATHSIG``), and the link's end of file stops it anyway.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import pickle
import signal
import socket
import sys
import time
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest

from herald.config import HeraldConfig
from herald.dispatch import Dispatcher
from herald.metrics import Metrics
from herald.store import Channel, SQLiteConfig, SQLiteStore, Store, StoreError
from herald.webhooks import sender_for
from herald.workers._leases import ServeLeases
from herald.workers._link import (
    ACCEPTED,
    EVENTS_SMPP,
    METRICS,
    QUIT,
    READY,
    UPSTREAMS,
    Link,
)

__all__ = ["LINK_FD_ENV", "LOG_LEVEL_ENV", "LOOP_ENV", "PARENT_ENV", "PG_POOL_DELIVERY", "main"]

log = logging.getLogger("herald.workers")

LINK_FD_ENV: Final = "HERALD_LINK_FD"
PARENT_ENV: Final = "HERALD_PARENT_PID"
LOG_LEVEL_ENV: Final = "HERALD_LOG_LEVEL"
LOOP_ENV: Final = "HERALD_LOOP"
#: Seconds between metrics snapshots sent to the front (what ``/metrics`` shows
#: of dispatch is at most this old).
METRICS_INTERVAL: Final = 1.0
#: linux/prctl.h
_PR_SET_PDEATHSIG: Final = 1


#: Below QUIET_WRITE_RATE rows a second (about 700 messages a second: each costs
#: this process 3-4 rows), a write here waits QUIET_COMMIT_INTERVAL seconds for
#: others to share its transaction. At 500 messages a second nothing batches by
#: itself, and every message costs several transactions; waiting 5 ms cut this
#: process's CPU per message by 14 % there (bench/vs_kannel.py --only open500:
#: herald 0.88-0.98 ms a message against 1.04-1.13) for 20 ms more receipt
#: latency (p99 about 40 ms; Kannel's is about 90). Above it batches form on
#: their own, and waiting only delayed the front's commits (closed8 lost 10-20 %
#: with a fixed 5 ms wait); docs/performance.md.
QUIET_COMMIT_INTERVAL: Final = 0.005
QUIET_WRITE_RATE: Final = 3000.0
#: PostgreSQL connections this process may hold (``[store] url``): its claims,
#: receipts, sweeps and webhook outbox calls in flight at once (see
#: ``herald.service.PG_POOL_FRONT`` for the node's total).
PG_POOL_DELIVERY: Final = 8

def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the parent dies (Linux); exit if it already did."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def main() -> None:
    """Entry point of the child; see the module docstring."""
    _die_with_parent(int(os.environ[PARENT_ENV]))
    logging.basicConfig(level=os.environ.get(LOG_LEVEL_ENV, "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s[dispatch]: %(message)s")
    config: HeraldConfig = pickle.loads(sys.stdin.buffer.read())
    sock = socket.socket(fileno=int(os.environ[LINK_FD_ENV]))
    try:
        if os.environ.get(LOOP_ENV) == "uvloop":
            import uvloop

            uvloop.run(_run(config, sock))
        else:
            asyncio.run(_run(config, sock))
    except StoreError as exc:  # e.g. PostgreSQL out of reach: the front restarts us
        log.error("cannot open the store: %s", exc)
        sys.exit(1)


async def _open_store(config: HeraldConfig) -> Store:
    """The store the front opened; only SQLite's commits here wait for company."""
    if config.store.url is None:
        return SQLiteStore.open(SQLiteConfig(
            data_dir=config.data_dir, create=False, writer="loop",
            quiet_interval=QUIET_COMMIT_INTERVAL, quiet_rate=QUIET_WRITE_RATE))
    from herald.store.postgres import open_served

    return await open_served(config.store.url, max_connections=PG_POOL_DELIVERY)


async def _run(config: HeraldConfig, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    store = await _open_store(config)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    try:  # PostgreSQL: the binds this node may open (docs/leases.md)
        leases = await ServeLeases.open(config)
    except BaseException:
        await store.aclose()
        raise
    dispatcher = Dispatcher(store, config, metrics=metrics, clock=time.time,
                            slots=None if leases is None else leases.slots,
                            leader=None if leases is None else leases.leads)  # fmt: skip
    if leases is not None:
        leases.attach(dispatcher)
    metrics.watch_connectors(dispatcher.connectors.values())
    webhooks = sender_for(store, config.data_dir, config.webhooks, metrics)

    def received(kind: bytes, _payload: bytes) -> None:
        if kind == ACCEPTED:
            dispatcher.wake()
        elif kind == QUIT:
            stop.set()

    link = Link(sock, received, on_closed=stop.set)

    def committed(channels: frozenset[Channel]) -> None:
        if Channel.WEBHOOK in channels:
            webhooks.wake()
        if Channel.SMPP in channels:
            link.send(EVENTS_SMPP)

    store.watch_outbox(committed)
    store.watch_finals(metrics.count_finals)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sending = asyncio.create_task(webhooks.run(), name="webhooks")

    def report() -> None:
        link.send_now(METRICS, generate_latest(registry))
        bound = {name: c.bound for name, c in dispatcher.connectors.items()}
        link.send_now(UPSTREAMS, json.dumps(bound).encode())

    try:
        await dispatcher.start()
        if leases is not None:
            await leases.start()
        link.send(READY)
        while not stop.is_set():
            report()
            try:
                async with asyncio.timeout(METRICS_INTERVAL):
                    await stop.wait()
            except TimeoutError:
                pass
        await dispatcher.stop()
        await webhooks.stop()
        report()
    finally:
        if not sending.done():
            await webhooks.stop()
        await asyncio.gather(sending, return_exceptions=True)
        link.close()
        if leases is not None:
            await leases.stop()
        await store.aclose()
