"""A running herald with a WhatsApp channel (issue 14 test 5): the WhatsApp leg
is rejected, the SMS leg goes through the real SMS pipeline (dispatch, the
SMPP simulator, its receipt), and the customer gets one webhook naming the SMS
leg. Everything on loopback: herald, the SMSC simulator, the Cloud API fake
and the customer's webhook receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from herald.accounts import Accounts
from herald.config import parse_config
from herald.service import Platform
from herald.sim import SimConfig, Simulator
from herald.sim.chat import FakeWhatsApp, FakeWhatsAppConfig, serve_app
from herald.store import Status, Store

from .test_serve import eventually

TOKEN, SECRET, NUMBER_ID = "EAAtest-token", "app-secret-1", "1065550001"
TO = "+14155552671"


@dataclass
class Herald:
    platform: Platform
    fake: FakeWhatsApp
    key: str
    hook: str  # the customer's webhook receiver
    received: list[dict[str, Any]]  # what it received


@pytest.fixture
async def herald(tmp_path: Path) -> AsyncIterator[Herald]:
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        received.append(orjson.loads(await request.body()))
        return Response(b"", 200)

    sim = Simulator(SimConfig(port=0, receipt_delay=(0.05, 0.1), seed=5))
    await sim.start()
    fake = FakeWhatsApp(FakeWhatsAppConfig(token=TOKEN, app_secret=SECRET, seed=5))
    keys: list[str] = []

    async def prepare(store: Store, accounts: Accounts) -> None:
        keys.append((await accounts.create("shop", time.time(), rate_limit=1000))[1].key)

    try:
        async with serve_app(fake.app) as fake_port, \
                serve_app(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as hook_port:
            config = parse_config({
                "data_dir": str(tmp_path / "data"), "http": {"listen": "127.0.0.1:0"},
                "smpp": {"listen": "127.0.0.1:0"},
                "webhooks": {"block_private_addresses": False},
                "connectors": [{"name": "sim", "host": "127.0.0.1", "port": sim.port,
                                "system_id": "herald", "password": "pw"}],
                "routes": [{"prefix": "1", "connectors": ["sim"]}],
                "channels": {"whatsapp": {
                    "base_url": f"http://127.0.0.1:{fake_port}", "token": TOKEN,
                    "app_secret": SECRET, "senders": {NUMBER_ID: "shop"},
                    "prices": {"utility": "0.008"}}},
            })  # fmt: skip
            platform = await Platform.start(config, prepare=prepare, processes=1)
            fake.webhook_url = (f"http://127.0.0.1:{platform.http_port}"
                                "/v1/channels/whatsapp/webhook")
            try:
                yield Herald(platform, fake, keys[0], f"http://127.0.0.1:{hook_port}/hook",
                             received)
            finally:
                await platform.stop()
    finally:
        await sim.stop()


async def test_a_rejected_whatsapp_leg_falls_back_to_sms_delivered_by_its_receipt(
        herald: Herald) -> None:
    platform, fake, key, received, hook = (herald.platform, herald.fake, herald.key,
                                           herald.received, herald.hook)
    fake.reject(TO[1:], 131026)  # no WhatsApp account
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}",
                                 headers={"Authorization": f"Bearer {key}"},
                                 trust_env=False) as http:
        answer = await http.post("/v1/messages", json={
            "to": TO, "from": "SHOP", "text": "Your order A-1042 has shipped",
            "callback_url": hook, "channels": [
                {"channel": "whatsapp", "template": {"name": "order_update",
                                                     "language": "en_US"}},
                {"channel": "sms"}]})
        assert answer.status_code == 202, answer.text
        chain_id = answer.json()["id"]

        async def delivered() -> bool:
            view = (await http.get(f"/v1/messages/{chain_id}")).json()
            return bool(view["status"] == "delivered")

        await eventually(delivered)
        view = (await http.get(f"/v1/messages/{chain_id}")).json()
    wa, sms = view["legs"]
    assert (wa["status"], wa["error"]["provider_code"]) == ("rejected", "131026")
    assert (sms["status"], view["delivered_by"]) == ("delivered", 1)
    # The SMS leg started in the very write that recorded the rejection, and went
    # upstream from there (its message's sent time is the SMS pipeline's own).
    assert sms["started_at"] == wa["updated_at"]
    message = await platform.store.get_message(sms["message_id"])
    assert message.status is Status.DELIVERED and message.sent_at is not None
    chain = await platform.store.get_chain(chain_id)
    assert chain.legs[1].started_at is not None and message.sent_at >= chain.legs[1].started_at
    await eventually(lambda: len(received) >= 1)
    await asyncio.sleep(0.5)  # a second webhook, if any, would be on its way by now
    assert [(r["type"], r["message"]["id"], r["message"]["status"],
             r["message"]["delivered_by"]) for r in received] == [
        ("message.chain", chain_id, "delivered", 1)]
