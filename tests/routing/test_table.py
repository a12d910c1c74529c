"""Routing: longest-prefix outbound routes and inbound number ownership (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.config import RouteConfig
from herald.routing import (
    InboundRule,
    InboundTable,
    InvalidNumber,
    NoRoute,
    Route,
    RouteTable,
    UnknownNumber,
    e164_digits,
)

TABLE = RouteTable([
    Route("44", ("uk-a", "uk-b")),
    Route("447", ("uk-mobile",)),
    Route("4477009", ("uk-test",)),
    Route("1", ("nanp",)),
])


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        ("+447700900123", ("uk-test",)),
        ("447712345678", ("uk-mobile",)),
        ("442071234567", ("uk-a", "uk-b")),
        ("12025550123", ("nanp",)),
        ("44", ("uk-a", "uk-b")),  # the prefix itself is a match
    ],
)
def test_the_longest_matching_prefix_wins(destination: str, expected: tuple[str, ...]) -> None:
    assert TABLE.lookup(destination) == expected


def test_without_a_catch_all_an_unmatched_destination_has_no_route() -> None:
    with pytest.raises(NoRoute):
        TABLE.lookup("33612345678")
    catch_all = RouteTable([Route("44", ("a",)), Route("", ("any",))])
    assert catch_all.lookup("33612345678") == ("any",)
    assert catch_all.lookup("4420") == ("a",)


@pytest.mark.parametrize("bad", ["", "+", "44 77", "44-77", "4477a", "1" * 16, "٤٤٧"])
def test_a_destination_that_is_not_e164_digits_is_refused(bad: str) -> None:
    with pytest.raises(InvalidNumber):
        TABLE.lookup(bad)


def test_the_config_routes_build_a_table_and_duplicates_are_refused() -> None:
    table = RouteTable([RouteConfig("+44", ("a", "b")), RouteConfig("", ("c",))])
    assert table.lookup("4411") == ("a", "b")
    assert table.connectors == {"a", "b", "c"}
    with pytest.raises(ValueError, match="two routes"):
        RouteTable([Route("44", ("a",)), Route("44", ("b",))])
    with pytest.raises(InvalidNumber):
        Route("4x", ("a",))
    with pytest.raises(ValueError, match="no connector"):
        Route("44", ())


prefixes = st.text(alphabet="0123456789", min_size=0, max_size=6)


@given(
    st.dictionaries(prefixes, st.sampled_from(["a", "b", "c"]), max_size=12),
    st.text(alphabet="0123456789", min_size=1, max_size=15),
)
def test_lookup_agrees_with_a_brute_force_search(table: dict[str, str], number: str) -> None:
    routes = RouteTable([Route(p, (c,)) for p, c in table.items()])
    matching = [p for p in table if number.startswith(p)]
    if not matching:
        with pytest.raises(NoRoute):
            routes.lookup(number)
    else:
        assert routes.lookup(number) == (table[max(matching, key=len)],)


def test_inbound_exact_number_beats_prefix_beats_default() -> None:
    table = InboundTable([
        InboundRule("acme", number="447700900123"),
        InboundRule("beta", prefix="4477009"),
        InboundRule("house", prefix=""),
    ])
    assert table.lookup("447700900123") == "acme"
    assert table.lookup("+447700900999") == "beta"
    assert table.lookup("12345") == "house"  # a short code, the default account
    assert table.accounts == {"acme", "beta", "house"}


def test_inbound_without_a_default_refuses_unknown_numbers() -> None:
    table = InboundTable([InboundRule("acme", prefix="4477")])
    with pytest.raises(UnknownNumber):
        table.lookup("4420")
    with pytest.raises(InvalidNumber):
        table.lookup("STOP")


def test_inbound_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        InboundRule("acme")
    with pytest.raises(ValueError, match="exactly one"):
        InboundRule("acme", number="1", prefix="1")
    with pytest.raises(InvalidNumber):
        InboundRule("acme", number="12ab")
    with pytest.raises(ValueError, match="two inbound rules"):
        InboundTable([InboundRule("a", prefix="44"), InboundRule("b", prefix="+44")])


def test_e164_digits_strips_one_plus_only() -> None:
    assert e164_digits("+447700900123") == "447700900123"
    with pytest.raises(InvalidNumber):
        e164_digits("++44")
