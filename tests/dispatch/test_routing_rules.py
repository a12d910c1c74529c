"""Dispatch routes by the stored rules: per tag, reloaded without a restart, off a
disabled connector, and off an unhealthy one by least cost (real SQLite, real sockets)."""

from __future__ import annotations

import time

from herald.intake import Network, NumberingPlan
from herald.rating import parse_price_list
from herald.smpp.constants import CommandStatus, MessageState
from herald.store import (
    ConnectorState,
    NumberTable,
    NumberTableKind,
    PriceSide,
    Status,
    StoredRoutes,
)

from .conftest import Rig, connector, eventually
from .upstream import Answer, Upstream

TWO_RULES = """
[[rule]]
name = "otp-via-b"
tags = ["otp"]
failover = ["b", "a"]

[[rule]]
name = "acme-via-a"
accounts = ["acme"]
failover = ["a"]
"""


async def _buy_list(rig: Rig, connector: str, text: str) -> None:
    """A connector's buy list, as ``herald prices import --connector`` stores it."""
    prices = parse_price_list(f"destination,price\n{text}".splitlines())
    await rig.store.put_price_list(prices.stored(PriceSide.BUY, connector, time.time()))


async def _rig_with(rig: Rig, rules: str | None, prices: dict[str, str] | None = None,
                    answer_a: Answer | None = None) -> tuple[Upstream, Upstream]:
    if rules is not None:
        await rig.store.put_routes(StoredRoutes(rules, "test.toml", time.time()))
    for connector_name, text in (prices or {}).items():
        await _buy_list(rig, connector_name, text)
    up_a = await rig.upstream(Upstream(decide=(lambda pdu, n: answer_a)) if answer_a else None)
    up_b = await rig.upstream()
    d = await rig.dispatcher([connector("a", up_a.server.port),  # type: ignore[union-attr]
                              connector("b", up_b.server.port)],  # type: ignore[union-attr]
                             routes=[("", ("b",))])
    d.routing.interval = 0.05  # look for changes often (herald serve: every 2 s)
    return up_a, up_b


async def test_messages_go_where_the_first_matching_rule_says(rig: Rig) -> None:
    up_a, up_b = await _rig_with(rig, TWO_RULES)
    otp = await rig.send(3, tag="otp")
    other = await rig.send(4, to_prefix="4477008")
    await rig.wait_all(otp + other, Status.DELIVERED)
    assert {s.pdu.destination_addr[:7] for s in up_b.submits} == {"4477009"}
    assert {s.pdu.destination_addr[:7] for s in up_a.submits} == {"4477008"}
    routes = await rig.store.get_message_routes(otp + other)
    assert {routes[i].rule for i in otp} == {"otp-via-b"}
    assert {(routes[i].rule, routes[i].connector) for i in other} == {("acme-via-a", "a")}


async def test_without_rules_the_prefix_routes_decide_and_no_rule_is_recorded(rig: Rig) -> None:
    up_a, up_b = await _rig_with(rig, None)
    ids = await rig.send(3, tag="otp")
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(up_b.submits) == 3 and not up_a.submits
    routes = await rig.store.get_message_routes(ids)
    assert {(r.rule, r.connector) for r in routes.values()} == {(None, "b")}


async def test_new_rules_and_a_disabled_connector_apply_without_a_restart(rig: Rig) -> None:
    up_a, up_b = await _rig_with(rig, None)
    first = await rig.send(2)
    await rig.wait_all(first, Status.DELIVERED)
    assert len(up_b.submits) == 2
    await rig.store.put_routes(StoredRoutes(TWO_RULES, "new.toml", time.time()))
    d = rig.dispatchers[0]
    generation = await rig.store.routing_generation()
    await eventually(lambda: _at(d.routing.generation, generation), 5.0)
    second = await rig.send(2)
    await rig.wait_all(second, Status.DELIVERED)
    assert len(up_a.submits) == 2  # rule acme-via-a
    await rig.store.set_connector_state(ConnectorState("a", True, "test", time.time()))
    generation = await rig.store.routing_generation()
    await eventually(lambda: _at(d.routing.generation, generation), 5.0)
    third = await rig.send(2)  # acme-via-a has no enabled connector: the fallback [[routes]]
    await rig.wait_all(third, Status.DELIVERED)
    assert len(up_a.submits) == 2 and len(up_b.submits) == 4
    routes = await rig.store.get_message_routes(third)
    assert {(r.rule, r.connector) for r in routes.values()} == {(None, "b")}


async def _at(current: int, wanted: int) -> bool:
    return current == wanted


LEAST_COST = """
[health]
window = 600
min_samples = 5

[[rule]]
name = "de-least-cost"
networks = ["26201"]
least_cost = ["a", "b"]
min_delivery_rate = 0.9
"""
PRICES = {"a": "26201,0.010\n", "b": "26201,0.020\n"}


async def test_least_cost_moves_off_a_connector_that_stops_delivering(rig: Rig) -> None:
    plan = NumberingPlan.build([("4917", Network("262", "01", "Telekom Deutschland"))])
    await rig.store.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(),
                                                 len(plan), time.time()))
    undelivered = Answer(receipts=(MessageState.UNDELIVERABLE,))
    up_a, up_b = await _rig_with(rig, LEAST_COST, PRICES, answer_a=undelivered)
    d = rig.dispatchers[0]
    d.routing.health_interval = 0.05
    first = await rig.send(5, to_prefix="4917012")
    await rig.wait_all(first, Status.UNDELIVERED)  # a is cheaper: all went there, and failed
    assert len(up_a.submits) == 5 and not up_b.submits

    async def unhealthy() -> bool:
        return d.routing.router.health_of("a").finals >= 5

    await eventually(unhealthy, 5.0)
    second = await rig.send(3, to_prefix="4917013")
    await rig.wait_all(second, Status.DELIVERED)
    assert len(up_a.submits) == 5 and len(up_b.submits) == 3
    routes = await rig.store.get_message_routes(second)
    assert {(r.rule, r.connector) for r in routes.values()} == {("de-least-cost", "b")}


async def test_a_rules_order_is_the_fail_over_when_the_first_connector_refuses(rig: Rig) -> None:
    plan = NumberingPlan.build([("4917", Network("262", "01", "Telekom Deutschland"))])
    await rig.store.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(),
                                                 len(plan), time.time()))
    refuse = Answer(status=CommandStatus.ESME_RINVDSTADR)
    up_a, up_b = await _rig_with(rig, LEAST_COST, PRICES, answer_a=refuse)  # a is cheaper
    ids = await rig.send(3, to_prefix="4917012")
    await rig.wait_all(ids, Status.DELIVERED)
    assert len(up_a.submits) == 3 and len(up_b.submits) == 3  # refused by a, carried by b
    routes = await rig.store.get_message_routes(ids)
    assert {(r.rule, r.connector) for r in routes.values()} == {("de-least-cost", "b")}


async def test_an_imported_buy_list_changes_least_cost_choices_without_a_restart(
    rig: Rig,
) -> None:
    plan = NumberingPlan.build([("4917", Network("262", "01", "Telekom Deutschland"))])
    await rig.store.put_number_table(NumberTable(NumberTableKind.PLAN, plan.to_bytes(),
                                                 len(plan), time.time()))
    up_a, up_b = await _rig_with(rig, LEAST_COST, PRICES)  # a is cheaper
    first = await rig.send(3, to_prefix="4917012")
    await rig.wait_all(first, Status.DELIVERED)
    assert len(up_a.submits) == 3 and not up_b.submits
    d = rig.dispatchers[0]
    await _buy_list(rig, "b", "+49,0.005\n")  # now b is, by country code
    generation = await rig.store.price_lists_generation()
    await eventually(lambda: _at(d.routing.prices_generation, generation), 5.0)
    second = await rig.send(3, to_prefix="4917013")
    await rig.wait_all(second, Status.DELIVERED)
    assert len(up_a.submits) == 3 and len(up_b.submits) == 3
    routes = await rig.store.get_message_routes(second)
    assert {(r.rule, r.connector) for r in routes.values()} == {("de-least-cost", "b")}
