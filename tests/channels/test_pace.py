"""Pacing per sending number, and back-off on "too fast" (time as an argument)."""

from __future__ import annotations

import pytest

from herald.channels._pace import Pacer, PaceSettings


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
