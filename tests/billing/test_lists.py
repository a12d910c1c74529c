"""A process's sell price lists follow the store: a new list is used after the
next refresh, a removed one makes its account unbilled again."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.billing import PriceLists, Unpriced, rate
from herald.intake import NO_RULES, DestinationRules, Network, NumberIndex, NumberingPlan
from herald.rating import parse_price_list
from herald.store import PriceSide, SQLiteConfig, SQLiteStore

LIST = parse_price_list(["destination,price\n", "26201,0.04\n", "+49,0.05\n"])


async def test_lists_are_reloaded_when_their_generation_moves(tmp_path: Path) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path))
    try:
        account = await store.create_account("shop", 0.0, rate_limit=1.0, bind_limit=1)
        lists = PriceLists(store)
        assert await lists.refresh() and lists.sell(account.id) is None
        assert not await lists.refresh()  # nothing changed: nothing read
        await store.put_price_list(LIST.stored(PriceSide.SELL, str(account.id), 0.0))
        assert lists.sell(account.id) is None  # until the next refresh
        assert await lists.refresh() and lists.sell(account.id) == LIST
        await store.remove_price_list(PriceSide.SELL, str(account.id))
        assert await lists.refresh() and lists.sell(account.id) is None
    finally:
        await store.aclose()


def test_rating_uses_the_number_tables_for_the_network() -> None:
    plan = NumberingPlan.build([("4917", Network("262", "01", "Telekom"))])
    rules = DestinationRules(NumberIndex(plan))
    telekom = rate(LIST, "491701234567", 1, rules)
    assert (str(telekom.key), telekom.network, telekom.charge().amount) == ("26201", "26201",
                                                                            40_000)  # fmt: skip
    other = rate(LIST, "491511234567", 1, rules)  # outside the plan: its country
    assert (str(other.key), other.network, other.charge().price_key) == ("+49", None, "+49")
    assert str(rate(LIST, "491701234567", 1, NO_RULES).key) == "+49"  # no tables
    with pytest.raises(Unpriced):
        rate(LIST, "447911123456", 1, rules)
