"""The pumping defence in the API (docs/fraud.md, "Live"): its decisions, the
account's settings and controls, the 403 a block answers; and the account's
Verify texts (docs/verify.md, "Texts").
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from herald.defence import LiveDefence
from herald.ids import is_valid_id
from herald.intake import IntakeError
from herald.rating import MICROS
from herald.store import (
    MAX_FRAUD_LIST_ENTRIES,
    FraudAction,
    FraudMode,
    FraudSettings,
    InvalidRecord,
    NotFound,
    StoreError,
)
from herald.verify import check_locale, check_template

from ._auth import Gate
from ._blocked import decision_view
from ._context import ApiContext
from ._messages import _query_time, read_json
from ._problems import ApiProblem, FieldError, store_problem

__all__ = ["FraudRoutes", "install_fraud", "settings_view", "updated_settings"]

#: A settings body: two lists of up to 1,000 prefixes and 1,000 ceilings.
MAX_SETTINGS_BODY_OCTETS: Final = 128 * 1024
#: Decisions per page.
MAX_DECISIONS: Final = 1_000
_SETTINGS_FIELDS: Final = frozenset({"mode", "otp_messages", "allow", "deny", "country_caps"})



def _json(value: object, status: int = 200) -> Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, media_type="application/json")


def settings_view(s: FraudSettings) -> dict[str, Any]:
    return {"mode": s.mode.value, "otp_messages": s.otp_messages, "allow": list(s.allow),
            "deny": list(s.deny),
            "country_caps": {k: f"{v:f}" for k, v in sorted(s.country_caps.items())}}


def _prefixes(value: object, name: str, errors: list[FieldError]) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_FRAUD_LIST_ENTRIES or not all(
            isinstance(v, str) for v in value):
        errors.append(FieldError((name,), "wrong_type",
                                 f"a list of up to {MAX_FRAUD_LIST_ENTRIES} strings"))
        return ()
    for n, entry in enumerate(value):
        if not (entry.startswith("+") and entry[1:].isascii() and entry[1:].isdigit()
                and 2 <= len(entry) <= 16):
            errors.append(FieldError((name, n), "invalid", "'+' and 1 to 15 digits"))
    return tuple(value)


def updated_settings(current: FraudSettings, payload: object) -> FraudSettings:
    """``current`` with the fields of ``payload`` (a JSON object) changed; raises a
    422 :class:`ApiProblem` naming each bad field."""
    if not isinstance(payload, dict):
        raise ApiProblem(422, "invalid-request", "the body must be a JSON object",
                         [FieldError((), "wrong_type", "must be a JSON object")])
    errors = [FieldError((k,), "unknown_field", "Extra inputs are not permitted")
              for k in payload if k not in _SETTINGS_FIELDS]  # fmt: skip
    changes: dict[str, Any] = {}
    if "mode" in payload:
        try:
            changes["mode"] = FraudMode(payload["mode"])
        except ValueError:
            errors.append(FieldError(("mode",), "invalid_choice", "enforce or monitor"))
    if "otp_messages" in payload:
        if not isinstance(payload["otp_messages"], bool):
            errors.append(FieldError(("otp_messages",), "wrong_type", "true or false"))
        changes["otp_messages"] = payload["otp_messages"] is True
    for name in ("allow", "deny"):
        if name in payload:
            changes[name] = _prefixes(payload[name], name, errors)
    if "country_caps" in payload:
        caps = payload["country_caps"]
        parsed: dict[str, Decimal] = {}
        if not isinstance(caps, dict) or len(caps) > MAX_FRAUD_LIST_ENTRIES:
            errors.append(FieldError(("country_caps",), "wrong_type",
                                     "an object of country: amount (a decimal string)"))
        else:
            for country, amount in caps.items():
                try:
                    value = Decimal(amount) if isinstance(amount, str) else None
                except InvalidOperation:
                    value = None
                if not (len(country) == 2 and country.isascii() and country.isalpha()
                        and country.isupper()):
                    errors.append(FieldError(("country_caps", country), "invalid",
                                             "an ISO 3166-1 alpha-2 code (GB)"))
                elif value is None or not value.is_finite() or value < 0 or (
                        value * MICROS) % 1:
                    errors.append(FieldError(("country_caps", country), "invalid",
                                             "an amount >= 0 as a decimal string ('5.00'),"
                                             " at most 6 decimals"))
                else:
                    parsed[country] = value
        changes["country_caps"] = parsed
    if errors:
        raise ApiProblem(422, "invalid-request", "the settings were refused; see errors", errors)
    fields = {"mode": current.mode, "otp_messages": current.otp_messages,
              "allow": current.allow, "deny": current.deny,
              "country_caps": current.country_caps, **changes}  # fmt: skip
    try:
        return FraudSettings(**fields)
    except InvalidRecord as exc:  # pragma: no cover - the checks above are the record's
        raise ApiProblem(422, "invalid-request", str(exc)) from None


def _time(request: Request, name: str, errors: list[FieldError]) -> float | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return _query_time(value, name)  # as GET /v1/messages reads it (RFC 3339)
    except IntakeError as exc:
        errors.append(FieldError((name,), exc.code, exc.message, "query"))
        return None


class FraudRoutes:
    """``/v1/fraud/...`` and ``/v1/verify/templates/...`` for the account of the key."""

    def __init__(self, ctx: ApiContext, gate: Gate, defence: LiveDefence) -> None:
        self._ctx = ctx
        self._gate = gate
        self._defence = defence

    async def decisions(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        query = request.query_params
        errors: list[FieldError] = []
        action = None
        if (text := query.get("action")) is not None:
            try:
                action = FraudAction(text)
            except ValueError:
                errors.append(FieldError(("action",), "invalid_choice",
                                         "allow, block or would_block", "query"))
        limit = query.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_DECISIONS:
            errors.append(FieldError(("limit",), "out_of_range", f"1 to {MAX_DECISIONS}",
                                     "query"))
            limit = "100"
        verification = query.get("verification_id")
        since, until = _time(request, "since", errors), _time(request, "until", errors)
        if errors:
            raise ApiProblem(422, "invalid-request", "the query was refused; see errors", errors)
        try:
            found = await self._ctx.store.list_fraud_decisions(
                account.id, since=since, until=until,
                action=action, verification_id=verification, limit=int(limit))
        except StoreError as exc:
            raise store_problem(exc) from None
        return _json({"decisions": [decision_view(d) for d in found]})

    async def decision(self, request: Request, decision_id: str) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        if not is_valid_id(decision_id):
            raise ApiProblem(404, "not-found", "no such decision")
        try:
            return _json(decision_view(await self._ctx.store.get_fraud_decision(decision_id,
                                                                                account.id)))
        except NotFound:
            raise ApiProblem(404, "not-found", "no such decision") from None
        except StoreError as exc:
            raise store_problem(exc) from None

    async def settings(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        try:
            return _json(settings_view(await self._ctx.store.get_fraud_settings(account.id)))
        except StoreError as exc:
            raise store_problem(exc) from None

    async def update_settings(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        _, payload = await read_json(request, MAX_SETTINGS_BODY_OCTETS)
        try:
            new = updated_settings(await self._ctx.store.get_fraud_settings(account.id),
                                   payload)  # fmt: skip
            await self._ctx.store.set_fraud_settings(account.id, new)
        except StoreError as exc:
            raise store_problem(exc) from None
        self._defence.forget(account.id)
        return _json(settings_view(new))

    # -- Verify texts ------------------------------------------------------------------

    async def templates(self, request: Request) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        try:
            return _json({"templates": await self._ctx.store.verify_templates(account.id)})
        except StoreError as exc:
            raise store_problem(exc) from None

    async def set_template(self, request: Request, locale: str) -> Response:
        now = self._ctx.clock()
        account = await self._gate.authenticate(request, now)
        if (why := check_locale(locale)) is not None:
            raise ApiProblem(422, "invalid-request", "the locale was refused",
                             [FieldError(("locale",), "invalid", why, "path")])
        text: str | None = None
        if request.method == "PUT":
            _, payload = await read_json(request, 4096)
            text = payload.get("text") if isinstance(payload, dict) else None
            why = "a string" if not isinstance(text, str) else check_template(text)
            extra = [k for k in payload if k != "text"] if isinstance(payload, dict) else []
            errors = [FieldError((k,), "unknown_field", "Extra inputs are not permitted")
                      for k in extra]  # fmt: skip
            if why is not None:
                errors.append(FieldError(("text",), "invalid", why))
            if errors:
                raise ApiProblem(422, "invalid-request", "the text was refused; see errors",
                                 errors)  # fmt: skip
        return await self._set_template(account.id, locale, text)

    async def remove_template(self, request: Request, locale: str) -> Response:
        return await self.set_template(request, locale)  # DELETE: text None

    async def _set_template(self, account_id: int, locale: str, text: str | None) -> Response:
        try:
            await self._ctx.store.set_verify_template(account_id, locale, text)
        except StoreError as exc:
            raise store_problem(exc) from None
        if text is None:
            return Response(status_code=204)
        return _json({"locale": locale, "text": text})


_SECURITY: Final[dict[str, Any]] = {"security": [{"bearer": []}]}


def install_fraud(app: Any, routes: FraudRoutes, problems: Any) -> None:
    """Serve the routes on ``app`` (a FastAPI app)."""
    tags = ["fraud"]
    app.add_api_route(
        "/v1/fraud/decisions", routes.decisions, methods=["GET"], tags=tags,
        summary="The pumping defence's decisions about the account's SMS, newest first",
        description="Query: `since`, `until` (RFC 3339), `action` (allow, block,"
        " would_block), `verification_id`, `limit` (1-1000, 100). docs/fraud.md.",
        openapi_extra=_SECURITY, responses=problems(401, 422, 429, 503))
    app.add_api_route(
        "/v1/fraud/decisions/{decision_id}", routes.decision, methods=["GET"], tags=tags,
        summary="One decision, its reasons and figures", openapi_extra=_SECURITY,
        responses=problems(401, 404, 429, 503))
    app.add_api_route(
        "/v1/fraud/settings", routes.settings, methods=["GET"], tags=tags,
        summary="The account's defence settings and controls", openapi_extra=_SECURITY,
        responses=problems(401, 429, 503))
    app.add_api_route(
        "/v1/fraud/settings", routes.update_settings, methods=["PATCH"], tags=tags,
        summary="Change the fields given: mode, otp_messages, allow, deny, country_caps",
        openapi_extra=_SECURITY, responses=problems(401, 413, 415, 422, 429, 503))
    app.add_api_route(
        "/v1/verify/templates", routes.templates, methods=["GET"], tags=["verify"],
        summary="The account's own Verify texts by locale", openapi_extra=_SECURITY,
        responses=problems(401, 429, 503))
    app.add_api_route(
        "/v1/verify/templates/{locale}", routes.set_template, methods=["PUT"],
        tags=["verify"], summary="Set the account's text for a locale ({\"text\": ...};"
        " `default`: for every locale it has no text of). docs/verify.md",
        openapi_extra=_SECURITY, responses=problems(401, 413, 415, 422, 429, 503))
    app.add_api_route(
        "/v1/verify/templates/{locale}", routes.remove_template, methods=["DELETE"],
        tags=["verify"], summary="Remove the account's text for a locale (204)",
        status_code=204, openapi_extra=_SECURITY, responses=problems(401, 422, 429, 503))
