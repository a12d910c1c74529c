"""The operator console's pages: server-rendered HTML over the admin API's views.

Theory of operation
-------------------
Every page asks :class:`herald.api._admin_views.AdminViews` for the same
dictionary the matching admin API endpoint answers with, and renders it with
a Jinja2 template (autoescaped); every change calls the same admin service
method as the API, so it is checked by the same rules and recorded in the
audit log, as ``console:<admin key name>``. The console therefore shows and
does nothing the admin API does not.

Requests: ``GET`` pages need a session (:mod:`herald.console._session`);
without one they redirect to ``/console/login`` (an htmx request gets an
``HX-Redirect``). Every ``POST`` needs the session's CSRF token and, for a
change, an admin key with write scope (the *admin* role; a read-only key
gives the *read-only* role: it sees every page and changes nothing). The
overview's live part is a fragment htmx fetches every 2 s.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from herald.admin import (
    REFUND_POLICIES,
    AdminError,
    AdminPrincipal,
    InvalidInput,
    check_numbers,
    describe_controls,
)
from herald.api._admin import since as _since
from herald.api._admin_routing import NUMBER_TABLES
from herald.api._admin_views import MessageSearch, audit_view
from herald.api._problems import ApiProblem
from herald.billing import MARGIN_GROUPS
from herald.intake import TableFileError
from herald.store import AdminScope, AuditFilter, PriceSide, Status

from ._session import COOKIE, SESSION_TTL, Session, SessionCodec

if TYPE_CHECKING:
    from fastapi import FastAPI

    from herald.api._admin import AdminGate
    from herald.api._admin_views import AdminViews

__all__ = ["CONSOLE_PREFIX", "STATIC_DIR", "STATIC_PREFIX", "install_console"]

log = logging.getLogger("herald.console")

CONSOLE_PREFIX: Final = "/console"
STATIC_PREFIX: Final = "/console/static"
_HERE = Path(__file__).parent
#: The browser assets: the console's own and those of scripts/vendor-assets.
STATIC_DIR: Final = _HERE / "static"
#: A console form (a reason, a search): a few hundred octets.
MAX_FORM_OCTETS: Final = 16 * 1024
#: Audit entries the audit page shows.
AUDIT_PAGE: Final = 100
#: The guard's blocks and alerts its page shows.
GUARD_PAGE: Final = 100
#: The longest period the billing page sums (the store's hourly sums: 744 hours).
MAX_MARGIN_DAYS: Final = 31
#: Seconds the billing page's sums are shown before they are asked for again (each
#: ask checks every charged message not yet final: about 0.1 s for a million).
MARGIN_CACHE: Final = 30.0
#: Sums kept for the billing page (by grouping, days and account): forgotten all at
#: once beyond this, so a walk over every account's page holds no more.
MAX_MARGINS_KEPT: Final = 256
#: Accounts per page of the accounts list.
ACCOUNTS_PAGE: Final = 100
#: Opted-out numbers an account's page lists (the whole list: the admin API's CSV).
OPT_OUT_PAGE: Final = 50
#: A price list pasted into the billing page's form: about 30,000 entries; larger
#: lists go through the admin API's upload (16 MiB).
MAX_PRICE_FORM_OCTETS: Final = 1024 * 1024
#: A routes file pasted into the routes form (about 5,000 rules); larger files go
#: through ``herald routes import`` or the admin API (64 MiB).
MAX_ROUTES_FORM_OCTETS: Final = 1024 * 1024
#: A number table pasted into its form (about 100,000 ported numbers, form-encoded);
#: larger tables go through ``herald numbers import-*`` or the admin API (256 MiB).
MAX_TABLE_FORM_OCTETS: Final = 4 * 1024 * 1024
#: The settings and controls the account page's forms change: each form sends some
#: of them, and only those sent change (the names of the admin API).
SETTINGS_FORM: Final = ("rate_limit", "bind_limit", "priority", "callback_url",
                        "callback_events", "inbound", "inbound_url", "webhook_batch",
                        "webhook_batch_wait_ms")
CONTROLS_FORM: Final = ("daily_quota", "quota_unit", "countries", "senders", "sender_rules",
                        "api_allow", "smpp_allow")
_PRICE_SIDES: Final = {"account": PriceSide.SELL, "connector": PriceSide.BUY}
#: Pages must not be framed (clickjacking), cached or leak their address; scripts
#: and styles come only from herald itself.
_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none';"
                               " form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class _Problem(Exception):
    """A page refused: its status and the sentence shown."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _spark(points: list[dict[str, Any]], key: str, width: int = 240, height: int = 40) -> str:
    """An SVG polyline's points for one series (server-drawn: no chart library)."""
    values = [float(p[key]) for p in points][-120:]
    if len(values) < 2:
        return ""
    top = max(values) or 1.0
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - v / top * (height - 2) - 1:.1f}"
                    for i, v in enumerate(values))


def _period(params: Mapping[str, str]) -> tuple[str, int]:
    """The billing page's grouping and days (1 unless a number up to the most)."""
    by = params.get("by", "account")
    if by not in MARGIN_GROUPS:
        raise _Problem(422, "by: must be one of " + ", ".join(MARGIN_GROUPS))
    raw = params.get("days", "1")
    return by, int(raw) if raw.isdigit() and 1 <= int(raw) <= MAX_MARGIN_DAYS else 1


def _number(text: str) -> int | float | str:
    """A form's number as the admin API's JSON would carry it; anything else as
    given, for the admin service to refuse by name."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        value = float(t)
    except ValueError:
        return t
    return value if math.isfinite(value) else t


def _flag(text: str) -> bool | str:
    """A yes/no field (a select of ``true`` and ``false``) as JSON's boolean; anything
    else as given, for the admin service to refuse by name."""
    return {"true": True, "false": False}.get(text.strip().lower(), text)


def _setting(name: str, text: str) -> Any:
    """A settings form field as the JSON value ``PATCH /v1/admin/accounts/{name}`` takes."""
    if name in ("priority", "callback_url", "inbound_url"):
        return text.strip() or None  # empty: none (the account's default, no webhooks)
    if name == "callback_events":
        return text.strip()  # all, final, none or statuses separated by commas
    if name == "inbound":
        return _flag(text)
    return _number(text)


#: The list fields whose entries may hold a space or a comma (a sender name such as
#: ``My Shop``, GSM 03.38 has both): one entry a line. The others (countries,
#: sender rules, networks, number prefixes) hold neither: commas, spaces or lines.
LINE_LISTS: Final = frozenset({"senders"})


def _control(name: str, text: str) -> Any:
    """A controls form field as the JSON value ``PATCH .../controls`` takes: a list
    of entries (one a line for :data:`LINE_LISTS`, else separated by commas,
    spaces or lines); an empty quota is none."""
    if name == "daily_quota":
        return None if not text.strip() else _number(text)
    if name == "quota_unit":
        return text.strip()
    if name in LINE_LISTS:
        return [e.strip() for e in text.splitlines() if e.strip()]
    return [e for e in re.split(r"[\s,]+", text) if e]


def _refusal(exc: InvalidInput) -> str:
    return "; ".join(f"{p.field}: {p.message}" for p in exc.problems)


def _problems(exc: ApiProblem) -> str:
    """A 422 of the admin API's views as the console names it: each refused field."""
    return "; ".join(f"{e.dotted}: {e.detail}" for e in exc.errors) or exc.detail


def _file_refusal(exc: TableFileError) -> str:
    """A refused CSV file (a price list, a number table): each bad line named."""
    lines = "; ".join(f"line {p.line}: {p.message}" for p in exc.problems)
    more = f" ({exc.count} in all)" if exc.count > len(exc.problems) else ""
    return f"the file was refused whole{more}: {lines}"


#: The overview's charts: one line per counter, drawn by the server (no chart library).
CHART_KEYS: Final = ("accepted", "sent", "delivered", "failed")


def _chart(points: list[dict[str, Any]], width: int = 600, height: int = 120
           ) -> dict[str, Any]:  # fmt: skip
    """The overview's counters per second as SVG polylines on one scale: ``lines``
    (counter, points), ``top`` (the scale's highest rate), ``span`` (seconds shown)."""
    if len(points) == 1:  # one interval: its average rate, drawn across
        points = [points[0], points[0]]
    values = {k: [float(p[k]) for p in points] for k in CHART_KEYS}
    top = max([v for series in values.values() for v in series] + [0.0])
    scale = top or 1.0
    lines = []
    if len(points) >= 2:
        step = width / (len(points) - 1)
        for k in CHART_KEYS:
            lines.append((k, " ".join(f"{i * step:.1f},{height - v / scale * (height - 4) - 2:.1f}"
                                      for i, v in enumerate(values[k]))))
    span = points[0]["seconds_ago"] + points[0]["seconds"] if points else 0
    return {"lines": lines, "top": round(top, 2), "span": span, "width": width,
            "height": height}


def _duration(seconds: float | None) -> str:
    """Seconds as the overview shows a latency or a span: ``850 ms``, ``4.2 s``, ``3 min``."""
    if seconds is None:
        return "\u2013"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _plain(value: Any) -> Any:
    """A number as people write it: ``10000`` for a whole float (``10000.0``),
    anything else as it is."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _bar_top(series: list[dict[str, Any]]) -> int:
    """The tallest hour's blocks and alerts (at least 1): the bar chart's scale."""
    return max([int(sum(s["counts"].values())) for s in series] + [1])


def _rule_spark(series: list[dict[str, Any]], rule: str) -> str:
    """One rule's blocks and alerts per hour as an SVG polyline's points."""
    return _spark([{"n": s["counts"].get(rule, 0)} for s in series], "n", 120, 20)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals["spark"] = _spark
    env.globals["bar_top"] = _bar_top
    env.globals["chart"] = _chart
    env.filters["duration"] = _duration
    env.filters["number"] = _plain
    env.globals["rule_spark"] = _rule_spark
    env.globals["static"] = STATIC_PREFIX
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


class Console:
    """The console's handlers (see the module docstring)."""

    def __init__(self, gate: AdminGate, views: AdminViews, codec: SessionCodec,
                 clock: Callable[[], float] = time.time) -> None:
        self._gate = gate
        self._views = views
        self._service = views.service
        self._codec = codec
        self._clock = clock
        self._env = _templates()
        #: The billing page's sums by (grouping, days): when summed, and the sums.
        self._margins: dict[tuple[str, int, str | None], tuple[float, dict[str, Any]]] = {}

    # -- plumbing ------------------------------------------------------------------------

    def _page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self._env.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    async def _session(self, request: Request) -> tuple[Session, AdminPrincipal] | None:
        session = self._codec.read(request.cookies.get(COOKIE), self._clock())
        if session is None:
            return None
        try:
            principal = await self._service.keys.principal(session.key_id)
        except Exception:  # revoked or unknown (InvalidCredentials), or the store: sign in
            return None
        return session, principal

    @staticmethod
    def _to_login(request: Request) -> Response:
        where = f"{CONSOLE_PREFIX}/login"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": where, **_HEADERS})
        return RedirectResponse(where, status_code=303, headers=_HEADERS)

    @staticmethod
    async def _form(request: Request, limit: int = MAX_FORM_OCTETS) -> dict[str, str]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise _Problem(413, f"the form exceeds {limit} octets")
        if raw and media != "application/x-www-form-urlencoded":
            raise _Problem(415, "send the form as application/x-www-form-urlencoded")
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in fields.items()}

    def _values(self, session: Session, who: AdminPrincipal, page: str) -> dict[str, Any]:
        return {"who": who, "admin": who.scope is AdminScope.WRITE, "csrf": session.csrf,
                "page": page,
                "role": "admin" if who.scope is AdminScope.WRITE else "read-only"}  # fmt: skip

    def view(self, page: str, render: Callable[..., Awaitable[Response]]
             ) -> Callable[[Request], Awaitable[Response]]:
        """A GET handler: signed in, then ``render(request, values)``."""

        async def handle(request: Request) -> Response:
            found = await self._session(request)
            if found is None:
                return self._to_login(request)
            values = self._values(*found, page)
            try:
                return await render(request, values)
            except (_Problem, AdminError, ApiProblem) as exc:
                return self._refused(exc, values)

        return handle

    def change(self, page: str, act: Callable[..., Awaitable[Response]],
               limit: int = MAX_FORM_OCTETS) -> Callable[[Request], Awaitable[Response]]:
        """A POST handler: signed in, CSRF token checked, admin role, then
        ``act(request, values, form, actor)``; a form of at most ``limit`` octets."""

        async def handle(request: Request) -> Response:
            found = await self._session(request)
            if found is None:
                return self._to_login(request)
            session, who = found
            values = self._values(session, who, page)
            try:
                form = await self._form(request, limit)
                token = request.headers.get("x-csrf-token") or form.get("csrf")
                if not self._codec.csrf_ok(session, token):
                    log.warning("console: a change without its CSRF token refused (%s, %s)",
                                who.name, request.url.path)
                    raise _Problem(403, "the form's CSRF token is missing or wrong: reload"
                                   " the page and try again")
                if who.scope is not AdminScope.WRITE:
                    raise _Problem(403, f"the admin key {who.name!r} is read-only")
                return await act(request, values, form, f"console:{who.name}")
            except (_Problem, AdminError, ApiProblem) as exc:
                return self._refused(exc, values)

        return handle

    def _refused(self, exc: Exception, values: dict[str, Any]) -> Response:
        if isinstance(exc, _Problem):
            status, detail = exc.status, exc.detail
        elif isinstance(exc, ApiProblem):
            status, detail = exc.status, exc.detail
            detail += "".join(f"; {e.dotted}: {e.detail}" for e in exc.errors)
        else:
            assert isinstance(exc, AdminError)
            status, detail = exc.http_status, str(exc)
        return self._page("refused.html", status, **values, code=status, detail=detail)

    # -- signing in and out --------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        if await self._session(request) is not None:
            return RedirectResponse(f"{CONSOLE_PREFIX}/", status_code=303, headers=_HEADERS)
        return self._page("login.html", error=None)

    async def login(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            return self._page("login.html", 403, error="sign in from herald's own page")
        try:
            form = await self._form(request)
        except _Problem as exc:
            return self._page("login.html", exc.status, error=exc.detail)
        client = request.client.host if request.client else ""
        try:
            who = await self._gate.verify(form.get("key", "").strip() or None, client)
        except ApiProblem as exc:
            error = {401: "that is not a valid admin key", 403: exc.detail,
                     429: "too many failed sign-ins from this address; wait and retry"
                     }.get(exc.status, "herald cannot check keys now; retry")  # fmt: skip
            headers = {k: v for k, v in exc.headers.items() if k == "Retry-After"}
            page = self._page("login.html", exc.status, error=error)
            page.headers.update(headers)
            return page
        _, cookie = self._codec.open(who.key_id, self._clock())
        log.info("console: %s signed in from %s", who.name, client or "-")
        answer = RedirectResponse(f"{CONSOLE_PREFIX}/", status_code=303, headers=_HEADERS)
        answer.set_cookie(COOKIE, cookie, max_age=SESSION_TTL, path=CONSOLE_PREFIX,
                          httponly=True, samesite="strict",
                          secure=request.url.scheme == "https")  # fmt: skip
        return answer

    async def logout(self, request: Request) -> Response:
        session = self._codec.read(request.cookies.get(COOKIE), self._clock())
        if session is not None:
            form = await self._form(request)
            if not self._codec.csrf_ok(session, form.get("csrf")):
                return self._page("login.html", 403, error="sign out from herald's own page")
            self._codec.close(session, self._clock())
        answer = RedirectResponse(f"{CONSOLE_PREFIX}/login", status_code=303, headers=_HEADERS)
        answer.delete_cookie(COOKIE, path=CONSOLE_PREFIX, httponly=True, samesite="strict")
        return answer

    # -- overview ------------------------------------------------------------------------

    async def overview(self, request: Request, values: dict[str, Any]) -> Response:
        return self._page("overview.html", **values, o=await self._views.overview())

    async def overview_live(self, request: Request, values: dict[str, Any]) -> Response:
        return self._page("_live.html", **values, o=await self._views.overview())

    # -- messages ------------------------------------------------------------------------

    async def messages(self, request: Request, values: dict[str, Any]) -> Response:
        params = request.query_params
        searched = any(params.get(k) for k in ("id", "account", "to", "reference", "status",
                                                "since", "until"))  # fmt: skip
        found = None
        if searched:
            found = await self._views.messages(MessageSearch.parse(params.get, _since))
        more = None
        if found and found["next_cursor"]:
            more = urlencode({**params, "cursor": found["next_cursor"]})
        return self._page("messages.html", **values, found=found, params=params, more=more,
                          statuses=[s.label for s in Status])

    async def message(self, request: Request, values: dict[str, Any]) -> Response:
        m = await self._views.message(request.path_params["message_id"])
        return self._page("message.html", **values, m=m, notice=None)

    async def cancel(self, request: Request, values: dict[str, Any], form: Mapping[str, str],
                     actor: str) -> Response:
        m = await self._views.cancel_message(actor, request.path_params["message_id"])
        return self._page("message.html", **values, m=m, notice="The message is cancelled.")

    # -- accounts ------------------------------------------------------------------------

    async def accounts(self, request: Request, values: dict[str, Any]) -> Response:
        accounts = await self._service.store.list_accounts()
        raw = request.query_params.get("page", "1")
        number = int(raw) if raw.isdigit() and int(raw) >= 1 else 1
        shown = accounts[(number - 1) * ACCOUNTS_PAGE:number * ACCOUNTS_PAGE]
        balances = await self._views.balances(shown)
        rows = [{**await self._views.account(a), "balance": balances[a.name]} for a in shown]
        return self._page("accounts.html", **values, accounts=rows, number=number,
                          pages=max(1, -(-len(accounts) // ACCOUNTS_PAGE)), total=len(accounts))

    async def _account_page(self, values: dict[str, Any], name: str,
                            notice: str | None = None, issued: str | None = None,
                            password: str | None = None, error: str | None = None,
                            status: int = 200) -> Response:
        account = await self._views.account(await self._service.account(name))
        opt_outs = await self._service.opt_outs(name, limit=OPT_OUT_PAGE + 1)
        return self._page("account.html", status, **values, a=account, notice=notice,
                          issued=issued, error=error, policies=list(REFUND_POLICIES),
                          password=password, balance=await self._views.balance(name),
                          controls=describe_controls(await self._service.controls(name)),
                          opt_outs=[f"+{e.number}" for e in opt_outs[:OPT_OUT_PAGE]],
                          more_opt_outs=len(opt_outs) > OPT_OUT_PAGE)

    async def account(self, request: Request, values: dict[str, Any]) -> Response:
        return await self._account_page(values, request.path_params["name"])

    async def set_disabled(self, request: Request, values: dict[str, Any],
                           form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        disabled = request.url.path.endswith("/disable")
        await self._service.set_disabled(actor, name, disabled)
        return await self._account_page(values, name, notice="The account is "
                                        + ("disabled." if disabled else "enabled."))

    async def issue_key(self, request: Request, values: dict[str, Any],
                        form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        _, key = await self._service.issue_api_key(actor, name)
        return await self._account_page(values, name, issued=key.key,
                                        notice=f"API key {key.key_id} issued.")

    async def revoke_key(self, request: Request, values: dict[str, Any],
                         form: Mapping[str, str], actor: str) -> Response:
        name, key_id = request.path_params["name"], request.path_params["key_id"]
        await self._service.revoke_api_key(actor, key_id, account_name=name)
        return await self._account_page(values, name, notice=f"API key {key_id} revoked.")

    async def add_smpp(self, request: Request, values: dict[str, Any],
                       form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        _, issued = await self._service.add_smpp(actor, name, form.get("system_id", "").strip())
        return await self._account_page(values, name, password=issued.password,
                                        notice=f"SMPP login {issued.system_id} added.")

    async def reset_smpp(self, request: Request, values: dict[str, Any],
                         form: Mapping[str, str], actor: str) -> Response:
        name, system_id = request.path_params["name"], request.path_params["system_id"]
        _, issued = await self._service.reset_smpp(actor, system_id, account_name=name)
        return await self._account_page(values, name, password=issued.password,
                                        notice=f"A new password for {system_id}; its binds"
                                        " are closed.")

    async def remove_smpp(self, request: Request, values: dict[str, Any],
                          form: Mapping[str, str], actor: str) -> Response:
        name, system_id = request.path_params["name"], request.path_params["system_id"]
        await self._service.remove_smpp(actor, system_id, account_name=name)
        return await self._account_page(values, name, notice=f"SMPP login {system_id}"
                                        " removed; its binds are closed.")

    async def opt_out(self, request: Request, values: dict[str, Any],
                      form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        opted_out = not request.url.path.endswith("/opt-in")
        numbers = check_numbers([form.get("number", "")], "number")
        changed = await self._service.change_opt_outs(actor, name, numbers, opted_out, "api")
        what = "opted out" if opted_out else "opted back in"
        return await self._account_page(values, name, notice=f"+{numbers[0]} {what}."
                                        if changed else f"+{numbers[0]} was {what} already.")

    async def _account_form(self, values: dict[str, Any], name: str, notice: str,
                            change: Awaitable[object]) -> Response:
        """Make ``change``; the account's page with ``notice``, or, for refused
        input, with what was refused (422) and nothing changed."""
        try:
            await change
        except InvalidInput as exc:
            return await self._account_page(values, name, error=_refusal(exc), status=422)
        return await self._account_page(values, name, notice=notice)

    async def update_settings(self, request: Request, values: dict[str, Any],
                              form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        given = {k: _setting(k, form[k]) for k in SETTINGS_FORM if k in form}
        return await self._account_form(values, name, "The settings are saved.",
                                        self._service.update_account(
                                            actor, name, given,
                                            allow_private_urls=self._views.allow_private_urls))

    async def update_controls(self, request: Request, values: dict[str, Any],
                              form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        given = {k: _control(k, form[k]) for k in CONTROLS_FORM if k in form}
        return await self._account_form(values, name, "The controls are saved.",
                                        self._service.update_controls(actor, name, given))

    async def top_up(self, request: Request, values: dict[str, Any],
                     form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        amount = form.get("amount", "").strip()
        return await self._account_form(values, name, f"{amount} added to the balance.",
                                        self._views.billing.top_up(actor, name, amount))

    async def set_balance(self, request: Request, values: dict[str, Any],
                          form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        return await self._account_form(
            values, name, "The credit limit and refund policy are saved.",
            self._views.billing.set_balance(
                actor, name, credit_limit=form.get("credit_limit", "").strip() or None,
                refund_policy=form.get("refund_policy") or None))

    # -- connectors ----------------------------------------------------------------------

    async def _connectors_page(self, values: dict[str, Any], notice: str | None = None,
                               status: int = 200, error: str | None = None,
                               routes_text: str | None = None, table: str = "plan",
                               table_text: str = "") -> Response:
        """The page; after a refused form, the text given (``routes_text``,
        ``table_text``) stays in its form to be corrected."""
        routes = await self._views.routes()
        states = {s["connector"]: s for s in routes["connectors"]}
        listed = self._views.connectors()
        stored = await self._views.routing.routes_text()
        if routes_text is None:
            routes_text = stored["text"] if stored is not None else ""
        return self._page("connectors.html", status, **values, notice=notice, error=error,
                          connectors=listed, states=states, routes=routes, stored=stored,
                          routes_text=routes_text, tables=await self._views.routing.number_tables(),
                          table=table, table_text=table_text)  # fmt: skip

    async def connectors(self, request: Request, values: dict[str, Any]) -> Response:
        return await self._connectors_page(values)

    async def set_connector(self, request: Request, values: dict[str, Any],
                            form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        disabled = request.url.path.endswith("/disable")
        reason = form.get("reason", "").strip()[:500] or None
        await self._views.set_connector(actor, name, disabled, reason if disabled else None)
        return await self._connectors_page(values, notice=f"Connector {name} is "
                                           + ("disabled." if disabled else "enabled."))

    async def import_routes(self, request: Request, values: dict[str, Any],
                            form: Mapping[str, str], actor: str) -> Response:
        """Replace the routing rules with the routes file of the form (``herald routes
        import``, ``PUT /v1/admin/routes``); its source is the actor."""
        text = form.get("routes", "")
        if not text.strip():
            return await self._connectors_page(
                values, status=422, routes_text=text, error="routes: the routes file is"
                " empty (to route by the [[routes]] of herald.toml alone, remove the rules)")
        try:
            done = await self._views.routing.import_routes(actor, text, actor)
        except ApiProblem as exc:
            if exc.status != 422:
                raise
            return await self._connectors_page(values, status=422, routes_text=text,
                                               error=_problems(exc))
        return await self._connectors_page(values, notice=f"The routing rules are replaced:"
                                           f" {done['rules']} rules (generation"
                                           f" {done['generation']}).")

    async def clear_routes(self, request: Request, values: dict[str, Any],
                           form: Mapping[str, str], actor: str) -> Response:
        await self._views.routing.clear_routes(actor)
        return await self._connectors_page(values, notice="The routing rules are removed:"
                                           " the [[routes]] of herald.toml decide.")

    async def import_table(self, request: Request, values: dict[str, Any],
                           form: Mapping[str, str], actor: str) -> Response:
        """Replace a number table with the CSV of the form (``herald numbers
        import-plan|import-ported``, ``PUT /v1/admin/numbers/{table}``)."""
        table, text = form.get("table", ""), form.get("numbers", "")
        if table not in NUMBER_TABLES:
            error = "table: must be " + " or ".join(NUMBER_TABLES)
        elif not text.strip():
            error = "numbers: paste the CSV file (docs/numbers.md)"
        else:
            try:
                done = await self._views.routing.import_number_table(
                    actor, table, text.splitlines(keepends=True))
            except TableFileError as exc:
                error = _file_refusal(exc)
            else:
                return await self._connectors_page(
                    values, notice=f"The {table} table is imported: {done['entries']} entries"
                    f" (generation {done['generation']}).")
        return await self._connectors_page(values, status=422, error=error,
                                           table=table, table_text=text)

    async def clear_table(self, request: Request, values: dict[str, Any],
                          form: Mapping[str, str], actor: str) -> Response:
        table = request.path_params["table"]
        await self._views.routing.clear_number_table(actor, table)
        return await self._connectors_page(values, notice=f"The {table} table is removed.")

    async def explain(self, request: Request, values: dict[str, Any]) -> Response:
        params = request.query_params
        given = {k: params.get(k) for k in ("account", "to", "sender", "tag", "priority")}
        found = await self._views.explain(given) if params.get("to") else None
        return self._page("explain.html", **values, given=given, found=found,
                          accounts=[a.name for a in await self._service.store.list_accounts()])

    # -- billing -------------------------------------------------------------------------

    async def billing(self, request: Request, values: dict[str, Any]) -> Response:
        return await self._billing_page(values, params=request.query_params)

    async def _billing_page(self, values: dict[str, Any], *, notice: str | None = None,
                            error: str | None = None, status: int = 200,
                            params: Mapping[str, str] | None = None,
                            margins: dict[str, Any] | None = None) -> Response:
        by, days = _period(params or {})
        account = (params or {}).get("account") or None
        return self._page("billing.html", status, **values, margins=margins, by=by, days=days,
                          groups=MARGIN_GROUPS, lists=await self._views.price_lists(),
                          accounts=[a.name for a in await self._service.store.list_accounts()],
                          account=account, notice=notice, error=error)

    async def margins(self, request: Request, values: dict[str, Any]) -> Response:
        """The billing page's sums (all accounts' or one's, ``account``): a fragment
        htmx loads after the page (the store brings its sums up to date first; the
        account page loads its own), or, without htmx, the page with them."""
        params = request.query_params
        by, days = _period(params)
        name = params.get("account") or None
        account_id = None if name is None else (await self._service.account(name)).id
        now = self._clock()
        kept = self._margins.get((by, days, name))
        if kept is None or now - kept[0] >= MARGIN_CACHE:
            if len(self._margins) >= MAX_MARGINS_KEPT:
                self._margins.clear()
            kept = (now, await self._views.margins(now - days * 86400, now, by, account_id))
            self._margins[(by, days, name)] = kept
        if request.headers.get("hx-request"):
            return self._page("_margins.html", **values, margins=kept[1], by=by, account=name)
        return await self._billing_page(values, params=params, margins=kept[1])

    async def import_prices(self, request: Request, values: dict[str, Any],
                            form: Mapping[str, str], actor: str) -> Response:
        side = _PRICE_SIDES.get(form.get("side", ""))
        name = form.get("owner", "").strip()
        text = form.get("prices", "")
        if side is None:
            error = "side: must be account (a sell list) or connector (a buy list)"
        elif not name:
            error = "owner: the account or connector the list is for is required"
        elif not text.strip():
            error = "prices: paste the CSV file (destination,price lines)"
        else:
            try:
                done = await self._views.billing.import_price_list(
                    actor, side, name, text.splitlines(keepends=True))
            except TableFileError as exc:
                error = _file_refusal(exc).replace("the file", "the list", 1)
            else:
                return await self._billing_page(
                    values, notice=f"The price list of {name} is imported: {done.entries}"
                    " entries.")
        return await self._billing_page(values, error=error, status=422)

    async def remove_prices(self, request: Request, values: dict[str, Any],
                            form: Mapping[str, str], actor: str) -> Response:
        side = _PRICE_SIDES.get(request.path_params["side"])
        name = request.path_params["owner"]
        if side is None:
            raise _Problem(404, "the sides are account and connector")
        await self._views.billing.remove_price_list(actor, side, name)
        return await self._billing_page(values, notice=f"The price list of {name} is removed.")

    # -- the pumping defence -------------------------------------------------------------

    async def _fraud_page(self, values: dict[str, Any], name: str | None,
                          notice: str | None = None, error: str | None = None,
                          status: int = 200) -> Response:
        names = [a.name for a in await self._service.store.list_accounts()]
        name = name or (names[0] if names else None)
        found = None if name is None else await self._views.fraud(name)
        return self._page("fraud.html", status, **values, accounts=names, found=found,
                          notice=notice, error=error)

    async def fraud(self, request: Request, values: dict[str, Any]) -> Response:
        return await self._fraud_page(values, request.query_params.get("account") or None)

    async def set_fraud_mode(self, request: Request, values: dict[str, Any],
                             form: Mapping[str, str], actor: str) -> Response:
        name = request.path_params["name"]
        await self._views.set_fraud_mode(actor, name, form.get("mode", ""))
        return await self._fraud_page(values, name, notice=f"The defence of {name} is now"
                                      f" in {form.get('mode')} mode.")

    async def set_fraud_lists(self, request: Request, values: dict[str, Any],
                              form: Mapping[str, str], actor: str) -> Response:
        """The allow and deny lists and the country ceilings, by the checks of
        ``PATCH /v1/admin/accounts/{name}/fraud``."""
        name = request.path_params["name"]
        caps: dict[str, str] = {}
        for entry in re.split(r"[\s,]+", form.get("country_caps", "")):
            if entry:
                country, _, amount = entry.partition("=")
                caps[country.upper()] = amount
        bad = [c for c, a in caps.items() if not a]
        if bad:
            return await self._fraud_page(values, name, status=422, error="country_caps:"
                                          f" {bad[0]} has no amount (write {bad[0]}=5.00)")
        payload = {"allow": _control("allow", form.get("allow", "")),
                   "deny": _control("deny", form.get("deny", "")), "country_caps": caps}
        return await self._fraud_change(values, actor, name, payload,
                                        f"The lists and ceilings of {name} are saved.")

    async def set_fraud_otp(self, request: Request, values: dict[str, Any],
                            form: Mapping[str, str], actor: str) -> Response:
        """Whether the defence judges one-time codes in messages (``otp_messages``)."""
        name = request.path_params["name"]
        judged = _flag(form.get("otp_messages", ""))
        return await self._fraud_change(values, actor, name, {"otp_messages": judged},
                                        f"One-time codes in messages of {name} are now "
                                        + ("judged." if judged is True else "not judged."))

    async def _fraud_change(self, values: dict[str, Any], actor: str, name: str,
                            payload: Mapping[str, Any], notice: str) -> Response:
        """Change the defence settings of ``payload`` by the checks of ``PATCH
        .../fraud``; the page with ``notice``, or with each refused field (422)."""
        try:
            await self._views.update_fraud(actor, name, payload)
        except ApiProblem as exc:
            return await self._fraud_page(values, name, status=exc.status,
                                          error=_problems(exc))
        return await self._fraud_page(values, name, notice=notice)

    # -- the signaling guard -------------------------------------------------------------

    async def guard(self, request: Request, values: dict[str, Any]) -> Response:
        summary = await self._views.guard.summary()
        recent = await self._views.guard.verdicts(limit=GUARD_PAGE)
        return self._page("guard.html", **values, g=summary, recent=recent["verdicts"])

    # -- audit ---------------------------------------------------------------------------

    async def audit(self, request: Request, values: dict[str, Any]) -> Response:
        target = (request.query_params.get("target") or "").strip()[:200] or None
        entries = await self._service.audit(AuditFilter(target=target, limit=AUDIT_PAGE))
        return self._page("audit.html", **values, entries=[audit_view(e) for e in entries],
                          target=target or "")


def install_console(app: FastAPI, gate: AdminGate, views: AdminViews, key: bytes,
                    clock: Callable[[], float] = time.time) -> None:
    """Serve the console under ``/console`` on ``app`` (its static files, under
    :data:`STATIC_PREFIX`, are served by :func:`herald.api.create_app` for ``/docs`` too).
    ``key`` signs its sessions (:func:`herald.console.console_key`)."""
    c = Console(gate, views, SessionCodec(key), clock)
    p = CONSOLE_PREFIX
    pages: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
        ("/", "GET", c.view("overview", c.overview)),
        ("/overview/live", "GET", c.view("overview", c.overview_live)),
        ("/login", "GET", c.login_form),
        ("/login", "POST", c.login),
        ("/logout", "POST", c.logout),
        ("/messages", "GET", c.view("messages", c.messages)),
        ("/messages/{message_id}", "GET", c.view("messages", c.message)),
        ("/messages/{message_id}/cancel", "POST", c.change("messages", c.cancel)),
        ("/accounts", "GET", c.view("accounts", c.accounts)),
        ("/accounts/{name}", "GET", c.view("accounts", c.account)),
        ("/accounts/{name}/disable", "POST", c.change("accounts", c.set_disabled)),
        ("/accounts/{name}/enable", "POST", c.change("accounts", c.set_disabled)),
        ("/accounts/{name}/keys", "POST", c.change("accounts", c.issue_key)),
        ("/accounts/{name}/keys/{key_id}/revoke", "POST", c.change("accounts", c.revoke_key)),
        ("/accounts/{name}/smpp", "POST", c.change("accounts", c.add_smpp)),
        ("/accounts/{name}/smpp/{system_id}/reset", "POST", c.change("accounts", c.reset_smpp)),
        ("/accounts/{name}/smpp/{system_id}/remove", "POST",
         c.change("accounts", c.remove_smpp)),
        ("/accounts/{name}/opt-out", "POST", c.change("accounts", c.opt_out)),
        ("/accounts/{name}/opt-in", "POST", c.change("accounts", c.opt_out)),
        ("/accounts/{name}/settings", "POST", c.change("accounts", c.update_settings)),
        ("/accounts/{name}/controls", "POST", c.change("accounts", c.update_controls)),
        ("/accounts/{name}/top-up", "POST", c.change("accounts", c.top_up)),
        ("/accounts/{name}/balance", "POST", c.change("accounts", c.set_balance)),
        ("/connectors", "GET", c.view("connectors", c.connectors)),
        ("/connectors/{name}/disable", "POST", c.change("connectors", c.set_connector)),
        ("/connectors/{name}/enable", "POST", c.change("connectors", c.set_connector)),
        ("/routes/explain", "GET", c.view("connectors", c.explain)),
        ("/routes", "POST", c.change("connectors", c.import_routes,
                                     limit=MAX_ROUTES_FORM_OCTETS)),
        ("/routes/clear", "POST", c.change("connectors", c.clear_routes)),
        ("/numbers", "POST", c.change("connectors", c.import_table,
                                      limit=MAX_TABLE_FORM_OCTETS)),
        ("/numbers/{table}/remove", "POST", c.change("connectors", c.clear_table)),
        ("/billing", "GET", c.view("billing", c.billing)),
        ("/billing/margins", "GET", c.view("billing", c.margins)),
        ("/billing/prices", "POST", c.change("billing", c.import_prices,
                                             limit=MAX_PRICE_FORM_OCTETS)),
        ("/billing/prices/{side}/{owner}/remove", "POST", c.change("billing", c.remove_prices)),
        ("/fraud", "GET", c.view("fraud", c.fraud)),
        ("/fraud/{name}/mode", "POST", c.change("fraud", c.set_fraud_mode)),
        ("/fraud/{name}/lists", "POST", c.change("fraud", c.set_fraud_lists)),
        ("/fraud/{name}/otp", "POST", c.change("fraud", c.set_fraud_otp)),
        ("/guard", "GET", c.view("guard", c.guard)),
        ("/audit", "GET", c.view("audit", c.audit)),
    ]
    for path, method, handler in pages:
        app.add_route(p + path, handler, methods=[method], include_in_schema=False)

    async def bare(request: Request) -> Response:
        return RedirectResponse(f"{p}/", status_code=308)

    app.add_route(p, bare, methods=["GET"], include_in_schema=False)
