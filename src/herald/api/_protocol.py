"""``POST /v1/messages`` answered inside the HTTP connection, before ASGI.

Theory of operation
-------------------
:class:`~herald.api._fast.FastSend` spares a plain send the framework; what
remained of the server's share was uvicorn's ASGI machinery per request (a
scope, a request cycle, an ``asyncio.Event``, a task running the app, a
``receive`` and two ``send`` awaits) and two socket writes, one for the head
and one for the body: about 40 of a plain send's 116 µs of server CPU
(``docs/performance.md``). :func:`protocol_for` gives uvicorn a subclass of
its own httptools protocol that, for a request that can be plain, reads the
body itself and runs the same :class:`FastSend` steps as one task, then
writes the answer in one call, with uvicorn's default headers.

Which requests: ``POST /v1/messages`` exactly (no query), HTTP/1.1 kept
alive, no ``Expect: 100-continue``, no request of the connection still being
answered (pipelined requests queue behind it as uvicorn queues them), and the
headers :meth:`FastSend.plain_headers` accepts (a Content-Length within what
the fast path reads). Anything else is uvicorn's, untouched. A candidate
whose body turns out not to be plain is handed to uvicorn as if it had just
arrived, its body replayed: the FastAPI route answers it as it always has. Nothing is
charged or stored before that decision.

uvicorn sees the request being answered through a stand-in for its request
cycle (:class:`_Answering`): a lost connection marks it disconnected (the
answer is then not written; what was stored stays stored, as with any client
that leaves), a graceful shutdown closes the connection after the answer, and
the answer's end starts a queued pipelined request or arms the keep-alive
timer. The class leans on uvicorn's protocol internals (``cycle``,
``pipeline``, ``on_response_complete``, ``server_state``): the uvicorn range
in ``pyproject.toml`` is what ``tests/api/test_protocol.py`` runs against.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Final, Literal

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ._fast import SEND_PATH, FastSend, Plain

__all__ = ["protocol_for"]

log = logging.getLogger("herald.api")

_PATH: Final = SEND_PATH.encode()


class _NoEvent:
    """uvicorn sets its cycle's event on a lost connection; nothing waits on ours."""

    __slots__ = ()

    def set(self) -> None:
        pass


_NO_EVENT: Final = _NoEvent()


class _Answering:
    """What uvicorn sees as the connection's request cycle while the fast path
    answers (the attributes its protocol reads and sets)."""

    __slots__ = ("disconnected", "keep_alive", "response_complete")
    message_event: ClassVar[_NoEvent] = _NO_EVENT

    def __init__(self) -> None:
        self.response_complete = False
        self.disconnected = False
        self.keep_alive = True


class FastSendProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with plain sends answered in place."""

    fast_send: ClassVar[FastSend]

    _reading: list[bytes] | None = None  # a candidate's body so far
    _authorization: bytes | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = None

    def on_headers_complete(self) -> None:
        authorization = self._candidate()
        if authorization is False:
            super().on_headers_complete()
            return
        self._reading = []
        self._authorization = authorization

    def _candidate(self) -> bytes | Literal[False] | None:
        """``False``, or the request's ``Authorization`` (see the module docstring)."""
        parser = self.parser
        if (
            self.url != _PATH
            or parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
            or self.expect_100_continue
            or self.limit_concurrency is not None
        ):
            return False
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return False  # uvicorn queues a pipelined request behind the one answered
        return self.fast_send.plain_headers(self.scope)  # type: ignore[arg-type]

    def on_body(self, body: bytes) -> None:
        # A candidate's Content-Length is within the fast path's limit
        # (plain_headers) and the parser holds the body to it: no bound here.
        if self._reading is None:
            super().on_body(body)
        else:
            self._reading.append(body)

    def on_message_complete(self) -> None:
        reading = self._reading
        if reading is None:
            super().on_message_complete()
            return
        body = b"".join(reading)
        try:
            plain = self.fast_send.plain_body(body, self._authorization)
        except Exception:  # nothing has happened yet: the route will say what is wrong
            log.exception("the fast path of POST %s failed; the route serves it", SEND_PATH)
            plain = None
        if plain is None:
            self._to_route()
            super().on_message_complete()
            return
        self._reading = None
        cycle = _Answering()
        self.cycle = cycle  # type: ignore[assignment]
        task = self.loop.create_task(self._answer(cycle, self.scope, plain))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _to_route(self) -> None:
        """Hand the request read so far to uvicorn (and so to the FastAPI route)."""
        reading, self._reading = self._reading or [], None
        super().on_headers_complete()
        self.cycle.body += b"".join(reading)
        self.cycle.message_event.set()

    async def _answer(self, cycle: _Answering, scope: Any, plain: Plain) -> None:
        status, headers, content = await self.fast_send.answer(scope, plain)
        if self.flow.write_paused and not cycle.disconnected:
            await self.flow.drain()
        if cycle.disconnected:
            return
        out = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            out += (name, b": ", value, b"\r\n")
        for name, value in headers:
            out += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:  # the server is shutting down
            out.append(b"connection: close\r\n")
        out += (b"\r\n", content)
        self.transport.write(b"".join(out))
        cycle.response_complete = True
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()


def protocol_for(fast_send: FastSend | None) -> type[HttpToolsProtocol] | str:
    """What to give ``uvicorn.Config(http=...)`` for an app whose fast path is
    ``fast_send`` (``None``: uvicorn's own httptools protocol)."""
    if fast_send is None:
        return "httptools"
    return type("HeraldHttpProtocol", (FastSendProtocol,), {"fast_send": fast_send})
