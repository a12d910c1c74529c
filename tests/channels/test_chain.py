"""Fallback chains: when the next leg starts, and that it starts once (pure, a controlled clock).

Issue 14 tests 5 and 6 at the decision level: the store and the API do not
carry chains yet (docs/channels.md, "Design: chains and fallback timers").
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from herald.channels._chain import (
    ArmTimer,
    CancelTimer,
    ChainState,
    LegPlan,
    Notify,
    StartLeg,
    on_cancel,
    on_leg,
    on_timer,
    start,
)
from herald.channels._legs import LegEvent, LegState
from herald.store import Status

E = LegEvent
WA_READ_60 = LegPlan("whatsapp", success=LegState.READ, within=60.0)
SMS = LegPlan("sms")


def _run(state: ChainState, steps: list[tuple[str, int, LegEvent | None, float]]
         ) -> tuple[ChainState, list[object]]:
    actions: list[object] = []
    for kind, leg, event, now in steps:
        if kind == "leg":
            assert event is not None
            state, more = on_leg(state, leg, event, now)
        else:
            state, more = on_timer(state, leg, now)
        actions += more
    return state, actions


def test_a_rejected_leg_falls_over_at_once_and_the_sms_receipt_ends_the_chain() -> None:
    state, actions = start([LegPlan("whatsapp"), SMS])
    assert actions == [StartLeg(0)]
    state, actions = _run(state, [("leg", 0, E.SUBMIT, 0.0), ("leg", 0, E.REJECT, 0.2)])
    assert actions == [StartLeg(1)]
    state, actions = _run(state, [("leg", 1, E.SUBMIT, 0.3), ("leg", 1, E.ACCEPT, 0.4),
                                  ("leg", 1, E.DELIVERED, 5.0)])
    assert actions == [Notify(Status.DELIVERED, 1)]
    assert state.status is Status.DELIVERED and state.delivered_by == 1


def test_not_read_within_60_s_starts_exactly_one_sms_leg() -> None:
    state, _ = start([WA_READ_60, SMS])
    state, actions = _run(state, [("leg", 0, E.SUBMIT, 0.0), ("leg", 0, E.ACCEPT, 0.5),
                                  ("leg", 0, E.DELIVERED, 3.0)])
    assert actions == [ArmTimer(0, 60.5)]
    state, actions = _run(state, [("timer", 0, None, 60.0)])  # not due yet
    assert actions == []
    state, actions = _run(state, [("timer", 0, None, 60.5), ("timer", 0, None, 60.5),
                                  ("timer", 0, None, 75.0)])  # redelivered after a crash
    assert actions == [StartLeg(1)]
    assert len(state.legs) == 2


def test_read_at_59_s_delivers_and_no_sms_leg_starts() -> None:
    state, _ = start([WA_READ_60, SMS])
    state, actions = _run(state, [("leg", 0, E.SUBMIT, 0.0), ("leg", 0, E.ACCEPT, 0.0),
                                  ("leg", 0, E.READ, 59.0), ("timer", 0, None, 60.0)])
    assert actions == [ArmTimer(0, 60.0), CancelTimer(0), Notify(Status.DELIVERED, 0)]
    assert len(state.legs) == 1 and state.delivered_by == 0


def test_a_late_success_of_the_first_leg_is_recorded_and_never_unsends_the_next() -> None:
    state, _ = start([WA_READ_60, SMS])
    state, actions = _run(state, [
        ("leg", 0, E.SUBMIT, 0.0), ("leg", 0, E.ACCEPT, 0.0), ("timer", 0, None, 60.0),
        ("leg", 1, E.SUBMIT, 60.1), ("leg", 0, E.READ, 70.0), ("leg", 1, E.DELIVERED, 75.0)])
    assert actions == [ArmTimer(0, 60.0), StartLeg(1), Notify(Status.DELIVERED, 0)]
    assert state.legs == (LegState.READ, LegState.DELIVERED) and state.delivered_by == 0


def test_the_last_legs_failure_ends_the_chain_with_its_status() -> None:
    state, _ = start([LegPlan("whatsapp"), SMS])
    state, actions = _run(state, [("leg", 0, E.REJECT, 0.0), ("leg", 1, E.ACCEPT, 1.0),
                                  ("leg", 1, E.EXPIRED, 9.0), ("leg", 1, E.EXPIRED, 9.5)])
    assert actions == [StartLeg(1), Notify(Status.EXPIRED, 1)]
    assert state.status is Status.EXPIRED


_INPUTS = st.lists(st.tuples(
    st.sampled_from(["leg", "timer"]), st.integers(0, 2),
    st.sampled_from([E.SUBMIT, E.ACCEPT, E.SENT, E.DELIVERED, E.READ, E.FAILED, E.EXPIRED,
                     E.REJECT]),
    st.floats(0, 200, allow_nan=False)), max_size=40)


@given(_INPUTS)
def test_any_order_of_any_inputs_starts_each_leg_once_and_notifies_once(
        inputs: list[tuple[str, int, LegEvent, float]]) -> None:
    state, actions = start([WA_READ_60, LegPlan("viber", within=30.0), SMS])
    statuses = [state.status]
    for kind, leg, event, now in inputs:
        if kind == "leg":
            state, more = on_leg(state, leg, event, now)
        else:
            state, more = on_timer(state, leg, now)
        actions += more
        statuses.append(state.status)
    starts = [a.leg for a in actions if isinstance(a, StartLeg)]
    assert starts == list(range(len(state.legs)))  # in order, each once
    assert len([a for a in actions if isinstance(a, Notify)]) <= 1
    assert statuses == sorted(statuses)  # the chain's status never goes back


# -- the customer cancels (DELETE /v1/messages/{id}) -------------------------------------------

def test_cancel_before_the_first_leg_is_sent_ends_the_chain_cancelled_at_once() -> None:
    state, _ = start((WA_READ_60, SMS))
    state, actions = on_cancel(state)
    assert state.status is Status.CANCELLED and state.legs == (LegState.REJECTED,)
    assert actions == [Notify(Status.CANCELLED, 0)]
    assert on_cancel(state) == (state, [])  # twice: nothing more


def test_a_cancelled_chain_starts_no_leg_after_the_one_that_went_out() -> None:
    state, _ = start((WA_READ_60, SMS))
    state, _ = on_leg(state, 0, E.ACCEPT, 0.0)
    state, actions = on_cancel(state)
    assert actions == [] and state.cancelled and not state.final  # not recalled
    ended, actions = on_leg(state, 0, E.FAILED, 5.0)
    assert ended.status is Status.CANCELLED and actions[-1] == Notify(Status.CANCELLED, 0)
    assert not any(isinstance(a, StartLeg) for a in actions)
    timed, actions = on_timer(state, 0, 60.0)
    assert timed.status is Status.CANCELLED and actions == [Notify(Status.CANCELLED, 0)]
    read, actions = on_leg(state, 0, E.READ, 30.0)
    assert read.status is Status.DELIVERED and read.delivered_by == 0


def test_a_cancel_of_a_final_chain_changes_nothing() -> None:
    state, _ = start((SMS,))
    state, _ = on_leg(state, 0, E.SUBMIT, 0.0)
    state, _ = on_leg(state, 0, E.DELIVERED, 1.0)
    assert on_cancel(state) == (state, [])
