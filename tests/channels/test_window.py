"""Free-form text outside the 24-hour window is refused before any provider call
(issue 14 test 2, at the adapter's edge: the API does not take chat legs yet)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson
import pytest
from tests.channels.helpers import LegBook, receiver

from herald.channels import (
    CUSTOMER_SERVICE_WINDOW,
    Accepted,
    ChannelErrorCode,
    MalformedWebhook,
    Rejected,
    Submission,
    SubmitResult,
    TemplateContent,
    TextContent,
    refuse_outside_window,
    window_open,
)
from herald.channels._whatsapp import parse_inbound
from herald.channels.clients import WhatsAppClient, WhatsAppSettings
from herald.sim.chat import FakeWhatsApp, FakeWhatsAppConfig, serve_app

TOKEN, SECRET, NUMBER_ID, USER = "EAAw-token", "w-secret", "1065550001", "447700900321"
TEXT, TEMPLATE = TextContent("Your table is ready"), TemplateContent("table_ready", "en_GB")


def test_the_window_is_open_for_24_hours_after_the_users_message() -> None:
    assert not window_open(None, 1000.0)
    assert window_open(1000.0, 1000.0 + CUSTOMER_SERVICE_WINDOW - 1)
    assert not window_open(1000.0, 1000.0 + CUSTOMER_SERVICE_WINDOW)
    assert not window_open(1000.0, 999.0)  # a message from the future opens nothing


def test_only_free_form_text_needs_the_window() -> None:
    refusal = refuse_outside_window(TEXT, None, 5000.0)
    assert refusal is not None and refusal.code is ChannelErrorCode.WINDOW_CLOSED
    assert refusal.permanent and "template" in refusal.detail
    assert refuse_outside_window(TEMPLATE, None, 5000.0) is None
    assert refuse_outside_window(TEXT, 4000.0, 5000.0) is None


def test_inbound_messages_are_read_but_a_location_never_is() -> None:
    fake = FakeWhatsApp(FakeWhatsAppConfig(token=TOKEN, app_secret=SECRET))
    (message,) = parse_inbound(fake.inbound_body(USER, "hello", NUMBER_ID))
    assert (message.sender, message.user, message.kind, message.text) == (
        NUMBER_ID, USER, "text", "hello")
    assert USER not in repr(message) and "hello" not in repr(message)
    located = orjson.loads(fake.inbound_body(USER, "x", NUMBER_ID))
    item = located["entry"][0]["changes"][0]["value"]["messages"][0]
    del item["text"]
    item.update(type="location", location={"latitude": 51.5, "longitude": -0.12})
    (message,) = parse_inbound(orjson.dumps(located))
    assert message.kind == "location" and message.text is None
    assert "51.5" not in repr(message)
    with pytest.raises(MalformedWebhook):
        parse_inbound(b'{"object":"whatsapp_business_account","entry":[{"changes":'
                      b'[{"value":{"messages":[{"id":"w"}]}}]}]}')


async def _intake(client: WhatsAppClient, book: LegBook, submission: Submission) -> SubmitResult:
    """What herald's intake will do before a chat leg goes out."""
    opened = book.windows.get((submission.sender, submission.to))
    refusal = refuse_outside_window(submission.content, opened, time.time())
    return refusal if refusal is not None else await client.submit(submission)


@pytest.fixture
async def rig() -> AsyncIterator[tuple[FakeWhatsApp, WhatsAppClient, LegBook]]:
    fake, book = FakeWhatsApp(FakeWhatsAppConfig(token=TOKEN, app_secret=SECRET)), LegBook()
    async with serve_app(fake.app) as port:
        client = WhatsAppClient(WhatsAppSettings(f"http://127.0.0.1:{port}", TOKEN, SECRET))
        async with serve_app(receiver(client, book)) as hook_port:
            fake.webhook_url = f"http://127.0.0.1:{hook_port}/hook"
            try:
                yield fake, client, book
            finally:
                await client.aclose()


async def test_free_form_with_no_open_window_is_refused_with_zero_provider_calls(
        rig: tuple[FakeWhatsApp, WhatsAppClient, LegBook]) -> None:
    fake, client, book = rig
    result = await _intake(client, book, Submission("l1", NUMBER_ID, USER, TEXT))
    assert isinstance(result, Rejected) and result.code is ChannelErrorCode.WINDOW_CLOSED
    assert fake.answers == [] and client.counters.requests == 0


async def test_the_users_message_opens_the_window_and_the_text_goes(
        rig: tuple[FakeWhatsApp, WhatsAppClient, LegBook]) -> None:
    fake, client, book = rig
    assert await fake.inbound(USER, "is my table ready?", NUMBER_ID) == 200
    assert (NUMBER_ID, USER) in book.windows
    result = await _intake(client, book, Submission("l1", NUMBER_ID, USER, TEXT))
    assert isinstance(result, Accepted)
    assert fake.sent[result.provider_id].kind == "text"
