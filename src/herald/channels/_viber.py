"""A generic Viber business-messaging provider: what herald sends and reads (pure).

Viber's Business Messages are sold only through partners, each with its own
HTTP API, so this adapter is a shape with the provider's specifics configured
into :class:`ViberSettings`:

- Send: ``POST <base_url><send_path>`` with ``Authorization: Bearer <token>``
  and ``{"sender", "to", "text", "ttl", "reference"}``; a 2xx answer carries
  the provider's id under ``id_field``, an error answer a code under
  ``error_field`` (a word or a number, mapped by ``errors``).
- Callbacks: a JSON object, or a list of them, each with the provider id
  (``callback_id_field``), a status word (``callback_status_field``, mapped by
  ``statuses``: ``expired`` is the provider's TTL running out), an optional
  error word and a Unix time; signed by ``scheme`` with the provider's secret.
- A user's message comes the same way: a callback whose status word is
  ``inbound_word`` (``message``), with the user's number (``inbound_user_field``),
  the sender name it was sent to (``inbound_sender_field``) and, for a text,
  the text (``inbound_text_field``); nothing else of it is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from herald.channels._codes import (
    VIBER_DEFAULT_ERRORS,
    VIBER_DEFAULT_STATUSES,
    ChannelErrorCode,
    ErrorClass,
    ErrorMeaning,
)
from herald.channels._legs import LegEvent
from herald.channels._port import (
    Accepted,
    AuthTemplateContent,
    InboundChat,
    MalformedWebhook,
    ProviderEvent,
    Rejected,
    Submission,
    SubmitResult,
    TemplateContent,
    TextContent,
)
from herald.channels._signature import VIBER_DEFAULT_SCHEME, HmacScheme

__all__ = ["MAX_CALLBACKS_PER_BODY", "ViberSettings", "parse_callbacks", "parse_send_answer",
           "parse_viber_inbound", "send_body"]

#: Callbacks read from one body; octets of one body.
MAX_CALLBACKS_PER_BODY: Final = 1000
MAX_CALLBACK_BODY: Final = 1024 * 1024
_UNKNOWN: Final = ErrorMeaning(ChannelErrorCode.PROVIDER_ERROR, ErrorClass.TRANSIENT)
_TTL_EXPIRED: Final = ErrorMeaning(ChannelErrorCode.TTL_EXPIRED, ErrorClass.PERMANENT)


@dataclass(frozen=True, slots=True)
class ViberSettings:
    """One provider's specifics (herald.example.toml ``[channels.viber]``)."""

    base_url: str
    token: str = field(repr=False)
    secret: str = field(repr=False)
    send_path: str = "/messages"
    id_field: str = "message_id"
    error_field: str = "error"
    callback_id_field: str = "message_id"
    callback_status_field: str = "status"
    callback_error_field: str = "error"
    callback_time_field: str = "timestamp"
    scheme: HmacScheme = VIBER_DEFAULT_SCHEME
    statuses: Mapping[str, LegEvent] = field(default_factory=lambda: dict(VIBER_DEFAULT_STATUSES))
    errors: Mapping[str, ErrorMeaning] = field(default_factory=lambda: dict(VIBER_DEFAULT_ERRORS))
    #: Seconds the provider keeps trying when a leg sets none (Viber allows 30 s..14 days).
    default_ttl: int = 86400
    #: A user's message: its callback's status word and fields (see the module docstring).
    inbound_word: str = "message"
    inbound_user_field: str = "from"
    inbound_sender_field: str = "to"
    inbound_text_field: str = "text"

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        if not self.send_path.startswith("/"):
            raise ValueError("send_path must start with '/'")
        if not self.token or not self.secret:
            raise ValueError("a Viber provider needs a token and a webhook secret")
        # Status words are matched case-insensitively (providers differ: DELIVERED, delivered).
        object.__setattr__(self, "statuses", {k.lower(): v for k, v in self.statuses.items()})

    def meaning(self, word: object) -> ErrorMeaning:
        return self.errors.get(str(word), _UNKNOWN)


def send_body(settings: ViberSettings, submission: Submission) -> bytes:
    """The JSON body of a send. Viber has no templates: a template leg sends its
    rendered text elsewhere; here only text and one-time codes are taken."""
    match submission.content:
        case TextContent(body=text):
            pass
        case AuthTemplateContent(code=code):
            text = code
        case TemplateContent():
            raise ValueError("a Viber leg takes text, not a WhatsApp template")
    return orjson.dumps({
        "sender": submission.sender,
        "to": submission.to,
        "text": text,
        "ttl": submission.ttl or settings.default_ttl,
        "reference": submission.leg_id,
    })


def parse_send_answer(settings: ViberSettings, status: int, body: bytes) -> SubmitResult:
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        provider_id = document.get(settings.id_field)
        if 200 <= status < 300 and isinstance(provider_id, (str, int)) and str(provider_id):
            return Accepted(str(provider_id))
        word = document.get(settings.error_field)
        if isinstance(word, dict):  # {"error": {"code": ..., "message": ...}}
            word = word.get("code")
        if word is not None:
            return Rejected.of(settings.meaning(word), str(word), f"HTTP {status}")
    if status == 429:
        return Rejected.of(settings.meaning("throttled"), None, "HTTP 429")
    return Rejected.of(_UNKNOWN, None, f"HTTP {status}")


def _id_and_word(settings: ViberSettings, item: object) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(item, dict):
        raise MalformedWebhook("a callback is not an object")
    provider_id = item.get(settings.callback_id_field)
    word = item.get(settings.callback_status_field)
    if not isinstance(provider_id, (str, int)) or not str(provider_id) or not isinstance(word, str):
        raise MalformedWebhook("a callback without id or status")
    return str(provider_id), word.lower(), item


def _time(settings: ViberSettings, item: dict[str, Any]) -> float:
    try:
        return float(item.get(settings.callback_time_field, 0))
    except (TypeError, ValueError):
        raise MalformedWebhook("a callback time is not a number") from None


def _callback(settings: ViberSettings, item: object) -> ProviderEvent | None:
    provider_id, word, item = _id_and_word(settings, item)
    event = settings.statuses.get(word)
    if event is None:
        return None
    at = _time(settings, item)
    raw = item.get(settings.callback_error_field)
    error = settings.meaning(raw) if raw is not None else None
    if event is LegEvent.EXPIRED and error is None:
        error = _TTL_EXPIRED
    return ProviderEvent(provider_id, event, at, error, None if raw is None else str(raw))


def _inbound(settings: ViberSettings, item: object) -> InboundChat | None:
    provider_id, word, item = _id_and_word(settings, item)
    if word != settings.inbound_word.lower():
        return None
    user, sender = item.get(settings.inbound_user_field), item.get(settings.inbound_sender_field)
    if not (isinstance(user, str) and user and isinstance(sender, str) and sender):
        raise MalformedWebhook("a user's message without its user or sender")
    text = item.get(settings.inbound_text_field)
    return InboundChat(provider_id, sender, user, _time(settings, item),
                       "text" if isinstance(text, str) and text else "other",
                       text if isinstance(text, str) and text else None)


def parse_callbacks(settings: ViberSettings, body: bytes) -> list[ProviderEvent]:
    """The events of a (verified) callback body. Raises :class:`MalformedWebhook`."""
    return [e for e in (_callback(settings, item) for item in _items(body)) if e is not None]


def parse_viber_inbound(settings: ViberSettings, body: bytes) -> list[InboundChat]:
    """The users' messages of a (verified) callback body. Raises :class:`MalformedWebhook`."""
    return [m for m in (_inbound(settings, item) for item in _items(body)) if m is not None]


def _items(body: bytes) -> list[Any]:
    if len(body) > MAX_CALLBACK_BODY:
        raise MalformedWebhook(f"body longer than {MAX_CALLBACK_BODY} octets")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedWebhook("body is not JSON") from None
    items = document if isinstance(document, list) else [document]
    if len(items) > MAX_CALLBACKS_PER_BODY:
        raise MalformedWebhook(f"more than {MAX_CALLBACKS_PER_BODY} callbacks")
    return items
