"""The SMPP session state machine: one table, in this one file.

Theory of operation
===================

SMPP 3.4 §2.2 names the session states: OPEN (connected, not bound), OUTBOUND
(an SMSC sent outbind and waits for the ESME's bind), BOUND_TX, BOUND_RX,
BOUND_TRX, UNBOUND (an unbind was sent or received; only responses still flow)
and CLOSED. §2.3 and each PDU's section in §4 say which PDUs each side may issue
in which state.

``TRANSITIONS[(role, state, direction, command_id)] -> next_state`` holds every
allowed (PDU, direction) for each role and state, and the state it leads to.
Anything not in the table is not allowed: a received request is answered with
``rejection_status`` (ESME_RINVBNDSTS, or ESME_RALYBND for a second bind), a
received response is reported and dropped, and sending raises
``SessionStateError``.

The table is written from the ESME's side; the SMSC's half is its mirror (what
an ESME sends in a state, an SMSC receives in that state, and the other way
round), which keeps the two sides from drifting apart. OUTBOUND is used by both
sides of an outbind: the SMSC after sending it, the ESME after receiving it.

Three rules sit beside the table, in ``Session``, because they need more than
(state, input):

* a response moves the state only when it answers a request of ours that is
  in flight (an unsolicited bind_transmitter_resp binds nothing);
* a response with a non-zero command_status never moves the state (a refused
  bind leaves the session OPEN): see :func:`transition`;
* a bind may not be sent while another is pending.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from herald.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus

__all__ = [
    "BOUND_STATES",
    "TRANSITIONS",
    "Direction",
    "Role",
    "State",
    "allowed",
    "rejection_status",
    "transition",
]

C = CommandId


class Role(Enum):
    """Which end of the SMPP session we are (SMPP 3.4 §2.1)."""

    ESME = "esme"  # binds to an SMSC (herald towards operators)
    SMSC = "smsc"  # accepts binds (herald towards its SMPP customers)


class State(Enum):
    """SMPP 3.4 §2.2 session states."""

    OPEN = "open"
    OUTBOUND = "outbound"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"


class Direction(Enum):
    SEND = "send"
    RECEIVE = "receive"


BOUND_STATES = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})

# --- what the ESME does, state by state (SMPP 3.4 §2.3, §4) -----------------

# bind request -> the bound state its positive response leads to (§4.1)
_BINDS = {
    C.BIND_TRANSMITTER: (C.BIND_TRANSMITTER_RESP, State.BOUND_TX),
    C.BIND_RECEIVER: (C.BIND_RECEIVER_RESP, State.BOUND_RX),
    C.BIND_TRANSCEIVER: (C.BIND_TRANSCEIVER_RESP, State.BOUND_TRX),
}
# §4.1.7: after outbind the ESME binds as a receiver (or transceiver, as
# later versions and real SMSCs allow).
_OUTBIND_BINDS = (C.BIND_RECEIVER, C.BIND_TRANSCEIVER)

# ESME -> SMSC requests of a transmitter (§4.4, §4.5, §4.7-4.10) and the
# SMSC's responses to them.
_TX_REQUESTS = (C.SUBMIT_SM, C.SUBMIT_MULTI, C.DATA_SM, C.QUERY_SM, C.CANCEL_SM,
                C.REPLACE_SM)
_TX_RESPONSES = (C.SUBMIT_SM_RESP, C.SUBMIT_MULTI_RESP, C.DATA_SM_RESP, C.QUERY_SM_RESP,
                 C.CANCEL_SM_RESP, C.REPLACE_SM_RESP)
# SMSC -> ESME requests to a receiver (§4.6, §4.7, §4.12) and the ESME's
# responses (alert_notification has none).
_RX_REQUESTS = (C.DELIVER_SM, C.DATA_SM, C.ALERT_NOTIFICATION)
_RX_RESPONSES = (C.DELIVER_SM_RESP, C.DATA_SM_RESP)
# Either side, in any bound state (§4.3, §4.11).
_LINK = (C.ENQUIRE_LINK, C.ENQUIRE_LINK_RESP, C.GENERIC_NACK)
_ALL_RESPONSES = tuple(c for c in C if c.is_response)

S, R = Direction.SEND, Direction.RECEIVE
_Row = dict[tuple[Direction, CommandId], State]


def _stay(state: State, direction: Direction, commands: Iterable[CommandId]) -> _Row:
    return {(direction, c): state for c in commands}


def _esme_rows() -> dict[State, _Row]:
    rows: dict[State, _Row] = {}
    for before, binds in ((State.OPEN, tuple(_BINDS)), (State.OUTBOUND, _OUTBIND_BINDS)):
        row = _stay(before, S, binds)
        row |= {(R, _BINDS[b][0]): _BINDS[b][1] for b in binds}
        row |= _stay(before, R, (C.GENERIC_NACK,)) | _stay(before, S, (C.GENERIC_NACK,))
        rows[before] = row
    rows[State.OPEN][(R, C.OUTBIND)] = State.OUTBOUND

    for bound in BOUND_STATES:
        transmits = bound in (State.BOUND_TX, State.BOUND_TRX)
        receives = bound in (State.BOUND_RX, State.BOUND_TRX)
        row = _stay(bound, S, _LINK) | _stay(bound, R, _LINK)
        if transmits:
            row |= _stay(bound, S, _TX_REQUESTS) | _stay(bound, R, _TX_RESPONSES)
        if receives:
            row |= _stay(bound, R, _RX_REQUESTS) | _stay(bound, S, _RX_RESPONSES)
        row[(S, C.UNBIND)] = State.UNBOUND
        row[(R, C.UNBIND)] = State.UNBOUND
        rows[bound] = row

    # UNBOUND: no new requests. Responses still flow both ways so that what was
    # in flight can finish; the unbind handshake completes it (§4.2).
    unbound = State.UNBOUND
    row = _stay(unbound, R, _ALL_RESPONSES) | _stay(unbound, S, _RX_RESPONSES)
    row |= _stay(unbound, S, (C.GENERIC_NACK,))
    row[(R, C.UNBIND_RESP)] = State.CLOSED
    row[(S, C.UNBIND_RESP)] = State.CLOSED
    rows[unbound] = row
    rows[State.CLOSED] = {}
    return rows


def _mirror(rows: Mapping[State, _Row]) -> dict[State, _Row]:
    flip = {S: R, R: S}
    return {state: {(flip[d], c): nxt for (d, c), nxt in row.items()}
            for state, row in rows.items()}


# Lenient where it harms nobody (outside the mirror): a link check is answered
# by an ESME in OPEN and OUTBOUND (an SMSC may probe before its bind or outbind
# answer) and by both roles while unbinding; we send none before the bind
# response (reference/smpp.md) nor after unbinding. An SMSC answers a link
# check before the bind with ESME_RINVBNDSTS: SMPP 3.4 §4.11 allows it only in
# a bound session, and answering ESME_ROK to anyone who connects tells a
# scanner what listens without a login.
_LINK_CHECK_ANSWERED_IN: Mapping[Role, tuple[State, ...]] = {
    Role.ESME: (State.OPEN, State.OUTBOUND, State.UNBOUND),
    Role.SMSC: (State.UNBOUND,),
}


def _table() -> dict[tuple[Role, State, Direction, CommandId], State]:
    table = {}
    for role, rows in ((Role.ESME, _esme_rows()), (Role.SMSC, _mirror(_esme_rows()))):
        for state, row in rows.items():
            for (direction, command), nxt in row.items():
                table[(role, state, direction, command)] = nxt
        for state in _LINK_CHECK_ANSWERED_IN[role]:
            table[(role, state, R, C.ENQUIRE_LINK)] = state
            table[(role, state, S, C.ENQUIRE_LINK_RESP)] = state
    return table


TRANSITIONS: Mapping[tuple[Role, State, Direction, CommandId], State] = _table()

# The table sliced per (role, state, direction): command_id -> next state. The
# session keeps the two slices of its current state, one dict lookup per PDU.
_SLICES: dict[tuple[Role, State, Direction], dict[int, State]] = {
    (role, state, d): {} for role in Role for state in State for d in Direction
}
for (_role, _state, _d, _cid), _nxt in TRANSITIONS.items():
    _SLICES[(_role, _state, _d)][_cid] = _nxt


def allowed(role: Role, state: State, direction: Direction) -> Mapping[int, State]:
    """command_id -> next state, for everything ``role`` may send or receive
    in ``state``."""
    return _SLICES[(role, state, direction)]


def transition(role: Role, state: State, direction: Direction, command_id: int,
               command_status: int = 0) -> State | None:
    """The state after sending/receiving ``command_id`` in ``state``, or None
    when that is not allowed. A response with a non-zero status leaves the
    state as it was."""
    nxt = _SLICES[(role, state, direction)].get(command_id)
    if nxt is not None and command_status and command_id & RESPONSE_BIT:
        return state
    return nxt


_BIND_IDS = frozenset(_BINDS)


def rejection_status(state: State, command_id: int) -> CommandStatus:
    """The command_status that answers a request not allowed in ``state``:
    ESME_RALYBND for a bind on a bound session, else ESME_RINVBNDSTS."""
    if command_id in _BIND_IDS and state in BOUND_STATES:
        return CommandStatus.ESME_RALYBND
    return CommandStatus.ESME_RINVBNDSTS
