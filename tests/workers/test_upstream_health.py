"""``/healthz`` and the dispatch gauges of ``/metrics`` with real upstream binds.

``herald serve`` in process (the front), with dispatch in this process
(``processes=1``) or in the real delivery process (``processes=2``, whose
reports reach the front over the link), against two embedded simulators on
loopback. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from herald.accounts import Accounts
from herald.config import parse_config
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.store import Store
from herald.workers import UPSTREAMS_STALE

WAIT = 20.0


@dataclass
class Rig:
    platform: Platform
    a: Simulator
    b: Simulator
    client: httpx.AsyncClient
    key: str

    async def health(self, **params: str) -> httpx.Response:
        return await self.client.get("/healthz", params=params)

    async def metric(self, metric: str, **labels: str) -> float | None:
        text = (await self.client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == metric and sample.labels == labels:
                    return float(sample.value)
        return None

    async def status(self) -> object:
        return (await self.health()).json()["status"]

    async def send(self, to: str) -> None:
        answer = await self.client.post(
            "/v1/messages", json={"to": to, "from": "SHOP", "text": "hi"},
            headers={"Authorization": f"Bearer {self.key}"},
        )  # fmt: skip
        assert answer.status_code == 202, answer.text


async def until(get: Callable[[], Awaitable[object]], expected: object, what: str,
                timeout: float = WAIT) -> None:
    """Poll ``get`` until it answers ``expected`` (bounded)."""
    deadline = time.monotonic() + timeout
    while (got := await get()) != expected:
        assert time.monotonic() < deadline, f"{what}: still {got!r}"
        await asyncio.sleep(0.05)


@pytest.fixture(params=[1, 2], ids=["one-process", "two-processes"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    a = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.1), seed=1))
    b = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.1), seed=2))
    await a.start()
    await b.start()
    config = parse_config({
        "data_dir": str(tmp_path / "data"), "processes": request.param,
        "http": {"listen": "127.0.0.1:0"}, "smpp": {"listen": "127.0.0.1:0"},
        "intake": {"test_prefixes": ["999"]},  # the simulator's scripted numbers
        "connectors": [
            {"name": "a", "host": "127.0.0.1", "port": a.port, "system_id": "herald",
             "password": "pw", "binds": 2, "window": 2, "reconnect_max": 1},
            {"name": "b", "host": "127.0.0.1", "port": b.port, "system_id": "herald",
             "password": "pw", "binds": 1, "reconnect_max": 1},
        ],
        "routes": [{"prefix": "", "connectors": ["a"]}],
    })  # fmt: skip
    keys: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        keys.append((await accounts.create("shop", time.time()))[1].key)

    platform = await Platform.start(config, prepare=prepare, processes=request.param)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}", timeout=10)
    try:
        yield Rig(platform, a, b, client, keys[0])
    finally:
        await client.aclose()
        await a.stop()  # first: no submit is left waiting for an answer at the stop
        await b.stop()
        await platform.stop()


async def test_health_and_binds_follow_the_upstreams(rig: Rig) -> None:
    async def healthz() -> object:
        return (await rig.health()).json()

    async def binds() -> object:
        return (await rig.metric("herald_smpp_binds", side="upstream", name="a"),
                await rig.metric("herald_smpp_binds", side="upstream", name="b"))  # fmt: skip

    await until(healthz, {"status": "ok", "upstreams": {"a": {"bound": 2, "binds": 2},
                                                        "b": {"bound": 1, "binds": 1}}},
                "every bind up")  # fmt: skip
    await until(binds, (2, 1), "the binds gauge per connector")

    await rig.b.stop()  # one upstream gone: still ok, and it shows
    await until(binds, (2, 0), "b's binds gone from the gauge")
    await until(healthz, {"status": "ok", "upstreams": {"a": {"bound": 2, "binds": 2},
                                                        "b": {"bound": 0, "binds": 1}}},
                "b down")  # fmt: skip

    await rig.a.stop()  # none left: degraded, but intake goes on
    await until(binds, (0, 0), "a's binds gone from the gauge")
    await until(healthz, {"status": "degraded", "reason": "no upstream bind is up",
                          "upstreams": {"a": {"bound": 0, "binds": 2},
                                        "b": {"bound": 0, "binds": 1}}},
                "degraded")  # fmt: skip
    assert (await rig.health()).status_code == 200
    assert (await rig.health(require="upstream")).status_code == 503
    await rig.send("+447911123456")  # stored, sent once a bind is up


async def test_queue_depth_and_submits_in_flight_per_connector(rig: Rig) -> None:
    async def bound() -> object:
        return (await rig.health()).json().get("upstreams", {}).get("a", {}).get("bound")

    async def a() -> object:
        return (await rig.metric("herald_connector_inflight", connector="a"),
                await rig.metric("herald_connector_queue", connector="a"))  # fmt: skip

    await until(bound, 2, "a bound")
    assert await rig.metric("herald_connector_oldest_queued_seconds", connector="a") == 0
    sending = time.time()
    for n in range(7):  # the simulator never answers these (behaviour 02)
        await rig.send(f"+99902{n:06d}")
    # 2 binds x window 2 in flight, the other 3 waiting in a's queue
    await until(a, (4.0, 3.0), "a's queue and window")
    assert await rig.metric("herald_connector_queue", connector="b") == 0
    assert await rig.metric("herald_connector_inflight", connector="b") == 0
    # the oldest waiting (the 5th) was accepted after `sending`: younger than that
    oldest = await rig.metric("herald_connector_oldest_queued_seconds", connector="a")
    assert oldest is not None and 0 < oldest <= time.time() - sending
    assert await rig.metric("herald_connector_oldest_queued_seconds", connector="b") == 0


@pytest.mark.parametrize("rig", [2], indirect=True, ids=["two-processes"])
async def test_a_delivery_process_that_stops_reporting_is_degraded(rig: Rig) -> None:
    worker = rig.platform.worker
    assert worker is not None and worker.pid is not None
    await until(rig.status, "ok", "ok")
    os.kill(worker.pid, signal.SIGSTOP)  # hung: alive, silent
    try:
        began = time.monotonic()
        await until(rig.status, "degraded", "degraded", UPSTREAMS_STALE + WAIT)
        assert time.monotonic() - began >= UPSTREAMS_STALE - 1.5  # its last report aged out
        assert (await rig.health()).json()["reason"] == "dispatch is not running or not reporting"
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    await until(rig.status, "ok", "ok again")


@pytest.mark.parametrize("rig", [2], indirect=True, ids=["two-processes"])
async def test_a_dead_delivery_process_leaves_no_binds_behind(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = rig.platform.worker
    assert worker is not None and worker.pid is not None
    monkeypatch.setattr(worker, "_delay", 3600.0)  # no restart while the test looks

    async def binds() -> object:
        return await rig.metric("herald_smpp_binds", side="upstream", name="a")

    await until(binds, 2.0, "a bound")
    os.kill(worker.pid, signal.SIGKILL)
    await until(binds, None, "the dead process's binds dropped from /metrics")
    answer = await rig.health(require="upstream")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "dispatch is not running or not reporting"
