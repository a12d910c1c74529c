"""WhatsApp Cloud API: the request bodies herald sends and the answers it reads (pure).

Facts this follows (Meta's public Cloud API reference and its OpenAPI
description, ``facebook/openapi``):

- Send: ``POST /{version}/{phone-number-id}/messages`` with a bearer token
  and a JSON body ``{messaging_product: "whatsapp", recipient_type:
  "individual", to, type, <type>: {...}}``. A 200 answer carries
  ``messages[0].id`` (a ``wamid.`` id); an error answer carries the Graph API
  error object ``{"error": {"message", "type", "code", ...}}``.
- Status webhooks: ``{"object": "whatsapp_business_account", "entry": [{"changes":
  [{"field": "messages", "value": {"statuses": [{"id", "status", "timestamp",
  "recipient_id", "errors"?, "pricing"?}]}}]}]}``, signed with
  ``X-Hub-Signature-256``. They may come twice, out of order, and ``delivered``
  may be skipped when ``read`` implies it.
- Authentication templates (copy-code and one-tap buttons) take the code as
  the body's ``{{1}}`` and as the parameter of the URL button at index 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from herald.channels._codes import WHATSAPP_STATUSES, whatsapp_error
from herald.channels._port import (
    Accepted,
    AuthTemplateContent,
    Content,
    InboundChat,
    MalformedWebhook,
    Pricing,
    ProviderEvent,
    Rejected,
    Submission,
    SubmitResult,
    TemplateContent,
    TextContent,
)
from herald.channels._templates import TemplateState, parse_template_updates

__all__ = [
    "DEFAULT_API_VERSION",
    "MAX_STATUSES_PER_WEBHOOK",
    "MAX_WEBHOOK_BODY",
    "message_body",
    "message_path",
    "parse_inbound",
    "parse_send_answer",
    "parse_status_webhook",
    "parse_template_webhook",
]

#: The Graph API version in the path (the OpenAPI description herald checks against is v23.0).
DEFAULT_API_VERSION: Final = "v23.0"
#: Octets of one webhook body herald reads: Meta batches up to 1,000 updates;
#: a status is ~600 octets with pricing and an error.
MAX_WEBHOOK_BODY: Final = 2 * 1024 * 1024
#: Status updates taken from one webhook body.
MAX_STATUSES_PER_WEBHOOK: Final = 1000


def message_path(version: str, phone_number_id: str) -> str:
    if not phone_number_id.isascii() or not phone_number_id.isdigit():
        raise ValueError("a phone number id is decimal digits")
    return f"/{version}/{phone_number_id}/messages"


def _text_parameters(values: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"type": "text", "text": v} for v in values]


def _content(content: Content) -> tuple[str, dict[str, Any]]:
    match content:
        case TextContent(body=body, preview_url=preview):
            return "text", {"body": body, "preview_url": preview}
        case TemplateContent(name=name, language=language, parameters=params):
            template: dict[str, Any] = {
                "name": name, "language": {"policy": "deterministic", "code": language},
            }
            if params:
                template["components"] = [
                    {"type": "body", "parameters": _text_parameters(params)}]
            return "template", template
        case AuthTemplateContent(name=name, language=language, code=code):
            return "template", {
                "name": name,
                "language": {"policy": "deterministic", "code": language},
                "components": [
                    {"type": "body", "parameters": _text_parameters((code,))},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": _text_parameters((code,))},
                ],
            }
    raise TypeError(f"not a WhatsApp content: {type(content).__name__}")


def message_body(submission: Submission) -> bytes:
    """The JSON body of ``POST /{phone-number-id}/messages`` for ``submission``."""
    kind, payload = _content(submission.content)
    return orjson.dumps({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": submission.to,
        "type": kind,
        kind: payload,
    })


def _error_of(document: object) -> tuple[int | None, str]:
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            return (code if isinstance(code, int) and not isinstance(code, bool) else None,
                    message if isinstance(message, str) else "")
    return None, ""


def parse_send_answer(status: int, body: bytes) -> SubmitResult:
    """What a send's HTTP answer means. A 200 without a message id, or an error
    without a code, is a transient provider error (retrying is safe: the send
    was not taken, or Meta de-duplicates nothing herald relies on)."""
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        document = None
    if status == 200 and isinstance(document, dict):
        messages = document.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
            if isinstance(wamid, str) and wamid:
                return Accepted(wamid)
    code, message = _error_of(document)
    detail = message[:200] if message else f"HTTP {status}"
    return Rejected.of(whatsapp_error(code if code is not None else -1), code, detail)


def _status_event(item: object) -> ProviderEvent | None:
    if not isinstance(item, dict):
        raise MalformedWebhook("a status is not an object")
    wamid, word, stamp = item.get("id"), item.get("status"), item.get("timestamp")
    if not isinstance(wamid, str) or not wamid or not isinstance(word, str):
        raise MalformedWebhook("a status without id or status")
    event = WHATSAPP_STATUSES.get(word)
    if event is None:
        return None  # deleted, warning: nothing about delivery
    try:
        at = float(stamp) if isinstance(stamp, (str, int)) else 0.0
    except ValueError:
        raise MalformedWebhook("a status timestamp is not a number") from None
    error = code = None
    errors = item.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        raw = errors[0].get("code")
        if isinstance(raw, int) and not isinstance(raw, bool):
            code = raw
            error = whatsapp_error(raw)
    pricing = None
    price = item.get("pricing")
    if isinstance(price, dict):
        pricing = Pricing(
            billable=price.get("billable") is True,
            category=str(price.get("category", "")),
            model=str(price.get("pricing_model", "")),
        )
    return ProviderEvent(wamid, event, at, error, code, pricing)


def _values(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    entries = document.get("entry")
    if not isinstance(entries, list):
        raise MalformedWebhook("no entry list")
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise MalformedWebhook("an entry without a changes list")
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                raise MalformedWebhook("a change without a value object")
            found.append(value)
    return found


def _listed(value: Mapping[str, Any], name: str) -> list[object]:
    items = value.get(name, [])
    if not isinstance(items, list):
        raise MalformedWebhook(f"{name} is not a list")
    return items


def _document(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_WEBHOOK_BODY:
        raise MalformedWebhook(f"body longer than {MAX_WEBHOOK_BODY} octets")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedWebhook("body is not JSON") from None
    if not isinstance(document, dict) or document.get("object") != "whatsapp_business_account":
        raise MalformedWebhook("not a whatsapp_business_account webhook")
    return document


def parse_status_webhook(body: bytes) -> list[ProviderEvent]:
    """The delivery events of a (verified) webhook body; inbound messages and
    other fields are not read here. Raises :class:`MalformedWebhook`."""
    statuses = [s for value in _values(_document(body)) for s in _listed(value, "statuses")]
    if len(statuses) > MAX_STATUSES_PER_WEBHOOK:
        raise MalformedWebhook(f"more than {MAX_STATUSES_PER_WEBHOOK} statuses")
    return [e for e in (_status_event(item) for item in statuses) if e is not None]


def _inbound(phone_number_id: str, item: object) -> InboundChat:
    if not isinstance(item, dict):
        raise MalformedWebhook("a message is not an object")
    wamid, user, kind = item.get("id"), item.get("from"), item.get("type")
    if not all(isinstance(v, str) and v for v in (wamid, user, kind)):
        raise MalformedWebhook("a message without id, from or type")
    try:
        at = float(item.get("timestamp", ""))
    except (TypeError, ValueError):
        raise MalformedWebhook("a message timestamp is not a number") from None
    text = None
    if kind == "text":  # only text is read: a location (or any other payload) never is
        inner = item.get("text")
        body = inner.get("body") if isinstance(inner, dict) else None
        text = body if isinstance(body, str) else None
    return InboundChat(str(wamid), phone_number_id, str(user), at, str(kind), text)


def parse_template_webhook(body: bytes) -> list[TemplateState]:
    """The template review outcomes in a (verified) webhook body."""
    return parse_template_updates(_document(body))


def parse_inbound(body: bytes) -> list[InboundChat]:
    """The users' messages in a (verified) webhook body (``value.messages``): each
    opens the customer-service window of its user and sending number."""
    found: list[InboundChat] = []
    for value in _values(_document(body)):
        metadata = value.get("metadata")
        number_id = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
        messages = _listed(value, "messages")
        if messages and not isinstance(number_id, str):
            raise MalformedWebhook("messages without metadata.phone_number_id")
        found.extend(_inbound(str(number_id), item) for item in messages)
        if len(found) > MAX_STATUSES_PER_WEBHOOK:
            raise MalformedWebhook(f"more than {MAX_STATUSES_PER_WEBHOOK} messages")
    return found
