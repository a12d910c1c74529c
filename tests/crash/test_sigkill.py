"""herald under HTTP and SMPP load, SIGKILLed three times and restarted: nothing
acknowledged is lost, every stored message ends final, duplicates upstream stay
within binds x window per kill. herald serve runs its two processes; the kills
hit herald serve itself (restarted by the test) and its delivery process
(restarted by herald serve while intake goes on).

About 45 s on a loaded 2-core machine (most of it the wait for the leases a
killed herald held: 20 s for dispatch). ``bench/crash.py`` is the long run.

The load is modest (60 messages/s per channel) on purpose. A kill duplicates
upstream the submits in flight (at most binds x window) *and* those answered
by the upstream whose segment record was not committed yet; the second share
grows with the rate times the commit latency (bench/crash.py measures 20-94
per kill at ~1,000 submits/s; see docs/performance.md). At this rate it stays
a few messages, so the binds x window bound asserted here is the issue's
promise, checked where herald keeps it today.
"""

from __future__ import annotations

from pathlib import Path

from .run import CrashPlan, crash_run


async def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    # herald serve runs two processes (intake and dispatch): each is killed in turn.
    plan = CrashPlan(kills=3, targets=("serve", "delivery", "serve"), http_rate=60.0,
                     smpp_rate=60.0, seed=20261125)  # fmt: skip
    report = await crash_run(tmp_path, plan)
    assert report.problems() == [], report
    # the run did what it claims: load on both channels, stored and final, kills survived
    assert report.kills == 3
    assert report.outcomes[("http", "acked")] > 200
    assert report.outcomes[("smpp", "acked")] > 200
    assert report.finals["delivered"] >= report.acked
    assert report.submits_upstream >= report.acked
    assert len(report.recovery_seconds) == 3
