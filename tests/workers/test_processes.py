"""``herald serve`` as two processes (intake and dispatch), as an operator runs it.

Real subprocesses: ``herald sim`` upstream, ``herald serve --config`` with
``processes = 2``, a webhook receiver on loopback. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from crash.load import WebhookReceiver
from crash.procs import (
    Credentials,
    HeraldProcess,
    SimProcess,
    create_account,
    free_port,
    herald_config,
)

WAIT = 30.0


@dataclass
class Rig:
    herald: HeraldProcess
    http: str
    creds: Credentials
    hooks: WebhookReceiver


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    sim = SimProcess(tmp_path, record=None, receipt_delay="0.05:0.1", seed=7)
    await sim.start()
    hooks = WebhookReceiver()
    await hooks.start()
    data = tmp_path / "data"
    creds = await create_account(data, "shop")
    http_port = free_port()
    # intake_nice on (a top-level key: before any table): as on a machine of its own
    herald = HeraldProcess(tmp_path, "intake_nice = 4\n" + herald_config(
        data, http_port, free_port(), sim.port, binds=1, window=10, tps=1000, processes=2))
    try:
        await herald.start()
        yield Rig(herald, f"http://127.0.0.1:{http_port}", creds, hooks)
    finally:
        await herald.ensure_dead()
        await hooks.close()
        await sim.stop()


async def send(rig: Rig, client: httpx.AsyncClient, n: int) -> str:
    response = await client.post(
        f"{rig.http}/v1/messages",
        headers={"Authorization": f"Bearer {rig.creds.api_key}"},
        json={"to": "+447911123456", "from": "SHOP", "text": f"code {n}",
              "callback_url": rig.hooks.url},
    )  # fmt: skip
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def delivered(rig: Rig, ids: list[str]) -> None:
    deadline = time.monotonic() + WAIT
    while not all(rig.hooks.statuses.get(i) == ["delivered"] for i in ids):
        assert time.monotonic() < deadline, f"not delivered: {ids} vs {rig.hooks.statuses}"
        await asyncio.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


async def test_two_processes_deliver_and_show_one_set_of_metrics(rig: Rig) -> None:
    dispatch = rig.herald.delivery_pid()
    assert dispatch is not None and dispatch != rig.herald.pid
    assert f"delivery in process {dispatch}" in rig.herald.log.read_text()
    async with httpx.AsyncClient(timeout=10) as client:
        ids = [await send(rig, client, n) for n in range(5)]
        await delivered(rig, ids)  # accepted in one process, sent in the other, posted back
        await asyncio.sleep(1.5)  # the delivery process reports its metrics every second
        metrics = (await client.get(f"{rig.http}/metrics")).text
    assert 'herald_messages_accepted_total{source="http"} 5.0' in metrics  # the front's
    assert 'herald_smpp_binds{name="sim",side="upstream"} 1.0' in metrics  # dispatch's
    assert 'herald_upstream_submits_total{connector="sim",outcome="ok"} 5.0' in metrics


async def test_a_killed_delivery_process_is_restarted_and_intake_goes_on(rig: Rig) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        await delivered(rig, [await send(rig, client, 0)])
        old = rig.herald.delivery_pid()
        assert old is not None
        os.kill(old, signal.SIGKILL)
        during = [await send(rig, client, n) for n in range(1, 6)]  # accepted while it is down
        deadline = time.monotonic() + WAIT
        while rig.herald.delivery_pid() in (None, old):
            assert time.monotonic() < deadline, "no new delivery process"
            await asyncio.sleep(0.05)
        await delivered(rig, during)
    assert "the delivery process runs again" in rig.herald.log.read_text()


async def test_intake_yields_the_cpus_to_delivery_and_a_restart_keeps_it_so(rig: Rig) -> None:
    """The front adds ``intake_nice`` (4 here) to its nice value once the
    delivery process runs; the delivery process keeps the value herald was
    started with, and so does one started again after a crash (a child would
    inherit the front's, and could not lower it)."""
    base = os.getpriority(os.PRIO_PROCESS, 0)  # herald serve was started with this test's
    front, old = rig.herald.pid, rig.herald.delivery_pid()
    assert old is not None
    assert os.getpriority(os.PRIO_PROCESS, front) == min(19, base + 4)
    assert os.getpriority(os.PRIO_PROCESS, old) == base
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + WAIT
    while (new := rig.herald.delivery_pid()) in (None, old):
        assert time.monotonic() < deadline, "no new delivery process"
        await asyncio.sleep(0.05)
    assert os.getpriority(os.PRIO_PROCESS, new) == base
    async with httpx.AsyncClient(timeout=10) as client:  # and it works
        await delivered(rig, [await send(rig, client, 1)])


async def test_killing_herald_serve_takes_its_delivery_process_with_it(rig: Rig) -> None:
    dispatch = rig.herald.delivery_pid()
    assert dispatch is not None
    await rig.herald.kill()
    deadline = time.monotonic() + 10
    while alive(dispatch):  # the kernel kills it with its parent (PR_SET_PDEATHSIG)
        assert time.monotonic() < deadline, "the delivery process outlived herald serve"
        await asyncio.sleep(0.05)


async def test_sigterm_stops_both_processes_gracefully(rig: Rig) -> None:
    dispatch = rig.herald.delivery_pid()
    assert dispatch is not None
    assert await rig.herald.stop() == 0
    assert not alive(dispatch)
    assert "herald: stopped" in rig.herald.log.read_text()


async def test_the_delivery_process_asks_for_receipts_the_upstream_lost(tmp_path: Path) -> None:
    """Every receipt lost upstream: the delivery process finds the overdue parts in
    the store, asks with query_sm, and the customer still hears 'delivered'."""
    sim = SimProcess(tmp_path, record=None, receipt_delay="0", seed=7,
                     extra=("--drop-receipts", "1"))
    await sim.start()
    hooks = WebhookReceiver()
    await hooks.start()
    data = tmp_path / "data"
    creds = await create_account(data, "shop")
    http_port = free_port()
    herald = HeraldProcess(tmp_path, herald_config(
        data, http_port, free_port(), sim.port, binds=1, window=10, tps=1000, processes=2,
        connector_extra="receipt_timeout = 1\nquery_sm = true\n"))
    try:
        await herald.start()
        rig = Rig(herald, f"http://127.0.0.1:{http_port}", creds, hooks)
        async with httpx.AsyncClient(timeout=10) as client:
            ids = [await send(rig, client, n) for n in range(3)]
            await delivered(rig, ids)  # housekeeping looks every 5 s
    finally:
        await herald.ensure_dead()
        await hooks.close()
        await sim.stop()
    assert "0 receipts sent, 3 lost" in sim.log.read_text()
