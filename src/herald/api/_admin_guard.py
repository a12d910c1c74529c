"""The admin API's signaling-guard endpoints, read-only (docs/guard.md, docs/admin.md).

``herald serve`` does not judge signaling: the guard runs as ``herald guard
scan|proxy --audit FILE``, and this reads that audit log
(:class:`herald.guard.journal.GuardJournal`): blocks and alerts counted by
rule and hour, the latest of them, policy changes, and whether the hash chain
is intact. Everything shown passes :func:`herald.guard.journal.published`:
subscribers and senders as salted hashes, never an IMSI, a node address, a
cell id or a location. :class:`GuardViews` builds the answers for the API and
the console alike.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import Response

from herald.guard.journal import GuardJournal, Verification, hourly
from herald.signaling.policy.verdict import Rule

from ._problems import ApiProblem, FieldError
from ._render import rfc3339

if TYPE_CHECKING:
    from ._admin import AdminGate

__all__ = ["MAX_GUARD_HOURS", "MAX_GUARD_VERDICTS", "GuardViews", "guard_routes"]

#: Hours of counts the summary covers at most (what the journal keeps), and by default.
MAX_GUARD_HOURS: Final = 7 * 24
DEFAULT_GUARD_HOURS: Final = 24
#: Blocks and alerts one answer lists at most, and by default.
MAX_GUARD_VERDICTS: Final = 500
DEFAULT_GUARD_VERDICTS: Final = 100
_ACTIONS: Final = ("block", "alert")


def _invalid(name: str, code: str, detail: str) -> ApiProblem:
    return ApiProblem(422, "invalid-request", "the request has invalid parameters",
                      [FieldError((name,), code, detail, "query")])


def _verification_view(v: Verification | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"ok": v.ok, "records": v.records, "last_seq": v.last_seq,
            "checked_at": rfc3339(v.checked_at), "keyed": v.keyed,
            "findings": [{"kind": k, "message": m} for k, m in v.findings]}  # fmt: skip


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    """A published record with its time as RFC 3339."""
    at = record.get("at")
    return {**record, "at": None if at is None else rfc3339(at)}


class GuardViews:
    """The guard's answers (``journal`` ``None``: this herald reads no guard log).

    Each answer asks the journal for the log's news (read and check, in a worker
    thread) and waits for it at most ``journal.fresh_within`` seconds; past that
    it answers with what the journal holds, ``"checking": true``, and the
    refresh goes on (one at a time)."""

    def __init__(self, journal: GuardJournal | None,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.journal = journal
        self._clock = clock
        self._refreshing: asyncio.Future[bool] | None = None

    async def _refresh(self, journal: GuardJournal) -> bool:
        """Whether the journal is up to date with the log (else: still refreshing)."""
        task = self._refreshing
        if task is None or task.done():
            if task is not None:
                task.exception()  # retrieved: reported by the refresh that follows
            task = self._refreshing = asyncio.ensure_future(asyncio.to_thread(journal.refresh))
        done, _ = await asyncio.wait({task}, timeout=journal.fresh_within)
        if not done:
            return False
        exc = task.exception()
        if isinstance(exc, OSError):
            raise ApiProblem(503, "unavailable", f"the guard's audit log cannot be read: {exc}",
                             headers={"Retry-After": "5"}) from None
        if exc is not None:
            raise exc
        return True

    async def summary(self, hours: int = DEFAULT_GUARD_HOURS) -> dict[str, Any]:
        """Counts by rule over the last ``hours`` and per hour, the chain's check,
        the latest policy changes (what ``GET /v1/admin/guard`` answers)."""
        j = self.journal
        if j is None:
            return {"audit_log": None, "present": False, "checking": False, "hours": hours,
                    "records": 0, "malformed": 0, "totals": dict.fromkeys(_ACTIONS, 0),
                    "by_rule": [], "series": [], "verification": None,
                    "policy_changes": []}  # fmt: skip
        fresh = await self._refresh(j)
        snap = j.snapshot()
        counts = Counter(snap.counts)
        now_hour = int(self._clock() // 3600)
        series = hourly(counts, now_hour - hours + 1, now_hour)
        by_rule: dict[str, dict[str, int]] = {}
        for (hour, rule, action), n in snap.counts.items():
            if hour > now_hour - hours and action in _ACTIONS:
                row = by_rule.setdefault(rule, dict.fromkeys(_ACTIONS, 0))
                row[action] += n
        ranked = sorted(by_rule.items(), key=lambda rc: (-sum(rc[1].values()), rc[0]))
        rows: list[dict[str, Any]] = [{"rule": r, **c} for r, c in ranked]
        verification: dict[str, Any] | None = _verification_view(j.checked)
        if j.check_error is not None:
            verification = {"ok": False, "error": j.check_error}
        return {
            "audit_log": str(j.path), "present": snap.present, "checking": not fresh,
            "hours": hours, "records": snap.records, "malformed": snap.malformed,
            "totals": {a: sum(r[a] for r in rows) for a in _ACTIONS},
            "by_rule": rows,
            "series": [{"hour": rfc3339(h * 3600), "counts": c} for h, c in series],
            "verification": verification,
            "policy_changes": [_shown(c) for c in reversed(snap.changes)],
        }  # fmt: skip

    async def verdicts(self, action: str | None = None, rule: str | None = None,
                       limit: int = DEFAULT_GUARD_VERDICTS) -> dict[str, Any]:
        """The latest blocks and alerts, newest first, of ``action`` and ``rule``."""
        if action is not None and action not in _ACTIONS:
            raise _invalid("action", "invalid_choice", "must be block or alert")
        if rule is not None and rule not in {r.value for r in Rule}:
            raise _invalid("rule", "invalid_choice", "must be one of "
                           + ", ".join(r.value for r in Rule))
        if self.journal is None:
            return {"verdicts": [], "checking": False}
        fresh = await self._refresh(self.journal)
        out = []
        for r in reversed(self.journal.snapshot().recent):
            if (action is None or r["action"] == action) and (rule is None or r["rule"] == rule):
                out.append(_shown(r))
                if len(out) >= limit:
                    break
        return {"verdicts": out, "checking": not fresh}


def guard_routes(views: GuardViews, gate: AdminGate, prefix: str
                 ) -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:  # fmt: skip
    from ._admin import _doc, _json, _query_int  # _admin imports this module's views

    async def summary(request: Request) -> Response:
        await gate.admit(request, change=False)
        hours = _query_int(request, "hours", DEFAULT_GUARD_HOURS, 1, MAX_GUARD_HOURS)
        return _json(await views.summary(hours))

    async def verdicts(request: Request) -> Response:
        await gate.admit(request, change=False)
        q = request.query_params
        limit = _query_int(request, "limit", DEFAULT_GUARD_VERDICTS, 1, MAX_GUARD_VERDICTS)
        return _json(await views.verdicts(q.get("action") or None, q.get("rule") or None,
                                          limit))

    p = f"{prefix}/guard"
    return [
        (p, "GET", summary, _doc(
            "The signaling guard: blocks and alerts by rule and hour, the audit chain's check",
            200, None, 422, description="Read from the guard's audit log (`[guard] audit_log`,"
            " docs/guard.md). `hours` 1..168 (24). Subscribers only as salted hashes.")),
        (f"{p}/verdicts", "GET", verdicts, _doc(
            "The guard's latest blocks and alerts, newest first", 200, None, 422,
            description="`action` block|alert, `rule`, `limit` 1..500 (100); the latest 500"
            " are kept. Subscribers and senders only as salted hashes.")),
    ]
