"""Chains through the product: POST /v1/messages with channels, the providers'
webhooks, the chat service's timers (issue 14 tests 2, 3, 6, 10, and the rules
behind 5 and 7), against the local fakes on loopback with a controlled clock.

The app is herald's own (``create_app``) on a real SQLite store, served on
loopback so the fakes can POST their signed webhooks to it; the chat service
runs one :meth:`ChatService.step` at a time so the clock decides when a timer is due.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson
import pytest
from tests.api.conftest import T0
from tests.channels.conftest import (
    NUMBER_ID,
    PRICES,
    SECRET,
    SMS,
    TEMPLATE,
    TO,
    WA,
    Rig,
    sms_chain,
)

from herald.channels import WHATSAPP_SCHEME, chain_payload
from herald.rating import parse_price_list
from herald.store import Channel, Status

# -- 2: free-form text outside the window: refused at intake, no provider call --------------

async def test_free_form_text_with_no_open_window_is_refused_at_intake(rig: Rig) -> None:
    answer = await rig.send(sms_chain({"channel": "whatsapp", "text": "Hi there"}, SMS))
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("channels[0].text", "window_closed")]
    assert "template" in problem["errors"][0]["detail"]
    await rig.steps()
    assert rig.fake.answers == []  # zero calls to the provider
    assert await rig.sms_count() == 0  # nothing stored


async def test_a_user_message_opens_the_window_and_reaches_the_account(rig: Rig) -> None:
    rig.clock.now = time.time()  # the fake stamps the user's message with the real time
    assert await rig.fake.inbound(TO[1:], "Where is my parcel?", NUMBER_ID) == 200
    answer = await rig.send(sms_chain({"channel": "whatsapp", "text": "On its way"}, SMS))
    assert answer.status_code == 202, answer.text
    await rig.steps()
    assert [r.kind for r in rig.fake.sent.values()] == ["text"]
    assert rig.fake.schema_failures == []  # herald's text send fits the Cloud API's schema
    inbound = await rig.store._readers.run(lambda c: c.execute(
        "SELECT account_id, from_addr, to_addr, connector FROM inbound").fetchall())
    assert inbound == [(rig.account_id, TO[1:], NUMBER_ID, "whatsapp")]


async def test_a_viber_users_message_reaches_the_account_once(rig: Rig) -> None:
    body = rig.viber.inbound_body(TO[1:], "Where is my parcel?", "HeraldShop")
    scheme = rig.viber.settings.scheme
    forged = await rig.http.post("/v1/channels/viber/webhook", content=body,
                                 headers={scheme.header: scheme.sign("not-it", body)})
    assert forged.status_code == 401
    rig.viber.duplicates = 2  # the provider repeats itself: stored once
    assert await rig.viber.inbound(TO[1:], "Where is my parcel?", "HeraldShop") == 200
    inbound = await rig.store._readers.run(lambda c: c.execute(
        "SELECT account_id, from_addr, to_addr, connector, body FROM inbound").fetchall())
    assert inbound == [(rig.account_id, TO[1:], "HeraldShop", "viber",
                        "Where is my parcel?".encode("utf-16-be"))]


# -- 3: provider webhook signatures ------------------------------------------------------------

async def test_a_bad_webhook_signature_is_refused_and_changes_nothing(rig: Rig) -> None:
    answer = await rig.send(sms_chain({**WA, "success": "read", "within": 60}, SMS))
    chain_id = answer.json()["id"]
    await rig.steps()
    wamid = next(iter(rig.fake.sent))
    body = rig.fake.webhook_body([{"id": wamid, "status": "read", "recipient_id": TO[1:],
                                   "timestamp": str(int(T0))}])
    good = WHATSAPP_SCHEME.sign(SECRET, body)
    flipped = bytearray(body)
    flipped[len(flipped) // 2] ^= 1
    url = "/v1/channels/whatsapp/webhook"
    before = await rig.store.get_chain(chain_id)
    for content, headers, status in (
            (bytes(flipped), {WHATSAPP_SCHEME.header: good}, 401),
            (body, {WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign("wrong-secret", body)}, 401),
            (body, {}, 400)):
        refused = await rig.http.post(url, content=content, headers=headers)
        assert refused.status_code == status, refused.text
        assert refused.json()["type"].endswith("bad-signature")
        assert await rig.store.get_chain(chain_id) == before  # no state change
    accepted = await rig.http.post(url, content=body, headers={WHATSAPP_SCHEME.header: good})
    assert accepted.status_code == 200
    view = await rig.chain(chain_id)
    assert view["status"] == "delivered" and view["delivered_by"] == 0


async def test_the_subscription_handshake_echoes_the_challenge_for_the_right_token(
        rig: Rig) -> None:
    url = "/v1/channels/whatsapp/webhook"
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "vt-1"}
    assert (await rig.http.get(url, params=query)).status_code == 404  # no token configured
    rig.chat.settings = replace(rig.chat.settings, whatsapp_verify_token="vt-1")
    answer = await rig.http.get(url, params=query)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    wrong = await rig.http.get(url, params={**query, "hub.verify_token": "vt-2"})
    assert wrong.status_code == 403


async def test_an_oversized_webhook_is_refused_unread(rig: Rig) -> None:
    from herald.api._chains import MAX_WEBHOOK_OCTETS

    body = b"x" * (MAX_WEBHOOK_OCTETS + 1)
    answer = await rig.http.post("/v1/channels/whatsapp/webhook", content=body,
                                 headers={WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(SECRET,
                                                                                       body)})
    assert answer.status_code == 413


# -- 5 (the rules), 6: fallback on rejection and on "not read within 60 s" ----------------------

async def test_a_rejected_leg_starts_the_sms_leg_at_once(rig: Rig) -> None:
    rig.fake.reject(TO[1:], 131026)  # not on WhatsApp
    answer = await rig.send(sms_chain(WA, SMS))
    assert answer.status_code == 202, answer.text
    chain_id = answer.json()["id"]
    assert answer.json()["legs"][1]["status"] == "not_started"
    await rig.steps(1)
    view = await rig.chain(chain_id)
    assert [leg["status"] for leg in view["legs"]] == ["rejected", "pending"]
    assert view["legs"][0]["error"]["name"] == "not_on_channel"
    assert view["legs"][0]["error"]["provider_code"] == "131026"
    sms = await rig.store.get_message(view["legs"][1]["message_id"])
    assert sms.status is Status.ACCEPTED and sms.to == TO[1:]  # in the SMS pipeline


async def _not_read_within_60(rig: Rig, read_at: float | None) -> dict[str, Any]:
    rig.fake.config = replace(rig.fake.config, outcomes={"delivered": 1.0})
    answer = await rig.send(sms_chain({**WA, "success": "read", "within": 60}, SMS))
    chain_id = answer.json()["id"]
    await rig.steps()
    await rig.fake.flush()  # sent, delivered: not read
    if read_at is not None:
        rig.clock.advance(read_at)
        wamid = next(iter(rig.fake.sent))
        body = rig.fake.webhook_body([{"id": wamid, "status": "read", "recipient_id": TO[1:],
                                       "timestamp": str(int(T0 + read_at))}])
        await rig.http.post("/v1/channels/whatsapp/webhook", content=body,
                            headers={WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(SECRET, body)})
    rig.clock.now = T0 + 59.9
    await rig.steps()
    rig.clock.now = T0 + 60
    await rig.steps()
    rig.clock.now = T0 + 600  # long after: a timer fires once
    await rig.steps()
    return await rig.chain(chain_id)


async def test_not_read_within_60_s_starts_exactly_one_sms_leg(rig: Rig) -> None:
    from herald.store import PriceSide

    sell = parse_price_list(["destination,price\n", "+1,0.05\n"])  # SMS to +1: 0.05
    rig.lists[rig.account_id] = sell
    await rig.store.put_price_list(sell.stored(PriceSide.SELL, str(rig.account_id), T0))
    await rig.store.adjust_balance(rig.account_id, add=1_000_000)
    view = await _not_read_within_60(rig, None)
    assert [leg["status"] for leg in view["legs"]] == ["delivered", "pending"]
    assert await rig.sms_count() == 1
    assert rig.store is not None and await rig.store.claim_chain_timers(T0 + 10_000, 30, 10) == ()
    # Both legs billed as priced: the template when WhatsApp priced it, the SMS when it started.
    assert view["legs"][0]["price"] == {"amount": "0.008000", "category": "utility"}
    assert view["legs"][1]["price"] == {"amount": "0.050000", "category": "sms"}
    balance = await rig.store.get_balance(rig.account_id)
    assert balance is not None and 1_000_000 - balance.balance == 8_000 + 50_000


async def test_read_at_59_s_delivers_and_no_sms_leg_starts(rig: Rig) -> None:
    view = await _not_read_within_60(rig, 59)
    assert view["status"] == "delivered" and view["delivered_by"] == 0
    assert [leg["status"] for leg in view["legs"]] == ["read", "not_started"]
    assert await rig.sms_count() == 0


async def test_a_late_read_is_recorded_and_never_unsends_the_sms(rig: Rig) -> None:
    view = await _not_read_within_60(rig, None)
    wamid = next(iter(rig.fake.sent))
    body = rig.fake.webhook_body([{"id": wamid, "status": "read", "recipient_id": TO[1:],
                                   "timestamp": str(int(T0 + 700))}])
    await rig.http.post("/v1/channels/whatsapp/webhook", content=body,
                        headers={WHATSAPP_SCHEME.header: WHATSAPP_SCHEME.sign(SECRET, body)})
    late = await rig.chain(view["id"])
    assert [leg["status"] for leg in late["legs"]] == ["read", "pending"]
    assert late["status"] == "delivered" and late["delivered_by"] == 0
    assert await rig.sms_count() == 1


# -- 10: Viber: a TTL expiry starts the SMS leg; signature checked -----------------------------

async def test_a_viber_ttl_expiry_starts_the_sms_leg(rig: Rig) -> None:
    answer = await rig.send(sms_chain({"channel": "viber", "text": "Order shipped", "ttl": 60},
                                      SMS))
    assert answer.status_code == 202, answer.text
    chain_id = answer.json()["id"]
    await rig.steps()
    (viber_id,) = rig.viber.sent
    assert rig.viber.sent[viber_id].ttl == 60
    body = rig.viber.callback_body(viber_id, "expired")
    forged = await rig.http.post("/v1/channels/viber/webhook", content=body, headers={
        rig.viber.settings.scheme.header: rig.viber.settings.scheme.sign("not-it", body)})
    assert forged.status_code == 401
    assert await rig.sms_count() == 0  # the forged expiry changed nothing
    assert await rig.viber.expire(viber_id) == 200
    view = await rig.chain(chain_id)
    assert [leg["status"] for leg in view["legs"]] == ["expired", "pending"]
    assert view["legs"][0]["error"]["name"] == "ttl_expired"
    assert await rig.sms_count() == 1


# -- intake refusals name their field ---------------------------------------------------------

@pytest.mark.parametrize(("leg", "field", "code"), [
    ({"channel": "fax"}, "channels[0].channel", "invalid"),
    ({"channel": "whatsapp", "template": TEMPLATE, "from": "999"}, "channels[0].from",
     "unknown_sender"),
    ({"channel": "whatsapp", "template": TEMPLATE, "success": "seen"}, "channels[0].success",
     "invalid"),
    ({"channel": "whatsapp", "template": TEMPLATE, "within": -1}, "channels[0].within",
     "invalid"),
    ({"channel": "whatsapp", "template": {"name": "x"}}, "channels[0].template", "invalid"),
    ({"channel": "viber", "template": TEMPLATE}, "channels[0].template", "not_supported"),
    ({"channel": "sms", "success": "read"}, "channels[0].success", "invalid"),
])
async def test_a_bad_leg_is_refused_naming_its_field(rig: Rig, leg: dict[str, Any], field: str,
                                                     code: str) -> None:
    answer = await rig.send(sms_chain(leg))
    assert answer.status_code == 422, answer.text
    assert (field, code) in [(e["field"], e["code"]) for e in answer.json()["errors"]]
    assert await rig.sms_count() == 0


async def test_the_chain_ends_with_one_webhook_naming_the_leg(rig: Rig) -> None:
    answer = await rig.send(sms_chain(WA, SMS, callback_url="https://example.com/hook"))
    chain_id = answer.json()["id"]
    await rig.steps()
    await rig.fake.flush()
    await rig.fake.flush()
    rows = await rig.store._readers.run(lambda c: c.execute(
        "SELECT kind, subject_id, status FROM outbox").fetchall())
    assert rows == [(4, chain_id, int(Status.DELIVERED))]
    (event,) = await rig.store.claim_outbox(Channel.WEBHOOK, rig.clock(), 30.0, 10)
    payload = orjson.loads(chain_payload(event, await rig.store.get_chain(chain_id)))
    assert payload["type"] == "message.chain"
    assert payload["message"]["delivered_by"] == 0
    assert payload["message"]["legs"][0]["status"] in ("delivered", "read")


# -- 4: many chains, chaotic status webhooks --------------------------------------------------

async def _chaotic(rig: Rig, count: int) -> None:
    from herald.channels import RANK, LegState
    from herald.sim.chat import Chaos

    rig.fake.config = replace(rig.fake.config, outcomes={"read": .6, "delivered": .3,
                                                         "failed": .1})
    rig.fake.chaos = Chaos(duplicates=3, reverse=True, drop_delivered=True)
    seen: dict[tuple[str, int], list[str]] = {}
    change_chain = rig.store.change_chain

    async def recording(change: Any) -> bool:  # the real write, with its leg states noted
        applied = await change_chain(change)
        if applied:
            for leg, update in change.legs.items():
                seen.setdefault((change.chain_id, leg), []).append(update.state)
        return applied

    rig.store.change_chain = recording  # type: ignore[method-assign]
    ids = []
    for n in range(count):
        answer = await rig.send(sms_chain(WA, SMS, to=f"+1415555{n:04d}",
                                          callback_url="https://example.com/hook"))
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    for _ in range(count // 100 + 2):  # bounded: each step sends up to 100 legs
        await rig.steps(1)
    assert len(rig.fake.sent) == count
    await rig.fake.flush()
    await rig.steps(1)  # statuses parked before their leg's id was known, if any
    chains = await rig.store.get_chains(ids)
    truth = {"read": "read", "delivered": "delivered", "failed": "failed"}
    for chain in chains.values():
        wa = chain.legs[0]
        assert wa.provider_id is not None
        assert wa.state == truth[rig.fake.truth(wa.provider_id)], chain.id
        ranks = [RANK[LegState(s)] for s in seen[(chain.id, 0)]]
        assert ranks == sorted(ranks), (chain.id, seen[(chain.id, 0)])  # never backwards
        assert (chain.legs[1].state is None) == (wa.state != "failed")
    callbacks = await rig.store._readers.run(lambda c: c.execute(
        "SELECT subject_id, count(*) FROM outbox WHERE kind = 4 GROUP BY subject_id").fetchall())
    succeeded = {c.id for c in chains.values() if c.legs[0].state != "failed"}
    assert dict(callbacks) == dict.fromkeys(succeeded, 1)  # one each, none for the others yet


async def test_chaotic_status_webhooks_end_in_the_fakes_truth(rig: Rig) -> None:
    await _chaotic(rig, 100)


@pytest.mark.slow
async def test_1000_chains_with_chaotic_status_webhooks_end_in_the_fakes_truth(rig: Rig) -> None:
    await _chaotic(rig, 1000)


# -- 9: the ledger equals the priced events ---------------------------------------------------

async def test_the_ledger_equals_the_sum_of_priced_events(rig: Rig) -> None:
    from herald.sim.chat import Chaos
    from herald.store import PriceSide

    sell = parse_price_list(["destination,price\n", "+1,0.05\n"])
    rig.lists[rig.account_id] = sell
    await rig.store.put_price_list(sell.stored(PriceSide.SELL, str(rig.account_id), T0))
    await rig.store.adjust_balance(rig.account_id, add=10_000_000)
    rig.fake.config = replace(rig.fake.config, outcomes={"read": .5, "delivered": .2,
                                                         "failed": .3})
    rig.fake.chaos = Chaos(duplicates=3, reverse=True)  # every priced status three times
    auth = {"channel": "whatsapp", "template": {"name": "login", "language": "en",
                                                "code": "493817"}}
    ids = []
    for n in range(40):
        answer = await rig.send(sms_chain(auth if n % 2 else WA, SMS, to=f"+1415555{n:04d}"))
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    await rig.steps(2)
    await rig.fake.flush()
    await rig.steps(2)
    balance = await rig.store.get_balance(rig.account_id)
    assert balance is not None
    chains = await rig.store.get_chains(ids)
    expected = 0
    for chain in chains.values():
        wa = chain.legs[0]
        assert wa.provider_id is not None
        truth = rig.fake.truth(wa.provider_id)
        category = rig.fake.sent[wa.provider_id].body["template"]["name"] == "login"
        if truth != "failed":  # billed per delivered template message, once
            expected += PRICES[("whatsapp", "authentication" if category else "utility")]
        else:  # fell back: the SMS leg is charged as a plain send would be
            assert chain.legs[1].price_micros == 50_000
            expected += 50_000
    assert 10_000_000 - balance.balance == expected
    assert rig.fake.schema_failures == []  # the template and authentication template sends
    assert sum(leg.price_micros or 0 for c in chains.values() for leg in c.legs) == expected


# -- 8: pacing through the product ----------------------------------------------------------

async def test_chains_paced_per_number_lose_nothing_to_130429(rig: Rig) -> None:
    from herald.channels._pace import Pacer, PaceSettings

    rig.fake.config = replace(rig.fake.config, rate=80.0, burst=8.0)  # the Cloud API's start
    adapter = rig.chat.adapters["whatsapp"]
    # 80/s with a burst of half the fake's: room for requests that arrive bunched
    # (with the fake's own burst of 8, concurrent sends meet an occasional 130429).
    adapter.pacer = Pacer(PaceSettings(rate=80, burst=4, backoff=0.02, max_backoff=0.1))
    ids = []
    for n in range(120):
        answer = await rig.send(sms_chain(WA, SMS, to=f"+1415555{n:04d}"))
        ids.append(answer.json()["id"])
    rig.fake.throttle(3)  # and three "too fast" answers whatever the rate
    for _ in range(5):  # bounded: each step claims up to 100 legs
        await rig.steps(1)
    chains = await rig.store.get_chains(ids)
    assert sorted({c.legs[0].state or "" for c in chains.values()}) == ["accepted"]
    # The forced ones (a loaded machine may bunch requests into one more): each paused
    # the number and was sent again; none failed, none fell over to SMS.
    assert rig.fake.throttled >= 3 and adapter.counters.throttled == rig.fake.throttled
    assert adapter.counters.rejected == 0 and await rig.sms_count() == 0


async def test_a_send_that_outlives_its_lease_is_not_decided_lost(rig: Rig) -> None:
    from herald.channels._pace import Pacer, PaceSettings

    adapter = rig.chat.adapters["whatsapp"]
    adapter.pacer = Pacer(PaceSettings(backoff=0.3, max_backoff=0.3))
    rig.chat.settings = replace(rig.chat.settings, submit_lease=1.0)
    rig.fake.throttle(1)  # the send pauses 0.3 s and goes again: longer than this step
    chain_id = (await rig.send(sms_chain(WA, SMS))).json()["id"]
    assert await rig.chat.send_legs()
    rig.clock.advance(5)  # past the lease: the store hands the leg out again ...
    assert await rig.chat.send_legs()
    await rig.steps(1)  # ... and this process, still sending it, lets its send finish
    view = await rig.chain(chain_id)
    assert [leg["status"] for leg in view["legs"]] == ["accepted", "not_started"]
    assert len(rig.fake.sent) == 1 and await rig.sms_count() == 0
