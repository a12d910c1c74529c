"""Chat channels (WhatsApp Cloud API, a generic Viber provider) beside SMPP.

- :mod:`._port`: the channel port (``Submission`` in, ``Accepted | Rejected``
  out; provider webhooks in, ``ProviderEvent`` out).
- :mod:`._legs`: a leg's states; one forward-only transition table.
- :mod:`._codes`: provider statuses and error codes -> herald's words.
- :mod:`._signature`: provider webhook signatures (``X-Hub-Signature-256``, a
  configurable HMAC header for Viber providers).
- :mod:`._whatsapp`, :mod:`._viber`: request bodies and answers (pure).
- :mod:`._chain`: fallback chains over legs (which leg starts when; timers fire once).
- :mod:`._steps`: a stored chain's next step (the chain rules over the store's rows).
- :mod:`._templates`: WhatsApp message templates (review requests and outcomes).
- :mod:`._view`: a chain as the API shows it and its webhook tells it.
- :mod:`._window`: the 24-hour customer-service window (free-form text refused outside it).
- :mod:`._pace`: pacing per sending number with back-off (pure, time as an argument).
- :mod:`.clients`: the adapters that do the HTTP (the only I/O here).

docs/channels.md is the user's page. The ``_``-modules are private; import from here.
"""

from herald.channels._codes import (
    VIBER_DEFAULT_ERRORS,
    VIBER_DEFAULT_STATUSES,
    WHATSAPP_ERRORS,
    WHATSAPP_STATUSES,
    WHATSAPP_THROTTLED,
    WHATSAPP_WINDOW_CLOSED,
    ChannelErrorCode,
    ErrorClass,
    ErrorMeaning,
    whatsapp_error,
)
from herald.channels._legs import (
    FINAL_LEG_STATES,
    RANK,
    STATUS_OF_LEG,
    TRANSITIONS,
    LegEvent,
    LegState,
    advance,
)
from herald.channels._port import (
    Accepted,
    AuthTemplateContent,
    ChannelAdapter,
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
from herald.channels._signature import (
    VIBER_DEFAULT_SCHEME,
    WHATSAPP_SCHEME,
    HmacScheme,
    ProviderSignatureError,
    header_value,
)
from herald.channels._steps import (
    RESUMED,
    ChatPrices,
    LegInput,
    after_cancel,
    after_sms_status,
    after_status,
    after_submit,
    after_timer,
    blocked_start,
    state_of,
    unpaid_start,
)
from herald.channels._templates import TEMPLATE_CATEGORIES, TemplateSpec, TemplateState
from herald.channels._viber import ViberSettings
from herald.channels._view import CHAIN_EVENT_TYPE, chain_payload, chain_view
from herald.channels._window import CUSTOMER_SERVICE_WINDOW, refuse_outside_window, window_open

__all__ = [
    "CHAIN_EVENT_TYPE",
    "CUSTOMER_SERVICE_WINDOW",
    "FINAL_LEG_STATES",
    "RANK",
    "RESUMED",
    "STATUS_OF_LEG",
    "TEMPLATE_CATEGORIES",
    "TRANSITIONS",
    "VIBER_DEFAULT_ERRORS",
    "VIBER_DEFAULT_SCHEME",
    "VIBER_DEFAULT_STATUSES",
    "WHATSAPP_ERRORS",
    "WHATSAPP_SCHEME",
    "WHATSAPP_STATUSES",
    "WHATSAPP_THROTTLED",
    "WHATSAPP_WINDOW_CLOSED",
    "Accepted",
    "AuthTemplateContent",
    "ChannelAdapter",
    "ChannelErrorCode",
    "ChatPrices",
    "Content",
    "ErrorClass",
    "ErrorMeaning",
    "HmacScheme",
    "InboundChat",
    "LegEvent",
    "LegInput",
    "LegState",
    "MalformedWebhook",
    "Pricing",
    "ProviderEvent",
    "ProviderSignatureError",
    "Rejected",
    "Submission",
    "SubmitResult",
    "TemplateContent",
    "TemplateSpec",
    "TemplateState",
    "TextContent",
    "ViberSettings",
    "advance",
    "after_cancel",
    "after_sms_status",
    "after_status",
    "after_submit",
    "after_timer",
    "blocked_start",
    "chain_payload",
    "chain_view",
    "header_value",
    "refuse_outside_window",
    "state_of",
    "unpaid_start",
    "whatsapp_error",
    "window_open",
]
