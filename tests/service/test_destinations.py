"""A running herald refuses unassigned and unroutable destinations at acceptance,
over HTTP (422 naming ``to``) and SMPP (ESME_RINVDSTADR), and picks up a
numbering plan imported while it runs (``herald numbers``, another connection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.accounts import Accounts
from herald.cli import main
from herald.config import parse_config
from herald.net import ClientSettings, SmppClient
from herald.numbers import CHECK_INTERVAL
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import BindTransceiver, SmeAddress, SubmitMulti, SubmitSm
from herald.store import MessageFilter, Store

from .test_serve import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Deployment:
    def __init__(self, platform: Platform, key: str, password: str) -> None:
        self.platform, self.key, self.password = platform, key, password
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}",
                                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip

    async def send(self, to: str, *, test: bool = False) -> httpx.Response:
        return await self.http.post("/v1/messages", json={"to": to, "from": "SHOP",
                                                          "text": "hi", "test": test})  # fmt: skip

    def refusal(self, answer: httpx.Response) -> Any:
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["errors"]
        return error["field"], error["code"]


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.1)))
    await sim.start()
    config = parse_config({
        "data_dir": str(tmp_path / "data"), "http": {"listen": "127.0.0.1:0"},
        "smpp": {"listen": "127.0.0.1:0"},
        "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                        "system_id": "herald", "password": "pw"}],
        # Germany and the UK only: France (in the example plan) has no route.
        "routes": [{"prefix": "49", "connectors": ["sim"]},
                   {"prefix": "44", "connectors": ["sim"]}],
    })  # fmt: skip
    made: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        account, key = await accounts.create("shop", time.time())
        made.extend([key.key, (await accounts.add_smpp(account.id, "shop", time.time())).password])

    platform = await Platform.start(config, prepare=prepare, processes=1)
    deployed = Deployment(platform, *made)
    try:
        yield deployed
    finally:
        await deployed.http.aclose()
        await platform.stop()
        await sim.stop()


async def test_unassigned_and_unroutable_numbers_are_refused_at_acceptance(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    # No plan yet: phonenumbers decides what is assigned; routes decide the rest.
    assert (await d.send("+447911123456")).status_code == 202
    assert d.refusal(await d.send("+33612345678")) == ("to", "unroutable")

    data = str(tmp_path / "data")
    assert await asyncio.to_thread(main, ["numbers", "import-plan",
                                          str(EXAMPLES / "numbering-plan.csv"),
                                          "--data-dir", data]) == 0  # fmt: skip
    started = time.monotonic()

    async def plan_in_use() -> bool:  # test mode: checked, answered, never stored
        return (await d.send("+447911123456", test=True)).status_code == 422

    await eventually(plan_in_use, timeout=CHECK_INTERVAL + 5)
    assert time.monotonic() - started < CHECK_INTERVAL + 5
    assert d.refusal(await d.send("+447911123456")) == ("to", "unassigned")
    assert d.refusal(await d.send("+33612345678")) == ("to", "unroutable")  # in the plan
    assert (await d.send("+491701234567")).status_code == 202
    # Ofcom's drama range is no assigned number to phonenumbers, but the plan has it.
    assert (await d.send("+447700900123")).status_code == 202

    batch = await d.http.post("/v1/messages/batch", json={"messages": [
        {"to": to, "from": "SHOP", "text": "hi"}
        for to in ("+491701234567", "+447911123456", "+33612345678")]})  # fmt: skip
    assert batch.status_code == 202
    assert [(r["status"], [e["code"] for e in r.get("errors", [])])
            for r in batch.json()["results"]] == [
        ("accepted", []), ("refused", ["unassigned"]), ("refused", ["unroutable"])]

    customer = SmppClient(ClientSettings(
        "127.0.0.1", d.platform.smpp.port, BindTransceiver(system_id="shop",
                                                            password=d.password)))  # fmt: skip
    await customer.start()
    try:
        await customer.wait_bound(10)
        for to, status in (("447911123456", CommandStatus.ESME_RINVDSTADR),  # unassigned
                           ("33612345678", CommandStatus.ESME_RINVDSTADR),  # unroutable
                           ("491701234567", CommandStatus.ESME_ROK)):  # fmt: skip
            resp = await customer.submit(SubmitSm(source_addr="SHOP", source_addr_ton=5,
                                                  destination_addr=to, short_message=b"hi"))
            assert resp.command_status == status, to
        multi = await customer.submit(SubmitMulti(source_addr="SHOP", source_addr_ton=5,
                                                  dest_addresses=(SmeAddress(1, 1, "491701234567"),
                                                                  SmeAddress(1, 1, "447911123456")),
                                                  short_message=b"hi"))  # fmt: skip
        assert multi.command_status == CommandStatus.ESME_RINVDSTADR
    finally:
        await customer.stop()

    page = await d.platform.store.list_messages(MessageFilter(1, limit=100))
    stored = sorted(m.to for m in page.messages)
    assert stored == ["447700900123", "447911123456", "491701234567", "491701234567",
                      "491701234567"]  # before the plan, then the accepted ones only
