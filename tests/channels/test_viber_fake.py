"""The generic Viber adapter against the local fake provider (issue 14 test 10, adapter level)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from tests.channels.helpers import LegBook, receiver

from herald.channels import (
    Accepted,
    ChannelErrorCode,
    HmacScheme,
    LegEvent,
    LegState,
    Rejected,
    Submission,
    TextContent,
    ViberSettings,
)
from herald.channels.clients import ViberClient
from herald.sim.chat import FakeViber, serve_app

SCHEME = HmacScheme("X-Provider-Signature", prefix="sha256=", encoding="base64")


@dataclass
class Rig:
    fake: FakeViber
    client: ViberClient
    book: LegBook
    hook: str


def _settings(base: str, secret: str = "vb-secret") -> ViberSettings:
    return ViberSettings(base_url=base, token="vb-token", secret=secret, scheme=SCHEME,
                         send_path="/v2/send")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    book = LegBook()
    fake = FakeViber(_settings("http://127.0.0.1"), callback_url="")
    async with serve_app(fake.app) as fake_port:
        client = ViberClient(_settings(f"http://127.0.0.1:{fake_port}"))
        async with serve_app(receiver(client, book)) as hook_port:
            fake.callback_url = f"http://127.0.0.1:{hook_port}/hook"
            try:
                yield Rig(fake, client, book, fake.callback_url)
            finally:
                await client.aclose()


async def _accepted(rig: Rig, to: str = "380501234567") -> str:
    result = await rig.client.submit(Submission("leg1", "HeraldShop", to,
                                                TextContent("Your code is 4821"), ttl=60))
    assert isinstance(result, Accepted)
    rig.book.accepted(result.provider_id)
    return result.provider_id


async def test_a_ttl_expiry_callback_ends_the_leg_expired_with_its_code(rig: Rig) -> None:
    provider_id = await _accepted(rig)
    assert rig.fake.sent[provider_id].ttl == 60
    assert await rig.fake.expire(provider_id) == 200
    assert rig.book.states[provider_id] is LegState.EXPIRED
    event = rig.book.events[-1]
    assert event.event is LegEvent.EXPIRED
    assert event.error is not None and event.error.code is ChannelErrorCode.TTL_EXPIRED
    # a late delivery is recorded; a duplicate expiry changes nothing
    assert await rig.fake.deliver(provider_id) == 200
    assert await rig.fake.expire(provider_id) == 200
    assert rig.book.states[provider_id] is LegState.DELIVERED


async def test_seen_is_read(rig: Rig) -> None:
    provider_id = await _accepted(rig)
    await rig.fake.seen(provider_id)
    assert rig.book.states[provider_id] is LegState.READ


async def test_a_callback_signed_with_another_secret_is_refused_and_changes_nothing(
        rig: Rig) -> None:
    provider_id = await _accepted(rig)
    forger = FakeViber(_settings("http://127.0.0.1", secret="not-the-secret"), rig.hook)
    assert await forger.expire(provider_id) == 401
    body = rig.fake.callback_body(provider_id, "expired")
    async with httpx.AsyncClient(trust_env=False) as http:
        unsigned = await http.post(rig.hook, content=body)
        flipped = await http.post(rig.hook, content=body.replace(b"expired", b"expirex"),
                                  headers={SCHEME.header: SCHEME.sign("vb-secret", body)})
    assert (unsigned.status_code, flipped.status_code) == (400, 401)
    assert rig.book.states[provider_id] is LegState.ACCEPTED and rig.book.events == []


async def test_a_number_not_on_viber_is_a_permanent_rejection(rig: Rig) -> None:
    rig.fake.not_on_viber("380509999999")
    result = await rig.client.submit(Submission("leg2", "HeraldShop", "380509999999",
                                                TextContent("hi")))
    assert isinstance(result, Rejected) and result.permanent
    assert result.code is ChannelErrorCode.NOT_ON_CHANNEL
    assert result.provider_code == "not_viber_user"
