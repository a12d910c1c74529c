"""What both stores keep of a chain's legs in text columns, and their argument checks (private).

An SMS leg's message is prepared at intake and kept as JSON until the leg
starts (then it is stored in ``messages`` like any other); its charge, if
the account is billed, likewise. One encoding for both stores, so a leg
written by one reads the same in the other.
"""

from __future__ import annotations

import base64
import json
from dataclasses import fields
from typing import Final

from herald.store._billing import Charge
from herald.store._errors import InvalidRecord
from herald.store._model import NewMessage, Priority, Source, StatusEvents

__all__ = [
    "MAX_CHAT_ADDRESS_LENGTH",
    "charge_json",
    "charge_of",
    "check_addresses",
    "message_json",
    "message_of",
]

#: Characters of a channel name, a sender (a phone number id, a sender name) or a
#: user (a phone number, a WhatsApp id).
MAX_CHAT_ADDRESS_LENGTH: Final = 64


def check_addresses(**values: str) -> None:
    """Raises :class:`InvalidRecord` naming the first empty or too long value."""
    for name, value in values.items():
        if not value or len(value) > MAX_CHAT_ADDRESS_LENGTH:
            raise InvalidRecord(name, f"must be 1..{MAX_CHAT_ADDRESS_LENGTH} characters")


def message_json(m: NewMessage) -> str:
    values = {f.name: getattr(m, f.name) for f in fields(m)}
    values["body"] = base64.b64encode(m.body).decode()
    values["source"] = int(m.source)
    values["priority"] = int(m.priority)
    values["callback_events"] = None if m.callback_events is None else int(m.callback_events)
    return json.dumps(values, separators=(",", ":"))


def message_of(text: str) -> NewMessage:
    values = json.loads(text)
    values["body"] = base64.b64decode(values["body"])
    values["source"] = Source(values["source"])
    values["priority"] = Priority(values["priority"])
    if values["callback_events"] is not None:
        values["callback_events"] = StatusEvents(values["callback_events"])
    return NewMessage(**values)


def charge_json(c: Charge | None) -> str | None:
    if c is None:
        return None
    return json.dumps([c.country, c.network, c.price_key, c.amount])


def charge_of(text: str | None) -> Charge | None:
    if text is None:
        return None
    country, network, key, amount = json.loads(text)
    return Charge(country, network, key, amount)
