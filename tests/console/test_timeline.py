"""A message's submit and webhook attempts in its timeline, end to end: herald's
dispatch against an SMPP upstream on loopback that answers an error, then a
success; its webhook sender against a receiver on loopback that answers 500,
then 200; read through the admin API and the console's message page."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry
from tests.dispatch.conftest import FAST, connector
from tests.dispatch.upstream import OK, Answer, Upstream
from tests.webhooks.receiver import Receiver, Reply

from herald.config import HeraldConfig, RouteConfig, WebhookConfig
from herald.dispatch import Dispatcher
from herald.ids import SortableIdGenerator
from herald.metrics import Metrics
from herald.smpp.constants import CommandStatus
from herald.store import NewMessage, Source
from herald.webhooks import SenderOptions, WebhookSender

from .conftest import STEP, Console

S = CommandStatus
SECRET_QUERY = "token=s3cret"


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` every 20 ms for at most STEP seconds."""
    for _ in range(int(STEP / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {STEP} s: {what}")


async def test_the_timeline_shows_each_submit_and_webhook_attempt_with_its_answer(
    console: Console,
) -> None:
    store = console.store
    upstream = Upstream(decide=lambda pdu, n: Answer(S.ESME_RSYSERR) if n == 1 else OK)
    await upstream.start()
    dispatcher = Dispatcher(store, HeraldConfig(
        connectors=(connector("eu-1", upstream.server.port),),  # type: ignore[union-attr]
        routes=(RouteConfig("", ("eu-1",)),),
    ), Metrics(CollectorRegistry()), time.time, settings=FAST)  # fmt: skip
    sender = WebhookSender(store, b"k" * 32, WebhookConfig(timeout=2.0, backoff_min=0.05,
                                                           backoff_max=0.1),
                           options=SenderOptions(poll_interval=0.02))  # fmt: skip
    api = console.client(Authorization=f"Bearer {console.read_key}")
    async with Receiver() as receiver:
        receiver.script = [Reply(500, b"busy")]
        account = await store.get_account_by_name("acme")
        now = time.time()
        message = NewMessage(
            id=SortableIdGenerator().new_id(now), account_id=account.id, source=Source.HTTP,
            to="447700900123", sender="ACME", body=b"code 1234", encoding="gsm7",
            data_coding=0, segments=1, accepted_at=now, expires_at=now + 600,
            callback_url=receiver.url(f"/hook?{SECRET_QUERY}"))  # fmt: skip
        await store.accept([message])
        await dispatcher.start()
        sending = asyncio.create_task(sender.run())
        dispatcher.wake()
        view: dict[str, Any] = {}

        async def webhooks_answered() -> bool:
            view.update((await api.get(f"/v1/admin/messages/{message.id}")).json())
            return [a["answer"] for a in view["attempts"] if a["kind"] == "webhook"] \
                == ["HTTP 500", "HTTP 200"]

        try:
            await _until(webhooks_answered, "the message delivered, its webhook retried")
        finally:
            await sender.stop()
            await sending
            await sender.aclose()
            await dispatcher.stop()
            await upstream.stop()
    host = f"127.0.0.1:{receiver.port}"
    assert view["status"] == "delivered"
    assert [{k: v for k, v in a.items() if k != "at"} for a in view["attempts"]] == [
        {"kind": "submit", "number": 1, "target": "eu-1", "part": 1, "event": None,
         "answer": "ESME_RSYSERR", "ok": False},
        {"kind": "submit", "number": 2, "target": "eu-1", "part": 1, "event": None,
         "answer": "ESME_ROK", "ok": True},
        {"kind": "webhook", "number": 1, "target": host, "part": None, "event": "delivered",
         "answer": "HTTP 500", "ok": False},
        {"kind": "webhook", "number": 2, "target": host, "part": None, "event": "delivered",
         "answer": "HTTP 200", "ok": True},
    ]  # fmt: skip
    times = [a["at"] for a in view["attempts"]]
    assert times == sorted(times)
    steps = [e["event"] for e in view["timeline"]
             if e["event"] in ("accepted", "submit", "sent", "delivered", "webhook")]
    assert steps == ["accepted", "submit", "submit", "sent", "delivered", "webhook", "webhook"]
    # The red line for secrets: the endpoint is its host, never the URL's query.
    assert SECRET_QUERY not in json.dumps([view["attempts"], view["timeline"]])

    client, _ = await console.signed_in(console.read_key)
    page = (await client.get(f"/console/messages/{message.id}")).text
    assert 'id="attempts"' in page and SECRET_QUERY not in page.split('id="timeline"')[1]
    for entry in view["timeline"]:
        if entry["event"] in ("submit", "webhook"):
            assert f"<strong>{entry['event']}</strong> {entry['detail']}" in page
    assert "part 1 to eu-1, attempt 1: ESME_RSYSERR" in page
    assert f"delivered event to {host}, attempt 2: HTTP 200" in page


def test_a_receipt_read_before_its_submit_was_recorded_is_shown_after_the_sending() -> None:
    """A receipt that arrived before its submit_sm_resp was recorded (parked, then
    applied with the record) carries a time before "sent": the timeline still
    shows the sending first, with each event's own time."""
    from herald.api._admin_views import _timeline

    view = {"timestamps": {"accepted": "2026-12-07T10:00:00.100Z",
                           "sent": "2026-12-07T10:00:00.300Z",
                           "delivered": "2026-12-07T10:00:00.250Z"},
            "route": {"connector": None, "rule": None}, "parts": [], "charge": None,
            "webhooks": [], "attempts": []}  # fmt: skip
    entries = _timeline(view)
    assert [e["event"] for e in entries] == ["accepted", "sent", "delivered"]
    assert entries[2]["at"] == "2026-12-07T10:00:00.250Z"
