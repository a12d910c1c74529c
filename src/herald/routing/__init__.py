"""Routing decisions as functions of data (pure: no I/O, no clock; ``now`` is an argument).

- ``_table``: the prefix tables of ``herald.toml``: outbound ``[[routes]]``
  (:class:`RouteTable`, longest prefix) and inbound ownership
  (:class:`InboundTable`);
- ``_rules``: routing rules and the routes file they come from
  (:func:`parse_routes` -> :class:`RoutingPlan`);
- ``_prices``: buy prices (:class:`BuyPrices`; :class:`ConnectorPrices` over
  billing's buy lists per connector);
- ``_decide``: the decision (:class:`Router`: the rules first-match, then
  the prefix routes), explainable (:class:`Decision`);
- ``_classes``: the priority class ``[[classes]]`` entries give a message
  whose request named none (:class:`Classifier`).

Loading rules from the store and keeping a running herald's router current
is :mod:`herald.routes`' business; see ``docs/routing.md``.
"""

from herald.routing._classes import ClassChoice, Classifier
from herald.routing._decide import (
    FALLBACK,
    Decision,
    Health,
    PriceQuote,
    RouteQuery,
    Router,
    RuleCheck,
    country_of,
)
from herald.routing._prices import BuyPrices, ConnectorPrices
from herald.routing._rules import (
    DAYS,
    MAX_CLASSES,
    MAX_RULES,
    ClassRule,
    Failover,
    HealthPolicy,
    LeastCost,
    RoutesFileError,
    RoutingPlan,
    Rule,
    Split,
    TimeWindow,
    parse_routes,
)
from herald.routing._table import (
    MAX_E164_DIGITS,
    InboundRule,
    InboundTable,
    InvalidNumber,
    NoRoute,
    Route,
    RouteTable,
    RoutingError,
    UnknownNumber,
    e164_digits,
)

__all__ = [
    "DAYS",
    "FALLBACK",
    "MAX_CLASSES",
    "MAX_E164_DIGITS",
    "MAX_RULES",
    "BuyPrices",
    "ClassChoice",
    "ClassRule",
    "Classifier",
    "ConnectorPrices",
    "Decision",
    "Failover",
    "Health",
    "HealthPolicy",
    "InboundRule",
    "InboundTable",
    "InvalidNumber",
    "LeastCost",
    "NoRoute",
    "PriceQuote",
    "Route",
    "RouteQuery",
    "RouteTable",
    "Router",
    "RoutesFileError",
    "RoutingError",
    "RoutingPlan",
    "Rule",
    "RuleCheck",
    "Split",
    "TimeWindow",
    "UnknownNumber",
    "country_of",
    "e164_digits",
    "parse_routes",
]
