"""Channel chains at work (docs/channels.md): the service that sends chat legs,
reads provider webhooks, fires fallback timers and follows SMS legs.

The rules are :mod:`herald.channels`' (pure); this package does the I/O.
"""

from herald.chat._fraud import SmsScreen, fraud_screen
from herald.chat._service import ChatService, ChatSettings, content_json, content_of, inbound_id

__all__ = ["ChatService", "ChatSettings", "SmsScreen", "content_json", "content_of",
           "fraud_screen", "inbound_id"]
