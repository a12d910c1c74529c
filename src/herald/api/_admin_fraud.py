"""The admin API's pumping-defence endpoints (docs/fraud.md, "Live"): an
account's settings and customer controls, its decisions, and its blocks in force. The same checks
as the customer's ``PATCH /v1/fraud/settings`` and ``herald accounts fraud``,
and, like every admin change, recorded in the audit log (``account.fraud``).
A running herald reads a change within :data:`herald.defence.SETTINGS_TTL`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from ._admin import AdminGate, _doc, _json, _object, _query_int
from ._admin_views import AdminViews
from ._blocked import decision_view
from ._fraud import MAX_DECISIONS, MAX_SETTINGS_BODY_OCTETS, settings_view, updated_settings

__all__ = ["fraud_routes"]

_SETTINGS_BODY: Final = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False, "properties": {
        "mode": {"type": "string", "enum": ["enforce", "monitor"]},
        "otp_messages": {"type": "boolean"},
        "allow": {"type": "array", "items": {"type": "string"}},
        "deny": {"type": "array", "items": {"type": "string"}},
        "country_caps": {"type": "object", "additionalProperties": {"type": "string"}},
    }}}}}  # fmt: skip


def fraud_routes(views: AdminViews, gate: AdminGate, prefix: str
                 ) -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:  # fmt: skip
    admin = views.service

    async def settings(request: Request, name: str) -> Response:
        await gate.admit(request, change=False)
        return _json(settings_view(await admin.fraud_settings(name)))

    async def update(request: Request, name: str) -> Response:
        who = await gate.admit(request, change=True)
        body = await _object(request, limit=MAX_SETTINGS_BODY_OCTETS)
        new = updated_settings(await admin.fraud_settings(name), body)
        return _json(settings_view(await admin.set_fraud_settings(who.actor, name, new)))

    async def decisions(request: Request, name: str) -> Response:
        await gate.admit(request, change=False)
        limit = _query_int(request, "limit", 100, 1, MAX_DECISIONS)
        found = await admin.fraud_decisions(name, limit)
        return _json({"decisions": [decision_view(d) for d in found]})

    async def blocks(request: Request, name: str) -> Response:
        await gate.admit(request, change=False)
        return _json(await views.fraud_blocks(name))

    p = f"{prefix}/accounts/{{name}}/fraud"
    return [
        (p, "GET", settings, _doc("An account's pumping-defence settings (docs/fraud.md)", 200,
                                  None, 404)),
        (p, "PATCH", update, _doc(
            "Change the defence settings given: mode, otp_messages, allow, deny,"
            " country_caps", 200, None, 400, 404, 413, 415, 422, body=_SETTINGS_BODY)),
        (f"{p}/decisions", "GET", decisions, _doc(
            "The account's defence decisions, newest first", 200, None, 404, 422,
            description="`limit` 1..1000 (100).")),
        (f"{p}/blocks", "GET", blocks, _doc(
            "The account's blocks and throttles in force, with their expiry", 200, None, 404,
            description="Cells as a decision's reasons name them, the longest first; in"
            " monitor mode those enforce would hold. This process's defence only.")),
    ]
