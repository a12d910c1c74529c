"""Store contract: the number tables, replaced whole, and their generation."""

from __future__ import annotations

import pytest

from herald.store import InvalidRecord, NumberTable, NumberTableKind, Store

from .conftest import T0

PLAN, PORTED = NumberTableKind.PLAN, NumberTableKind.PORTED


async def test_every_change_makes_a_new_generation(store: Store) -> None:
    assert await store.number_tables_generation() == 0
    assert await store.get_number_table(PLAN) is None
    first = await store.put_number_table(NumberTable(PLAN, b"plan-1", 3, T0))
    assert first == await store.number_tables_generation() > 0
    assert await store.get_number_table(PLAN) == NumberTable(PLAN, b"plan-1", 3, T0, first)
    ported = await store.put_number_table(NumberTable(PORTED, b"\x00" * 100_000, 10_000, T0 + 1))
    replaced = await store.put_number_table(NumberTable(PLAN, b"plan-2", 4, T0 + 2))
    assert first < ported < replaced == await store.number_tables_generation()
    assert await store.get_number_table(PLAN) == NumberTable(PLAN, b"plan-2", 4, T0 + 2, replaced)
    table = await store.get_number_table(PORTED)
    assert table is not None and (table.data, table.generation) == (b"\x00" * 100_000, ported)


async def test_removing_a_table_is_a_change_too(store: Store) -> None:
    await store.put_number_table(NumberTable(PLAN, b"plan", 1, T0))
    before = await store.number_tables_generation()
    removed = await store.remove_number_table(PLAN)
    assert removed > before and await store.get_number_table(PLAN) is None
    assert await store.remove_number_table(PLAN) == removed  # nothing left to remove
    assert await store.number_tables_generation() == removed


def test_a_table_record_checks_its_size() -> None:
    with pytest.raises(InvalidRecord):
        NumberTable(PLAN, b"", 0, T0)
    with pytest.raises(InvalidRecord):
        NumberTable(PLAN, b"x", -1, T0)
