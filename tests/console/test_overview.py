"""The overview's sampler: totals, rates per second over the last 10 s and the
hour's history, from the Prometheus counters, with a settable clock."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from herald.api._admin_views import DAY_STEP, HISTORY_STEP, Overview
from herald.metrics import Metrics
from herald.store import SQLiteConfig, SQLiteStore


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


async def test_the_hours_chart_moves_with_the_counters() -> None:
    # The live part is read every 2 s, the hour's points kept every 5 s: what came
    # since the last point is the chart's newest interval, as the counters show it.
    metrics, clock = Metrics(CollectorRegistry()), Clock()
    overview = Overview(metrics, clock)
    await overview.read()
    clock.now += HISTORY_STEP
    await overview.read()
    metrics.accepted.labels("api").inc(4)
    clock.now += 2.0
    _, rates, _, _ = await overview.read()
    assert rates["accepted"] == round(4 / 7, 2)
    *_, newest = overview.series()
    assert (newest["seconds"], newest["accepted"], newest["seconds_ago"]) == (2.0, 2.0, 0.0)


async def test_the_day_keeps_one_sample_a_minute_and_averages_the_gaps() -> None:
    metrics, clock = Metrics(CollectorRegistry()), Clock()
    overview = Overview(metrics, clock)
    await overview.read()
    for _ in range(29):  # a minute of reads every 2 s, less 2 s: one day sample so far
        clock.now += 2
        await overview.read()
    (first,) = overview.series(day=True)  # the minute so far: the newest sample ends it
    assert first["accepted"] == 0 and first["seconds_ago"] == 0
    metrics.accepted.labels("api").inc(600)
    clock.now = 1000.0 + DAY_STEP * 10  # nobody looked for nine minutes
    await overview.read()
    (point,) = overview.series(day=True)
    assert point["accepted"] == round(600 / (DAY_STEP * 10), 2) and point["seconds_ago"] == 0
    assert point["seconds"] == DAY_STEP * 10


async def test_the_days_chart_outlives_a_restart(tmp_path: Path) -> None:
    # Each day point is kept in the store; a new process (a new sampler and
    # registry: the counters start from 0) shows them before its own.
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path))
    try:
        metrics, clock = Metrics(CollectorRegistry()), Clock()
        overview = Overview(metrics, clock, store=store, wall=clock)
        for minute in range(3):
            metrics.accepted.labels("api").inc(120 * (minute + 1))
            await overview.read()
            clock.now += DAY_STEP
        before = overview.series(day=True)
        assert [p["accepted"] for p in before] == [4.0, 6.0]
        clock.now += 300  # a restart, five minutes later
        again = Overview(Metrics(CollectorRegistry()), clock, store=store, wall=clock)
        await again.read()
        after = again.series(day=True)
        assert [(p["accepted"], p["seconds"], p["seconds_ago"]) for p in after] == [
            (4.0, DAY_STEP, 420.0), (6.0, DAY_STEP, 360.0)]
        clock.now += DAY_STEP * 24 * 60  # a day later: forgotten
        later = Overview(Metrics(CollectorRegistry()), clock, store=store, wall=clock)
        await later.read()
        assert later.series(day=True) == []
    finally:
        await store.aclose()
