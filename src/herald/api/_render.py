"""Messages as the API shows them (the JSON of :class:`~herald.api._models.MessageView`).

Times are RFC 3339 in UTC with milliseconds (``2027-01-15T08:00:00.123Z``).
A destination is shown in E.164 form with its ``+``; the store keeps digits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from herald.rating import Rating
from herald.store import Message, MessageRoute, NewMessage, OutboxEvent, Status, StatusEvents
from herald.timefmt import rfc3339

__all__ = ["accepted_view", "message_view", "price_view", "rfc3339", "route_view"]


def _maybe(seconds: float | None) -> str | None:
    return None if seconds is None else rfc3339(seconds)


def message_view(m: Message) -> dict[str, Any]:
    """A stored message, with one timestamp per status it reached."""
    stamps = {"accepted": rfc3339(m.accepted_at)}
    if m.queued_at is not None:
        stamps["queued"] = rfc3339(m.queued_at)
    if m.sent_at is not None:
        stamps["sent"] = rfc3339(m.sent_at)
    if m.status.final and m.done_at is not None:
        stamps[m.status.label] = rfc3339(m.done_at)
    error = None
    if m.status.final and m.status not in (Status.DELIVERED, Status.CANCELLED):
        error = {"code": m.error_code, "permanent": m.error_permanent}
    return {
        "id": m.id,
        "status": m.status.label,
        "test": m.test,
        "to": "+" + m.to,
        "from": m.sender,
        "encoding": m.encoding,
        "segments": m.segments,
        "reference": m.reference,
        "metadata": None if m.metadata is None else json.loads(m.metadata),
        "callback_url": m.callback_url,
        "callback_events": events_view(m.callback_events),
        "priority": m.priority.label,
        "tag": m.tag,
        "send_at": _maybe(m.send_at),
        "expires_at": rfc3339(m.expires_at),
        "timestamps": stamps,
        "error": error,
    }


def route_view(route: MessageRoute | None) -> dict[str, str | None]:
    """How the message went: the connector that carried it (``null`` until one
    accepted it) and the routing rule that chose it (``null``: the prefix
    routes of herald.toml, or not routed yet)."""
    if route is None:
        return {"connector": None, "rule": None}
    return {"connector": route.connector, "rule": route.rule}


def deliveries_view(events: Sequence[OutboxEvent]) -> list[dict[str, Any]]:
    """A message's webhook deliveries that failed: being retried, or given up."""
    return [{
        "event": "unknown" if e.status is None else e.status.label,
        "url": e.url,
        "state": "failed" if e.next_attempt_at is None else "retrying",
        "attempts": e.attempts,
        "next_attempt_at": _maybe(e.next_attempt_at),
        "error": e.last_error,
    } for e in events]  # fmt: skip


def events_view(events: StatusEvents | None) -> str | list[str] | None:
    """A message's event choice as it was given: a word, or a list of statuses."""
    if events is None:
        return None
    word = events.describe()
    return word if word in ("all", "final", "none") else [s.label for s in events.statuses]


def price_view(rating: Rating) -> dict[str, Any]:
    """What a message costs (docs/billing.md): decimal strings, never floats."""
    return {
        "amount": f"{rating.amount:f}",
        "per_segment": f"{rating.per_segment:f}",
        "segments": rating.segments,
        "priced_by": str(rating.key),
    }


def accepted_view(m: NewMessage, metadata: object, *, test: bool) -> dict[str, Any]:
    """The answer to a message just accepted (or, with ``test``, just validated).

    ``metadata`` is the customer's object as sent (no need to parse it back).
    A test answer has no id, status ``validated`` and no timestamps.
    """
    return {
        "id": None if test else m.id,
        "status": "validated" if test else "accepted",
        "test": test,
        "to": "+" + m.to,
        "from": m.sender,
        "encoding": m.encoding,
        "segments": m.segments,
        "reference": m.reference,
        "metadata": metadata,
        "callback_url": m.callback_url,
        "callback_events": events_view(m.callback_events),
        "priority": m.priority.label,
        "tag": m.tag,
        "send_at": _maybe(m.send_at),
        "expires_at": rfc3339(m.expires_at),
        "timestamps": {} if test else {"accepted": rfc3339(m.accepted_at)},
        "error": None,
    }
