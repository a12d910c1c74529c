"""The console's forms for changes the admin API offers: account settings (webhook
events, inbound webhooks) and controls (sender rules, allowed networks), the
balance and credit, price lists, the pumping defence's settings, the routing
rules and the number tables. Each needs the CSRF token and the admin role, is
recorded in the audit log, and refuses bad input by field with nothing changed."""

from __future__ import annotations

import httpx
import pytest

from herald.console._app import MAX_ROUTES_FORM_OCTETS, MAX_TABLE_FORM_OCTETS
from herald.store import AuditFilter

from .conftest import Console

ACME = "/console/accounts/acme"
#: A routes file (the test app's connectors are eu-1 and eu-2) and one with a rule
#: naming a connector herald.toml lacks.
ROUTES = ('[[rule]]\nname = "de-first"\ncountries = ["DE"]\nfailover = ["eu-1", "eu-2"]\n'
          '\n[[rule]]\nname = "rest"\nfailover = ["eu-2"]\n')
BAD_ROUTES = ROUTES.replace('failover = ["eu-2"]', 'failover = ["eu-9"]')
PLAN = "prefix,mcc,mnc,network\n4917,262,01,Telekom Deutschland\n447700,234,10,O2 UK\n"
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
    (f"{ACME}/settings", {"callback_events": "delivered, undelivered", "inbound": "true",
                          "inbound_url": "", "webhook_batch": "20",
                          "webhook_batch_wait_ms": "250"},
     {"callback_events": "delivered, soon", "inbound": "true"}, "callback_events"),
    (f"{ACME}/controls", {"sender_rules": "US:numeric, IN:registered"},
     {"sender_rules": "US:numeric XX:numeric"}, "sender_rules[1]"),
    (f"{ACME}/controls", {"api_allow": "203.0.113.0/24",
                          "smpp_allow": "198.51.100.7/32, 2001:db8::/32"},
     {"api_allow": "203.0.113.0/24", "smpp_allow": "198.51.100.300"}, "smpp_allow[0]"),
    ("/console/fraud/acme/otp", {"otp_messages": "true"}, {"otp_messages": "maybe"},
     "otp_messages"),
    ("/console/routes", {"routes": ROUTES}, {"routes": BAD_ROUTES}, "routes.rule[1]"),
    ("/console/numbers", {"table": "plan", "numbers": PLAN},
     {"table": "plan", "numbers": PLAN + "4x,262,01,Nowhere\n"}, "line 4"),
    # senders one a line: a name may hold a space or a comma (GSM 03.38 has both)
    (f"{ACME}/controls", {"senders": "My Shop\r\nA,B Ltd\r\n\r\nACME*\r\n"},
     {"senders": "My Shop\nMy Shop, Acme"}, "senders[1]"),
]
IDS = ["settings", "controls", "top-up", "balance", "prices", "fraud-lists", "webhooks",
       "sender-rules", "networks", "otp", "routes", "numbers", "senders"]


def _admin(console: Console) -> httpx.AsyncClient:
    return console.client(Authorization=f"Bearer {console.write_key}")


async def _state(console: Console) -> list[object]:
    """What the forms change, as the admin API answers it."""
    api = _admin(console)
    return [(await api.get(path)).json() for path in (
        "/v1/admin/accounts/acme", "/v1/admin/accounts/acme/controls",
        "/v1/admin/accounts/acme/balance", "/v1/admin/prices",
        "/v1/admin/accounts/acme/fraud", "/v1/admin/routes", "/v1/admin/numbers")]


async def _console_changes(console: Console) -> list[tuple[str, str, str]]:
    entries = await console.store.list_audit(AuditFilter(limit=100))
    return [(e.actor, e.action, e.target) for e in entries if e.actor.startswith("console:")]


@pytest.mark.parametrize(("path", "good", "bad", "field"), FORMS, ids=IDS)
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
    account, controls, balance, prices, fraud, routes, numbers = await _state(console)
    assert isinstance(account, dict) and account["rate_limit"] == 12.5
    assert account["bind_limit"] == 3 and account["priority"] is None
    assert account == {**account, "callback_events": "delivered,undelivered", "inbound": True,
                       "inbound_url": None, "webhook_batch": 20, "webhook_batch_wait_ms": 250}
    assert controls == {**controls, "daily_quota": 500, "quota_unit": "segments",
                        "countries": ["GB", "DE"], "senders": ["My Shop", "A,B Ltd", "ACME*"],
                        "sender_rules": ["US:numeric", "IN:registered"],
                        "api_allow": ["203.0.113.0/24"],
                        "smpp_allow": ["198.51.100.7/32", "2001:db8::/32"]}
    assert balance == {**balance, "balance": "25.500000", "credit_limit": "10.000000",
                       "available": "35.500000", "refund_policy": "undelivered", "billed": True}
    assert isinstance(prices, dict)
    assert [(p["side"], p["owner"], p["entries"]) for p in prices["price_lists"]] == [
        ("sell", "acme", 2)]
    assert isinstance(fraud, dict)
    assert (fraud["allow"], fraud["deny"], fraud["country_caps"], fraud["otp_messages"]) == (
        ["+4477"], ["+1415555", "+882"], {"NG": "0", "US": "2.50"}, True)
    assert isinstance(routes, dict) and routes["rules"] == ["de-first", "rest"]
    assert routes["source"] == "console:ops"
    assert isinstance(numbers, dict)
    assert [(t["table"], t["entries"]) for t in numbers["tables"]] == [("plan", 2)]
    assert sorted(a for _, a, _ in await _console_changes(console)) == [
        "account.controls", "account.controls", "account.controls", "account.controls",
        "account.fraud",
        "account.fraud", "account.update", "account.update", "balance.set", "balance.top_up",
        "numbers.import", "prices.import", "routes.import"]
    page = (await writer.get(ACME)).text
    assert 'name="rate_limit" value="12.5"' in page and 'value="GB, DE"' in page
    assert ">My Shop\nA,B Ltd\nACME*</textarea>" in page  # as entered, to edit
    removed = await writer.post("/console/billing/prices/account/acme/remove",
                                data={"csrf": token})
    assert removed.status_code == 200 and "No price list" in removed.text
    assert ("console:ops", "prices.remove", "account:acme") in await _console_changes(console)
    gone = await writer.post("/console/billing/prices/account/acme/remove", data={"csrf": token})
    assert gone.status_code == 404


async def test_the_routes_form_holds_the_file_in_force_and_removes_it(console: Console) -> None:
    api = _admin(console)
    put = await api.put("/v1/admin/routes", json={"routes": ROUTES, "source": "ops.toml"})
    assert put.status_code == 200, put.text
    writer, token = await console.signed_in(console.write_key)
    page = (await writer.get("/console/connectors")).text
    assert 'name = &#34;de-first&#34;' in page and "ops.toml" in page  # the file, to edit
    typo = ROUTES.replace('failover = ["eu-2"]', 'failover = "eu-2"')
    wrong = await writer.post("/console/routes", data={"csrf": token, "routes": typo})
    assert wrong.status_code == 422 and "routes.rule[1].failover:" in wrong.text
    assert 'failover = &#34;eu-2&#34;' in wrong.text  # what was given stays, to be corrected
    empty = await writer.post("/console/routes", data={"csrf": token, "routes": " \n"})
    assert empty.status_code == 422 and "routes: the routes file is empty" in empty.text
    assert (await api.get("/v1/admin/routes")).json()["source"] == "ops.toml"
    reader, read_token = await console.signed_in(console.read_key)
    refused = await reader.post("/console/routes/clear", data={"csrf": read_token})
    assert refused.status_code == 403
    cleared = await writer.post("/console/routes/clear", data={"csrf": token})
    assert cleared.status_code == 200 and "The routing rules are removed" in cleared.text
    routes = (await api.get("/v1/admin/routes")).json()
    assert (routes["source"], routes["rules"]) == (None, [])
    again = await writer.post("/console/routes/clear", data={"csrf": token})
    assert again.status_code == 404
    assert await _console_changes(console) == [("console:ops", "routes.clear", "routes")]


async def test_a_number_table_is_removed_and_the_forms_are_bounded(console: Console) -> None:
    writer, token = await console.signed_in(console.write_key)
    done = await writer.post("/console/numbers",
                             data={"csrf": token, "table": "plan", "numbers": PLAN})
    assert done.status_code == 200 and "The plan table is imported: 2 entries" in done.text
    other = await writer.post("/console/numbers",
                              data={"csrf": token, "table": "ranges", "numbers": PLAN})
    assert other.status_code == 422 and "table: must be plan or ported" in other.text
    huge = "4917,262,01,x\n" * (MAX_TABLE_FORM_OCTETS // 10)
    too_big = await writer.post("/console/numbers",
                                data={"csrf": token, "table": "ported", "numbers": huge})
    assert too_big.status_code == 413
    long_routes = "# padding\n" * (MAX_ROUTES_FORM_OCTETS // 8)
    assert (await writer.post("/console/routes", data={"csrf": token, "routes": long_routes})
            ).status_code == 413
    api = _admin(console)
    assert [t["table"] for t in (await api.get("/v1/admin/numbers")).json()["tables"]] == [
        "plan"]
    removed = await writer.post("/console/numbers/plan/remove", data={"csrf": token})
    assert removed.status_code == 200 and "The plan table is removed" in removed.text
    assert (await api.get("/v1/admin/numbers")).json()["tables"] == []
    assert (await writer.post("/console/numbers/plan/remove", data={"csrf": token})
            ).status_code == 404
    assert (await writer.post("/console/numbers/ranges/remove", data={"csrf": token})
            ).status_code == 404
    assert [a for _, a, _ in await _console_changes(console)] == [
        "numbers.clear", "numbers.import"]
