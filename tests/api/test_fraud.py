"""The pumping defence, live, over the app (docs/fraud.md, "Live"): every
verification SMS is screened; a block is a 403 naming its reason, never sent
or charged; every decision is recorded and readable; monitor mode; the
account's allow and deny lists and per-country ceilings; OTP messages when
enabled; receipts and conversions teach the engine; a restart rebuilds it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
import pytest

from herald.api import create_app
from herald.rating import PriceList, parse_price_list
from herald.store import (
    Channel,
    EventKind,
    PriceSide,
    Status,
    StatusUpdate,
)

from .conftest import Api, ApiFactory
from .test_verify import _check, _code

#: A price the range's budgets meet within a few codes (the engine's budgets are money).
#: Not more: two codes at 1.00 in flight to a never-seen country pass its source's
#: unfamiliar group (1.5 USD) and the second would be refused before any range is blocked.
PREMIUM = parse_price_list(["destination,price\n", "+1,0.35\n"])
#: Numbers of one 1k range, spaced so that they are not a sequential sweep.
RANGE = [f"+1415555{2600 + 7 * n:04d}" for n in range(50)]


async def _verify(api: Api, to: str, **fields: Any) -> httpx.Response:
    return await api.client.post("/v1/verifications", json={"to": to, "app": "Acme", **fields},
                                 headers=api.auth)  # fmt: skip


async def _billed(make_api: ApiFactory, prices: PriceList = PREMIUM, **context: Any) -> Api:
    lists: dict[int, PriceList] = {}
    api: Api = await make_api(prices=lists.get, **context)
    lists[api.account.id] = prices
    await api.store.put_price_list(prices.stored(PriceSide.SELL, str(api.account.id), 0.0))
    await api.store.adjust_balance(api.account.id, add=1_000_000_000)
    return api


async def _until_blocked(api: Api, numbers: list[str], step: float = 5.0) -> list[int]:
    """Verifications to ``numbers`` until the first 403 (bounded by the list)."""
    codes = []
    for to in numbers:
        answer = await _verify(api, to)
        codes.append(answer.status_code)
        api.clock.advance(step)
        if answer.status_code == 403:
            break
    return codes


async def test_a_burst_to_a_premium_range_is_blocked_unsent_and_unbilled(
    make_api: ApiFactory,
) -> None:
    api = await _billed(make_api)
    codes = await _until_blocked(api, RANGE)
    assert codes[-1] == 403 and set(codes[:-1]) == {201}
    assert len(codes) <= 6  # a few dollars, not a day's budget
    sent = len(api.accepted)
    balance = (await api.store.get_balance(api.account.id)).balance  # type: ignore[union-attr]
    refused = await _verify(api, RANGE[-1])
    problem = refused.json()
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert problem["type"] == "urn:herald:problem:fraud-blocked"
    assert problem["reason"] == "cell_blocked"
    decision = problem["decision"]
    assert decision["action"] == "block" and decision["message_id"] is None
    # The account's view of the range (its use case's): other customers keep it.
    level, key = decision["reasons"][-1]["cell"].split(":", 1)
    assert level == "range1k" and key.endswith("|+14155552")
    assert len(api.accepted) == sent  # never sent
    assert (await api.store.get_balance(api.account.id)).balance == balance  # type: ignore[union-attr]
    # Readable: one decision per request, the blocks with their figures.
    listed = await api.client.get("/v1/fraud/decisions?action=block", headers=api.auth)
    assert listed.status_code == 200
    blocks = listed.json()["decisions"]
    assert blocks[0]["id"] == decision["id"] and len(blocks) == 2
    first = blocks[-1]["reasons"][-1]
    assert first["code"] == "loss_budget" and first["figures"]["budget"] > 0
    one = await api.client.get(f"/v1/fraud/decisions/{decision['id']}", headers=api.auth)
    assert one.json() == decision
    every = await api.client.get("/v1/fraud/decisions?limit=1000", headers=api.auth)
    assert len(every.json()["decisions"]) == len(codes) + 1


async def test_a_verification_shows_its_decisions(api: Api) -> None:
    created = await _verify(api, RANGE[0], use_case="login", ip="192.0.2.7")
    assert created.status_code == 201
    assert created.json()["fraud"]["action"] == "allow"
    vid = created.json()["id"]
    api.clock.advance(60)
    assert (await api.client.post(f"/v1/verifications/{vid}/resend",
                                  headers=api.auth)).status_code == 200  # fmt: skip
    shown = (await api.client.get(f"/v1/verifications/{vid}", headers=api.auth)).json()
    assert [d["action"] for d in shown["fraud"]] == ["allow", "allow"]
    assert [d["message_id"] for d in shown["fraud"]] == shown["messages"]
    stored = await api.store.get_fraud_decision(shown["fraud"][0]["id"], api.account.id)
    assert stored.request == {"use_case": "login", "ip": "192.0.2.7"}  # the hints, kept


async def test_monitor_mode_records_would_block_and_sends(make_api: ApiFactory) -> None:
    api = await _billed(make_api)
    patched = await api.client.patch("/v1/fraud/settings", json={"mode": "monitor"},
                                     headers=api.auth)  # fmt: skip
    assert patched.status_code == 200 and patched.json()["mode"] == "monitor"
    codes = [(await _verify(api, to)).status_code for to in RANGE[:10]]
    assert codes == [201] * 10 and len(api.accepted) == 10
    listed = await api.client.get("/v1/fraud/decisions?action=would_block", headers=api.auth)
    would = listed.json()["decisions"]
    assert would and all(d["message_id"] is not None for d in would)


async def test_deny_and_allow_lists(make_api: ApiFactory) -> None:
    api = await _billed(make_api)
    answer = await api.client.patch("/v1/fraud/settings", headers=api.auth, json={
        "deny": ["+1415555"], "allow": ["+14155552600"]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    denied = await _verify(api, RANGE[1])
    assert denied.status_code == 403
    assert denied.json()["reason"] == "deny_list"
    assert denied.json()["decision"]["by"] == "account_controls"
    assert api.accepted == []
    # The deny list is checked first: the allow entry inside it does not help...
    assert (await _verify(api, RANGE[0])).status_code == 403
    await api.client.patch("/v1/fraud/settings", json={"deny": []}, headers=api.auth)
    # ...and an allowed number is never asked of the engine, even in a blocked range.
    assert (await _until_blocked(api, RANGE[1:]))[-1] == 403
    allowed = await _verify(api, RANGE[0])
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["fraud"]["reasons"] == [
        {"code": "allow_list", "cell": "+14155552600", "figures": {}}]


async def test_a_country_ceiling_counts_money_per_day(make_api: ApiFactory) -> None:
    cheap = parse_price_list(["destination,price\n", "+1,0.05\n"])
    api = await _billed(make_api, cheap)
    await api.client.patch("/v1/fraud/settings", json={"country_caps": {"US": "0.10"}},
                           headers=api.auth)  # fmt: skip
    far_apart = ["+14155552671", "+12125550142", "+13105550199"]  # three ranges, one country
    assert (await _verify(api, far_apart[0])).status_code == 201
    assert (await _verify(api, far_apart[1])).status_code == 201
    third = await _verify(api, far_apart[2])
    assert third.status_code == 403
    reason = third.json()["decision"]["reasons"][0]
    assert (reason["code"], reason["cell"]) == ("country_ceiling", "US")
    assert reason["figures"] == {"spent": 0.1, "price": 0.05, "ceiling": 0.1}
    api.clock.advance(86_401)  # a day later the money of yesterday no longer counts
    assert (await _verify(api, far_apart[2])).status_code == 201


@pytest.mark.parametrize("body", [
    {"mode": "block"}, {"otp_messages": "yes"}, {"deny": ["4477"]}, {"allow": "+44"},
    {"country_caps": {"gb": "1"}}, {"country_caps": {"GB": "-1"}},
    {"country_caps": {"GB": 1}}, {"country_caps": {"GB": "0.0000001"}}, {"colour": "red"},
])  # fmt: skip
async def test_bad_settings_name_the_field(api: Api, body: dict[str, Any]) -> None:
    answer = await api.client.patch("/v1/fraud/settings", json=body, headers=api.auth)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"].split(".")[0].split("[")[0] == next(iter(body))
    assert (await api.client.get("/v1/fraud/settings", headers=api.auth)).json() == {
        "mode": "enforce", "otp_messages": False, "allow": [], "deny": [], "country_caps": {}}


@pytest.mark.parametrize("fast_send", [True, False])
async def test_otp_messages_are_screened_when_enabled(make_api: ApiFactory,
                                                      fast_send: bool) -> None:  # fmt: skip
    api: Api = await make_api(fast_send=fast_send)
    await api.client.patch("/v1/fraud/settings", json={"deny": ["+1415555"]}, headers=api.auth)
    otp = {"to": RANGE[0], "from": "ACME", "text": "Your code is 4711", "priority": "otp"}
    assert (await api.send(otp)).status_code == 202  # not enabled: the default
    await api.client.patch("/v1/fraud/settings", json={"otp_messages": True}, headers=api.auth)
    refused = await api.send(otp)
    assert refused.status_code == 403, refused.text
    assert refused.json()["decision"]["verification_id"] is None
    ordinary = await api.send({**otp, "priority": "transactional"})
    assert ordinary.status_code == 202  # only OTP messages are asked
    assert len(api.accepted) == 2


@pytest.mark.parametrize(("status", "blocked"), [
    (Status.DELIVERED, True), (Status.UNDELIVERED, False), (Status.EXPIRED, False),
    (Status.REJECTED, False), (Status.FAILED, False),
])  # fmt: skip
async def test_receipts_teach_the_engine_an_outage_is_not_pumping(
    make_api: ApiFactory, status: Status, blocked: bool
) -> None:
    """Undelivered codes cost nothing: a burst whose codes are delivered (and never
    typed) is blocked; the same burst is let through when its receipts say the
    codes never arrived (an outage, or unallocated numbers)."""
    api = await _billed(make_api)
    codes = []
    for to in RANGE[:12]:
        answer = await _verify(api, to)
        codes.append(answer.status_code)
        if answer.status_code == 201:
            await api.store.update_statuses([StatusUpdate(
                api.accepted[-1].id, status, api.clock.now + 1)])
        api.clock.advance(5)
    assert (403 in codes) is blocked, codes


async def test_a_number_that_typed_its_code_is_trusted_in_a_blocked_range(
    make_api: ApiFactory,
) -> None:
    api = await _billed(make_api)
    created = await _verify(api, RANGE[0])
    api.clock.advance(20)  # a human types the code
    assert (await _check(api, created.json()["id"], _code(api))).json()["status"] == "approved"
    assert (await _until_blocked(api, RANGE[1:]))[-1] == 403
    trusted = await _verify(api, RANGE[0])
    assert trusted.status_code == 201, trusted.text
    assert "trusted_number" in [r["code"] for r in trusted.json()["fraud"]["reasons"]]
    sends = await api.store.verification_sends(created.json()["id"], api.account.id)
    assert await api.store.get_conversion(sends[0].message_id, api.account.id) is not None


async def test_conversions_of_otp_messages_teach_the_engine(make_api: ApiFactory) -> None:
    api = await _billed(make_api)
    await api.client.patch("/v1/fraud/settings", json={"otp_messages": True}, headers=api.auth)
    sent = await api.send({"to": RANGE[0], "from": "ACME", "text": "4711", "priority": "otp"})
    api.clock.advance(15)
    assert (await api.client.post(f"/v1/messages/{sent.json()['id']}/converted",
                                  headers=api.auth)).status_code == 204  # fmt: skip
    assert (await _until_blocked(api, RANGE[1:]))[-1] == 403
    again = await api.send({"to": RANGE[0], "from": "ACME", "text": "4712", "priority": "otp"})
    assert again.status_code == 202, again.text


async def test_a_restart_remembers_an_attack_in_progress(make_api: ApiFactory) -> None:
    api = await _billed(make_api)
    created = await _verify(api, RANGE[0])
    api.clock.advance(20)
    assert (await _check(api, created.json()["id"], _code(api))).json()["status"] == "approved"
    assert (await _until_blocked(api, RANGE[1:]))[-1] == 403
    # A new app on the same store: its engine is rebuilt from the recorded decisions,
    # receipts and conversions.
    restarted = create_app(api.context)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted),
                               base_url="http://herald.test")  # fmt: skip
    async with client:
        answer = await client.post("/v1/verifications", json={"to": RANGE[-1]},
                                   headers=api.auth)  # fmt: skip
        assert answer.status_code == 403, answer.text
        assert answer.json()["reason"] == "cell_blocked"
        trusted = await client.post("/v1/verifications", json={"to": RANGE[0]},
                                    headers=api.auth)  # fmt: skip
        assert trusted.status_code == 201, trusted.text  # its conversion was fed again
        # another range is not blocked
        other = await client.post("/v1/verifications", json={"to": "+12125550142"},
                                  headers=api.auth)  # fmt: skip
        assert other.status_code == 201, other.text


async def test_a_block_writes_a_webhook_event(make_api: ApiFactory) -> None:
    api = await _billed(make_api)
    await api.store.update_account(replace(api.account, callback_url="https://example.com/h"))
    await api.client.patch("/v1/fraud/settings", json={"deny": ["+1415555"]}, headers=api.auth)
    refused = await _verify(api, RANGE[0])
    events = await api.store.claim_outbox(Channel.WEBHOOK, api.clock.now + 1, 30.0, 10)
    assert [(e.kind, e.subject_id) for e in events] == [
        (EventKind.FRAUD, refused.json()["decision"]["id"])]


async def test_a_blocked_resend_leaves_the_verification_as_it_was(make_api: ApiFactory) -> None:
    api = await _billed(make_api)
    created = await _verify(api, RANGE[0])
    vid = created.json()["id"]
    code = _code(api)
    assert (await _until_blocked(api, RANGE[1:]))[-1] == 403
    resent = await api.client.post(f"/v1/verifications/{vid}/resend", headers=api.auth)
    assert resent.status_code == 403, resent.text
    assert resent.json()["decision"]["verification_id"] == vid  # it exists: named
    v = await api.store.get_verification(vid, api.account.id)
    assert v.sends == 1  # no send taken, no SMS
    shown = (await api.client.get(f"/v1/verifications/{vid}", headers=api.auth)).json()
    assert [d["action"] for d in shown["fraud"]] == ["allow", "block"]
    api.clock.advance(10)
    assert (await _check(api, vid, code)).json()["status"] == "approved"  # the code still works


@pytest.mark.parametrize(("query", "field"), [
    ("action=maybe", "action"), ("limit=0", "limit"), ("limit=1001", "limit"),
    ("since=yesterday", "since"),
])  # fmt: skip
async def test_bad_decision_queries_name_the_parameter(api: Api, query: str, field: str) -> None:
    answer = await api.client.get(f"/v1/fraud/decisions?{query}", headers=api.auth)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]


async def test_another_accounts_decision_is_not_found(api: Api, make_api: ApiFactory) -> None:
    decision = (await _verify(api, RANGE[0])).json()["fraud"]["id"]
    other: Api = await make_api(name="other")
    assert (await other.client.get(f"/v1/fraud/decisions/{decision}",
                                   headers=other.auth)).status_code == 404  # fmt: skip
    assert (await other.client.get("/v1/fraud/decisions", headers=other.auth)).json() == {
        "decisions": []}


async def test_after_a_restart_the_receipts_of_earlier_codes_still_count(
    make_api: ApiFactory,
) -> None:
    """The rebuild also picks up the messages still waiting for their receipt: an
    outage's UNDELIV that arrives after the restart takes their risk back."""
    api = await _billed(make_api)
    far_apart = ["+14155552671", "+12125550142", "+13105550199", "+17025550123"]
    for to in far_apart[:2]:
        assert (await _verify(api, to)).status_code == 201
    restarted = create_app(api.context)  # a new defence: rebuilt from the store
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted),
                               base_url="http://herald.test")  # fmt: skip
    async with client:
        third = await client.post("/v1/verifications", json={"to": far_apart[2]},
                                  headers=api.auth)  # fmt: skip
        assert third.json()["fraud"]["reasons"][0]["figures"]["excess"] == pytest.approx(
            3 * 0.35 * 0.6, abs=0.01)  # three codes at risk: the rebuild counted the first two
        await api.store.update_statuses([StatusUpdate(m.id, Status.UNDELIVERED,
                                                      api.clock.now + 1)
                                         for m in api.accepted[:2]])  # fmt: skip
        api.clock.advance(5)
        fourth = await client.post("/v1/verifications", json={"to": far_apart[3]},
                                   headers=api.auth)  # fmt: skip
    (reason,) = fourth.json()["fraud"]["reasons"]
    assert reason["code"] == "within_budget"
    assert reason["figures"]["excess"] == pytest.approx(2 * 0.35 * 0.6, abs=0.01)  # two back


async def test_conversions_in_a_batch(make_api: ApiFactory) -> None:
    api = await _billed(make_api)
    await api.client.patch("/v1/fraud/settings", json={"otp_messages": True}, headers=api.auth)
    sent = await api.send({"to": RANGE[0], "from": "ACME", "text": "4711", "priority": "otp"})
    mid = sent.json()["id"]
    api.clock.advance(15)
    answer = await api.client.post("/v1/conversions", headers=api.auth,
                                   json={"message_ids": [mid, mid, "nope"]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"converted": 1, "not_found": ["nope"]}
    assert await api.store.get_conversion(mid, api.account.id) == api.clock.now
    assert (await _until_blocked(api, RANGE[1:]))[-1] == 403
    again = await api.send({"to": RANGE[0], "from": "ACME", "text": "4712", "priority": "otp"})
    assert again.status_code == 202, again.text  # the batch taught the engine: trusted
    for body in ({"message_ids": []}, {"message_ids": "x"}, {"ids": [mid]}, [mid]):
        refused = await api.client.post("/v1/conversions", json=body, headers=api.auth)
        assert refused.status_code == 422, refused.text


async def test_requests_at_once_cannot_both_take_the_last_of_a_ceiling(
    make_api: ApiFactory,
) -> None:
    cheap = parse_price_list(["destination,price\n", "+1,0.05\n"])
    api = await _billed(make_api, cheap)
    await api.client.patch("/v1/fraud/settings", json={"country_caps": {"US": "0.10"}},
                           headers=api.auth)  # fmt: skip
    numbers = ["+14155552671", "+12125550142", "+13105550199", "+17025550123"]
    answers = await asyncio.gather(*(_verify(api, to) for to in numbers))
    assert sorted(a.status_code for a in answers) == [201, 201, 403, 403]


async def test_otp_messages_of_a_batch_are_screened_each_with_its_own_answer(
    make_api: ApiFactory,
) -> None:
    api = await _billed(make_api)
    await api.client.patch("/v1/fraud/settings", headers=api.auth,
                           json={"otp_messages": True, "deny": ["+14155552607"]})  # fmt: skip

    def otp(to: str, **fields: Any) -> dict[str, Any]:
        return {"to": to, "from": "ACME", "text": "Your code is 4711", "priority": "otp",
                **fields}

    items = [otp(RANGE[0]), otp(RANGE[1]), otp(RANGE[1], priority="transactional"),
             *(otp(to) for to in RANGE[2:20])]
    before = (await api.store.get_balance(api.account.id)).balance  # type: ignore[union-attr]
    answer = await api.client.post("/v1/messages/batch", json={"messages": items},
                                   headers=api.auth)  # fmt: skip
    assert answer.status_code == 202, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    # The deny list refuses item 1 alone; the transactional item 2 is not asked.
    denied = results[1]
    assert denied["status"] == "refused" and "id" not in denied
    error = denied["errors"][0]
    assert (error["field"], error["code"]) == ("messages[1].to", "fraud_blocked")
    assert "deny list" in error["detail"] and len(denied["errors"]) == 1
    assert denied["decision"]["reasons"][0]["code"] == "deny_list"
    assert [results[0]["status"], results[2]["status"]] == ["accepted", "accepted"]
    # Premium codes to one range: the engine closes it part of the way through.
    blocked = [r for r in results[3:] if r["status"] == "refused"]
    assert blocked and results[3]["status"] == "accepted"
    assert all(r["errors"][0]["code"] == "fraud_blocked" for r in blocked)
    assert {r["decision"]["reasons"][-1]["code"] for r in blocked} <= {"loss_budget",
                                                                       "cell_blocked"}
    accepted = [r for r in results if r["status"] == "accepted"]
    assert answer.json()["accepted"] == len(accepted) == len(api.accepted)
    assert answer.json()["refused"] == 1 + len(blocked)
    # Only what was accepted is charged (0.35 each).
    after = (await api.store.get_balance(api.account.id)).balance  # type: ignore[union-attr]
    assert before - after == len(accepted) * 350_000
    decisions = await api.client.get("/v1/fraud/decisions?limit=1000", headers=api.auth)
    assert len(decisions.json()["decisions"]) == len(items) - 1  # every OTP item asked
    # A batch none of which may go is refused whole, each item saying why.
    refused = await api.client.post("/v1/messages/batch", headers=api.auth,
                                    json={"messages": [otp(RANGE[1]), otp(RANGE[30])]})
    assert refused.status_code == 422, refused.text
    assert [e["code"] for e in refused.json()["errors"]] == ["fraud_blocked"] * 2
