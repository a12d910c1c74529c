"""POST /v1/messages/batch: each message judged on its own, the valid ones stored together."""

from __future__ import annotations

import json
from typing import Any

import pytest

from herald.api import MAX_BATCH_MESSAGES
from herald.api._models import BatchResponse, Problem
from herald.store import MessageFilter

from .conftest import VALID_TO, Api, message


async def _post(api: Api, body: Any) -> Any:
    return await api.client.post("/v1/messages/batch", json=body, headers=api.auth)


async def test_mixed_batch_reports_each_index(api: Api) -> None:
    batch = [
        message(reference="a"),
        message(to="+447700900123"),
        "not an object",
        message(text="☃" * 100, reference="d"),
        message(test=True),
        {"to": 5, "text": "x"},
    ]
    response = await _post(api, {"messages": batch})
    assert response.status_code == 202, response.text
    body = response.json()
    BatchResponse.model_validate(body)
    assert (body["accepted"], body["refused"]) == (2, 3)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert [r["status"] for r in results] == [
        "accepted", "refused", "refused", "accepted", "validated", "refused",
    ]
    assert (results[3]["segments"], results[3]["encoding"]) == (2, "ucs2")
    assert results[1]["errors"] == [{
        "field": "messages[1].to", "pointer": "/messages/1/to", "in": "body",
        "code": "not_valid", "detail": "is not an assigned number in its country's numbering plan",
    }]  # fmt: skip
    assert results[2]["errors"][0]["pointer"] == "/messages/2"
    assert {e["pointer"]: e["code"] for e in results[5]["errors"]} == {
        "/messages/5/to": "wrong_type", "/messages/5/from": "required",
    }
    # one store.accept, after which dispatch is woken once with both
    assert [m.id for m in api.accepted] == [results[0]["id"], results[3]["id"]]
    page = await api.store.list_messages(MessageFilter(api.account.id))
    assert sorted(m.reference or "" for m in page.messages) == ["a", "d"]
    assert (await api.send(message())).status_code == 202  # and it keeps serving


async def test_batch_with_nothing_accepted_is_a_problem_listing_every_field(api: Api) -> None:
    response = await _post(api, {"messages": [message(to="x"), message(text="")]})
    assert response.status_code == 422
    body = response.json()
    Problem.model_validate(body)
    assert body["type"] == "urn:herald:problem:invalid-request"
    assert [e["pointer"] for e in body["errors"]] == ["/messages/0/to", "/messages/1/text"]
    assert (body["accepted"], body["refused"], len(body["results"])) == (0, 2, 2)
    assert api.accepted == []


async def test_only_test_messages_answer_200(api: Api) -> None:
    response = await _post(api, {"messages": [message(test=True), message(test=True)]})
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["validated", "validated"]
    assert api.accepted == []


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ([message()], "", "wrong_type"),
        ({}, "messages", "required"),
        ({"messages": {"to": VALID_TO}}, "messages", "wrong_type"),
        ({"messages": []}, "messages", "too_short"),
        ({"messages": [{}] * (MAX_BATCH_MESSAGES + 1)}, "messages", "too_long"),
        ({"messages": [message()], "defaults": {}}, "defaults", "unknown_field"),
    ],
)
async def test_malformed_batches(api: Api, body: Any, field: str, code: str) -> None:
    response = await _post(api, body)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == (field, code)
    assert api.accepted == []


async def test_a_full_batch_of_ten_thousand(api: Api) -> None:
    batch = [message(to=f"+1415555{n % 10_000:04d}", reference=str(n)) for n in range(10_000)]
    response = await _post(api, {"messages": batch})
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["refused"]) == (10_000, 0)
    ids = [r["id"] for r in body["results"]]
    assert len(set(ids)) == 10_000 and ids == sorted(ids)  # time-ordered, unique
    assert len(api.accepted) == 10_000
    last = await api.store.get_message(ids[-1], account_id=api.account.id)
    assert last.reference == "9999"


async def test_the_answer_is_compact_json_as_json_dumps_writes_it(api: Api) -> None:
    # The summary is rendered by orjson; its bytes are the standard library's.
    odd = "ünknown\n\"\\\u2028\x7f"  # a field name with what JSON escapes, and not
    batch = [message(), message(to="x"), {"to": "+1", odd: 1}, message(test=True)]
    response = await _post(api, {"messages": batch})
    assert response.status_code == 202
    assert response.content == json.dumps(
        response.json(), ensure_ascii=False, separators=(",", ":")
    ).encode()
