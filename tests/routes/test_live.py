"""A process's router follows the store (real SQLite): new rules, refused rules,
connector states; cached decisions give what fresh ones would."""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.intake import Network, NumberingPlan
from herald.rating import parse_price_list
from herald.routes import LiveRouting
from herald.routing import FALLBACK, NoRoute, Route, RouteQuery, RouteTable
from herald.store import (
    ConnectorState,
    Message,
    NumberTable,
    NumberTableKind,
    PriceSide,
    Priority,
    Source,
    SQLiteConfig,
    SQLiteStore,
    Status,
    StoredRoutes,
)

MON_0759 = float(calendar.timegm((2027, 1, 11, 7, 59, 58)))
FALLBACK_ROUTES = RouteTable([Route("491711", ("a",)), Route("4917", ("c",)),
                              Route("49", ("b",))])


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(SQLiteConfig(data_dir=tmp_path / "data"))
    plan = NumberingPlan.build([("4917", Network("262", "01", "Telekom")),
                                ("4915", Network("262", "02", "Vodafone"))])
    await opened.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(), len(plan),
                                              MON_0759))
    try:
        yield opened
    finally:
        await opened.aclose()


def message(n: int, to: str = "4917012345678", **fields: object) -> Message:
    values: dict[str, object] = {
        "id": f"m{n}", "account_id": 1, "source": Source.HTTP, "to": to, "sender": "ACME",
        "body": b"x", "encoding": "gsm7", "data_coding": 0, "udhi": False, "segments": 1,
        "reference": None, "metadata": None, "callback_url": None, "registered_delivery": 0,
        "test": False, "send_at": None, "expires_at": MON_0759 + 600,
        "status": Status.QUEUED, "error_code": None, "error_permanent": False,
        "accepted_at": MON_0759, "queued_at": None, "sent_at": None, "done_at": None,
        "attempt": 1,
    }
    values.update(fields)
    return Message(**values)  # type: ignore[arg-type]


async def live(store: SQLiteStore, rules: str, clock: Clock) -> LiveRouting:
    await store.put_routes(StoredRoutes(rules, "t.toml", MON_0759))
    routing = LiveRouting(store, FALLBACK_ROUTES, {"a", "b", "c"}, clock)
    assert await routing.refresh()
    return routing


async def test_rules_states_and_refusals_apply_at_the_next_refresh(store: SQLiteStore) -> None:
    clock = Clock(MON_0759)
    routing = await live(store, '[[rule]]\nname = "r"\nfailover = ["a", "b"]\n', clock)
    assert routing.decide(message(1)).connectors == ("a", "b")
    assert not await routing.refresh()  # nothing changed
    await store.set_connector_state(ConnectorState("a", True, None, MON_0759))
    assert await routing.refresh()
    assert routing.decide(message(1)).connectors == ("b",)
    await store.put_routes(StoredRoutes('[[rule]]\nname = "r"\nfailover = ["zz"]\n',
                                        "bad.toml", MON_0759))
    with pytest.raises(ValueError, match=r"connectors herald\.toml does not have: zz"):
        await routing.refresh()
    assert routing.decide(message(1)).connectors == ("b",)  # the rules in use stay
    assert not await routing.refresh()  # not tried again until they change
    await store.remove_routes()
    assert await routing.refresh()
    decision = routing.decide(message(1))
    assert (decision.rule, decision.connectors) == (FALLBACK, ("c",))


SPLIT_AND_WINDOW = """
[[rule]]
name = "morning-split"
hours = [8, 12]
split = { a = 80, b = 20 }
[[rule]]
name = "vodafone"
networks = ["26202"]
failover = ["a"]
"""


async def test_cached_decisions_are_what_fresh_ones_would_be(store: SQLiteStore) -> None:
    clock = Clock(MON_0759)
    routing = await live(store, SPLIT_AND_WINDOW, clock)
    # 07:59:58: no split; the same key for numbers of two prefix routes: each its own.
    first = routing.decide(message(1, to="4917012345678"))
    again = routing.decide(message(2, to="4917112345678"))
    assert (first.rule, first.connectors) == (FALLBACK, ("c",))
    assert (again.rule, again.connectors) == (FALLBACK, ("a",))  # its own prefix route
    assert routing.decide(message(3, to="4915012345678")).rule == "vodafone"
    clock.now += 6  # 08:00:04: past the cache's 5 s, the window has begun
    shares = Counter(routing.decide(message(k)).connectors for k in range(2000))
    assert set(shares) == {("a", "b"), ("b", "a")}
    assert 0.75 < shares["a", "b"] / 2000 < 0.85
    fresh = routing.router
    for k in range(50):  # each as an uncached decision would have it
        query = RouteQuery(f"m{k}", None, "4917012345678", "ACME", Priority.TRANSACTIONAL, None,
                           Network("262", "01", "Telekom"), "DE")
        assert routing.decide(message(k)).connectors == fresh.decide(query, clock.now).connectors


async def test_a_new_account_matches_its_rules_at_the_next_refresh(store: SQLiteStore) -> None:
    clock = Clock(MON_0759)
    routing = await live(store, '[[rule]]\nname = "newco"\naccounts = ["newco"]\n'
                                'failover = ["a"]\n', clock)
    account = await store.create_account("newco", MON_0759, rate_limit=10, bind_limit=1)
    before = routing.decide(message(1, account_id=account.id))
    assert before.rule == FALLBACK  # its name is not known yet
    assert not await routing.refresh()  # no new rules; the account names are read again
    after = routing.decide(message(2, account_id=account.id))
    assert (after.rule, after.connectors) == ("newco", ("a",))


async def test_country_rules_decide_with_and_without_a_known_network(store: SQLiteStore) -> None:
    routing = await live(store, '[[rule]]\nname = "de"\ncountries = ["DE"]\nfailover = ["a"]\n'
                                '[[rule]]\nname = "us"\ncountries = ["US"]\nfailover = ["b"]\n',
                         Clock(MON_0759))
    for k in range(3):  # the first decides, the others come from the cache
        assert routing.decide(message(k, to=f"491701234567{k}")).rule == "de"
    assert routing.decide(message(5, to="12025550123")).rule == "us"  # no network: fresh
    with pytest.raises(NoRoute):  # Canada: no rule, and no [[routes]] prefix for +1
        routing.decide(message(6, to="14165550123"))


async def buy_list(store: SQLiteStore, connector: str, text: str) -> None:
    """What ``herald prices import --connector`` stores."""
    prices = parse_price_list(f"destination,price\n{text}".splitlines())
    await store.put_price_list(prices.stored(PriceSide.BUY, connector, MON_0759))


async def test_least_cost_follows_the_connectors_buy_lists_as_they_are_imported(
    store: SQLiteStore,
) -> None:
    await buy_list(store, "a", "26201,0.010\n+49,0.030\n")
    await buy_list(store, "b", "+49,0.020\n")
    routing = await live(store, '[[rule]]\nname = "lc"\nleast_cost = ["a", "b"]\n',
                         Clock(MON_0759))
    assert routing.decide(message(1)).connectors == ("a", "b")  # Telekom: a's 26201
    assert routing.decide(message(2, to="4915012345678")).connectors == ("b", "a")  # +49
    assert routing.decide(message(3, to="4930123456")).connectors == ("b", "a")  # no network
    await buy_list(store, "b", "26201,0.005\n")  # replaces b's list whole
    assert await routing.refresh()
    assert routing.decide(message(4)).connectors == ("b", "a")  # not the cached decision
    assert routing.decide(message(5, to="4915012345678")).connectors == ("a", "b")  # b: none
    await store.remove_price_list(PriceSide.BUY, "b")
    assert await routing.refresh()
    assert routing.decide(message(6)).connectors == ("a", "b")  # b unpriced: after a
    assert not await routing.refresh()  # nothing moved since
