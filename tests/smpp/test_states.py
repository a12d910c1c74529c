"""The state table, walked: every (role, state, direction, command) is tried on
a real Session brought into that state, and the outcome is checked against
TRANSITIONS (a transition, or the right refusal). Separately, the table itself
is checked against rules read from SMPP 3.4 §2.3 and §4."""

from __future__ import annotations

import itertools

import pytest

from herald.smpp.constants import CommandId as C
from herald.smpp.constants import CommandStatus as S
from herald.smpp.errors import LocalProtocolError, SessionStateError
from herald.smpp.events import (
    BindRequested,
    Closed,
    OutbindReceived,
    ProtocolError,
    RequestReceived,
    UnbindRequested,
    UnmatchedResponse,
)
from herald.smpp.pdus import PDU_CLASSES, GenericNack, Request
from herald.smpp.session import Session
from herald.smpp.states import (
    BOUND_STATES,
    TRANSITIONS,
    Direction,
    Role,
    State,
    rejection_status,
    transition,
)

from .pair import drain, sent, session_in

D = Direction
CASES = list(itertools.product(Role, State, Direction, sorted(C)))


def _expected_request_event(command_id: int) -> type:
    return {C.BIND_TRANSMITTER: BindRequested, C.BIND_RECEIVER: BindRequested,
            C.BIND_TRANSCEIVER: BindRequested, C.OUTBIND: OutbindReceived,
            C.UNBIND: UnbindRequested}.get(command_id, RequestReceived)


def _receive(session: Session, role: Role, state: State, command_id: C) -> None:
    pdu = PDU_CLASSES[command_id](sequence_number=77)
    session.receive_data(bytes(pdu), 0.0)
    events = drain(session)
    out = sent(session)
    nxt = TRANSITIONS.get((role, state, D.RECEIVE, command_id))
    if state is State.CLOSED:  # a closed session reads nothing
        assert nxt is None and (events, out) == ([], [])
        return
    if command_id.is_response:
        # nothing of ours is in flight under 77: allowed ones are unmatched
        assert out == []
        assert session.state is state
        kind = UnmatchedResponse if nxt is not None else ProtocolError
        assert [type(e) for e in events] == [kind]
        return
    assert isinstance(pdu, Request)
    if nxt is None:
        status = rejection_status(state, command_id)
        answer = (GenericNack(sequence_number=77, command_status=status)
                  if pdu.response_class is None else pdu.response(status))
        assert out == [answer]
        assert [type(e) for e in events] == [ProtocolError]
        assert session.state is state
        return
    if command_id == C.ENQUIRE_LINK:
        assert events == [] and [p.command_id for p in out] == [C.ENQUIRE_LINK_RESP]
    elif command_id == C.UNBIND:
        # answered at once (nothing else awaits us): UNBOUND, then CLOSED
        assert nxt is State.UNBOUND
        assert TRANSITIONS[(role, nxt, D.SEND, C.UNBIND_RESP)] is State.CLOSED
        assert [type(e) for e in events] == [UnbindRequested, Closed]
        assert [p.command_id for p in out] == [C.UNBIND_RESP]
        assert session.state is State.CLOSED
        return
    else:
        assert [type(e) for e in events] == [_expected_request_event(command_id)]
        assert out == []
    assert session.state is nxt


def _send(session: Session, role: Role, state: State, command_id: C) -> None:
    cls = PDU_CLASSES[command_id]
    nxt = TRANSITIONS.get((role, state, D.SEND, command_id))
    if not command_id.is_response:
        if nxt is None:
            with pytest.raises(SessionStateError):
                session.send_request(cls(), 0.0)
            assert session.state is state
        else:
            session.send_request(cls(), 0.0)
            assert session.state is nxt
        return
    response = cls(sequence_number=77)
    if nxt is None:
        with pytest.raises(SessionStateError):
            session.send_response(response)
        return
    if command_id == C.GENERIC_NACK:
        session.send_response(response)  # answers garbage: needs no request
        assert session.state is nxt
        return
    # Allowed in this state; it still needs a request to answer, one the
    # session does not answer itself (enquire_link, unbind).
    request_id = C(command_id & 0x7FFFFFFF)
    if (TRANSITIONS.get((role, state, D.RECEIVE, request_id)) is None
            or request_id in (C.ENQUIRE_LINK, C.UNBIND)):
        with pytest.raises(LocalProtocolError) as err:
            session.send_response(response)
        assert not isinstance(err.value, SessionStateError)
        return
    session.receive_data(bytes(PDU_CLASSES[request_id](sequence_number=77)), 0.0)
    drain(session)
    sent(session)
    before = session.state
    session.send_response(response)
    assert session.state is transition(role, before, D.SEND, command_id)


@pytest.mark.parametrize(("role", "state", "direction", "command_id"), CASES,
                         ids=[f"{r.name}-{s.name}-{d.name}-{c.name}" for r, s, d, c in CASES])
def test_every_state_and_input(role: Role, state: State, direction: Direction,
                               command_id: C) -> None:
    session = session_in(role, state)
    if direction is D.RECEIVE:
        _receive(session, role, state, command_id)
    else:
        _send(session, role, state, command_id)


# ------------------------------------------------- the table against the spec


def can(role: Role, state: State, direction: Direction, command_id: C) -> bool:
    return (role, state, direction, command_id) in TRANSITIONS


def test_transmitters_and_receivers() -> None:
    for role, peer_dir, own_dir in ((Role.ESME, D.RECEIVE, D.SEND), (Role.SMSC, D.SEND, D.RECEIVE)):
        # SMPP 3.4 §4.6: deliver_sm goes SMSC -> ESME, to receivers only
        assert not can(role, State.BOUND_TX, peer_dir, C.DELIVER_SM)
        assert can(role, State.BOUND_RX, peer_dir, C.DELIVER_SM)
        assert can(role, State.BOUND_TRX, peer_dir, C.DELIVER_SM)
        # §4.4: submit_sm goes ESME -> SMSC, from transmitters only
        assert not can(role, State.BOUND_RX, own_dir, C.SUBMIT_SM)
        assert can(role, State.BOUND_TX, own_dir, C.SUBMIT_SM)
        # never the other way round
        for state in State:
            assert not can(role, state, peer_dir, C.SUBMIT_SM)
            assert not can(role, state, own_dir, C.DELIVER_SM)
    # an SMSC never receives deliver_sm_resp on a transmitter bind
    assert not can(Role.SMSC, State.BOUND_TX, D.RECEIVE, C.DELIVER_SM_RESP)


def test_binds_only_before_binding() -> None:
    for bind in (C.BIND_TRANSMITTER, C.BIND_RECEIVER, C.BIND_TRANSCEIVER):
        assert can(Role.ESME, State.OPEN, D.SEND, bind)
        assert can(Role.SMSC, State.OPEN, D.RECEIVE, bind)
        for state in BOUND_STATES | {State.UNBOUND, State.CLOSED}:
            assert not can(Role.ESME, state, D.SEND, bind)
            assert not can(Role.SMSC, state, D.RECEIVE, bind)
    # §4.1.7: after an outbind the ESME binds as a receiver
    assert not can(Role.ESME, State.OUTBOUND, D.SEND, C.BIND_TRANSMITTER)
    assert can(Role.ESME, State.OUTBOUND, D.SEND, C.BIND_RECEIVER)
    # outbind only from an SMSC, only before binding
    assert can(Role.SMSC, State.OPEN, D.SEND, C.OUTBIND)
    assert not any(can(Role.ESME, s, D.SEND, C.OUTBIND) for s in State)
    assert not any(can(Role.SMSC, s, D.SEND, C.OUTBIND) for s in State if s is not State.OPEN)


def test_bind_responses_lead_to_their_bound_state() -> None:
    for resp, bound in ((C.BIND_TRANSMITTER_RESP, State.BOUND_TX),
                        (C.BIND_RECEIVER_RESP, State.BOUND_RX),
                        (C.BIND_TRANSCEIVER_RESP, State.BOUND_TRX)):
        assert TRANSITIONS[(Role.ESME, State.OPEN, D.RECEIVE, resp)] is bound
        assert TRANSITIONS[(Role.SMSC, State.OPEN, D.SEND, resp)] is bound
        # a refusal moves nothing
        assert transition(Role.ESME, State.OPEN, D.RECEIVE, resp, S.ESME_RBINDFAIL) is State.OPEN


def test_no_enquire_link_before_the_bind_response_but_answer_one() -> None:
    for role in Role:
        for state in (State.OPEN, State.OUTBOUND, State.UNBOUND):
            assert not can(role, state, D.SEND, C.ENQUIRE_LINK)
        for state in BOUND_STATES:
            assert can(role, state, D.SEND, C.ENQUIRE_LINK)
            assert can(role, state, D.RECEIVE, C.ENQUIRE_LINK)
    # An ESME answers an SMSC's early link check; both answer one while unbinding.
    for state in (State.OPEN, State.OUTBOUND, State.UNBOUND):
        assert can(Role.ESME, state, D.RECEIVE, C.ENQUIRE_LINK)
    assert can(Role.SMSC, State.UNBOUND, D.RECEIVE, C.ENQUIRE_LINK)


def test_an_smsc_refuses_a_link_check_before_the_bind() -> None:
    # SMPP 3.4 §4.11: enquire_link belongs to a bound session; answering it to
    # whoever connects tells a scanner what listens without a login (issue 8).
    assert not can(Role.SMSC, State.OPEN, D.RECEIVE, C.ENQUIRE_LINK)


def test_unbound_admits_no_new_requests_and_closed_admits_nothing() -> None:
    for role, direction in itertools.product(Role, Direction):
        requests = {c for c in C if not c.is_response} - {C.ENQUIRE_LINK}
        assert not any(can(role, State.UNBOUND, direction, c) for c in requests)
        assert not any(can(role, State.CLOSED, direction, c) for c in C)
        assert TRANSITIONS[(role, State.UNBOUND, direction, C.UNBIND_RESP)] is State.CLOSED


def test_rejection_status() -> None:
    assert rejection_status(State.BOUND_TX, C.BIND_TRANSMITTER) == S.ESME_RALYBND
    assert rejection_status(State.OPEN, C.SUBMIT_SM) == S.ESME_RINVBNDSTS
    assert rejection_status(State.UNBOUND, C.BIND_RECEIVER) == S.ESME_RINVBNDSTS
