"""The WhatsApp adapter against the local fake of the Cloud API (issue 14 tests 1, 3, 4, 8)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from tests.channels.helpers import LegBook, receiver

from herald.channels import (
    RANK,
    Accepted,
    AuthTemplateContent,
    ChannelErrorCode,
    LegState,
    Rejected,
    Submission,
    TemplateContent,
    TextContent,
)
from herald.channels._pace import PaceSettings
from herald.channels.clients import WhatsAppClient, WhatsAppSettings
from herald.sim.chat import Chaos, FakeWhatsApp, FakeWhatsAppConfig, serve_app

TOKEN, SECRET = "EAAtest-token", "app-secret-1"
NUMBER_ID = "1065550001"


@dataclass
class Rig:
    fake: FakeWhatsApp
    client: WhatsAppClient
    book: LegBook
    base: str  # the fake's URL
    hook: str  # herald's receiver URL


async def _rig(fake_config: FakeWhatsAppConfig | None = None,
               pace: PaceSettings | None = None) -> AsyncIterator[Rig]:
    book = LegBook()
    settings_pace = pace or PaceSettings(rate=100_000, burst=1000)
    fake = FakeWhatsApp(fake_config or FakeWhatsAppConfig(
        token=TOKEN, app_secret=SECRET, rate=100_000, burst=1000, seed=14))
    async with serve_app(fake.app) as fake_port:
        base = f"http://127.0.0.1:{fake_port}"
        client = WhatsAppClient(WhatsAppSettings(base, TOKEN, SECRET, pace=settings_pace))
        async with serve_app(receiver(client, book)) as hook_port:
            hook = f"http://127.0.0.1:{hook_port}/hook"
            fake.webhook_url = hook
            try:
                yield Rig(fake, client, book, base, hook)
            finally:
                await client.aclose()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for r in _rig():
        yield r


def _sub(n: int, content: TextContent | TemplateContent | AuthTemplateContent,
         to: str = "447700900123") -> Submission:
    return Submission(f"leg{n}", NUMBER_ID, to, content)


CONTENTS = {
    "text": TextContent("Your parcel is on its way"),
    "template": TemplateContent("order_update", "en_US", ("A-1042", "Tuesday")),
    "authentication": AuthTemplateContent("login_code", "en_US", "493817"),
}


# -- test 1: every request passes the fake's schema check -------------------------------------

async def test_text_template_and_auth_template_pass_the_schema_and_get_ids(rig: Rig) -> None:
    rig.fake.open_window("447700900123")
    results = [await rig.client.submit(_sub(i, c)) for i, c in enumerate(CONTENTS.values())]
    assert all(isinstance(r, Accepted) and r.provider_id.startswith("wamid.") for r in results)
    assert rig.fake.schema_failures == []
    kinds = [rig.fake.sent[r.provider_id].kind for r in results if isinstance(r, Accepted)]
    assert kinds == ["text", "template", "template"]


@pytest.mark.parametrize(("body", "where"), [
    ({"recipient_type": "individual", "to": "1", "type": "text", "text": {"body": "x"}},
     "$.messaging_product"),
    ({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "1",
      "type": "text", "text": {"body": "x", "bold": True}}, "$.text.bold"),
    ({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "1",
      "type": "template", "template": {"name": "t"}}, "$.template.language"),
    ({"messaging_product": "whatsapp", "recipient_type": "individual", "to": "1",
      "type": "carrier_pigeon"}, "$.type"),
])
async def test_the_fake_refuses_a_request_that_breaks_the_schema(
        rig: Rig, body: dict[str, object], where: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.post(f"{rig.base}/v23.0/{NUMBER_ID}/messages", json=body,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == 100
    assert rig.fake.schema_failures and rig.fake.schema_failures[-1].startswith(where)


async def test_free_form_text_outside_the_window_is_refused_with_131047(rig: Rig) -> None:
    result = await rig.client.submit(_sub(1, CONTENTS["text"], to="447700900999"))
    assert isinstance(result, Rejected) and result.permanent
    assert result.code is ChannelErrorCode.WINDOW_CLOSED and result.provider_code == 131047


async def test_a_chosen_rejection_code_comes_back_as_herald_code(rig: Rig) -> None:
    rig.fake.reject("447700900555", 131026)
    result = await rig.client.submit(_sub(1, CONTENTS["template"], to="447700900555"))
    assert isinstance(result, Rejected) and result.code is ChannelErrorCode.NOT_ON_CHANNEL


# -- test 3: signatures ------------------------------------------------------------------------

async def _one_status_body(rig: Rig) -> bytes:
    result = await rig.client.submit(_sub(1, CONTENTS["template"]))
    assert isinstance(result, Accepted)
    rig.book.accepted(result.provider_id)
    return rig.fake.webhook_body([{"id": result.provider_id, "status": "delivered",
                                   "timestamp": "1700000000"}])


async def test_a_validly_signed_status_webhook_changes_the_leg(rig: Rig) -> None:
    body = await _one_status_body(rig)
    from herald.channels import WHATSAPP_SCHEME
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.post(rig.hook, content=body, headers={
            WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(SECRET, body)})
    assert answer.status_code == 200
    assert list(rig.book.states.values()) == [LegState.DELIVERED]


@pytest.mark.parametrize("attack", ["flipped_byte", "wrong_secret", "missing_header"])
async def test_a_bad_signature_is_refused_and_changes_nothing(rig: Rig, attack: str) -> None:
    body = await _one_status_body(rig)
    from herald.channels import WHATSAPP_SCHEME
    headers = {WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(
        "another-secret" if attack == "wrong_secret" else SECRET, body)}
    if attack == "flipped_byte":
        body = body.replace(b"delivered", b"delivereD")
    if attack == "missing_header":
        headers = {}
    before = dict(rig.book.states)
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.post(rig.hook, content=body, headers=headers)
    assert answer.status_code == (400 if attack == "missing_header" else 401)
    assert rig.book.states == before and rig.book.events == []


# -- test 4: chaotic status webhooks ----------------------------------------------------------

async def test_1000_messages_with_chaotic_statuses_end_in_the_fakes_truth(rig: Rig) -> None:
    rig.fake.chaos = Chaos(duplicates=3, reverse=True, drop_delivered=True)
    subs = [_sub(i, CONTENTS["template"], to=f"4477009{i:05d}") for i in range(1000)]
    results = await asyncio.gather(*(rig.client.submit(s) for s in subs))
    for result in results:
        assert isinstance(result, Accepted)
        rig.book.accepted(result.provider_id)
    answers = await rig.fake.flush()
    assert set(answers) == {200}
    expected = {"read": LegState.READ, "delivered": LegState.DELIVERED, "failed": LegState.FAILED}
    truths = {wamid: rig.fake.truth(wamid) for wamid in rig.book.states}
    assert {rig.book.states[w] for w in truths} == set(expected.values())  # a mix was drawn
    assert all(rig.book.states[w] is expected[t] for w, t in truths.items())
    assert all(RANK[new] > RANK[old] for _, old, new in rig.book.changes)
    assert rig.book.callbacks == dict.fromkeys(truths, 1)  # one final callback per message
    # the chaos was real: three copies of each status, newest first
    assert len(rig.book.events) >= 3 * 2 * 1000


# -- test 8: pacing and back-off --------------------------------------------------------------

@pytest.fixture
async def paced() -> AsyncIterator[Rig]:
    # The fake at the Cloud API's 80/s with a burst of 8; herald at its default pace.
    fake = FakeWhatsAppConfig(token=TOKEN, app_secret=SECRET, rate=80, burst=8, seed=8)
    async for r in _rig(fake, PaceSettings(backoff=0.02, max_backoff=0.1)):
        yield r


async def test_herald_paces_to_80_per_second_without_a_130429(paced: Rig) -> None:
    count = 120  # 1.6 s at 72/s, sent at once: herald's pacing alone spaces them
    subs = [_sub(i, CONTENTS["template"]) for i in range(count)]
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(paced.client.submit(s) for s in subs)), 30)
    took = time.monotonic() - started
    assert all(isinstance(r, Accepted) for r in results)
    assert paced.fake.throttled == 0 and paced.client.counters.throttled == 0
    assert paced.client.counters.requests == count  # nothing was sent twice
    pace = paced.client.settings.pace
    assert took >= (count - pace.burst) / pace.rate  # never faster than the pace


async def test_on_forced_130429_herald_backs_off_and_no_message_fails(paced: Rig) -> None:
    paced.fake.throttle(5)
    subs = [_sub(i, CONTENTS["authentication"]) for i in range(12)]
    results = await asyncio.gather(*(paced.client.submit(s) for s in subs))
    assert all(isinstance(r, Accepted) for r in results)
    assert paced.fake.throttled == 5 == paced.client.counters.throttled
    assert len(paced.fake.sent) == 12


async def test_throttling_past_the_retries_is_returned_not_lost(paced: Rig) -> None:
    paced.fake.throttle(1000)
    client = WhatsAppClient(WhatsAppSettings(
        paced.base, TOKEN, SECRET, pace=PaceSettings(backoff=0.001, max_backoff=0.002),
        max_throttle_retries=3))
    try:
        result = await client.submit(_sub(1, CONTENTS["template"]))
    finally:
        await client.aclose()
    assert isinstance(result, Rejected) and result.code is ChannelErrorCode.THROTTLED
    assert client.counters.requests == 4


async def test_the_answers_body_is_what_the_fake_returned(rig: Rig) -> None:
    result = await rig.client.submit(_sub(1, CONTENTS["template"]))
    assert isinstance(result, Accepted)
    status, body = rig.fake.answers[-1]
    assert status == 200 and orjson.loads(body)["messages"][0]["id"] == result.provider_id
