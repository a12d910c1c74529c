"""The lease rules (herald.cluster.leases): transitions, fair share, and a
simulated cluster walked through random joins, crashes, clean stops, stalls,
clock skew and slow statements."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.cluster.leases import (
    DEFAULT_SETTINGS,
    Holding,
    LeaseSettings,
    Slot,
    Snapshot,
    acquire_slot,
    fair_share,
    plan,
    release_slot,
    renew_slot,
    slot_rate,
)

from .sim import Cluster

LEASE = 10.0
NOW = 1000.0


# --- settings, rates, shares --------------------------------------------------


def test_default_settings_leave_two_renewals_before_sending_stops() -> None:
    s = DEFAULT_SETTINGS
    assert (s.lease, s.margin, s.renew_every, s.sending_window) == (10.0, 3.0, 2.0, 7.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lease": 0.0}, "leases.lease must be a positive"),
        ({"margin": -1.0}, "leases.margin must be a positive"),
        ({"renew_every": math.inf}, "leases.renew_every must be a positive"),
        ({"margin": 10.0}, r"leases.margin \(10.0\) must be shorter"),
        ({"renew_every": 3.5}, "must allow two renewals in lease - margin"),
        ({"jitter": 0.5}, r"leases.jitter must be in \[0, 0.5\)"),
    ],
)
def test_bad_settings_are_refused_by_name(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeaseSettings(**fields)


def test_slot_rate_is_the_connectors_limit_split_per_bind() -> None:
    assert slot_rate(100.0, 4) == 25.0
    assert slot_rate(math.inf, 3) == math.inf
    with pytest.raises(ValueError, match="at least one bind"):
        slot_rate(10.0, 0)


@pytest.mark.parametrize(
    ("slots", "nodes", "share"),
    [(4, 1, (4, 4)), (4, 2, (2, 2)), (4, 3, (1, 2)), (2, 3, (0, 1)), (7, 3, (2, 3)),
     (3, 0, (3, 3))],
)
def test_fair_share(slots: int, nodes: int, share: tuple[int, int]) -> None:
    assert fair_share(slots, nodes) == share


# --- the table's transitions --------------------------------------------------


def test_acquire_takes_a_free_or_ended_slot_under_the_next_epoch() -> None:
    free = Slot("c", 0, None, 4, 0.0)
    assert acquire_slot(free, "a", NOW, LEASE) == Slot("c", 0, "a", 5, NOW + LEASE)
    ended = Slot("c", 0, "b", 5, NOW)  # expires_at == now: ended
    assert acquire_slot(ended, "a", NOW, LEASE) == Slot("c", 0, "a", 6, NOW + LEASE)
    running = Slot("c", 0, "b", 5, NOW + 0.001)
    assert acquire_slot(running, "a", NOW, LEASE) is None
    assert acquire_slot(running, "b", NOW, LEASE) is None  # its own: renew, not acquire


def test_renew_is_fenced_by_owner_epoch_and_the_lease_end() -> None:
    row = Slot("c", 1, "a", 7, NOW + 2)
    assert renew_slot(row, "a", 7, NOW, LEASE) == Slot("c", 1, "a", 7, NOW + LEASE)
    assert renew_slot(row, "a", 6, NOW, LEASE) is None  # a stale epoch
    assert renew_slot(row, "b", 7, NOW, LEASE) is None  # not the owner
    # Ended, even if nobody took it yet: acquired again (a new epoch), never renewed.
    assert renew_slot(row, "a", 7, NOW + 2, LEASE) is None
    # A renewal never shortens a lease (a short lease setting on one node).
    assert renew_slot(row, "a", 7, NOW, 1.0) == row


def test_release_is_fenced_and_keeps_the_epoch_for_the_next_owner() -> None:
    row = Slot("c", 1, "a", 7, NOW + 2)
    assert release_slot(row, "a", 6) is None
    assert release_slot(row, "b", 7) is None
    released = release_slot(row, "a", 7)
    assert released == Slot("c", 1, None, 7, 0.0)
    again = acquire_slot(released, "b", NOW, LEASE)
    assert again is not None and again.epoch == 8


def test_a_holding_may_send_until_lease_minus_margin_after_its_renewal_was_sent() -> None:
    h = Holding("c", 0, 3, renewed_at=50.0)
    s = DEFAULT_SETTINGS
    assert h.deadline(s) == 57.0
    assert h.may_send(56.999, s)
    assert not h.may_send(57.0, s)


# --- plan ---------------------------------------------------------------------


def snap(nodes: str, *rows: tuple[int, str | None, float], connector: str = "c") -> Snapshot:
    """A snapshot at NOW: live ``nodes`` (one letter each) and rows (slot, owner, expires_at)."""
    return Snapshot(
        NOW,
        dict.fromkeys(nodes, NOW + LEASE),
        tuple(Slot(connector, s, owner, 1, ends) for s, owner, ends in rows),
    )


LIVE = NOW + 5  # a lease still running


def test_a_lone_node_takes_every_slot() -> None:
    p = plan(snap("a", (0, None, 0), (1, None, 0), (2, None, 0)), "a", {"c": 3})
    assert (p.release, dict(p.acquire)) == ((), {"c": 3})


def test_a_fair_cluster_does_nothing() -> None:
    s = snap("abc", (0, "a", LIVE), (1, "a", LIVE), (2, "b", LIVE), (3, "c", LIVE))
    for node in "abc":
        p = plan(s, node, {"c": 4})
        assert (p.release, dict(p.acquire)) == ((), {})


def test_a_joining_node_is_given_its_share_by_the_largest_holder() -> None:
    # n=4, k=3: floor 1, ceil 2. c is short by one and nothing is free.
    s = snap("abc", (0, "a", LIVE), (1, "a", LIVE), (2, "b", LIVE), (3, "b", LIVE))
    assert [r.slot for r in plan(s, "a", {"c": 4}).release] == [1]  # tie: lowest id gives
    assert plan(s, "b", {"c": 4}).release == ()
    assert dict(plan(s, "c", {"c": 4}).acquire) == {}  # nothing free yet
    after = snap("abc", (0, "a", LIVE), (1, None, 0), (2, "b", LIVE), (3, "b", LIVE))
    assert dict(plan(after, "c", {"c": 4}).acquire) == {"c": 1}
    assert dict(plan(after, "a", {"c": 4}).acquire) == {}  # a short node comes first


def test_a_holder_above_the_ceiling_gives_back_its_highest_slots() -> None:
    s = snap("ab", (0, "a", LIVE), (1, "a", LIVE), (2, "a", LIVE), (3, "a", LIVE))
    p = plan(s, "a", {"c": 4})
    assert [r.slot for r in p.release] == [2, 3]
    assert dict(plan(s, "b", {"c": 4}).acquire) == {}


def test_below_the_ceiling_a_node_takes_what_is_still_free() -> None:
    # n=5, k=2: floor 2, ceil 3; nobody short, one slot free.
    s = snap("ab", (0, "a", LIVE), (1, "a", LIVE), (2, "b", LIVE), (3, "b", LIVE), (4, None, 0))
    assert dict(plan(s, "a", {"c": 5}).acquire) == {"c": 1}
    assert dict(plan(s, "b", {"c": 5}).acquire) == {"c": 1}  # both try; SKIP LOCKED splits


def test_below_the_ceiling_a_node_takes_no_more_than_the_ceiling() -> None:
    # n=5, k=3: floor 1, ceil 2; two free: each may take one, not both.
    s = snap("abc", (0, "a", LIVE), (1, "b", LIVE), (2, "c", LIVE), (3, None, 0), (4, None, 0))
    assert [dict(plan(s, x, {"c": 5}).acquire) for x in "abc"] == [{"c": 1}] * 3


def test_nobody_gives_back_below_the_floor_even_when_a_node_is_short() -> None:
    # n=3, k=3: c is short, but d (dead, its lease still running) holds the slot c
    # needs; a and b sit at the floor and keep their slots.
    s = snap("abc", (0, "a", LIVE), (1, "b", LIVE), (2, "d", LIVE))
    assert [plan(s, x, {"c": 3}).release for x in "ab"] == [(), ()]


def test_more_nodes_than_slots_hold_at_most_one_each() -> None:
    s = snap("abc", (0, "a", LIVE), (1, "a", LIVE))
    assert [r.slot for r in plan(s, "a", {"c": 2}).release] == [1]
    after = snap("abc", (0, "a", LIVE), (1, None, 0))
    assert dict(plan(after, "b", {"c": 2}).acquire) == {"c": 1}
    assert dict(plan(after, "a", {"c": 2}).acquire) == {}


def test_a_dead_nodes_slots_are_free_once_its_lease_ended() -> None:
    s = Snapshot(
        NOW,
        {"a": NOW + LEASE, "d": NOW - 1},
        (Slot("c", 0, "d", 3, NOW - 1), Slot("c", 1, "d", 3, NOW - 1)),
    )
    assert dict(plan(s, "a", {"c": 2}).acquire) == {"c": 2}


def test_until_a_dead_nodes_lease_ends_its_slots_wait_and_the_plan_says_until_when() -> None:
    s = Snapshot(
        NOW,
        {"a": NOW + LEASE, "d": NOW - 1},  # d's registration ended, its slot not yet
        (Slot("c", 0, "a", 1, NOW + 9), Slot("c", 1, "d", 3, NOW + 0.4)),
    )
    p = plan(s, "a", {"c": 2})
    assert (dict(p.acquire), p.changes_at) == ({}, NOW + 0.4)


def test_rows_beyond_the_configured_binds_are_released_and_never_acquired() -> None:
    s = snap("a", (0, "a", LIVE), (1, None, 0), (2, "a", LIVE), (3, None, 0))
    p = plan(s, "a", {"c": 2})
    assert ([r.slot for r in p.release], dict(p.acquire)) == ([2], {"c": 1})


def test_connectors_not_configured_here_are_left_alone() -> None:
    s = snap("a", (0, None, 0), connector="other")
    p = plan(s, "a", {"c": 1})
    assert (p.release, dict(p.acquire)) == ((), {})


# --- the simulated cluster ----------------------------------------------------

BINDS = st.dictionaries(st.sampled_from(["alpha", "beta"]), st.integers(1, 7), min_size=1)
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["join", "join", "crash", "leave", "stall"]),
        st.floats(0.0, 3 * LEASE),  # seconds after the previous action
        st.integers(0, 50),  # which node (modulo those there)
        st.floats(0.0, 2 * LEASE),  # a stall's length
    ),
    max_size=10,
)


def _drive(cluster: Cluster, actions: list[tuple[str, float, int, float]]) -> None:
    """Two nodes start; then the actions, each after its delay."""
    cluster.join()
    cluster.join()
    cluster.run_until(LEASE, check_every=0.25)
    for kind, after, pick, stall in actions:
        cluster.run_until(cluster.t + after, check_every=0.25)
        live = cluster.live()
        if kind == "join" or not live:
            cluster.join()
        elif kind == "crash":
            cluster.crash(live[pick % len(live)])
        elif kind == "leave":
            cluster.leave(live[pick % len(live)])
        else:
            cluster.stall(live[pick % len(live)], stall)


@settings(max_examples=60, deadline=None)
@given(
    binds=BINDS,
    tps=st.floats(1.0, 1000.0),
    actions=ACTIONS,
    rng=st.randoms(use_true_random=False),
    slow=st.floats(0.0, 1.5),
    skew=st.floats(0.0, 0.9),
)
def test_never_two_senders_on_a_slot_nor_more_binds_or_rate_than_configured(
    binds: dict[str, int],
    tps: float,
    actions: list[tuple[str, float, int, float]],
    rng: random.Random,
    slow: float,
    skew: float,
) -> None:
    # Statements up to 1.5 leases late (a renewal may land after the lease it
    # renews ended and another node took the slot); clock rates off by up to
    # 90 % of what the margin covers (margin / lease), and any offset.
    s = DEFAULT_SETTINGS
    cluster = Cluster(
        s, binds, dict.fromkeys(binds, tps), rng,
        max_delay=slow * s.lease, max_skew=skew * s.margin / s.lease,
    )  # fmt: skip
    _drive(cluster, actions)
    cluster.run_until(cluster.t + 2 * LEASE, check_every=0.25)  # check() runs at every step


@settings(max_examples=60, deadline=None)
@given(binds=BINDS, actions=ACTIONS, rng=st.randoms(use_true_random=False))
def test_after_membership_settles_every_slot_is_held_and_shared_fairly(
    binds: dict[str, int], actions: list[tuple[str, float, int, float]], rng: random.Random
) -> None:
    s = DEFAULT_SETTINGS
    cluster = Cluster(s, binds, dict.fromkeys(binds, 100.0), rng, max_delay=0.05, max_skew=1e-3)
    _drive(cluster, actions)
    # A stall may outlast the last action; then two leases settle everything.
    cluster.run_until(cluster.t + 2 * LEASE + 2 * LEASE, check_every=0.5)
    cluster.assert_fair()


def _settled(binds: dict[str, int], nodes: int) -> Cluster:
    s = DEFAULT_SETTINGS
    cluster = Cluster(
        s, binds, dict.fromkeys(binds, 100.0), random.Random(7), max_delay=0.05, max_skew=1e-3
    )
    for _ in range(nodes):
        cluster.join()
    cluster.run_until(2 * LEASE, check_every=0.5)
    cluster.assert_fair()
    return cluster


@pytest.mark.parametrize(("slots", "nodes"), [(4, 2), (6, 2), (5, 3), (2, 2)])
def test_a_joining_node_gets_its_share_within_one_lease(slots: int, nodes: int) -> None:
    cluster = _settled({"c": slots}, nodes)
    joined = cluster.join()
    assert cluster.held("c")[joined] == 0
    cluster.run_until(cluster.t + LEASE, check_every=0.25)
    cluster.assert_fair()
    assert cluster.held("c")[joined] == fair_share(slots, nodes + 1)[0] or slots < nodes + 1


@pytest.mark.parametrize("slots", [3, 6])
def test_a_crashed_nodes_slots_are_held_again_just_after_its_lease_ends(slots: int) -> None:
    cluster = _settled({"c": slots}, 3)
    victim = cluster.live()[0]
    last_renewal = max(h.renewed_at for h in cluster.nodes[victim].holdings.values())
    lease_ends = cluster.t + (last_renewal - cluster.nodes[victim].local(cluster.t)) + LEASE
    cluster.crash(victim)
    cluster.run_until(lease_ends - 0.01, check_every=0.1)
    assert sum(cluster.held("c").values()) == slots - slots // 3  # not before it ends
    cluster.run_until(lease_ends + 0.2, check_every=0.1)
    cluster.assert_fair()


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 8),
    owners=st.lists(st.sampled_from(["a", "b", "c", "d", None]), min_size=8, max_size=8),
    ends=st.lists(st.sampled_from([NOW - 1, NOW, NOW + 1]), min_size=8, max_size=8),
    live=st.sets(st.sampled_from("abcd")),
    node=st.sampled_from("abcd"),
)
def test_a_plan_keeps_within_the_share_and_touches_only_its_own(
    n: int, owners: list[str | None], ends: list[float], live: set[str], node: str
) -> None:
    rows = tuple(Slot("c", s, owners[s], 1, ends[s]) for s in range(8))  # 8 rows, n usable
    s = Snapshot(NOW, dict.fromkeys(live, NOW + LEASE), rows)
    p = plan(s, node, {"c": n})
    floor, ceil = fair_share(n, len(live | {node}))
    mine = [r for r in rows if r.slot < n and r.held_by(node, NOW)]
    free = [r for r in rows if r.slot < n and r.is_free(NOW)]
    assert all(r.held_by(node, NOW) for r in p.release)  # gives back only its own
    given = sum(1 for r in p.release if r.slot < n)
    took = p.acquire.get("c", 0)
    assert took <= len(free) and not (took and given)  # never both at once
    assert len(mine) - given + took <= max(ceil, len(mine))  # never grows past the ceiling
    assert len(mine) - given >= min(floor, len(mine))  # never gives below the floor
    surplus = {r.slot for r in rows if r.slot >= n and r.held_by(node, NOW)}
    assert surplus <= {r.slot for r in p.release}  # beyond the configuration: always back
