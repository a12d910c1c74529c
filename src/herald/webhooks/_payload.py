"""What a webhook says: the JSON bodies of status and inbound events (pure).

A body is built from the outbox event and the record it names, read back from
the store when the event is sent. It carries only what the customer gave
(numbers, reference, metadata, an inbound message's text) or what herald
decided (status, times, error code, the connector that carried the message
and the routing rule that chose it): never an upstream message id, or
anything the network knows about the phone — no
IMSI, serving node, cell or location exists in the store to begin with, and
this module is the one place a body is assembled (ARCHITECTURE.md, the red
line).

Stable across retries: the body of an event is the same bytes on every
attempt. A status event reports the status *it* recorded and the times up
to that status, not whatever the message has reached since (a ``sent``
event retried after the message was delivered still says ``sent``), and its
id is derived from what it reports (see :func:`webhook_event_id`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Final

import orjson

from herald.store import (
    MICROS,
    EventKind,
    FraudDecision,
    InboundMessage,
    Message,
    MessageRoute,
    OutboxEvent,
    Status,
)
from herald.text import DecodeError, Encoding, decode
from herald.timefmt import rfc3339

__all__ = [
    "BLOCKED_EVENT_TYPES",
    "INBOUND_EVENT_TYPE",
    "STATUS_EVENT_TYPE",
    "batch_body",
    "decision_view",
    "fraud_payload",
    "inbound_payload",
    "rfc3339",
    "status_payload",
    "webhook_event_id",
]

STATUS_EVENT_TYPE: Final = "message.status"
INBOUND_EVENT_TYPE: Final = "message.inbound"
#: A block of the pumping defence (docs/fraud.md, "Live"): of a verification's
#: SMS, or of an OTP message.
BLOCKED_EVENT_TYPES: Final = ("verification.blocked", "message.blocked")


def webhook_event_id(event: OutboxEvent) -> str:
    """The event's public id, sent as ``event_id`` and ``Herald-Event-Id``.

    Derived from what the event reports, not from the outbox row number: a
    message reaches each status at most once (statuses only grow), so
    ``(message id, status)`` names a status event and the inbound id names an
    inbound event. The id is therefore the same on every retry, after a
    restart, and even after a database restore that reuses row numbers, so a
    receiver can de-duplicate on it for good.
    """
    if event.kind is EventKind.INBOUND:
        return f"evt_{event.subject_id}_inbound"
    if event.kind is EventKind.FRAUD:  # one event per decision
        return f"evt_{event.subject_id}_blocked"
    if event.status is None:
        raise ValueError(f"status event {event.id} carries no status")
    return f"evt_{event.subject_id}_{event.status.label}"


def _dumps(payload: dict[str, Any]) -> bytes:
    # Compact and UTF-8: the signature covers these exact octets. orjson writes
    # what json.dumps(separators=(",", ":"), ensure_ascii=False) writes, 10x
    # faster; it refuses integers beyond 64 bits, which customer metadata may hold.
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _metadata(text: str | None) -> Any:
    """The customer's metadata as JSON again (the store keeps it serialised)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)  # integers beyond 64 bits
        except ValueError:
            return text  # not JSON after all (an older intake): hand it back as given


def batch_body(bodies: Sequence[bytes]) -> bytes:
    """One POST carrying several events: ``{"events": [<event>, ...]}``, each event
    exactly the body it would have had alone (so each keeps its ``event_id``)."""
    return b'{"events":[' + b",".join(bodies) + b"]}"


def _timestamps(message: Message, status: Status) -> dict[str, str]:
    """A time per status the message passed through, up to ``status``."""
    times: dict[str, str] = {Status.ACCEPTED.label: rfc3339(message.accepted_at)}
    for stage, at in ((Status.QUEUED, message.queued_at), (Status.SENT, message.sent_at)):
        if at is not None and stage <= status:
            times[stage.label] = rfc3339(at)
    if status.final and message.done_at is not None:
        times[status.label] = rfc3339(message.done_at)
    return times


#: Final statuses that are no failure: ``error`` stays ``null``.
_NO_ERROR = frozenset({Status.DELIVERED, Status.CANCELLED})


def status_payload(event: OutboxEvent, message: Message, route: MessageRoute | None = None
                   ) -> bytes:
    """The body of a ``message.status`` event about ``message``.

    ``route``: the connector that carried it and the rule that chose it
    (``null`` each when unknown: not accepted upstream yet, or routed by the
    prefix routes of herald.toml).

    ``error`` is ``null`` unless the reported status is a final one other than
    ``delivered`` or ``cancelled`` (the customer's own doing); then it holds
    herald's or the operator's ``code`` (or ``null`` when there is none, e.g. an
    expiry) and whether the failure is
    ``permanent`` (sending the same message again will fail the same way).
    """
    if event.kind is not EventKind.STATUS or event.status is None:
        raise ValueError(f"event {event.id} is not a status event")
    if event.subject_id != message.id:
        raise ValueError(f"event {event.id} is about another message")
    status = event.status
    error: dict[str, Any] | None = None
    if status.final and status not in _NO_ERROR:
        same = message.status is status  # finals are never replaced, so this holds
        error = {
            "code": message.error_code if same else None,
            "permanent": message.error_permanent if same else False,
        }
    return _dumps(
        {
            "event_id": webhook_event_id(event),
            "type": STATUS_EVENT_TYPE,
            "created_at": rfc3339(event.created_at),
            "message": {
                "id": message.id,
                "status": status.label,
                "to": message.to,
                "from": message.sender,
                "reference": message.reference,
                "metadata": _metadata(message.metadata),
                "segments": message.segments,
                "timestamps": _timestamps(message, status),
                "error": error,
                "route": {
                    "connector": route.connector if route is not None else None,
                    "rule": route.rule if route is not None else None,
                },
            },
        }
    )


def _content(inbound: InboundMessage) -> tuple[str | None, str | None]:
    """``(text, base64 binary)``: exactly one is set."""
    try:
        encoding = Encoding(inbound.encoding)
    except ValueError:
        encoding = Encoding.BINARY  # an encoding this herald does not know: pass the octets
    if encoding is not Encoding.BINARY:
        try:
            # Lenient: a handset's stray octet becomes U+FFFD rather than losing the message.
            return decode(inbound.body, encoding, strict=False), None
        except DecodeError:
            pass
    return None, base64.b64encode(inbound.body).decode("ascii")


def inbound_payload(event: OutboxEvent, inbound: InboundMessage) -> bytes:
    """The body of a ``message.inbound`` event: a message a phone sent to the account.

    ``text`` holds the decoded text, or ``binary`` the octets in base64
    (RFC 4648 §4) when the message is binary data; the other is ``null``.
    """
    if event.kind is not EventKind.INBOUND:
        raise ValueError(f"event {event.id} is not an inbound event")
    if event.subject_id != inbound.id:
        raise ValueError(f"event {event.id} is about another inbound message")
    text, binary = _content(inbound)
    return _dumps(
        {
            "event_id": webhook_event_id(event),
            "type": INBOUND_EVENT_TYPE,
            "created_at": rfc3339(event.created_at),
            "inbound": {
                "id": inbound.id,
                "from": inbound.sender,
                "to": inbound.to,
                "encoding": inbound.encoding if binary is None else Encoding.BINARY.value,
                "text": text,
                "binary": binary,
                "received_at": rfc3339(inbound.received_at),
            },
        }
    )


def decision_view(d: FraudDecision) -> dict[str, Any]:
    """A decision of the pumping defence as the API and webhooks show it: the
    number (the customer's own), its country, the reasons with the cells
    (country, network code, number ranges) and figures; nothing of a
    subscriber's location (ARCHITECTURE.md, the red line)."""
    price = None
    if d.price_micros is not None:
        price = f"{d.price_micros // MICROS}.{d.price_micros % MICROS:06d}"
    return {
        "id": d.id, "action": d.action.value, "created_at": rfc3339(d.created_at),
        "to": d.to, "country": d.country, "verification_id": d.verification_id,
        "message_id": d.message_id, "price": price,
        "by": "engine" if d.engine else "account_controls",
        "reasons": [{"code": r.code, "cell": r.cell, "figures": dict(r.figures)}
                    for r in d.reasons],
    }  # fmt: skip


def fraud_payload(event: OutboxEvent, decision: FraudDecision) -> bytes:
    """The body of a ``verification.blocked`` (or, for an OTP message,
    ``message.blocked``) event: the decision that refused the SMS."""
    if event.kind is not EventKind.FRAUD:
        raise ValueError(f"event {event.id} is not a fraud event")
    if event.subject_id != decision.id:
        raise ValueError(f"event {event.id} is about another decision")
    kind = BLOCKED_EVENT_TYPES[decision.verification_id is None]
    return _dumps({"event_id": webhook_event_id(event), "type": kind,
                   "created_at": rfc3339(event.created_at), "decision": decision_view(decision)})
