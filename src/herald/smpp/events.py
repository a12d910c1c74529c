"""What a Session tells its application, one frozen dataclass per event.

Each event's docstring says what the application is expected to do. Events the
session handles itself (enquire_link, answers to invalid PDUs) surface only as
``ProtocolError`` when something was wrong, for logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from herald.smpp.codec import UnparsedPdu
from herald.smpp.constants import CommandStatus
from herald.smpp.pdus import BindRequest, BindResponse, Outbind, Request, Response, Unbind
from herald.smpp.states import State

__all__ = [
    "BindRejected",
    "BindRequested",
    "Bound",
    "CloseReason",
    "Closed",
    "Event",
    "OutbindReceived",
    "ProtocolError",
    "RequestReceived",
    "RequestTimedOut",
    "ResponseReceived",
    "ResponseUnparsed",
    "UnbindRequested",
    "UnmatchedResponse",
]


@dataclass(frozen=True, slots=True)
class BindRequested:
    """SMSC role: a peer asks to bind. Authenticate it, then answer with
    ``session.send_response(event.request.response(system_id=...))`` to accept
    or ``event.request.response(CommandStatus.ESME_RINVPASWD)`` (etc.) to
    refuse. Nothing else is accepted until then."""

    request: BindRequest


@dataclass(frozen=True, slots=True)
class Bound:
    """ESME role: our bind was accepted; ``state`` is the bound state."""

    state: State
    response: BindResponse


@dataclass(frozen=True, slots=True)
class BindRejected:
    """ESME role: our bind was refused (``response.command_status`` says why;
    it may be a generic_nack). The session stays OPEN: bind again or close."""

    response: Response


@dataclass(frozen=True, slots=True)
class OutbindReceived:
    """ESME role: the SMSC asks us to bind (SMPP 3.4 §4.1.7). Answer with
    ``send_request(BindReceiver(...))``; outbind has no response."""

    request: Outbind


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request for the application (submit_sm, deliver_sm, data_sm, query_sm,
    ...). Answer it with ``send_response(event.request.response(...))``."""

    request: Request


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The answer to a request of ours. ``response`` is its response class or a
    generic_nack; check ``response.command_status``."""

    request: Request
    response: Response


@dataclass(frozen=True, slots=True)
class ResponseUnparsed:
    """A response whose body could not be decoded although its status was OK.
    ``request`` is ours that it answered (None if none matched). The peer
    probably accepted the request: treat its outcome as unknown, don't blindly
    resend (duplicates)."""

    request: Request | None
    unparsed: UnparsedPdu


@dataclass(frozen=True, slots=True)
class RequestTimedOut:
    """No response within ``response_timeout``; the window slot is free again.
    Decide whether to resend (the peer may still have acted on it)."""

    request: Request


@dataclass(frozen=True, slots=True)
class UnmatchedResponse:
    """A response to nothing in flight (late after a timeout, a duplicate, or a
    generic_nack without a usable sequence number). Logged, not fatal."""

    response: Response


@dataclass(frozen=True, slots=True)
class UnbindRequested:
    """The peer unbinds. Answer the requests already received; the session
    sends unbind_resp once they are answered (or at ``unbind_timeout``), then
    closes. New requests get ESME_RINVBNDSTS."""

    request: Unbind


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The peer broke the protocol and the session has already answered (with
    ``status``) or dropped the PDU. ``fatal`` errors close the session (a
    ``Closed`` event follows)."""

    status: CommandStatus
    reason: str
    sequence_number: int | None = None
    fatal: bool = False


class CloseReason(Enum):
    UNBOUND = "unbound"  # the unbind handshake completed (either side started it)
    LOCAL = "local"  # the application called close()
    CONNECTION_LOST = "connection_lost"  # the shell reported the transport gone
    SESSION_INIT_TIMEOUT = "session_init_timeout"  # not bound within session_init_timeout
    INACTIVITY_TIMEOUT = "inactivity_timeout"  # nothing received for inactivity_timeout
    ENQUIRE_LINK_TIMEOUT = "enquire_link_timeout"  # our enquire_link went unanswered
    UNBIND_TIMEOUT = "unbind_timeout"  # the unbind handshake did not finish in time
    FRAMING_ERROR = "framing_error"  # the byte stream cannot be split into PDUs


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over: flush ``data_to_send()``, then close the socket.
    ``unanswered`` are our requests that got no response: they may or may not
    have been acted on."""

    reason: CloseReason
    unanswered: tuple[Request, ...] = ()


Event = (
    BindRequested | Bound | BindRejected | OutbindReceived | RequestReceived
    | ResponseReceived | ResponseUnparsed | RequestTimedOut | UnmatchedResponse
    | UnbindRequested | ProtocolError | Closed
)
