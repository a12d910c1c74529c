"""DELETE /v1/messages/{id} of a chain (docs/channels.md, "Cancelling a chain"):
legs not yet out are cancelled, a leg that went out is not recalled, no leg
starts after a cancel, and the customer hears the chain's end once."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.api.conftest import T0
from tests.channels.conftest import SECRET, SMS, TO, WA, Rig, sms_chain

from herald.channels import WHATSAPP_SCHEME
from herald.store import Status

HOOK = "https://example.com/hook"


async def _webhooks(rig: Rig) -> list[tuple[str, int]]:
    rows = await rig.store._readers.run(lambda c: c.execute(
        "SELECT subject_id, status FROM outbox ORDER BY id").fetchall())
    return [(r[0], r[1]) for r in rows]


async def test_a_chain_cancelled_before_its_first_leg_is_sent_sends_nothing(rig: Rig) -> None:
    answer = await rig.send(sms_chain(WA, SMS, callback_url=HOOK))
    chain_id = answer.json()["id"]
    cancelled = await rig.http.delete(f"/v1/messages/{chain_id}")
    assert cancelled.status_code == 200, cancelled.text
    view = cancelled.json()
    assert view["status"] == "cancelled"
    assert [leg["status"] for leg in view["legs"]] == ["rejected", "not_started"]
    assert view["legs"][0]["error"]["name"] == "cancelled"
    await rig.steps()
    assert rig.fake.answers == [] and await rig.sms_count() == 0  # nothing went out
    again = await rig.http.delete(f"/v1/messages/{chain_id}")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert await _webhooks(rig) == [(chain_id, int(Status.CANCELLED))]  # once


async def test_a_waiting_sms_leg_is_cancelled_with_its_chain(rig: Rig) -> None:
    rig.fake.reject(TO[1:], 131026)  # not on WhatsApp: the SMS leg starts
    chain_id = (await rig.send(sms_chain(WA, SMS, callback_url=HOOK))).json()["id"]
    await rig.steps(1)
    message_id = (await rig.chain(chain_id))["legs"][1]["message_id"]
    cancelled = await rig.http.delete(f"/v1/messages/{chain_id}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (await rig.store.get_message(message_id)).status is Status.CANCELLED
    await rig.steps()
    assert (await rig.chain(chain_id))["status"] == "cancelled"
    assert await _webhooks(rig) == [(chain_id, int(Status.CANCELLED))]  # the chain's only


@pytest.mark.parametrize(("then", "ends"), [("read", "delivered"), ("timer", "cancelled"),
                                            ("failed", "cancelled")])
async def test_a_leg_that_went_out_is_not_recalled_and_no_fallback_follows(
        rig: Rig, then: str, ends: str) -> None:
    rig.fake.config = replace(rig.fake.config, outcomes={"delivered": 1.0})
    chain_id = (await rig.send(sms_chain({**WA, "success": "read", "within": 60}, SMS,
                                         callback_url=HOOK))).json()["id"]
    await rig.steps()
    if then != "failed":
        await rig.fake.flush()  # sent, delivered: not read
    refused = await rig.http.delete(f"/v1/messages/{chain_id}")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"].endswith("cancel-too-late")
    assert problem["message_status"] == "sent" and "not recalled" in problem["detail"]
    if then == "timer":
        rig.clock.advance(61)
    else:
        wamid = next(iter(rig.fake.sent))
        status = {"id": wamid, "status": then, "recipient_id": TO[1:],
                  "timestamp": str(int(T0 + 30))}
        if then == "failed":
            status["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
        body = rig.fake.webhook_body([status])
        posted = await rig.http.post("/v1/channels/whatsapp/webhook", content=body, headers={
            WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(SECRET, body)})
        assert posted.status_code == 200
    await rig.steps()
    view = await rig.chain(chain_id)
    assert view["status"] == ends and view["legs"][1]["status"] == "not_started"
    assert await rig.sms_count() == 0  # the SMS fallback never started
    assert await _webhooks(rig) == [(chain_id, int(Status[ends.upper()]))]
    final = await rig.http.delete(f"/v1/messages/{chain_id}")
    assert final.status_code == (200 if ends == "cancelled" else 409)


async def test_a_cancel_by_reference_cancels_the_campaigns_chains_too(rig: Rig) -> None:
    """``DELETE /v1/messages?reference=``: every chain of the campaign is cancelled
    as ``DELETE /v1/messages/{id}`` cancels one (a waiting SMS leg with its
    chain), listed when it ended cancelled; a leg gone out is not recalled and
    no fallback follows it; other references are not touched."""
    gone = (await rig.send(sms_chain({**WA, "within": 60}, SMS, reference="spring",
                                     callback_url=HOOK))).json()["id"]
    await rig.steps()  # its WhatsApp leg went out; its timer waits
    other_to = "+14155552672"
    rig.fake.reject(other_to[1:], 131026)  # not on WhatsApp: its SMS leg starts, and waits
    waiting_sms = (await rig.send(sms_chain(WA, SMS, to=other_to, reference="spring",
                                            callback_url=HOOK))).json()["id"]
    await rig.steps(1)
    sms_id = (await rig.chain(waiting_sms))["legs"][1]["message_id"]
    assert sms_id is not None
    pending = (await rig.send(sms_chain(WA, SMS, reference="spring"))).json()["id"]
    plain = (await rig.send({"to": TO, "from": "ACME", "text": "Spring sale",
                             "reference": "spring"})).json()["id"]
    autumn = (await rig.send(sms_chain(WA, SMS, reference="autumn"))).json()["id"]
    sent_before = len(rig.fake.answers)

    answer = await rig.http.delete("/v1/messages", params={"reference": "spring"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"cancelled": [waiting_sms, pending, plain]}
    assert (await rig.store.get_message(sms_id)).status is Status.CANCELLED
    assert (await rig.chain(pending))["status"] == "cancelled"
    rig.clock.advance(61)  # the gone-out leg's timer fires: no SMS follows it
    await rig.steps()
    views = {c: await rig.chain(c) for c in (gone, waiting_sms, pending, autumn)}
    assert [views[c]["status"] for c in (gone, waiting_sms, pending)] == ["cancelled"] * 3
    assert views[gone]["legs"][1]["status"] == "not_started"
    assert views[pending]["legs"][0]["error"]["name"] == "cancelled"
    assert views[autumn]["status"] == "sent"  # another campaign: it went out
    assert len(rig.fake.answers) == sent_before + 1  # autumn's only: nothing of spring
    again = await rig.http.delete("/v1/messages", params={"reference": "spring"})
    assert again.json() == {"cancelled": []}
    assert sorted(await _webhooks(rig)) == sorted(
        [(gone, int(Status.CANCELLED)), (waiting_sms, int(Status.CANCELLED))])  # once each


async def test_cancelling_an_unknown_id_is_404(rig: Rig) -> None:
    chain_id = (await rig.send(sms_chain(WA, SMS))).json()["id"]
    other = chain_id[:-1] + ("0" if chain_id[-1] != "0" else "1")
    assert (await rig.http.delete(f"/v1/messages/{other}")).status_code == 404


# -- GET /v1/messages?type=chain: chains are listed apart from the SMS listing ------------------

async def test_chains_are_listed_with_type_chain_and_the_sms_listing_is_unchanged(
        rig: Rig) -> None:
    ids = [(await rig.send(sms_chain(WA, SMS, reference=f"r{n % 2}"))).json()["id"]
           for n in range(5)]
    first = await rig.http.get("/v1/messages", params={"type": "chain", "limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [c["id"] for c in page["messages"]] == ids[::-1][:2]
    assert all(c["type"] == "chain" for c in page["messages"])
    seen = [c["id"] for c in page["messages"]]
    for _ in range(5):  # bounded: 5 chains, 2 a page
        if page["next_cursor"] is None:
            break
        page = (await rig.http.get("/v1/messages", params={
            "type": "chain", "limit": 2, "cursor": page["next_cursor"]})).json()
        seen += [c["id"] for c in page["messages"]]
    assert seen == ids[::-1]
    filtered = await rig.http.get("/v1/messages", params={"type": "chain", "reference": "r1",
                                                          "to": TO})
    assert [c["id"] for c in filtered.json()["messages"]] == [ids[3], ids[1]]
    await rig.http.delete(f"/v1/messages/{ids[0]}")
    cancelled = await rig.http.get("/v1/messages", params={"type": "chain",
                                                           "status": "cancelled"})
    assert [c["id"] for c in cancelled.json()["messages"]] == [ids[0]]
    sms = await rig.http.get("/v1/messages")
    assert sms.status_code == 200 and sms.json()["messages"] == []  # SMS only, as before
    bad = await rig.http.get("/v1/messages", params={"type": "chain", "cursor": "0" * 26})
    assert bad.status_code == 400
    assert (await rig.http.get("/v1/messages", params={"type": "fax"})).status_code == 422
