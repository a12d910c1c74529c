"""Local fakes of chat providers (WhatsApp Cloud API, a Viber provider) for
tests and the demo: an extension of ``herald sim``. Loopback only.

- :class:`FakeWhatsApp`: validates every send against the Cloud API's send
  schema (``_schema``), answers with ``wamid.`` ids, sends signed status
  webhooks, and misbehaves on command.
- :class:`FakeViber`: a generic Viber provider with TTL expiry callbacks.
- :func:`serve_app`: serve either on a local port.
"""

from herald.sim.chat._schema import SEND_SCHEMAS, SchemaViolation, check_send_request
from herald.sim.chat._serve import serve_app
from herald.sim.chat.viber import FakeViber
from herald.sim.chat.whatsapp import TRUTHS, Chaos, FakeWhatsApp, FakeWhatsAppConfig

__all__ = [
    "SEND_SCHEMAS",
    "TRUTHS",
    "Chaos",
    "FakeViber",
    "FakeWhatsApp",
    "FakeWhatsAppConfig",
    "SchemaViolation",
    "check_send_request",
    "serve_app",
]
