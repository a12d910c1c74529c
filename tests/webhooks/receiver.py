"""A webhook receiver for tests: a real HTTP/1.1 server on the test's event loop.

Why not ``tests/peers/receiver.HttpReceiver``: these tests need a receiver
that can go down and come back *on the same port*, answer with a script of
statuses, hang without answering, stream an endless body, and report how
many requests it was serving at once. It parses just enough HTTP/1.1 for a
client that sends ``Content-Length`` bodies (httpx does), with keep-alive.

    async with Receiver() as rx:
        rx.script = [Reply(500), Reply(200)]   # then rx.default for the rest
        url = rx.url("/hook")
        (req,) = await rx.wait_for(1)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

LOOPBACK = "127.0.0.1"
# Bounds on what a client can make this server hold.
MAX_HEAD = 64 * 1024
MAX_BODY = 1 << 20
# An endless body stops after this many chunks or seconds, whichever is first,
# so a client that reads it all fails its own timeout instead of hanging a test.
ENDLESS_CHUNK = b"x" * 16384
ENDLESS_MAX_CHUNKS = 100_000
ENDLESS_MAX_SECONDS = 20.0
POLL = 0.005
REASONS = {200: "OK", 204: "No Content", 302: "Found", 410: "Gone", 500: "Internal Server Error",
           503: "Service Unavailable"}  # fmt: skip


@dataclass(frozen=True)
class Reply:
    """How to answer one request. ``mode``: ``"normal"``, ``"hang"`` or ``"endless"``."""

    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()
    mode: str = "normal"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float = field(compare=False)  # time.monotonic()
    reply: Reply = field(compare=False, default=Reply())

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Receiver:
    """Records every request in ``requests``; answers from ``script``, then ``default``."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.script: list[Reply] = []
        self.requests: list[Request] = []
        self.active = 0  # requests being answered right now
        self.max_active = 0
        self.connections = 0  # TCP connections accepted so far
        self.release = asyncio.Event()  # set: hanging requests end (with a 200)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("receiver not started")
        return self._port

    def url(self, path: str = "/hook") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    async def start(self, port: int = 0) -> Receiver:
        """Listen on ``port`` (0: an ephemeral one; the same one again after ``close``)."""
        self.release.clear()
        self._server = await asyncio.start_server(
            self._serve, LOOPBACK, port or self._port, reuse_address=True, limit=MAX_HEAD
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and drop every connection (the port is then closed)."""
        server, self._server = self._server, None
        if server is None:
            return
        self.release.set()
        server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await server.wait_closed()

    async def __aenter__(self) -> Receiver:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def wait_for(
        self,
        count: int,
        predicate: Callable[[Request], bool] = lambda _: True,
        *,
        timeout: float = 10.0,
    ) -> list[Request]:
        """The first ``count`` requests matching ``predicate``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / POLL) + 1):
            found = [r for r in self.requests if predicate(r)]
            if len(found) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL)
        found = [r for r in self.requests if predicate(r)]
        if len(found) < count:
            raise AssertionError(
                f"receiver: {len(found)} of {count} requests within {timeout} s;"
                f" got {[(r.method, r.path, r.reply.status) for r in self.requests]}"
            )
        return found[:count]

    # -- serving ----------------------------------------------------------------------

    def _next_reply(self) -> Reply:
        return self.script.pop(0) if self.script else self.default

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY:
            raise ConnectionError("body too large")
        body = await reader.readexactly(length) if length else b""
        reply = self._next_reply()
        self.requests.append(Request(method, path, headers, body, time.monotonic(), reply))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            return await self._answer(writer, reply)
        finally:
            self.active -= 1

    async def _answer(self, writer: asyncio.StreamWriter, reply: Reply) -> bool:
        if reply.mode == "hang":
            await self.release.wait()
            reply = Reply(200)
        reason = REASONS.get(reply.status, "Status")
        head = [f"HTTP/1.1 {reply.status} {reason}", *(f"{k}: {v}" for k, v in reply.headers)]
        if reply.mode == "endless":
            head.append("Transfer-Encoding: chunked")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            deadline = time.monotonic() + ENDLESS_MAX_SECONDS
            for _ in range(ENDLESS_MAX_CHUNKS):
                if time.monotonic() > deadline:
                    break
                writer.write(b"%x\r\n%s\r\n" % (len(ENDLESS_CHUNK), ENDLESS_CHUNK))
                await writer.drain()  # raises once the client has gone: that ends us
                await asyncio.sleep(0.001)
            return False
        head.append(f"Content-Length: {len(reply.body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)
        await writer.drain()
        return True
