"""The decoder memoises (routing labels, SCCP heads and addresses, dialogue
portions, OIDs, MAP node addresses) to save work on the hot path. A cache may
only ever save work: every input decodes to the same value, or fails with the
same error at the same offset, whether the caches are cold or warm."""

from __future__ import annotations

import random

import pytest

from herald.guard.corpus import big_capture, build_corpus
from herald.signaling import DecodeError, SccpError, decode
from herald.signaling.codec import clear_caches
from herald.signaling.m3ua import Data, decode_m3ua, encode_m3ua

from .test_fuzz import mutate

CORPUS = [m.data for m in build_corpus().messages] + [
    m.data for m in big_capture(600, seed=3).messages
]


def _outcome(data: bytes) -> object:
    try:
        return decode(data)
    except DecodeError as exc:
        return (type(exc), str(exc), exc.offset)


def test_warm_and_cold_caches_agree_on_corpus_and_mutants() -> None:
    rng = random.Random(11)
    inputs = list(CORPUS)
    for _ in range(3000):
        data = mutate(rng, rng.choice(CORPUS))
        if rng.random() < 0.5 and len(data) >= 8:
            data = data[:4] + len(data).to_bytes(4, "big") + data[8:]
        inputs.append(data)
    for data in CORPUS:  # warm every cache with valid messages
        decode(data)
    warm = [_outcome(d) for d in inputs]
    cold = []
    for d in inputs:
        clear_caches()
        cold.append(_outcome(d))
    differ = [i for i, (w, c) in enumerate(zip(warm, cold, strict=True)) if w != c]
    assert not differ, inputs[differ[0]].hex()
    # The mutants exercise both outcomes, or the comparison proves little.
    assert sum(isinstance(w, tuple) and len(w) == 3 for w in warm) > 100
    assert sum(not (isinstance(w, tuple) and len(w) == 3) for w in warm) > 100


def _with_sccp(data: bytes, sccp: bytes) -> bytes:
    m = decode_m3ua(data)
    assert isinstance(m, Data)
    return encode_m3ua(Data(m.label, sccp, m.routing_context))


@pytest.mark.parametrize("change", ["longer data", "shorter data", "trailing octet"])
def test_a_known_sccp_head_does_not_vouch_for_the_rest(change: str) -> None:
    """An SCCP head (type to data length) seen in a valid message: the same
    head with data that does not end the message exactly is still refused."""
    data = CORPUS[0]
    decode(data)  # the head is now cached
    m = decode_m3ua(data)
    assert isinstance(m, Data)
    sccp = m.user_data
    if change == "longer data":
        bad = sccp + b"\x00"  # data length octet unchanged: one octet nobody owns
    elif change == "shorter data":
        bad = sccp[:-1]
    else:
        bad = sccp + b"\x30"
    with pytest.raises(SccpError):
        decode(_with_sccp(data, bad))
    clear_caches()
    with pytest.raises(SccpError):
        decode(_with_sccp(data, bad))
