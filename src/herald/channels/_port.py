"""The channel port: what herald hands a chat channel, and what comes back (pure values).

A channel adapter does two things, beside the SMPP connector:

- ``submit(Submission) -> Accepted | Rejected``: one request to the provider.
  ``Accepted`` carries the provider's id (the key its status webhooks use);
  ``Rejected`` carries herald's :class:`ChannelErrorCode`, its class and the
  provider's own code. An adapter retries throttling itself (pacing and
  back-off are its business); what it returns is the answer to act on.
- ``events(body, headers) -> [ProviderEvent]``: a provider webhook, verified
  first (:class:`ProviderSignatureError`, nothing parsed) and then read
  (:class:`MalformedWebhook`). Each event names the provider id, the leg
  event it means (``herald.channels.LegEvent``) and, for a failure, the error.

Recipients are E.164 digits without ``+`` (as herald stores ``to``). WhatsApp
ids and profile names are treated like phone numbers: never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from herald.channels._codes import ChannelErrorCode, ErrorClass, ErrorMeaning
from herald.channels._legs import LegEvent

__all__ = [
    "MAX_TEMPLATE_PARAMETERS",
    "MAX_TEXT_LENGTH",
    "Accepted",
    "AuthTemplateContent",
    "ChannelAdapter",
    "Content",
    "InboundChat",
    "MalformedWebhook",
    "Pricing",
    "ProviderEvent",
    "Rejected",
    "Submission",
    "SubmitResult",
    "TemplateContent",
    "TextContent",
]

#: Characters of a WhatsApp text body (Cloud API limit: 4096).
MAX_TEXT_LENGTH: Final = 4096
#: Parameters of one template body: real templates use a handful.
MAX_TEMPLATE_PARAMETERS: Final = 100
#: Characters of a one-time code in an authentication template (Meta: at most 15).
MAX_CODE_LENGTH: Final = 15


class MalformedWebhook(ValueError):
    """A signed provider webhook whose body herald cannot read: answer 400."""


@dataclass(frozen=True, slots=True)
class TextContent:
    """Free-form text: WhatsApp takes it only inside the 24-hour window."""

    body: str
    preview_url: bool = False

    def __post_init__(self) -> None:
        if not self.body or len(self.body) > MAX_TEXT_LENGTH:
            raise ValueError(f"text must be 1..{MAX_TEXT_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """An approved template by name and language, with its body's ``{{n}}`` values."""

    name: str
    language: str
    parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or not self.language:
            raise ValueError("a template needs a name and a language")
        if len(self.parameters) > MAX_TEMPLATE_PARAMETERS:
            raise ValueError(f"at most {MAX_TEMPLATE_PARAMETERS} template parameters")


@dataclass(frozen=True, slots=True)
class AuthTemplateContent:
    """An authentication template carrying a one-time code (copy-code or one-tap
    button: both take the code as the body's and the button's parameter)."""

    name: str
    language: str
    code: str

    def __post_init__(self) -> None:
        if not self.name or not self.language:
            raise ValueError("a template needs a name and a language")
        if not 1 <= len(self.code) <= MAX_CODE_LENGTH:
            raise ValueError(f"a one-time code has 1..{MAX_CODE_LENGTH} characters")


Content = TextContent | TemplateContent | AuthTemplateContent


@dataclass(frozen=True, slots=True)
class Submission:
    """One leg to send. ``sender`` is the channel's sending identity (WhatsApp:
    the phone number id; Viber: the provider's sender name); ``ttl`` seconds
    the provider may keep trying (None: its default)."""

    leg_id: str
    sender: str
    to: str
    content: Content
    ttl: int | None = None

    def __post_init__(self) -> None:
        if not (self.to.isascii() and self.to.isdigit() and 1 <= len(self.to) <= 15):
            raise ValueError("to must be E.164 digits without '+'")
        if not self.sender:
            raise ValueError("sender must not be empty")
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError("ttl must be a positive number of seconds")


@dataclass(frozen=True, slots=True)
class Accepted:
    provider_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The provider did not take the leg. ``permanent``: no retry will change it
    (a chain falls back at once); else herald's retries are spent."""

    code: ChannelErrorCode
    klass: ErrorClass
    provider_code: int | str | None
    detail: str

    @classmethod
    def of(cls, meaning: ErrorMeaning, provider_code: int | str | None, detail: str) -> Rejected:
        return cls(meaning.code, meaning.klass, provider_code, detail)

    @property
    def permanent(self) -> bool:
        return self.klass is ErrorClass.PERMANENT


SubmitResult = Accepted | Rejected


@dataclass(frozen=True, slots=True)
class Pricing:
    """What a status webhook says bills the message (WhatsApp: per delivered
    template message, by category, since July 2025)."""

    billable: bool
    category: str
    model: str


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    provider_id: str
    event: LegEvent
    at: float
    error: ErrorMeaning | None = None
    provider_code: int | str | None = None
    pricing: Pricing | None = None


@dataclass(frozen=True, slots=True)
class InboundChat:
    """A message a user sent to one of the business's senders. ``kind`` is the
    provider's message type; ``text`` is read for text messages only (a location
    or any other payload is never read: herald carries no location). ``sender``
    is the business side (WhatsApp: the phone number id), ``user`` the user's
    number (a WhatsApp id is treated like a phone number: never logged)."""

    provider_id: str
    sender: str
    user: str = field(repr=False)
    at: float
    kind: str
    text: str | None = field(default=None, repr=False)


class ChannelAdapter(Protocol):
    """A chat channel (see the module docstring)."""

    name: str

    async def submit(self, submission: Submission) -> SubmitResult: ...

    def events(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderEvent]: ...
