"""Failed-login bookkeeping and the order argon2 work is done in (issue 8)."""

from __future__ import annotations

import asyncio

import pytest

from herald.accounts import FailedLogins, HashLanes, LoginsBusy, RecentKeys


async def test_suspect_verifications_wait_behind_clean_ones_and_take_one_slot() -> None:
    lanes = HashLanes(2, suspect_slots=1, max_suspect_waiting=3)
    order: list[str] = []

    async def login(name: str, suspect: bool, started: asyncio.Event) -> None:
        await lanes.acquire(suspect=suspect)
        order.append(name)
        await started.wait()  # "hashing" until the test lets it finish
        lanes.release(suspect=suspect)

    done = asyncio.Event()
    flood = [asyncio.create_task(login(f"bad{n}", True, done)) for n in range(4)]
    await asyncio.sleep(0)
    assert order == ["bad0"]  # one suspect slot, although two are free
    with pytest.raises(LoginsBusy):  # three suspects wait already: refused at once
        await lanes.acquire(suspect=True)
    honest = asyncio.create_task(login("honest", False, done))
    await asyncio.sleep(0)
    assert order == ["bad0", "honest"]  # the free slot went to the clean login
    late = asyncio.create_task(login("late", False, done))
    await asyncio.sleep(0)
    assert lanes.waiting == (1, 3)
    done.set()
    await asyncio.gather(*flood, honest, late)
    assert order[:3] == ["bad0", "honest", "late"]  # clean work first, then the suspects
    assert order[3:] == ["bad1", "bad2", "bad3"]
    assert lanes.waiting == (0, 0)


async def test_a_cancelled_waiter_gives_its_slot_on() -> None:
    lanes = HashLanes(1)
    await lanes.acquire(suspect=False)
    waiter = asyncio.create_task(lanes.acquire(suspect=False))
    await asyncio.sleep(0)
    lanes.release(suspect=False)  # granted to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.wait_for(lanes.acquire(suspect=False), 1)  # the slot was not lost


def test_failed_logins_lock_out_after_the_burst_and_remember_suspects() -> None:
    table = FailedLogins(rate=0.5, burst=3, suspect_for=60)
    bucket = table.bucket("10.0.0.1", 0.0)
    for _ in range(3):
        assert bucket.take(1, 0.0) == 0
        table.failed("10.0.0.1", 0.0)
    assert bucket.wait(1, 0.0) == pytest.approx(2.0)  # one failure per 2 s from now on
    assert table.first_refusal("10.0.0.1", 2.0, 0.0)
    assert not table.first_refusal("10.0.0.1", 2.0, 1.0)  # the same lockout: logged once
    assert table.first_refusal("10.0.0.1", 2.0, 2.5)
    assert table.suspect("10.0.0.1", 59.0) and not table.suspect("10.0.0.1", 61.0)
    assert not table.suspect("10.0.0.2", 0.0)


def test_recent_keys_forget_the_oldest_beyond_their_size() -> None:
    recent = RecentKeys(ttl=10, max_keys=2)
    for n, key in enumerate("abc"):
        recent.note(key, float(n))
    assert not recent.recent("a", 2.0)
    assert recent.recent("b", 2.0) and recent.recent("c", 2.0)
    assert not recent.recent("c", 12.0)
