"""Two sans-I/O sessions wired back to back, and sessions put in a given state."""

from __future__ import annotations

from dataclasses import dataclass, field

from herald.smpp import codec
from herald.smpp.constants import CommandStatus
from herald.smpp.events import BindRequested, Event
from herald.smpp.pdus import BindTransceiver, BindTransceiverResp, Outbind, Pdu, Unbind
from herald.smpp.session import Session, SessionConfig
from herald.smpp.states import Role, State


def drain(session: Session) -> list[Event]:
    events: list[Event] = []
    for _ in range(10_000):
        event = session.next_event()
        if event is None:
            return events
        events.append(event)
    raise AssertionError("a session produced 10 000 events without stopping")


def sent(session: Session) -> list[Pdu]:
    """The PDUs a session has queued for its peer."""
    decoder = codec.PduDecoder()
    decoder.feed(session.data_to_send())
    out: list[Pdu] = []
    for _ in range(10_000):
        outcome = decoder.next_outcome()
        if outcome is codec.NEED_DATA:
            return out
        assert isinstance(outcome, Pdu), outcome
        out.append(outcome)
    raise AssertionError("unbounded output")


@dataclass
class Pair:
    """An ESME and an SMSC session connected by a perfect, instant link."""

    now: float = 0.0
    esme_config: dict[str, object] = field(default_factory=dict)
    smsc_config: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.esme = Session(SessionConfig(role=Role.ESME, **self.esme_config), self.now)
        self.smsc = Session(SessionConfig(role=Role.SMSC, **self.smsc_config), self.now)
        self.esme_events: list[Event] = []
        self.smsc_events: list[Event] = []

    def pump(self, now: float | None = None) -> None:
        """Carry bytes both ways until neither side has anything to say."""
        if now is not None:
            self.now = now
        for _ in range(50):
            self.esme_events += drain(self.esme)
            self.smsc_events += drain(self.smsc)
            to_smsc = self.esme.data_to_send()
            to_esme = self.smsc.data_to_send()
            if not to_smsc and not to_esme:
                return
            self.smsc.receive_data(to_smsc, self.now)
            self.smsc_events += drain(self.smsc)
            self.esme.receive_data(to_esme, self.now)
            self.esme_events += drain(self.esme)
        raise AssertionError("the sessions kept talking for 50 rounds")

    def take(self) -> tuple[list[Event], list[Event]]:
        esme, smsc = self.esme_events, self.smsc_events
        self.esme_events, self.smsc_events = [], []
        return esme, smsc

    def bind(self, system_id: str = "acme") -> None:
        """Bind as a transceiver, the SMSC accepting."""
        self.esme.send_request(BindTransceiver(system_id=system_id, password="pw"), self.now)
        self.pump()
        request = next(e for e in self.smsc_events if isinstance(e, BindRequested)).request
        self.smsc.send_response(request.response(system_id="herald"))
        self.pump()
        assert self.esme.state is self.smsc.state is State.BOUND_TRX
        self.take()


def session_in(role: Role, state: State, **config: object) -> Session:
    """A session of ``role`` brought into ``state`` by real PDUs, output and
    events drained."""
    session = Session(SessionConfig(role=role, **config), 0.0)
    if state is State.CLOSED:
        session.close()
    elif state is State.OUTBOUND:
        if role is Role.SMSC:
            session.send_request(Outbind(system_id="smsc"), 0.0)
        else:
            session.receive_data(bytes(Outbind(sequence_number=1, system_id="smsc")), 0.0)
    elif state is not State.OPEN:
        bound = {State.UNBOUND: State.BOUND_TRX}.get(state, state)
        _bind(session, bound)
        if state is State.UNBOUND:
            session.send_request(Unbind(), 0.0)
    drain(session)
    session.data_to_send()
    assert session.state is state
    return session


def _bind(session: Session, state: State) -> None:
    from herald.smpp.pdus import (
        BindReceiver,
        BindReceiverResp,
        BindTransmitter,
        BindTransmitterResp,
    )

    request_cls, response_cls = {
        State.BOUND_TX: (BindTransmitter, BindTransmitterResp),
        State.BOUND_RX: (BindReceiver, BindReceiverResp),
        State.BOUND_TRX: (BindTransceiver, BindTransceiverResp),
    }[state]
    if session.role is Role.ESME:
        seq = session.send_request(request_cls(system_id="acme"), 0.0)
        session.receive_data(bytes(response_cls(sequence_number=seq)), 0.0)
    else:
        session.receive_data(bytes(request_cls(sequence_number=1, system_id="acme")), 0.0)
        drain(session)
        session.send_response(response_cls(sequence_number=1,
                                           command_status=CommandStatus.ESME_ROK))
    drain(session)
