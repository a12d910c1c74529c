"""The admin API's billing endpoints: price lists, balances, CDRs and margins.

Theory of operation
-------------------
The same rules as ``herald prices|balance|cdr`` (docs/billing.md), through
the same service (:class:`herald.admin.BillingAdmin`), so both record the
same audit entries. A price list is uploaded as the CSV file the CLI
imports and refused whole, naming each bad line, like a number table;
read back as JSON, or as that CSV with ``Accept: text/csv`` (a ``.csv``
suffix would be ambiguous: account names may hold dots). Amounts of money
are JSON *strings* of decimals (``"12.50"``): a JSON number is read as a
binary float by most clients, and a balance must stay exact. A sell list
put here charges the account's next message once the processes that accept
messages reload the lists (:data:`herald.billing.CHECK_INTERVAL`, 2 s).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from herald.admin import BillingAdmin, FieldProblem, InvalidInput
from herald.billing import (
    CDR_COLUMNS,
    CDR_PAGE,
    MARGIN_GROUPS,
    cdr_row,
    parse_when,
)
from herald.rating import TableFileError, price_list_csv
from herald.store import Cdr, PriceSide

from ._admin import AdminGate, _doc, _json, _json_body, _lines, _object, _problem, _read
from ._admin_models import (
    AdminBalance,
    AdminBalanceChange,
    AdminMargins,
    AdminPriceImport,
    AdminPriceList,
    AdminPriceLists,
    AdminTopUp,
)
from ._admin_views import AdminViews, balance_view
from ._problems import ApiProblem, FieldError
from ._render import rfc3339

__all__ = ["MAX_PRICE_UPLOAD_OCTETS", "billing_routes"]

#: An uploaded price list: 100,000 entries (``MAX_PRICE_ENTRIES``) of about
#: 30 octets, with room for comment columns.
MAX_PRICE_UPLOAD_OCTETS: Final = 16 * 1024 * 1024
_SIDES: Final = {"account": PriceSide.SELL, "connector": PriceSide.BUY}
_SIDE_WORD: Final = {PriceSide.SELL: "sell", PriceSide.BUY: "buy"}
_CSV: Final = "text/csv"
_AMOUNT_TYPE: Final = 'must be a string of a decimal number ("12.50"), kept exact'


def _side(owner: str) -> PriceSide:
    side = _SIDES.get(owner)
    if side is None:
        raise ApiProblem(404, "not-found", "price lists belong to an account or a connector:"
                         " /v1/admin/prices/account/{name}, /v1/admin/prices/connector/{name}")
    return side


def _strings(body: dict[str, Any], allowed: tuple[str, ...], required: bool) -> dict[str, str]:
    """The body's fields, each a JSON string; every other field, a missing
    required one or a value of another type named in one 422."""
    problems = [FieldProblem(k, "unknown_field", f"is not one of {', '.join(allowed)}")
                for k in body if k not in allowed]  # fmt: skip
    for k in allowed:
        if k not in body:
            if required:
                problems.append(FieldProblem(k, "required", "is required"))
        elif not isinstance(body[k], str):
            problems.append(FieldProblem(k, "wrong_type", _AMOUNT_TYPE if k != "refund_policy"
                                         else "must be a string"))
    if problems:
        raise _problem(InvalidInput(problems))
    return {k: body[k] for k in allowed if k in body}


def _query_problem(name: str, code: str, detail: str) -> ApiProblem:
    return ApiProblem(422, "invalid-request", "the request has invalid parameters",
                      [FieldError((name,), code, detail, "query")])


def _period(request: Request) -> tuple[float, float]:
    """``from`` (included) and ``to`` (not), as ``herald cdr`` takes them."""
    bounds = []
    for name in ("from", "to"):
        raw = request.query_params.get(name)
        if raw is None:
            raise _query_problem(name, "required", "is required (YYYY-MM-DD, RFC 3339 or"
                                 " epoch seconds)")
        if len(raw) > 100:
            raise _query_problem(name, "too_long", "has at most 100 characters")
        try:
            bounds.append(parse_when(raw))
        except ValueError as exc:
            raise _query_problem(name, "not_valid", str(exc)) from None
    since, until = bounds
    if until <= since:
        raise _query_problem("to", "out_of_range", "must be after from")
    return since, until


class BillingRoutes:
    """The handlers; each admits the caller, asks the service, renders the answer."""

    def __init__(self, billing: BillingAdmin, gate: AdminGate, views: AdminViews) -> None:
        self._billing = billing
        self._store = billing.store
        self.gate = gate
        self._views = views

    # -- price lists ---------------------------------------------------------------------

    async def list_prices(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        return _json(await self._views.price_lists())

    async def get_prices(self, request: Request, owner: str, name: str) -> Response:
        await self.gate.admit(request, change=False)
        side = _side(owner)
        prices, imported_at = await self._billing.price_list(side, name)
        if _CSV in request.headers.get("accept", "").lower():
            return Response("".join(price_list_csv(prices)), media_type=_CSV)
        return _json({"side": _SIDE_WORD[side], "owner": name,
                      "imported_at": rfc3339(imported_at),
                      "entries": [{"destination": str(key), "price": f"{price:f}"}
                                  for key, price in prices.entries()]})  # fmt: skip

    async def put_prices(self, request: Request, owner: str, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        side = _side(owner)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in (_CSV, "text/plain"):
            raise ApiProblem(415, "unsupported-media-type", "send the price list as text/csv")
        raw = await _read(request, MAX_PRICE_UPLOAD_OCTETS)
        try:
            done = await self._billing.import_price_list(who.actor, side, name, _lines(raw))
        except TableFileError as exc:
            errors = [FieldError((f"line {p.line}",), "invalid_line", p.message, "file")
                      for p in exc.problems]  # fmt: skip
            more = f" ({exc.count} in all; the first {len(errors)} named)" \
                if exc.count > len(errors) else ""
            raise ApiProblem(422, "invalid-request",
                             f"the file was refused whole{more}", errors) from None
        return _json({"side": _SIDE_WORD[side], "owner": name, "entries": done.entries,
                      "generation": done.generation})

    async def remove_prices(self, request: Request, owner: str, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        await self._billing.remove_price_list(who.actor, _side(owner), name)
        return Response(status_code=204)

    # -- balances ------------------------------------------------------------------------

    async def balance(self, request: Request, name: str) -> Response:
        await self.gate.admit(request, change=False)
        return _json(balance_view(name, *await self._billing.balance(name)))

    async def top_up(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        amount = _strings(await _object(request), ("amount",), required=True)["amount"]
        await self._billing.top_up(who.actor, name, amount)
        return _json(balance_view(name, *await self._billing.balance(name)))

    async def set_balance(self, request: Request, name: str) -> Response:
        who = await self.gate.admit(request, change=True)
        wanted = _strings(await _object(request), ("credit_limit", "refund_policy"),
                          required=False)  # fmt: skip
        await self._billing.set_balance(who.actor, name, **wanted)
        return _json(balance_view(name, *await self._billing.balance(name)))

    # -- CDRs and margins ----------------------------------------------------------------

    async def _account_id(self, request: Request) -> int | None:
        name = request.query_params.get("account")
        return None if name is None else (await self._billing.admin.account(name)).id

    async def cdrs(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        since, until = _period(request)
        account_id = await self._account_id(request)
        names = {a.id: a.name for a in await self._store.list_accounts()}
        # The first page is read before answering, so that a busy store is a 503,
        # not a cut-off 200; the others are read as the client takes the rows.
        first = await self._store.list_cdrs(since, until, account_id=account_id, limit=CDR_PAGE)

        async def rows() -> AsyncIterator[str]:
            page: tuple[Cdr, ...] = first
            yield ",".join(CDR_COLUMNS) + "\n"
            while True:
                out = io.StringIO()
                csv.writer(out, lineterminator="\n").writerows(cdr_row(c, names) for c in page)
                yield out.getvalue()
                if len(page) < CDR_PAGE:
                    return
                page = await self._store.list_cdrs(
                    since, until, account_id=account_id,
                    after=(page[-1].accepted_at, page[-1].message_id), limit=CDR_PAGE)

        return StreamingResponse(rows(), media_type=_CSV)

    async def margins(self, request: Request) -> Response:
        await self.gate.admit(request, change=False)
        since, until = _period(request)
        by = request.query_params.get("by", "account")
        if by not in MARGIN_GROUPS:
            raise _query_problem("by", "invalid_choice", f"must be one of"
                                 f" {', '.join(MARGIN_GROUPS)}")
        account_id = await self._account_id(request)
        return _json(await self._views.margins(since, until, by, account_id))


_UPLOAD: Final = {"required": True, "content": {_CSV: {"schema": {"type": "string"}}}}
_PERIOD: Final = ("`from` (included) and `to` (not): YYYY-MM-DD (UTC midnight), RFC 3339"
                  " with its offset, or epoch seconds; `account`: only its messages")


def _csv(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with its answer also given as CSV."""
    ok = doc["responses"][200]
    doc["responses"][200] = {**ok, "content": {_CSV: {"schema": {"type": "string"}}}}
    return doc


def billing_routes(
    billing: BillingAdmin, gate: AdminGate, prefix: str, views: AdminViews
) -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:
    """The rows of the admin route table for billing (docs/admin.md, docs/billing.md)."""
    routes = BillingRoutes(billing, gate, views)
    p = prefix
    lists = f"{p}/prices/{{owner}}/{{name}}"
    return [
        (f"{p}/prices", "GET", routes.list_prices,
         _doc("Every price list: sell (accounts), then buy (connectors)", 200,
              AdminPriceLists)),
        (lists, "GET", routes.get_prices,
         _csv(_doc("A price list (owner: account or connector); CSV with Accept: text/csv", 200,
              AdminPriceList, 404, description="JSON by default; with `Accept: text/csv`"
              " the CSV file `herald prices show` writes (and PUT reads back)."))),
        (lists, "PUT", routes.put_prices,
         _doc("Replace a price list with a CSV file (destination,price)", 200,
              AdminPriceImport, 404, 413, 415, 422, body=_UPLOAD,
              description="The format of `herald prices import` (docs/billing.md). A file"
              " with a bad line is refused whole; `errors` names each bad line (`field`"
              " `line N`, `in` `file`). A sell list charges the account's messages within"
              " 2 s.")),
        (lists, "DELETE", routes.remove_prices,
         _doc("Remove a price list (an account without a sell list is not charged)", 204,
              None, 404)),
        (f"{p}/accounts/{{name}}/balance", "GET", routes.balance,
         _doc("An account's balance, credit limit and refund policy", 200, AdminBalance,
              404)),
        (f"{p}/accounts/{{name}}/balance/top-up", "POST", routes.top_up,
         _doc("Add to an account's balance", 200, AdminBalance, 400, 404, 413, 415, 422,
              body=_json_body(AdminTopUp),
              description="`amount`: a JSON string of a decimal > 0 with at most 6 places"
              ' ("12.50"); a JSON number is refused (not exact).')),
        (f"{p}/accounts/{{name}}/balance", "PATCH", routes.set_balance,
         _doc("Set the credit limit and/or the refund policy", 200, AdminBalance, 400, 404,
              413, 415, 422, body=_json_body(AdminBalanceChange))),
        (f"{p}/cdrs", "GET", routes.cdrs,
         _csv(_doc("The CDRs of a period, as CSV (the columns of herald cdr export)", 200,
                   None, 404, 422, description=_PERIOD + "."))
         | {"response_class": Response}),  # not JSON
        (f"{p}/margins", "GET", routes.margins,
         _doc("Revenue, cost and margin of a period", 200, AdminMargins, 404, 422,
              description=_PERIOD + "; `by`: account (default), connector or country.")),
    ]
