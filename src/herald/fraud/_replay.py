"""A causal replay of recorded traffic through the engine (issue 11, "Offline
replay"): pure, the CLI reads the files.

Every request, receipt and verification becomes one event keyed by (time,
kind, position): at equal times receipts and verifications come before
requests, equal keys keep input order. The engine sees them one by one and is
never shown a receipt or verification of a request it blocked (a blocked code
is never sent).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from herald.fraud._engine import Engine
from herald.fraud._events import Action, Decision, Receipt, Request, Verification

__all__ = ["parse_ts", "replay"]

# Event kinds in their order at equal timestamps (issue 11).
_RECEIPT, _VERIFICATION, _REQUEST = 0, 1, 2


def parse_ts(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 UTC timestamp (``...Z`` or ``+00:00``).

    Raises ValueError on anything else; a timestamp without a zone is taken as UTC.
    """
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        text += "+00:00"
        stamp = datetime.fromisoformat(text)
    return round(stamp.timestamp() * 1000)


def replay(engine: Engine, requests: Sequence[Request], receipts: Sequence[Receipt],
           verifications: Sequence[Verification]) -> Iterator[Decision]:
    """One decision per request, in event order."""
    order: list[tuple[int, int, int]] = [(r.ts, _RECEIPT, n) for n, r in enumerate(receipts)]
    order.extend((v.ts, _VERIFICATION, n) for n, v in enumerate(verifications))
    order.extend((r.ts, _REQUEST, n) for n, r in enumerate(requests))
    order.sort()
    blocked: set[str] = set()
    for _ts, kind, n in order:
        if kind == _REQUEST:
            decision = engine.request(requests[n])
            if decision.action is Action.BLOCK:
                blocked.add(decision.request_id)
            yield decision
        elif kind == _RECEIPT:
            if receipts[n].request_id not in blocked:
                engine.receipt(receipts[n])
        elif verifications[n].request_id not in blocked:
            engine.verification(verifications[n])
