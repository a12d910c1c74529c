"""A message's submit and webhook attempts as the admin API shows them (private).

The store keeps the attempts that did not succeed and a webhook's success
after them (``Store.message_attempts``). A submit that succeeded is no row of
its own (the hot path writes none): it is the part's segment, with its
connector, and its time is the message's ``sent`` time (the store keeps no
submit time per part; until the message is sent, the segment's last update).
It is shown as the part's last attempt, numbered after its failures. A
webhook delivered at its first attempt leaves no trace at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

from herald.store import Attempt, AttemptKind, Segment
from herald.timefmt import rfc3339

__all__ = ["TIMELINE_ORDER", "attempt_events", "attempts_view"]

#: The order of a timeline's events that share an instant (milliseconds): a
#: message is accepted, charged, queued, routed, submitted, sent, then its
#: receipts and final status, then its webhooks. Others (the final statuses) rank 7.
TIMELINE_ORDER: Final = {"accepted": 0, "charged": 1, "queued": 2, "routed": 3, "submit": 4,
                         "sent": 5, "part": 6, "webhook": 8}  # fmt: skip


def attempts_view(attempts: Sequence[Attempt], segments: Sequence[Segment],
                  sent_at: float | None) -> list[dict[str, Any]]:
    """The attempts in time order, each part's accepted submit last among its own."""
    tried: dict[int, int] = {}
    rows = []
    for a in attempts:
        if a.kind is AttemptKind.SUBMIT and a.part is not None:
            tried[a.part] = max(tried.get(a.part, 0), a.number)
        rows.append((a.at, _attempt(a)))
    for s in segments:
        at = s.updated_at if sent_at is None else sent_at
        rows.append((at, {"kind": "submit", "at": rfc3339(at), "number": tried.get(s.index, 0) + 1,
                          "target": s.connector, "part": s.index + 1, "event": None,
                          "answer": "ESME_ROK", "ok": True}))  # fmt: skip
    rows.sort(key=lambda r: r[0])  # stable: a part's failures stay before its success
    return [view for _, view in rows]


def _attempt(a: Attempt) -> dict[str, Any]:
    submit = a.kind is AttemptKind.SUBMIT
    return {"kind": "submit" if submit else "webhook", "at": rfc3339(a.at), "number": a.number,
            "target": a.target, "part": None if a.part is None else a.part + 1,
            "event": None if a.reported is None else a.reported.label,
            "answer": a.answer, "ok": a.ok}  # fmt: skip


def attempt_events(attempts: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The timeline's entries for :func:`attempts_view`'s attempts."""
    for a in attempts:
        what = f"part {a['part']}" if a["kind"] == "submit" else f"{a['event']} event"
        yield {"at": a["at"], "event": a["kind"],
               "detail": f"{what} to {a['target']}, attempt {a['number']}: {a['answer']}"}
