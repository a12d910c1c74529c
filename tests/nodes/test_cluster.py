"""Three ``herald serve`` nodes on one PostgreSQL, under HTTP and SMPP load (issue 10).

Real processes on loopback (``harness.py``): binds at the simulator never above
the connector's ``binds``; the simulator's rate within 5 % of its ``tps`` with
1, 2 and 3 nodes and while a node is killed and another joins; ``kill -9`` of
a node loses nothing acknowledged, every message ends final, duplicates
upstream stay within window x the killed node's binds, its slots are taken
within one lease, and its claims requeued within about one lease too (not
the claims' longer one); a PostgreSQL restart loses nothing acknowledged,
never has more binds than configured, and its duplicates stay within window x
binds.

The CI versions run a few seconds per phase (about 40 s each on a loaded
2-core machine, most of it starting processes); the ``slow`` ones (``pytest
-m slow tests/nodes``) the same with 30 s phases; ``bench/cluster_faults.py``
prints the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import ClusterPlan, Report, database_restarts, nodes_come_and_go

#: The connector's limit: low enough that the 2 shared cores reach it with
#: PostgreSQL and every node on them.
TPS = 100.0
#: Rates within this share of the limit (the issue's +-5 %).
TOLERANCE = 0.05

SHORT = pytest.param(4.0, id="short")
LONG = pytest.param(30.0, id="long", marks=pytest.mark.slow)


def _rates_hold(report: Report, labels: tuple[str, ...], phase: float) -> None:
    """Never above the limit (+5 %) in any window; within 5 % of it in ``labels``
    in the long run only: the short one's windows are a few seconds on a shared
    machine, where a rate below the limit says more about the machine's load
    than about herald (performance is not asserted by timed tests)."""
    for window in report.windows:
        assert window.rate <= (1 + TOLERANCE) * TPS, report.table()
    if phase >= LONG_PHASE:
        for label in labels:
            assert report.window(label).rate >= (1 - TOLERANCE) * TPS, report.table()


#: Phases this long measure the rate's lower bound too.
LONG_PHASE = 30.0


@pytest.mark.parametrize("phase", [SHORT, LONG])
async def test_binds_and_tps_hold_as_nodes_join_and_one_is_killed(
    tmp_path: Path, pg_dsn: str, phase: float
) -> None:
    # claims held far longer than a lease: the killed node's come back sooner
    plan = ClusterPlan(tps=TPS, seed=10, claim_lease=20.0)
    report = await nodes_come_and_go(tmp_path, pg_dsn, plan, phase)
    print(report.table())
    # binds never above configured; nothing acknowledged lost, every message
    # final, the kill's duplicates within window x the binds it held
    assert report.problems() == [], report.table()
    _rates_hold(report, ("1 node", "2 nodes (from the join)", "3 nodes (from the join)",
                         "kill -9 of one, another joins"), phase)
    # its slots taken within one lease (plus a renewal period to look)
    (kill,) = report.kills
    assert kill.slots and len(kill.reowned_after) == len(kill.slots)
    assert max(kill.reowned_after) <= plan.lease + plan.renew_every, report.table()
    # and its claims requeued by the leader once its registration ended (one
    # lease after its last renewal), not when the claims' own lease ran out
    assert kill.requeued_after is not None, report.table()
    assert kill.requeued_after <= plan.lease + 4 * plan.renew_every, report.table()
    # the run did what it claims: both channels, every message delivered
    assert report.outcomes[("http", "acked")] > 100 and report.outcomes[("smpp", "acked")] > 50
    assert report.finals == {"delivered": report.stored} and report.stored >= report.acked


@pytest.mark.parametrize("phase", [SHORT, LONG])
async def test_a_postgresql_restart_under_load_loses_nothing_acknowledged(
    tmp_path: Path, phase: float
) -> None:
    plan = ClusterPlan(tps=TPS, seed=11)
    report = await database_restarts(tmp_path, plan, phase, down=1.0)
    print(report.table())
    # binds never above configured (a lost slot's bind is closed before the
    # slot is free: docs/leases.md); nothing acknowledged lost, every message
    # final; the restart's duplicates within window x binds (what the nodes
    # had in flight when the database went away)
    assert report.problems() == [], report.table()
    (restart,) = report.kills
    assert restart.node is None and len(restart.slots) == plan.binds
    _rates_hold(report, ("3 nodes", "3 nodes after the restart"), phase)
    assert report.outcomes[("http", "acked")] > 100 and report.outcomes[("smpp", "acked")] > 50
    assert report.finals == {"delivered": report.stored} and report.stored >= report.acked
