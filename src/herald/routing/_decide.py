"""Routing decisions: the rules, then the prefix routes, as a function of data and ``now``.

Theory of operation
-------------------
A :class:`Router` holds everything a decision depends on, immutable: the
rules in order, the account groups, the ``[[routes]]`` prefix table of
``herald.toml`` (the fallback), buy prices, each connector's health, and
the connectors an operator disabled. Whoever learns of a change (a new
routes file, a health figure, ``herald connectors disable``) builds a new
router and swaps it in.

:meth:`Router.decide` walks the rules in order; the **first** whose every
criterion matches and whose action leaves a connector that is not disabled
chooses. Its action orders the connectors:

- ``failover``: as listed;
- ``split``: one chosen by weight from a hash of the message id (the same id
  always goes the same way, so a retry follows its first try), then the
  others by weight, as its fail-over;
- ``least_cost``: healthy connectors with a price, cheapest first (ties in
  listed order), then healthy ones without a price, then unhealthy ones by
  price, then unhealthy ones without: traffic moves off a failing connector
  and still has somewhere to go.

No rule choosing: the longest ``[[routes]]`` prefix does, as before rules
existed (``rule`` is ``None``). Disabled connectors are left out of every
list; nothing left raises :class:`~herald.routing.NoRoute`.

With ``explain=True`` the decision also says, for every rule considered, why
it matched or not, and carries the prices and health figures it used
(``herald routes explain``). Dispatch decides without it: no text is built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, NamedTuple

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from herald.intake import Network
from herald.routing._prices import BuyPrices, ConnectorPrices
from herald.routing._rules import (
    DAYS,
    ClassRule,
    Failover,
    HealthPolicy,
    LeastCost,
    Rule,
    Split,
    TimeWindow,
)
from herald.routing._table import NoRoute, RouteTable
from herald.store import Priority

__all__ = [
    "FALLBACK",
    "Decision",
    "Health",
    "PriceQuote",
    "RouteQuery",
    "Router",
    "RuleCheck",
    "country_of",
    "longest_prefix",
    "mismatch",
]

#: What a decision names as its rule when the ``[[routes]]`` table chose.
FALLBACK: Final = "[[routes]]"
_NO_PRICES: Final = ConnectorPrices()
_ZERO: Final = Decimal(0)


def country_of(digits: str) -> str | None:
    """The ISO 3166 alpha-2 country of E.164 ``digits``, or ``None``.

    A country code of one region is a dictionary lookup; one shared by
    several (+1, +7, +44, ...) asks ``phonenumbers`` which region's plan
    the number fits.
    """
    for length in (1, 2, 3):
        regions = COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:length])) if digits[:length] else None
        if regions:
            if len(regions) == 1:
                return None if regions[0] == "001" else regions[0]
            try:
                region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits))
            except phonenumbers.NumberParseException:
                return regions[0]
            return region or regions[0]
    return None


class RouteQuery(NamedTuple):
    """What a decision looks at about one message. (A named tuple, not a frozen
    dataclass: dispatch builds one per message, in a third of the time.)"""

    message_id: str
    account: str | None  # the account's name
    to: str  # E.164 digits
    sender: str
    priority: Priority
    tag: str | None
    network: Network | None  # of ``to``, from the number tables
    country: str | None  # of ``to`` (:func:`country_of`)


@dataclass(frozen=True, slots=True)
class Health:
    """A connector's recent delivery record: final receipts counted, delivered
    among them, and whether an operator disabled it."""

    connector: str
    delivered: int = 0
    finals: int = 0
    disabled: bool = False

    @property
    def rate(self) -> float | None:
        return self.delivered / self.finals if self.finals else None

    def healthy(self, threshold: float, min_samples: int) -> bool:
        """Not disabled, and delivering at least ``threshold`` of its messages
        (or too few receipts to judge: fewer than ``min_samples``)."""
        if self.disabled:
            return False
        return self.finals < min_samples or self.delivered >= threshold * self.finals

    def describe(self, threshold: float | None, min_samples: int) -> str:
        if self.disabled:
            return "disabled by an operator"
        if not self.finals:
            return "no final receipts in the window (counts as healthy)"
        text = f"{self.delivered}/{self.finals} delivered ({self.delivered / self.finals:.1%})"
        if self.finals < min_samples:
            return text + f", fewer than {min_samples} receipts (counts as healthy)"
        if threshold is None:
            return text
        verdict = "healthy" if self.healthy(threshold, min_samples) else "unhealthy"
        return text + f", {verdict} (threshold {threshold:.0%})"


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """Why a rule did or did not choose."""

    rule: str
    matched: bool
    reason: str


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """A connector's buy price per part, and the entry of its buy list that
    gives it (``26201``, ``+49``, ``default``); both ``None``: no price."""

    connector: str
    price: Decimal | None
    entry: str | None = None


class Decision(NamedTuple):
    """The connectors to try, in order, and the rule that chose them
    (:data:`FALLBACK` for the prefix routes). With ``explain``: every rule
    considered, the prices and the health figures involved. (A named tuple:
    one per message.)"""

    connectors: tuple[str, ...]
    rule: str
    checks: tuple[RuleCheck, ...] = ()
    prices: tuple[PriceQuote, ...] = ()
    health: tuple[Health, ...] = ()
    threshold: float | None = None  # of the least-cost rule that chose


def _split_point(message_id: str, total: int) -> int:
    digest = hashlib.blake2b(message_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % total


class Router:
    """Decides routes; see the module docstring. Immutable once built."""

    __slots__ = ("_accounts", "_by_name", "_disabled", "_fallback", "_health", "_healthy",
                 "_policy", "_prefix_lengths", "_prefixes", "_prices", "rules")

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        groups: Mapping[str, Iterable[str]] | None = None,
        fallback: RouteTable | None = None,
        prices: BuyPrices | None = None,
        health: Iterable[Health] = (),
        policy: HealthPolicy | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self._by_name = {rule.name: rule for rule in self.rules}
        self._prefixes = frozenset(p for rule in self.rules for p in rule.prefixes)
        self._prefix_lengths = sorted({len(p) for p in self._prefixes}, reverse=True)
        members = {name: frozenset(accounts) for name, accounts in (groups or {}).items()}
        # A rule's accounts and its groups' members: one set to test.
        self._accounts = tuple(
            rule.accounts.union(*(members.get(g, ()) for g in rule.groups))
            for rule in self.rules
        )
        self._fallback = fallback
        self._prices = prices if prices is not None else _NO_PRICES
        self._health = {h.connector: h for h in health}
        self._disabled = frozenset(h.connector for h in self._health.values() if h.disabled)
        self._policy = policy or HealthPolicy()
        # (connector, threshold) -> healthy: fixed for this router's figures.
        self._healthy: dict[tuple[str, float], bool] = {}

    @property
    def disabled(self) -> frozenset[str]:
        return self._disabled

    def health_of(self, connector: str) -> Health:
        return self._health.get(connector) or Health(connector)

    def prefix_class(self, to: str) -> str:
        """The longest rule prefix ``to`` starts with (``""``: none). Numbers of
        one class match the same prefix criteria: a decision cache keys on it."""
        return longest_prefix(to, self._prefixes, self._prefix_lengths)

    def again(self, decision: Decision, message_id: str, to: str) -> Decision:
        """``decision`` (made for a message like this one: same account, network,
        prefix class, sender, priority, tag) for message ``message_id`` to
        ``to``: the split and the prefix routes depend on those, so they are
        applied again. Raises :class:`NoRoute` as :meth:`decide` does."""
        if decision.rule == FALLBACK:
            connectors = self._fallback.lookup(to) if self._fallback is not None else ()
            usable = tuple(c for c in connectors if c not in self._disabled)
            if not usable:
                raise NoRoute("no rule or route leaves a connector for this destination")
            return Decision(usable, FALLBACK)
        rule = self._by_name[decision.rule]
        if isinstance(rule.action, Split):
            return self._split(rule.name, rule.action, message_id, False)
        return decision

    def decide(self, query: RouteQuery, now: float, *, explain: bool = False) -> Decision:
        """The decision for ``query`` at ``now``. Raises :class:`NoRoute` when
        neither a rule nor a prefix route leaves a connector; with ``explain``,
        returns a decision without connectors instead (its checks say why)."""
        checks: list[RuleCheck] = []
        for k, rule in enumerate(self.rules):
            miss = mismatch(rule, self._accounts[k], query, now, explain)
            if miss is not None:
                if explain:
                    checks.append(RuleCheck(rule.name, False, miss))
                continue
            decision = self._act(rule, query, explain)
            if decision.connectors:
                if explain:
                    checks.append(RuleCheck(rule.name, True, "every criterion matches: chosen"))
                    return Decision(decision.connectors, rule.name, tuple(checks),
                                    decision.prices, decision.health, decision.threshold)
                return decision
            if explain:
                checks.append(RuleCheck(rule.name, False,
                                        "matches, but every connector it names is disabled"))
        connectors: tuple[str, ...] = ()
        if self._fallback is not None:
            try:
                connectors = self._fallback.lookup(query.to)
            except NoRoute:
                connectors = ()
        usable = tuple(c for c in connectors if c not in self._disabled)
        health = tuple(self.health_of(c) for c in connectors) if explain else ()
        if not usable and explain:
            return Decision((), FALLBACK, tuple(checks), (), health)
        if not usable:
            raise NoRoute("no rule or route leaves a connector for this destination"
                          if connectors else "no rule or route for this destination")
        return Decision(usable, FALLBACK, tuple(checks), (), health)

    # -- actions -------------------------------------------------------------------

    def _act(self, rule: Rule, q: RouteQuery, explain: bool) -> Decision:
        action = rule.action
        disabled = self._disabled
        if isinstance(action, Failover):
            order = tuple(c for c in action.connectors if c not in disabled)
            health = tuple(self.health_of(c) for c in action.connectors) if explain else ()
            return Decision(order, rule.name, health=health)
        if isinstance(action, Split):
            return self._split(rule.name, action, q.message_id, explain)
        return self._least_cost(rule.name, action, q, explain)

    def _split(self, name: str, action: Split, message_id: str, explain: bool) -> Decision:
        weights = [(c, w) for c, w in action.weights if c not in self._disabled]
        health = tuple(self.health_of(c) for c in action.names) if explain else ()
        if not weights:
            return Decision((), name, health=health)
        point = _split_point(message_id, sum(w for _, w in weights))
        chosen = weights[-1][0]
        for connector, weight in weights:
            if point < weight:
                chosen = connector
                break
            point -= weight
        rest = sorted((w for w in weights if w[0] != chosen), key=lambda w: -w[1])
        return Decision((chosen, *(c for c, _ in rest)), name, health=health)

    def _least_cost(self, name: str, action: LeastCost, q: RouteQuery, explain: bool) -> Decision:
        policy = self._policy
        threshold = action.min_delivery_rate
        ranked: list[tuple[int, Decimal, int, str]] = []
        quotes: list[PriceQuote] = []
        for pos, connector in enumerate(action.connectors):
            found = self._prices.price(connector, q.to, q.network)
            price = None if found is None else found[1]
            if explain:
                quotes.append(PriceQuote(connector, price,
                                         None if found is None else str(found[0])))
            if connector in self._disabled:
                continue
            healthy = self._healthy.get((connector, threshold))
            if healthy is None:
                healthy = self._healthy[connector, threshold] = self.health_of(
                    connector).healthy(threshold, policy.min_samples)
            # Classes: 0 healthy priced, 1 healthy unpriced, 2 unhealthy priced, 3 neither.
            group = (0 if healthy else 2) + (price is None)
            ranked.append((group, price if price is not None else _ZERO, pos, connector))
        ranked.sort()
        health = tuple(self.health_of(c) for c in action.connectors) if explain else ()
        return Decision(tuple(r[3] for r in ranked), name, (), tuple(quotes), health, threshold)


def mismatch(rule: Rule | ClassRule, accounts: frozenset[str], q: RouteQuery, now: float,
             explain: bool) -> str | None:
    """``None`` if every criterion of ``rule`` (a routing rule or a class entry)
    matches ``q``, ``accounts`` being its accounts and its groups' members;
    else why not (a text only when explaining: deciding needs just the verdict)."""
    if accounts and q.account not in accounts:
        if not explain:
            return ""
        named = f"among {_list(rule.accounts)}" if rule.accounts else ""
        groups = f"in groups {_list(rule.groups)}" if rule.groups else ""
        return f"account {q.account or '?'} is not {' or '.join(filter(None, (named, groups)))}"
    if rule.prefixes and not q.to.startswith(rule.prefixes):
        return f"+{q.to} starts with none of {_list(rule.prefixes)}" if explain else ""
    if rule.networks and (q.network is None or q.network.mccmnc not in rule.networks):
        return (f"network {_network(q.network)} is not among {_list(rule.networks)}"
                if explain else "")
    if rule.countries and q.country not in rule.countries:
        return (f"country {q.country or 'unknown'} is not among {_list(rule.countries)}"
                if explain else "")
    if rule.senders and q.sender not in rule.senders:
        return f"sender {q.sender} is not among {_list(rule.senders)}" if explain else ""
    if rule.priorities and q.priority not in rule.priorities:
        return (f"priority {q.priority.label} is not among "
                f"{_list(p.label for p in rule.priorities)}" if explain else "")
    if rule.tags and q.tag not in rule.tags:
        return f"tag {q.tag or '(none)'} is not among {_list(rule.tags)}" if explain else ""
    if rule.window is not None and not rule.window.contains(now):
        return (f"now ({_when(now)}) is outside {rule.window.describe()}"
                if explain else "")
    return None


def longest_prefix(to: str, prefixes: frozenset[str], lengths: Sequence[int]) -> str:
    """The longest of ``prefixes`` that ``to`` starts with (``""``: none);
    ``lengths``: theirs, longest first."""
    for length in lengths:
        if to[:length] in prefixes:
            return to[:length]
    return ""


def _list(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _network(network: Network | None) -> str:
    return "unknown" if network is None else f"{network.mcc}-{network.mnc}"


def _when(now: float) -> str:
    day, hour = TimeWindow.when(now)
    return f"{DAYS[day]} {hour:02d}h UTC"
