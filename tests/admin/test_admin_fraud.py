"""The pumping defence's settings and decisions through the admin API, over real
HTTP (docs/fraud.md, "Live"); a change is audited and reaches the customer API."""

from __future__ import annotations

from .conftest import Served
from .test_admin_controls import _audit

FRAUD = "/v1/admin/accounts/acme/fraud"


async def test_read_change_and_audit_the_defence_settings(served: Served) -> None:
    client = served.admin_client
    assert (await client.get(FRAUD)).json() == {
        "mode": "enforce", "otp_messages": False, "allow": [], "deny": [], "country_caps": {}}
    answer = await client.patch(FRAUD, json={"mode": "monitor", "deny": ["+1415555"],
                                             "country_caps": {"US": "2.50"}})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["country_caps"] == {"US": "2.50"}
    assert await _audit(served, "account.fraud") == [
        {"mode": "monitor", "deny": ["+1415555"], "country_caps": {"US": "2.50"}}]
    # the customer sees it, and its deny list refuses a verification (monitor or not)
    customer = served.client(served.account_key)
    assert (await customer.get("/v1/fraud/settings")).json()["mode"] == "monitor"
    refused = await customer.post("/v1/verifications", json={"to": "+14155552671"})
    assert refused.status_code == 403, refused.text
    listed = (await client.get(f"{FRAUD}/decisions")).json()["decisions"]
    assert [(d["action"], d["reasons"][0]["code"]) for d in listed] == [("block", "deny_list")]
    bad = await client.patch(FRAUD, json={"deny": ["4477"], "mode": "loud"})
    assert bad.status_code == 422
    assert sorted(e["field"] for e in bad.json()["errors"]) == ["deny[0]", "mode"]
    assert (await client.get("/v1/admin/accounts/nobody/fraud")).status_code == 404
    read_only = served.client(served.read_key)
    assert (await read_only.patch(FRAUD, json={"mode": "enforce"})).status_code == 403
