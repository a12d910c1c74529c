"""The pumping defence and chains (docs/channels.md, "Chains and the pumping defence")."""

from __future__ import annotations

from tests.channels.conftest import SMS, TO, WA, Rig, sms_chain

from herald.store import FraudAction


async def _deny_the_recipient(rig: Rig) -> None:
    answer = await rig.http.patch("/v1/fraud/settings", json={
        "deny": ["+1415555"], "otp_messages": True})
    assert answer.status_code == 200, answer.text


async def test_an_otp_sms_first_leg_is_screened_like_a_plain_otp_send(rig: Rig) -> None:
    await _deny_the_recipient(rig)
    refused = await rig.send(sms_chain(SMS, priority="otp", text="Your code is 4711"))
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"].endswith("fraud-blocked") and problem["reason"] == "deny_list"
    assert await rig.sms_count() == 0  # nothing stored, nothing charged
    chains = await rig.http.get("/v1/messages", params={"type": "chain"})
    assert chains.json()["messages"] == []
    ordinary = await rig.send(sms_chain(SMS, priority="transactional"))
    assert ordinary.status_code == 202, ordinary.text  # only OTP messages are asked


async def test_a_chain_that_starts_on_whatsapp_is_not_refused_at_intake(rig: Rig) -> None:
    await _deny_the_recipient(rig)
    answer = await rig.send(sms_chain(WA, SMS, priority="otp"))
    assert answer.status_code == 202, answer.text


async def test_a_fallback_otp_sms_leg_is_screened_when_it_starts(rig: Rig) -> None:
    await _deny_the_recipient(rig)
    rig.fake.reject(TO.removeprefix("+"), 131026)  # no WhatsApp: the chains fall back
    otp = await rig.send(sms_chain(WA, SMS, priority="otp", text="Your code is 4711"))
    assert otp.status_code == 202, otp.text
    await rig.steps()
    chain = await rig.chain(otp.json()["id"])
    assert chain["status"] == "failed"
    assert chain["legs"][0]["error"]["name"] == "not_on_channel"
    assert chain["legs"][1]["status"] == "rejected"
    assert chain["legs"][1]["error"]["name"] == "fraud_blocked"
    assert await rig.sms_count() == 0  # the blocked SMS was never stored nor charged
    (decision,) = await rig.store.list_fraud_decisions(rig.account_id)
    assert decision.action is FraudAction.BLOCK and decision.reasons[0].code == "deny_list"
    ordinary = await rig.send(sms_chain(WA, SMS, priority="transactional"))
    await rig.steps()
    assert (await rig.chain(ordinary.json()["id"]))["legs"][1]["message_id"] is not None
    assert await rig.sms_count() == 1  # only OTP messages are asked
