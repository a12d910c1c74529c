"""enquire_link sent by the application is answered to the application; the
session's own keep-alive stays internal (regression: 275bb8e swallowed both)."""

from __future__ import annotations

from herald.smpp.events import ResponseReceived
from herald.smpp.pdus import EnquireLink, EnquireLinkResp

from .pair import Pair


def test_application_enquire_link_gets_its_response() -> None:
    pair = Pair(esme_config={"enquire_link_interval": 30.0})
    pair.bind()
    seq = pair.esme.send_request(EnquireLink(), pair.now)
    pair.pump()
    esme_events, _ = pair.take()
    answers = [e for e in esme_events if isinstance(e, ResponseReceived)]
    assert len(answers) == 1
    assert answers[0].request.sequence_number == seq
    assert isinstance(answers[0].response, EnquireLinkResp)
    assert pair.esme.in_flight == 0


def test_keep_alive_probe_stays_internal() -> None:
    pair = Pair(esme_config={"enquire_link_interval": 30.0})
    pair.bind()
    pair.esme.handle_timer(31.0)  # idle past the interval: the session probes
    pair.pump(31.0)
    esme_events, _ = pair.take()
    assert esme_events == []
    assert pair.esme.in_flight == 0
    # and a second probe follows after another idle interval
    pair.esme.handle_timer(62.0)
    assert pair.esme.in_flight == 1
