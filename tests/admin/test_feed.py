"""The change feed: every change recorded by any process reaches the listeners, once, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.admin import ChangeFeed
from herald.store import AuditEntry, SQLiteConfig, SQLiteStore

T0 = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    yield opened
    await opened.aclose()


async def _record(store: SQLiteStore, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await store.record_audit(AuditEntry(T0 + n, "cli:test", "account.update",
                                            f"account:a{n}", {"n": n}))


async def test_the_feed_publishes_what_others_recorded_since_it_started(
    store: SQLiteStore,
) -> None:
    await _record(store, 3)  # before the feed started: not news
    feed = ChangeFeed()
    heard: list[int] = []
    feed.watch(lambda entry: heard.append(entry.changes["n"]))
    assert await feed.poll(store) == 0 and heard == []
    await _record(store, 1234, start=3)  # more than one page of the log
    assert await feed.poll(store) == 1234
    assert heard == list(range(3, 1237))
    assert await feed.poll(store) == 0  # nothing new: nothing told twice
    await _record(store, 2, start=1237)
    assert await feed.poll(store) == 2 and heard[-2:] == [1237, 1238]


async def test_a_failing_listener_does_not_hide_changes_from_the_others(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    feed = ChangeFeed()
    heard: list[str] = []

    def broken(entry: AuditEntry) -> None:
        raise RuntimeError("bug")

    feed.watch(broken)
    feed.watch(lambda entry: heard.append(entry.target))
    await feed.poll(store)
    await _record(store, 2)
    assert await feed.poll(store) == 2
    assert heard == ["account:a0", "account:a1"]
    assert "a change listener failed" in caplog.text
