"""Account controls and opt-out lists through the admin API, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from herald.api._admin_models import (
    AdminAudit,
    AdminControls,
    AdminOptOutChanged,
    AdminOptOutImport,
    AdminOptOutList,
)
from herald.store import AccountControls

from .conftest import Served
from .test_admin_api import _fields

CONTROLS = "/v1/admin/accounts/acme/controls"
OPT_OUTS = "/v1/admin/accounts/acme/opt-outs"
US = "+14155552671"
DE = "+4915112345678"


def _message(to: str = US) -> dict[str, Any]:
    return {"to": to, "from": "ACME", "text": "Your code is 123456"}


async def _audit(served: Served, action: str) -> list[dict[str, Any]]:
    answer = await served.admin_client.get("/v1/admin/audit", params={"target": "account:acme"})
    page = AdminAudit.model_validate(answer.json())
    return [e.changes for e in reversed(page.entries) if e.action == action]


async def _opted_out(served: Served) -> list[str]:
    account = await served.store.get_account_by_name("acme")
    return [e.number for e in await served.store.list_opt_outs(account.id)]


# -- controls ----------------------------------------------------------------------------


async def test_read_and_change_every_control(served: Served) -> None:
    client = served.admin_client
    empty = AdminControls.model_validate((await client.get(CONTROLS)).json())
    assert (empty.daily_quota, empty.quota_unit, empty.countries) == (None, "messages", [])
    answer = await client.patch(CONTROLS, json={
        "daily_quota": 500, "quota_unit": "segments", "senders": ["ACME", " +49151*"],
        "sender_rules": ["US:numeric", "IN:registered"], "countries": ["de", "FR"],
        "api_allow": ["10.0.0.0/8"], "smpp_allow": ["192.0.2.0/24", "2001:db8::/32"]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    shown = AdminControls.model_validate(answer.json())
    assert shown.countries == ["DE", "FR"] and shown.senders == ["ACME", "+49151*"]
    account = await served.store.get_account_by_name("acme")
    assert await served.store.get_controls(account.id) == AccountControls(
        500, True, ("ACME", "+49151*"), ("US:numeric", "IN:registered"), ("DE", "FR"),
        ("10.0.0.0/8",), ("192.0.2.0/24", "2001:db8::/32"))
    # a list given replaces the list; the others stay; [] and null clear
    again = await client.patch(CONTROLS, json={"countries": [], "daily_quota": None})
    assert again.status_code == 200
    now = AdminControls.model_validate((await client.get(CONTROLS)).json())
    assert (now.countries, now.daily_quota, now.senders) == ([], None, ["ACME", "+49151*"])
    # recorded: the fields changed, as they now are
    assert await _audit(served, "account.controls") == [
        {"daily_quota": 500, "quota_segments": True, "senders": ["ACME", "+49151*"],
         "sender_rules": ["US:numeric", "IN:registered"], "countries": ["DE", "FR"],
         "api_networks": ["10.0.0.0/8"], "smpp_networks": ["192.0.2.0/24", "2001:db8::/32"]},
        {"daily_quota": None, "countries": []},
    ]  # fmt: skip
    # the same change again changes nothing and records nothing
    assert (await client.patch(CONTROLS, json={"countries": []})).status_code == 200
    assert len(await _audit(served, "account.controls")) == 2


async def test_bad_controls_name_each_field_and_entry(served: Served) -> None:
    client = served.admin_client
    answer = await client.patch(CONTROLS, json={
        "daily_quota": -1, "quota_unit": "bytes", "senders": "ACME",
        "countries": ["DE", "FR", "XX", " "], "sender_rules": ["DE:fancy"],
        "api_allow": ["10.0.0.0/33"], "smpp_allow": ["192.0.2.1", "x" * 65],
        "colour": 1})  # fmt: skip
    assert answer.status_code == 422
    assert _fields(answer) == {
        "daily_quota": "out_of_range", "quota_unit": "invalid_choice", "senders": "wrong_type",
        "countries[2]": "not_valid", "countries[3]": "not_valid",
        "sender_rules[0]": "not_valid", "api_allow[0]": "not_valid",
        "smpp_allow[1]": "too_long", "colour": "unknown_field",
    }  # fmt: skip
    errors = {e["field"]: e for e in answer.json()["errors"]}
    assert errors["countries[2]"]["pointer"] == "/countries/2"
    assert "'XX' is not a country code" in errors["countries[2]"]["detail"]  # the CLI's words
    assert _fields(await client.patch(CONTROLS, json={"daily_quota": "5"})) == {
        "daily_quota": "wrong_type"}
    assert _fields(await client.patch(CONTROLS, json={"senders": ["A" * 12]})) == {
        "senders[0]": "not_valid"}  # an alphanumeric sender has at most 11 characters
    assert _fields(await client.patch(CONTROLS, json={"countries": ["DE"] * 1001})) == {
        "countries": "too_long"}
    account = await served.store.get_account_by_name("acme")
    assert await served.store.get_controls(account.id) == AccountControls()  # nothing changed
    assert await _audit(served, "account.controls") == []
    assert (await client.get("/v1/admin/accounts/nobody/controls")).status_code == 404
    assert (await client.patch("/v1/admin/accounts/nobody/controls",
                               json={"countries": ["DE"]})).status_code == 404  # fmt: skip


async def test_a_control_changed_applies_to_the_next_message(served: Served) -> None:
    sender = served.client(served.account_key)
    assert (await sender.post("/v1/messages", json=_message())).status_code == 202
    changed = await served.admin_client.patch(CONTROLS, json={"countries": ["DE"]})
    assert changed.status_code == 200
    refused = await sender.post("/v1/messages", json=_message())  # no wait: the next request
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("to", "country_not_allowed")]
    assert (await sender.post("/v1/messages", json=_message(DE))).status_code == 202


# -- opt-outs ----------------------------------------------------------------------------


async def test_add_list_remove_opt_outs(served: Served) -> None:
    client = served.admin_client
    answer = await client.post(OPT_OUTS, json={"numbers": [DE, "+1 (415) 555-2671", DE]})
    assert answer.status_code == 200, answer.text
    assert AdminOptOutChanged.model_validate(answer.json()) == AdminOptOutChanged(
        numbers=3, changed=2)
    listed = AdminOptOutList.model_validate((await client.get(OPT_OUTS)).json())
    assert [(o.number, o.source) for o in listed.opt_outs] == [(US, "api"), (DE, "api")]
    assert listed.next_cursor is None
    assert (await client.delete(f"{OPT_OUTS}/{DE}")).status_code == 204
    assert await _opted_out(served) == ["14155552671"]
    assert (await client.delete(f"{OPT_OUTS}/{DE}")).status_code == 404  # not on the list
    # recorded with counts, never the numbers
    assert await _audit(served, "account.opt_outs") == [
        {"opted_out": 3, "changed": 2, "source": "api"},
        {"opted_in": 1, "changed": 1, "source": "api"},
    ]
    assert "15112345678" not in (await client.get("/v1/admin/audit")).text


async def test_opt_outs_come_in_pages(served: Served) -> None:
    client = served.admin_client
    numbers = [f"+4917000000{i:02d}" for i in range(7)]
    await client.post(OPT_OUTS, json={"numbers": numbers})
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):  # bounded
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = AdminOptOutList.model_validate((await client.get(OPT_OUTS, params=params)).json())
        seen += [o.number for o in page.opt_outs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == numbers
    for params in ({"limit": "0"}, {"limit": "10001"}, {"cursor": "+49"}, {"cursor": "abc"}):
        answer = await client.get(OPT_OUTS, params=params)
        assert answer.status_code == 422, params
        assert list(_fields(answer)) == [next(iter(params))]
        assert answer.json()["errors"][0]["in"] == "query"


async def test_bad_numbers_are_named_and_nothing_changes(served: Served) -> None:
    client = served.admin_client
    answer = await client.post(OPT_OUTS, json={"numbers": [DE, "ACME", 49151, "+" + "1" * 16]})
    assert _fields(answer) == {"numbers[1]": "not_valid", "numbers[2]": "not_valid",
                               "numbers[3]": "not_valid"}
    assert _fields(await client.post(OPT_OUTS, json={"numbers": DE})) == {
        "numbers": "wrong_type"}
    assert _fields(await client.post(OPT_OUTS, json={})) == {"numbers": "required"}
    removed = await client.delete(f"{OPT_OUTS}/ACME")
    assert _fields(removed) == {"number": "not_valid"}
    assert removed.json()["errors"][0]["in"] == "path"
    assert await _opted_out(served) == []
    assert await _audit(served, "account.opt_outs") == []
    assert (await client.post("/v1/admin/accounts/nobody/opt-outs",
                              json={"numbers": [DE]})).status_code == 404  # fmt: skip


async def test_import_and_export_opt_outs_as_csv(served: Served) -> None:
    client = served.admin_client
    csv_in = "\ufeffnumber,note\n+49 151 12345678,x\n\n33612345678\n+14155552671\n".encode()
    answer = await client.put(OPT_OUTS, content=csv_in, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert AdminOptOutImport.model_validate(answer.json()) == AdminOptOutImport(
        imported=3, changed=3)
    exported = await client.get(f"{OPT_OUTS}.csv")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0] == "number,opted_out_at,source"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "+14155552671", "+33612345678", "+4915112345678"]
    assert {line.split(",")[2] for line in lines[1:]} == {"import"}
    # the export imports back, as it is: nothing new
    again = await client.put(OPT_OUTS, content=exported.content,
                             headers={"Content-Type": "text/csv"})
    assert again.json() == {"imported": 3, "changed": 0}
    assert await _audit(served, "account.opt_outs") == [
        {"opted_out": 3, "changed": 3, "source": "import"}]  # the second changed nothing


async def test_a_bad_opt_out_file_is_refused_whole_naming_its_lines(served: Served) -> None:
    client = served.admin_client
    bad = b"number\n+4915112345678\nACME\n+33612345678\nnot a number\n"
    answer = await client.put(OPT_OUTS, content=bad, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert _fields(answer) == {"line 3": "invalid_line", "line 5": "invalid_line"}
    assert answer.json()["errors"][0]["in"] == "file"
    latin = await client.put(OPT_OUTS, content=b"+4915112345678\n\xff\n",
                             headers={"Content-Type": "text/csv"})
    assert _fields(latin) == {"line 2": "invalid_line"}
    assert (await client.put(OPT_OUTS, json={"numbers": [DE]})).status_code == 415
    assert await _opted_out(served) == []


async def test_an_opt_out_added_applies_to_the_next_message(served: Served) -> None:
    sender = served.client(served.account_key)
    assert (await sender.post("/v1/messages", json=_message())).status_code == 202
    await served.admin_client.post(OPT_OUTS, json={"numbers": [US]})
    refused = await sender.post("/v1/messages", json=_message())  # no wait: the next request
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("to", "opted_out")]
    assert (await served.admin_client.delete(f"{OPT_OUTS}/{US}")).status_code == 204
    assert (await sender.post("/v1/messages", json=_message())).status_code == 202


# -- who may change them ----------------------------------------------------------------


async def test_changes_need_a_writing_admin_key(served: Served) -> None:
    changes: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", CONTROLS, {"json": {"countries": ["DE"]}}),
        ("POST", OPT_OUTS, {"json": {"numbers": [DE]}}),
        ("PUT", OPT_OUTS, {"content": DE.encode(), "headers": {"Content-Type": "text/csv"}}),
        ("DELETE", f"{OPT_OUTS}/{DE}", {}),
    ]
    for key, expected in ((served.read_key, "read-only"), (served.account_key, "account")):
        client = served.client(key)
        for method, path, kwargs in changes:
            answer: httpx.Response = await client.request(method, path, **kwargs)
            assert answer.status_code == 403, (method, path)
            assert expected in answer.json()["detail"]
    reader = served.client(served.read_key)
    for path in (CONTROLS, OPT_OUTS, f"{OPT_OUTS}.csv"):
        assert (await reader.get(path)).status_code == 200, path
        assert (await served.client(served.account_key).get(path)).status_code == 403, path
    account = await served.store.get_account_by_name("acme")
    assert await served.store.get_controls(account.id) == AccountControls()
    assert await _opted_out(served) == []


async def test_the_endpoints_are_documented(served: Served) -> None:
    paths = (await served.client().get("/openapi.json")).json()["paths"]
    ops = {(path, method) for path, item in paths.items() for method in item
           if path.startswith("/v1/admin/accounts/{name}/")
           and ("controls" in path or "opt-outs" in path)}  # fmt: skip
    assert len(ops) == 7
    for path, method in ops:
        assert paths[path][method]["security"] == [{"admin": []}], (path, method)
    export = paths["/v1/admin/accounts/{name}/opt-outs.csv"]["get"]["responses"]["200"]
    assert list(export["content"]) == ["text/csv"]
    change = paths["/v1/admin/accounts/{name}/controls"]["patch"]["requestBody"]
    assert set(change["content"]["application/json"]["schema"]["properties"]) == {
        "daily_quota", "quota_unit", "senders", "sender_rules", "countries", "api_allow",
        "smpp_allow"}
    assert "text/csv" in paths["/v1/admin/accounts/{name}/opt-outs"]["put"]["requestBody"][
        "content"]
