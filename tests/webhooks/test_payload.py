"""Webhook bodies, built from events the store wrote and records it reads back."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from herald.store import (
    Channel,
    EventKind,
    InboundMessage,
    OutboxEvent,
    ReceiptUpdate,
    SegmentRecord,
    Status,
    StatusUpdate,
)
from herald.webhooks import inbound_payload, rfc3339, status_payload, webhook_event_id

from .conftest import T0, World

HOOK = "https://example.test/hook"
MESSAGE_KEYS = {"id", "status", "to", "from", "reference", "metadata", "segments", "timestamps",
                "error", "route"}  # fmt: skip
INBOUND_KEYS = {"id", "from", "to", "encoding", "text", "binary", "received_at"}


async def claim(world: World) -> list[OutboxEvent]:
    return list(await world.store.claim_outbox(Channel.WEBHOOK, T0 + 10**6, 60, 100))


async def body_of(world: World, event: OutboxEvent) -> dict[str, Any]:
    message = await world.store.get_message(event.subject_id)
    payload: dict[str, Any] = json.loads(status_payload(event, message))
    return payload


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(T0) == "2027-01-15T08:00:00.000Z"
    assert rfc3339(T0 + 4.2) == "2027-01-15T08:00:04.200Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"


async def test_a_status_body_holds_what_the_customer_gave_and_herald_decided(
    world: World,
) -> None:
    message = world.new_message(callback_url=HOOK, reference="r-1", metadata='{"a": [1]}',
                                segments=2, to="447700900123")  # fmt: skip
    await world.store.accept([message])
    await world.store.update_statuses([StatusUpdate(message.id, Status.QUEUED, T0 + 1)])
    # What dispatch knows about the upstream must stay out of the webhook.
    await world.store.record_segments([
        SegmentRecord(message.id, 0, "operator-zeta", "UPID-77", "upid-77", T0 + 2)])
    await world.store.record_segments([
        SegmentRecord(message.id, 1, "operator-zeta", "UPID-78", "upid-78", T0 + 2)])
    await world.store.apply_receipts([
        ReceiptUpdate("operator-zeta", "upid-77", Status.DELIVERED, T0 + 3)])
    await world.store.apply_receipts([
        ReceiptUpdate("operator-zeta", "upid-78", Status.DELIVERED, T0 + 4)])
    sent, delivered = await claim(world)
    assert (sent.status, delivered.status) == (Status.SENT, Status.DELIVERED)

    raw = status_payload(delivered, await world.store.get_message(message.id))
    body = json.loads(raw)
    assert set(body) == {"event_id", "type", "created_at", "message"}
    assert set(body["message"]) == MESSAGE_KEYS
    assert body["event_id"] == f"evt_{message.id}_delivered" == webhook_event_id(delivered)
    assert body["created_at"] == rfc3339(T0 + 4)
    assert body["message"] == {
        "id": message.id,
        "status": "delivered",
        "to": "447700900123",
        "from": "ACME",
        "reference": "r-1",
        "metadata": {"a": [1]},
        "segments": 2,
        "timestamps": {
            "accepted": rfc3339(T0),
            "queued": rfc3339(T0 + 1),
            "sent": rfc3339(T0 + 2),
            "delivered": rfc3339(T0 + 4),
        },
        "error": None,
        "route": {"connector": None, "rule": None},
    }
    for internal in (b"operator-zeta", b"UPID", b"upid", message.body):
        assert internal not in raw
    # With its route (issue 9): the connector that carried it and the rule that
    # chose it; still never an upstream id.
    routes = await world.store.get_message_routes([message.id])
    raw = status_payload(delivered, await world.store.get_message(message.id), routes[message.id])
    assert json.loads(raw)["message"]["route"] == {"connector": "operator-zeta", "rule": None}
    for internal in (b"UPID", b"upid", message.body):
        assert internal not in raw


async def test_a_status_body_is_the_same_bytes_whenever_it_is_built(world: World) -> None:
    message = world.new_message(callback_url=HOOK)
    await world.store.accept([message])
    await world.store.update_statuses([StatusUpdate(message.id, Status.SENT, T0 + 1)])
    (sent,) = await claim(world)
    first = status_payload(sent, await world.store.get_message(message.id))
    await world.store.update_statuses([StatusUpdate(message.id, Status.DELIVERED, T0 + 2)])
    # The retry of the sent event, built after the message was delivered:
    again = status_payload(sent, await world.store.get_message(message.id))
    assert again == first
    body = json.loads(again)["message"]
    assert (body["status"], set(body["timestamps"])) == ("sent", {"accepted", "sent"})


@pytest.mark.parametrize(
    ("status", "code", "permanent", "error"),
    [
        (Status.REJECTED, 0x45, True, {"code": 0x45, "permanent": True}),
        (Status.UNDELIVERED, 11, False, {"code": 11, "permanent": False}),
        (Status.EXPIRED, None, False, {"code": None, "permanent": False}),
        (Status.FAILED, 0x08, True, {"code": 0x08, "permanent": True}),
        (Status.DELIVERED, None, False, None),
    ],
)
async def test_a_final_status_says_its_error_and_whether_it_is_permanent(
    world: World, status: Status, code: int | None, permanent: bool, error: object
) -> None:
    message = world.new_message(callback_url=HOOK)
    await world.store.accept([message])
    await world.store.update_statuses([StatusUpdate(message.id, status, T0 + 5, error_code=code,
                                    permanent=permanent)])  # fmt: skip
    (event,) = await claim(world)
    body = (await body_of(world, event))["message"]
    assert body["status"] == status.label
    assert body["error"] == error
    assert body["timestamps"] == {"accepted": rfc3339(T0), status.label: rfc3339(T0 + 5)}


async def test_metadata_that_is_not_json_is_handed_back_as_given(world: World) -> None:
    message = world.new_message(callback_url=HOOK, metadata="plain words")
    await world.store.accept([message])
    await world.store.update_statuses([StatusUpdate(message.id, Status.SENT, T0 + 1)])
    (event,) = await claim(world)
    assert (await body_of(world, event))["message"]["metadata"] == "plain words"


def _inbound(body: bytes, encoding: str, data_coding: int = 0) -> InboundMessage:
    return InboundMessage(id="in-1", account_id=1, to="4470000", sender="447700900123",
                          body=body, encoding=encoding, data_coding=data_coding,
                          connector="operator-zeta", received_at=T0 + 60)  # fmt: skip


def _inbound_event(**changes: Any) -> OutboxEvent:
    event = OutboxEvent(id=9, channel=Channel.WEBHOOK, kind=EventKind.INBOUND, account_id=1,
                        subject_id="in-1", status=None, url=HOOK, created_at=T0 + 60,
                        attempts=1, next_attempt_at=None, last_error=None)  # fmt: skip
    return dataclasses.replace(event, **changes)


@pytest.mark.parametrize(
    ("body", "encoding", "text", "binary", "sent_encoding"),
    [
        (b"\x015 STOP", "gsm7", "£5 STOP", None, "gsm7"),  # GSM 03.38: 0x01 is £
        ("Да, STOP".encode("utf-16-be"), "ucs2", "Да, STOP", None, "ucs2"),
        ("café".encode("latin-1"), "latin1", "café", None, "latin1"),
        (b"\x00\xff\x10", "binary", None, "AP8Q", "binary"),
        (b"\x00\xff", "klingon", None, "AP8=", "binary"),  # unknown: the octets
        (b"\x00A\xd8", "ucs2", "A\ufffd", None, "ucs2"),  # odd octet: lenient
    ],
)
def test_an_inbound_body_is_text_or_base64(
    body: bytes, encoding: str, text: str | None, binary: str | None, sent_encoding: str
) -> None:
    raw = inbound_payload(_inbound_event(), _inbound(body, encoding))
    payload = json.loads(raw)
    assert (payload["event_id"], payload["type"]) == ("evt_in-1_inbound", "message.inbound")
    assert set(payload["inbound"]) == INBOUND_KEYS
    assert payload["inbound"]["text"] == text
    assert payload["inbound"]["binary"] == binary
    assert payload["inbound"]["encoding"] == sent_encoding
    assert payload["inbound"]["received_at"] == rfc3339(T0 + 60)
    assert b"operator-zeta" not in raw


def test_events_and_records_must_belong_together() -> None:
    inbound = _inbound(b"hi", "gsm7")
    with pytest.raises(ValueError):
        inbound_payload(_inbound_event(subject_id="in-2"), inbound)
    with pytest.raises(ValueError):
        inbound_payload(_inbound_event(kind=EventKind.STATUS, status=Status.SENT), inbound)
    with pytest.raises(ValueError):
        webhook_event_id(_inbound_event(kind=EventKind.STATUS))  # a status event without one


async def test_a_cancelled_message_is_no_error(world: World) -> None:
    """The customer cancelled it (DELETE /v1/messages/{id}, cancel_sm): final, and
    no failure to report."""
    message = world.new_message(callback_url=HOOK)
    await world.store.accept([message])
    result = await world.store.cancel(message.id, T0 + 5, account_id=message.account_id)
    assert result.message.status is Status.CANCELLED
    (event,) = await claim(world)
    body = (await body_of(world, event))["message"]
    assert (body["status"], body["error"]) == ("cancelled", None)
    assert body["timestamps"] == {"accepted": rfc3339(T0), "cancelled": rfc3339(T0 + 5)}
