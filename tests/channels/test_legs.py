"""A leg's states only move forward, whatever order the provider's news comes in."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from herald.channels import (
    FINAL_LEG_STATES,
    RANK,
    STATUS_OF_LEG,
    TRANSITIONS,
    LegEvent,
    LegState,
    advance,
)
from herald.store import Status

E, S = LegEvent, LegState

#: What a provider may truly do with one message, in the order it happens.
TRUTHS = {
    "read": [E.SUBMIT, E.ACCEPT, E.SENT, E.DELIVERED, E.READ],
    "delivered": [E.SUBMIT, E.ACCEPT, E.SENT, E.DELIVERED],
    "failed": [E.SUBMIT, E.ACCEPT, E.SENT, E.FAILED],
    "failed_unsent": [E.SUBMIT, E.ACCEPT, E.FAILED],
    "rejected": [E.SUBMIT, E.REJECT],
    "expired": [E.SUBMIT, E.ACCEPT, E.SENT, E.EXPIRED],
    "expired_then_delivered": [E.SUBMIT, E.ACCEPT, E.SENT, E.EXPIRED, E.DELIVERED],
}


def _fold(events: list[LegEvent]) -> tuple[LegState, list[LegState]]:
    state, seen = S.PENDING, [S.PENDING]
    for event in events:
        nxt = advance(state, event)
        if nxt is not None:
            state = nxt
            seen.append(state)
    return state, seen


def test_every_transition_in_the_table_goes_to_a_greater_rank() -> None:
    for (state, event), nxt in TRANSITIONS.items():
        assert RANK[nxt] > RANK[state], (state, event, nxt)


def test_every_state_event_pair_is_a_move_forward_or_stale() -> None:
    for state in S:
        for event in E:
            nxt = advance(state, event)
            assert nxt is None or RANK[nxt] > RANK[state]


def test_final_states_take_no_event_and_failures_are_final() -> None:
    assert {S.READ, S.REJECTED, S.FAILED} == FINAL_LEG_STATES
    for state in FINAL_LEG_STATES:
        assert all(advance(state, e) is None for e in E)


def test_read_implies_delivered_and_a_late_delivered_is_stale() -> None:
    assert advance(S.SENT, E.READ) is S.READ
    assert advance(S.READ, E.DELIVERED) is None
    assert advance(S.DELIVERED, E.SENT) is None


def test_an_expired_leg_records_a_late_success_but_not_a_late_failure() -> None:
    assert advance(S.EXPIRED, E.DELIVERED) is S.DELIVERED
    assert advance(S.EXPIRED, E.FAILED) is None


def test_a_webhook_may_overtake_the_providers_http_answer() -> None:
    assert advance(S.SUBMITTED, E.DELIVERED) is S.DELIVERED
    assert advance(S.DELIVERED, E.ACCEPT) is None


def test_every_state_has_a_herald_status_and_success_reads_delivered() -> None:
    assert set(STATUS_OF_LEG) == set(S)
    assert STATUS_OF_LEG[S.READ] is STATUS_OF_LEG[S.DELIVERED] is Status.DELIVERED
    assert STATUS_OF_LEG[S.FAILED] is Status.UNDELIVERED


@st.composite
def _chaos(draw: st.DrawFn) -> tuple[str, list[LegEvent]]:
    """A truth, then its provider events duplicated (x1..x3), shuffled, and
    ``delivered`` dropped when ``read`` follows it (as WhatsApp does)."""
    name = draw(st.sampled_from(sorted(TRUTHS)))
    truth = TRUTHS[name]
    head, provider = truth[:1], list(truth[1:])
    if E.READ in provider and draw(st.booleans()):
        provider.remove(E.DELIVERED)
    copies = [e for e in provider for _ in range(draw(st.integers(1, 3)))]
    return name, head + draw(st.permutations(copies))


@given(_chaos())
def test_chaotic_news_ends_in_the_truths_final_state_and_never_goes_back(
        case: tuple[str, list[LegEvent]]) -> None:
    name, events = case
    expected, _ = _fold(TRUTHS[name])
    final, seen = _fold(events)
    assert final is expected, (name, events)
    ranks = [RANK[s] for s in seen]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


@given(st.lists(st.sampled_from(list(E)), max_size=30))
def test_any_sequence_of_events_only_moves_forward(events: list[LegEvent]) -> None:
    _, seen = _fold(events)
    assert all(RANK[a] < RANK[b] for a, b in itertools.pairwise(seen))
