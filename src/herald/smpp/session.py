"""An SMPP 3.4 session as a sans-I/O state machine, for either role.

Theory of operation
===================

A ``Session`` owns everything about one SMPP connection except the socket and
the clock: the decoder, the state (``states.TRANSITIONS``), sequence numbers,
the window of our requests in flight and their response timers, the requests
the peer is waiting on us to answer, and the session timers. Its shell (an
asyncio protocol in ``herald.net``) only moves bytes and time::

    session = Session(SessionConfig(role=Role.ESME), now=loop.time())
    session.send_request(BindTransceiver(system_id="acme", password="..."), now)
    transport.write(session.data_to_send())

    def data_received(data):
        session.receive_data(data, loop.time())
        while (event := session.next_event()) is not None:
            handle(event)                 # may call send_request / send_response
        transport.write(session.data_to_send())
        rearm(session.get_timer())        # absolute time, or None

    def on_timer():
        session.handle_timer(loop.time()) # then drain events, write, re-arm

    def connection_lost(exc):
        session.connection_lost(loop.time())  # then drain events

API
---

``receive_data(data, now)``
    Bytes from the peer. Raises BufferLimitExceeded if called repeatedly
    without draining ``next_event()``.
``next_event() -> Event | None``
    The next event (``herald.smpp.events``); None when nothing is left.
    PDUs are decoded lazily, so draining events is what consumes input.
``send_request(pdu, now) -> int``
    Assigns the next sequence_number (1..0x7FFFFFFF, wrapping), encodes, queues
    the bytes, starts the response timer; returns the sequence number. Raises
    SessionStateError (not allowed in this state), WindowFull (see
    ``window_room``) or InvalidField (a field over its limit).
``send_response(response)``
    Answers a request received earlier (``event.request.response(...)``, with
    its sequence number). Raises LocalProtocolError if no such request waits.
    For the SMSC, answering ``BindRequested`` is how a bind is accepted or
    refused: a bind_*_resp with status 0 binds, any other status refuses.
``unbind(now) -> int``
    Starts the unbind handshake; a ``Closed(UNBOUND)`` event ends it (or
    ``Closed(UNBIND_TIMEOUT)``).
``close()`` / ``connection_lost(now)``
    End the session now; a ``Closed`` event lists our unanswered requests.
``data_to_send() -> bytes``
    Everything queued for the peer, once.
``get_timer() -> float | None`` / ``handle_timer(now)``
    The next instant the session needs ``handle_timer`` called (absolute, in
    the shell's clock), and the call that fires the timers due.
``state``, ``role``, ``window_room``, ``in_flight``, ``awaiting_response``,
``peer_system_id``
    Read-only views.

The session answers enquire_link itself, sends enquire_link after
``enquire_link_interval`` without input while bound, answers PDUs that are
invalid, unknown or not allowed in the state (generic_nack, ESME_RINVBNDSTS,
the decoder's status) and reports them as ``ProtocolError``.

Timers (seconds, in the ``now`` clock the shell passes; a monotonic clock):

* session_init: not bound within ``session_init_timeout`` of creation: close.
* response: a request unanswered for ``response_timeout``: RequestTimedOut.
* enquire_link: bound and nothing received for ``enquire_link_interval``:
  send enquire_link; unanswered within ``response_timeout``: close.
* inactivity: nothing received for ``inactivity_timeout``: close.
* unbind: the unbind handshake not done within ``unbind_timeout``: close.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from herald.smpp._wire import builder
from herald.smpp.codec import NEED_DATA, BrokenFraming, PduDecoder, UnparsedPdu
from herald.smpp.constants import CommandId, CommandStatus
from herald.smpp.errors import LocalProtocolError, SessionStateError, WindowFull
from herald.smpp.events import (
    BindRejected,
    BindRequested,
    Bound,
    Closed,
    CloseReason,
    Event,
    OutbindReceived,
    ProtocolError,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
    ResponseUnparsed,
    UnbindRequested,
    UnmatchedResponse,
)
from herald.smpp.limits import (
    HEADER_SIZE,
    MAX_BUFFERED_BYTES,
    MAX_PDU_SIZE,
    MAX_SEQUENCE_NUMBER,
    MAX_WINDOW,
)
from herald.smpp.pdus import (
    BindRequest,
    BindResponse,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    Request,
    Response,
    Unbind,
    UnbindResp,
)
from herald.smpp.states import BOUND_STATES, Direction, Role, State, allowed, rejection_status

__all__ = ["Session", "SessionConfig"]

C = CommandId
_SEND, _RECEIVE = Direction.SEND, Direction.RECEIVE
# Requests the session sends on its own account: they take no window slot.
_CONTROL: Final = frozenset({C.ENQUIRE_LINK, C.UNBIND})
_BINDS: Final = frozenset({C.BIND_TRANSMITTER, C.BIND_RECEIVER, C.BIND_TRANSCEIVER})
_BIND_RESPONSES: Final = frozenset({C.BIND_TRANSMITTER_RESP, C.BIND_RECEIVER_RESP,
                                    C.BIND_TRANSCEIVER_RESP})
# Requests and responses that drive the session rather than carry messages.
_SESSION_REQUESTS: Final = _BINDS | {C.OUTBIND}
_SESSION_RESPONSES: Final = _BIND_RESPONSES | {C.ENQUIRE_LINK_RESP, C.UNBIND_RESP,
                                               C.GENERIC_NACK}
# Plain ints for the comparisons on the per-PDU path.
_ENQUIRE_LINK: Final = int(C.ENQUIRE_LINK)
_GENERIC_NACK: Final = int(C.GENERIC_NACK)
# The events of the per-PDU path, built without a frozen __init__.
_request_received = builder(RequestReceived, ("request",))
_response_received = builder(ResponseReceived, ("request", "response"))


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One session's settings. Times are seconds; None disables a timer."""

    role: Role
    #: our requests that may await a response at once (1..MAX_WINDOW)
    window: int = 10
    response_timeout: float = 30.0
    #: bound and nothing received for this long: send enquire_link
    enquire_link_interval: float | None = 30.0
    #: nothing received for this long: close (a dead peer or link)
    inactivity_timeout: float | None = 120.0
    #: not bound this long after the session starts: close
    session_init_timeout: float | None = 30.0
    unbind_timeout: float = 5.0
    #: peer requests awaiting our answer at once; beyond, they are refused
    #: with ESME_RTHROTTLED (SMSC role) or ESME_RX_T_APPN (ESME role)
    max_awaiting: int = 1000
    max_pdu_size: int = MAX_PDU_SIZE
    #: first sequence_number we use (tests start near the wrap)
    first_sequence_number: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window must be 1..{MAX_WINDOW}, not {self.window}")
        if not 1 <= self.first_sequence_number <= MAX_SEQUENCE_NUMBER:
            raise ValueError("first_sequence_number must be 1..0x7FFFFFFF")
        if self.max_awaiting < 1 or self.max_pdu_size < HEADER_SIZE:
            raise ValueError("max_awaiting must be >= 1 and max_pdu_size >= 16")
        for name in ("response_timeout", "unbind_timeout", "enquire_link_interval",
                     "inactivity_timeout", "session_init_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")


class Session:
    """One SMPP session, either role. See the module docstring."""

    def __init__(self, config: SessionConfig, now: float) -> None:
        self.config = config
        self._role = config.role
        self._decoder = PduDecoder(
            max_pdu_size=config.max_pdu_size,
            max_buffered=max(MAX_BUFFERED_BYTES, config.max_pdu_size + MAX_BUFFERED_BYTES
                             - MAX_PDU_SIZE),
        )
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._next_seq = config.first_sequence_number
        # our requests in flight: seq -> (request, deadline); insertion order is
        # deadline order (one timeout, a monotonic clock), oldest first
        self._in_flight: dict[int, tuple[Request, float]] = {}
        self._window_used = 0
        # the peer's requests we have not answered: seq -> expected response class
        self._awaiting: dict[int, type[Response]] = {}
        self._bind_pending = False
        self._enquire_seq: int | None = None
        self._peer_unbind: Unbind | None = None
        self._now = now
        self._last_received = now
        self._init_deadline = (None if config.session_init_timeout is None
                               else now + config.session_init_timeout)
        self._unbind_deadline: float | None = None
        self.peer_system_id: str | None = None
        self._state = State.OPEN
        self._closed = False
        self._max_awaiting = config.max_awaiting
        # a PDU is at least 16 octets: the decoder cannot hold more outcomes
        self._max_outcomes = self._decoder.max_buffered // HEADER_SIZE + 1
        self._rx: Mapping[int, State] = {}
        self._tx: Mapping[int, State] = {}
        self._set_state(State.OPEN)

    # ------------------------------------------------------------ read-only views

    @property
    def state(self) -> State:
        return self._state

    @property
    def role(self) -> Role:
        return self._role

    @property
    def window_room(self) -> int:
        """How many more requests ``send_request`` accepts now."""
        return self.config.window - self._window_used

    @property
    def in_flight(self) -> int:
        """Our requests awaiting a response (including enquire_link/unbind)."""
        return len(self._in_flight)

    @property
    def awaiting_response(self) -> int:
        """The peer's requests that we have not answered yet."""
        return len(self._awaiting)

    def can_send(self, command_id: int) -> bool:
        """Whether ``send_request`` would accept this command now."""
        if command_id not in self._tx:
            return False
        if command_id in _BINDS and self._bind_pending:
            return False
        return command_id in _CONTROL or self._window_used < self.config.window

    # ----------------------------------------------------------------- input

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the peer. Drain ``next_event()`` afterwards."""
        if self._state is State.CLOSED or not data:
            return
        self._now = now
        self._last_received = now
        self._decoder.feed(data)

    def next_event(self) -> Event | None:
        events = self._events
        if events:
            return events.popleft()
        next_outcome = self._decoder.next_outcome
        # Bounded: each pass consumes a whole PDU (>= 16 octets) or returns, and
        # the decoder holds at most max_buffered octets.
        for _ in range(self._max_outcomes):
            if self._closed:
                return None
            outcome = next_outcome()
            if outcome is NEED_DATA:
                return None
            # Handlers return the event on the hot paths, or queue events
            # (several, in order) and return None.
            event: Event | None = None
            if isinstance(outcome, Request):
                event = self._on_request(outcome)
            elif isinstance(outcome, Response):
                event = self._on_response(outcome)
            elif isinstance(outcome, UnparsedPdu):
                event = self._on_unparsed(outcome)
            elif isinstance(outcome, BrokenFraming):
                self._on_broken_framing(outcome)
            if event is not None:
                return event
            if events:
                return events.popleft()
        return None

    def _on_broken_framing(self, outcome: BrokenFraming) -> None:
        self._queue(outcome.answer())
        self._events.append(ProtocolError(outcome.error, outcome.reason,
                                          outcome.sequence_number, fatal=True))
        self._close(CloseReason.FRAMING_ERROR)

    def _on_request(self, pdu: Request) -> Event | None:
        command_id = pdu.command_id
        seq = pdu.sequence_number
        response_class = pdu.response_class
        nxt = self._rx.get(command_id)
        if nxt is None or (command_id in _BINDS and self._bind_pending):
            return self._refuse(pdu, rejection_status(self._state, command_id),
                                f"{type(pdu).__name__} not allowed in {self._state.name}")
        if command_id == _ENQUIRE_LINK:
            self._queue(EnquireLinkResp(sequence_number=seq))
            return None
        if isinstance(pdu, Unbind):
            self._on_unbind(pdu)
            return None
        awaiting = self._awaiting
        if response_class is not None:
            if len(awaiting) >= self._max_awaiting:
                status = (CommandStatus.ESME_RTHROTTLED if self._role is Role.SMSC
                          else CommandStatus.ESME_RX_T_APPN)
                return self._refuse(pdu, status, f"{len(awaiting)} requests await our answer")
            awaiting[seq] = response_class
        if command_id not in _SESSION_REQUESTS:  # the hot path: one set lookup
            return _request_received(pdu)
        if isinstance(pdu, BindRequest):
            self._bind_pending = True
            self.peer_system_id = pdu.system_id
            return BindRequested(pdu)
        if isinstance(pdu, Outbind):
            self._set_state(nxt)
            return OutbindReceived(pdu)
        return None  # unreachable: _SESSION_REQUESTS holds binds and outbind only

    def _on_unbind(self, pdu: Unbind) -> None:
        self._set_state(State.UNBOUND)
        self._peer_unbind = pdu
        self._unbind_deadline = self._now + self.config.unbind_timeout
        self._events.append(UnbindRequested(pdu))
        self._finish_peer_unbind()

    def _refuse(self, pdu: Request, status: CommandStatus, reason: str) -> ProtocolError:
        if pdu.response_class is None:
            self._queue(GenericNack(sequence_number=pdu.sequence_number, command_status=status))
        else:
            self._queue(pdu.response(status))
        return ProtocolError(status, reason, pdu.sequence_number)

    def _on_response(self, pdu: Response) -> Event | None:
        command_id = pdu.command_id
        seq = pdu.sequence_number
        nxt = self._rx.get(command_id)
        if nxt is None:
            return ProtocolError(CommandStatus.ESME_RINVBNDSTS,
                                 f"{type(pdu).__name__} not allowed in {self._state.name}", seq)
        entry = self._in_flight.get(seq)
        if entry is None or (
            command_id != _GENERIC_NACK and entry[0].response_class is not type(pdu)
        ):
            return UnmatchedResponse(pdu)
        request = entry[0]
        keep_alive = seq == self._enquire_seq  # read before _forget clears it
        self._forget(seq, request)
        if command_id not in _SESSION_RESPONSES:  # the hot path: one set lookup
            return _response_received(request, pdu)
        if keep_alive:
            return None  # our own probe: the link is alive, nothing for the application
        if isinstance(request, BindRequest):
            if pdu.command_status == 0 and isinstance(pdu, BindResponse):
                self.peer_system_id = pdu.system_id
                self._set_state(nxt)
                return Bound(nxt, pdu)
            return BindRejected(pdu)
        if isinstance(request, Unbind):
            self._close(CloseReason.UNBOUND)
            return None
        return _response_received(request, pdu)  # a generic_nack for a message

    def _on_unparsed(self, outcome: UnparsedPdu) -> Event | None:
        seq = outcome.sequence_number
        if outcome.is_response:
            entry = self._in_flight.get(seq)
            request = None
            if entry is not None and (
                entry[0].response_class is not None
                and entry[0].response_class.command_id == outcome.command_id
            ):
                request = entry[0]
                self._forget(seq, request)
            return ResponseUnparsed(request, outcome)
        answer = outcome.answer()
        if answer is not None:
            self._queue(answer)
        return ProtocolError(outcome.error, outcome.reason, seq)

    # ---------------------------------------------------------------- output

    def send_request(self, pdu: Request, now: float) -> int:
        """Send a request; return its sequence number. See the module docstring."""
        command_id = pdu.command_id
        nxt = self._tx.get(command_id)
        if nxt is None:
            raise SessionStateError(
                f"{type(pdu).__name__} may not be sent by an {self._role.name} "
                f"in {self._state.name} (SMPP 3.4 §2.3)")
        if command_id in _BINDS and self._bind_pending:
            raise SessionStateError("a bind is already pending")
        counts = command_id not in _CONTROL and pdu.response_class is not None
        if counts and self._window_used >= self.config.window:
            raise WindowFull(f"{self._window_used} requests in flight, window "
                             f"{self.config.window}")
        self._now = now
        seq = self._take_sequence_number()
        request = pdu.with_header(seq)
        self._out.append(bytes(request))  # may raise InvalidField: nothing changed yet
        if pdu.response_class is not None:
            self._in_flight[seq] = (request, now + self.config.response_timeout)
            if counts:
                self._window_used += 1
        if command_id in _BINDS:
            self._bind_pending = True
        elif command_id == C.UNBIND:
            self._unbind_deadline = now + self.config.unbind_timeout
        if nxt is not self._state:  # most requests keep the state: skip the table lookups
            self._set_state(nxt)
        return seq

    def send_response(self, response: Response) -> None:
        """Answer a request received earlier. See the module docstring."""
        command_id = response.command_id
        seq = response.sequence_number
        nxt = self._tx.get(command_id)
        if nxt is None:
            raise SessionStateError(
                f"{type(response).__name__} may not be sent by an {self._role.name} "
                f"in {self._state.name} (SMPP 3.4 §2.3)")
        if command_id != _GENERIC_NACK:
            expected = self._awaiting.get(seq)
            if expected is None:
                raise LocalProtocolError(f"no request with sequence_number {seq} awaits "
                                         "an answer")
            if expected is not type(response):
                raise LocalProtocolError(f"request {seq} expects {expected.__name__}, "
                                         f"not {type(response).__name__}")
        self._out.append(bytes(response))
        self._awaiting.pop(seq, None)
        if command_id in _BIND_RESPONSES:
            self._bind_pending = False
            if response.command_status == 0:
                self._set_state(nxt)
            else:
                self.peer_system_id = None
        if self._peer_unbind is not None:
            self._finish_peer_unbind()

    def unbind(self, now: float) -> int:
        """Start the unbind handshake (SMPP 3.4 §4.2); returns its sequence number."""
        return self.send_request(Unbind(), now)

    def close(self) -> None:
        """End the session now (no unbind). A Closed(LOCAL) event follows."""
        self._close(CloseReason.LOCAL)

    def connection_lost(self, now: float) -> None:
        """The transport is gone. A Closed(CONNECTION_LOST) event follows
        unless the session had already closed."""
        self._now = now
        self._close(CloseReason.CONNECTION_LOST)

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    # ---------------------------------------------------------------- timers

    def get_timer(self) -> float | None:
        """When ``handle_timer`` must next be called (absolute), or None."""
        if self._state is State.CLOSED:
            return None
        config = self.config
        deadlines = []
        if self._init_deadline is not None:
            deadlines.append(self._init_deadline)
        if self._unbind_deadline is not None:
            deadlines.append(self._unbind_deadline)
        if config.inactivity_timeout is not None:
            deadlines.append(self._last_received + config.inactivity_timeout)
        if self._in_flight:
            deadlines.append(self._in_flight[next(iter(self._in_flight))][1])
        enquire = self._enquire_due()
        if enquire is not None:
            deadlines.append(enquire)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``; drain ``next_event()`` afterwards."""
        if self._state is State.CLOSED:
            return
        self._now = now
        config = self.config
        if self._init_deadline is not None and now >= self._init_deadline:
            self._close(CloseReason.SESSION_INIT_TIMEOUT)
            return
        if self._unbind_deadline is not None and now >= self._unbind_deadline:
            self._close(CloseReason.UNBIND_TIMEOUT)
            return
        if (config.inactivity_timeout is not None
                and now >= self._last_received + config.inactivity_timeout):
            self._close(CloseReason.INACTIVITY_TIMEOUT)
            return
        expired = []
        for seq, (request, deadline) in self._in_flight.items():  # oldest first
            if deadline > now:
                break
            expired.append((seq, request))
        for seq, request in expired:
            if seq == self._enquire_seq:
                self._close(CloseReason.ENQUIRE_LINK_TIMEOUT)
                return
            if isinstance(request, Unbind):
                self._close(CloseReason.UNBIND_TIMEOUT)
                return
            self._forget(seq, request)
            self._events.append(RequestTimedOut(request))
        due = self._enquire_due()
        if due is not None and now >= due:
            self._enquire_seq = self.send_request(EnquireLink(), now)

    def _enquire_due(self) -> float | None:
        interval = self.config.enquire_link_interval
        if interval is None or self._enquire_seq is not None or self._state not in BOUND_STATES:
            return None
        return self._last_received + interval

    # --------------------------------------------------------------- helpers

    def _set_state(self, state: State) -> None:
        self._state = state
        self._closed = state is State.CLOSED
        self._rx = allowed(self._role, state, _RECEIVE)
        self._tx = allowed(self._role, state, _SEND)
        if state in BOUND_STATES:
            self._init_deadline = None

    def _queue(self, pdu: Pdu) -> None:
        self._out.append(bytes(pdu))

    def _take_sequence_number(self) -> int:
        seq = self._next_seq
        # Skip numbers still in flight after a wrap; at most len(in_flight) of them.
        for _ in range(len(self._in_flight) + 1):
            nxt = 1 if seq >= MAX_SEQUENCE_NUMBER else seq + 1
            if seq not in self._in_flight:
                self._next_seq = nxt
                return seq
            seq = nxt
        raise AssertionError("unreachable: more sequence numbers than requests in flight")

    def _forget(self, seq: int, request: Request) -> None:
        """Our request ``seq`` is answered, unreadably answered or timed out."""
        del self._in_flight[seq]
        command_id = request.command_id
        if command_id not in _CONTROL:
            self._window_used -= 1
            if command_id in _BINDS:
                self._bind_pending = False
        elif seq == self._enquire_seq:
            self._enquire_seq = None

    def _finish_peer_unbind(self) -> None:
        """Answer the peer's unbind once nothing else awaits our answer."""
        unbind = self._peer_unbind
        if unbind is None or self._awaiting:
            return
        self._queue(UnbindResp(sequence_number=unbind.sequence_number))
        self._peer_unbind = None
        self._close(CloseReason.UNBOUND)

    def _close(self, reason: CloseReason) -> None:
        if self._state is State.CLOSED:
            return
        unanswered = tuple(request for request, _ in self._in_flight.values()
                           if request.command_id not in _CONTROL)
        self._in_flight.clear()
        self._window_used = 0
        self._awaiting.clear()
        self._set_state(State.CLOSED)
        self._events.append(Closed(reason, unanswered))

