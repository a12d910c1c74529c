"""The WhatsApp customer-service window: when free-form text may be sent (pure).

WhatsApp takes free-form messages to a user only within 24 hours of the
user's last message to the business; outside it only approved templates go
(error 131047 otherwise). herald refuses free-form text outside an open window
*before* any provider call: the customer gets a clear error at once, and no
request is spent on a certain refusal. Templates (and authentication
templates) need no window.

The window's start is the time of the recipient's last inbound message to the
sending number (``parse_inbound``); the caller keeps it and passes it in.
"""

from __future__ import annotations

from typing import Final

from herald.channels._codes import ChannelErrorCode, ErrorClass
from herald.channels._port import Content, Rejected, TextContent

__all__ = ["CUSTOMER_SERVICE_WINDOW", "refuse_outside_window", "window_open"]

#: Seconds a user's message keeps the window open (WhatsApp: 24 hours).
CUSTOMER_SERVICE_WINDOW: Final = 24 * 3600.0


def window_open(last_inbound_at: float | None, now: float) -> bool:
    """Whether a window opened by a message at ``last_inbound_at`` is open at ``now``."""
    return last_inbound_at is not None and 0 <= now - last_inbound_at < CUSTOMER_SERVICE_WINDOW


def refuse_outside_window(content: Content, last_inbound_at: float | None,
                          now: float) -> Rejected | None:
    """The refusal of free-form ``content`` outside an open window, or None when
    it may go (a template, or text inside the window)."""
    if not isinstance(content, TextContent) or window_open(last_inbound_at, now):
        return None
    detail = ("free-form text needs an open 24-hour window (the recipient has not written"
              + (" in the last 24 hours" if last_inbound_at is not None else " to this sender")
              + "); send an approved template instead")
    return Rejected(ChannelErrorCode.WINDOW_CLOSED, ErrorClass.PERMANENT, None, detail)
