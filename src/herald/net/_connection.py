"""One SMPP connection: an asyncio protocol that moves bytes and time for a Session.

Theory of operation
-------------------
All protocol rules live in ``herald.smpp.session.Session``. This shell:

* feeds received bytes with ``loop.time()`` and drains the session's events;
* turns our requests into futures (``send`` / ``request``) resolved by the
  matching response, a timeout or the end of the session, or, for callers
  that send many (``send_then``: dispatch's submit_sm), into callbacks run
  together once the read that answered them is decoded;
* hands every other event to its owner (server or client) through
  ``ConnectionOwner.on_event``;
* writes what the session queued, coalescing the writes of one loop turn into
  one ``transport.write``;
* re-arms one timer at ``session.get_timer()``;
* applies backpressure both ways: it stops reading while the application owes
  more than ``max_unanswered`` answers (so a customer faster than our store is
  slowed down by TCP, not by errors), and new requests wait while the window
  is full or the transport's write buffer is over its high-water mark.

Errors a caller sees: ``ConnectionClosed`` (the session ended; the request may
or may not have reached the peer), ``ResponseTimeout`` (no answer in time; the
peer may still act on it), ``UnparsedResponse`` (the answer could not be
decoded; treat the outcome as unknown). All are ``SmppNetError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Final, TypeAlias, cast

from herald.smpp.events import (
    BindRejected,
    Bound,
    Closed,
    CloseReason,
    Event,
    RequestTimedOut,
    ResponseReceived,
    ResponseUnparsed,
)
from herald.smpp.pdus import Request, Response
from herald.smpp.session import Session, SessionConfig
from herald.smpp.states import State

__all__ = [
    "Answered",
    "ConnectionClosed",
    "ConnectionOwner",
    "ResponseTimeout",
    "SmppConnection",
    "SmppNetError",
    "UnparsedResponse",
]

log = logging.getLogger("herald.smpp")

#: Resume reading once the application owes fewer than this fraction of
#: ``max_unanswered`` answers (hysteresis, so reading is not toggled per PDU).
RESUME_FRACTION: Final = 0.5
#: Seconds ``aclose`` waits for the transport to report the socket closed (a
#: loop turn after close or abort; the bound only guards a transport that never does).
LOST_WAIT: Final = 1.0


class SmppNetError(Exception):
    """Base of the errors the asyncio shells raise to their callers."""


class ConnectionClosed(SmppNetError):
    """The session ended before the request was answered (``reason`` says how)."""

    def __init__(self, reason: CloseReason | str) -> None:
        super().__init__(f"SMPP session closed ({getattr(reason, 'value', reason)})")
        self.reason = reason


class ResponseTimeout(SmppNetError):
    """No response within the session's response_timeout."""


class UnparsedResponse(SmppNetError):
    """The peer's response could not be decoded although its status was OK."""


#: What ``send_then`` calls with the outcome of a request: the response, or the
#: error ``send``'s future would have raised.
Answered: TypeAlias = Callable[[Response | SmppNetError], None]


class ConnectionOwner:
    """What the server or client does with the events the shell does not handle."""

    def on_event(self, conn: SmppConnection, event: Event) -> None:  # pragma: no cover
        """Every event but the responses to our requests (already resolved)."""

    def on_connection_lost(self, conn: SmppConnection, exc: Exception | None) -> None:
        """The transport is gone (after the Closed event was delivered)."""


class SmppConnection(asyncio.Protocol):
    """The shell around one ``Session``; see the module docstring."""

    def __init__(
        self,
        config: SessionConfig,
        owner: ConnectionOwner,
        *,
        max_unanswered: int = 1000,
        name: str = "",
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.session = Session(config, self.loop.time())
        self.owner = owner
        self.name = name
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[object, ...] | None = None
        self.closed: asyncio.Future[CloseReason] = self.loop.create_future()
        self._lost: asyncio.Future[None] = self.loop.create_future()  # connection_lost ran
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._callbacks: dict[int, Answered] = {}  # send_then's requests
        self._answers: list[tuple[Answered, Response | SmppNetError]] = []  # to call
        self._window_waiters: deque[asyncio.Future[None]] = deque()
        self._flush_scheduled = False
        self._draining = False  # inside _drain: an answer must not start another
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._max_unanswered = max(1, max_unanswered)
        self._resume_below = max(1, int(self._max_unanswered * RESUME_FRACTION))
        self._reading_paused = False
        self._writing_paused = False
        self._write_open: asyncio.Future[None] | None = None

    # ------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, but not necessarily an asyncio.Transport subclass:
        # uvloop's TCPTransport implements the interface without inheriting it.
        self.transport = cast(asyncio.Transport, transport)
        self.peer = transport.get_extra_info("peername")
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data, self.loop.time())
        self._drain()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.connection_lost(self.loop.time())
        self._drain(force=True)
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fail_all(ConnectionClosed(CloseReason.CONNECTION_LOST))
        if not self.closed.done():
            self.closed.set_result(CloseReason.CONNECTION_LOST)
        if self._write_open is not None and not self._write_open.done():
            self._write_open.set_result(None)
        if not self._lost.done():
            self._lost.set_result(None)
        self.owner.on_connection_lost(self, exc)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._write_open is not None and not self._write_open.done():
            self._write_open.set_result(None)
        self._wake_window_waiters()

    # ------------------------------------------------------------------ requests

    @property
    def state(self) -> State:
        return self.session.state

    @property
    def is_open(self) -> bool:
        return self.transport is not None and self.session.state is not State.CLOSED

    def send(self, pdu: Request) -> asyncio.Future[Response]:
        """Send now; the future resolves with the response (or a SmppNetError).

        Raises the session's errors (WindowFull, SessionStateError, InvalidField)
        synchronously: nothing was sent then. Use ``request`` to wait for room.
        """
        if pdu.response_class is None:
            raise TypeError(f"{type(pdu).__name__} has no response: use notify()")
        if self.transport is None:
            raise ConnectionClosed("not connected")
        seq = self.session.send_request(pdu, self.loop.time())
        future: asyncio.Future[Response] = self.loop.create_future()
        self._pending[seq] = future
        self._schedule_flush()
        return future

    def send_then(self, pdu: Request, answered: Answered) -> None:
        """Send now, as :meth:`send`; ``answered`` gets the response (or the
        :class:`SmppNetError` ``send``'s future would raise), in the loop turn
        after the read that brought it, with the other answers of that read.

        No future, no callback handle per request: for a caller with thousands
        of requests a second in flight (dispatch's submit_sm). ``answered`` must
        not raise (what it raises is logged, and the other answers still go).
        """
        if pdu.response_class is None:
            raise TypeError(f"{type(pdu).__name__} has no response: use notify()")
        if self.transport is None:
            raise ConnectionClosed("not connected")
        seq = self.session.send_request(pdu, self.loop.time())
        self._callbacks[seq] = answered
        self._schedule_flush()

    def notify(self, pdu: Request) -> None:
        """Send a request SMPP does not answer (outbind, alert_notification)."""
        if self.transport is None:
            raise ConnectionClosed("not connected")
        self.session.send_request(pdu, self.loop.time())
        self._schedule_flush()

    async def wait_window(self) -> None:
        """Return when a request may be sent (window room and a draining transport)."""
        while self.session.window_room <= 0 or self._writing_paused:
            if not self.is_open:
                raise ConnectionClosed("not connected")
            if self._writing_paused:
                if self._write_open is None or self._write_open.done():
                    self._write_open = self.loop.create_future()
                await self._write_open
                continue
            waiter: asyncio.Future[None] = self.loop.create_future()
            self._window_waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._window_waiters:
                    self._window_waiters.remove(waiter)
                # pass the wake-up on if we were woken and then cancelled
                self._wake_window_waiters()
                raise

    async def request(self, pdu: Request) -> Response:
        """Wait for window room, send, and return the response."""
        await self.wait_window()
        return await self.send(pdu)

    def respond(self, response: Response) -> None:
        """Answer a request received earlier (any time later, any order)."""
        if self.session.state is State.CLOSED:
            return  # the peer is gone; the answer has nowhere to go
        self.session.send_response(response)
        if self._draining:
            # Answered from an event handler: the _drain loop below us goes on
            # decoding. Draining again here would recurse once per PDU waiting
            # in the buffer, and a peer can pipeline thousands in one read.
            self._schedule_flush()
            return
        if not self._reading_paused or self.session.awaiting_response < self._resume_below:
            # decode what waited in the buffer (reading resumes once it is
            # empty); answering may also complete the peer's unbind
            self._drain()
        self._schedule_flush()

    def unbind(self) -> None:
        """Start the unbind handshake; ``closed`` resolves when it ends."""
        if self.session.state in (State.CLOSED, State.UNBOUND):
            return
        self.session.unbind(self.loop.time())
        self._schedule_flush()

    def close(self) -> None:
        """End the session now (no unbind) and close the transport after flushing."""
        self.session.close()
        self._drain(force=True)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Unbind if bound, wait (bounded) for the handshake, then close; returns
        once the socket is closed, ``timeout`` (and a loop turn) at the most.

        A handshake not done in time ends with the transport aborted: a peer
        that owes answers (SMPP 3.4 §4.2: it answers the unbind last) or reads
        slowly must still see the session end by then. A bind handed to
        another node counts on it (docs/leases.md).
        """
        handshake_done = True
        if self.session.state in (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX):
            self.unbind()
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), timeout)
            except TimeoutError:
                handshake_done = False
        self.close()
        transport = self.transport
        if transport is not None:
            if handshake_done:
                transport.close()  # what is buffered is flushed first
            else:
                transport.abort()  # now, buffered bytes or not
            # The socket closes a loop turn later (connection_lost); wait for
            # it, bounded in case a transport never reports it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._lost), LOST_WAIT)

    # ------------------------------------------------------------------ internals

    def _drain(self, *, force: bool = False) -> None:
        """Hand out the session's events. Unless ``force``d, stop (and stop
        reading) once the application owes ``max_unanswered`` answers: the
        session decodes lazily, so the rest waits in its buffer."""
        outer, self._draining = self._draining, True
        try:
            self._drain_events(force)
        finally:
            self._draining = outer

    def _drain_events(self, force: bool) -> None:
        session = self.session
        owner = self.owner
        freed = False
        limit = self._max_unanswered
        while True:
            if not force and session.awaiting_response >= limit:
                if not self._reading_paused and self.transport is not None:
                    self._reading_paused = True
                    self.transport.pause_reading()
                break
            event = session.next_event()
            if event is None:
                if (self._reading_paused and self.transport is not None
                        and session.awaiting_response < self._resume_below):
                    self._reading_paused = False
                    self.transport.resume_reading()
                break
            match event:
                case ResponseReceived(request, response):
                    self._resolve(request.sequence_number, response)
                    freed = True
                case RequestTimedOut(request):
                    self._resolve(request.sequence_number, ResponseTimeout(repr(request)))
                    freed = True
                case ResponseUnparsed(request, unparsed):
                    if request is not None:
                        self._resolve(request.sequence_number, UnparsedResponse(unparsed.reason))
                        freed = True
                case Bound(_, response) | BindRejected(response):
                    self._resolve(response.sequence_number, response)
                    owner.on_event(self, event)
                case Closed():
                    self._on_closed(event)
                    owner.on_event(self, event)
                case _:
                    owner.on_event(self, event)
        if freed:
            self._wake_window_waiters()
        self._schedule_flush()

    def _resolve(self, seq: int, outcome: Response | SmppNetError) -> None:
        future = self._pending.pop(seq, None)
        if future is None:
            answered = self._callbacks.pop(seq, None)
            if answered is not None:
                self._answers.append((answered, outcome))
                self._schedule_flush()  # answered there, before the writes
            return
        if future.done():
            return
        if isinstance(outcome, SmppNetError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _on_closed(self, event: Closed) -> None:
        self._fail_all(ConnectionClosed(event.reason))
        if not self.closed.done():
            self.closed.set_result(event.reason)
        transport = self.transport
        if transport is not None:
            data = self.session.data_to_send()
            if data:
                transport.write(data)
            transport.close()

    def _fail_all(self, exc: SmppNetError) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: nobody may be awaiting it
        callbacks, self._callbacks = self._callbacks, {}
        if callbacks:
            self._answers.extend((answered, exc) for answered in callbacks.values())
            self._schedule_flush()
        waiters, self._window_waiters = self._window_waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)  # wait_window re-checks and raises

    def _wake_window_waiters(self) -> None:
        room = self.session.window_room
        waiters = self._window_waiters
        while room > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                room -= 1

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._answers:
            # First the answers: what they send in reply goes out in the write below.
            self._answer_all()
        transport = self.transport
        if transport is not None:
            data = self.session.data_to_send()
            if data:
                transport.write(data)
        self._rearm()

    def _answer_all(self) -> None:
        answers, self._answers = self._answers, []
        for answered, outcome in answers:
            try:
                answered(outcome)
            except Exception:  # a bug of the caller's: the other answers still go
                log.exception("%s: a response callback failed", self.name)

    def _rearm(self) -> None:
        when = self.session.get_timer()
        if when is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_at = None
            return
        # Keep an earlier timer: when it fires it re-reads get_timer().
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.session.handle_timer(self.loop.time())
        self._drain(force=True)
        self._flush()
