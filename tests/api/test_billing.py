"""A billed account's sends over the API: priced in the answer, charged with the
commit (402 and nothing stored when the balance does not cover it), test mode
priced and never charged; the same from the fast path, the route and the batch
endpoint (docs/billing.md)."""

from __future__ import annotations

from typing import Any

import pytest

from herald.intake import DestinationRules, Network, NumberIndex, NumberingPlan
from herald.rating import PriceList, parse_price_list
from herald.store import MessageFilter, PriceSide

from .conftest import Api, ApiFactory, message

PLAN = NumberingPlan.build([("4917", Network("262", "01", "Telekom")),
                            ("4915", Network("262", "02", "Vodafone")),
                            ("447", Network("234", "15", "Vodafone UK"))])  # fmt: skip
RULES = DestinationRules(NumberIndex(PLAN), None)
SELL = parse_price_list(["destination,price\n", "26201,0.04\n", "+49,0.05\n"])
TELEKOM, VODAFONE, UK = "+491701234567", "+491511234567", "+447911123456"


@pytest.fixture(params=[True, False], ids=["fast", "route"])
async def api(request: pytest.FixtureRequest, make_api: ApiFactory) -> Api:
    lists: dict[int, PriceList] = {}
    made: Api = await make_api(fast_send=request.param, destinations=lambda: RULES,
                               prices=lists.get)  # fmt: skip
    lists[made.account.id] = SELL
    await made.store.put_price_list(SELL.stored(PriceSide.SELL, str(made.account.id), 0.0))
    return made


async def _balance(api: Api) -> int:
    found = await api.store.get_balance(api.account.id)
    assert found is not None
    return found.balance


async def _stored(api: Api) -> int:
    page = await api.store.list_messages(MessageFilter(api.account.id, limit=100))
    return len(page.messages)


@pytest.mark.parametrize(
    ("to", "text", "price"),
    [
        (TELEKOM, "hi", {"amount": "0.040000", "per_segment": "0.04", "segments": 1,
                         "priced_by": "26201"}),
        (VODAFONE, "x" * 161, {"amount": "0.100000", "per_segment": "0.05", "segments": 2,
                               "priced_by": "+49"}),
    ],
)  # fmt: skip
async def test_a_send_is_priced_and_charged(
    api: Api, to: str, text: str, price: dict[str, Any]
) -> None:
    await api.store.adjust_balance(api.account.id, add=1_000_000)
    test = await api.send(message(to=to, text=text, test=True))
    assert test.status_code == 200 and test.json()["price"] == price
    assert await _balance(api) == 1_000_000  # test mode: never charged
    sent = await api.send(message(to=to, text=text))
    assert sent.status_code == 202, sent.text
    assert sent.json()["price"] == price
    micros = int(price["amount"].replace(".", ""))
    assert await _balance(api) == 1_000_000 - micros
    (cdr,) = await api.store.list_cdrs(0, 1e12)
    assert (cdr.message_id, cdr.sell, cdr.price_key) == (sent.json()["id"], micros,
                                                         price["priced_by"])  # fmt: skip


async def test_a_send_the_balance_does_not_cover_is_402_and_not_stored(api: Api) -> None:
    await api.store.adjust_balance(api.account.id, add=50_000, credit_limit=30_000)
    assert (await api.send(message(to=TELEKOM))).status_code == 202  # 0.05 - 0.04 = 0.01
    assert (await api.send(message(to=TELEKOM))).status_code == 202  # -0.03: the limit
    refused = await api.send(message(to=TELEKOM))
    assert refused.status_code == 402, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert (body["type"], body["status"], body["reason"], body["price"]) == (
        "urn:herald:problem:insufficient-funds", 402, "insufficient_funds", "0.040000")  # fmt: skip
    assert await _balance(api) == -30_000 and await _stored(api) == 2
    test = await api.send(message(to=TELEKOM, test=True))  # still priced
    assert test.status_code == 200 and test.json()["price"]["amount"] == "0.040000"


async def test_an_unpriced_destination_is_refused_naming_to(api: Api) -> None:
    await api.store.adjust_balance(api.account.id, add=1_000_000)
    refused = await api.send(message(to=UK))
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("to", "unpriced")]
    assert await _stored(api) == 0 and await _balance(api) == 1_000_000


async def test_a_batch_is_priced_per_message_and_charged_all_or_none(api: Api) -> None:
    await api.store.adjust_balance(api.account.id, add=100_000)
    batch = {"messages": [message(to=TELEKOM), message(to=UK), message(to=VODAFONE),
                          message(to=TELEKOM, test=True)]}  # fmt: skip
    answer = await api.client.post("/v1/messages/batch", json=batch, headers=api.auth)
    assert answer.status_code == 202, answer.text
    results = answer.json()["results"]
    assert [(r["status"], r.get("price", {}).get("amount")) for r in results] == [
        ("accepted", "0.040000"), ("refused", None), ("accepted", "0.050000"),
        ("validated", "0.040000")]  # fmt: skip
    assert results[1]["errors"][0]["code"] == "unpriced"
    assert await _balance(api) == 10_000
    poor = await api.client.post("/v1/messages/batch", headers=api.auth, json={
        "messages": [message(to=TELEKOM)] * 2})  # 0.08 > 0.01: neither
    assert poor.status_code == 402 and poor.json()["price"] == "0.080000"
    assert await _balance(api) == 10_000 and await _stored(api) == 2


async def test_an_idempotent_send_is_charged_once(api: Api) -> None:
    await api.store.adjust_balance(api.account.id, add=1_000_000)
    first = await api.send(message(to=TELEKOM), **{"Idempotency-Key": "k1"})
    again = await api.send(message(to=TELEKOM), **{"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert await _balance(api) == 960_000


async def test_an_account_without_a_price_list_is_not_charged(make_api: ApiFactory) -> None:
    api: Api = await make_api(destinations=lambda: RULES, prices=lambda _: None)
    sent = await api.send(message(to=UK))
    assert sent.status_code == 202 and "price" not in sent.json()
    assert await api.store.get_balance(api.account.id) is None
    assert await api.store.list_cdrs(0, 1e12) == ()
