"""Verify through WhatsApp (issue 14 with issue 9): an authentication template
carries the code; the SMS goes only if WhatsApp does not deliver it in time,
and either code checks (docs/verify.md, "WhatsApp")."""

from __future__ import annotations

from tests.api.conftest import T0
from tests.channels.conftest import TO, Rig

from herald.store import Status


async def _start(rig: Rig, **fields: object) -> dict[str, object]:
    answer = await rig.http.post("/v1/verifications", json={
        "to": TO, "channel": "whatsapp", "template": {"name": "login_code", "language": "en"},
        **fields})
    assert answer.status_code == 201, answer.text
    result: dict[str, object] = answer.json()
    return result


async def _code(rig: Rig) -> str:
    (sent,) = rig.fake.sent.values()
    return str(sent.body["template"]["components"][0]["parameters"][0]["text"])


async def test_the_code_goes_by_whatsapp_and_checks(rig: Rig) -> None:
    v = await _start(rig)
    assert v["channel"] == "whatsapp"
    await rig.steps()
    sent = next(iter(rig.fake.sent.values()))
    assert (sent.kind, sent.body["template"]["name"]) == ("template", "login_code")
    code = await _code(rig)
    await rig.fake.flush()  # read: delivered within 30 s
    rig.clock.now = T0 + 60
    await rig.steps()
    assert await rig.sms_count() == 0  # no SMS was needed
    check = await rig.http.post(f"/v1/verifications/{v['id']}/check", json={"code": code})
    assert check.json()["status"] == "approved", check.text
    got = (await rig.http.get(f"/v1/verifications/{v['id']}")).json()
    assert got["channel"] == "whatsapp"
    chain = await rig.chain(got["messages"][0])
    assert chain["delivered_by"] == 0
    # The chain is final: the housekeeping purge erases the code its legs held.
    chain_id = str(got["messages"][0])
    assert code in (await rig.store.chain_leg_content(chain_id, 0) or "")
    assert await rig.store.purge(T0 + 61, parked_before=T0, dead_before=T0) >= 2
    assert code not in (await rig.store.chain_leg_content(chain_id, 0) or "")
    sms = await rig.store.chain_leg_sms(chain_id, 1)  # the fallback never needed
    assert sms is not None and code.encode() not in sms.body


async def test_the_sms_goes_when_whatsapp_does_not_deliver_in_time(rig: Rig) -> None:
    v = await _start(rig, within=20)
    await rig.steps()  # accepted by WhatsApp; no status comes
    code = await _code(rig)
    rig.clock.now = T0 + 21
    await rig.steps()
    assert await rig.sms_count() == 1
    chain = await rig.chain(
        (await rig.http.get(f"/v1/verifications/{v['id']}")).json()["messages"][0])
    sms = await rig.store.get_message(chain["legs"][1]["message_id"])
    assert sms.status is Status.ACCEPTED and code.encode() in sms.body  # the same code
    check = await rig.http.post(f"/v1/verifications/{v['id']}/check", json={"code": code})
    assert check.json()["status"] == "approved", check.text


async def test_whatsapp_verification_needs_an_authentication_template(rig: Rig) -> None:
    answer = await rig.http.post("/v1/verifications", json={"to": TO, "channel": "whatsapp"})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["template"]
    assert (await rig.http.post("/v1/templates", json={
        "name": "order_update", "language": "en", "category": "utility",
        "body": "Order {{1}}", "examples": ["A-1"]})).status_code == 201
    rig.fake.review("order_update", "en", "APPROVED")
    await rig.fake.template_update("order_update", "en")
    utility = await rig.http.post("/v1/verifications", json={
        "to": TO, "channel": "whatsapp", "template": {"name": "order_update", "language": "en"}})
    assert utility.status_code == 422, utility.text
    assert utility.json()["errors"][0]["code"] == "template_not_approved"
    assert rig.fake.answers == []  # no send reached the provider


async def test_a_resend_goes_by_whatsapp_again_and_stops_the_earlier_fallback(rig: Rig) -> None:
    v = await _start(rig, within=20)
    await rig.steps()  # accepted by WhatsApp; no status comes
    first_code = await _code(rig)
    resent = await rig.http.post(f"/v1/verifications/{v['id']}/resend")
    assert resent.status_code == 200, resent.text
    assert resent.json()["channel"] == "whatsapp"
    await rig.steps()
    assert [s.body["template"]["name"] for s in rig.fake.sent.values()] == ["login_code"] * 2
    codes = [str(s.body["template"]["components"][0]["parameters"][0]["text"])
             for s in rig.fake.sent.values()]
    assert codes[0] == first_code and codes[1] != first_code
    assert await rig.sms_count() == 0  # nothing by SMS yet: both wait on WhatsApp
    rig.clock.now = T0 + 21
    await rig.steps()
    assert await rig.sms_count() == 1  # the resend's fallback only; the earlier one cancelled
    got = (await rig.http.get(f"/v1/verifications/{v['id']}")).json()
    first, second = [await rig.chain(m) for m in got["messages"]]
    assert (first["status"], first["legs"][1]["status"]) == ("cancelled", "not_started")
    sms = await rig.store.get_message(second["legs"][1]["message_id"])
    assert codes[1].encode() in sms.body
    old = await rig.http.post(f"/v1/verifications/{v['id']}/check", json={"code": codes[0]})
    assert old.json()["status"] == "pending", old.text
    check = await rig.http.post(f"/v1/verifications/{v['id']}/check", json={"code": codes[1]})
    assert check.json()["status"] == "approved", check.text
