"""The admin API, ``/v1/admin``: accounts, their controls and opt-out lists, credentials,
connectors, number tables, routes, audit.

Theory of operation
-------------------
Served by the FastAPI app on the normal path (never the send fast path).
Each request is authenticated by :class:`AdminGate` with an *admin* key
(``ha_...``, ``herald admin keys create``):

- no key, a malformed, unknown, wrong or revoked admin key: 401, counted
  against the client's failed-login budget as for account keys (429 then);
- an account API key (``hk_...``): 403 at once, refused by its form (no
  hashing: the admin API does not say whether it is a valid account key);
- a read-only admin key asking for a change: 403.

Every change goes through :class:`herald.admin.Admin` (which the ``herald``
commands use too): it checks the input, makes the change and records it in
the audit log as ``key:<admin key name>``; its refusals are translated here
into problem documents (422 naming each field, 404, 409). A change applies to
this process's next request (:class:`herald.admin.ChangeFeed` drops what the
API cached about the account or key at once) and to other processes within
:data:`herald.admin.CHANGE_POLL_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from herald.accounts import API_KEY_PREFIX, FailedLogins, InvalidCredentials
from herald.admin import (
    AdminError,
    AdminPrincipal,
    InvalidInput,
    check_numbers,
    describe_controls,
    opt_out_csv,
)
from herald.defence import LiveDefence
from herald.intake import TableFileError, opt_out_number, parse_opt_out_rows
from herald.store import (
    MAX_ROUTES_OCTETS,
    Account,
    AdminScope,
    AuditEntry,
    AuditFilter,
    StoreError,
    TokenLedger,
)

from ._admin_models import (
    AdminAccount,
    AdminAccountCreate,
    AdminAccountCreated,
    AdminAccountList,
    AdminAudit,
    AdminConnectorList,
    AdminConnectorState,
    AdminConnectorStateChange,
    AdminControls,
    AdminControlsChange,
    AdminIssuedKey,
    AdminIssuedLogin,
    AdminNumbers,
    AdminOptOutChange,
    AdminOptOutChanged,
    AdminOptOutImport,
    AdminOptOutList,
    AdminRoutesImport,
    AdminRoutesImported,
    AdminRouting,
    AdminSettings,
    AdminSmppLoginRequest,
    AdminSmppReset,
    AdminTableImport,
)
from ._admin_routing import number_table
from ._admin_views import AdminViews, MessageSearch, audit_view
from ._auth import bearer_token
from ._context import AdminContext, ApiContext
from ._problems import PROBLEM_MEDIA_TYPE, ApiProblem, FieldError, rate_limited, store_problem
from ._render import rfc3339

__all__ = ["ADMIN_PREFIX", "MAX_ADMIN_BODY_OCTETS", "MAX_TABLE_UPLOAD_OCTETS", "install_admin"]

log = logging.getLogger("herald.api.admin")

ADMIN_PREFIX: Final = "/v1/admin"
#: A JSON body of the admin API (settings: a few hundred octets).
MAX_ADMIN_BODY_OCTETS: Final = 64 * 1024
#: A JSON body of lists: controls (5 lists of up to 1,000 entries of up to 64
#: characters) or numbers to opt out (about 25,000; more: the CSV upload).
MAX_LIST_BODY_OCTETS: Final = 512 * 1024
#: An uploaded number table: a 1,000,000-number ported list is about 20 MB of CSV.
MAX_TABLE_UPLOAD_OCTETS: Final = 256 * 1024 * 1024
#: Audit entries per page at most (and by default).
MAX_AUDIT_PAGE: Final = 1000
DEFAULT_AUDIT_PAGE: Final = 100
#: Opted-out numbers per page at most, and by default.
MAX_OPT_OUT_PAGE: Final = 10_000
DEFAULT_OPT_OUT_PAGE: Final = 1000
_CHALLENGE = 'Bearer realm="herald-admin"'
_SECURITY: Final[dict[str, Any]] = {"security": [{"admin": []}]}


def _unauthorized(detail: str, *, presented: bool) -> ApiProblem:
    challenge = _CHALLENGE + (', error="invalid_token"' if presented else "")
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


class AdminGate:
    """Authenticates admin requests: admin keys only, failed logins throttled per address."""

    def __init__(self, ctx: ApiContext, admin: AdminContext) -> None:
        self._admin = admin
        self._clock = ctx.clock
        limits = ctx.limits
        # On PostgreSQL the failures count on every node (FailedLogins.shared_take).
        self._failures = FailedLogins(
            limits.auth_failure_rate, limits.auth_failure_burst, max_keys=limits.max_tracked_keys,
            ledger=ctx.store if isinstance(ctx.store, TokenLedger) else None,
            scope="admin-logins")  # fmt: skip

    async def admit(self, request: Request, *, change: bool) -> AdminPrincipal:
        """The admin key's principal; raises :class:`ApiProblem` (401, 403, 429, 503)."""
        presented = bearer_token(request.headers.get("authorization"))
        principal = await self.verify(presented, request.client.host if request.client else "")
        if change and principal.scope is not AdminScope.WRITE:
            raise ApiProblem(403, "forbidden", f"the admin key {principal.name!r} is read-only")
        return principal

    async def verify(self, presented: str | None, client: str) -> AdminPrincipal:
        """The principal of an admin key presented by ``client`` (an address), failures
        throttled per address (the console's sign-in uses this too); raises
        :class:`ApiProblem` (401, 403, 429, 503)."""
        now = self._clock()
        failures = self._failures.bucket(client, now)
        wait = failures.wait(1, now)
        if wait:
            raise rate_limited("too-many-failed-logins",
                               "too many failed authentications from this address; retry later",
                               wait)  # fmt: skip
        if presented is None:
            failures.take(1, now)
            self._failures.failed(client, now)
            raise _unauthorized("send 'Authorization: Bearer <admin key>'", presented=False)
        if presented.startswith(API_KEY_PREFIX + "_"):
            log.warning("refused an account API key on the admin API from %s", client or "-")
            raise ApiProblem(403, "forbidden", "account API keys do not open the admin API;"
                             " use an admin key (herald admin keys create)")
        # Across nodes: every admin key checked holds a token of the address's bucket
        # in the store while it is (admin requests are few: two round trips each).
        wait = await self._failures.shared_take(client, now, now)
        if wait:
            raise rate_limited("too-many-failed-logins",
                               "too many failed authentications from this address; retry later",
                               wait)  # fmt: skip
        failed = False
        try:
            return await self._admin.service.keys.authenticate(presented, now)
        except InvalidCredentials as exc:
            failed = True
            failures.take(1, now)
            self._failures.failed(client, now)
            log.warning("admin authentication failed from %s: %s", client or "-", exc.reason)
            raise _unauthorized("the admin key is not valid", presented=True) from None
        except StoreError as exc:
            raise store_problem(exc) from None
        finally:
            await self._failures.shared_settle(client, now, failed=failed)


_ENTRY: Final = re.compile(r"(\w+)\[(\d+)\]")


def _path(field: str) -> tuple[str | int, ...]:
    """A refused field's place in the body: ``countries[2]`` -> ``("countries", 2)``."""
    entry = _ENTRY.fullmatch(field)
    return (entry[1], int(entry[2])) if entry else (field,)


def _problem(exc: AdminError) -> ApiProblem:
    if isinstance(exc, InvalidInput):
        errors = [FieldError(_path(p.field), p.code, p.message) for p in exc.problems]
        return ApiProblem(422, "invalid-request", "the request has invalid fields", errors)
    slug = {403: "forbidden", 404: "not-found", 409: "conflict"}.get(exc.http_status,
                                                                      "bad-request")
    return ApiProblem(exc.http_status, slug, str(exc))


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiProblem(413, "payload-too-large", f"the body exceeds {limit} octets")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiProblem(413, "payload-too-large", f"the body exceeds {limit} octets")
        chunks.append(chunk)
    return b"".join(chunks)


async def _object(request: Request, *, optional: bool = False,
                  limit: int = MAX_ADMIN_BODY_OCTETS) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty optional body)."""
    raw = await _read(request, limit)
    if not raw.strip() and optional:
        return {}
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiProblem(415, "unsupported-media-type", "send the body as application/json")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiProblem(400, "malformed-json", f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiProblem(422, "invalid-request", "the body must be a JSON object",
                         [FieldError((), "wrong_type", "must be a JSON object")])
    return body


def _field(body: Mapping[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = body.get(name, default)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise _problem(InvalidInput.one(name, "required" if name not in body else "wrong_type",
                                        "is required" if name not in body
                                        else f"must be a {kind.__name__}"))
    return value


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def since(value: str | None, name: str = "since") -> float | None:
    """A time parameter (``since``): epoch seconds or an RFC 3339 date-time."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ApiProblem(422, "invalid-request", "the request has invalid parameters", [
            FieldError((name,), "not_valid", "must be epoch seconds or an RFC 3339"
                       " date-time with its offset (2027-01-15T08:00:00Z)", "query")])
    return when.timestamp()


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiProblem(422, "invalid-request", "the request has invalid parameters", [
            FieldError((name,), "out_of_range", f"must be an integer {low}..{high}", "query")])
    return int(raw)


class AdminRoutes:
    """The handlers; each admits the caller, asks the service, renders the answer."""

    def __init__(self, ctx: ApiContext, admin: AdminContext) -> None:
        self._ctx = ctx
        self._admin = admin
        self._service = admin.service
        self.gate = AdminGate(ctx, admin)
        self.views = AdminViews(admin, ctx.metrics, ctx.clock)
        self.views.allow_private_urls = not ctx.block_private_callbacks

    async def _account_view(self, account: Account) -> dict[str, Any]:
        return await self.views.account(account)

    @property
    def _allow_private(self) -> bool:
        return not self._ctx.block_private_callbacks

    # -- accounts ------------------------------------------------------------------------

    async def list_accounts(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        return _json(await self.views.accounts())

    async def get_account(self, request: Request, name: str) -> Response:
        await self.gate.admit(request, change=False)
        return _json(await self._account_view(await self._service.account(name)))

    async def create_account(self, request: Request) -> Response:
        who = await self.gate.admit(request, change=True)
        body = await _object(request)
        name = _field(body, "name", str)
        settings = {k: v for k, v in body.items() if k != "name"}
        account, key = await self._service.create_account(
            who.actor, name, settings, allow_private_urls=self._allow_private)
        return _json({"account": await self._account_view(account), "api_key": key.key,
                      "webhook_secret": self._service.signing_secret(account)}, 201)

    async def update_account(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        body = await _object(request)
        account = await self._service.update_account(
            who.actor, name, body, allow_private_urls=self._allow_private)
        return _json(await self._account_view(account))

    async def disable(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        return _json(await self._account_view(
            await self._service.set_disabled(who.actor, name, True)))

    async def enable(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        return _json(await self._account_view(
            await self._service.set_disabled(who.actor, name, False)))

    # -- controls and opt-outs (docs/accounts.md) ----------------------------------------

    async def controls(self, request: Request, name: str) -> Response:
        await self.gate.admit(request, change=False)
        return _json(describe_controls(await self._service.controls(name)))

    async def update_controls(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        body = await _object(request, limit=MAX_LIST_BODY_OCTETS)
        return _json(describe_controls(await self._service.update_controls(who.actor, name,
                                                                           body)))

    async def opt_outs(self, request: Request, name: str) -> Response:
        await self.gate.admit(request, change=False)
        limit = _query_int(request, "limit", DEFAULT_OPT_OUT_PAGE, 1, MAX_OPT_OUT_PAGE)
        cursor = request.query_params.get("cursor") or None
        if cursor is not None and opt_out_number(cursor) != cursor:
            raise ApiProblem(422, "invalid-request", "the request has invalid parameters", [
                FieldError(("cursor",), "not_valid", "must be a page's next_cursor", "query")])
        entries = await self._service.opt_outs(name, after=cursor, limit=limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        return _json({"opt_outs": [{"number": f"+{e.number}",
                                    "opted_out_at": rfc3339(e.updated_at), "source": e.source}
                                   for e in entries],
                      "next_cursor": entries[-1].number if more else None})  # fmt: skip

    async def export_opt_outs(self, request: Request, name: str) -> Response:
        await self.gate.admit(request, change=False)
        entries = await self._service.opt_outs(name)
        return Response(opt_out_csv(entries), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{name}-opt-outs.csv"'})

    async def add_opt_outs(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        given = _field(await _object(request, limit=MAX_LIST_BODY_OCTETS), "numbers", list)
        numbers = check_numbers(given)
        changed = await self._service.change_opt_outs(who.actor, name, numbers, True, "api")
        return _json({"numbers": len(numbers), "changed": changed})

    async def remove_opt_out(self, request: Request, name: str, number: str) -> Response:
        who = await self.gate.admit(request, change=True)
        digits = opt_out_number(number)
        if digits is None:
            raise ApiProblem(422, "invalid-request", "the request has invalid parameters", [
                FieldError(("number",), "not_valid", "is not a phone number", "path")])
        if not await self._service.change_opt_outs(who.actor, name, [digits], False, "api"):
            raise ApiProblem(404, "not-found", f"+{digits} is not on the opt-out list of"
                             f" account {name!r}")
        return Response(status_code=204)

    async def import_opt_outs(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        await self._service.account(name)  # 404 before reading a large upload
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ("text/csv", "text/plain"):
            raise ApiProblem(415, "unsupported-media-type", "send the list as text/csv")
        raw = await _read(request, MAX_TABLE_UPLOAD_OCTETS)
        lines = _lines(raw.removeprefix(b"\xef\xbb\xbf"))  # a BOM, as the CLI reads it
        try:
            numbers = await asyncio.to_thread(lambda: parse_opt_out_rows(csv.reader(lines)))
        except TableFileError as exc:
            raise _file_problem(exc) from None
        changed = await self._service.change_opt_outs(who.actor, name, numbers, True, "import")
        return _json({"imported": len(numbers), "changed": changed})

    # -- credentials ---------------------------------------------------------------------

    async def issue_key(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        _, key = await self._service.issue_api_key(who.actor, name)
        return _json({"key_id": key.key_id, "api_key": key.key}, 201)

    async def revoke_key(self, request: Request, name: str, key_id: str) -> Response:
        who = await self.gate.admit(request, change=True)
        await self._service.revoke_api_key(who.actor, key_id, account_name=name)
        return Response(status_code=204)

    async def add_smpp(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        body = await _object(request)
        _, issued = await self._service.add_smpp(
            who.actor, name, _field(body, "system_id", str),
            _field(body, "password_length", int, 8))  # fmt: skip
        return _json({"system_id": issued.system_id, "password": issued.password}, 201)

    async def reset_smpp(self, request: Request, name: str, system_id: str) -> Response:
        who = await self.gate.admit(request, change=True)
        body = await _object(request, optional=True)
        _, issued = await self._service.reset_smpp(
            who.actor, system_id, _field(body, "password_length", int, 8), account_name=name)
        return _json({"system_id": issued.system_id, "password": issued.password})

    async def remove_smpp(self, request: Request, name: str, system_id: str) -> Response:
        who = await self.gate.admit(request, change=True)
        await self._service.remove_smpp(who.actor, system_id, account_name=name)
        return Response(status_code=204)

    # -- connectors, number tables -------------------------------------------------------

    async def connectors(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        return _json(self.views.connectors())

    async def numbers(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        return _json(await self.views.routing.number_tables())

    async def import_table(self, request: Request, table: str) -> Response:
        who = await self.gate.admit(request, change=True)
        number_table(table)  # 404 before reading an upload for no table
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in ("text/csv", "text/plain"):
            raise ApiProblem(415, "unsupported-media-type", "send the table as text/csv")
        raw = await _read(request, MAX_TABLE_UPLOAD_OCTETS)
        try:
            done = await self.views.routing.import_number_table(who.actor, table, _lines(raw))
        except TableFileError as exc:
            raise _file_problem(exc) from None
        return _json(done)

    async def clear_table(self, request: Request, table: str) -> Response:
        who = await self.gate.admit(request, change=True)
        await self.views.routing.clear_number_table(who.actor, table)
        return Response(status_code=204)

    # -- routing -------------------------------------------------------------------------

    async def disable_connector(self, request: Request, name: str) -> Response:
        return await self._connector_state(request, name, True)

    async def enable_connector(self, request: Request, name: str) -> Response:
        return await self._connector_state(request, name, False)

    async def _connector_state(self, request: Request, name: str, disabled: bool) -> Response:
        who = await self.gate.admit(request, change=True)
        self.views.check_connector(name)
        body = await _object(request, optional=True) if disabled else {}
        reason = body.get("reason")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
            raise _problem(InvalidInput.one("reason", "wrong_type",
                                            "must be a string of at most 500 characters"))
        return _json(await self.views.set_connector(who.actor, name, disabled, reason))

    async def routes(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        return _json(await self.views.routes())

    async def explain_route(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)  # a read: read-only keys may ask
        return _json(await self.views.explain(await _object(request)))

    async def import_routes(self, request: Request) -> Response:
        who = await self.gate.admit(request, change=True)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise ApiProblem(415, "unsupported-media-type", "send the body as application/json")
        raw = await _read(request, MAX_ROUTES_OCTETS + MAX_ADMIN_BODY_OCTETS)
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiProblem(400, "malformed-json", f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiProblem(422, "invalid-request", "the body must be a JSON object",
                             [FieldError((), "wrong_type", "must be a JSON object")])
        routes = _field(body, "routes", str)
        if "prices" in body:
            raise _problem(InvalidInput.one(
                "prices", "unknown_field", "buy prices are each connector's buy list: import"
                " them with `herald prices import --connector NAME FILE`; least-cost rules"
                " use them"))
        source = body.get("source") or "api"
        if not isinstance(source, str) or len(source) > 200:
            raise _problem(InvalidInput.one("source", "wrong_type",
                                            "must be a string of at most 200 characters"))
        return _json(await self.views.routing.import_routes(who.actor, routes, source))

    async def clear_routes(self, request: Request) -> Response:
        who = await self.gate.admit(request, change=True)
        await self.views.routing.clear_routes(who.actor)
        return Response(status_code=204)

    # -- overview and messages -----------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        return _json(await self.views.overview())

    async def messages(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        search = MessageSearch.parse(request.query_params.get, since)
        return _json(await self.views.messages(search))

    async def message(self, request: Request, message_id: str) -> Response:
        await self.gate.admit(request, change=False)
        return _json(await self.views.message(message_id))

    async def cancel_message(self, request: Request, message_id: str) -> Response:
        who = await self.gate.admit(request, change=True)
        return _json(await self.views.cancel_message(who.actor, message_id))

    # -- audit ---------------------------------------------------------------------------

    async def audit(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        query = request.query_params
        limit = _query_int(request, "limit", DEFAULT_AUDIT_PAGE, 1, MAX_AUDIT_PAGE)
        cursor = _query_int(request, "cursor", 0, 1, 2**62) or None
        target = query.get("target") or None
        if target is not None and len(target) > 200:
            raise ApiProblem(422, "invalid-request", "the request has invalid parameters", [
                FieldError(("target",), "too_long", "has at most 200 characters", "query")])
        entries = await self._service.audit(AuditFilter(
            since=since(query.get("since")), target=target, before=cursor, limit=limit + 1))
        more = len(entries) > limit
        entries = entries[:limit]
        return _json({"entries": [audit_view(e) for e in entries],
                      "next_cursor": str(entries[-1].seq) if more else None})


def _file_problem(exc: TableFileError) -> ApiProblem:
    """A refused CSV upload: 422 naming each bad line (the first few)."""
    errors = [FieldError((f"line {p.line}",), "invalid_line", p.message, "file")
              for p in exc.problems]  # fmt: skip
    more = f" ({exc.count} in all; the first {len(errors)} named)" \
        if exc.count > len(errors) else ""
    return ApiProblem(422, "invalid-request", f"the file was refused whole{more}", errors)


def _lines(raw: bytes) -> list[str]:
    """The upload's lines; a line that is not UTF-8 is refused by number."""
    lines = raw.splitlines(keepends=True)
    out = []
    for number, line in enumerate(lines, 1):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ApiProblem(422, "invalid-request", "the file was refused whole", [
                FieldError((f"line {number}",), "invalid_line",
                           f"is not UTF-8 (octet {exc.start + 1})", "file")]) from None
    return out


def _doc(summary: str, ok: int, model: type | None, *codes: int, body: Any = None,
         description: str | None = None) -> dict[str, Any]:
    """add_api_route's documentation arguments for one admin operation."""
    problems: dict[int | str, Any] = {
        code: {"description": _CODES[code], "content": {PROBLEM_MEDIA_TYPE: {
            "schema": {"$ref": "#/components/schemas/Problem"}}}}
        for code in (401, 403, 429, 503, *codes)
    }  # fmt: skip
    answer: dict[str, Any] = {"description": "OK"} if model is None else {"model": model}
    extra: dict[str, Any] = dict(_SECURITY)
    if body is not None:
        extra["requestBody"] = body
    return {"tags": ["admin"], "summary": summary, "description": description,
            "responses": {ok: answer, **problems}, "openapi_extra": extra,
            "status_code": ok}  # fmt: skip


_CODES: Final = {
    400: "Malformed JSON", 401: "No admin key, or not a valid one",
    403: "An account API key, or a read-only admin key asked for a change",
    404: "No such account, key, login or table", 409: "The name or system_id is taken",
    413: "Body too large", 415: "Wrong content type",
    422: "Invalid fields, each named in `errors`", 429: "Failed-login throttle; see Retry-After",
    503: "Store busy or unavailable; see Retry-After",
}  # fmt: skip


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def install_admin(app: FastAPI, ctx: ApiContext, admin: AdminContext,
                  forget_account: Callable[[str], None],
                  defence: LiveDefence | None = None) -> AdminRoutes:
    """Add the ``/v1/admin`` routes; ``forget_account(name)`` drops what the
    API cached about an account (called for each change to it); ``defence``:
    the pumping defence this app screens with (its blocks in force). Returns the
    handlers (their gate and views serve the console too)."""
    routes = AdminRoutes(ctx, admin)
    routes.views.defence = defence

    def on_change(entry: AuditEntry) -> None:
        if entry.target.startswith("account:"):
            forget_account(entry.target.partition(":")[2])

    admin.service.feed.watch(on_change)
    p = ADMIN_PREFIX
    csv_body = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    table: list[tuple[str, str, Callable[..., Any], dict[str, Any]]] = [
        (f"{p}/accounts", "GET", routes.list_accounts,
         _doc("Every account with its settings and credentials", 200, AdminAccountList)),
        (f"{p}/accounts", "POST", routes.create_account,
         _doc("Create an account; its first API key is shown once", 201, AdminAccountCreated,
              400, 409, 413, 415, 422, body=_json_body(AdminAccountCreate))),
        (f"{p}/accounts/{{name}}", "GET", routes.get_account,
         _doc("An account", 200, AdminAccount, 404)),
        (f"{p}/accounts/{{name}}", "PATCH", routes.update_account,
         _doc("Change the settings given; the others stay", 200, AdminAccount, 400, 404, 413,
              415, 422, body=_json_body(AdminSettings))),
        (f"{p}/accounts/{{name}}/disable", "POST", routes.disable,
         _doc("Refuse the account's keys and logins, close its binds", 200, AdminAccount, 404)),
        (f"{p}/accounts/{{name}}/enable", "POST", routes.enable,
         _doc("Accept the account's credentials again", 200, AdminAccount, 404)),
        (f"{p}/accounts/{{name}}/keys", "POST", routes.issue_key,
         _doc("Issue an API key, shown once", 201, AdminIssuedKey, 404)),
        (f"{p}/accounts/{{name}}/keys/{{key_id}}", "DELETE", routes.revoke_key,
         _doc("Revoke an API key (refused from the next request)", 204, None, 404)),
        (f"{p}/accounts/{{name}}/smpp", "POST", routes.add_smpp,
         _doc("Add an SMPP login; its password is shown once", 201, AdminIssuedLogin, 400, 404,
              409, 413, 415, 422, body=_json_body(AdminSmppLoginRequest))),
        (f"{p}/accounts/{{name}}/smpp/{{system_id}}/reset", "POST", routes.reset_smpp,
         _doc("A new password for an SMPP login, shown once; its binds are closed", 200,
              AdminIssuedLogin, 400, 404, 413, 415, 422,
              body={**_json_body(AdminSmppReset), "required": False})),
        (f"{p}/accounts/{{name}}/smpp/{{system_id}}", "DELETE", routes.remove_smpp,
         _doc("Remove an SMPP login; its binds are closed", 204, None, 404)),
        (f"{p}/accounts/{{name}}/controls", "GET", routes.controls,
         _doc("An account's controls (docs/accounts.md)", 200, AdminControls, 404)),
        (f"{p}/accounts/{{name}}/controls", "PATCH", routes.update_controls,
         _doc("Change the controls given; the others stay", 200, AdminControls, 400, 404, 413,
              415, 422, body=_json_body(AdminControlsChange),
              description="The rules of `herald accounts set`; every refused entry is named"
              " (`countries[2]`) and nothing changes.")),
        (f"{p}/accounts/{{name}}/opt-outs", "GET", routes.opt_outs,
         _doc("The account's opted-out numbers, by number, in pages", 200, AdminOptOutList,
              404, 422, description="`limit` 1..10000 (1000); `cursor`: a page's"
              " `next_cursor`.")),
        (f"{p}/accounts/{{name}}/opt-outs", "POST", routes.add_opt_outs,
         _doc("Opt numbers out of the account's messages", 200, AdminOptOutChanged, 400, 404,
              413, 415, 422, body=_json_body(AdminOptOutChange),
              description="Each number that is not one is named (`numbers[2]`) and nothing"
              " changes.")),
        (f"{p}/accounts/{{name}}/opt-outs", "PUT", routes.import_opt_outs,
         _doc("Opt out the numbers of a CSV file (the format of `herald optouts import`)",
              200, AdminOptOutImport, 404, 413, 415, 422, body=csv_body,
              description="The first column of each row; a first row that is no number is a"
              " header. Adds to the list (numbers not in the file stay). A file with a bad"
              " line is refused whole; `errors` names each (`line N`, `in` `file`).")),
        (f"{p}/accounts/{{name}}/opt-outs.csv", "GET", routes.export_opt_outs,
         _doc("The account's opt-out list as CSV (number,opted_out_at,source)", 200, None,
              404, description="Imports back as it is.")),
        (f"{p}/accounts/{{name}}/opt-outs/{{number}}", "DELETE", routes.remove_opt_out,
         _doc("Opt a number back in", 204, None, 404, 422)),
        (f"{p}/connectors", "GET", routes.connectors,
         _doc("The upstream connectors and their binds now", 200, AdminConnectorList)),
        (f"{p}/connectors/{{name}}/disable", "POST",
         routes.disable_connector,
         _doc("Keep every rule and route off a connector", 200, AdminConnectorState, 400, 404,
              413, 415, 422,
              body={**_json_body(AdminConnectorStateChange), "required": False})),
        (f"{p}/connectors/{{name}}/enable", "POST",
         routes.enable_connector,
         _doc("Route to a connector again", 200, AdminConnectorState, 404)),
        (f"{p}/routes", "GET", routes.routes,
         _doc("The routing rules in force and the connector states", 200, AdminRouting)),
        (f"{p}/routes", "PUT", routes.import_routes,
         _doc("Replace the routing rules", 200, AdminRoutesImported, 400, 413,
              415, 422, body=_json_body(AdminRoutesImport),
              description="The format of `herald routes import` (docs/routing.md). Refused"
              " whole on any problem; `errors` names each: `routes.rule[2].split.a`."
              " Buy prices are each connector's buy list (`herald prices import"
              " --connector`); a body with `prices` is refused.")),
        (f"{p}/routes", "DELETE", routes.clear_routes,
         _doc("Remove the routing rules (the [[routes]] of herald.toml decide)", 204, None,
              404)),
        (f"{p}/routes/explain", "POST", routes.explain_route,
         _doc("The routing decision for a message, and why (herald routes explain)", 200,
              None, 400, 413, 415, 422, description="Body: `account`, `to` (required),"
              " `sender`, `tag`, `priority`. Nothing is sent or changed.")),
        (f"{p}/numbers", "GET", routes.numbers,
         _doc("The number tables stored, and the generation in use", 200, AdminNumbers)),
        (f"{p}/numbers/{{table}}", "PUT", routes.import_table,
         _doc("Replace a number table (plan or ported) with a CSV file", 200, AdminTableImport,
              404, 413, 415, 422, body=csv_body,
              description="The formats of `herald numbers import-plan|import-ported`"
              " (docs/numbers.md). A file with a bad line is refused whole; `errors` names"
              " each bad line (`field` `line N`, `in` `file`).")),
        (f"{p}/numbers/{{table}}", "DELETE", routes.clear_table,
         _doc("Remove a number table", 204, None, 404)),
        (f"{p}/overview", "GET", routes.overview,
         _doc("Counters, rates per second, queues and binds per connector, backlogs", 200,
              None, description="What the console's overview shows (docs/console.md).")),
        (f"{p}/messages", "GET", routes.messages,
         _doc("Search messages of every account, newest first", 200, None, 404, 422,
              description="`id`; or `account`, `to`, `reference`, `status`, `since`, `until`"
              " (epoch or RFC 3339), `limit` 1..1000 (50), `cursor` (with `account`).")),
        (f"{p}/messages/{{message_id}}", "GET", routes.message,
         _doc("A message with its route, parts, failed webhooks, attempts and timeline", 200,
              None, 404)),
        (f"{p}/messages/{{message_id}}/cancel", "POST", routes.cancel_message,
         _doc("Cancel a message that has not gone out (recorded: message.cancel)", 200, None,
              404, 409)),
        (f"{p}/audit", "GET", routes.audit,
         _doc("The audit log of changes, newest first", 200, AdminAudit, 422,
              description="`since`: epoch seconds or RFC 3339; `target`: exact, or a prefix"
              " ending in `*` (`account:*`); `limit` 1..1000 (100); `cursor`: a page's"
              " `next_cursor`.")),
    ]
    export = next(doc for path, _, _, doc in table if path.endswith("/opt-outs.csv"))
    export["responses"][200] = {"description": "number,opted_out_at,source", "content": {
        "text/csv": {"schema": {"type": "string"}}}}  # fmt: skip
    export["response_class"] = Response  # not JSON
    table += _billing_routes(routes, p)
    table += _fraud_routes(routes, p)
    table += _guard_routes(routes, p)
    for path, method, handler, doc in table:
        app.add_api_route(path, _translating(handler), methods=[method], **doc)
    return routes


def _billing_routes(
    routes: AdminRoutes, prefix: str
) -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:
    """Price lists, balances, CDRs and margins (:mod:`herald.api._admin_billing`)."""
    # Imported here: _admin_billing builds on this module's helpers.
    from ._admin_billing import billing_routes

    return billing_routes(routes.views.billing, routes.gate, prefix, routes.views)


def _fraud_routes(
    routes: AdminRoutes, prefix: str
) -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:
    """The pumping defence's settings, decisions and blocks (:mod:`herald.api._admin_fraud`)."""
    from ._admin_fraud import fraud_routes  # builds on this module's helpers

    return fraud_routes(routes.views, routes.gate, prefix)


def _guard_routes(
    routes: AdminRoutes, prefix: str
) -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:
    """The signaling guard's audit log, read-only (:mod:`herald.api._admin_guard`)."""
    from ._admin_guard import guard_routes  # builds on this module's helpers

    return guard_routes(routes.views.guard, routes.gate, prefix)


def _translating(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` with the admin service's refusals answered as problems."""

    @functools.wraps(handler)
    async def run(*args: Any, **kwargs: Any) -> Response:
        try:
            response: Response = await handler(*args, **kwargs)
        except AdminError as exc:
            raise _problem(exc) from None
        return response

    return run
