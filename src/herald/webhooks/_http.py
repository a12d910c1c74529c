"""herald's HTTP/1.1 client for webhook POSTs: keep-alive, per-origin bounds (private).

Why not httpx or aiohttp: CPU of the sending process per signed POST, 32 in
flight over loopback, ``bench/webhooks.py`` (median of 3, 2-core machine,
2026-12-06): this client 18 µs on asyncio and 15 µs on uvloop; aiohttp's
``ClientSession`` 62 and 56 µs; httpx as the sender used it, 618 µs (and a
new connection per POST). A webhook sender must fit claim, payload,
signature and bookkeeping in 150 µs; aiohttp would take a third of that
alone. This module is kept to what a webhook sender needs: ``POST`` with a
body, a status and a bounded error text back, nothing else (no redirects,
decompression, proxies, cookies or environment).

Theory of operation
-------------------
**Origins and pools.** An :class:`Origin` (scheme, host, port, and the
address to connect to when DNS is pinned) is a pool key. Pinned origins of
different host names never share a connection, even on one address, so a
connection opened for one customer's host name is never reused for another.
Each pool owns *slots*: at most ``max_per_origin`` connections exist per
origin, busy, idle or being opened. A POST takes a slot with the newest idle
connection (LIFO: the warm one, and the old ones time out), or a free slot
to open a connection on, or queues FIFO until another POST hands it one.
That queue is the bound on concurrency per endpoint.

**One exchange.** The request (request line, ``Host``, ``User-Agent``,
``Content-Length``, the caller's headers, the body) is built once into one
``bytes`` and written with one ``transport.write``. :class:`_ResponseReader`
(no I/O: bytes in, an outcome out) runs ``httptools.HttpResponseParser``
over what arrives and decides when the answer is complete: by
``Content-Length``, by chunked coding, or by the connection's close
(RFC 9112 §6.3). 1xx interim answers are skipped (101 is refused: nothing
here upgrades). The body of a 2xx is read and dropped, of any other status
the first ``max_error_body`` octets are kept; a body longer than
``max_discard_body`` is not read to its end: the answer is returned and the
connection closed.

**After the answer.** The connection goes back to its pool only if the
answer was whole, the server keeps the connection alive (``Connection``,
HTTP version: llhttp's rule), the request had been written to its end, and
nothing followed the answer. Otherwise it is closed. An idle connection the
server closes leaves the pool at once (``connection_lost``); idle ones are
closed after ``idle_timeout`` (one timer for the client, armed at the oldest)
and beyond ``max_idle_total`` over all origins (the oldest first).

**The reuse race.** A server may close an idle connection just as a request
goes out on it. If a *reused* connection ends before any octet of the answer
arrived, the request is sent once more on a new connection (RFC 9112 §9.3.1
lets a client retry when it knows the server did not answer; webhooks are
de-duplicated by event id anyway). A fresh connection, or one that delivered
part of an answer, is never retried.

**Cancellation** (the caller's ``asyncio.timeout`` around :meth:`HttpClient.post`)
aborts the connection the POST held; it never returns to a pool.

Nothing here blocks or starts a thread of its own. A host name without a
pinned address is resolved by the event loop (``loop.getaddrinfo``; the
default loop runs it in its executor). It runs on the default loop and on
uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import ssl
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, cast

import httptools

from herald import __version__

__all__ = [
    "DEFAULT_USER_AGENT",
    "MAX_RESPONSE_HEAD",
    "ClientClosed",
    "ClientError",
    "ConnectFailed",
    "ConnectionBroken",
    "HttpClient",
    "InvalidRequest",
    "Origin",
    "ProtocolViolation",
    "Response",
]

DEFAULT_USER_AGENT: Final = f"herald-webhooks/{__version__}"
#: Octets of status lines and header fields of one answer, 1xx interim answers
#: included, before it is refused as a :class:`ProtocolViolation`. Servers send
#: well under 8 KiB; nginx refuses *requests* with more than 32 KiB of headers.
#: The bound also ends an endless stream of ``100 Continue``.
MAX_RESPONSE_HEAD: Final = 64 * 1024
#: Header names the client writes itself: a caller's copy would change the
#: framing or the target of the request (request smuggling).
_RESERVED_NAMES: Final = frozenset({b"host", b"content-length", b"transfer-encoding"})
#: Distinct header names remembered as checked (a sender uses about five);
#: beyond this a name is checked on every call instead.
_MAX_KNOWN_NAMES: Final = 64
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: RFC 9110 §5.6.2 token: the characters of a header field name.
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 9112 §3.2.1 origin-form: "/" then visible ASCII (the caller percent-encodes).
_TARGET: Final = re.compile(rb"/[\x21-\x7e]*")
#: A host as a URL parser gives it: a DNS name (IDNA-encoded) or an IP literal.
_HOST: Final = re.compile(r"[0-9A-Za-z._:-]+")

# _ResponseReader.feed outcomes.
_MORE: Final = 0  # the answer is not complete: feed more
_KEEP: Final = 1  # complete; the connection may carry another request
_CLOSE: Final = 2  # the answer is known; the connection must be closed


# -- values and errors ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a POST goes, and the key of a pool of connections.

    ``host`` is the URL's host name in lower case, without IPv6 brackets: it
    goes into ``Host``, TLS SNI and the certificate check. ``address`` is the
    IP address to connect to instead of resolving ``host`` (DNS pinning: the
    caller resolved and checked it); ``None`` lets the event loop resolve.
    """

    scheme: str  # "http" | "https"
    host: str
    port: int
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """An answer: status, reason phrase, and for a non-2xx the first octets of its body.

    ``head`` holds at most ``max_error_body`` octets of a non-2xx body (raw:
    no decoding, no decompression); it is ``b""`` for a 2xx. A 3xx is an
    answer like any other: redirects are not followed.
    """

    status: int
    reason: str
    head: bytes


class ClientError(Exception):
    """Base of the errors of :class:`HttpClient`.

    Remote (the network's or the server's doing, worth retrying later):
    :class:`ConnectFailed`, :class:`ConnectionBroken`, :class:`ProtocolViolation`.
    Local (the caller's misuse, retrying cannot help): :class:`InvalidRequest`,
    :class:`ClientClosed`.
    """


class ConnectFailed(ClientError):
    """No connection: the name did not resolve, the port refused, the address is
    unreachable, or the TLS handshake or certificate check failed. Nothing was sent."""


class ConnectionBroken(ClientError):
    """The connection was reset or closed before the whole answer arrived. The server
    may have acted on the request (a webhook receiver de-duplicates by event id)."""


class ProtocolViolation(ClientError):
    """The answer is not HTTP/1.1 this client accepts: unparsable, a 101, or status
    line and headers over :data:`MAX_RESPONSE_HEAD`. The connection was closed."""


class InvalidRequest(ClientError, ValueError):
    """The origin, target or a header cannot be sent as given (a CR or LF in a value,
    a non-token header name, a reserved name such as ``Host``, a bad port)."""


class ClientClosed(ClientError, RuntimeError):
    """:meth:`HttpClient.post` after :meth:`HttpClient.aclose`."""


class _Stale(ConnectionBroken):
    """A reused connection ended before any octet of the answer: the reuse race."""


class _Halt(Exception):
    """Raised in a parser callback to stop llhttp; the reason is in ``_violation``."""


# -- the answer, from bytes (no I/O) ----------------------------------------------------------


class _ResponseReader:
    """Reads one answer at a time off a connection's byte stream.

    ``start()`` before each request; ``feed(data)`` with what arrives, until it
    returns ``_KEEP`` or ``_CLOSE`` (then ``response()``) or raises
    :class:`ProtocolViolation`; ``feed_eof()`` when the server closed its side.
    The methods named ``on_*`` are httptools' callbacks.
    """

    __slots__ = (
        "_body_seen", "_complete", "_framed", "_head", "_head_bytes", "_head_needed",
        "_headers_done", "_interim", "_keep_alive", "_length", "_max_discard_body",
        "_max_error_body", "_parser", "_raw_head", "_reason", "_status", "_violation",
        "received",
    )  # fmt: skip

    def __init__(self, max_error_body: int, max_discard_body: int) -> None:
        self._max_error_body = max_error_body
        self._max_discard_body = max_discard_body
        self._parser = httptools.HttpResponseParser(self)
        self.start()

    def start(self) -> None:
        """Forget the last answer; the next octets begin a new one."""
        self.received = False  # any octet of this answer yet (the reuse race needs none)
        self._status = 0
        self._reason = b""
        self._head = b""
        self._head_needed = 0
        self._body_seen = 0
        self._head_bytes = 0  # status lines and header fields, as parsed
        self._raw_head = 0  # octets fed while the head was incomplete
        self._length = -1  # Content-Length, -1 if none
        self._framed = False  # Content-Length or chunked: the end is known without a close
        self._headers_done = False
        self._interim = False
        self._complete = False
        self._keep_alive = False
        self._violation = ""

    def feed(self, data: bytes) -> int:
        """Take the next octets; ``_MORE``, ``_KEEP`` or ``_CLOSE``, or ProtocolViolation."""
        self.received = True
        if not self._headers_done:
            self._raw_head += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise ProtocolViolation("the server switched protocols unasked") from None
        except httptools.HttpParserError as exc:
            if self._complete:
                # Octets after a whole answer, unasked: keep the answer, drop the connection.
                return _CLOSE
            raise ProtocolViolation(self._violation or f"unparsable answer: {exc}") from None
        if self._complete:
            return _KEEP if self._keep_alive else _CLOSE
        if not self._headers_done:
            if self._raw_head > MAX_RESPONSE_HEAD:
                raise ProtocolViolation(f"answer head over {MAX_RESPONSE_HEAD} octets")
            return _MORE
        max_discard = self._max_discard_body
        if (self._body_seen > max_discard or self._length > max_discard) and len(
            self._head
        ) >= self._head_needed:
            return _CLOSE  # not worth reading to its end to keep the connection
        return _MORE

    def feed_eof(self) -> int:
        """The server closed its side: ``_CLOSE`` if that ends the answer, else ConnectionBroken."""
        if self._complete:
            return _CLOSE
        if self._headers_done and not self._framed:
            # RFC 9112 §6.3 item 8: no Content-Length, not chunked: the close ends the body.
            self._complete = True
            return _CLOSE
        if not self.received:
            raise ConnectionBroken("the server closed the connection without answering")
        raise ConnectionBroken("the server closed the connection in the middle of the answer")

    def response(self) -> Response:
        return Response(self._status, self._reason.decode("latin-1"), self._head)

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            raise _Halt  # a second answer to one request: stop at the first

    def on_status(self, reason: bytes) -> None:
        self._reason += reason  # llhttp may hand a field over in pieces
        self._count_head(len(reason) + 15)  # "HTTP/1.1 200 " + CRLF

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)  # ": " + CRLF
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self._length = int(value)  # llhttp checked the digits
            self._framed = True
        elif size == 17 and name.lower() == b"transfer-encoding":
            # RFC 9112 §6.3 item 4: chunked only if it is the final coding.
            self._framed = value.rstrip().lower().endswith(b"chunked")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                self._violation = "101 Switching Protocols (no upgrade was asked)"
                raise _Halt
            self._interim = True  # RFC 9110 §15.2: skip it, the final answer follows
            return
        self._status = status
        self._headers_done = True
        self._head_needed = 0 if status < 300 else self._max_error_body

    def on_body(self, body: bytes) -> None:
        self._body_seen += len(body)
        need = self._head_needed - len(self._head)
        if need > 0:
            self._head += body[:need]

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._reason = b""
            self._length = -1
            self._framed = False
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()

    def _count_head(self, octets: int) -> None:
        self._head_bytes += octets
        if self._head_bytes > MAX_RESPONSE_HEAD:
            self._violation = f"answer head over {MAX_RESPONSE_HEAD} octets"
            raise _Halt


# -- one connection ------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """The asyncio shell of one connection: writes a request, feeds the reader, settles."""

    __slots__ = ("_client", "_loop", "_reader", "_waiter", "closed", "idle_since", "keep",
                 "pool", "served", "transport")  # fmt: skip

    transport: asyncio.Transport  # set by connection_made, before anyone uses the connection

    def __init__(self, client: HttpClient, pool: _Pool, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop
        self._reader = _ResponseReader(client.max_error_body, client.max_discard_body)
        self._waiter: asyncio.Future[Response] | None = None
        self.pool = pool
        self.closed = False
        self.keep = False  # the last exchange left the connection fit for another
        self.served = 0  # answers completed on it
        self.idle_since = 0.0

    async def exchange(self, request: bytes) -> Response:
        """Send ``request``, return the answer; ``keep`` then says whether to pool it."""
        if self.closed or self.transport.is_closing():  # lost since its hand-over
            raise _Stale("the connection closed before the request went out")
        self._reader.start()
        self.keep = False
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self.transport.write(request)
        try:
            return await waiter
        finally:
            if self._waiter is waiter:  # cancelled before an outcome: never pooled
                self._waiter = None
                self.transport.abort()

    def shut(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()  # the rest of a request nobody reads: do not wait to flush it
        else:
            transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing was asked: a server out of step (RFC 9112 §9.3: answers come in order).
            self.keep = False
            self._client._forget_idle(self)
            self.transport.abort()
            return
        try:
            outcome = self._reader.feed(data)
        except ProtocolViolation as exc:
            self._fail(exc)
            return
        if outcome != _MORE:
            self._succeed(outcome)

    def eof_received(self) -> bool:
        self._ended("")
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended(f" ({exc})" if exc is not None else "")
        self._client._forget_idle(self)

    # -- settling ------------------------------------------------------------------------

    def _ended(self, why: str) -> None:
        if self._waiter is None:
            return
        try:
            if why:  # a reset: whatever arrived may be cut short
                raise ConnectionBroken("the connection was reset" + why)
            outcome = self._reader.feed_eof()
        except ConnectionBroken as exc:
            if self.served and not self._reader.received:
                exc = _Stale(str(exc))
            self._fail(exc)
            return
        self._succeed(outcome)

    def _succeed(self, outcome: int) -> None:
        waiter = cast(asyncio.Future[Response], self._waiter)
        self._waiter = None
        # An answer that came before the request was all written: the server is out
        # of step with what it read, so the connection is not reused.
        self.keep = outcome == _KEEP and not self.transport.get_write_buffer_size()
        if self.keep:
            self.served += 1
        else:
            self.shut()
        if not waiter.done():
            waiter.set_result(self._reader.response())

    def _fail(self, exc: ClientError) -> None:
        waiter = cast(asyncio.Future[Response], self._waiter)
        self._waiter = None
        self.keep = False
        self.transport.abort()
        if not waiter.done():
            waiter.set_exception(exc)


# -- pools and the client ---------------------------------------------------------------------


class _Pool:
    """The connections of one origin: idle ones (LIFO), open slots, waiting POSTs (FIFO)."""

    __slots__ = ("idle", "open", "origin", "preamble", "waiters")

    def __init__(self, origin: Origin, preamble: bytes) -> None:
        self.origin = origin
        self.preamble = preamble  # " HTTP/1.1\r\nHost: ...\r\nUser-Agent: ...\r\n"
        self.idle: list[_Connection] = []
        self.open = 0  # slots taken: busy, idle and opening connections
        # A waiter gets a connection, or None: "a slot is yours, open one".
        self.waiters: deque[asyncio.Future[_Connection | None]] = deque()


class HttpClient:
    """POSTs over kept-alive HTTP/1.1 connections, pooled per :class:`Origin`.

    ``max_per_origin``: connections per origin, busy or idle (further POSTs
    wait, first come first served). ``idle_timeout``: seconds an idle
    connection is kept. ``max_idle_total``: idle connections over all origins
    (the oldest are closed). ``max_error_body``: octets of a non-2xx body kept
    in :attr:`Response.head`. ``max_discard_body``: octets of a body read (and
    dropped) to keep its connection; a longer one closes it. ``ssl_context``:
    for ``https`` (default: the system's trust store, host name checked).

    Use it from one event loop. Not safe to share between threads.
    """

    def __init__(
        self,
        *,
        max_per_origin: int = 8,
        idle_timeout: float = 30.0,
        max_idle_total: int = 256,
        max_error_body: int = 256,
        max_discard_body: int = 65536,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        if max_per_origin < 1:
            raise ValueError("max_per_origin must be at least 1")
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be a positive number of seconds")
        if max_idle_total < 0:
            raise ValueError("max_idle_total must be >= 0")
        if not 0 <= max_error_body <= max_discard_body:
            raise ValueError("need 0 <= max_error_body <= max_discard_body")
        if not user_agent.isascii() or not user_agent.isprintable():
            raise ValueError("user_agent must be printable ASCII")
        self.max_per_origin = max_per_origin
        self.idle_timeout = idle_timeout
        self.max_idle_total = max_idle_total
        self.max_error_body = max_error_body
        self.max_discard_body = max_discard_body
        self._ssl = ssl_context
        self._user_agent = user_agent.encode("ascii")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pools: dict[Origin, _Pool] = {}
        self._idle: OrderedDict[_Connection, None] = OrderedDict()  # oldest first
        self._sweeper: asyncio.TimerHandle | None = None
        self._known_names: set[bytes] = set()
        self._opened = 0
        self._closed = False

    @property
    def connections_opened(self) -> int:
        """Connections opened so far (TCP, and TLS handshake done)."""
        return self._opened

    @property
    def idle_connections(self) -> int:
        """Idle connections over all origins right now."""
        return len(self._idle)

    async def post(
        self,
        origin: Origin,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> Response:
        """POST ``body`` to ``target`` (path and query, e.g. ``b"/hook?a=1"``) at ``origin``.

        ``headers`` are the caller's (never ``Host``, ``Content-Length`` or
        ``Transfer-Encoding``: the client writes those). Returns the answer,
        whatever its status. Raises :class:`ConnectFailed` (nothing was sent:
        retry later), :class:`ConnectionBroken` or :class:`ProtocolViolation`
        (the server may have acted on it: retry later; receivers de-duplicate),
        :class:`InvalidRequest` (fix the call; retrying cannot help) or
        :class:`ClientClosed`. No time limit of its own: wrap it in
        ``asyncio.timeout``; cancellation closes the connection.
        """
        if self._closed:
            raise ClientClosed("the HTTP client is closed")
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._add_pool(origin)
        try:
            request = self._request(pool.preamble, target, headers, body)
        except InvalidRequest:
            if not pool.open:
                del self._pools[origin]
            raise
        conn: _Connection | None = None
        if pool.idle:
            conn = pool.idle.pop()  # the newest: LIFO
            del self._idle[conn]
        elif pool.open < self.max_per_origin:
            pool.open += 1
        else:
            conn = await self._wait(pool)
        try:
            if conn is None:
                conn = await self._connect(pool)
                return await conn.exchange(request)  # a fresh connection: never retried
            try:
                return await conn.exchange(request)
            except _Stale:
                pass  # the reuse race: once more, on a new connection
            conn = None
            conn = await self._connect(pool)
            return await conn.exchange(request)
        finally:
            self._release(pool, conn)

    async def aclose(self) -> None:
        """Close idle connections; POSTs under way finish, then close theirs.

        Later :meth:`post` calls (and those still waiting for a connection)
        raise :class:`ClientClosed`. Waits for nothing.
        """
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._idle:
            self._drop_idle(next(iter(self._idle)))

    # -- building the request --------------------------------------------------------------

    def _add_pool(self, origin: Origin) -> _Pool:
        default_port = _DEFAULT_PORTS.get(origin.scheme)
        if default_port is None:
            raise InvalidRequest(f"scheme must be http or https, not {origin.scheme!r}")
        if not 0 < origin.port < 65536:
            raise InvalidRequest(f"port must be 1..65535, not {origin.port}")
        if not _HOST.fullmatch(origin.host):
            raise InvalidRequest(f"not a host name or address: {origin.host!r}")
        if origin.address is not None:
            try:
                ipaddress.ip_address(origin.address)
            except ValueError:
                raise InvalidRequest(f"not an IP address: {origin.address!r}") from None
        host = f"[{origin.host}]" if ":" in origin.host else origin.host
        if origin.port != default_port:
            host = f"{host}:{origin.port}"  # RFC 9110 §7.2: the port unless it is the default
        preamble = b" HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n" % (
            host.encode("ascii"),
            self._user_agent,
        )
        pool = self._pools[origin] = _Pool(origin, preamble)
        return pool

    def _request(
        self,
        preamble: bytes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> bytes:
        if not _TARGET.fullmatch(target):
            raise InvalidRequest(f"not an origin-form request target: {target[:80]!r}")
        parts: list[bytes] = []
        known = self._known_names
        for name, value in headers:
            if name not in known:
                self._check_name(name)
            parts += (name, b": ", value, b"\r\n")
        fields = b"".join(parts)
        # One CR and one LF per field, or a value carries a line break (header
        # injection); a NUL is refused by servers and proxies alike.
        lines = len(headers)
        if fields.count(b"\n") != lines or fields.count(b"\r") != lines or b"\0" in fields:
            raise InvalidRequest("a header value contains CR, LF or NUL")
        return b"".join(
            (b"POST ", target, preamble, b"Content-Length: %d\r\n" % len(body), fields,
             b"\r\n", body)
        )  # fmt: skip

    def _check_name(self, name: bytes) -> None:
        if not _TOKEN.fullmatch(name):
            raise InvalidRequest(f"not a header name: {name[:80]!r}")
        if name.lower() in _RESERVED_NAMES:
            raise InvalidRequest(f"{name.decode('ascii')} is written by the client")
        if len(self._known_names) < _MAX_KNOWN_NAMES:
            self._known_names.add(name)

    # -- slots and connections ---------------------------------------------------------------

    async def _wait(self, pool: _Pool) -> _Connection | None:
        """Queue for a slot of ``pool``: a connection handed over, or None (open one)."""
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        pool.waiters.append(waiter)
        try:
            conn = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release(pool, waiter.result())  # handed over as we were cancelled
            else:
                with contextlib.suppress(ValueError):  # gone if skipped as done already
                    pool.waiters.remove(waiter)
            raise
        if self._closed:
            self._release(pool, conn)
            raise ClientClosed("the HTTP client was closed while the POST waited")
        if conn is not None and conn.closed:
            return None  # it died on the way; the slot is ours
        return conn

    async def _connect(self, pool: _Pool) -> _Connection:
        """Open a connection on a slot the caller holds; :class:`ConnectFailed` if none."""
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        origin = pool.origin
        conn = _Connection(self, pool, loop)
        context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            context = self._ssl
            if context is None:
                context = self._ssl = ssl.create_default_context()
        try:
            await loop.create_connection(
                lambda: conn,
                origin.address or origin.host,
                origin.port,
                ssl=context,
                # TLS: SNI and the certificate check name the host, whatever address is used.
                server_hostname=origin.host if context is not None else None,
            )
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            where = f"{origin.scheme}://{origin.host}:{origin.port}"
            if origin.address is not None:
                where += f" at {origin.address}"
            raise ConnectFailed(f"cannot connect to {where}: {exc}") from exc
        self._opened += 1
        return conn

    def _release(self, pool: _Pool, conn: _Connection | None) -> None:
        """Give back a slot, with the connection that holds it (None: no connection)."""
        if conn is not None:
            if conn.keep and not conn.closed and not self._closed:
                self._park(pool, conn)
                return
            conn.shut()
        self._free_slot(pool)

    def _park(self, pool: _Pool, conn: _Connection) -> None:
        """Hand a fit connection to the first waiting POST, or make it idle."""
        waiters = pool.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        conn.idle_since = loop.time()
        pool.idle.append(conn)
        self._idle[conn] = None
        if len(self._idle) > self.max_idle_total:
            self._drop_idle(next(iter(self._idle)))
        if self._sweeper is None and self._idle:
            oldest = next(iter(self._idle))
            self._sweeper = loop.call_at(oldest.idle_since + self.idle_timeout, self._sweep)

    def _free_slot(self, pool: _Pool) -> None:
        waiters = pool.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: that POST opens a connection
                return
        pool.open -= 1
        if not pool.open:
            del self._pools[pool.origin]  # no connection, no waiter: forget the origin

    def _drop_idle(self, conn: _Connection) -> None:
        del self._idle[conn]
        conn.pool.idle.remove(conn)
        conn.shut()
        self._free_slot(conn.pool)

    def _forget_idle(self, conn: _Connection) -> None:
        """A connection closed or spoke unasked: if it was idle, it leaves its pool."""
        if conn in self._idle:
            self._drop_idle(conn)

    def _sweep(self) -> None:
        """Close the connections idle for ``idle_timeout``; re-arm at the next one's time."""
        self._sweeper = None
        loop = cast(asyncio.AbstractEventLoop, self._loop)
        expired = loop.time() - self.idle_timeout
        while self._idle:
            oldest = next(iter(self._idle))
            if oldest.idle_since > expired:
                self._sweeper = loop.call_at(oldest.idle_since + self.idle_timeout, self._sweep)
                return
            self._drop_idle(oldest)
