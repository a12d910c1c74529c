"""The admin API over real HTTP: who may call it, every endpoint, bad input, the audit log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.api._admin_models import (
    AdminAccount,
    AdminAccountCreated,
    AdminAccountList,
    AdminAudit,
    AdminConnectorList,
    AdminNumbers,
    AdminTableImport,
)
from herald.api._models import Problem
from herald.store import NumberTableKind, Priority

from .conftest import Served

EXAMPLES = Path(__file__).parents[2] / "examples"


def _fields(answer: httpx.Response) -> dict[str, str]:
    """A problem document's refused fields and their codes (checked against its model)."""
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    body = answer.json()
    Problem.model_validate(body)
    return {e["field"]: e["code"] for e in body.get("errors", [])}


# -- who may call it -------------------------------------------------------------------


async def test_only_admin_keys_open_the_admin_api(served: Served) -> None:
    anonymous = await served.client().get("/v1/admin/accounts")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Bearer realm="herald-admin"')
    # An account key is refused by its form (403), valid or not.
    assert (await served.client(served.account_key).get("/v1/admin/accounts")).status_code == 403
    assert (await served.client("hk_" + "a" * 12 + "_" + "b" * 40)
            .get("/v1/admin/accounts")).status_code == 403  # fmt: skip
    assert (await served.client("ha_nonsense").get("/v1/admin/accounts")).status_code == 401
    wrong = served.write_key[:-1] + ("x" if served.write_key[-1] != "x" else "y")
    assert (await served.client(wrong).get("/v1/admin/accounts")).status_code == 401
    assert (await served.admin_client.get("/v1/admin/accounts")).status_code == 200
    # ... and an admin key opens nothing else.
    sending = await served.client(served.write_key).get("/v1/messages")
    assert sending.status_code == 401


async def test_a_read_only_key_reads_and_changes_nothing(served: Served) -> None:
    reader = served.client(served.read_key)
    assert (await reader.get("/v1/admin/accounts/acme")).status_code == 200
    assert (await reader.get("/v1/admin/audit")).status_code == 200
    refused = await reader.post("/v1/admin/accounts/acme/disable")
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert not (await served.store.get_account_by_name("acme")).disabled


async def test_a_revoked_admin_key_is_refused_from_its_next_request(served: Served) -> None:
    client = served.admin_client
    assert (await client.get("/v1/admin/accounts")).status_code == 200  # verified, cached
    await served.admin.revoke_admin_key("cli:test", "ops")
    assert (await client.get("/v1/admin/accounts")).status_code == 401


# -- accounts ----------------------------------------------------------------------------


async def test_create_an_account_and_use_its_key(served: Served) -> None:
    client = served.admin_client
    answer = await client.post("/v1/admin/accounts", json={
        "name": "shop", "rate_limit": 25, "callback_url": "https://shop.example/hook",
        "callback_events": ["delivered", "undelivered"], "webhook_batch": 10,
        "webhook_batch_wait_ms": 250})  # fmt: skip
    assert answer.status_code == 201, answer.text
    created = AdminAccountCreated.model_validate(answer.json())
    served.secrets += [created.api_key, created.webhook_secret or "-"]
    assert created.webhook_secret and created.webhook_secret.startswith("whsec_")
    account = created.account
    assert (account.name, account.rate_limit, account.bind_limit) == ("shop", 25, 4)
    assert account.callback_events == "delivered,undelivered"
    assert (account.webhook_batch, account.webhook_batch_wait_ms) == (10, 250)
    assert [k.key_id for k in account.api_keys] == [created.api_key.split("_")[1]]
    sent = await served.client(created.api_key).get("/v1/messages")
    assert sent.status_code == 200
    listed = AdminAccountList.model_validate((await client.get("/v1/admin/accounts")).json())
    assert [a.name for a in listed.accounts] == ["acme", "shop"]
    again = await client.post("/v1/admin/accounts", json={"name": "shop"})
    assert again.status_code == 409 and again.json()["type"] == "urn:herald:problem:conflict"


async def test_bad_account_input_names_each_field(served: Served) -> None:
    client = served.admin_client
    assert _fields(await client.post("/v1/admin/accounts", json={"rate_limit": 5})) == {
        "name": "required"}
    assert _fields(await client.post("/v1/admin/accounts", json={"name": "no spaces"})) == {
        "name": "not_valid"}
    assert _fields(await client.post("/v1/admin/accounts", json={  # all at once, name too
        "name": "no spaces", "rate_limit": -3, "priority": "urgent"})) == {
        "name": "not_valid", "rate_limit": "out_of_range", "priority": "invalid_choice"}
    answer = await client.post("/v1/admin/accounts", json={
        "name": "shop", "rate_limit": -1, "bind_limit": "4", "callback_url": "ftp://x",
        "callback_events": ["seen"], "inbound": 1, "webhook_batch": 0,
        "webhook_batch_wait_ms": 10**9, "colour": "red",
        "inbound_url": "http://169.254.169.254/latest"})  # fmt: skip
    assert answer.status_code == 422
    assert _fields(answer) == {
        "rate_limit": "out_of_range", "bind_limit": "wrong_type", "callback_url": "invalid_url",
        "callback_events": "invalid_choice", "inbound": "wrong_type",
        "inbound_url": "private_address", "webhook_batch": "out_of_range",
        "webhook_batch_wait_ms": "out_of_range", "colour": "unknown_field",
    }
    assert answer.json()["errors"][0]["pointer"] == "/colour"
    assert await served.store.list_accounts() == (await served.store.get_account(1),)
    # The body itself
    malformed = await client.post("/v1/admin/accounts", content=b"{nope",
                                  headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert (await client.post("/v1/admin/accounts", content=b"name=x",
                              headers={"Content-Type": "text/plain"})).status_code == 415
    assert _fields(await client.post("/v1/admin/accounts", json=["shop"])) == {"": "wrong_type"}
    huge = await client.post("/v1/admin/accounts", json={"name": "x" * 70_000})
    assert huge.status_code == 413


async def test_change_settings_and_see_them(served: Served) -> None:
    client = served.admin_client
    answer = await client.patch("/v1/admin/accounts/acme", json={
        "rate_limit": "unlimited", "bind_limit": 9, "callback_events": "all",
        "callback_url": "https://acme.example/h", "inbound": False,
        "priority": "otp"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    view = AdminAccount.model_validate(answer.json())
    assert view.priority == "otp"
    assert (await served.store.get_account_by_name("acme")).priority is Priority.OTP
    assert (view.rate_limit, view.bind_limit, view.callback_events) == ("unlimited", 9, "all")
    assert (view.callback_url, view.inbound) == ("https://acme.example/h", False)
    stored = await served.store.get_account_by_name("acme")
    assert (stored.rate_limit, stored.bind_limit, stored.inbound_webhooks) == (
        float("inf"), 9, False)
    removed = await client.patch("/v1/admin/accounts/acme", json={"callback_url": None})
    assert removed.json()["callback_url"] is None
    assert _fields(await client.patch("/v1/admin/accounts/acme", json={
        "bind_limit": 1001, "rate_limit": "fast", "priority": "urgent"})) == {
        "bind_limit": "out_of_range", "rate_limit": "wrong_type",
        "priority": "invalid_choice"}  # fmt: skip
    default = await client.patch("/v1/admin/accounts/acme", json={"priority": None})
    assert default.json()["priority"] is None
    assert (await client.patch("/v1/admin/accounts/nobody", json={})).status_code == 404
    assert (await client.get("/v1/admin/accounts/nobody")).status_code == 404


async def test_disabling_applies_to_the_next_request(served: Served) -> None:
    customer = served.client(served.account_key)
    assert (await customer.get("/v1/messages")).status_code == 200  # account now cached
    disabled = await served.admin_client.post("/v1/admin/accounts/acme/disable")
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert (await customer.get("/v1/messages")).status_code == 401
    enabled = await served.admin_client.post("/v1/admin/accounts/acme/enable")
    assert enabled.json()["disabled"] is False
    assert (await customer.get("/v1/messages")).status_code == 200
    assert (await served.admin_client.post("/v1/admin/accounts/x/enable")).status_code == 404


# -- credentials -------------------------------------------------------------------------


async def test_issue_and_revoke_api_keys(served: Served) -> None:
    client = served.admin_client
    issued = await client.post("/v1/admin/accounts/acme/keys")
    assert issued.status_code == 201
    key, key_id = issued.json()["api_key"], issued.json()["key_id"]
    served.secrets.append(key)
    customer = served.client(key)
    assert (await customer.get("/v1/messages")).status_code == 200  # verified, cached
    assert (await client.delete(f"/v1/admin/accounts/shop/keys/{key_id}")).status_code == 404
    revoked = await client.delete(f"/v1/admin/accounts/acme/keys/{key_id}")
    assert revoked.status_code == 204
    assert (await customer.get("/v1/messages")).status_code == 401  # at once
    assert (await client.delete(f"/v1/admin/accounts/acme/keys/{key_id}")).status_code == 404
    view = (await client.get("/v1/admin/accounts/acme")).json()
    assert [k["revoked_at"] is not None for k in view["api_keys"]] == [False, True]
    assert (await served.client(served.account_key).get("/v1/messages")).status_code == 200


async def test_smpp_logins_are_added_reset_and_removed(served: Served) -> None:
    client = served.admin_client
    added = await client.post("/v1/admin/accounts/acme/smpp", json={"system_id": "acme01"})
    assert added.status_code == 201, added.text
    first = added.json()["password"]
    assert len(first) == 8
    principal = await served.accounts.authenticate_smpp("acme01", first, 0)
    assert principal.account_id == 1
    reset = await client.post("/v1/admin/accounts/acme/smpp/acme01/reset",
                              json={"password_length": 12})
    assert reset.status_code == 200, reset.text
    second = reset.json()["password"]
    served.secrets += [first, second]
    assert len(second) == 12
    assert (await served.accounts.authenticate_smpp("acme01", second, 1)).account_id == 1
    with pytest.raises(Exception, match="wrong password"):
        await served.accounts.authenticate_smpp("acme01", first, 2)
    assert (await client.post("/v1/admin/accounts/acme/smpp/acme01/reset")).status_code == 200
    assert (await client.delete("/v1/admin/accounts/acme/smpp/acme01")).status_code == 204
    assert await served.store.get_smpp_credential("acme01") is None
    assert (await client.delete("/v1/admin/accounts/acme/smpp/acme01")).status_code == 404


async def test_bad_smpp_input_names_the_field(served: Served) -> None:
    client = served.admin_client
    await client.post("/v1/admin/accounts/acme/smpp", json={"system_id": "taken"})
    assert _fields(await client.post("/v1/admin/accounts/acme/smpp", json={})) == {
        "system_id": "required"}
    assert _fields(await client.post("/v1/admin/accounts/acme/smpp", json={
        "system_id": "x" * 16})) == {"system_id": "not_valid"}
    assert _fields(await client.post("/v1/admin/accounts/acme/smpp", json={
        "system_id": "ok", "password_length": 4})) == {"password_length": "not_valid"}
    assert _fields(await client.post("/v1/admin/accounts/acme/smpp", json={
        "system_id": "ok", "password_length": "8"})) == {"password_length": "wrong_type"}
    assert _fields(await client.post("/v1/admin/accounts/acme/smpp/taken/reset", json={
        "password_length": 65})) == {"password_length": "out_of_range"}
    taken = await client.post("/v1/admin/accounts/acme/smpp", json={"system_id": "taken"})
    assert taken.status_code == 409
    assert (await client.post("/v1/admin/accounts/nobody/smpp",
                              json={"system_id": "z"})).status_code == 404
    assert (await client.post("/v1/admin/accounts/shop/smpp/taken/reset")).status_code == 404


# -- connectors, number tables -------------------------------------------------------------


async def test_connectors_with_their_binds(served: Served) -> None:
    answer = await served.client(served.read_key).get("/v1/admin/connectors")
    listed = AdminConnectorList.model_validate(answer.json())
    assert listed.reporting
    assert [(c.name, c.bound, c.binds, c.state, c.tps) for c in listed.connectors] == [
        ("eu-1", 1, 2, "partial", 50.0), ("eu-2", 1, 1, "up", "unlimited")]
    assert "password" not in answer.text


async def test_number_tables_are_imported_by_upload(served: Served) -> None:
    client = served.admin_client
    empty = AdminNumbers.model_validate((await client.get("/v1/admin/numbers")).json())
    assert (empty.generation, empty.tables) == (0, [])
    plan = (EXAMPLES / "numbering-plan.csv").read_bytes()
    answer = await client.put("/v1/admin/numbers/plan", content=plan,
                              headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    done = AdminTableImport.model_validate(answer.json())
    rows = [line for line in plan.decode().splitlines() if line and not line.startswith("#")]
    assert done.entries == len(rows) - 1 and done.generation == 1  # less the header
    status = AdminNumbers.model_validate((await client.get("/v1/admin/numbers")).json())
    assert [(t.table, t.entries, t.generation) for t in status.tables] == [
        ("plan", done.entries, 1)]
    assert status.in_use == 0  # this test's process never reloads
    assert (await client.delete("/v1/admin/numbers/plan")).status_code == 204
    assert (await client.delete("/v1/admin/numbers/plan")).status_code == 404


async def test_a_bad_table_file_is_refused_naming_its_lines(served: Served) -> None:
    client = served.admin_client
    bad = b"prefix,mcc,mnc,network\n4917,262,01,T\nabc,262,01,T\n4915,2620,01,T\n"
    answer = await client.put("/v1/admin/numbers/plan", content=bad,
                              headers={"Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert _fields(answer) == {"line 3": "invalid_line", "line 4": "invalid_line"}
    assert answer.json()["errors"][0]["in"] == "file"
    assert await served.store.get_number_table(NumberTableKind.PLAN) is None
    latin = await client.put("/v1/admin/numbers/ported", content=b"number,mcc,mnc\n\xff\n",
                             headers={"Content-Type": "text/csv"})
    assert _fields(latin) == {"line 2": "invalid_line"}
    assert (await client.put("/v1/admin/numbers/plan", json={})).status_code == 415
    assert (await client.put("/v1/admin/numbers/routes", content=b"",
                             headers={"Content-Type": "text/csv"})).status_code == 404


# -- the audit log -----------------------------------------------------------------------


async def _changes(served: Served) -> None:
    client = served.admin_client
    await client.post("/v1/admin/accounts", json={"name": "shop"})
    await client.patch("/v1/admin/accounts/shop", json={"rate_limit": 7})
    await client.post("/v1/admin/accounts/shop/disable")
    key = (await client.post("/v1/admin/accounts/shop/keys")).json()
    await client.delete(f"/v1/admin/accounts/shop/keys/{key['key_id']}")
    login = (await client.post("/v1/admin/accounts/shop/smpp", json={"system_id": "s1"})).json()
    reset = (await client.post("/v1/admin/accounts/shop/smpp/s1/reset")).json()
    await client.delete("/v1/admin/accounts/shop/smpp/s1")
    await client.put("/v1/admin/numbers/ported", content=b"number,mcc,mnc\n4917012345678,262,02\n",
                     headers={"Content-Type": "text/csv"})
    served.secrets += [key["api_key"], login["password"], reset["password"]]


async def test_every_api_change_is_in_the_audit_log(served: Served) -> None:
    await _changes(served)
    answer = await served.client(served.read_key).get("/v1/admin/audit")
    page = AdminAudit.model_validate(answer.json())
    mine = [(e.actor, e.action, e.target) for e in reversed(page.entries)
            if e.actor == "key:ops"]  # fmt: skip
    assert mine == [
        ("key:ops", "account.create", "account:shop"),
        ("key:ops", "account.update", "account:shop"),
        ("key:ops", "account.disable", "account:shop"),
        ("key:ops", "api_key.issue", "account:shop"),
        ("key:ops", "api_key.revoke", "account:shop"),
        ("key:ops", "smpp.add", "account:shop"),
        ("key:ops", "smpp.reset", "account:shop"),
        ("key:ops", "smpp.remove", "account:shop"),
        ("key:ops", "numbers.import", "numbers:ported"),
    ]
    by_action = {e.action: e.changes for e in page.entries}
    assert by_action["account.update"] == {"rate_limit": 7.0}
    assert by_action["smpp.reset"] == {"system_id": "s1", "password": "reset"}
    assert by_action["api_key.issue"]["api_key"] == "issued"
    assert by_action["numbers.import"] == {"entries": 1, "networks": 1, "generation": 1}


async def test_the_audit_log_is_filtered_and_paged(served: Served) -> None:
    await _changes(served)
    client = served.client(served.read_key)
    shop = (await client.get("/v1/admin/audit", params={"target": "account:shop"})).json()
    assert {e["target"] for e in shop["entries"]} == {"account:shop"}
    assert len(shop["entries"]) == 8
    everything: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):  # bounded
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/admin/audit", params=params)).json()
        everything += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs)) == 12
    newest = everything[0]["at"]
    recent = (await client.get("/v1/admin/audit", params={"since": newest})).json()
    assert recent["entries"] and all(e["at"] >= newest for e in recent["entries"])
    assert (await client.get("/v1/admin/audit", params={"since": "2999-01-01T00:00:00Z"})
            ).json()["entries"] == []  # fmt: skip
    prefixed = (await client.get("/v1/admin/audit", params={"target": "admin_key:*"})).json()
    assert {e["target"] for e in prefixed["entries"]} == {"admin_key:ops", "admin_key:monitor"}


async def test_bad_audit_queries_name_the_parameter(served: Served) -> None:
    client = served.client(served.read_key)
    for params, name in (({"since": "yesterday"}, "since"), ({"since": "nan"}, "since"),
                         ({"since": "2027-01-01T00:00"},
                         "since"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
                         ({"cursor": "-1"}, "cursor"), ({"target": "t" * 201}, "target")):
        answer = await client.get("/v1/admin/audit", params=params)
        assert answer.status_code == 422, params
        assert list(_fields(answer)) == [name]
        assert answer.json()["errors"][0]["in"] == "query"


async def test_no_secret_reaches_the_logs_or_the_audit_log(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    await _changes(served)
    await served.client(served.account_key).get("/v1/admin/accounts")  # refused: logged
    await served.client(served.write_key[:-2] + "zz").get("/v1/admin/accounts")  # logged
    assert "admin authentication failed" in caplog.text
    audit = json.dumps((await served.admin_client.get("/v1/admin/audit",
                                                      params={"limit": "1000"})).json())
    db = served.store.config.path
    with sqlite3.connect(db) as conn:
        stored = json.dumps(conn.execute("SELECT * FROM admin_audit").fetchall())
    assert len(served.secrets) >= 6
    for secret in served.secrets:
        tail = secret.rsplit("_", 1)[-1]  # a key's secret part, or a password
        for text in (caplog.text, audit, stored):
            assert tail not in text


async def test_the_admin_api_is_documented_with_its_own_security(served: Served) -> None:
    doc = (await served.client().get("/openapi.json")).json()
    admin_ops = {(path, method) for path, ops in doc["paths"].items() if "/v1/admin" in path
                 for method in ops}  # fmt: skip
    # 16, 5 of routing (docs/routing.md), 7 of controls and opt-outs, 9 of billing,
    # 4 of the pumping defence (docs/fraud.md), 4 of the overview and messages and
    # the route explainer (docs/console.md), 2 of the signaling guard (docs/guard.md)
    assert len(admin_ops) == 48
    for path, method in admin_ops:
        operation = doc["paths"][path][method]
        assert operation["security"] == [{"admin": []}], (path, method)
        assert "401" in operation["responses"] and "403" in operation["responses"]
    assert doc["components"]["securitySchemes"]["admin"]["scheme"] == "bearer"
    create = doc["paths"]["/v1/admin/accounts"]["post"]["requestBody"]
    schema = create["content"]["application/json"]["schema"]
    assert "name" in schema["required"] and "rate_limit" in schema["properties"]
    schemas = doc["components"]["schemas"]
    assert {"AdminAccount", "AdminAudit", "AdminConnectorList"} <= set(schemas)
