"""Plain sends answered inside the connection (``herald.api._protocol``): over a
real loopback socket, as ``herald serve`` serves them. What the answers say is
``test_fast_send.py``'s (run through this server too); here: which requests
the protocol takes, and that the connection stays well-behaved around them
(pipelining, keep-alive, a client that leaves, shutdown)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from .conftest import Api, ApiFactory, message


@pytest.fixture
def transport() -> str:
    return "uvicorn"


def _request(api: Api, body: Any, *, path: str = "/v1/messages", version: str = "1.1",
             extra: str = "") -> bytes:  # fmt: skip
    content = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/{version}\r\nHost: herald.test\r\n"
        f"Authorization: Bearer {api.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(content)}\r\n{extra}\r\n"
    ).encode() + content


async def _read_answers(
    reader: asyncio.StreamReader, count: int
) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` HTTP/1.1 answers with Content-Length bodies, in order."""
    answers = []
    for _ in range(count):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
        answers.append((status, headers, body))
    return answers


def _url_port(api: Api) -> int:
    return int(str(api.client.base_url).rsplit(":", 1)[1].rstrip("/"))


def _asgi_calls(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sends that reached the app's ASGI fast path (the protocol let them through)."""
    fast = api.app.fast_send  # type: ignore[attr-defined]
    calls: list[str] = []
    serve = fast.serve

    async def counted(scope: Any, receive: Any, send: Any) -> Any:
        calls.append(scope["path"])
        return await serve(scope, receive, send)

    monkeypatch.setattr(fast, "serve", counted)
    return calls


async def test_a_plain_send_is_answered_before_asgi_with_the_servers_headers(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    api: Api = await make_api()
    calls = _asgi_calls(api, monkeypatch)
    response = await api.send(message())
    assert response.status_code == 202, response.text
    assert calls == []  # the protocol answered it
    assert response.headers["server"] == "uvicorn"  # uvicorn's default headers kept
    assert "date" in response.headers
    assert response.headers["location"] == f"/v1/messages/{response.json()['id']}"
    stored = await api.store.get_message(response.json()["id"], account_id=api.account.id)
    assert stored.to == "14155552671"
    # and the connection is kept: the next request on it is answered as well
    again = await api.send(message())
    assert again.status_code == 202
    assert calls == []


@pytest.mark.parametrize(("version", "extra"), [("1.0", ""), ("1.1", "Connection: close\r\n"),
                                                ("1.1", "Expect: 100-continue\r\n")])
async def test_a_send_that_does_not_keep_the_connection_goes_through_asgi(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch, version: str, extra: str
) -> None:
    api: Api = await make_api()
    calls = _asgi_calls(api, monkeypatch)
    reader, writer = await asyncio.open_connection("127.0.0.1", _url_port(api))
    try:
        writer.write(_request(api, message(), version=version, extra=extra))
        if "100-continue" in extra:
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert interim.startswith(b"HTTP/1.1 100")
        [(status, _, body)] = await _read_answers(reader, 1)
    finally:
        writer.close()
    assert status == 202, body
    assert calls == ["/v1/messages"]
    assert len(api.accepted) == 1


async def test_pipelined_requests_are_answered_in_order(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    api: Api = await make_api()
    calls = _asgi_calls(api, monkeypatch)
    reader, writer = await asyncio.open_connection("127.0.0.1", _url_port(api))
    try:
        writer.write(
            _request(api, message(reference="first"))
            + _request(api, message(to="not a number"))  # the route's 422
            + _request(api, message(reference="third"))
            + f"GET /v1/messages?limit=5 HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: Bearer {api.key}\r\n\r\n".encode()
        )  # fmt: skip
        answers = await _read_answers(reader, 4)
    finally:
        writer.close()
    assert [a[0] for a in answers] == [202, 422, 202, 200]
    assert json.loads(answers[0][2])["reference"] == "first"
    assert json.loads(answers[1][2])["errors"][0]["field"] == "to"
    assert json.loads(answers[2][2])["reference"] == "third"
    listed = json.loads(answers[3][2])
    assert {m["reference"] for m in listed["messages"]} == {"first", "third"}
    assert [m.reference for m in api.accepted] == ["first", "third"]
    # the two sends behind a request in progress were queued by uvicorn, through ASGI
    assert len(calls) == 2


async def test_a_client_that_leaves_before_the_answer_leaves_the_message_stored(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    api: Api = await make_api()
    committed = asyncio.Event()
    accept = api.store.accept

    async def slow_accept(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.2)  # the client is gone by the commit
        result = await accept(*args, **kwargs)
        committed.set()
        return result

    monkeypatch.setattr(api.store, "accept", slow_accept)
    _, writer = await asyncio.open_connection("127.0.0.1", _url_port(api))
    writer.write(_request(api, message(reference="gone")))
    await writer.drain()
    writer.close()
    await asyncio.wait_for(committed.wait(), 10)
    assert [m.reference for m in api.accepted] == ["gone"]  # accepted is accepted
    response = await api.send(message())  # and the server serves on
    assert response.status_code == 202


async def test_a_send_over_the_body_limit_is_the_routes_413(make_api: ApiFactory) -> None:
    api: Api = await make_api()
    reader, writer = await asyncio.open_connection("127.0.0.1", _url_port(api))
    limit = api.app.fast_send.max_body  # type: ignore[attr-defined]
    try:
        # Content-Length over what the fast path reads: uvicorn's from the headers on
        content = json.dumps(message(metadata={"pad": "x" * (limit + 10)})).encode()
        writer.write(
            f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n".encode()
            + content
        )
        [(status, _, _)] = await _read_answers(reader, 1)
    finally:
        writer.close()
    assert status == 413
    assert api.accepted == []
