"""The console over real HTTP: sign-in, the session cookie, CSRF, roles, the audit
log, and each page showing what the admin API answers."""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import httpx
import pytest
import trustme

from herald.console import COOKIE, STATIC_DIR
from herald.console import _app as console_app
from herald.fraud import Action as FraudAction
from herald.fraud import Prices, Receipt
from herald.fraud import Request as FraudRequest
from herald.ids import SortableIdGenerator
from herald.store import AuditFilter, Charge, NewMessage, Source

from .conftest import Console, started


def _admin(console: Console, key: str | None = None) -> httpx.AsyncClient:
    return console.client(Authorization=f"Bearer {key or console.write_key}")


async def _send(console: Console, **fields: object) -> str:
    sender = console.client(Authorization=f"Bearer {console.account_key}")
    body = {"to": "+447911123456", "from": "herald", "text": "hello", **fields}
    answer = await sender.post("/v1/messages", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def _actions(console: Console) -> list[tuple[str, str, str]]:
    entries = await console.store.list_audit(AuditFilter(limit=100))
    return [(e.actor, e.action, e.target) for e in entries if e.actor.startswith("console:")]


# -- signing in ----------------------------------------------------------------------------


async def test_an_admin_key_signs_in_with_an_httponly_samesite_cookie(console: Console) -> None:
    client = console.client()
    answer = await client.post("/console/login", data={"key": console.write_key})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert console.write_key not in cookie  # the cookie names the key; it does not hold it
    page = await client.get("/console/")
    assert page.status_code == 200 and "ops" in page.text and ">admin<" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_over_tls_the_cookie_is_secure(tmp_path: Path) -> None:
    async with started(tmp_path / "data", tls=trustme.CA()) as console:
        answer = await console.client().post("/console/login", data={"key": console.write_key})
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"]


async def test_behind_a_local_tls_proxy_the_cookie_is_secure(console: Console) -> None:
    proxied = console.client(**{"X-Forwarded-Proto": "https"})  # from 127.0.0.1: trusted
    answer = await proxied.post("/console/login", data={"key": console.write_key})
    assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


async def test_a_wrong_key_and_an_account_key_do_not_sign_in(console: Console) -> None:
    client = console.client()
    wrong = console.write_key[:-4] + "AAAA"
    for key, code, says in ((wrong, 401, "not a valid admin key"),
                            ("", 401, "not a valid admin key"),
                            (console.account_key, 403, "account API keys")):  # fmt: skip
        answer = await client.post("/console/login", data={"key": key})
        assert answer.status_code == code, key
        assert says in answer.text
        assert "set-cookie" not in answer.headers
    assert (await client.get("/console/accounts")).status_code == 303


async def test_pages_without_a_session_send_to_the_sign_in(console: Console) -> None:
    client = console.client()
    for path in ("/console/", "/console/messages", "/console/accounts", "/console/audit"):
        answer = await client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
    live = await client.get("/console/overview/live", headers={"HX-Request": "true"})
    assert live.status_code == 401 and live.headers["hx-redirect"] == "/console/login"
    login = await client.get("/console/login")
    assert login.status_code == 200 and 'name="key"' in login.text


async def test_a_forged_or_altered_cookie_is_refused(console: Console) -> None:
    client, _ = await console.signed_in(console.write_key)
    value = client.cookies[COOKIE]
    key_id, expires, nonce, mac = value.split(".")
    for forged in (f"{key_id}.{int(expires) + 3600}.{nonce}.{mac}",  # a longer life
                   f"{key_id}.{expires}.{nonce}.{'0' * 64}"):  # fmt: skip
        other = console.client()
        other.cookies.set(COOKIE, forged, domain="127.0.0.1", path="/console")
        assert (await other.get("/console/accounts")).status_code == 303


async def test_revoking_the_key_ends_its_sessions(console: Console) -> None:
    client, _ = await console.signed_in(console.write_key)
    assert (await client.get("/console/accounts")).status_code == 200
    await console.admin.revoke_admin_key("cli:test", "ops")
    assert (await client.get("/console/accounts")).status_code == 303


async def test_signing_out_ends_the_session_even_if_the_cookie_is_replayed(
    console: Console,
) -> None:
    client, csrf = await console.signed_in(console.write_key)
    cookie = client.cookies[COOKIE]
    out = await client.post("/console/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    replay = console.client()
    replay.cookies.set(COOKIE, cookie, domain="127.0.0.1", path="/console")
    assert (await replay.get("/console/accounts")).status_code == 303


# -- CSRF, roles, audit --------------------------------------------------------------------


async def test_a_change_without_its_csrf_token_is_refused(console: Console) -> None:
    client, csrf = await console.signed_in(console.write_key)
    for data in ({}, {"csrf": "0" * 64}):
        answer = await client.post("/console/accounts/acme/disable", data=data)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert not (await console.store.get_account_by_name("acme")).disabled
    assert await _actions(console) == []
    # another session's token does not do either
    _, other = await console.signed_in(console.write_key)
    assert other != csrf
    refused = await client.post("/console/accounts/acme/disable", data={"csrf": other})
    assert refused.status_code == 403
    done = await client.post("/console/accounts/acme/disable", data={"csrf": csrf})
    assert done.status_code == 200 and "The account is disabled." in done.text
    assert (await console.store.get_account_by_name("acme")).disabled


async def test_htmx_sends_the_token_as_a_header(console: Console) -> None:
    client, csrf = await console.signed_in(console.write_key)
    answer = await client.post("/console/accounts/acme/disable", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200


async def test_read_only_sees_every_page_and_changes_nothing(console: Console) -> None:
    client, csrf = await console.signed_in(console.read_key)
    message = await _send(console)
    for path in ("/console/", "/console/accounts", "/console/accounts/acme",
                 "/console/connectors", f"/console/messages/{message}", "/console/audit"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert ">read-only<" in page.text
        assert "Disable" not in page.text and "Cancel this message" not in page.text, path
    for path in ("/console/accounts/acme/disable", f"/console/messages/{message}/cancel",
                 "/console/connectors/eu-1/disable", "/console/accounts/acme/keys"):
        answer = await client.post(path, data={"csrf": csrf})
        assert answer.status_code == 403 and "read-only" in answer.text, path
    assert not (await console.store.get_account_by_name("acme")).disabled
    assert (await console.store.get_message(message)).status.label == "accepted"
    assert await _actions(console) == []


async def test_each_change_is_recorded_as_the_console_user(console: Console) -> None:
    client, csrf = await console.signed_in(console.write_key)
    message = await _send(console)
    issued = await client.post("/console/accounts/acme/keys", data={"csrf": csrf})
    key = re.search(r'id="issued-key">(hk_[^<]+)<', issued.text)
    assert key is not None  # shown once, on the answer to the change
    key_id = key[1].split("_")[1]
    steps = [f"/console/accounts/acme/keys/{key_id}/revoke", "/console/accounts/acme/disable",
             "/console/accounts/acme/enable", "/console/connectors/eu-1/disable",
             "/console/connectors/eu-1/enable", f"/console/messages/{message}/cancel"]
    for path in steps:
        answer = await client.post(path, data={"csrf": csrf, "reason": "maintenance"})
        assert answer.status_code == 200, (path, answer.text)
    assert sorted(await _actions(console)) == sorted([
        ("console:ops", "api_key.issue", "account:acme"),
        ("console:ops", "api_key.revoke", "account:acme"),
        ("console:ops", "account.disable", "account:acme"),
        ("console:ops", "account.enable", "account:acme"),
        ("console:ops", "connector.disable", "connector:eu-1"),
        ("console:ops", "connector.enable", "connector:eu-1"),
        ("console:ops", "message.cancel", f"message:{message}"),
    ])  # fmt: skip
    disable = next(e for e in await console.store.list_audit(AuditFilter(limit=100))
                   if e.action == "connector.disable")  # fmt: skip
    assert disable.changes["reason"] == "maintenance"
    audit = await client.get("/console/audit")
    assert audit.text.count("console:ops") == 7
    assert key[1] not in audit.text  # the key itself is never recorded


# -- the pages show what the admin API answers -----------------------------------------------


async def test_the_accounts_pages_show_the_admin_apis_accounts(console: Console) -> None:
    client, _ = await console.signed_in(console.read_key)
    api = _admin(console)
    await api.post("/v1/admin/accounts/acme/balance/top-up", json={"amount": "12.50"})
    await api.post("/v1/admin/accounts", json={"name": "globex", "rate_limit": 7})
    accounts = (await api.get("/v1/admin/accounts")).json()["accounts"]
    page = await client.get("/console/accounts")
    for a in accounts:
        assert f'href="/console/accounts/{a["name"]}"' in page.text
        balance = (await api.get(f"/v1/admin/accounts/{a['name']}/balance")).json()
        assert f'<td class="num">{balance["balance"]}</td>' in page.text
    assert "12.500000" in page.text
    detail = await client.get("/console/accounts/acme")
    acme = accounts[0]
    assert isinstance(acme["inbound"], bool) and isinstance(acme["rate_limit"], float)
    # numbers and booleans as people write them: 100, not 100.0; yes, not True
    assert f"<dt>rate_limit</dt><dd>{acme['rate_limit']:g}</dd>" in detail.text
    writer, _ = await console.signed_in(console.write_key)  # the forms: the admin role's
    form = (await writer.get("/console/accounts/acme")).text
    assert f'name="rate_limit" value="{acme["rate_limit"]:g}"' in form
    assert f"<dt>inbound</dt><dd>{'yes' if acme['inbound'] else 'no'}</dd>" in detail.text
    for key in accounts[0]["api_keys"]:
        assert key["key_id"] in detail.text
    missing = await client.get("/console/accounts/nobody")
    assert missing.status_code == 404 and "no account named &#39;nobody&#39;" in missing.text


async def test_disabling_an_account_refuses_its_next_request(console: Console) -> None:
    client, csrf = await console.signed_in(console.write_key)
    await _send(console)
    answer = await client.post("/console/accounts/acme/disable", data={"csrf": csrf})
    assert 'id="account-state">disabled<' in answer.text
    refused = await console.client(Authorization=f"Bearer {console.account_key}").post(
        "/v1/messages", json={"to": "+447911123456", "from": "herald", "text": "again"})
    assert refused.status_code == 401
    assert (await _admin(console).get("/v1/admin/accounts/acme")).json()["disabled"] is True


async def test_the_connectors_page_shows_health_and_routing_state(console: Console) -> None:
    client, csrf = await console.signed_in(console.write_key)
    answer = await client.post("/console/connectors/eu-2/disable",
                               data={"csrf": csrf, "reason": "operator outage"})
    assert answer.status_code == 200
    api = (await _admin(console).get("/v1/admin/connectors")).json()["connectors"]
    routes = (await _admin(console).get("/v1/admin/routes")).json()
    states = {s["connector"]: s for s in routes["connectors"]}
    assert states["eu-2"]["disabled"] and states["eu-2"]["reason"] == "operator outage"
    page = (await client.get("/console/connectors")).text
    for c in api:  # eu-1: 1 of 2 binds up (partial); eu-2: none (down)
        assert f"{c['bound']} / {c['binds']}" in page
        assert f'state-{c["state"]}">{c["state"]}<' in page
    assert "disabled: operator outage" in page
    unknown = await client.post("/console/connectors/nope/disable", data={"csrf": csrf})
    assert unknown.status_code == 404


async def test_messages_are_found_by_id_number_reference_status_and_account(
    console: Console,
) -> None:
    client, _ = await console.signed_in(console.read_key)
    first = await _send(console, reference="spring")
    second = await _send(console, to="+33612345678")
    api = _admin(console)
    searches = {"id": first, "to": "+33612345678", "reference": "spring", "status": "accepted",
                "account": "acme"}  # fmt: skip
    for name, value in searches.items():
        listed = (await api.get("/v1/admin/messages", params={name: value})).json()["messages"]
        page = (await client.get("/console/messages", params={name: value})).text
        shown = re.findall(r'href="/console/messages/([0-9a-z]+)"', page)
        assert shown == [m["id"] for m in listed], name
    assert shown == [second, first]  # newest first
    none = await client.get("/console/messages", params={"reference": "autumn"})
    assert "No message matches." in none.text
    bad = await client.get("/console/messages", params={"status": "lost"})
    assert bad.status_code == 422 and "status" in bad.text


async def test_a_message_page_shows_its_timeline_and_cancels_it(console: Console) -> None:
    client, csrf = await console.signed_in(console.write_key)
    message = await _send(console)
    api = (await _admin(console).get(f"/v1/admin/messages/{message}")).json()
    page = await client.get(f"/console/messages/{message}")
    assert [e["event"] for e in api["timeline"]] == ["accepted"]
    assert api["timeline"][0]["at"] in page.text and "Cancel this message" in page.text
    assert "<dt>route</dt><dd>not routed yet</dd>" in page.text and "send at" not in page.text
    later = await _send(console, send_at=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                       time.gmtime(time.time() + 86400)))
    send_at = (await _admin(console).get(f"/v1/admin/messages/{later}")).json()["send_at"]
    scheduled = (await client.get(f"/console/messages/{later}")).text
    assert send_at and f"<dt>send at</dt><dd>{send_at}</dd>" in scheduled
    cancelled = await client.post(f"/console/messages/{message}/cancel", data={"csrf": csrf})
    assert cancelled.status_code == 200 and 'id="status" class="status status-cancelled"' \
        in cancelled.text
    assert (await console.store.get_message(message)).status.label == "cancelled"
    again = await _admin(console).post(f"/v1/admin/messages/{message}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    missing = await client.get("/console/messages/0000000000000000000000000x")
    assert missing.status_code == 404


async def test_the_overview_counts_what_is_accepted(console: Console) -> None:
    client, _ = await console.signed_in(console.read_key)
    before = (await _admin(console).get("/v1/admin/overview")).json()
    for _ in range(3):
        await _send(console)
    after = (await _admin(console).get("/v1/admin/overview")).json()
    assert after["totals"]["accepted"] == before["totals"]["accepted"] + 3
    live = (await client.get("/console/overview/live", headers={"HX-Request": "true"})).text
    total = re.search(r'id="total-accepted">(\d+)<', live)
    assert total is not None and int(total[1]) == after["totals"]["accepted"]
    assert [c["name"] for c in after["connectors"]] == ["eu-1", "eu-2"]
    assert after["binds_up"] == 1 and 'id="binds-up">1<' in live


# -- assets: no CDN ----------------------------------------------------------------------


async def test_docs_and_console_load_their_assets_from_herald(console: Console) -> None:
    client, _ = await console.signed_in(console.read_key)
    for path in ("/docs", "/console/"):
        page = (await client.get(path)).text
        sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
        assert sources, path
        for source in sources:
            assert source.startswith("/console/static/"), source
            assert (await client.get(source)).status_code == 200, source


def test_the_vendored_assets_are_the_pinned_ones() -> None:
    manifest = json.loads((STATIC_DIR / "vendor" / "ASSETS.json").read_text())
    for folder, package in manifest.items():
        for name, digest in package["files"].items():
            data = (STATIC_DIR / "vendor" / folder / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == digest, (folder, name)


async def test_the_route_explainer_answers_as_herald_routes_explain(console: Console) -> None:
    rules = ('[[rule]]\nname = "uk"\ncountries = ["GB"]\nfailover = ["eu-2", "eu-1"]\n'
             '[[rule]]\nname = "de"\ncountries = ["DE"]\nfailover = ["eu-1"]\n')
    api = _admin(console)
    assert (await api.put("/v1/admin/routes", json={"routes": rules})).status_code == 200
    asked = {"account": "acme", "to": "+442071234567"}
    reader = _admin(console, console.read_key)  # a read: a read-only key may ask
    answer = (await reader.post("/v1/admin/routes/explain", json=asked)).json()
    assert answer["decision"] == {"connectors": ["eu-2", "eu-1"], "rule": "uk"}
    assert [(r["rule"], r["matched"]) for r in answer["rules"]] == [("uk", True)]
    assert answer["country"] == "GB" and answer["priority"] == "transactional"
    client, _ = await console.signed_in(console.read_key)
    page = await client.get("/console/routes/explain", params=asked)
    assert 'id="decision">eu-2 &gt; eu-1 (by rule uk)<' in page.text
    germany = await client.get("/console/routes/explain",
                               params={"account": "acme", "to": "+4917012345678"})
    assert "eu-1 (by rule de)" in germany.text
    bad = await reader.post("/v1/admin/routes/explain", json={"to": "hello", "priority": "x"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"account", "priority"}
    nowhere = (await reader.post("/v1/admin/routes/explain",
                                 json={"account": "acme", "to": "+33612345678"})).json()
    assert nowhere["decision"] is None


async def test_the_fraud_page_shows_the_defence_as_the_admin_api(console: Console) -> None:
    api = _admin(console)
    fraud = "/v1/admin/accounts/acme/fraud"
    await api.patch(fraud, json={"deny": ["+1415555"], "country_caps": {"US": "2.50"}})
    customer = console.client(Authorization=f"Bearer {console.account_key}")
    refused = await customer.post("/v1/verifications", json={"to": "+14155552671"})
    assert refused.status_code == 403
    decisions = (await api.get(f"{fraud}/decisions")).json()["decisions"]
    reader, csrf = await console.signed_in(console.read_key)
    page = (await reader.get("/console/fraud", params={"account": "acme"})).text
    assert 'id="fraud-mode">enforce<' in page and "+1415555" in page and "US 2.50" in page
    for d in decisions:
        assert f"<td>{d['created_at']}</td><td>{d['action']}</td><td>{d['to']}</td>" in page
    assert "deny_list" in page and "Switch to" not in page  # read-only: no change offered
    assert (await reader.post("/console/fraud/acme/mode",
                              data={"csrf": csrf, "mode": "monitor"})).status_code == 403
    writer, token = await console.signed_in(console.write_key)
    switched = await writer.post("/console/fraud/acme/mode",
                                 data={"csrf": token, "mode": "monitor"})
    assert switched.status_code == 200 and 'id="fraud-mode">monitor<' in switched.text
    assert (await api.get(fraud)).json()["mode"] == "monitor"
    assert ("console:ops", "account.fraud", "account:acme") in await _actions(console)
    bad = await writer.post("/console/fraud/acme/mode", data={"csrf": token, "mode": "loud"})
    assert bad.status_code == 422 and "mode" in bad.text


async def test_the_blocks_in_force_are_shown_with_their_expiry(console: Console) -> None:
    api = _admin(console)
    blocks = "/v1/admin/accounts/acme/fraud/blocks"
    assert (await api.get(blocks)).json() == {"blocks": []}
    assert (await api.get("/v1/admin/accounts/nobody/fraud/blocks")).status_code == 404
    # the account's engine (in the process that screens its SMS) fed a pumped number
    assert console.defence is not None
    account = await console.admin.account("acme")
    engine = console.defence._engine(account.id)
    engine.prices = Prices("USD", {"ER": 0.38}, {"65702": 0.95})  # a costly destination
    start = int(time.time() * 1000) - 3_600_000
    for i in range(4):
        ts = start + i * 1_200_000
        decided = engine.request(FraudRequest(f"r{i}", ts, "acme", "signup", "+2917150001",
                                              "ER", "65702"))
        if decided.action is FraudAction.ALLOW:
            engine.receipt(Receipt(f"r{i}", ts + 2000, "DELIVRD"))
    found = (await api.get(blocks)).json()["blocks"]
    assert [(b["cell"], b["kind"]) for b in found] == [("number:+2917150001", "throttle")]
    reader, _ = await console.signed_in(console.read_key)
    page = (await reader.get("/console/fraud", params={"account": "acme"})).text
    assert (f"<td>number:+2917150001</td><td>throttle</td><td>{found[0]['until']}</td>"
            in page)


async def test_smpp_logins_and_the_opt_out_list_are_managed_and_recorded(
    console: Console,
) -> None:
    client, csrf = await console.signed_in(console.write_key)
    added = await client.post("/console/accounts/acme/smpp",
                              data={"csrf": csrf, "system_id": "acme1"})
    first = re.search(r'id="issued-password">([^<]+)<', added.text)
    assert added.status_code == 200 and first is not None  # shown once
    reset = await client.post("/console/accounts/acme/smpp/acme1/reset", data={"csrf": csrf})
    second = re.search(r'id="issued-password">([^<]+)<', reset.text)
    assert second is not None and second[1] != first[1]
    taken = await client.post("/console/accounts/acme/smpp",
                              data={"csrf": csrf, "system_id": "acme1"})
    assert taken.status_code == 409
    logins = (await _admin(console).get("/v1/admin/accounts/acme")).json()["smpp_logins"]
    assert [x["system_id"] for x in logins] == ["acme1"]
    removed = await client.post("/console/accounts/acme/smpp/acme1/remove", data={"csrf": csrf})
    assert removed.status_code == 200 and "acme1 removed" in removed.text
    out = await client.post("/console/accounts/acme/opt-out",
                            data={"csrf": csrf, "number": "+44 7911 123456"})
    assert '<p id="opt-outs"><code>+447911123456</code>' in out.text
    listed = (await _admin(console).get("/v1/admin/accounts/acme/opt-outs")).json()
    assert [e["number"] for e in listed["opt_outs"]] == ["+447911123456"]
    bad = await client.post("/console/accounts/acme/opt-out", data={"csrf": csrf, "number": "x"})
    assert bad.status_code == 422
    back = await client.post("/console/accounts/acme/opt-in",
                             data={"csrf": csrf, "number": "+447911123456"})
    assert '<p id="opt-outs">none' in back.text
    assert [a for _, a, _ in await _actions(console)] == [
        "account.opt_outs", "account.opt_outs", "smpp.remove", "smpp.reset", "smpp.add"]
    audit = await client.get("/console/audit", params={"target": "account:acme"})
    assert audit.text.count("console:ops") == 5
    assert first[1] not in audit.text and second[1] not in audit.text
    none = await client.get("/console/audit", params={"target": "connector:*"})
    assert "console:ops" not in none.text


async def test_a_message_page_shows_what_it_was_charged(console: Console) -> None:
    api = _admin(console)
    await api.post("/v1/admin/accounts/acme/balance/top-up", json={"amount": "10"})
    acme = await console.store.get_account_by_name("acme")
    ids, now = SortableIdGenerator(), time.time()
    batch = [NewMessage(id=ids.new_id(now), account_id=acme.id, source=Source.HTTP,
                        to=f"4917012345{n}", sender="ACME", body=b"hi", encoding="gsm7",
                        data_coding=0, segments=1, accepted_at=now, expires_at=now + 3600)
             for n in range(3)]  # one batch: one acceptance time  # fmt: skip
    await console.store.accept(batch, charges=[
        Charge("49", "26201", "26201", 40_000 + n) for n in range(3)])
    middle = (await api.get(f"/v1/admin/messages/{batch[1].id}")).json()
    assert middle["charge"] == {"sell": "0.040001", "refunded": "0.000000",
                                "priced_by": "26201", "country": "49", "network": "26201",
                                "connector": None, "buy": None}  # fmt: skip
    client, _ = await console.signed_in(console.read_key)
    page = await client.get(f"/console/messages/{batch[1].id}")
    assert "<strong>charged</strong> 0.040001 (price entry 26201)" in page.text
    uncharged = await _send(console)  # this app prices nothing
    assert (await api.get(f"/v1/admin/messages/{uncharged}")).json()["charge"] is None


async def test_the_accounts_list_comes_in_pages(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_app, "ACCOUNTS_PAGE", 1)
    await _admin(console).post("/v1/admin/accounts", json={"name": "globex"})
    client, _ = await console.signed_in(console.read_key)
    first = (await client.get("/console/accounts")).text
    second = (await client.get("/console/accounts", params={"page": "2"})).text
    assert "2 accounts, page 1 of 2" in first and 'href="/console/accounts/acme"' in first
    assert 'href="/console/accounts/globex"' not in first
    assert 'href="/console/accounts/globex"' in second and "previous" in second


async def test_the_billing_page_shows_the_admin_apis_margins_and_price_lists(
    console: Console,
) -> None:
    api = _admin(console)
    await api.post("/v1/admin/accounts/acme/balance/top-up", json={"amount": "10"})
    await api.put("/v1/admin/prices/account/acme", content=b"destination,price\n+49,0.04\n",
                  headers={"Content-Type": "text/csv"})
    acme = await console.store.get_account_by_name("acme")
    ids, now = SortableIdGenerator(), time.time()
    await console.store.accept([NewMessage(
        id=ids.new_id(now), account_id=acme.id, source=Source.HTTP, to=f"4917012345{n}",
        sender="ACME", body=b"hi", encoding="gsm7", data_coding=0, segments=1,
        accepted_at=now, expires_at=now + 3600) for n in range(3)],
        charges=[Charge("49", None, "+49", 40_000) for _ in range(3)])  # fmt: skip
    client, _ = await console.signed_in(console.read_key)
    shell = (await client.get("/console/billing", params={"by": "account", "days": "1"})).text
    # the page comes at once; its sums (every CDR of the period) follow by htmx
    assert 'hx-get="/console/billing/margins?by=account&amp;days=1"' in shell
    assert 'id="margins"' not in shell and "<td>sell</td><td>acme</td>" in shell
    part = await client.get("/console/billing/margins", params={"by": "account", "days": "1"},
                            headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text and 'id="margins"' in part.text
    page = (await client.get("/console/billing/margins", params={"by": "account",
                                                                  "days": "1"})).text
    assert "<html" in page  # without htmx: the whole page, with the sums
    period = re.search(r"Spend and margin, (\S+) to (\S+)</h2>", page)
    assert period is not None
    margins = (await api.get("/v1/admin/margins", params={
        "from": period[1], "to": period[2], "by": "account"})).json()
    assert [r["key"] for r in margins["rows"]] == ["acme"]
    for row in (*margins["rows"], margins["total"]):
        assert (f'<td>{row["key"]}</td><td class="num">{row["messages"]}</td>'
                f'<td class="num">{row["revenue"]}</td>') in page
    assert "0.120000" in page
    assert "<td>sell</td><td>acme</td>" in page
    for path in ("/console/billing", "/console/billing/margins"):
        bad = await client.get(path, params={"by": "colour"})
        assert bad.status_code == 422 and "by: must be one of" in bad.text


async def test_an_accounts_spend_and_margin_on_its_page_and_the_billing_page(
    console: Console,
) -> None:
    api = _admin(console)
    await api.post("/v1/admin/accounts", json={"name": "globex"})
    ids, now = SortableIdGenerator(), time.time()
    for name, count in (("acme", 3), ("globex", 2)):
        await api.post(f"/v1/admin/accounts/{name}/balance/top-up", json={"amount": "10"})
        await api.put(f"/v1/admin/prices/account/{name}", content=b"destination,price\n+49,0.04\n",
                      headers={"Content-Type": "text/csv"})
        account = await console.store.get_account_by_name(name)
        await console.store.accept([NewMessage(
            id=ids.new_id(now), account_id=account.id, source=Source.HTTP,
            to=f"4917012345{n}", sender="ACME", body=b"hi", encoding="gsm7", data_coding=0,
            segments=1, accepted_at=now, expires_at=now + 3600) for n in range(count)],
            charges=[Charge("49", None, "+49", 40_000) for _ in range(count)])  # fmt: skip
    client, _ = await console.signed_in(console.read_key)
    page = (await client.get("/console/accounts/globex")).text
    # the account page loads its own sums after it (by country, the last day)
    assert 'hx-get="/console/billing/margins?account=globex&amp;by=country&amp;days=1"' in page
    part = (await client.get("/console/billing/margins", headers={"HX-Request": "true"},
                             params={"account": "globex", "by": "country", "days": "1"})).text
    assert "Spend and margin of globex" in part
    assert '<td>+49</td><td class="num">2</td><td class="num">0.080000</td>' in part
    everyone = (await client.get("/console/billing/margins", headers={"HX-Request": "true"},
                                 params={"by": "country", "days": "1"})).text
    assert '<td>+49</td><td class="num">5</td><td class="num">0.200000</td>' in everyone
    shell = (await client.get("/console/billing", params={"account": "globex"})).text
    assert 'hx-get="/console/billing/margins?by=account&amp;days=1&amp;account=globex"' in shell
    assert "<option selected>globex</option>" in shell
    missing = await client.get("/console/billing/margins", params={"account": "initech"})
    assert missing.status_code == 404 and "initech" in missing.text
