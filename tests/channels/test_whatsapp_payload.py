"""What herald sends to the Cloud API and what it reads back (pure)."""

from __future__ import annotations

import orjson
import pytest

from herald.channels import (
    Accepted,
    AuthTemplateContent,
    ChannelErrorCode,
    LegEvent,
    MalformedWebhook,
    Rejected,
    Submission,
    TemplateContent,
    TextContent,
)
from herald.channels._whatsapp import (
    message_body,
    message_path,
    parse_send_answer,
    parse_status_webhook,
)


def _sub(content: TextContent | TemplateContent | AuthTemplateContent) -> Submission:
    return Submission("leg1", "1065550001", "447700900123", content)


def test_a_text_body_names_the_product_recipient_and_type() -> None:
    body = orjson.loads(message_body(_sub(TextContent("hi"))))
    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual",
                    "to": "447700900123", "type": "text",
                    "text": {"body": "hi", "preview_url": False}}


def test_an_authentication_template_carries_the_code_in_body_and_button() -> None:
    body = orjson.loads(message_body(_sub(AuthTemplateContent("otp", "en_US", "493817"))))
    components = body["template"]["components"]
    assert [c["type"] for c in components] == ["body", "button"]
    assert components[1]["sub_type"] == "url" and components[1]["index"] == "0"
    assert {c["parameters"][0]["text"] for c in components} == {"493817"}


def test_the_path_takes_only_a_numeric_phone_number_id() -> None:
    assert message_path("v23.0", "1065550001") == "/v23.0/1065550001/messages"
    with pytest.raises(ValueError):
        message_path("v23.0", "../admin")


def test_answers_map_to_accepted_or_rejected_with_herald_codes() -> None:
    ok = b'{"messaging_product":"whatsapp","messages":[{"id":"wamid.X1"}]}'
    assert parse_send_answer(200, ok) == Accepted("wamid.X1")
    closed = b'{"error":{"message":"Re-engagement message","type":"OAuthException","code":131047}}'
    rejected = parse_send_answer(400, closed)
    assert isinstance(rejected, Rejected) and rejected.permanent
    assert rejected.code is ChannelErrorCode.WINDOW_CLOSED and rejected.provider_code == 131047
    garbage = parse_send_answer(502, b"<html>")
    assert isinstance(garbage, Rejected) and not garbage.permanent


def _webhook(*statuses: dict[str, object]) -> bytes:
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "statuses": list(statuses)}}]}]})


def test_status_webhooks_become_events_with_errors_and_pricing() -> None:
    events = parse_status_webhook(_webhook(
        {"id": "wamid.A", "status": "delivered", "timestamp": "1700000000",
         "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility"}},
        {"id": "wamid.B", "status": "failed", "timestamp": "1700000001",
         "errors": [{"code": 131026, "title": "Message undeliverable"}]},
        {"id": "wamid.C", "status": "deleted", "timestamp": "1700000002"},
    ))
    assert [(e.provider_id, e.event) for e in events] == [
        ("wamid.A", LegEvent.DELIVERED), ("wamid.B", LegEvent.FAILED)]
    assert events[0].pricing is not None and events[0].pricing.category == "utility"
    assert events[1].error is not None and events[1].error.code is ChannelErrorCode.NOT_ON_CHANNEL


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"object":"page","entry":[]}',
                                  b'{"object":"whatsapp_business_account"}',
                                  b'{"object":"whatsapp_business_account","entry":[{"changes":5}]}'])
def test_unreadable_webhooks_are_refused_by_name(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        parse_status_webhook(body)
