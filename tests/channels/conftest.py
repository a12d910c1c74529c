"""The chain rig of tests/channels (test_chains.py, test_templates.py): herald's
app (``create_app``) on a real SQLite store, served on loopback so the fakes
can POST their signed webhooks to it, the Cloud API and Viber fakes, and the
chat service run one :meth:`ChatService.step` at a time under a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from tests.api.conftest import CHEAP_HASHER, T0, Clock

from herald.accounts import Accounts
from herald.api import ApiContext, create_app
from herald.channels import ViberSettings
from herald.channels._pace import PaceSettings
from herald.channels.clients import ViberClient, WhatsAppClient, WhatsAppSettings
from herald.chat import ChatService, ChatSettings, fraud_screen
from herald.defence import LiveDefence
from herald.ids import SortableIdGenerator
from herald.intake import NO_RULES
from herald.metrics import Metrics
from herald.rating import PriceList
from herald.sim.chat import FakeViber, FakeWhatsApp, FakeWhatsAppConfig, serve_app
from herald.store import SQLiteConfig, SQLiteStore

TOKEN, SECRET = "EAAtest-token", "app-secret-1"
NUMBER_ID = "1065550001"
WABA_ID = "102290129340398"
TO = "+14155552671"  # a number phonenumbers knows as assigned
PRICES = {("whatsapp", "utility"): 8_000, ("whatsapp", "authentication"): 4_500,
          ("viber", "message"): 6_000}
TEMPLATE = {"name": "order_update", "language": "en_US", "parameters": ["A-1042"]}


@dataclass
class Rig:
    store: SQLiteStore
    clock: Clock
    chat: ChatService
    fake: FakeWhatsApp
    viber: FakeViber
    http: httpx.AsyncClient  # herald's API, with the account's key
    base: str
    account_id: int
    lists: dict[int, PriceList]  # the accounts' sell price lists (SMS)

    async def send(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post("/v1/messages", json=body)

    async def chain(self, chain_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/v1/messages/{chain_id}")
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    async def steps(self, n: int = 3) -> None:
        for _ in range(n):
            await self.chat.step()
            await _drain(self.chat)

    async def sms_count(self) -> int:
        row = await self.store._readers.run(
            lambda c: c.execute("SELECT count(*) FROM messages").fetchone())
        return int(row[0])


async def _drain(chat: ChatService) -> None:
    """Wait for the sends the last step started (bounded: each is one HTTP request)."""
    if chat._sending:
        await asyncio.wait_for(asyncio.gather(*list(chat._sending)), 10)


def sms_chain(*legs: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"to": TO, "from": "ACME", "text": "Your order A-1042 has shipped",
            "channels": list(legs), **fields}


WA = {"channel": "whatsapp", "template": TEMPLATE}
SMS = {"channel": "sms"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    accounts = Accounts(store, hasher=CHEAP_HASHER)
    clock = Clock(T0)
    account, issued = await accounts.create("acme", clock(), rate_limit=1000.0)
    fake = FakeWhatsApp(FakeWhatsAppConfig(token=TOKEN, app_secret=SECRET, rate=100_000,
                                           burst=1000, outcomes={"read": 1.0}, seed=14))
    viber_settings = ViberSettings("http://127.0.0.1:1", "vb-token", "vb-secret")
    try:
        async with serve_app(fake.app) as fake_port:
            wa = WhatsAppClient(WhatsAppSettings(f"http://127.0.0.1:{fake_port}", TOKEN, SECRET,
                                                 pace=PaceSettings(rate=100_000, burst=1000),
                                                 business_account_id=WABA_ID))
            viber = FakeViber(viber_settings, "")
            async with serve_app(viber.app) as viber_port:
                vb_settings = replace(viber_settings, base_url=f"http://127.0.0.1:{viber_port}")
                vb = ViberClient(vb_settings)
                settings = ChatSettings(None, {NUMBER_ID: "acme"}, vb_settings,
                                        {"HeraldShop": "acme"}, PRICES)
                # One pumping defence for intake and the fallback SMS legs, as herald serve has.
                ids = SortableIdGenerator()
                defence = LiveDefence(store, ids)
                lists: dict[int, PriceList] = {}
                chat = ChatService(store, settings, clock=clock, adapters={"whatsapp": wa,
                                                                           "viber": vb},
                                   accounts=lambda name: _account_id(store, name),
                                   screen=fraud_screen(defence, lists.get, lambda: NO_RULES))
                ctx = ApiContext(store=store, accounts=accounts, ids=ids,
                                 clock=clock, metrics=Metrics(CollectorRegistry()), chat=chat,
                                 prices=lists.get, defence=defence)
                async with serve_app(create_app(ctx)) as port:
                    base = f"http://127.0.0.1:{port}"
                    fake.webhook_url = f"{base}/v1/channels/whatsapp/webhook"
                    viber.callback_url = f"{base}/v1/channels/viber/webhook"
                    async with httpx.AsyncClient(base_url=base, trust_env=False, headers={
                            "Authorization": f"Bearer {issued.key}"}) as http:
                        yield Rig(store, clock, chat, fake, viber, http, base, account.id,
                                  lists)
                await chat.aclose()
    finally:
        accounts.close()
        await store.aclose()


async def _account_id(store: SQLiteStore, name: str) -> int | None:
    return (await store.get_account_by_name(name)).id


