"""Pacing per sending number, and back-off on "too fast" (time as an argument)."""

from __future__ import annotations

import random

import pytest

from herald.channels._pace import DEFAULT_RATE, PROVIDER_RATE, Pacer, PaceSettings
from herald.sim.bucket import TokenBucket


def test_a_number_sends_at_its_rate_after_its_burst() -> None:
    pacer = Pacer(PaceSettings(rate=80, burst=8))
    assert all(pacer.take("A", 0.0) == 0.0 for _ in range(8))
    assert pacer.take("A", 0.0) == pytest.approx(1 / 80)
    assert pacer.take("B", 0.0) == 0.0  # another number has its own bucket


def test_sends_admitted_over_a_second_never_exceed_rate_plus_burst() -> None:
    pacer = Pacer(PaceSettings(rate=80, burst=8))
    sent = 0
    for tick in range(1000):  # a sender asking every millisecond for one second
        while sent < 200 and pacer.take("A", tick / 1000) == 0.0:
            sent += 1
    assert 80 <= sent <= 88


def test_throttle_pauses_the_number_doubling_until_a_success() -> None:
    pacer = Pacer(PaceSettings(backoff=0.5, max_backoff=2.0))
    assert pacer.throttled("A", 10.0) == 0.5
    assert pacer.take("A", 10.1) == pytest.approx(0.4)
    assert pacer.throttled("A", 10.5) == 1.0
    assert pacer.throttled("A", 11.5) == 2.0
    assert pacer.throttled("A", 13.5) == 2.0  # capped
    pacer.succeeded("A")
    assert pacer.throttled("A", 20.0) == 0.5
    assert pacer.take("B", 10.1) == 0.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        PaceSettings(rate=0)
    with pytest.raises(ValueError):
        PaceSettings(backoff=5, max_backoff=1)


def _departures(settings: PaceSettings, seconds: float) -> list[float]:
    """When a number with sends always waiting lets them out (a 1 ms clock)."""
    pacer, out = Pacer(settings), []
    for tick in range(int(seconds * 1000)):
        while pacer.take("A", tick / 1000) == 0.0:
            out.append(tick / 1000)
    return out


def _refused(arrivals: list[float], rate: float, burst: float) -> int:
    bucket = TokenBucket(rate, burst, arrivals[0])
    return sum(not bucket.take(at) for at in sorted(arrivals))


@pytest.mark.parametrize("spread", ["random", "first_late"])
def test_the_default_pace_fits_80_per_second_when_sends_arrive_bunched(spread: str) -> None:
    # Sends reach the provider 0..80 ms after herald lets them out (the module
    # docstring: the default leaves 83 ms). Either spread at random, or the
    # worst case: every send of a stretch delayed the most, the next stretch not.
    rnd = random.Random(14)
    out = _departures(PaceSettings(), 10.0)
    if spread == "random":
        arrivals = [t + rnd.uniform(0.0, 0.08) for t in out]
    else:
        arrivals = [t + (0.08 if int(t / 0.5) % 2 == 0 else 0.0) for t in out]
    assert _refused(arrivals, PROVIDER_RATE, 8) == 0  # the fake's bucket: 80/s, burst 8
    per_second = max(sum(1 for a in arrivals if s <= a < s + 1.0)
                     for s in (x / 100 for x in range(1000)))
    assert per_second <= PROVIDER_RATE  # a provider counting 80 in any second
    assert len(out) >= 0.99 * DEFAULT_RATE * 10  # and the pace is kept: 72/s


def test_pacing_at_the_providers_own_rate_and_burst_meets_throttling() -> None:
    # Why the default is not (80/s, 8): a 5 ms spread is enough to be refused.
    out = _departures(PaceSettings(rate=PROVIDER_RATE, burst=8), 2.0)
    arrivals = [t + (0.005 if int(t / 0.5) % 2 == 0 else 0.0) for t in out]
    assert _refused(arrivals, PROVIDER_RATE, 8) > 0
