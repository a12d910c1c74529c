"""Properties of the engine over arbitrary message sequences (Hypothesis).

Whatever the facts, in whatever order and at whatever times: ``inspect`` and
``expire`` never raise, every non-allow verdict names a rule, published hashes
have the published form, no identifier appears in clear, and the state stays
within its limits.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from herald.signaling.map_types import SmRpDaKind
from herald.signaling.policy import (
    Action,
    ComponentKind,
    Direction,
    Engine,
    Facts,
    InMemoryPendingMessages,
    TcapKind,
)

from .builders import policy

LIMIT = 16
POLICY = policy(
    f"[limits]\nsubscribers = {LIMIT}\nsenders = {LIMIT}\nlookups_per_sender = {LIMIT}\n"
    f"dialogues = {LIMIT}\ncorrelations = {LIMIT}\nsweep_senders = {LIMIT}\n"
)
# Calling/called GTs from every origin class, and identifiers from a small pool
# so that dialogues, correlations and lookups collide.
GTS = ["19990000001", "19991000001", "19992000001", "28881000001", "28882000001",
       "37772000001", "46661234567", ""]  # fmt: skip
IMSIS = ["", "001010000000001", "001010000000002", "002020000000001", "004040000000009"]
MSISDNS = ["", "19995550001", "19995550002", "19995550003", "28880000001"]
OPCODES = [2, 3, 4, 7, 22, 44, 45, 46, 56, 58, 70, 71, 83, 85, 200]
ACS = [None, (1, 3), (20, 3), (25, 3), (25, 2), (21, 3), (29, 3), (28, 3), (14, 3), (99, 1)]
TIDS = [b"", b"\x01", b"\x02", b"\x00\x00\x00\x03"]

facts = st.builds(
    Facts,
    time=st.floats(min_value=0, max_value=1e5, allow_nan=False),
    calling_gt=st.sampled_from(GTS),
    called_gt=st.sampled_from(GTS),
    direction=st.sampled_from(list(Direction)),
    tcap=st.sampled_from(list(TcapKind)),
    otid=st.sampled_from(TIDS),
    dtid=st.sampled_from(TIDS),
    ac=st.sampled_from(ACS),
    ac_other=st.booleans(),
    component=st.sampled_from([None, *ComponentKind]),
    opcode=st.sampled_from([None, *OPCODES]),
    invokes=st.lists(st.sampled_from(OPCODES), max_size=3).map(tuple),
    global_opcode=st.booleans(),
    imsi=st.sampled_from(IMSIS),
    msisdn=st.sampled_from(MSISDNS),
    msc_number=st.sampled_from(GTS),
    vlr_number=st.sampled_from(GTS),
    sm_rp_da=st.sampled_from([None, *SmRpDaKind]),
    tp_pid=st.sampled_from([None, 0, 0x40]),
    delivery_not_intended=st.booleans(),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(facts, min_size=1, max_size=60), st.floats(min_value=0, max_value=2e5))
def test_any_sequence_is_judged_within_bounds(sequence: list[Facts], later: float) -> None:
    engine = Engine(POLICY, InMemoryPendingMessages(MSISDNS[1:3]))
    verdicts = [engine.inspect(f) for f in sequence] + engine.expire(later)
    for v in verdicts:
        assert isinstance(v.action, Action)
        if v.action is not Action.ALLOW:
            assert v.rule is not None and v.reason
        for digest in (v.subscriber, v.sender):
            assert digest == "" or (len(digest) == 20 and int(digest, 16) >= 0)
    text = json.dumps([v.as_dict() for v in verdicts])
    for secret in [*GTS, *IMSIS, *MSISDNS]:
        if secret:
            assert secret not in text
    assert max(engine.state_sizes.values()) <= LIMIT
    assert sum(engine.counts.values()) == len(verdicts)
