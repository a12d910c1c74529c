"""The overview's sampler: totals, rates per second over the last 10 s and the
hour's history, from the Prometheus counters, with a settable clock."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from herald.api._admin_views import HISTORY_STEP, Overview
from herald.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rates_come_from_two_reads_a_second_or_more_apart() -> None:
    metrics, clock = Metrics(CollectorRegistry()), Clock()
    overview = Overview(metrics, clock)
    totals, rates, _, _ = await overview.read()
    assert totals["accepted"] == 0 and rates["accepted"] is None  # one read: no rate yet
    metrics.accepted.labels("api").inc(30)
    metrics.submitted.labels("eu-1", "ok").inc(20)
    metrics.submitted.labels("eu-1", "throttled").inc(5)  # not sent
    metrics.final.labels("delivered").inc(8)
    metrics.final.labels("rejected").inc(2)
    metrics.final.labels("cancelled").inc(1)  # neither delivered nor failed
    clock.now += 0.5
    _, rates, _, _ = await overview.read()
    assert rates["accepted"] is None  # half a second: not yet
    clock.now += 1.5
    totals, rates, _, _ = await overview.read()
    assert (totals["accepted"], totals["sent"], totals["delivered"], totals["failed"]) == (
        30, 20, 8, 2)
    assert (rates["accepted"], rates["sent"], rates["delivered"], rates["failed"]) == (
        15.0, 10.0, 4.0, 1.0)
    assert rates["sent:eu-1"] == 10.0  # per connector too


async def test_the_history_keeps_one_sample_per_step() -> None:
    metrics, clock = Metrics(CollectorRegistry()), Clock()
    overview = Overview(metrics, clock)
    for step in range(4):
        metrics.accepted.labels("api").inc(10 * step)
        await overview.read()
        clock.now += HISTORY_STEP
    series = overview.series()
    assert [p["accepted"] for p in series] == [10 / HISTORY_STEP, 20 / HISTORY_STEP,
                                                30 / HISTORY_STEP]
    assert [p["seconds_ago"] for p in series] == [15.0, 10.0, 5.0]
