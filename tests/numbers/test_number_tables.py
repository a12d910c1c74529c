"""A running process's number tables follow the store: a new generation is
picked up within the check interval, a damaged one leaves the rules in use."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from herald.cli import main
from herald.config import RouteConfig
from herald.intake import InvalidDestination, Network, NumberingPlan, normalize_destination
from herald.numbers import NumberTables, route_check
from herald.routing import RouteTable
from herald.store import NumberTable, NumberTableKind, SQLiteConfig, SQLiteStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T0 = 1_800_000_000.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data", writer="loop"))
    yield opened
    await opened.aclose()


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _refusal(tables: NumberTables, number: str) -> str | None:
    try:
        normalize_destination(number, rules=tables.rules())
    except InvalidDestination as exc:
        return exc.code
    return None


async def test_an_import_by_another_process_is_used_within_the_interval(
    store: SQLiteStore, tmp_path: Path
) -> None:
    tables = NumberTables(store, interval=0.05)
    await tables.refresh()
    assert not tables.rules().index.has_plan
    assert _refusal(tables, "+447911123456") is None  # no plan: phonenumbers decides
    task = asyncio.create_task(tables.run())
    try:
        data = str(tmp_path / "data")
        # `herald numbers` writes through its own connection, as from another process.
        assert await asyncio.to_thread(main, ["numbers", "import-plan",
                                              str(EXAMPLES / "numbering-plan.csv"),
                                              "--data-dir", data]) == 0  # fmt: skip
        await eventually(lambda: tables.rules().index.has_plan)
        assert _refusal(tables, "+447911123456") == "unassigned"
        assert _refusal(tables, "+491709999999") is None
        before = tables.rules()
        assert await asyncio.to_thread(main, ["numbers", "import-ported",
                                              str(EXAMPLES / "ported.csv"),
                                              "--data-dir", data]) == 0  # fmt: skip
        await eventually(lambda: tables.rules() is not before)
        assert tables.rules().index.network_of("491701234567") == Network(
            "262", "02", "Vodafone Germany")
        assert await asyncio.to_thread(main, ["numbers", "clear", "plan",
                                              "--data-dir", data]) == 0  # fmt: skip
        await eventually(lambda: not tables.rules().index.has_plan)
        assert _refusal(tables, "+447911123456") is None
        assert tables.generation == await store.number_tables_generation()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_rules_change_only_with_the_generation(store: SQLiteStore) -> None:
    tables = NumberTables(store)
    assert await tables.refresh()  # the first look loads (nothing)
    assert not await tables.refresh()
    same = tables.rules()
    plan = NumberingPlan.build([("49", Network("262", "01", "Telekom"))])
    await store.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(), 1, T0))
    assert await tables.refresh()
    assert tables.rules() is not same and tables.rules().index.has_plan
    assert not await tables.refresh()


async def test_a_damaged_table_leaves_the_rules_in_use(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    tables = NumberTables(store, interval=0.02)
    good = NumberingPlan.build([("49", Network("262", "01", "Telekom"))])
    await store.put_number_table(NumberTable(NumberTableKind.PLAN, good.to_bytes(), 1, T0))
    await tables.refresh()
    in_use = tables.rules()
    await store.put_number_table(NumberTable(NumberTableKind.PLAN, b"not a table", 1, T0))
    with pytest.raises(ValueError):
        await tables.refresh()
    assert tables.rules() is in_use
    assert not await tables.refresh()  # not read again until the tables change
    with caplog.at_level(logging.ERROR, logger="herald.numbers"):
        task = asyncio.create_task(tables.run())
        await asyncio.sleep(0.2)  # some ten checks: none reads the damaged table again
        assert not caplog.records
        fixed = NumberingPlan.build([("44", Network("234", "30", "EE"))])
        await store.put_number_table(NumberTable(NumberTableKind.PLAN, fixed.to_bytes(), 1, T0))
        await eventually(lambda: tables.rules() is not in_use)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert tables.rules().index.network_of("447700900123") == Network("234", "30", "EE")


async def test_the_loop_ends_when_the_store_closes(tmp_path: Path) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    tables = NumberTables(store, interval=0.01)
    task = asyncio.create_task(tables.run())
    await store.aclose()
    await asyncio.wait_for(task, 5)


def test_route_check_follows_the_route_table() -> None:
    routable = route_check(RouteTable([RouteConfig("44", ("a",)), RouteConfig("491", ("b",))]))
    assert routable("447911123456") and routable("4915")
    assert not routable("4920") and not routable("33612345678")
    assert not route_check(RouteTable([]))("447911123456")
