"""Bad input: each gets its own status and a problem naming the field, and the
app keeps serving the next request."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from herald.api import MAX_BODY_OCTETS
from herald.api._models import Problem
from herald.store import SQLiteConfig, SQLiteStore

from .conftest import Api, ApiFactory, message

PROBLEM = "application/problem+json"


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    Problem.model_validate(body)
    assert body["type"] == f"urn:herald:problem:{slug}"
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


def _fields(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["code"] for e in body.get("errors", [])}


async def _still_serving(api: Api) -> None:
    response = await api.send(message())
    assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        # wrong types: each named, with pydantic's reason mapped to a herald code
        (message(to=14155552671), {"to": "wrong_type"}),
        (message(test="yes"), {"test": "wrong_type"}),
        (message(validity_period="3600"), {"validity_period": "wrong_type"}),
        (message(metadata=[1, 2]), {"metadata": "wrong_type"}),
        (message(encoding="utf8"), {"encoding": "invalid_choice"}),
        (message(form="ACME"), {"form": "unknown_field"}),
        ({"to": "+14155552671", "text": "hi"}, {"from": "required"}),
        # intake refusals
        (message(to="+447700900123"), {"to": "not_valid"}),
        (message(to="call me"), {"to": "not_a_number"}),
        (message(to="+1234567890123456"), {"to": "too_long"}),
        (message(**{"from": "A VERY LONG NAME"}), {"from": "too_long"}),
        (message(text=None), {"text": "required"}),
        (message(binary="aGk="), {"binary": "conflict"}),
        (message(text=None, binary="not base64!"), {"binary": "invalid_base64"}),
        (message(text=None, binary="aGk=", encoding="gsm7"), {"encoding": "conflict"}),
        (message(text="☃", encoding="gsm7"), {"text": "not_encodable"}),
        (message(text=""), {"text": "empty"}),
        (message(validity_period=1), {"validity_period": "out_of_range"}),
        (message(send_at="yesterday"), {"send_at": "invalid_time"}),
        (message(send_at=1_700_000_000), {"send_at": "in_the_past"}),
        (message(callback_url="ftp://x"), {"callback_url": "invalid_url"}),
        (message(callback_events="some"), {"callback_events": "invalid_choice"}),
        (message(callback_events=["sent", "read"]), {"callback_events": "invalid_choice"}),
        (message(callback_events=["accepted"]), {"callback_events": "invalid_choice"}),
        (message(callback_events=5), {"callback_events": "wrong_type"}),
        (message(reference="r" * 200), {"reference": "too_long"}),
        # several at once: every field is named, whatever kind of check refused it
        (
            {"to": "x", "from": 5, "text": "hi", "zz": 1},
            {"to": "not_a_number", "from": "wrong_type", "zz": "unknown_field"},
        ),
    ],
)
async def test_invalid_fields_are_named(
    api: Api, body: dict[str, Any], fields: dict[str, str]
) -> None:
    problem = _problem(await api.send(body), 422, "invalid-request")
    assert _fields(problem) == fields
    for error in problem["errors"]:
        assert error["in"] == "body" and error["pointer"] == "/" + error["field"]
        assert error["detail"]
    await _still_serving(api)


async def test_oversized_text_names_the_limit(api: Api) -> None:
    problem = _problem(await api.send(message(text="☃" * 20_000)), 422, "invalid-request")
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("text", "too_long")
    assert "at most 255" in error["detail"]
    await _still_serving(api)


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"to": "+14155552671", ', "malformed JSON at line 1 column 24"),
        (b"\xff\xfe\xfa", "not a JSON document"),
        (b"[" * 100_000 + b"]" * 100_000, "not a JSON document"),  # nested too deep
        (b"", "malformed JSON"),
    ],
)
async def test_malformed_json(api: Api, content: bytes, detail: str) -> None:
    response = await api.client.post(
        "/v1/messages", content=content,
        headers={**api.auth, "content-type": "application/json"},
    )  # fmt: skip
    assert detail in _problem(response, 400, "malformed-json")["detail"]
    await _still_serving(api)


async def test_body_that_is_not_an_object(api: Api) -> None:
    problem = _problem(await api.send([message()]), 422, "invalid-request")
    assert problem["errors"][0]["code"] == "wrong_type"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_wrong_content_type(api: Api, content_type: str | None) -> None:
    headers = dict(api.auth)
    if content_type:
        headers["content-type"] = content_type
    response = await api.client.post("/v1/messages", content=b"to=1", headers=headers)
    _problem(response, 415, "unsupported-media-type")
    await _still_serving(api)


async def test_oversized_body_is_refused_before_it_is_read(api: Api) -> None:
    big = message(metadata={"pad": "x" * MAX_BODY_OCTETS})
    _problem(await api.send(big), 413, "payload-too-large")

    async def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        yield b'{"to": "+14155552671", "pad": "'
        for _ in range(MAX_BODY_OCTETS // 4096 + 1):
            yield b"x" * 4096
        yield b'"}'

    response = await api.client.post(
        "/v1/messages", content=chunks(),
        headers={**api.auth, "content-type": "application/json"},
    )  # fmt: skip
    _problem(response, 413, "payload-too-large")
    await _still_serving(api)


async def test_unknown_routes_methods_and_ids(api: Api) -> None:
    _problem(await api.client.get("/v2/messages", headers=api.auth), 404, "not-found")
    response = await api.client.put("/v1/messages", headers=api.auth)  # DELETE cancels
    _problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]
    for bad_id in ("06h11qous77dhhpl8rp6cclmqg", "not-an-id", "x" * 500):
        response = await api.client.get(f"/v1/messages/{bad_id}", headers=api.auth)
        _problem(response, 404, "not-found")
    await _still_serving(api)


async def test_bad_query_parameters(api: Api) -> None:
    cases = {
        "limit=0": ("limit", "out_of_range"),
        "limit=many": ("limit", "int_parsing"),
        "status=lost": ("status", "invalid_choice"),
        "to=call+me": ("to", "not_a_number"),
        "since=last+week": ("since", "invalid_time"),
    }
    for query, (name, code) in cases.items():
        response = await api.client.get(f"/v1/messages?{query}", headers=api.auth)
        problem = _problem(response, 422, "invalid-request")
        [error] = problem["errors"]
        assert (error["field"], error["in"], error["code"]) == (name, "query", code), query
        assert "pointer" not in error
    problem = _problem(
        await api.client.get("/v1/messages?cursor=abc", headers=api.auth), 400, "bad-request"
    )
    assert _fields(problem) == {"cursor": "invalid"}


async def test_a_bug_becomes_a_bare_500(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = (await api.send(message())).json()

    async def bug(*args: Any, **kwargs: Any) -> Any:  # a fault the API cannot expect
        raise RuntimeError("sqlite3.ProgrammingError: something internal")

    monkeypatch.setattr(api.store, "get_message", bug)
    with caplog.at_level(logging.ERROR, logger="herald.api"):
        response = await api.client.get(f"/v1/messages/{sent['id']}", headers=api.auth)
    problem = _problem(response, 500, "internal-error")
    assert problem["detail"] == "herald failed to handle the request"
    assert "Traceback" not in response.text and "sqlite" not in response.text.lower()
    assert any(r.exc_info for r in caplog.records)  # the traceback is in the log


async def test_a_closed_store_is_503_not_500(api: Api) -> None:
    sent = (await api.send(message())).json()
    await api.store.aclose()
    response = await api.client.get(f"/v1/messages/{sent['id']}", headers=api.auth)
    assert response.status_code == 503
    assert "Traceback" not in response.text


async def test_on_accepted_failure_does_not_lose_the_answer(make_api: ApiFactory) -> None:
    def broken(messages: Any) -> None:
        raise RuntimeError("dispatch is down")

    api: Api = await make_api(on_accepted=broken)
    response = await api.send(message())
    assert response.status_code == 202
    assert (await api.store.get_message(response.json()["id"])).id == response.json()["id"]


async def test_store_busy_is_503_with_retry_after(make_api: ApiFactory, tmp_path: Path) -> None:
    # A real store that only lets one write wait: hold the writer thread in a
    # write of our own, queue one more, and the API's accept finds the queue full.
    busy = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "busy", max_pending=1))
    release = threading.Event()
    api: Api = await make_api(store=busy)
    try:
        def hold(conn: sqlite3.Connection) -> None:
            release.wait(10)

        first = busy._writer.submit(None, hold)
        for _ in range(200):  # bounded: until the writer thread has taken it
            await asyncio.sleep(0.005)
            if busy._writer._queue.qsize() == 0:
                break
        second = busy._writer.submit(None, lambda conn: None)
        response = await api.send(message())
        problem = _problem(response, 503, "store-busy")
        assert response.headers["retry-after"] == "1"
        assert "retry" in problem["detail"]
        release.set()
        await asyncio.gather(first, second)
        assert (await api.send(message())).status_code == 202  # and serves again
    finally:
        release.set()
        await busy.aclose()
