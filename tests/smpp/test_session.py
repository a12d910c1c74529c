"""ESME and SMSC sessions wired back to back. Timers are driven by tables of
ticks (absolute times handed to handle_timer); nothing sleeps."""

from __future__ import annotations

import pytest

from herald.smpp import codec
from herald.smpp import tlv as T
from herald.smpp.constants import CommandStatus as S
from herald.smpp.constants import EsmType, MessageState
from herald.smpp.errors import LocalProtocolError, SessionStateError, WindowFull
from herald.smpp.events import (
    BindRejected,
    BindRequested,
    Bound,
    Closed,
    CloseReason,
    OutbindReceived,
    ProtocolError,
    RequestReceived,
    RequestTimedOut,
    ResponseReceived,
    ResponseUnparsed,
    UnbindRequested,
    UnmatchedResponse,
)
from herald.smpp.limits import MAX_SEQUENCE_NUMBER
from herald.smpp.pdus import (
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
)
from herald.smpp.receipts import receipt_of
from herald.smpp.session import Session, SessionConfig
from herald.smpp.states import Role, State
from herald.smpp.tlv import Tlv

from .pair import Pair, drain, sent, session_in

SUBMIT = SubmitSm(source_addr="HERALD", destination_addr="447700900123", short_message=b"hi")


# --------------------------------------------------------------------- binding


def test_bind_accepted() -> None:
    pair = Pair()
    seq = pair.esme.send_request(BindTransceiver(system_id="acme", password="secret"), 0.0)
    pair.pump()
    _, smsc = pair.take()
    [requested] = smsc
    assert isinstance(requested, BindRequested)
    assert (requested.request.system_id, requested.request.password) == ("acme", "secret")
    assert requested.request.sequence_number == seq
    assert pair.smsc.state is State.OPEN  # not bound until the application says so
    pair.smsc.send_response(requested.request.response(system_id="herald"))
    pair.pump()
    esme, smsc = pair.take()
    assert esme == [Bound(State.BOUND_TRX, BindTransceiverResp(sequence_number=seq,
                                                               system_id="herald"))]
    assert smsc == []
    assert pair.esme.state is pair.smsc.state is State.BOUND_TRX
    assert (pair.esme.peer_system_id, pair.smsc.peer_system_id) == ("herald", "acme")


def test_bind_refused_leaves_both_open() -> None:
    pair = Pair()
    pair.esme.send_request(BindTransmitter(system_id="acme", password="wrong"), 0.0)
    pair.pump()
    request = pair.take()[1][0].request
    pair.smsc.send_response(request.response(S.ESME_RINVPASWD))
    pair.pump()
    [rejected] = pair.take()[0]
    assert isinstance(rejected, BindRejected)
    assert rejected.response.command_status == S.ESME_RINVPASWD
    assert pair.esme.state is pair.smsc.state is State.OPEN
    assert pair.smsc.peer_system_id is None
    # and may try again
    pair.esme.send_request(BindTransmitter(system_id="acme", password="right"), 0.0)
    pair.pump()
    request = pair.take()[1][0].request
    pair.smsc.send_response(request.response())
    pair.pump()
    assert pair.esme.state is pair.smsc.state is State.BOUND_TX


def test_bind_answered_with_generic_nack_is_a_rejection() -> None:
    esme = Session(SessionConfig(role=Role.ESME), 0.0)
    seq = esme.send_request(BindTransceiver(system_id="acme"), 0.0)
    esme.receive_data(bytes(GenericNack(sequence_number=seq,
                                        command_status=S.ESME_RINVCMDID)), 0.0)
    [rejected] = drain(esme)
    assert isinstance(rejected, BindRejected) and esme.state is State.OPEN


def test_one_bind_at_a_time() -> None:
    pair = Pair()
    pair.esme.send_request(BindTransceiver(system_id="acme"), 0.0)
    with pytest.raises(SessionStateError):
        pair.esme.send_request(BindTransceiver(system_id="acme"), 0.0)
    # a peer that sends a second one anyway is refused
    pair.smsc.receive_data(bytes(BindTransceiver(sequence_number=5)) * 2, 0.0)
    events = drain(pair.smsc)
    assert [type(e) for e in events] == [BindRequested, ProtocolError]
    assert sent(pair.smsc) == [BindTransceiverResp(sequence_number=5,
                                                   command_status=S.ESME_RINVBNDSTS)]


def test_bind_on_a_bound_session_is_already_bound() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX)
    smsc.receive_data(bytes(BindTransceiver(sequence_number=9)), 0.0)
    [error] = drain(smsc)
    assert isinstance(error, ProtocolError) and error.status == S.ESME_RALYBND
    assert sent(smsc) == [BindTransceiverResp(sequence_number=9,
                                              command_status=S.ESME_RALYBND)]


def test_outbind() -> None:
    pair = Pair()
    pair.smsc.send_request(Outbind(system_id="herald", password="pw"), 0.0)
    assert pair.smsc.state is State.OUTBOUND
    pair.pump()
    [outbind] = pair.take()[0]
    assert isinstance(outbind, OutbindReceived) and pair.esme.state is State.OUTBOUND
    with pytest.raises(SessionStateError):  # SMPP 3.4 §4.1.7: bind as a receiver
        pair.esme.send_request(BindTransmitter(system_id="acme"), 0.0)
    pair.esme.send_request(BindReceiver(system_id="acme"), 0.0)
    pair.pump()
    request = pair.take()[1][0].request
    pair.smsc.send_response(request.response(system_id="herald"))
    pair.pump()
    assert pair.esme.state is pair.smsc.state is State.BOUND_RX


# ----------------------------------------------------------------- messaging


def test_submit_and_response() -> None:
    pair = Pair()
    pair.bind()
    seq = pair.esme.send_request(SUBMIT, 1.0)
    pair.pump()
    [received] = pair.take()[1]
    assert received == RequestReceived(SUBMIT.with_header(seq))
    pair.smsc.send_response(received.request.response(message_id="5f3a9c"))
    pair.pump()
    [answered] = pair.take()[0]
    assert answered == ResponseReceived(SUBMIT.with_header(seq),
                                        SubmitSmResp(sequence_number=seq, message_id="5f3a9c"))


def test_deliver_a_receipt() -> None:
    pair = Pair()
    pair.bind()
    dlr = DeliverSm(source_addr="447700900123", destination_addr="HERALD",
                    esm_class=EsmType.DELIVERY_RECEIPT,
                    short_message=b"id:5f3a9c sub:001 dlvrd:001 stat:DELIVRD err:000 text:hi",
                    tlvs=(T.RECEIPTED_MESSAGE_ID("5f3a9c"), T.MESSAGE_STATE(2)))
    seq = pair.smsc.send_request(dlr, 0.0)
    pair.pump()
    [received] = pair.take()[0]
    assert isinstance(received, RequestReceived)
    receipt = receipt_of(received.request)  # type: ignore[arg-type]
    assert (receipt.message_id, receipt.state) == ("5f3a9c", MessageState.DELIVERED)
    pair.esme.send_response(received.request.response())
    pair.pump()
    [answered] = pair.take()[1]
    assert answered == ResponseReceived(dlr.with_header(seq), DeliverSmResp(sequence_number=seq))


def test_sequence_numbers_count_up_and_wrap() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX, first_sequence_number=MAX_SEQUENCE_NUMBER - 1,
                      window=10)
    # the bind took MAX-1; then MAX, then it wraps to 1 (0 is never used)
    seqs = [esme.send_request(SUBMIT, 0.0) for _ in range(3)]
    assert seqs == [MAX_SEQUENCE_NUMBER, 1, 2]
    assert [p.sequence_number for p in sent(esme)] == seqs


def test_sequence_numbers_skip_those_still_in_flight_after_a_wrap() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX, first_sequence_number=MAX_SEQUENCE_NUMBER,
                      window=5)
    first = esme.send_request(SUBMIT, 0.0)  # 1: the bind took MAX
    assert first == 1
    # Walk the counter round to 1 again while 1 is still in flight.
    esme._next_seq = MAX_SEQUENCE_NUMBER  # private: 2**31 requests would take too long
    assert [esme.send_request(SUBMIT, 0.0) for _ in range(2)] == [MAX_SEQUENCE_NUMBER, 2]


def test_window_full_and_room_again() -> None:
    pair = Pair(esme_config={"window": 2})
    pair.bind()
    pair.esme.send_request(SUBMIT, 0.0)
    pair.esme.send_request(SUBMIT, 0.0)
    assert pair.esme.window_room == 0 and not pair.esme.can_send(SUBMIT.command_id)
    with pytest.raises(WindowFull):
        pair.esme.send_request(SUBMIT, 0.0)
    # control PDUs are not held up by a full window
    assert pair.esme.can_send(EnquireLink.command_id)
    pair.pump()
    first = pair.take()[1][0].request
    pair.smsc.send_response(first.response(message_id="1"))
    pair.pump()
    assert pair.esme.window_room == 1
    pair.esme.send_request(SUBMIT, 0.0)


def test_generic_nack_completes_the_request_it_names() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX)
    seq = esme.send_request(SUBMIT, 0.0)
    nack = GenericNack(sequence_number=seq, command_status=S.ESME_RINVCMDLEN)
    esme.receive_data(bytes(nack), 0.0)
    assert drain(esme) == [ResponseReceived(SUBMIT.with_header(seq), nack)]
    assert esme.in_flight == 0


def test_generic_nack_without_a_usable_sequence_number_is_reported() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX)
    esme.send_request(SUBMIT, 0.0)
    nack = GenericNack(sequence_number=0, command_status=S.ESME_RINVCMDLEN)
    esme.receive_data(bytes(nack), 0.0)
    assert drain(esme) == [UnmatchedResponse(nack)]
    assert esme.in_flight == 1


def test_response_of_the_wrong_class_does_not_complete_a_request() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX)
    seq = esme.send_request(SUBMIT, 0.0)
    wrong = QuerySmResp(sequence_number=seq)
    esme.receive_data(bytes(wrong), 0.0)
    assert drain(esme) == [UnmatchedResponse(wrong)]
    assert esme.in_flight == 1


def test_unparsable_positive_response_is_reported_with_its_request() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX)
    seq = esme.send_request(SUBMIT, 0.0)
    # submit_sm_resp, status 0, body "ff" with no NUL
    esme.receive_data((17).to_bytes(4, "big") + bytes.fromhex("80000004 00000000")
                      + seq.to_bytes(4, "big") + b"\xff", 0.0)
    [event] = drain(esme)
    assert isinstance(event, ResponseUnparsed)
    assert event.request == SUBMIT.with_header(seq)
    assert esme.in_flight == 0


def test_responses_must_answer_something() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX)
    with pytest.raises(LocalProtocolError):
        smsc.send_response(SubmitSmResp(sequence_number=3))
    smsc.receive_data(bytes(SUBMIT.with_header(3)), 0.0)
    drain(smsc)
    with pytest.raises(LocalProtocolError):
        smsc.send_response(DeliverSmResp(sequence_number=3))
    smsc.send_response(SubmitSmResp(sequence_number=3, message_id="x"))
    with pytest.raises(LocalProtocolError):  # only once
        smsc.send_response(SubmitSmResp(sequence_number=3, message_id="x"))


def test_requests_beyond_max_awaiting_are_throttled() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX, max_awaiting=2)
    smsc.receive_data(b"".join(bytes(SUBMIT.with_header(n)) for n in (1, 2, 3)), 0.0)
    events = drain(smsc)
    assert [type(e) for e in events] == [RequestReceived, RequestReceived, ProtocolError]
    assert sent(smsc) == [SubmitSmResp(sequence_number=3, command_status=S.ESME_RTHROTTLED)]
    assert smsc.awaiting_response == 2


# ------------------------------------------------------------- invalid input


def test_pdu_not_allowed_in_the_state_gets_rinvbndsts() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX)  # a transmitter receives no deliver_sm
    esme.receive_data(bytes(DeliverSm(sequence_number=5)), 0.0)
    [error] = drain(esme)
    assert isinstance(error, ProtocolError) and error.status == S.ESME_RINVBNDSTS
    assert sent(esme) == [DeliverSmResp(sequence_number=5, command_status=S.ESME_RINVBNDSTS)]


def test_unknown_command_gets_generic_nack_and_the_session_goes_on() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX)
    smsc.receive_data(bytes.fromhex("00000010 00000999 00000000 00000007")
                      + bytes(SUBMIT.with_header(8)), 0.0)
    events = drain(smsc)
    assert [type(e) for e in events] == [ProtocolError, RequestReceived]
    assert sent(smsc) == [GenericNack(sequence_number=7, command_status=S.ESME_RINVCMDID)]


def test_bad_body_is_answered_with_the_decoder_status() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX)
    smsc.receive_data(bytes.fromhex("00000014 00000004 00000000 00000007 00050048"), 0.0)
    [error] = drain(smsc)
    assert isinstance(error, ProtocolError) and error.status == S.ESME_RINVCMDLEN
    assert sent(smsc) == [SubmitSmResp(sequence_number=7, command_status=S.ESME_RINVCMDLEN)]


def test_impossible_command_length_closes_the_session() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX)
    smsc.receive_data(bytes.fromhex("00000000 00000004 00000000 00000007"), 0.0)
    events = drain(smsc)
    assert [type(e) for e in events] == [ProtocolError, Closed]
    assert events[0].fatal and events[1].reason is CloseReason.FRAMING_ERROR
    assert sent(smsc) == [GenericNack(sequence_number=7, command_status=S.ESME_RINVCMDLEN)]
    assert smsc.state is State.CLOSED and smsc.get_timer() is None


def test_sending_what_the_state_forbids_raises() -> None:
    esme = Session(SessionConfig(role=Role.ESME), 0.0)
    with pytest.raises(SessionStateError):
        esme.send_request(SUBMIT, 0.0)
    with pytest.raises(SessionStateError):  # no enquire_link before the bind response
        esme.send_request(EnquireLink(), 0.0)
    esme.close()
    with pytest.raises(SessionStateError):
        esme.send_request(BindTransceiver(), 0.0)


# ------------------------------------------------------------------- timers


def test_response_timeout() -> None:
    pair = Pair(esme_config={"response_timeout": 10.0, "enquire_link_interval": None,
                             "inactivity_timeout": None})
    pair.bind()
    seq = pair.esme.send_request(SUBMIT, 100.0)
    pair.pump(100.0)
    request = pair.take()[1][0].request
    ticks = [(105.0, []), (109.99, []), (110.0, [RequestTimedOut(SUBMIT.with_header(seq))])]
    for now, expected in ticks:
        assert pair.esme.get_timer() == 110.0
        pair.esme.handle_timer(now)
        assert drain(pair.esme) == expected, now
    assert pair.esme.window_room == pair.esme.config.window and pair.esme.get_timer() is None
    # the late answer is reported, not matched
    pair.smsc.send_response(request.response(message_id="late"))
    pair.pump(111.0)
    assert pair.take()[0] == [UnmatchedResponse(SubmitSmResp(sequence_number=seq,
                                                             message_id="late"))]


def test_session_init_timeout() -> None:
    smsc = Session(SessionConfig(role=Role.SMSC, session_init_timeout=10.0), 50.0)
    for now, expected_state in [(55.0, State.OPEN), (59.9, State.OPEN), (60.0, State.CLOSED)]:
        assert smsc.get_timer() == 60.0
        smsc.handle_timer(now)
        assert smsc.state is expected_state, now
    assert drain(smsc) == [Closed(CloseReason.SESSION_INIT_TIMEOUT)]


def test_a_bound_session_is_not_closed_by_session_init() -> None:
    pair = Pair(esme_config={"session_init_timeout": 10.0, "enquire_link_interval": None,
                             "inactivity_timeout": None},
                smsc_config={"session_init_timeout": 10.0, "enquire_link_interval": None,
                             "inactivity_timeout": None})
    pair.bind()
    for side in (pair.esme, pair.smsc):
        assert side.get_timer() is None
        side.handle_timer(1000.0)
        assert side.state is State.BOUND_TRX


def test_enquire_link_keeps_the_link_checked() -> None:
    pair = Pair(esme_config={"enquire_link_interval": 30.0, "inactivity_timeout": 90.0},
                smsc_config={"enquire_link_interval": None, "inactivity_timeout": 90.0})
    pair.bind()
    # (now, what the ESME sends at that tick)
    ticks = [(29.0, []), (30.0, [EnquireLink]), (45.0, []), (60.0, [EnquireLink])]
    for now, expected in ticks:
        pair.esme.handle_timer(now)
        out = sent(pair.esme)
        assert [type(p) for p in out] == expected, now
        for pdu in out:  # the SMSC answers at once; the ESME sees no event
            pair.smsc.receive_data(bytes(pdu), now)
            assert drain(pair.smsc) == []
            assert [type(p) for p in sent(pair.smsc)] == [EnquireLinkResp]
            pair.esme.receive_data(bytes(EnquireLinkResp(sequence_number=pdu.sequence_number)),
                                   now)
            assert drain(pair.esme) == []
        assert pair.esme.state is State.BOUND_TRX
    assert pair.esme.get_timer() == 90.0


def test_unanswered_enquire_link_closes() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX, enquire_link_interval=30.0,
                      response_timeout=10.0, inactivity_timeout=None)
    esme.handle_timer(30.0)
    assert [type(p) for p in sent(esme)] == [EnquireLink]
    assert esme.get_timer() == 40.0
    esme.handle_timer(40.0)
    assert drain(esme) == [Closed(CloseReason.ENQUIRE_LINK_TIMEOUT)]


def test_inactivity_closes_and_input_defers_it() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_TRX, enquire_link_interval=None,
                      inactivity_timeout=60.0)
    ticks = [(50.0, b"", State.BOUND_TRX),
             (55.0, bytes(EnquireLink(sequence_number=4)), State.BOUND_TRX),  # input at 55
             (100.0, b"", State.BOUND_TRX),
             (115.0, b"", State.CLOSED)]
    for now, data, state in ticks:
        smsc.receive_data(data, now)
        drain(smsc)
        smsc.handle_timer(now)
        assert smsc.state is state, now
    assert drain(smsc) == [Closed(CloseReason.INACTIVITY_TIMEOUT)]
    assert smsc.get_timer() is None


# -------------------------------------------------------------------- unbind


def test_unbind_started_by_the_esme() -> None:
    pair = Pair()
    pair.bind()
    pair.esme.unbind(0.0)
    assert pair.esme.state is State.UNBOUND
    with pytest.raises(SessionStateError):
        pair.esme.send_request(SUBMIT, 0.0)
    pair.pump()
    esme, smsc = pair.take()
    assert [type(e) for e in smsc] == [UnbindRequested, Closed]
    assert smsc[1] == Closed(CloseReason.UNBOUND)
    assert esme == [Closed(CloseReason.UNBOUND)]


def test_peer_unbind_waits_for_the_answers_it_is_owed() -> None:
    pair = Pair()
    pair.bind()
    seq = pair.esme.send_request(SUBMIT, 0.0)
    pair.esme.unbind(0.0)
    pair.pump()
    _, smsc = pair.take()
    assert [type(e) for e in smsc] == [RequestReceived, UnbindRequested]
    assert pair.smsc.state is State.UNBOUND
    # a new request now is refused
    pair.smsc.receive_data(bytes(SUBMIT.with_header(99)), 0.0)
    assert [type(e) for e in drain(pair.smsc)] == [ProtocolError]
    assert sent(pair.smsc) == [SubmitSmResp(sequence_number=99,
                                            command_status=S.ESME_RINVBNDSTS)]
    # answering the owed request lets the unbind_resp follow it
    pair.smsc.send_response(smsc[0].request.response(message_id="m1"))
    assert [type(p) for p in sent_and_keep(pair.smsc, pair)] == [SubmitSmResp, UnbindResp]
    pair.pump()
    esme, smsc = pair.take()
    assert [type(e) for e in esme] == [ResponseReceived, Closed]
    assert esme[0].response == SubmitSmResp(sequence_number=seq, message_id="m1")
    assert smsc == [Closed(CloseReason.UNBOUND)]


def sent_and_keep(session: Session, pair: Pair) -> list[object]:
    """Peek at what a session sends and hand it on to the other side."""
    data = session.data_to_send()
    decoded = sent_from(data)
    pair.esme.receive_data(data, pair.now)
    pair.esme_events += drain(pair.esme)
    return decoded


def sent_from(data: bytes) -> list[object]:
    decoder = codec.PduDecoder()
    decoder.feed(data)
    out = []
    for _ in range(100):
        outcome = decoder.next_outcome()
        if outcome is codec.NEED_DATA:
            break
        out.append(outcome)
    return out


def test_unbind_timeout() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX, unbind_timeout=5.0, inactivity_timeout=None,
                      enquire_link_interval=None)
    esme.unbind(10.0)
    assert esme.get_timer() == 15.0
    esme.handle_timer(14.0)
    assert esme.state is State.UNBOUND
    esme.handle_timer(15.0)
    assert drain(esme) == [Closed(CloseReason.UNBIND_TIMEOUT)]


def test_connection_lost_lists_unanswered_requests() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX)
    seqs = [esme.send_request(SUBMIT, 0.0) for _ in range(2)]
    esme.connection_lost(1.0)
    assert drain(esme) == [Closed(CloseReason.CONNECTION_LOST,
                                  tuple(SUBMIT.with_header(s) for s in seqs))]
    esme.receive_data(bytes(SubmitSmResp(sequence_number=seqs[0])), 2.0)  # ignored
    assert drain(esme) == []
    esme.connection_lost(3.0)  # once only
    assert drain(esme) == []


def test_unbind_pdu_round_trip_through_raw_bytes() -> None:
    smsc = session_in(Role.SMSC, State.BOUND_RX)
    smsc.receive_data(bytes(Unbind(sequence_number=12)), 0.0)
    assert [type(e) for e in drain(smsc)] == [UnbindRequested, Closed]
    assert sent(smsc) == [UnbindResp(sequence_number=12)]


def test_an_unreadable_bind_response_ends_the_pending_bind() -> None:
    esme = Session(SessionConfig(role=Role.ESME), 0.0)
    seq = esme.send_request(BindTransceiver(system_id="acme"), 0.0)
    # bind_transceiver_resp, status 0, body "ff" without its NUL
    esme.receive_data((17).to_bytes(4, "big") + bytes.fromhex("80000009 00000000")
                      + seq.to_bytes(4, "big") + b"\xff", 0.0)
    [event] = drain(esme)
    assert isinstance(event, ResponseUnparsed) and event.request.sequence_number == seq
    assert esme.state is State.OPEN and esme.can_send(BindTransceiver.command_id)
    esme.send_request(BindTransceiver(system_id="acme"), 0.0)  # may bind again


def test_an_unreadable_enquire_link_response_does_not_stop_keepalives() -> None:
    esme = session_in(Role.ESME, State.BOUND_TRX, enquire_link_interval=30.0,
                      inactivity_timeout=None)
    esme.handle_timer(30.0)
    [link] = sent(esme)
    # enquire_link_resp with 3 trailing octets: not a TLV
    esme.receive_data((19).to_bytes(4, "big") + bytes.fromhex("80000015 00000000")
                      + link.sequence_number.to_bytes(4, "big") + b"abc", 31.0)
    assert [type(e) for e in drain(esme)] == [ResponseUnparsed]
    assert esme.get_timer() == 61.0
    esme.handle_timer(61.0)
    assert [type(p) for p in sent(esme)] == [EnquireLink]


def test_max_pdu_size_is_the_sessions_to_choose() -> None:
    # 120 kB: two 60 kB vendor TLVs, over the default 72 kB maximum
    big = SubmitSm(sequence_number=5, source_addr="HERALD",
                   tlvs=tuple(Tlv(0x1400, b"x" * 60_000) for _ in range(2)))
    roomy = session_in(Role.SMSC, State.BOUND_TRX, max_pdu_size=1_000_000)
    roomy.receive_data(bytes(big), 0.0)
    assert drain(roomy) == [RequestReceived(big)]
    strict = session_in(Role.SMSC, State.BOUND_TRX)
    strict.receive_data(bytes(big), 0.0)
    assert [type(e) for e in drain(strict)] == [ProtocolError, Closed]
