"""herald's webhook HTTP/1.1 client (``herald.webhooks._http``) against real sockets.

Two layers, as STYLE.md item 14 asks:

- the response reader alone, fed annotated answers whole, octet by octet,
  and with trailing octets (no loop, no socket);
- the client against :class:`Peer`, a scripted HTTP/1.1 server on
  127.0.0.1 that counts the connections it accepts and records every
  request, so that reuse, bounds, retries and closes are seen *at the
  receiver*, as a customer would see them.

Every wait is bounded (``asyncio.timeout`` / :func:`eventually`). A few
scenarios run a second time on uvloop (``test_on_uvloop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
import uvloop

from herald.webhooks._http import (
    _CLOSE,
    _KEEP,
    _MORE,
    MAX_RESPONSE_HEAD,
    ClientClosed,
    ConnectFailed,
    ConnectionBroken,
    HttpClient,
    InvalidRequest,
    Origin,
    ProtocolViolation,
    Response,
    _ResponseReader,
)

LOOPBACK = "127.0.0.1"
WAIT = 5.0  # seconds: bound on any one wait in these tests
POLL = 0.005
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
HEADERS = [(b"Content-Type", b"application/json"), (b"Herald-Event-Id", b"evt_1_sent")]
BODY = b'{"event_id":"evt_1_sent","type":"message.status"}'
HOOK_HOST = "hooks.example"


# -- the response reader, no I/O ------------------------------------------------------------------


@dataclass(frozen=True)
class Vector:
    name: str
    wire: bytes
    status: int
    outcome: int  # _KEEP or _CLOSE (after feed_eof() when eof is set)
    head: bytes = b""
    eof: bool = False  # the answer ends with the server's close


VECTORS = [
    Vector("content-length, empty", OK, 200, _KEEP),
    Vector("content-length body, 2xx: dropped",
           b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello", 201, _KEEP),
    Vector("chunked, with a trailer",
           b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n", 200, _KEEP),
    Vector("204: no body whatever the framing", b"HTTP/1.1 204 No Content\r\n\r\n", 204, _KEEP),
    Vector("100 Continue skipped (RFC 9110 §15.2)",
           b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
           202, _KEEP),
    Vector("two 1xx, then the answer",
           b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
           b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, _KEEP),
    Vector("Connection: close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0"
           b"\r\n\r\n", 200, _CLOSE),
    Vector("HTTP/1.0 without keep-alive", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
           200, _CLOSE),
    Vector("HTTP/1.0 with keep-alive",
           b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, _KEEP),
    Vector("close-delimited (RFC 9112 §6.3 item 8)", b"HTTP/1.1 200 OK\r\n\r\nsome body",
           200, _CLOSE, eof=True),
    Vector("500: head kept", b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 11\r\n\r\n"
           b"maintenance", 500, _KEEP, b"maintenance"),
    Vector("503: head cut at max_error_body (16 here)",
           b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 40\r\n\r\n" + b"x" * 16
           + b"y" * 24, 503, _KEEP, b"x" * 16),
    Vector("503 chunked: head across chunks",
           b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\nback\r\n8\r\n in 5 mi\r\n3\r\nnut\r\n0\r\n\r\n", 503, _KEEP,
           b"back in 5 minut"[:16]),
    Vector("302: returned, not followed",
           b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n",
           302, _KEEP),
]  # fmt: skip


def _read(wire: bytes, *, step: int | None, eof: bool) -> tuple[int, Response]:
    reader = _ResponseReader(max_error_body=16, max_discard_body=64)
    outcome = _MORE
    chunks = [wire] if step is None else [wire[i : i + step] for i in range(0, len(wire), step)]
    for chunk in chunks:
        assert outcome == _MORE, "outcome before the last octet"
        outcome = reader.feed(chunk)
    if eof:
        assert outcome == _MORE
        outcome = reader.feed_eof()
    return outcome, reader.response()


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
@pytest.mark.parametrize("step", [None, 1], ids=["whole", "octet-by-octet"])
def test_reader_vectors(vector: Vector, step: int | None) -> None:
    outcome, response = _read(vector.wire, step=step, eof=vector.eof)
    assert (outcome, response.status, response.head) == (vector.outcome, vector.status, vector.head)


def test_reader_reason_phrase_and_reuse_for_the_next_answer() -> None:
    reader = _ResponseReader(16, 64)
    assert reader.feed(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n") == _KEEP
    assert reader.response() == Response(503, "Service Unavailable", b"")
    reader.start()
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == _KEEP
    assert reader.response() == Response(200, "OK", b"")


@pytest.mark.parametrize("trailing", [OK, b"garbage", b"HTTP/1.1 200"])
def test_reader_octets_after_a_whole_answer_close_the_connection(trailing: bytes) -> None:
    reader = _ResponseReader(16, 64)
    assert reader.feed(OK + trailing) == _CLOSE
    assert reader.response().status == 200


@pytest.mark.parametrize(
    "wire",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ],
    ids=["not-http", "bad-status", "bad-length", "bad-chunk", "101"],
)
@pytest.mark.parametrize("step", [None, 1], ids=["whole", "octet-by-octet"])
def test_reader_refuses_what_is_not_an_answer(wire: bytes, step: int | None) -> None:
    with pytest.raises(ProtocolViolation):
        _read(wire, step=step, eof=False)


@pytest.mark.parametrize("one_field", [True, False], ids=["one-huge-field", "many-fields"])
@pytest.mark.parametrize("step", [None, 4096], ids=["whole", "4k-reads"])
def test_reader_bounds_the_head(one_field: bool, step: int | None) -> None:
    if one_field:
        fields = b"X-Big: " + b"a" * MAX_RESPONSE_HEAD + b"\r\n"
    else:
        fields = b"".join(b"X-%d: %s\r\n" % (n, b"b" * 1000) for n in range(70))
    wire = b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n"
    with pytest.raises(ProtocolViolation, match="head over"):
        _read(wire, step=step, eof=False)


def test_reader_endless_interim_answers_hit_the_head_bound() -> None:
    reader = _ResponseReader(16, 64)
    with pytest.raises(ProtocolViolation, match="head over"):
        for _ in range(MAX_RESPONSE_HEAD):
            assert reader.feed(b"HTTP/1.1 100 Continue\r\n\r\n") == _MORE


def test_reader_stops_at_a_long_2xx_body_without_reading_it() -> None:
    reader = _ResponseReader(16, 64)
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n") == _CLOSE
    reader = _ResponseReader(16, 64)  # chunked: known to be long only once past the bound
    assert reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == _MORE
    assert reader.feed(b"40\r\n" + b"z" * 64 + b"\r\n") == _MORE
    assert reader.feed(b"1\r\nz\r\n") == _CLOSE


def test_reader_long_error_body_keeps_its_head_then_stops() -> None:
    reader = _ResponseReader(16, 64)
    assert reader.feed(b"HTTP/1.1 500 Oops\r\nContent-Length: 1000000\r\n\r\nabc") == _MORE
    assert reader.feed(b"d" * 20) == _CLOSE
    assert reader.response() == Response(500, "Oops", b"abc" + b"d" * 13)


@pytest.mark.parametrize(
    "wire",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Le", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"],
    ids=["nothing", "in-the-head", "short-body", "unfinished-chunks"],
)  # fmt: skip
def test_reader_a_close_before_the_end_is_a_broken_connection(wire: bytes) -> None:
    reader = _ResponseReader(16, 64)
    if wire:
        assert reader.feed(wire) == _MORE
    with pytest.raises(ConnectionBroken):
        reader.feed_eof()


# -- a scripted receiver --------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How :class:`Peer` answers one request."""

    data: bytes = OK  # written as is (b"": nothing)
    close: bool = False  # then close the connection (no Connection: close said)
    hang: bool = False  # then read and drop until the client goes
    stall: bool = False  # then neither read nor write until the test ends
    read_body: bool = True  # read the request body before answering
    later: bytes = b""  # written LATER seconds after ``data``, unasked
    pause: float = 0.0  # seconds before answering


LATER = 0.05


@dataclass
class Seen:
    connection: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Peer:
    """An HTTP/1.1 server on 127.0.0.1 that answers from ``script`` (then ``default``)."""

    tls: ssl.SSLContext | None = None
    rcvbuf: int = 0  # SO_RCVBUF of accepted connections (0: the system's, autotuned)
    default: Answer = field(default_factory=Answer)
    script: deque[Answer] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    closed: int = 0  # connections the client closed or that we closed
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def origin(self, host: str = LOOPBACK, address: str | None = None) -> Origin:
        return Origin("https" if self.tls else "http", host, self.port, address)

    async def __aenter__(self) -> Peer:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._release.set()
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        async with asyncio.timeout(WAIT):
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        if self.rcvbuf:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                                       self.rcvbuf)  # fmt: skip
        self._writers.add(writer)
        try:
            while await self._one(number, reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.closed += 1
            self._writers.discard(writer)
            writer.close()

    async def _one(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        answer = self.script.popleft() if self.script else self.default
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if answer.read_body else b""
        self.requests.append(Seen(number, method, target, headers, body))
        if answer.pause:
            await asyncio.sleep(answer.pause)
        writer.write(answer.data)
        await writer.drain()
        if answer.later:
            await asyncio.sleep(LATER)
            writer.write(answer.later)
        if answer.stall:
            await self._release.wait()
            return False
        if answer.hang:
            while await reader.read(65536):
                pass
            return False
        return not answer.close


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        await asyncio.sleep(POLL)


@contextlib.asynccontextmanager
async def client(**options: Any) -> AsyncIterator[HttpClient]:
    http = HttpClient(**options)
    try:
        yield http
    finally:
        await http.aclose()


async def post(http: HttpClient, origin: Origin, body: bytes = BODY) -> Response:
    async with asyncio.timeout(WAIT):
        return await http.post(origin, b"/hook?a=1", HEADERS, body)


# -- keep-alive and the per-origin bound ----------------------------------------------------------


async def test_sequential_posts_share_one_connection() -> None:
    async with Peer() as peer, client() as http:
        for n in range(20):
            assert (await post(http, peer.origin(), b"%d" % n)).status == 200
        assert peer.connections == 1
        assert http.connections_opened == 1
        assert [r.body for r in peer.requests] == [b"%d" % n for n in range(20)]
        seen = peer.requests[0]
        assert (seen.method, seen.target) == ("POST", "/hook?a=1")
        assert seen.headers["host"] == f"{LOOPBACK}:{peer.port}"
        assert seen.headers["content-length"] == str(len(b"0"))
        assert seen.headers["user-agent"].startswith("herald-webhooks/")
        assert seen.headers["herald-event-id"] == "evt_1_sent"


async def test_32_concurrent_posts_use_at_most_8_connections() -> None:
    async with Peer(default=Answer(pause=0.01)) as peer, client(max_per_origin=8) as http:
        answers = await asyncio.gather(*(post(http, peer.origin()) for _ in range(32)))
        assert [a.status for a in answers] == [200] * 32
        assert peer.connections == http.connections_opened == 8
        assert len(peer.requests) == 32


async def test_waiting_posts_are_served_first_come_first_served() -> None:
    async with Peer() as peer, client(max_per_origin=1) as http:
        tasks = []
        for n in range(6):
            tasks.append(asyncio.create_task(post(http, peer.origin(), b"%d" % n)))
            await asyncio.sleep(0)  # it takes its place in the queue
        await asyncio.gather(*tasks)
        assert [r.body for r in peer.requests] == [b"0", b"1", b"2", b"3", b"4", b"5"]
        assert peer.connections == 1


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    async with Peer(default=Answer(pause=0.05)) as peer, client(max_per_origin=1) as http:
        first = asyncio.create_task(post(http, peer.origin(), b"first"))
        await asyncio.sleep(0)
        doomed = asyncio.create_task(post(http, peer.origin(), b"doomed"))
        last = asyncio.create_task(post(http, peer.origin(), b"last"))
        await asyncio.sleep(0)
        doomed.cancel()
        assert (await first).status == (await last).status == 200
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert [r.body for r in peer.requests] == [b"first", b"last"]
        assert peer.connections == 1


async def test_pinned_origins_of_different_hosts_never_share_a_connection() -> None:
    async with Peer() as peer, client() as http:
        a, b = peer.origin("a.example", LOOPBACK), peer.origin("b.example", LOOPBACK)
        for origin in (a, b, a, b):
            assert (await post(http, origin)).status == 200
        assert peer.connections == 2
        hosts = [(r.connection, r.headers["host"]) for r in peer.requests]
        assert hosts == [(1, f"a.example:{peer.port}"), (2, f"b.example:{peer.port}")] * 2


async def test_idle_connections_beyond_max_idle_total_close_oldest_first() -> None:
    async with Peer() as peer, client(max_idle_total=1) as http:
        a, b = peer.origin("a.example", LOOPBACK), peer.origin("b.example", LOOPBACK)
        await post(http, a)
        await post(http, b)  # a's connection is the oldest idle one: closed
        await eventually(lambda: peer.closed == 1, "the server saw a's connection close")
        assert http.idle_connections == 1
        await post(http, b)
        assert peer.connections == 2


async def test_idle_connections_close_after_idle_timeout() -> None:
    async with Peer() as peer, client(idle_timeout=0.05) as http:
        await post(http, peer.origin())
        assert http.idle_connections == 1
        await eventually(lambda: peer.closed == 1, "the idle connection closed")
        assert http.idle_connections == 0
        await post(http, peer.origin())
        assert peer.connections == 2


# -- framing of answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reused"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nwell receivd", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwell\r\n0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    ],
    ids=["content-length", "chunked", "connection-close", "http-1.0", "100-continue"],
)
async def test_answer_framing_and_reuse(data: bytes, reused: bool) -> None:
    async with Peer(default=Answer(data)) as peer, client() as http:
        for _ in range(3):
            assert (await post(http, peer.origin())).status == 200
        assert peer.connections == (1 if reused else 3)


async def test_close_delimited_answer_ends_with_the_close() -> None:
    script = Answer(b"HTTP/1.1 503 Service Unavailable\r\n\r\ntry later", close=True)
    async with Peer(script=deque([script])) as peer, client() as http:
        answer = await post(http, peer.origin())
        assert answer == Response(503, "Service Unavailable", b"try later")
        assert (await post(http, peer.origin())).status == 200
        assert peer.connections == 2


async def test_oversized_2xx_body_closes_the_connection() -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"z" * 1000
    async with Peer(script=deque([Answer(big, hang=True)])) as peer, client() as http:
        assert await post(http, peer.origin()) == Response(200, "OK", b"")
        await eventually(lambda: peer.closed == 1, "the connection closed")
        await post(http, peer.origin())
        assert peer.connections == 2


async def test_oversized_chunked_body_closes_the_connection() -> None:
    chunk = b"%x\r\n%s\r\n" % (4096, b"z" * 4096)
    big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 20
    async with Peer(script=deque([Answer(big, hang=True)])) as peer, client() as http:
        assert (await post(http, peer.origin())).status == 200
        await eventually(lambda: peer.closed == 1, "the connection closed")
        assert http.idle_connections == 0


async def test_error_head_is_truncated_and_the_connection_kept() -> None:
    page = b"<html>" + b"e" * 994
    data = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 1000\r\n\r\n" + page
    async with Peer(script=deque([Answer(data)])) as peer, client(max_error_body=100) as http:
        assert await post(http, peer.origin()) == Response(500, "Internal Server Error", page[:100])
        assert (await post(http, peer.origin())).status == 200
        assert peer.connections == 1


async def test_large_error_body_keeps_its_head_and_closes() -> None:
    data = b"HTTP/1.1 503 Busy\r\nContent-Length: 10000000\r\n\r\nmaintenance " + b"." * 5000
    async with Peer(script=deque([Answer(data, hang=True)])) as peer, client() as http:
        answer = await post(http, peer.origin())
        assert (answer.status, answer.head) == (503, (b"maintenance " + b"." * 5000)[:256])
        await eventually(lambda: peer.closed == 1, "the connection closed")


async def test_redirects_are_returned_not_followed() -> None:
    data = b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"
    async with Peer(script=deque([Answer(data)])) as peer, client() as http:
        assert (await post(http, peer.origin())).status == 302
        assert len(peer.requests) == 1


async def test_octets_after_the_answer_in_the_same_read_close_the_connection() -> None:
    async with Peer(script=deque([Answer(OK + OK)])) as peer, client() as http:
        assert (await post(http, peer.origin())).status == 200
        assert http.idle_connections == 0
        await post(http, peer.origin())
        assert peer.connections == 2


async def test_octets_on_an_idle_connection_close_it() -> None:
    unasked = Answer(OK, later=b"HTTP/1.1 200 OK\r\n")
    async with Peer(script=deque([unasked])) as peer, client() as http:
        await post(http, peer.origin())
        await eventually(lambda: peer.closed == 1, "the idle connection closed")
        assert http.idle_connections == 0
        await post(http, peer.origin())
        assert peer.connections == 2


async def test_answer_before_the_request_was_written_closes_the_connection() -> None:
    early = b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n"
    script = deque([Answer(early, read_body=False, stall=True)])
    async with Peer(rcvbuf=65536, script=script) as peer, client() as http:
        body = b"x" * (16 << 20)  # more than the socket buffers on the way take
        assert (await post(http, peer.origin(), body)).status == 413
        assert http.idle_connections == 0
        assert (await post(http, peer.origin())).status == 200
        assert peer.connections == 2


# -- failures -------------------------------------------------------------------------------------


async def test_garbage_is_a_protocol_violation() -> None:
    garbage = Answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", hang=True)
    async with Peer(script=deque([garbage])) as peer, client() as http:
        with pytest.raises(ProtocolViolation):
            await post(http, peer.origin())
        await eventually(lambda: peer.closed == 1, "the connection closed")


async def test_101_is_a_protocol_violation() -> None:
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
    async with Peer(script=deque([Answer(data, hang=True)])) as peer, client() as http:
        with pytest.raises(ProtocolViolation, match="101"):
            await post(http, peer.origin())


async def test_oversized_answer_head_is_a_protocol_violation() -> None:
    fields = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"f" * 1000) for n in range(100))
    data = b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n"
    async with Peer(script=deque([Answer(data, hang=True)])) as peer, client() as http:
        with pytest.raises(ProtocolViolation, match="head over"):
            await post(http, peer.origin())
        await eventually(lambda: peer.closed == 1, "the connection closed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


async def test_refused_port_is_connect_failed() -> None:
    async with client() as http:
        with pytest.raises(ConnectFailed, match="cannot connect"):
            await post(http, Origin("http", LOOPBACK, _free_port(), None))
        assert http.connections_opened == 0


async def test_a_refused_connection_passes_its_slot_on() -> None:
    async with client(max_per_origin=1) as http:
        origin = Origin("http", LOOPBACK, _free_port(), None)
        results = await asyncio.gather(*(post(http, origin) for _ in range(3)),
                                       return_exceptions=True)  # fmt: skip
        assert [type(r) for r in results] == [ConnectFailed] * 3


async def test_reused_connection_closed_as_we_sent_is_retried_once() -> None:
    # The second request reaches a connection the server closes without answering.
    script = deque([Answer(), Answer(b"", close=True)])
    async with Peer(script=script) as peer, client() as http:
        await post(http, peer.origin(), b"one")
        assert (await post(http, peer.origin(), b"two")).status == 200
        assert [(r.connection, r.body) for r in peer.requests] == [
            (1, b"one"), (1, b"two"), (2, b"two")
        ]  # fmt: skip
        assert http.connections_opened == 2


async def test_fresh_connection_is_not_retried() -> None:
    async with Peer(script=deque([Answer(b"", close=True)])) as peer, client() as http:
        with pytest.raises(ConnectionBroken, match="without answering"):
            await post(http, peer.origin())
        assert len(peer.requests) == 1
        assert peer.connections == 1


async def test_reused_connection_that_answered_in_part_is_not_retried() -> None:
    script = deque([Answer(), Answer(b"HTTP/1.1 200 OK\r\nContent-Le", close=True)])
    async with Peer(script=script) as peer, client() as http:
        await post(http, peer.origin())
        with pytest.raises(ConnectionBroken, match="middle"):
            await post(http, peer.origin())
        assert len(peer.requests) == 2
        assert peer.connections == 1


async def test_server_closing_an_idle_connection_drops_it_from_the_pool() -> None:
    async with Peer(script=deque([Answer(close=True)])) as peer, client() as http:
        await post(http, peer.origin())
        await eventually(lambda: http.idle_connections == 0, "the closed connection left")
        assert (await post(http, peer.origin())).status == 200
        assert peer.connections == 2
        assert len(peer.requests) == 2  # a new connection, not a retry


async def test_cancelled_post_closes_its_connection() -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    async with Peer(script=deque([Answer(partial, hang=True)])) as peer, client() as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await http.post(peer.origin(), b"/hook", HEADERS, BODY)
        await eventually(lambda: peer.closed == 1, "the server saw the connection close")
        assert http.idle_connections == 0
        assert (await post(http, peer.origin())).status == 200
        assert peer.connections == 2


# -- the request and the origin -------------------------------------------------------------------


async def test_pinned_address_keeps_the_host_name_in_host() -> None:
    async with Peer() as peer, client() as http:
        await post(http, peer.origin(HOOK_HOST, LOOPBACK))
        assert peer.requests[0].headers["host"] == f"{HOOK_HOST}:{peer.port}"


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (b"/hook\r\nX-Injected: 1", HEADERS),
        (b"hook", HEADERS),
        (b"/a b", HEADERS),
        (b"/hook", [(b"X-Ok", b"a\r\nX-Injected: 1")]),
        (b"/hook", [(b"X-Ok", b"a\nb")]),
        (b"/hook", [(b"X-Ok", b"a\0")]),
        (b"/hook", [(b"Bad Name", b"1")]),
        (b"/hook", [(b"Host", b"evil.example")]),
        (b"/hook", [(b"content-length", b"0")]),
        (b"/hook", [(b"Transfer-Encoding", b"chunked")]),
    ],
)
async def test_requests_that_cannot_be_sent_as_given_are_refused(
    target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    async with Peer() as peer, client() as http:
        with pytest.raises(InvalidRequest):
            await http.post(peer.origin(), target, headers, BODY)
        assert peer.connections == 0


@pytest.mark.parametrize(
    "origin",
    [Origin("ftp", "a.example", 21, None), Origin("http", "a.example", 0, None),
     Origin("http", "a.example\r\nX: 1", 80, None), Origin("http", "a.example", 80, "a.example")],
    ids=["scheme", "port", "host", "address"],
)  # fmt: skip
async def test_unusable_origins_are_refused(origin: Origin) -> None:
    async with client() as http:
        with pytest.raises(InvalidRequest):
            await http.post(origin, b"/", [], b"")


async def test_aclose_closes_idle_connections_and_refuses_more() -> None:
    async with Peer() as peer:
        http = HttpClient()
        await post(http, peer.origin())
        await http.aclose()
        await eventually(lambda: peer.closed == 1, "the idle connection closed")
        with pytest.raises(ClientClosed):
            await post(http, peer.origin())


async def test_aclose_lets_a_busy_post_finish_then_closes_its_connection() -> None:
    async with Peer(default=Answer(pause=0.05)) as peer:
        http = HttpClient(max_per_origin=1)
        busy = asyncio.create_task(post(http, peer.origin()))
        waiting = asyncio.create_task(post(http, peer.origin()))
        await asyncio.sleep(0.01)
        await http.aclose()
        assert (await busy).status == 200
        with pytest.raises(ClientClosed):
            await waiting
        await eventually(lambda: peer.closed == 1, "the connection closed")
        assert len(peer.requests) == 1


def test_settings_are_checked() -> None:
    for bad in (
        {"max_per_origin": 0},
        {"idle_timeout": 0},
        {"max_idle_total": -1},
        {"max_error_body": 100, "max_discard_body": 10},
        {"user_agent": "a\r\nb"},
    ):
        with pytest.raises(ValueError):
            HttpClient(**bad)


# -- TLS ------------------------------------------------------------------------------------------


@functools.cache
def _ca() -> trustme.CA:
    return trustme.CA()


def _server_tls(*names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _ca().issue_cert(*names).configure_cert(context)
    return context


def _client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    _ca().configure_trust(context)
    return context


async def test_tls_keeps_its_connection_alive() -> None:
    async with Peer(tls=_server_tls(LOOPBACK)) as peer, client(ssl_context=_client_tls()) as http:
        for _ in range(3):
            assert (await post(http, peer.origin())).status == 200
        assert peer.connections == 1


async def test_tls_pinned_address_checks_the_certificate_for_the_host_name() -> None:
    async with Peer(tls=_server_tls(HOOK_HOST)) as peer, client(ssl_context=_client_tls()) as http:
        assert (await post(http, peer.origin(HOOK_HOST, LOOPBACK))).status == 200
        assert peer.requests[0].headers["host"] == f"{HOOK_HOST}:{peer.port}"
        with pytest.raises(ConnectFailed, match="certificate"):
            await post(http, peer.origin("other.example", LOOPBACK))


async def test_tls_untrusted_certificate_is_connect_failed() -> None:
    async with Peer(tls=_server_tls(LOOPBACK)) as peer, client() as http:  # system trust store
        with pytest.raises(ConnectFailed, match="certificate"):
            await post(http, peer.origin())


# -- the same on uvloop ---------------------------------------------------------------------------

ON_UVLOOP: list[Callable[[], Coroutine[Any, Any, None]]] = [
    test_sequential_posts_share_one_connection,
    test_32_concurrent_posts_use_at_most_8_connections,
    test_waiting_posts_are_served_first_come_first_served,
    test_close_delimited_answer_ends_with_the_close,
    test_oversized_2xx_body_closes_the_connection,
    test_reused_connection_closed_as_we_sent_is_retried_once,
    test_fresh_connection_is_not_retried,
    test_cancelled_post_closes_its_connection,
    test_refused_port_is_connect_failed,
    test_tls_keeps_its_connection_alive,
    test_tls_pinned_address_checks_the_certificate_for_the_host_name,
]


@pytest.mark.parametrize("scenario", ON_UVLOOP, ids=lambda f: f.__name__.removeprefix("test_"))
def test_on_uvloop(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)
        runner.run(scenario())
