"""A Viber provider's specifics are configured, not coded (pure)."""

from __future__ import annotations

import orjson
import pytest

from herald.channels import (
    Accepted,
    ChannelErrorCode,
    ErrorClass,
    ErrorMeaning,
    LegEvent,
    MalformedWebhook,
    Rejected,
    Submission,
    TemplateContent,
    TextContent,
    ViberSettings,
)
from herald.channels._viber import parse_callbacks, parse_send_answer, send_body

BASE = ViberSettings(base_url="https://viber.example", token="t", secret="s")


def test_a_providers_own_field_names_and_words_are_read() -> None:
    settings = ViberSettings(
        base_url="https://viber.example", token="t", secret="s", callback_id_field="msgId",
        callback_status_field="state",
        statuses={"DLV": LegEvent.DELIVERED, "EXP": LegEvent.EXPIRED},
        errors={"E17": ErrorMeaning(ChannelErrorCode.NOT_ON_CHANNEL, ErrorClass.PERMANENT)})
    events = parse_callbacks(settings, orjson.dumps([
        {"msgId": 7, "state": "dlv", "timestamp": 1}, {"msgId": 8, "state": "EXP"},
        {"msgId": 9, "state": "unknown-word"}]))
    assert [(e.provider_id, e.event) for e in events] == [("7", LegEvent.DELIVERED),
                                                          ("8", LegEvent.EXPIRED)]
    assert events[1].error is not None and events[1].error.code is ChannelErrorCode.TTL_EXPIRED
    rejected = parse_send_answer(settings, 400, b'{"error": {"code": "E17"}}')
    assert isinstance(rejected, Rejected) and rejected.code is ChannelErrorCode.NOT_ON_CHANNEL


def test_send_body_and_answers() -> None:
    body = orjson.loads(send_body(BASE, Submission("leg1", "Shop", "380501234567",
                                                   TextContent("hi"))))
    assert body == {"sender": "Shop", "to": "380501234567", "text": "hi", "ttl": 86400,
                    "reference": "leg1"}
    assert parse_send_answer(BASE, 200, b'{"message_id": "m1"}') == Accepted("m1")
    throttled = parse_send_answer(BASE, 429, b"")
    assert isinstance(throttled, Rejected) and throttled.klass is ErrorClass.THROTTLED
    with pytest.raises(ValueError, match="template"):
        send_body(BASE, Submission("l", "Shop", "1", TemplateContent("t", "en")))


@pytest.mark.parametrize("body", [b"nope", b'{"message_id": "1"}', b"[1]"])
def test_unreadable_callbacks_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedWebhook):
        parse_callbacks(BASE, body)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="base_url"):
        ViberSettings(base_url="ftp://x", token="t", secret="s")
    with pytest.raises(ValueError, match="secret"):
        ViberSettings(base_url="https://x", token="t", secret="")
