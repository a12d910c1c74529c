"""Routing rules: parsing, each criterion, the actions, health and explanations (pure)."""

from __future__ import annotations

import calendar
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.intake import Network
from herald.rating import parse_key, parse_price_list
from herald.routing import (
    FALLBACK,
    ConnectorPrices,
    Health,
    HealthPolicy,
    NoRoute,
    Route,
    RouteQuery,
    Router,
    RoutesFileError,
    RouteTable,
    RuleCheck,
    country_of,
    parse_routes,
)
from herald.store import Priority

TELEKOM = Network("262", "01", "Telekom Deutschland")
VODAFONE = Network("262", "02", "Vodafone Germany")
#: Wednesday 2027-01-13, 10:30 UTC.
WED_1030 = float(calendar.timegm((2027, 1, 13, 10, 30, 0)))
SAT_2300 = float(calendar.timegm((2027, 1, 16, 23, 0, 0)))


def query(**kw: object) -> RouteQuery:
    values: dict[str, object] = {
        "message_id": "m1", "account": "acme", "to": "4917012345678", "sender": "Acme",
        "priority": Priority.TRANSACTIONAL, "tag": None, "network": TELEKOM, "country": "DE",
    }
    values.update(kw)
    return RouteQuery(**values)  # type: ignore[arg-type]


def router(text: str, **kw: object) -> Router:
    plan = parse_routes(text)
    return Router(plan.rules, groups=plan.groups, policy=plan.health, **kw)  # type: ignore[arg-type]


# -- matching: one rule per criterion, a query that matches and one that does not ----

CRITERIA = [
    ('accounts = ["acme"]', {}, {"account": "globex"}, "account globex is not among acme"),
    ('groups = ["vip"]', {}, {"account": "initech"}, "initech is not in groups vip"),
    ('countries = ["DE"]', {}, {"country": "FR"}, "country FR is not among DE"),
    ('networks = ["26201"]', {}, {"network": VODAFONE}, "network 262-02 is not among 26201"),
    ('networks = ["26201"]', {}, {"network": None}, "network unknown"),
    ('prefixes = ["4917"]', {}, {"to": "4915212345678"}, "starts with none of 4917"),
    ('senders = ["Acme"]', {}, {"sender": "Other"}, "sender Other is not among Acme"),
    ('priorities = ["otp"]', {"priority": Priority.OTP}, {"priority": Priority.BULK},
     "priority bulk is not among otp"),
    ('tags = ["otp"]', {"tag": "otp"}, {"tag": "promo"}, "tag promo is not among otp"),
    ('tags = ["otp"]', {"tag": "otp"}, {"tag": None}, "tag (none)"),
    ('days = ["mon", "wed"]\nhours = [8, 12]', {}, {"now": SAT_2300}, "outside mon,wed 08-12"),
    ('hours = [22, 6]', {"now": SAT_2300}, {}, "wed 10h UTC) is outside every day 22-06"),
]


@pytest.mark.parametrize(("criterion", "hit", "miss", "why"), CRITERIA)
def test_each_criterion_matches_and_explains_a_miss(
    criterion: str, hit: dict[str, object], miss: dict[str, object], why: str
) -> None:
    r = router(f'[groups]\nvip = ["acme"]\n[[rule]]\nname = "r"\n{criterion}\n'
               'failover = ["a"]\n[[rule]]\nname = "rest"\nfailover = ["z"]\n')
    hit_now = float(hit.pop("now", WED_1030))  # type: ignore[arg-type]
    chosen = r.decide(query(**hit), hit_now, explain=True)
    assert (chosen.rule, chosen.connectors) == ("r", ("a",))
    miss_now = float(miss.pop("now", WED_1030))  # type: ignore[arg-type]
    other = r.decide(query(**{**hit, **miss}), miss_now, explain=True)
    assert (other.rule, other.connectors) == ("rest", ("z",))
    assert not other.checks[0].matched and why in other.checks[0].reason
    assert other.checks[1].matched


def test_first_matching_rule_wins_and_all_criteria_must_match() -> None:
    r = router('[[rule]]\nname = "de-otp"\ncountries = ["DE"]\ntags = ["otp"]\nfailover = ["a"]\n'
               '[[rule]]\nname = "de"\ncountries = ["DE"]\nfailover = ["b"]\n'
               '[[rule]]\nname = "de-too"\ncountries = ["DE"]\nfailover = ["c"]\n')
    assert r.decide(query(tag="otp"), WED_1030).rule == "de-otp"
    assert r.decide(query(), WED_1030).rule == "de"  # the tag alone does not match
    explained = r.decide(query(), WED_1030, explain=True)
    assert [c.rule for c in explained.checks] == ["de-otp", "de"]  # later rules not considered


def test_no_rule_falls_back_to_the_prefix_routes_and_disabled_connectors_drop_out() -> None:
    table = RouteTable([Route("49", ("x", "y")), Route("33", ("y",))])
    r = router('[[rule]]\nname = "fr"\ncountries = ["FR"]\nfailover = ["a"]\n', fallback=table)
    d = r.decide(query(), WED_1030, explain=True)
    assert (d.rule, d.connectors) == (FALLBACK, ("x", "y"))
    assert d.checks[0].reason == "country DE is not among FR"
    r = router('', fallback=table, health=[Health("x", disabled=True)])
    assert r.decide(query(), WED_1030).connectors == ("y",)
    r = router('', fallback=table, health=[Health("x", disabled=True), Health("y", disabled=True)])
    with pytest.raises(NoRoute):
        r.decide(query(), WED_1030)
    with pytest.raises(NoRoute):
        router('').decide(query(), WED_1030)  # neither rules nor routes


def test_a_rule_whose_connectors_are_all_disabled_passes_to_the_next() -> None:
    text = ('[[rule]]\nname = "main"\nfailover = ["a", "b"]\n'
            '[[rule]]\nname = "spare"\nfailover = ["c"]\n')
    assert router(text, health=[Health("a", disabled=True)]).decide(
        query(), WED_1030).connectors == ("b",)
    d = router(text, health=[Health("a", disabled=True), Health("b", disabled=True)]).decide(
        query(), WED_1030, explain=True)
    assert (d.rule, d.connectors) == ("spare", ("c",))
    assert d.checks[0].reason == "matches, but every connector it names is disabled"


# -- least cost ----------------------------------------------------------------------

def buy_lists(**lists: str) -> ConnectorPrices:
    """Buy lists per connector, in billing's CSV form (``destination,price``)."""
    return ConnectorPrices({name: parse_price_list(f"destination,price\n{text}".splitlines())
                            for name, text in lists.items()})  # fmt: skip


PRICES = buy_lists(cheap="26201,0.0100\ndefault,0.0500\n", mid="+49,0.0200\n",
                   dear="default,0.0300\n")
LC = '[health]\nmin_samples = 10\n[[rule]]\nname = "lc"\nleast_cost = ["dear", "mid", "cheap", "free"]\nmin_delivery_rate = 0.9\n'  # noqa: E501

LEAST_COST = [
    # network, to, health, expected order
    (TELEKOM, "DE", [], ("cheap", "mid", "dear", "free")),  # network price 0.01 wins
    (VODAFONE, "DE", [], ("mid", "dear", "cheap", "free")),  # cheap's default 0.05
    (None, "FR", [], ("dear", "cheap", "mid", "free")),  # mid has no +33 price
    (TELEKOM, "DE", [Health("cheap", 80, 100)], ("mid", "dear", "free", "cheap")),  # 80 % < 90 %
    (TELEKOM, "DE", [Health("cheap", 90, 100)], ("cheap", "mid", "dear", "free")),  # at threshold
    (TELEKOM, "DE", [Health("cheap", 0, 9)], ("cheap", "mid", "dear", "free")),  # too few to judge
    (TELEKOM, "DE", [Health("cheap", 0, 50), Health("mid", 1, 50)],
     ("dear", "free", "cheap", "mid")),  # unhealthy by price after the healthy
    (TELEKOM, "DE", [Health("cheap", disabled=True)], ("mid", "dear", "free")),
]


_NUMBERS = {"DE": "4917012345678", "FR": "33612345678"}


@pytest.mark.parametrize(("network", "country", "health", "expected"), LEAST_COST)
def test_least_cost_orders_healthy_priced_first(
    network: Network | None, country: str, health: list[Health], expected: tuple[str, ...]
) -> None:
    r = router(LC, prices=PRICES, health=health)
    d = r.decide(query(network=network, country=country, to=_NUMBERS[country]), WED_1030,
                 explain=True)
    assert d.connectors == expected
    assert d.threshold == 0.9


def test_least_cost_explains_prices_and_health() -> None:
    r = router(LC, prices=PRICES, health=[Health("cheap", 80, 100)])
    d = r.decide(query(), WED_1030, explain=True)
    assert {q.connector: (q.price, q.entry) for q in d.prices} == {
        "dear": (Decimal("0.0300"), "default"), "mid": (Decimal("0.0200"), "+49"),
        "cheap": (Decimal("0.0100"), "26201"), "free": (None, None)}
    cheap = next(h for h in d.health if h.connector == "cheap")
    assert cheap.describe(d.threshold, 10) == "80/100 delivered (80.0%), unhealthy (threshold 90%)"
    assert Health("x", 3, 4).describe(0.9, 10).endswith(
        "fewer than 10 receipts (counts as healthy)")


# -- split ---------------------------------------------------------------------------


def test_split_shares_by_weight_and_a_message_always_goes_the_same_way() -> None:
    r = router('[[rule]]\nname = "s"\nsplit = {a = 70, b = 20, c = 10}\n')
    n = 20_000
    first = Counter(r.decide(query(message_id=f"msg{k}"), WED_1030).connectors[0]
                    for k in range(n))
    assert abs(first["a"] / n - 0.7) < 0.02
    assert abs(first["b"] / n - 0.2) < 0.02
    assert abs(first["c"] / n - 0.1) < 0.02
    for k in range(50):
        once = r.decide(query(message_id=f"msg{k}"), WED_1030).connectors
        assert r.decide(query(message_id=f"msg{k}"), WED_1030 + 3600).connectors == once
        assert sorted(once) == ["a", "b", "c"]  # the others follow as fail-over
        rest = [c for c in ("a", "b", "c") if c != once[0]]
        assert list(once[1:]) == rest  # by weight, heaviest first


def test_split_leaves_out_a_disabled_connector() -> None:
    r = router('[[rule]]\nname = "s"\nsplit = {a = 50, b = 50}\n',
               health=[Health("a", disabled=True)])
    assert {r.decide(query(message_id=str(k)), WED_1030).connectors for k in range(100)} == {
        ("b",)}


# -- the file ------------------------------------------------------------------------

BAD_FILES = [
    ("[[rule]]\nfailover = ['a']\n", "rule[0].name: is required"),
    ("[[rule]]\nname = 'r'\n", "rule[0]: needs exactly one action"),
    ("[[rule]]\nname = 'r'\nfailover = ['a']\nsplit = {a = 1}\n", "(has failover, split)"),
    ("[[rule]]\nname = 'r'\nsplit = {a = 0}\n", "rule[0].split.a: must be a whole weight"),
    ("[[rule]]\nname = 'r'\nleast_cost = ['a']\nmin_delivery_rate = 1.5\n",
     "rule[0].min_delivery_rate: must be a fraction"),
    ("[[rule]]\nname = 'r'\nfailover = ['a', 'a']\n", "rule[0].failover: names a twice"),
    ("[[rule]]\nname = 'r'\ncountries = ['de']\nfailover = ['a']\n", "rule[0].countries[0]"),
    ("[[rule]]\nname = 'r'\nnetworks = ['2620']\nfailover = ['a']\n", "rule[0].networks[0]"),
    ("[[rule]]\nname = 'r'\nprefixes = ['049']\nfailover = ['a']\n", "rule[0].prefixes[0]"),
    ("[[rule]]\nname = 'r'\npriorities = ['urgent']\nfailover = ['a']\n",
     "not a priority class: 'urgent'"),
    ("[[rule]]\nname = 'r'\ndays = ['monday']\nfailover = ['a']\n", "'monday' is not a day"),
    ("[[rule]]\nname = 'r'\nhours = [8, 25]\nfailover = ['a']\n", "rule[0].hours: must be"),
    ("[[rule]]\nname = 'r'\ngroups = ['vip']\nfailover = ['a']\n", "no group 'vip' in [groups]"),
    ("[[rule]]\nname = 'r'\ncolour = 'red'\nfailover = ['a']\n", "rule[0].colour: is not a rule"),
    ("[[rule]]\nname = 'r'\nfailover = ['a']\n[[rule]]\nname = 'r'\nfailover = ['b']\n",
     "rule[1].name: 'r' is already rule[0]'s"),
    ("[health]\nwindow = 1\n", "health.window"),
    ("[health]\nmin_samples = 50\nmax_samples = 10\n", "health.max_samples"),
    ("rules = 1\n", "rules: is not a routes-file key"),
    ("[[rule]\n", "not TOML"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_FILES)
def test_a_bad_routes_file_is_refused_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(text)
    assert problem in str(caught.value)


def test_every_problem_of_a_file_is_reported() -> None:
    with pytest.raises(RoutesFileError) as caught:
        parse_routes("[[rule]]\nname = 'a'\n[[rule]]\nname = 'b'\nsplit = {x = -1}\n")
    assert len(caught.value.problems) == 2


def test_health_settings_are_read() -> None:
    plan = parse_routes("[health]\nwindow = 300\nmin_samples = 5\n")
    assert plan.health == HealthPolicy(300.0, 5, 1000)


def test_a_routes_file_naming_buy_prices_is_refused_pointing_at_the_buy_lists() -> None:
    with pytest.raises(RoutesFileError) as caught:
        parse_routes("prices = 'buy-prices.csv'\n[[rule]]\nname = 'a'\nfailover = ['x']\n")
    (problem,) = caught.value.problems
    assert problem.startswith("prices: ")
    assert "herald prices import --connector" in problem


def test_buy_prices_are_the_connector_lists_most_specific_first() -> None:
    prices = buy_lists(a="26201,0.1\n+49,0.2\ndefault,0.3\n", b="+33,0.4\n")
    assert prices.price("a", "4917012345678", TELEKOM) == (parse_key("26201"), Decimal("0.1"))
    assert prices.price("a", "4917012345678", VODAFONE) == (parse_key("+49"), Decimal("0.2"))
    assert prices.price("a", "4917012345678", None) == (parse_key("+49"), Decimal("0.2"))
    assert prices.price("a", "33612345678", None) == (parse_key("default"), Decimal("0.3"))
    assert prices.price("b", "4917012345678", TELEKOM) is None  # no entry, no default
    assert prices.price("c", "4917012345678", TELEKOM) is None  # no list
    assert (len(prices), prices.connectors) == (4, frozenset({"a", "b"}))


@pytest.mark.parametrize(("digits", "country"), [
    ("4917012345678", "DE"), ("33612345678", "FR"), ("12025550123", "US"),
    ("14165550123", "CA"), ("447700900123", "GB"), ("999123", None),
])
def test_country_of_a_number(digits: str, country: str | None) -> None:
    assert country_of(digits) == country


# -- properties ----------------------------------------------------------------------

CONNECTORS = ("a", "b", "c", "d")
_rule_text = st.builds(
    lambda crit, action: f"{crit}\n{action}\n",
    st.sampled_from([
        "", 'tags = ["otp"]', 'countries = ["DE"]', 'networks = ["26201"]',
        'prefixes = ["4917"]', 'priorities = ["bulk", "otp"]', 'accounts = ["acme"]',
        "hours = [8, 20]", 'senders = ["Acme"]',
    ]),
    st.one_of(
        st.lists(st.sampled_from(CONNECTORS), min_size=1, max_size=4, unique=True).map(
            lambda cs: f"failover = {list(cs)!r}".replace("'", '"')),
        st.lists(st.sampled_from(CONNECTORS), min_size=1, max_size=4, unique=True).map(
            lambda cs: f"least_cost = {list(cs)!r}".replace("'", '"')),
        st.lists(st.sampled_from(CONNECTORS), min_size=1, max_size=4, unique=True).map(
            lambda cs: "split = {" + ", ".join(f"{c} = {i + 1}" for i, c in enumerate(cs)) + "}"),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(_rule_text, max_size=5),
    disabled=st.frozensets(st.sampled_from(CONNECTORS)),
    unhealthy=st.frozensets(st.sampled_from(CONNECTORS)),
    to=st.sampled_from(["4917012345678", "4915212345678", "33612345678"]),
    tag=st.sampled_from([None, "otp"]),
    priority=st.sampled_from(list(Priority)),
    hour=st.integers(0, 23),
    message_id=st.text(min_size=1, max_size=8),
)
def test_a_decision_is_the_same_explained_or_not_and_names_only_enabled_connectors(
    rules: list[str], disabled: frozenset[str], unhealthy: frozenset[str], to: str,
    tag: str | None, priority: Priority, hour: int, message_id: str,
) -> None:
    text = "".join(f'[[rule]]\nname = "r{k}"\n{body}' for k, body in enumerate(rules))
    health = [Health(c, 0, 100, c in disabled) for c in unhealthy | disabled]
    r = router(text, prices=PRICES, health=health,
               fallback=RouteTable([Route("49", ("a", "b")), Route("", ("c",))]))
    q = query(message_id=message_id, to=to, tag=tag, priority=priority,
              network=TELEKOM if to.startswith("4917") else None,
              country=country_of(to))
    now = WED_1030 - 10 * 3600 + hour * 3600
    try:
        plain = r.decide(q, now)
    except NoRoute:
        assert not r.decide(q, now, explain=True).connectors
        return
    explained = r.decide(q, now, explain=True)
    assert (plain.connectors, plain.rule) == (explained.connectors, explained.rule)
    assert plain.connectors and not set(plain.connectors) & disabled
    assert len(set(plain.connectors)) == len(plain.connectors)
    if plain.rule != FALLBACK:
        assert explained.checks[-1] == RuleCheck(plain.rule, True,
                                                 "every criterion matches: chosen")
        assert all(not c.matched for c in explained.checks[:-1])
