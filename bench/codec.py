"""herald.smpp codec throughput against smpplib's, measured in one run.

    .venv/bin/python bench/codec.py [--quick]

Three PDUs of a message's life: a submit_sm (an OTP, receipt requested), its
submit_sm_resp, and the deliver_sm carrying the receipt (text plus the
receipted_message_id and message_state TLVs). Both libraries encode the same
field values to the same octets (checked first).

- ``decode``: bytes of one whole PDU -> PDU object. herald: ``codec.decode``;
  smpplib 2.2.4: ``smpplib.smpp.parse_pdu``.
- ``decode (stream)``: herald's ``PduDecoder`` fed 1000 PDUs back to back and
  drained, per PDU: the path a session uses.
- ``build+encode``: field values -> bytes, constructing the object each time
  (what a sender does per message). herald: ``bytes(SubmitSm(...))``; smpplib:
  ``make_pdu(...).generate()``.
- ``SMSC session``: herald only: an SMSC ``Session`` reading submit_sm from the
  wire, raising RequestReceived and sending submit_sm_resp; its ratio is
  against herald's bare codec doing the same (decode the submit_sm, build and
  encode its response), i.e. the share of the time that is the codec's.

Each figure is the best of several timed rounds (ops/s); herald's and
smpplib's rounds alternate so load on the shared machine hits both alike.
Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import platform
import timeit
from collections.abc import Callable

from smpplib import smpp as smpplib_smpp

from herald.smpp import codec
from herald.smpp import tlv as T
from herald.smpp.constants import EsmType
from herald.smpp.events import RequestReceived
from herald.smpp.pdus import BindTransceiver, DeliverSm, SubmitSm, SubmitSmResp
from herald.smpp.session import Session, SessionConfig
from herald.smpp.states import Role

RECEIPT = (b"id:1234567890 sub:001 dlvrd:001 submit date:2411250338 done date:2411250339"
           b" stat:DELIVRD err:000 text:Your code is")


class _Client:
    """smpplib's PDUs ask their client for sequence numbers."""

    sequence = 7

    @staticmethod
    def next_sequence() -> int:
        return 7


def herald_submit() -> SubmitSm:
    return SubmitSm(sequence_number=7, source_addr_ton=5, source_addr="HERALD", dest_addr_ton=1,
                    dest_addr_npi=1, destination_addr="447700900123", registered_delivery=1,
                    short_message=b"Your code is 123456")


def herald_resp() -> SubmitSmResp:
    return SubmitSmResp(sequence_number=7, message_id="1234567890")


def herald_dlr() -> DeliverSm:
    return DeliverSm(sequence_number=7, source_addr_ton=1, source_addr_npi=1,
                     source_addr="447700900123", dest_addr_ton=5, destination_addr="HERALD",
                     esm_class=EsmType.DELIVERY_RECEIPT, short_message=RECEIPT,
                     tlvs=(T.MESSAGE_STATE(2), T.RECEIPTED_MESSAGE_ID("1234567890")))


def smpplib_submit() -> object:
    return smpplib_smpp.make_pdu(
        "submit_sm", client=_Client, sequence=7, source_addr_ton=5, source_addr_npi=0,
        source_addr="HERALD", dest_addr_ton=1, dest_addr_npi=1,
        destination_addr="447700900123", registered_delivery=1,
        short_message=b"Your code is 123456")


def smpplib_resp() -> object:
    return smpplib_smpp.make_pdu("submit_sm_resp", client=_Client, sequence=7,
                                 message_id="1234567890")


def smpplib_dlr() -> object:
    return smpplib_smpp.make_pdu(
        "deliver_sm", client=_Client, sequence=7, source_addr_ton=1, source_addr_npi=1,
        source_addr="447700900123", dest_addr_ton=5, destination_addr="HERALD",
        esm_class=4, short_message=RECEIPT, receipted_message_id="1234567890",
        message_state=2)


CASES = {
    "submit_sm": (herald_submit, smpplib_submit),
    "submit_sm_resp": (herald_resp, smpplib_resp),
    "deliver_sm (receipt)": (herald_dlr, smpplib_dlr),
}


def check_same_octets() -> dict[str, bytes]:
    """Both libraries produce the same octets, and each reads the other's."""
    wires = {}
    for name, (ours, theirs) in CASES.items():
        a = bytes(ours())
        b = theirs().generate()  # type: ignore[attr-defined]
        if a != b:
            raise SystemExit(f"{name}: herald and smpplib encode differently:\n{a.hex()}\n"
                             f"{b.hex()}")
        if codec.decode(b) != ours():
            raise SystemExit(f"{name}: herald misreads smpplib's octets")
        smpplib_smpp.parse_pdu(a, client=_Client)
        wires[name] = a
    return wires


def rate(fn: Callable[[], object], number: int, per_call: int = 1) -> float:
    """Operations per second of one timed run."""
    return number * per_call / timeit.timeit(fn, number=number)


def compare(ours: Callable[[], float], theirs: Callable[[], float] | None,
            rounds: int) -> tuple[float, float | None]:
    """Best rate of each side over ``rounds`` alternating runs."""
    best_ours, best_theirs = 0.0, 0.0
    for _ in range(rounds):
        best_ours = max(best_ours, ours())
        if theirs is not None:
            best_theirs = max(best_theirs, theirs())
    return best_ours, (best_theirs if theirs is not None else None)


def stream_decode(data: bytes, batch: int) -> Callable[[], object]:
    blob = data * batch

    def run() -> None:
        decoder = codec.PduDecoder(max_buffered=len(blob) + codec.MAX_PDU_SIZE)
        decoder.feed(blob)
        for _ in range(batch):
            decoder.next_outcome()

    return run


def smsc_session(batch: int) -> Callable[[], object]:
    submits = b"".join(bytes(herald_submit().with_header(n)) for n in range(1, batch + 1))
    config = SessionConfig(role=Role.SMSC, max_awaiting=batch + 1,
                           enquire_link_interval=None, inactivity_timeout=None)

    def run() -> None:
        session = Session(config, 0.0)
        session.receive_data(bytes(BindTransceiver(sequence_number=1, system_id="acme")), 0.0)
        bind = session.next_event().request  # type: ignore[union-attr]
        session.send_response(bind.response(system_id="herald"))
        session.receive_data(submits, 0.0)
        for _ in range(batch):
            event = session.next_event()
            assert isinstance(event, RequestReceived)
            session.send_response(event.request.response(message_id="1234567890"))
        session.data_to_send()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    number, rounds, batch = (2_000, 3, 200) if args.quick else (10_000, 9, 1000)
    wires = check_same_octets()

    rows: list[tuple[str, str, float, float | None]] = []
    for name, (ours, theirs) in CASES.items():
        data = wires[name]
        smpplib_decode = lambda data=data: rate(  # noqa: E731
            lambda: smpplib_smpp.parse_pdu(data, client=_Client), number)
        rows.append((name, "decode", *compare(
            lambda data=data: rate(lambda: codec.decode(data), number),
            smpplib_decode, rounds)))
        stream = stream_decode(data, batch)
        rows.append((name, "decode (stream)", *compare(
            lambda stream=stream: rate(stream, max(1, number // batch), batch),
            smpplib_decode, rounds)))
        rows.append((name, "build+encode", *compare(
            lambda ours=ours: rate(lambda: bytes(ours()), number),
            lambda theirs=theirs: rate(lambda: theirs().generate(), number), rounds)))

    submit = wires["submit_sm"]
    session = smsc_session(batch)
    session_rate, _ = compare(lambda: rate(session, max(1, number // batch), batch), None,
                              rounds)
    def bare_codec() -> bytes:
        request = codec.decode(submit)
        assert isinstance(request, SubmitSm)
        return bytes(request.response(message_id="1234567890"))

    bare, _ = compare(lambda: rate(bare_codec, number), None, rounds)

    print(f"herald.smpp codec vs smpplib 2.2.4 -- Python {platform.python_version()}, "
          f"{platform.machine()}, best of {rounds} alternating rounds")
    print(f"{'PDU':<22}{'operation':<17}{'herald/s':>12}{'smpplib/s':>12}{'ratio':>8}")
    for name, op, ours_rate, theirs_rate in rows:
        ratio = f"{ours_rate / theirs_rate:7.1f}x" if theirs_rate else ""
        print(f"{name:<22}{op:<17}{ours_rate:>12,.0f}{theirs_rate or 0:>12,.0f}{ratio:>8}")
    print()
    print(f"{'SMSC session':<22}{'submit in+resp':<17}{session_rate:>12,.0f}"
          f"{'':>12}{session_rate / bare:7.2f}x of bare codec ({bare:,.0f}/s)")


if __name__ == "__main__":
    main()
