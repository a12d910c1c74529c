"""The admin API's overview, message search, message timeline and cancel, over real HTTP."""

from __future__ import annotations

import time

from herald.store import AuditFilter

from .conftest import Served


async def _send(served: Served, **fields: object) -> str:
    client = served.client(served.account_key)
    body = {"to": "+447911123456", "from": "herald", "text": "secret code 1234", **fields}
    answer = await client.post("/v1/messages", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


async def test_search_filters_and_pages(served: Served) -> None:
    ids = [await _send(served, reference=f"r{n % 2}") for n in range(5)]
    api = served.admin_client
    page = (await api.get("/v1/admin/messages", params={"account": "acme", "limit": 2})).json()
    assert [m["id"] for m in page["messages"]] == ids[::-1][:2]
    assert all(m["account"] == "acme" for m in page["messages"])
    rest = (await api.get("/v1/admin/messages", params={
        "account": "acme", "limit": 10, "cursor": page["next_cursor"]})).json()
    assert [m["id"] for m in rest["messages"]] == ids[::-1][2:] and rest["next_cursor"] is None
    by_ref = (await api.get("/v1/admin/messages", params={"reference": "r1"})).json()
    assert [m["id"] for m in by_ref["messages"]] == [ids[3], ids[1]]
    later = (await api.get("/v1/admin/messages", params={"since": time.time() + 60})).json()
    assert later["messages"] == []
    assert "text" not in page["messages"][0] and "secret" not in str(page)  # never the body


async def test_search_refuses_bad_parameters_by_name(served: Served) -> None:
    api = served.admin_client
    for params, field in (({"status": "lost"}, "status"), ({"limit": "0"}, "limit"),
                          ({"until": "yesterday"}, "until"), ({"to": "abc"}, "to")):
        answer = await api.get("/v1/admin/messages", params=params)
        assert answer.status_code == 422, params
        assert answer.json()["errors"][0]["field"] == field
    missing = await api.get("/v1/admin/messages", params={"account": "nobody"})
    assert missing.status_code == 404


async def test_cancel_is_recorded_and_refused_to_read_only_keys(served: Served) -> None:
    message = await _send(served)
    refused = await served.client(served.read_key).post(f"/v1/admin/messages/{message}/cancel")
    assert refused.status_code == 403
    done = await served.admin_client.post(f"/v1/admin/messages/{message}/cancel")
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    assert [e["event"] for e in done.json()["timeline"]] == ["accepted", "cancelled"]
    entries = await served.store.list_audit(AuditFilter(target=f"message:{message}"))
    assert [(e.actor, e.action, e.changes["account"]) for e in entries] == [
        ("key:ops", "message.cancel", "acme")]
    again = await served.admin_client.post(f"/v1/admin/messages/{message}/cancel")
    assert again.status_code == 200  # cancelled already: the same answer, not recorded again
    assert len(await served.store.list_audit(AuditFilter(target=f"message:{message}"))) == 1
    missing = await served.admin_client.post("/v1/admin/messages/nope/cancel")
    assert missing.status_code == 404


async def test_a_message_gone_out_cannot_be_cancelled(served: Served) -> None:
    message = await _send(served)
    claimed = await served.store.claim(10, time.time(), 60.0)  # dispatch holds it now
    assert [m.id for m in claimed] == [message]
    answer = await served.admin_client.post(f"/v1/admin/messages/{message}/cancel")
    assert answer.status_code == 409 and answer.json()["message_status"] == "queued"
    assert await served.store.list_audit(AuditFilter(target=f"message:{message}")) == ()


async def test_the_overview_counts_and_lists_connectors(served: Served) -> None:
    await _send(served)
    overview = (await served.client(served.read_key).get("/v1/admin/overview")).json()
    assert overview["totals"]["accepted"] >= 1
    assert set(overview["per_second"]) == {"accepted", "sent", "delivered", "failed"}
    assert [(c["name"], c["state"], c["bound"]) for c in overview["connectors"]] == [
        ("eu-1", "partial", 1), ("eu-2", "up", 1)]
    assert overview["binds_up"] == 2
    assert set(overview["backlog"]) == {"unsent", "due", "webhooks", "smpp_events"}
