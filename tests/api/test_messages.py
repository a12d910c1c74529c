"""Sending, reading and listing messages through the real app and a real store."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from herald.api._context import ACCOUNT_CACHE_TTL
from herald.api._models import MessageList, MessageView
from herald.intake import IntakePolicy
from herald.store import (
    Channel,
    MessageFilter,
    ReceiptUpdate,
    RouteRecord,
    SegmentRecord,
    Status,
    StatusEvents,
    StatusUpdate,
)

from .conftest import T0, VALID_TO, Api, ApiFactory, message


def _view(body: Any) -> MessageView:
    return MessageView.model_validate(body)


async def test_send_is_stored_before_the_answer_and_wakes_dispatch(api: Api) -> None:
    response = await api.send(message(reference="order-7", metadata={"user": 42}))
    assert response.status_code == 202, response.text
    body = response.json()
    _view(body)
    assert body["status"] == "accepted" and body["test"] is False
    assert (body["to"], body["from"], body["segments"], body["encoding"]) == (
        VALID_TO, "ACME", 1, "gsm7",
    )
    assert body["timestamps"] == {"accepted": "2027-01-15T08:00:00.000Z"}
    assert body["expires_at"] == "2027-01-17T08:00:00.000Z"  # 48 h by default
    assert response.headers["location"] == f"/v1/messages/{body['id']}"
    stored = await api.store.get_message(body["id"], account_id=api.account.id)
    assert (stored.to, stored.sender, stored.body, stored.reference) == (
        "14155552671", "ACME", b"Your code is 123456", "order-7",
    )
    assert stored.metadata == '{"user":42}'
    assert [m.id for m in api.accepted] == [body["id"]]


async def test_get_shows_each_status_with_its_time(api: Api) -> None:
    sent = (await api.send(message())).json()
    url = f"/v1/messages/{sent['id']}"
    first = (await api.client.get(url, headers=api.auth)).json()
    assert first.pop("webhooks") == []  # GET alone lists failed webhook deliveries
    assert first.pop("route") == {"connector": None, "rule": None}  # not routed yet
    assert first == sent  # the 202 answer is the message as GET shows it

    await api.store.claim(10, T0 + 1, 30)
    await api.store.record_segments([SegmentRecord(sent["id"], 0, "op1", "UP-1", "up-1", T0 + 2)])
    await api.store.apply_receipts([ReceiptUpdate("op1", "up-1", Status.DELIVERED, T0 + 7.5)])
    response = await api.client.get(url, headers=api.auth)
    assert response.status_code == 200
    body = response.json()
    _view(body)
    assert body["status"] == "delivered" and body["error"] is None
    assert body["timestamps"] == {
        "accepted": "2027-01-15T08:00:00.000Z",
        "queued": "2027-01-15T08:00:01.000Z",
        "sent": "2027-01-15T08:00:02.000Z",
        "delivered": "2027-01-15T08:00:07.500Z",
    }


async def test_failed_message_shows_error_code_and_permanence(api: Api) -> None:
    sent = (await api.send(message())).json()
    await api.store.update_statuses([
        StatusUpdate(sent["id"], Status.FAILED, T0 + 3, error_code=0x45, permanent=True)])
    body = (await api.client.get(f"/v1/messages/{sent['id']}", headers=api.auth)).json()
    assert body["status"] == "failed"
    assert body["error"] == {"code": 0x45, "permanent": True}
    assert body["timestamps"]["failed"] == "2027-01-15T08:00:03.000Z"


async def test_get_shows_the_webhook_deliveries_that_failed(api: Api) -> None:
    """Issue 8 item 3: a callback herald would not post to (or that failed) is
    something the customer can see, not only the operator."""
    sent = (await api.send(message(callback_url="https://hooks.example.test/h",
                                   callback_events="all"))).json()
    await api.store.update_statuses([StatusUpdate(sent["id"], Status.SENT, T0 + 1)])
    await api.store.update_statuses([StatusUpdate(sent["id"], Status.DELIVERED, T0 + 2)])
    first, second = await api.store.claim_outbox(Channel.WEBHOOK, T0 + 3, 60, 10)
    await api.store.retry_outbox(first.id, None, "blocked: hooks.example.test resolves to a"
                                 " private, loopback or reserved address")
    await api.store.retry_outbox(second.id, T0 + 60, "http_error: HTTP 503")
    body = (await api.client.get(f"/v1/messages/{sent['id']}", headers=api.auth)).json()
    assert body["webhooks"] == [
        {"event": "sent", "url": "https://hooks.example.test/h", "state": "failed",
         "attempts": 1, "next_attempt_at": None,
         "error": "blocked: hooks.example.test resolves to a private, loopback or reserved"
                  " address"},
        {"event": "delivered", "url": "https://hooks.example.test/h", "state": "retrying",
         "attempts": 1, "next_attempt_at": "2027-01-15T08:01:00.000Z",
         "error": "http_error: HTTP 503"},
    ]  # fmt: skip
    listed = (await api.client.get("/v1/messages", headers=api.auth)).json()
    assert "webhooks" not in listed["messages"][0]  # (one read per message: GET by id only)


async def test_test_mode_validates_without_storing(api: Api) -> None:
    response = await api.send(message(test=True, text="☃ " * 40))
    assert response.status_code == 200
    body = response.json()
    _view(body)
    assert (body["id"], body["status"], body["test"]) == (None, "validated", True)
    assert (body["encoding"], body["segments"]) == ("ucs2", 2)
    page = await api.store.list_messages(MessageFilter(api.account.id))
    assert page.messages == () and api.accepted == []
    refused = await api.send(message(test=True, to="+1415"))
    assert refused.status_code == 422  # test mode still validates


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        ("final", StatusEvents.FINAL),
        ("all", StatusEvents.ALL),
        ("none", StatusEvents.NONE),
        (["sent", "undelivered"], StatusEvents.SENT | StatusEvents.UNDELIVERED),
    ],
)
async def test_a_message_chooses_its_webhook_events(
    api: Api, given: object, stored: StatusEvents | None
) -> None:
    fields = {} if given is None else {"callback_events": given}
    response = await api.send(message(callback_url="https://example.test/h", **fields))
    assert response.status_code == 202, response.text
    assert response.json()["callback_events"] == given
    [accepted] = api.accepted
    assert accepted.callback_events == stored
    shown = await api.client.get(f"/v1/messages/{accepted.id}", headers=api.auth)
    assert shown.json()["callback_events"] == given
    assert (await api.store.get_message(accepted.id)).callback_events == stored


async def test_binary_and_encodings(api: Api) -> None:
    data = bytes(range(200))
    binary = await api.send(message(text=None, binary=base64.b64encode(data).decode()))
    assert binary.status_code == 202
    assert (binary.json()["encoding"], binary.json()["segments"]) == ("binary", 2)
    stored = await api.store.get_message(binary.json()["id"])
    assert (stored.body, stored.data_coding) == (data, 4)
    ucs2 = await api.send(message(text="plain", encoding="ucs2"))
    assert ucs2.json()["encoding"] == "ucs2"
    assert (await api.store.get_message(ucs2.json()["id"])).body == "plain".encode("utf-16-be")


async def test_schedule_fields(api: Api) -> None:
    body = (await api.send(message(send_at="2027-01-15T09:00:00Z", validity_period=7200))).json()
    assert body["send_at"] == "2027-01-15T09:00:00.000Z"
    assert body["expires_at"] == "2027-01-15T10:00:00.000Z"
    stored = await api.store.get_message(body["id"])
    assert (stored.send_at, stored.expires_at) == (T0 + 3600, T0 + 7200)
    epoch = (await api.send(message(send_at=T0 + 60))).json()
    assert epoch["send_at"] == "2027-01-15T08:01:00.000Z"


async def test_another_accounts_message_is_not_found(api: Api, make_api: ApiFactory) -> None:
    other: Api = await make_api(name="globex")
    theirs = (await other.send(message())).json()
    response = await api.client.get(f"/v1/messages/{theirs['id']}", headers=api.auth)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:herald:problem:not-found"
    listed = (await api.client.get("/v1/messages", headers=api.auth)).json()
    assert listed["messages"] == []


async def test_list_filters_and_pages(api: Api) -> None:
    ids = []
    for n in range(5):
        api.clock.now = T0 + n * 10
        to = VALID_TO if n % 2 == 0 else "+33612345678"
        ids.append((await api.send(message(to=to, reference=f"r{n}"))).json()["id"])
    await api.store.claim(1, T0 + 100, 30)  # the oldest becomes queued

    async def listed(**params: Any) -> list[str]:
        response = await api.client.get("/v1/messages", params=params, headers=api.auth)
        assert response.status_code == 200, response.text
        MessageList.model_validate(response.json())
        return [m["id"] for m in response.json()["messages"]]

    assert await listed() == ids[::-1]  # newest first
    assert await listed(status="queued") == [ids[0]]
    assert await listed(status="accepted", to="33 6 12 34 56 78") == [ids[3], ids[1]]
    assert await listed(reference="r2") == [ids[2]]
    assert await listed(since=str(T0 + 10), until="2027-01-15T08:00:30Z") == [ids[2], ids[1]]

    seen: list[str] = []
    cursor = None
    for _ in range(5):  # bounded: 5 messages, 2 per page
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/v1/messages", params=params, headers=api.auth)).json()
        seen += [m["id"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


async def test_health_and_metrics(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    await api.send(message())
    await api.send(message(to="nope"))
    text = (await api.client.get("/metrics")).text
    assert 'herald_messages_accepted_total{source="http"} 1.0' in text
    assert 'herald_messages_refused_total{reason="not_a_number",source="http"} 1.0' in text
    assert 'herald_http_requests_total{code="202",route="/v1/messages"} 1.0' in text
    assert 'herald_http_requests_total{code="422",route="/v1/messages"} 1.0' in text


async def test_health_fails_when_the_store_is_closed(api: Api) -> None:
    await api.store.aclose()
    response = await api.client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == "urn:herald:problem:unavailable"


async def test_operator_intake_policy_applies(make_api: ApiFactory) -> None:
    api: Api = await make_api(intake=IntakePolicy(test_prefixes=("999",)))
    sent = await api.send(message(to="+999 0001"))
    assert sent.status_code == 202 and sent.json()["to"] == "+9990001"
    listed = await api.client.get("/v1/messages", params={"to": "+9990001"}, headers=api.auth)
    assert [m["id"] for m in listed.json()["messages"]] == [sent.json()["id"]]


@pytest.mark.parametrize("fast_send", [True, False])
async def test_once_herald_stops_sends_get_503_and_nothing_is_stored(
    make_api: ApiFactory, fast_send: bool
) -> None:
    stopping = [False]
    api = await make_api(rate_limit=2.0, fast_send=fast_send, stopping=lambda: stopping[0])
    assert (await api.send(message())).status_code == 202
    stopping[0] = True  # herald serve's stop() began (issue 8 item 8)
    for _ in range(3):  # more than the rate allows: nothing is charged either
        answer = await api.send(message())
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "2"
        assert answer.json()["type"].endswith("shutting-down")
    batch = await api.client.post("/v1/messages/batch", json={"messages": [message()]},
                                  headers=api.auth)  # fmt: skip
    assert batch.status_code == 503
    health = await api.client.get("/healthz")  # a load balancer drains this instance
    assert health.status_code == 503 and health.json()["type"].endswith("shutting-down")
    assert len(api.accepted) == 1
    page = await api.store.list_messages(MessageFilter(api.account.id))
    assert len(page.messages) == 1
    stopping[0] = False  # (a test only: a real herald does not come back)
    assert (await api.send(message())).status_code == 202  # the rate was refunded


@pytest.mark.parametrize("fast_send", [True, False])
async def test_a_callback_url_naming_a_private_address_is_refused_when_blocking(
    make_api: ApiFactory, fast_send: bool
) -> None:
    api = await make_api(block_private_callbacks=True, fast_send=fast_send)
    for url in ("http://169.254.169.254/", "http://localhost/", "http://[::1]:22/",
                "http://0x7f000001/", "http://2130706433/", "http://192.168.1.1/"):
        answer = await api.send(message(callback_url=url))
        assert answer.status_code == 422, (url, answer.text)
        [error] = answer.json()["errors"]
        assert (error["field"], error["code"]) == ("callback_url", "blocked_address")
    public = await api.send(message(callback_url="https://hooks.example.com/h"))
    assert public.status_code == 202  # a name: checked when resolved, at delivery
    assert len(api.accepted) == 1


async def test_a_disabled_accounts_keys_are_refused(api: Api) -> None:
    assert (await api.send(message())).status_code == 202
    await api.store.update_account(dataclasses.replace(api.account, disabled=True))
    api.clock.advance(ACCOUNT_CACHE_TTL + 1)  # the account is re-read within that long
    refused = await api.send(message())
    assert refused.status_code == 401
    assert "disabled" in refused.json()["detail"]
    assert len(api.accepted) == 1


async def test_get_shows_the_connector_and_the_rule_that_routed_the_message(api: Api) -> None:
    sent = (await api.send(message())).json()
    await api.store.claim(10, T0 + 1, 30)
    await api.store.record_routes([RouteRecord(sent["id"], "us-least-cost", T0 + 1)])
    await api.store.record_segments([
        SegmentRecord(sent["id"], 0, "operator-b", "U1", "u1", T0 + 2)])
    shown = (await api.client.get(f"/v1/messages/{sent['id']}", headers=api.auth)).json()
    assert shown["route"] == {"connector": "operator-b", "rule": "us-least-cost"}
    assert shown["status"] == "sent"
