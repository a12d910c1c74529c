"""The inspector judges a batch (prepared first, then judged in order) exactly
as it judges the same messages one by one: same verdicts, same audit records,
same engine state afterwards."""

from __future__ import annotations

import random
from pathlib import Path

from herald.guard.audit import AuditLog
from herald.guard.corpus import big_capture, build_corpus
from herald.guard.inspector import Inspector, prepare
from herald.signaling.m3ua import AspState, Kind, encode_m3ua
from herald.signaling.policy import Direction, Engine, InMemoryPendingMessages, parse_policy

AUDIT_KEY = b"k" * 32


def _inspector(corpus_policy: str, pending: list[str], audit: AuditLog) -> Inspector:
    engine = Engine(parse_policy(corpus_policy), InMemoryPendingMessages(pending))
    return Inspector(engine, audit)


def test_a_batch_is_judged_like_one_message_at_a_time(tmp_path: Path) -> None:
    corpus = build_corpus()
    messages = [m.data for m in corpus.messages]
    # Mixed in: a message the decoder refuses, and ASP management (no verdict).
    # (cut short, the M3UA length updated: its Protocol Data overruns it)
    cut = messages[3][:-4]
    messages.insert(10, cut[:4] + len(cut).to_bytes(4, "big") + cut[8:])
    messages.insert(20, encode_m3ua(AspState(Kind.ASPUP)))
    now = 1_000.0
    with (
        AuditLog(tmp_path / "one.log", AUDIT_KEY, clock=lambda: now) as log_one,
        AuditLog(tmp_path / "many.log", AUDIT_KEY, clock=lambda: now) as log_many,
    ):
        one = _inspector(corpus.policy, corpus.pending, log_one)
        many = _inspector(corpus.policy, corpus.pending, log_many)
        singles = [one.inspect(m, now, Direction.UNKNOWN, mode="test") for m in messages]
        batched = []
        for start in range(0, len(messages), 7):  # uneven batches, a short last one
            batched += many.inspect_many(messages[start : start + 7], now, mode="test")
    assert [r.verdict for r in batched] == [r.verdict for r in singles]
    assert [r.message for r in batched] == [r.message for r in singles]
    assert {type(r.error) for r in batched} == {type(r.error) for r in singles}
    assert sum(r.verdict is None for r in batched) == 1
    assert sum(r.error is not None for r in batched) == 1
    assert one.engine.state_sizes == many.engine.state_sizes
    assert one.engine.counts == many.engine.counts
    # Same audit records (the chain hashes differ only if the content does).
    assert (tmp_path / "one.log").read_bytes() == (tmp_path / "many.log").read_bytes()
    assert log_one.seq > 10  # blocks and alerts were audited


def test_prepare_never_raises() -> None:
    rng = random.Random(9)
    seeds = [m.data for m in big_capture(200).messages]
    for _ in range(2000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        msg, facts, error = prepare(bytes(data), 0.0)
        assert (facts is None) == (msg is None)
        assert error is None or msg is None


def test_judged_pauses_the_collector_for_its_batch_only(tmp_path: Path) -> None:
    """``judged`` gives inspect_many's verdicts, message times of their own,
    with the cyclic collector off while the batch is judged and consumed, and
    back on (if it was on) once it is; a batch given up half way too."""
    import gc

    corpus = build_corpus()
    records = [(m.timestamp, m.data) for m in corpus.messages][:40]
    with AuditLog(tmp_path / "a.log", AUDIT_KEY) as log_a, \
            AuditLog(tmp_path / "b.log", AUDIT_KEY) as log_b:  # fmt: skip
        one_by_one = _inspector(corpus.policy, corpus.pending, log_a)
        expected = [one_by_one.inspect(d, t).verdict for t, d in records]
        inspector = _inspector(corpus.policy, corpus.pending, log_b)
        assert gc.isenabled()
        seen = []
        for result in inspector.judged(records):
            assert not gc.isenabled()
            seen.append(result.verdict)
        assert gc.isenabled() and seen == expected
        half = inspector.judged(records)
        next(half)
        assert not gc.isenabled()
        half.close()  # abandoned: the collector is on again
        assert gc.isenabled()
        gc.disable()
        try:
            list(inspector.judged(records[:3]))
            assert not gc.isenabled()  # it was off: left off
        finally:
            gc.enable()
