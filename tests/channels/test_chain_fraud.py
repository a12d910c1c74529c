"""The pumping defence and chains (docs/channels.md, "Chains and the pumping defence")."""

from __future__ import annotations

from tests.channels.conftest import SMS, WA, Rig, sms_chain


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
