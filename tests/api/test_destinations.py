"""Destinations outside the operator's numbering plan, or without a route, are
refused at acceptance: a 422 problem naming ``to``, the same from the fast
path, the FastAPI route and the batch endpoint; nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from herald.intake import (
    DestinationRules,
    Network,
    NumberIndex,
    NumberingPlan,
    PortedNumbers,
)
from herald.store import MessageFilter

from .conftest import Api, ApiFactory, message

PLAN = NumberingPlan.build([
    ("4917", Network("262", "01", "Telekom")),
    ("447700900", Network("234", "30", "EE")),  # Ofcom's drama range: phonenumbers says unassigned
])  # fmt: skip
PORTED = PortedNumbers.build([("447911123456", "234", "15")])


class Rules:
    """The rules in use, swapped as a reload would."""

    def __init__(self, *route_prefixes: str) -> None:
        self.current = DestinationRules(NumberIndex(PLAN, PORTED),
                                        lambda digits: digits.startswith(route_prefixes))

    def __call__(self) -> DestinationRules:
        return self.current


CASES = [
    ("+491701234567", None),
    ("+447700900123", None),  # in the plan, though phonenumbers calls it unassigned
    ("+447911123456", None),  # ported, outside every plan range
    ("+447911123457", "unassigned"),
    ("+33612345678", "unassigned"),
    ("+4420", "too_short"),  # its form first
]


@pytest.fixture(params=[True, False], ids=["fast-path", "route"])
async def api(request: pytest.FixtureRequest, make_api: ApiFactory) -> Api:
    made: Api = await make_api(fast_send=request.param, destinations=Rules("4", "33"))
    return made


def _to_error(answer: Any) -> tuple[str, str]:
    problem = answer.json()
    assert problem["type"] == "urn:herald:problem:invalid-request"
    [error] = problem["errors"]
    return error["field"], error["code"]


@pytest.mark.parametrize(("to", "refusal"), CASES)
async def test_a_single_send_is_refused_naming_to(api: Api, to: str, refusal: str | None) -> None:
    answer = await api.send(message(to=to))
    if refusal is None:
        assert answer.status_code == 202, answer.text
        assert api.accepted[-1].to == to.lstrip("+")
        return
    assert answer.status_code == 422
    assert _to_error(answer) == ("to", refusal)
    assert answer.headers["content-type"] == "application/problem+json"
    assert api.accepted == []
    page = await api.store.list_messages(MessageFilter(api.account.id))
    assert page.messages == ()


async def test_a_destination_without_a_route_is_refused(api: Api) -> None:
    api.context.destinations.current = Rules("44").current  # type: ignore[attr-defined]
    answer = await api.send(message(to="+491701234567"))
    assert answer.status_code == 422 and _to_error(answer) == ("to", "unroutable")
    assert "no route" in answer.json()["errors"][0]["detail"]
    assert (await api.send(message(to="+447700900123"))).status_code == 202


async def test_a_new_plan_applies_from_the_next_request(api: Api) -> None:
    assert (await api.send(message(to="+491701234567"))).status_code == 202
    rules: Rules = api.context.destinations  # type: ignore[assignment]
    rules.current = DestinationRules(NumberIndex(NumberingPlan.build(
        [("33", Network("208", "01", "Orange"))])), rules.current.routable)  # fmt: skip
    answer = await api.send(message(to="+491701234567"))
    assert answer.status_code == 422 and _to_error(answer) == ("to", "unassigned")
    assert (await api.send(message(to="+33612345678"))).status_code == 202


async def test_a_batch_refuses_each_such_message_by_index(api: Api) -> None:
    items = [message(to=to) for to, _ in CASES]
    answer = await api.client.post("/v1/messages/batch", json={"messages": items},
                                   headers=api.auth)  # fmt: skip
    assert answer.status_code == 202
    results = answer.json()["results"]
    for (to, refusal), result in zip(CASES, results, strict=True):
        if refusal is None:
            assert result["status"] == "accepted", (to, result)
        else:
            assert result["status"] == "refused"
            [error] = result["errors"]
            assert (error["field"], error["code"]) == (f"messages[{result['index']}].to", refusal)
    assert sorted(m.to for m in api.accepted) == sorted(
        to.lstrip("+") for to, refusal in CASES if refusal is None)


async def test_test_mode_answers_the_same_refusal(api: Api) -> None:
    answer = await api.send(message(to="+33612345678", test=True))
    assert answer.status_code == 422 and _to_error(answer) == ("to", "unassigned")
