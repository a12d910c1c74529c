"""Fuzzing the decoder with random and mutated PDUs.

The only allowed results are the codec's own outcomes (a PDU, UnparsedPdu,
BrokenFraming, NEED_DATA) and, reading TLVs, its own InvalidTlvValue. Anything
else (IndexError, struct.error, UnicodeDecodeError...) is a bug. A PDU that
decodes strictly must re-encode to the very same octets.

The default run is bounded to a few seconds; ``pytest -m slow`` runs longer.
"""

from __future__ import annotations

import contextlib
import random

import pytest

from herald.smpp import codec
from herald.smpp.constants import RESPONSE_BIT
from herald.smpp.errors import InvalidTlvValue
from herald.smpp.limits import HEADER_SIZE
from herald.smpp.pdus import PDU_CLASSES, Pdu
from herald.smpp.tlv import validate_tlvs

from .test_vectors import VECTORS
from .wire import wire

SEEDS = [wire(text) for _, text, _ in VECTORS]
COMMAND_IDS = sorted(PDU_CLASSES)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(7)
        if kind == 0 and buf:  # flip a byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 1:  # insert bytes
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif kind == 2 and len(buf) > 1:  # delete a run
            at = rng.randrange(len(buf))
            del buf[at:at + rng.randint(1, 8)]
        elif kind == 3 and len(buf) > 16:  # body of another command
            buf[4:8] = rng.choice(COMMAND_IDS).to_bytes(4, "big")
        elif kind == 4:  # a plausible body under a random header
            buf = bytearray(rng.choice(SEEDS)[:16]) + buf[16:]
        elif kind == 5 and buf:  # truncate
            del buf[rng.randrange(len(buf)):]
        elif kind == 6 and buf:  # a NUL or a 0xff somewhere (terminators, lengths)
            buf[rng.randrange(len(buf))] = rng.choice((0, 0xFF))
        # keep command_length consistent half of the time, so bodies get parsed
    if len(buf) >= 4 and rng.random() < 0.5:
        buf[0:4] = len(buf).to_bytes(4, "big")
    return bytes(buf)


def _check_pdu(pdu: Pdu, chunk: bytes) -> None:
    with contextlib.suppress(InvalidTlvValue):
        validate_tlvs(pdu.tlvs)
    lenient = pdu.command_id & RESPONSE_BIT and (
        pdu.command_status or len(chunk) == HEADER_SIZE
    )
    if not lenient:
        assert bytes(pdu) == chunk


def _run(rng: random.Random, cases: int) -> dict[str, int]:
    seen = {"pdu": 0, "unparsed": 0, "framing": 0, "need": 0}
    for _ in range(cases):
        data = _mutate(rng, rng.choice(SEEDS)) if rng.random() < 0.9 else rng.randbytes(
            rng.randint(0, 64))
        decoder = codec.PduDecoder()
        decoder.feed(data)
        outcome = decoder.next_outcome()
        if isinstance(outcome, Pdu):
            seen["pdu"] += 1
            length = int.from_bytes(data[:4], "big")
            _check_pdu(outcome, data[:length])
        elif isinstance(outcome, codec.UnparsedPdu):
            seen["unparsed"] += 1
            outcome.answer()
        elif isinstance(outcome, codec.BrokenFraming):
            seen["framing"] += 1
            outcome.answer()
        else:
            assert outcome is codec.NEED_DATA
            seen["need"] += 1
    return seen


def test_fuzz_short() -> None:
    seen = _run(random.Random(20241125), 4000)
    # the mutations reach every outcome, or the fuzzer is not doing its job
    assert all(seen.values()), seen


@pytest.mark.slow
def test_fuzz_long() -> None:
    for seed in range(20):
        _run(random.Random(seed), 20000)


def test_fuzz_stream_of_mutants_in_random_chunks() -> None:
    rng = random.Random(7)
    for _ in range(300):
        stream = b"".join(_mutate(rng, rng.choice(SEEDS)) for _ in range(rng.randint(1, 6)))
        decoder = codec.PduDecoder()
        pos = 0
        for _ in range(len(stream) + 1):  # bounded: every pass feeds >= 1 octet or ends
            if pos >= len(stream):
                break
            step = rng.randint(1, 40)
            decoder.feed(stream[pos:pos + step])
            pos += step
            for _ in range(len(stream)):
                outcome = decoder.next_outcome()
                if outcome is codec.NEED_DATA or isinstance(outcome, codec.BrokenFraming):
                    break
                assert isinstance(outcome, Pdu | codec.UnparsedPdu)


def test_fuzz_sessions_never_raise_on_peer_input() -> None:
    """Whatever a peer sends, a session answers or closes; it never raises."""
    from herald.smpp.events import Closed
    from herald.smpp.states import Role, State

    from .pair import drain, session_in

    rng = random.Random(11)
    closed = 0
    for case in range(300):
        role = Role.SMSC if case % 2 else Role.ESME
        session = session_in(role, rng.choice([State.OPEN, State.BOUND_TRX, State.BOUND_RX]))
        for _ in range(rng.randint(1, 8)):
            session.receive_data(_mutate(rng, rng.choice(SEEDS)), float(case))
            events = drain(session)
            session.data_to_send()
            if any(isinstance(e, Closed) for e in events):
                closed += 1
                break
        session.handle_timer(float(case) + 1000.0)  # every timer due at once
        drain(session)
    assert closed  # framing errors do close sessions
