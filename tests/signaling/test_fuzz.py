"""Fuzzing the decoders: random and mutated messages may only ever produce a
decoded value or one of the codec's typed errors.

The short run is part of every test session; ``pytest -m slow`` runs the long
one. Both are seeded, so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable

import pytest

from herald.guard.corpus import build_corpus
from herald.signaling import DecodeError, decode, encode
from herald.signaling.m3ua import decode_m3ua
from herald.signaling.map_codec import decode_argument
from herald.signaling.sccp import decode_unitdata
from herald.signaling.tcap import decode_tcap

from . import vectors as v
from .samples import extra_messages

SEEDS = [v.UL_M3UA, v.ASPUP, v.BEAT, v.NTFY, v.ERR, v.DUNA, v.ASPAC, *extra_messages(),
         *(m.data for m in build_corpus().messages[::3])]
INNER: list[tuple[bytes, Callable[[bytes], object]]] = [
    (v.UL_UDT, decode_unitdata),
    (v.XUDT, decode_unitdata),
    (v.UDTS, decode_unitdata),
    (v.UL_TCAP, decode_tcap),
    (v.UL_ARGUMENT, lambda b: decode_argument(2, b, 0, len(b))),
    (v.SRI_SM_ARGUMENT, lambda b: decode_argument(45, b, 0, len(b))),
    (v.MT_FSM_ARGUMENT, lambda b: decode_argument(44, b, 0, len(b))),
]
# Whole TCAP and SCCP messages of the corpus, fuzzed without their outer layers
# (so a decoder reading past its end cannot hide behind the outer padding).
for _m in build_corpus().messages[::5]:
    _sccp = decode_m3ua(_m.data).user_data  # type: ignore[union-attr]
    INNER.append((_sccp, decode_unitdata))
    INNER.append((decode_unitdata(_sccp).data, decode_tcap))
INTERESTING = (0x00, 0x01, 0x02, 0x03, 0x04, 0x7F, 0x80, 0x81, 0x82, 0x83, 0xFF)


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        at = rng.randrange(len(out)) if out else 0
        if op == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[at] = rng.choice(INTERESTING)
        elif op == 2:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 3 and out:
            del out[at : at + rng.randint(1, 4)]
        elif op == 4:
            del out[rng.randint(0, len(out)) :]
        elif op == 5 and out:
            span = out[at : at + rng.randint(1, 8)]
            out[at:at] = span
        else:
            out[at:at] = rng.randbytes(rng.randint(1, 3))
    return bytes(out)


def _check_stack(data: bytes) -> bool:
    """Decode; on success the value must survive its own re-encoding."""
    try:
        msg = decode(data)
    except DecodeError:
        return False
    again = decode(encode(msg))
    # The SCCP data is the raw TCAP as received; re-encoding canonicalises BER
    # (definite lengths, minimal bit strings), so compare the decoded values.
    assert again == msg._replace(sccp=msg.sccp._replace(data=again.sccp.data))
    return True


def _check_inner(decoder: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decoder(data)


def run(iterations: int, seed: int, budget_s: float) -> int:
    rng = random.Random(seed)
    deadline = time.monotonic() + budget_s
    decoded = 0
    for i in range(iterations):
        if time.monotonic() > deadline:
            break
        base = rng.choice(SEEDS)
        data = mutate(rng, base) if i % 10 else rng.randbytes(rng.randint(0, 160))
        # Keep some mutants' M3UA header consistent so they reach the inner layers.
        if i % 3 == 0 and len(data) >= 8:
            data = data[:4] + len(data).to_bytes(4, "big") + data[8:]
        decoded += _check_stack(data)
        inner, decoder = rng.choice(INNER)
        _check_inner(decoder, mutate(rng, inner))
        # Tiny inputs that start like a real message exercise the bounds checks:
        # random octets, and the first TLV cut short with a consistent length.
        _check_inner(decoder, inner[:1] + rng.randbytes(rng.randint(0, 6)))
        k = rng.randint(0, 12)
        _check_inner(decoder, inner[:1] + bytes((k,)) + inner[2 : 2 + k])
        with contextlib.suppress(DecodeError):
            decode_m3ua(data)
    return decoded


def test_fuzz_short() -> None:
    decoded = run(3_000, seed=4, budget_s=20)
    # The mutants must exercise the success path too, or the test proves little.
    assert decoded > 0


@pytest.mark.slow
def test_fuzz_long() -> None:
    for seed in range(8):
        run(50_000, seed=1000 + seed, budget_s=120)
