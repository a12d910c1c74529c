"""The console's forms for changes the admin API offers: account settings and
controls, the balance and credit, price lists, the pumping defence's lists and
ceilings. Each needs the CSRF token and the
admin role, is recorded in the audit log, and refuses bad input by field with
nothing changed."""

from __future__ import annotations

import httpx
import pytest

from herald.store import AuditFilter

from .conftest import Console

ACME = "/console/accounts/acme"
#: Each form: its path, a good change, a bad one and the field the refusal names.
FORMS = [
    (f"{ACME}/settings", {"rate_limit": "12.5", "bind_limit": "3", "priority": "",
                          "callback_url": ""}, {"rate_limit": "fast"}, "rate_limit"),
    (f"{ACME}/controls", {"daily_quota": "500", "quota_unit": "segments",
                          "countries": "GB, DE", "senders": ""}, {"countries": "GB, Narnia"},
     "countries[1]"),
    (f"{ACME}/top-up", {"amount": "25.50"}, {"amount": "-3"}, "amount"),
    (f"{ACME}/balance", {"credit_limit": "10", "refund_policy": "undelivered"},
     {"credit_limit": "1e3"}, "credit_limit"),
    ("/console/billing/prices", {"side": "account", "owner": "acme",
                                 "prices": "destination,price\n+44,0.035\ndefault,0.09\n"},
     {"side": "account", "owner": "acme", "prices": "destination,price\n+44,cheap\n"},
     "line 2"),
    ("/console/fraud/acme/lists", {"allow": "+4477", "deny": "+1415555, +882",
                                   "country_caps": "US=2.50 ng=0"},
     {"deny": "+1415555", "country_caps": "US=lots"}, "country_caps.US"),
]


def _admin(console: Console) -> httpx.AsyncClient:
    return console.client(Authorization=f"Bearer {console.write_key}")


async def _state(console: Console) -> list[object]:
    """What the forms change, as the admin API answers it."""
    api = _admin(console)
    return [(await api.get(path)).json() for path in (
        "/v1/admin/accounts/acme", "/v1/admin/accounts/acme/controls",
        "/v1/admin/accounts/acme/balance", "/v1/admin/prices",
        "/v1/admin/accounts/acme/fraud")]


async def _console_changes(console: Console) -> list[tuple[str, str, str]]:
    entries = await console.store.list_audit(AuditFilter(limit=100))
    return [(e.actor, e.action, e.target) for e in entries if e.actor.startswith("console:")]


@pytest.mark.parametrize(("path", "good", "bad", "field"), FORMS,
                         ids=[f[0].rsplit("/", 1)[1] for f in FORMS])
async def test_a_form_needs_csrf_and_the_admin_role_and_refuses_bad_input_by_field(
    console: Console, path: str, good: dict[str, str], bad: dict[str, str], field: str,
) -> None:
    before = await _state(console)
    reader, read_token = await console.signed_in(console.read_key)
    refused = await reader.post(path, data={"csrf": read_token, **good})
    assert refused.status_code == 403 and "read-only" in refused.text
    writer, token = await console.signed_in(console.write_key)
    forged = await writer.post(path, data=good)  # no CSRF token
    assert forged.status_code == 403 and "CSRF" in forged.text
    wrong = await writer.post(path, data={"csrf": token, **bad})
    assert wrong.status_code == 422, wrong.text
    assert 'id="form-error"' in wrong.text and f"{field}:" in wrong.text
    assert await _state(console) == before and await _console_changes(console) == []
    done = await writer.post(path, data={"csrf": token, **good})
    assert done.status_code == 200, done.text
    assert 'class="notice"' in done.text and "form-error" not in done.text
    assert await _state(console) != before
    assert len(await _console_changes(console)) == 1


async def test_the_forms_change_what_the_admin_api_shows(console: Console) -> None:
    writer, token = await console.signed_in(console.write_key)
    for path, good, _, _ in FORMS:
        answer = await writer.post(path, data={"csrf": token, **good})
        assert answer.status_code == 200, answer.text
    account, controls, balance, prices, fraud = await _state(console)
    assert isinstance(account, dict) and account["rate_limit"] == 12.5
    assert account["bind_limit"] == 3 and account["priority"] is None
    assert controls == {**controls, "daily_quota": 500, "quota_unit": "segments",
                        "countries": ["GB", "DE"], "senders": []}
    assert balance == {**balance, "balance": "25.500000", "credit_limit": "10.000000",
                       "available": "35.500000", "refund_policy": "undelivered", "billed": True}
    assert isinstance(prices, dict)
    assert [(p["side"], p["owner"], p["entries"]) for p in prices["price_lists"]] == [
        ("sell", "acme", 2)]
    assert isinstance(fraud, dict)
    assert (fraud["allow"], fraud["deny"], fraud["country_caps"]) == (
        ["+4477"], ["+1415555", "+882"], {"NG": "0", "US": "2.50"})
    assert sorted(a for _, a, _ in await _console_changes(console)) == [
        "account.controls", "account.fraud", "account.update", "balance.set",
        "balance.top_up", "prices.import"]
    page = (await writer.get(ACME)).text
    assert 'name="rate_limit" value="12.5"' in page and 'value="GB, DE"' in page
    removed = await writer.post("/console/billing/prices/account/acme/remove",
                                data={"csrf": token})
    assert removed.status_code == 200 and "No price list" in removed.text
    assert ("console:ops", "prices.remove", "account:acme") in await _console_changes(console)
    gone = await writer.post("/console/billing/prices/account/acme/remove", data={"csrf": token})
    assert gone.status_code == 404
