"""A chain as the API shows it and the customer's webhook tells it (pure).

``GET /v1/messages/{id}`` of a chain answers :func:`chain_view`; the one
``message.chain`` webhook a chain earns when it ends carries the same view
(:func:`chain_payload`), so the customer reads every leg, its status and
price, and ``delivered_by``: the leg that delivered (None when none did).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from herald import timefmt
from herald.channels._codes import ChannelErrorCode
from herald.store import ChatChain, ChatLeg, EventKind, OutboxEvent

__all__ = ["CHAIN_EVENT_TYPE", "chain_payload", "chain_view", "rfc3339"]

#: The ``type`` of the webhook a chain sends when it ends.
CHAIN_EVENT_TYPE: Final = "message.chain"
_MICROS: Final = 1_000_000
_CODES: Final = {int(c): c for c in ChannelErrorCode}


def rfc3339(seconds: float | None) -> str | None:
    return None if seconds is None else timefmt.rfc3339(seconds)


def _money(micros: int) -> str:
    return f"{micros // _MICROS}.{micros % _MICROS:06d}"


def _leg(leg: ChatLeg) -> dict[str, Any]:
    error = None
    if leg.error_code is not None:
        code = _CODES.get(leg.error_code)
        error = {"code": leg.error_code, "name": None if code is None else code.name.lower(),
                 "provider_code": leg.provider_code}
    return {
        "leg": leg.leg,
        "channel": leg.channel,
        "from": leg.sender,
        "status": leg.state or "not_started",
        "success": leg.success,
        "within": leg.within,
        "provider_id": leg.provider_id,
        "message_id": leg.message_id,
        "error": error,
        "price": None if leg.price_micros is None else {
            "amount": _money(leg.price_micros), "category": leg.price_category},
        "started_at": rfc3339(leg.started_at),
        "updated_at": rfc3339(leg.updated_at),
    }


def chain_view(chain: ChatChain) -> dict[str, Any]:
    """The chain and every leg (a leg not started has status ``not_started``)."""
    return {
        "id": chain.id,
        "type": "chain",
        "status": chain.status.label,
        "to": "+" + chain.to,
        "reference": chain.reference,
        "metadata": None if chain.metadata is None else orjson.loads(chain.metadata),
        "callback_url": chain.callback_url,
        "delivered_by": chain.delivered_by,
        "created_at": rfc3339(chain.created_at),
        "done_at": rfc3339(chain.done_at),
        "legs": [_leg(leg) for leg in chain.legs],
    }


def chain_payload(event: OutboxEvent, chain: ChatChain) -> bytes:
    """The body of the ``message.chain`` webhook: the chain's final status once,
    naming the leg that delivered it."""
    if event.kind is not EventKind.CHAIN or event.status is None:
        raise ValueError(f"event {event.id} is not a chain event")
    if event.subject_id != chain.id:
        raise ValueError(f"event {event.id} is about another chain")
    return orjson.dumps({"event_id": f"evt_{chain.id}_{event.status.label}",
                         "type": CHAIN_EVENT_TYPE, "created_at": rfc3339(event.created_at),
                         "message": chain_view(chain)})
