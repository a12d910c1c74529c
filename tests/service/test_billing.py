"""A running herald charges billed accounts at acceptance: concurrent sends over
HTTP and SMPP against a small balance never overdraw it (402 / ESME_RSUBMITFAIL
beyond it), test-mode requests are priced and not charged, sent messages get
their connector's buy price, and the CLI's price lists apply without a restart
(docs/billing.md)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from herald import service
from herald.accounts import Accounts
from herald.billing import CHECK_INTERVAL
from herald.cli import main
from herald.config import parse_config
from herald.ids import SortableIdGenerator
from herald.net import ClientSettings, SmppClient
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import BindTransceiver, SubmitSm
from herald.store import (
    Charge,
    NewMessage,
    PriceEntry,
    PriceKind,
    PriceSide,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    Store,
    StoredPriceList,
)

from .test_serve import eventually


class Deployment:
    def __init__(self, platform: Platform, data: Path, secrets: list[str]) -> None:
        self.platform, self.data = platform, data
        shop, self.password, free = secrets
        base = f"http://127.0.0.1:{platform.http_port}"
        self.shop = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {shop}"})
        self.free = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {free}"})

    async def cli(self, *argv: str) -> int:
        return await asyncio.to_thread(main, [*argv, "--data-dir", str(self.data)])


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.1)))
    await sim.start()
    data = tmp_path / "data"
    config = parse_config({
        "data_dir": str(data), "http": {"listen": "127.0.0.1:0"},
        "smpp": {"listen": "127.0.0.1:0"},
        "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                        "system_id": "herald", "password": "pw"}],
        "routes": [{"prefix": "49", "connectors": ["sim"]},
                   {"prefix": "44", "connectors": ["sim"]}],
    })  # fmt: skip
    secrets: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        shop, key = await accounts.create("shop", time.time(), rate_limit=10_000)
        secrets.append(key.key)
        secrets.append((await accounts.add_smpp(shop.id, "shop", time.time())).password)
        secrets.append((await accounts.create("free", time.time()))[1].key)

    platform = await Platform.start(config, prepare=prepare, processes=1)
    deployed = Deployment(platform, data, secrets)
    try:
        yield deployed
    finally:
        await deployed.shop.aclose()
        await deployed.free.aclose()
        await platform.stop()
        await sim.stop()


def _sms(to: str, text: str = "Your code is 123456", **fields: object) -> dict[str, object]:
    return {"to": to, "from": "SHOP", "text": text, **fields}


async def test_concurrent_sends_over_http_and_smpp_never_overdraw(
    deployment: Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="herald.smpp.front")
    d = deployment
    sell = tmp_path / "sell.csv"
    sell.write_text("destination,price\n+49,0.05\n")  # Germany only, no default
    buy = tmp_path / "buy.csv"
    buy.write_text("destination,price\ndefault,0.02\n")
    assert await d.cli("prices", "import", "--account", "shop", str(sell)) == 0
    assert await d.cli("prices", "import", "--connector", "sim", str(buy)) == 0
    assert await d.cli("balance", "top-up", "shop", "0.75") == 0
    assert await d.cli("balance", "set", "shop", "--credit-limit", "0.25") == 0  # 20 messages

    async def priced() -> bool:  # test mode: validated and priced, never stored or charged
        answer = await d.shop.post("/v1/messages", json=_sms("+491701234567", test=True))
        return answer.status_code == 200 and "price" in answer.json()

    await eventually(priced, timeout=CHECK_INTERVAL + 5)
    long = await d.shop.post("/v1/messages", json=_sms("+491701234567", "x" * 200, test=True))
    assert long.json()["price"] == {"amount": "0.100000", "per_segment": "0.05",
                                    "segments": 2, "priced_by": "+49"}  # fmt: skip
    unpriced = await d.shop.post("/v1/messages", json=_sms("+447911123456"))
    assert unpriced.status_code == 422, unpriced.text
    assert [(e["field"], e["code"]) for e in unpriced.json()["errors"]] == [("to", "unpriced")]

    customer = SmppClient(ClientSettings("127.0.0.1", d.platform.smpp.port, BindTransceiver(
        system_id="shop", password=d.password)))  # fmt: skip
    await customer.start()
    try:
        await customer.wait_bound(10)
        refused = await customer.submit(SubmitSm(source_addr="SHOP", source_addr_ton=5,
                                                  destination_addr="447911123456",
                                                  short_message=b"hi"))  # fmt: skip
        assert refused.command_status == CommandStatus.ESME_RINVDSTADR  # not priced

        async def over_http(n: int) -> int:
            answer = await d.shop.post("/v1/messages", json=_sms(f"+4917012345{n:02d}"))
            return answer.status_code

        async def over_smpp(n: int) -> int:
            resp = await customer.submit(SubmitSm(
                source_addr="SHOP", source_addr_ton=5, destination_addr=f"4917012346{n:02d}",
                short_message=b"Your code is 123456"))  # fmt: skip
            return int(resp.command_status)

        codes = await asyncio.gather(*[over_http(n) for n in range(30)],
                                     *[over_smpp(n) for n in range(30)])  # fmt: skip
    finally:
        await customer.stop()
    http, smpp = codes[:30], codes[30:]
    refusals = [r.getMessage() for r in caplog.records if "cannot pay" in r.getMessage()]
    assert len(refusals) == smpp.count(CommandStatus.ESME_RSUBMITFAIL) > 0
    assert all("account 1 cannot pay 0.050000 for 1 message(s)" in r for r in refusals)
    assert not any("4917012346" in r.getMessage() for r in caplog.records)  # no numbers
    assert set(http) <= {202, 402} and set(smpp) <= {0, CommandStatus.ESME_RSUBMITFAIL}
    assert http.count(202) + smpp.count(0) == 20  # 1.00 available, 0.05 each: not one more
    balance = await d.platform.store.get_balance(1)
    assert balance is not None and (balance.balance, balance.available) == (-250_000, 0)

    poor = await d.shop.post("/v1/messages", json=_sms("+491701234599"))
    assert poor.status_code == 402
    problem = poor.json()
    assert (problem["type"], problem["reason"], problem["price"]) == (
        "urn:herald:problem:insufficient-funds", "insufficient_funds", "0.050000")  # fmt: skip
    assert (await d.shop.post("/v1/messages", json=_sms("+491701234599", test=True))
            ).status_code == 200  # test mode is never charged  # fmt: skip
    free = await d.free.post("/v1/messages", json=_sms("+447911123456"))
    assert free.status_code == 202 and "price" not in free.json()  # not billed: as before

    async def all_sent() -> bool:
        cdrs = await d.platform.store.list_cdrs(0, time.time() + 60)
        return len(cdrs) == 20 and all(c.status >= Status.SENT for c in cdrs)

    await eventually(all_sent)
    cdrs = await d.platform.store.list_cdrs(0, time.time() + 60)
    assert {(c.connector, c.buy, c.sell, c.country) for c in cdrs} == {
        ("sim", 20_000, 50_000, "49")}  # fmt: skip


async def test_herald_keeps_the_margin_sums_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between margin reports the sums are brought up to date in the background, so
    # a report after a long quiet sums only what came since the last update.
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path))
    try:
        now = time.time()
        account = await store.create_account("shop", now, rate_limit=10.0, bind_limit=1)
        await store.put_price_list(StoredPriceList(PriceSide.SELL, str(account.id), (
            PriceEntry(PriceKind.DEFAULT, "", 1_000_000),), now))  # fmt: skip
        await store.adjust_balance(account.id, add=10**9)
        ids = SortableIdGenerator()
        await store.accept([NewMessage(
            id=ids.new_id(now), account_id=account.id, source=Source.HTTP, to="447700900123",
            sender="SHOP", body=b"hi", encoding="gsm7", data_coding=0, segments=1,
            accepted_at=now, expires_at=now + 3600)], charges=[Charge("44", None, "+44", 100)])

        def mark() -> int:
            with sqlite3.connect(tmp_path / "herald.db") as conn:
                return int(conn.execute("SELECT last_seq FROM cdr_sums_mark").fetchone()[0])

        assert mark() == 0
        monkeypatch.setattr(service, "MARGIN_SUMS_INTERVAL", 0.01)
        task = asyncio.create_task(service._keep_margin_sums(store, time.time))
        try:
            for _ in range(500):  # bounded: 5 s
                if mark() == 1:
                    break
                await asyncio.sleep(0.01)
            assert mark() == 1
        finally:
            task.cancel()
    finally:
        await store.aclose()
