"""The fast path of POST /v1/messages (``herald.api._fast``): taken for a plain
message, with the route's answer and stored record; anything unusual goes to
the FastAPI route untouched, charged and counted once."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from herald.api import MAX_BODY_OCTETS
from herald.api._messages import _submission
from herald.api._models import MessageRequest
from herald.api._submission import SUBMISSION_FIELDS, plain_submission
from herald.config import HttpConfig
from herald.store import MessageFilter, NewMessage, StoreBusy

from .conftest import T0, VALID_TO, Api, ApiFactory, message


@pytest.fixture(params=["asgi", "uvicorn"])
def transport(request: pytest.FixtureRequest) -> str:
    """Every test twice: through ASGI, and as ``herald serve`` serves (its protocol
    answers plain sends before ASGI: ``api/_protocol.py``)."""
    return str(request.param)


@dataclass
class RouteSpy:
    """Wraps the FastAPI app's middleware stack: which requests reached the route."""

    app: Any
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def spy(api: Api) -> RouteSpy:
    watcher = RouteSpy(api.app.build_middleware_stack())
    api.app.middleware_stack = watcher
    return watcher


@pytest.fixture
async def pair(make_api: ApiFactory) -> tuple[Api, Api]:
    """Two apps on one store and clock: the fast path, and every send through the route."""
    fast: Api = await make_api(name="fast")
    route: Api = await make_api(name="route", fast_send=False)
    return fast, route


def _stable(headers: httpx.Headers, *also: str) -> dict[str, str]:
    """Headers but ``Date`` (the server's clock may tick between two answers) and ``also``."""
    return {k: v for k, v in headers.items() if k not in ("date", *also)}


def _without(content: bytes, message_id: str | None) -> bytes:
    return content if message_id is None else content.replace(message_id.encode(), b"<id>")


def _same_record(a: NewMessage, b: NewMessage) -> None:
    assert replace(a, id="x", account_id=0) == replace(b, id="x", account_id=0)


async def _both(
    pair: tuple[Api, Api], content: bytes, **headers: str
) -> tuple[httpx.Response, httpx.Response]:
    answers = [await _post(api, content, **headers) for api in pair]
    return answers[0], answers[1]


async def _post(api: Api, content: bytes, **headers: str) -> httpx.Response:
    """POST /v1/messages with the key and JSON type unless ``headers`` replace them."""
    sent = {"authorization": f"Bearer {api.key}", "content-type": "application/json"}
    sent.update({k.lower(): v for k, v in headers.items()})
    return await api.client.post("/v1/messages", content=content, headers=sent)


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


# -- the plain message: the fast path, the route's answer ------------------------------------

PLAIN = [
    message(),
    message(reference="order-7", metadata={"user": 42, "tags": ["a", "é"], "x": {"y": None}}),
    message(text="Grüße ☃ " * 30, callback_url="https://example.test/h", callback_events="all"),
    message(callback_url="https://example.test/h", callback_events=["sent", "undelivered"]),
    message(callback_events="none", validity_period=7200, send_at="2027-01-15T09:00:00Z"),
    message(send_at=T0 + 60, validity_period=3600.5, test=False),
    message(text=None, binary=base64.b64encode(bytes(range(200))).decode(), encoding="binary"),
    message(text="plain", encoding="ucs2", reference=None, metadata=None, callback_url=None),
    message(**{"from": "+447911123456"}, text='quotes " and \\ and \n and \u2028'),
    message(**{"from": "12345"}, to="+1 (415) 555-2671", encoding="gsm7", text="€ [x]"),
]


@pytest.mark.parametrize("body", PLAIN, ids=range(len(PLAIN)))
async def test_a_plain_message_takes_the_fast_path_with_the_routes_answer(
    pair: tuple[Api, Api], body: dict[str, Any]
) -> None:
    fast, route = pair
    seen = spy(fast)
    by_fast, by_route = await _both(pair, _json(body))
    assert seen.paths == []  # the framework never saw it
    assert by_fast.status_code == by_route.status_code == 202, by_route.text
    fast_id, route_id = by_fast.json()["id"], by_route.json()["id"]
    assert _without(by_fast.content, fast_id) == _without(by_route.content, route_id)
    for name in ("content-type", "content-length"):
        assert by_fast.headers[name] == by_route.headers[name]
    assert by_fast.headers["location"] == f"/v1/messages/{fast_id}"
    assert list(by_fast.headers) == list(by_route.headers)
    [fast_record], [route_record] = fast.accepted, route.accepted
    assert fast_record.id == fast_id
    _same_record(fast_record, route_record)
    stored = await fast.store.get_message(fast_id, account_id=fast.account.id)
    theirs = await route.store.get_message(route_id, account_id=route.account.id)
    assert replace(stored, id="x", account_id=0) == replace(theirs, id="x", account_id=0)


async def test_the_answer_comes_only_after_the_commit(api: Api, monkeypatch: Any) -> None:
    seen = spy(api)
    committing = asyncio.Event()
    release = asyncio.Event()
    accept = api.store.accept

    async def slow_accept(*args: Any, **kwargs: Any) -> Any:
        committing.set()
        await release.wait()
        return await accept(*args, **kwargs)

    monkeypatch.setattr(api.store, "accept", slow_accept)
    sending = asyncio.create_task(api.send(message()))
    await asyncio.wait_for(committing.wait(), 5)
    await asyncio.sleep(0.01)
    assert not sending.done() and api.accepted == []  # no answer, no wake-up yet
    release.set()
    response = await sending
    assert response.status_code == 202
    assert (await api.store.get_message(response.json()["id"])).id == response.json()["id"]
    assert [m.id for m in api.accepted] == [response.json()["id"]]
    assert seen.paths == []


# -- anything unusual: the route, as it was ----------------------------------------------


UNUSUAL: list[tuple[str, bytes, dict[str, str]]] = [
    ("wrong type", _json(message(to=14155552671)), {}),
    ("flag as number", _json(message(test=1)), {}),
    ("number as flag", _json(message(validity_period=True)), {}),
    ("unknown field", _json(message(form="ACME")), {}),
    ("alias by its python name", _json({"to": VALID_TO, "from_": "ACME", "text": "hi"}), {}),
    ("missing from", _json({"to": VALID_TO, "text": "hi"}), {}),
    ("null to", _json(message(to=None)), {}),
    ("bad encoding", _json(message(encoding="utf8")), {}),
    ("intake refusal", _json(message(to="+447700900123")), {}),
    ("several refusals", _json({"to": "x", "from": 5, "text": "hi", "zz": 1}), {}),
    ("test message", _json(message(test=True)), {}),
    ("invalid test message", _json(message(test=True, to="+1415")), {}),
    ("not an object", _json([message()]), {}),
    ("malformed JSON", b'{"to": "+14155552671", ', {}),
    ("not UTF-8", b"\xff\xfe\xfa", {}),
    ("empty body", b"", {}),
    ("byte order mark", b"\xef\xbb\xbf" + _json(message()), {}),
    ("lone surrogate", b'{"to": "+14155552671", "from": "ACME", "text": "\\ud800"}', {}),
    ("NaN in metadata", b'{"to": "+14155552671", "from": "ACME", "metadata": {"x": NaN}}', {}),
    ("float in metadata", _json(message(metadata={"price": 1e-07, "n": 2.5})), {}),
    ("integer beyond 64 bits in metadata", _json(message(metadata={"big": 2**100})), {}),
    ("validity beyond 64 bits", _json(message(validity_period=10**30)), {}),
    ("Idempotency-Key", _json(message()), {"Idempotency-Key": "k-1"}),
    ("malformed Idempotency-Key", _json(message()), {"Idempotency-Key": "tab\there"}),
    ("text/plain", _json(message()), {"content-type": "text/plain"}),
    ("structured JSON type", _json(message()), {"content-type": "application/vnd.x+json"}),
    ("charset parameter", _json(message()), {"content-type": "application/json; charset=utf-8"}),
    ("no key", _json(message()), {"authorization": ""}),
    ("no key, bad body", _json(message(to=5)), {"authorization": ""}),
    ("wrong scheme", _json(message()), {"authorization": "Basic dXNlcjpwdw=="}),
]


@pytest.mark.parametrize(("case", "content", "headers"), UNUSUAL, ids=[u[0] for u in UNUSUAL])
async def test_an_unusual_request_is_answered_as_the_route_answers_it(
    pair: tuple[Api, Api], case: str, content: bytes, headers: dict[str, str]
) -> None:
    fast, route = pair
    by_fast, by_route = await _both(pair, content, **headers)
    assert by_fast.status_code == by_route.status_code
    ids = [r.json().get("id") if r.status_code == 202 else None for r in (by_fast, by_route)]
    assert _without(by_fast.content, ids[0]) == _without(by_route.content, ids[1]), case
    assert _stable(by_fast.headers, "location") == _stable(by_route.headers, "location")
    assert len(fast.accepted) == len(route.accepted)
    for mine, theirs in zip(fast.accepted, route.accepted, strict=True):
        _same_record(mine, theirs)


#: Unusual but served by the fast path (its answer is the route's: above).
_FAST_TOO = ("structured JSON type", "charset parameter", "no key", "wrong scheme")


@pytest.mark.parametrize(
    ("case", "content", "headers"),
    [u for u in UNUSUAL if u[0] not in _FAST_TOO],
    ids=[u[0] for u in UNUSUAL if u[0] not in _FAST_TOO],
)
async def test_an_unusual_request_reaches_the_route(
    api: Api, case: str, content: bytes, headers: dict[str, str]
) -> None:
    seen = spy(api)
    await _post(api, content, **headers)
    assert seen.paths == ["POST /v1/messages"], case


async def test_a_body_over_the_limit_or_without_length_reaches_the_route(api: Api) -> None:
    seen = spy(api)
    big = await api.send(message(metadata={"pad": "x" * MAX_BODY_OCTETS}))
    assert big.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield _json(message())

    chunked = await api.client.post(
        "/v1/messages", content=chunks(),
        headers={**api.auth, "content-type": "application/json"},
    )  # fmt: skip
    assert chunked.status_code == 202
    assert seen.paths == ["POST /v1/messages"] * 2
    assert len(api.accepted) == 1


async def test_a_body_in_several_chunks_takes_the_fast_path(api: Api) -> None:
    seen = spy(api)
    content = _json(message())

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 7):
            yield content[start:start + 7]

    response = await api.client.post(
        "/v1/messages", content=chunks(),
        headers={**api.auth, "content-type": "application/json",
                 "content-length": str(len(content))},
    )  # fmt: skip
    assert response.status_code == 202, response.text
    assert seen.paths == []


async def test_other_routes_and_methods_are_the_routes(api: Api) -> None:
    seen = spy(api)
    await api.client.get("/v1/messages", headers=api.auth)
    await api.client.post("/v1/messages/batch", json={"messages": [message()]}, headers=api.auth)
    await api.client.post("/v1/messages/", json=message(), headers=api.auth)
    assert seen.paths == [
        "GET /v1/messages", "POST /v1/messages/batch", "POST /v1/messages/",
    ]  # fmt: skip


# -- refusals the fast path answers itself: the route's problems -----------------------------


async def test_an_invalid_key_gets_the_routes_401(pair: tuple[Api, Api]) -> None:
    for authorization in ("Bearer hk_not_a_key", "Bearer hk_aaaaaaaaaaaa_" + "A" * 40):
        by_fast, by_route = await _both(pair, _json(message()), authorization=authorization)
        assert by_fast.status_code == by_route.status_code == 401
        assert by_fast.content == by_route.content
        assert _stable(by_fast.headers) == _stable(by_route.headers)
    fast, route = pair
    assert fast.accepted == route.accepted == []


async def test_the_message_rate_gets_the_routes_429(make_api: ApiFactory) -> None:
    fast: Api = await make_api(name="fast", rate_limit=2.0)  # burst: 4 messages
    route: Api = await make_api(name="route", rate_limit=2.0, fast_send=False)
    seen = spy(fast)
    for api in (fast, route):
        for _ in range(4):
            assert (await api.send(message())).status_code == 202
    by_fast, by_route = await fast.send(message()), await route.send(message())
    assert by_fast.status_code == by_route.status_code == 429
    assert by_fast.content == by_route.content
    assert _stable(by_fast.headers) == _stable(by_route.headers)
    assert seen.paths == []


# -- charged and counted once ------------------------------------------------------------


async def test_the_message_rate_is_charged_once_whichever_path(make_api: ApiFactory) -> None:
    api: Api = await make_api(rate_limit=2.0)  # burst: 4 messages
    seen = spy(api)
    # two sends the route serves (it reads JSON the fast path leaves to it), two plain
    assert (await api.send(message(metadata={"price": 2.5}))).status_code == 202
    assert (await api.send(message(to=VALID_TO, metadata={"n": 1.5}))).status_code == 202
    assert (await api.send(message(to=5))).status_code == 422  # refused: refunded
    assert (await api.send(message())).status_code == 202
    assert (await api.send(message())).status_code == 202
    assert (await api.send(message())).status_code == 429
    assert seen.paths == ["POST /v1/messages"] * 3
    assert len((await api.store.list_messages(MessageFilter(api.account.id))).messages) == 4


async def test_the_request_rate_is_charged_once_whichever_path(make_api: ApiFactory) -> None:
    api: Api = await make_api(config=HttpConfig(default_account_rate=2.0))  # burst: 4
    seen = spy(api)
    assert (await api.send(message(metadata={"price": 2.5}))).status_code == 202  # route
    assert (await api.send(message(to="nope"))).status_code == 422  # route
    assert (await api.send(message())).status_code == 202  # fast
    assert (await api.send(message())).status_code == 202  # fast
    refused = await api.send(message())
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:herald:problem:rate-limited"
    assert seen.paths == ["POST /v1/messages"] * 2


async def test_a_store_failure_is_the_routes_503_and_refunds(
    make_api: ApiFactory, monkeypatch: Any
) -> None:
    fast: Api = await make_api(name="fast", rate_limit=0.5)  # burst: 1 message
    route: Api = await make_api(name="route", rate_limit=0.5, fast_send=False)
    answers = []
    for api in (fast, route):
        async def busy(*args: Any, **kwargs: Any) -> Any:
            raise StoreBusy("queue full")

        with monkeypatch.context() as patch:
            patch.setattr(api.store, "accept", busy)
            answers.append(await api.send(message()))
    by_fast, by_route = answers
    assert by_fast.status_code == by_route.status_code == 503
    assert by_fast.content == by_route.content
    assert _stable(by_fast.headers) == _stable(by_route.headers)
    assert (await fast.send(message())).status_code == 202  # the budget was given back
    assert fast.accepted and not [m for m in fast.accepted if m.id is None]


async def test_requests_are_counted_once_per_answer(api: Api) -> None:
    await api.send(message())  # fast
    await api.send(message(to="nope"))  # route
    await _post(api, _json(message()), authorization="Bearer hk_not_a_key")  # fast: 401
    await api.send(message(metadata={"f": 0.5}))  # route
    text = (await api.client.get("/metrics")).text
    assert 'herald_http_requests_total{code="202",route="/v1/messages"} 2.0' in text
    assert 'herald_http_requests_total{code="422",route="/v1/messages"} 1.0' in text
    assert 'herald_http_requests_total{code="401",route="/v1/messages"} 1.0' in text
    assert 'herald_messages_accepted_total{source="http"} 2.0' in text


async def test_a_bug_in_the_fast_path_is_a_bare_500(
    api: Api, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(now: float) -> str:
        raise RuntimeError("sqlite3.ProgrammingError: something internal")

    monkeypatch.setattr(api.context.ids, "new_id", broken)
    with caplog.at_level(logging.ERROR, logger="herald.api"):
        response = await api.send(message())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:herald:problem:internal-error"
    assert "sqlite" not in response.text.lower()
    assert any(r.exc_info for r in caplog.records)
    text = (await api.client.get("/metrics")).text
    assert 'herald_http_requests_total{code="500",route="/v1/messages"} 1.0' in text
    assert api.accepted == []


# -- the plain reading equals the model's ------------------------------------------------


def test_the_plain_fields_are_the_models() -> None:
    aliases = {f.alias or name for name, f in MessageRequest.model_fields.items()}
    assert set(SUBMISSION_FIELDS) == aliases


def _model_submission(item: dict[str, Any]) -> Any:
    try:
        return _submission(MessageRequest.model_validate(item))
    except ValidationError:
        return None


_JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False) | st.text(max_size=5)
)  # fmt: skip
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=6,
)  # fmt: skip
_KEYS = st.sampled_from([*SUBMISSION_FIELDS, "from_", "form", "extra"])
_VALUES = _JSON | st.sampled_from(["auto", "gsm7", "ucs2", "binary", "+14155552671", "ACME"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8), st.booleans())
def test_plain_reading_accepts_what_the_model_accepts_unchanged(
    item: dict[str, Any], with_required: bool
) -> None:
    if with_required:
        item = {"to": "+14155552671", "from": "ACME", **item}
    assert plain_submission(item) == _model_submission(item)


@pytest.mark.parametrize(
    "item",
    [
        message(),
        message(validity_period=3600),
        message(validity_period=2**80),
        message(validity_period=0.5),
        message(validity_period=None, text=None, binary=None, reference=None, metadata=None),
        message(encoding="binary", test=False, callback_events=["sent"], send_at="x"),
        message(metadata={"a": [1, {"b": None}]}),
        message(validity_period=True),
        message(test=0),
        message(test=None),
        message(encoding=None),
        message(encoding="UCS2"),
        message(metadata=[1]),
        message(to=None),
        {"from": "ACME", "text": "hi"},
        message(extra=1),
    ],
)
def test_plain_reading_cases(item: dict[str, Any]) -> None:
    assert plain_submission(item) == _model_submission(item)


async def test_a_bug_before_any_effect_leaves_the_request_to_the_route(
    api: Api, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(item: object) -> None:
        raise RuntimeError("a bug in the plain reading")

    monkeypatch.setattr("herald.api._fast.plain_submission", broken)
    seen = spy(api)
    with caplog.at_level(logging.ERROR, logger="herald.api"):
        response = await api.send(message())
    assert response.status_code == 202  # the route read it its own way
    assert seen.paths == ["POST /v1/messages"]
    assert any(r.exc_info for r in caplog.records)
    assert len(api.accepted) == 1


async def _leave_mid_body(api: Api) -> list[Any]:
    """Run the app on the first part of a body, then ``http.disconnect``; what it sent."""
    content = _json(message())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": "/v1/messages",
        "raw_path": b"/v1/messages", "query_string": b"", "root_path": "",
        "headers": [(b"authorization", f"Bearer {api.key}".encode()),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode())],
        "client": ("127.0.0.1", 40000), "server": ("herald.test", 80),
    }  # fmt: skip
    incoming = [
        {"type": "http.request", "body": content[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    out: list[Any] = []

    async def receive() -> Any:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(event: Any) -> None:
        out.append(event)

    await api.app(scope, receive, send)
    return out


async def test_a_client_that_leaves_mid_body_is_the_routes(pair: tuple[Api, Api]) -> None:
    fast, route = pair
    # (the route treats a vanished client as a failure: 500; unchanged)
    assert await _leave_mid_body(fast) == await _leave_mid_body(route)
    assert fast.accepted == route.accepted == []
