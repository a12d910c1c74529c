"""Routing rules: what a rule matches, what it does, and the routes file they come from.

A **routes file** (TOML, ``docs/routing.md``) holds ordered ``[[rule]]``
tables, ordered ``[[classes]]`` entries (the priority class of a message
whose request names none), account ``[groups]`` and the ``[health]``
settings of least-cost rules (buy prices are billing's buy lists per
connector, not part of the file: ``herald prices import --connector``).
:func:`parse_routes` turns its text into a :class:`RoutingPlan` or raises
:class:`RoutesFileError` naming every bad field (``rule[2].split.b``), so a
bad file changes nothing.

A rule matches a message when every criterion it sets matches (a criterion
left out matches everything); within a criterion any listed value does.
Criteria: ``accounts`` / ``groups`` (one criterion: the account is named or
in a named group), ``countries`` (ISO 3166 alpha-2), ``networks``
(MCC+MNC), ``prefixes`` (E.164 digits), ``senders``, ``priorities``
(:class:`~herald.store.Priority` labels), ``tags``, and a time window
(``days`` and ``hours``, UTC). A ``[[classes]]`` entry has the same
criteria but ``priorities`` (it sets one, ``priority``, instead of
matching on it).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from herald.routing._table import MAX_E164_DIGITS
from herald.store import MAX_TAG_LENGTH, Priority

__all__ = [
    "DAYS",
    "MAX_CLASSES",
    "MAX_RULES",
    "ClassRule",
    "Failover",
    "HealthPolicy",
    "LeastCost",
    "RoutesFileError",
    "RoutingPlan",
    "Rule",
    "Split",
    "TimeWindow",
    "parse_routes",
]

#: Rules a plan may hold: each message is matched against them in order, so
#: thousands would be a mistaken file (and a slow dispatch), not a plan.
MAX_RULES: Final = 1000
#: ``[[classes]]`` entries a plan may hold: intake matches them in order.
MAX_CLASSES: Final = 1000
#: Connectors one rule may name, values one criterion may list.
MAX_CONNECTORS: Final = 64
MAX_VALUES: Final = 10_000
#: Characters of a rule or group name (it is stored with every routed message).
MAX_NAME: Final = 64
#: Weight of one connector in a split: enough resolution for 0.01 %.
MAX_WEIGHT: Final = 10_000
#: Problems a refused file's error lists.
MAX_PROBLEMS: Final = 20
#: Days as the file names them; index 0 is Monday (``datetime.weekday``).
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_COUNTRY = re.compile(r"[A-Z]{2}")
_NETWORK = re.compile(r"[0-9]{5,6}")
_PREFIX = re.compile(rf"[1-9][0-9]{{0,{MAX_E164_DIGITS - 1}}}")
_SECONDS_PER_DAY: Final = 86_400
_EPOCH_WEEKDAY: Final = 3  # 1970-01-01 was a Thursday


# -- values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Days of the week and UTC hours. ``days``: weekday numbers (0 Monday);
    hours ``start <= hour < end``; ``start > end`` wraps past midnight
    (22-6: 22:00 to 05:59); ``start == end`` is all day. Days and hours are
    checked each on its own: ``fri`` with 22-6 is Friday 00:00-05:59 and
    22:00-23:59."""

    days: frozenset[int] = frozenset(range(7))
    start: int = 0
    end: int = 0

    def contains(self, now: float) -> bool:
        day, hour = self.when(now)
        return day in self.days and self._hour_in(hour)

    @staticmethod
    def when(now: float) -> tuple[int, int]:
        """(weekday, hour) of ``now`` (epoch seconds) in UTC."""
        seconds = int(now // 1)
        day = (seconds // _SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7
        return day, seconds % _SECONDS_PER_DAY // 3600

    def _hour_in(self, hour: int) -> bool:
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end

    def describe(self) -> str:
        days = ",".join(DAYS[d] for d in sorted(self.days)) if len(self.days) < 7 else "every day"
        hours = "all day" if self.start == self.end else f"{self.start:02d}-{self.end:02d} UTC"
        return f"{days} {hours}"


@dataclass(frozen=True, slots=True)
class Failover:
    """Try ``connectors`` in this order."""

    connectors: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return self.connectors


@dataclass(frozen=True, slots=True)
class Split:
    """Share messages among connectors by weight, the same way for the same
    message id (a retry goes where its first try went); the others follow in
    order of weight as its fail-over."""

    weights: tuple[tuple[str, int], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.weights)


@dataclass(frozen=True, slots=True)
class LeastCost:
    """The cheapest of ``connectors`` for the destination among the healthy
    ones (delivery rate at or above ``min_delivery_rate``, a fraction), then
    the healthy ones without a price, then the unhealthy ones by price, then
    those without: every connector stays a fail-over."""

    connectors: tuple[str, ...]
    min_delivery_rate: float = 0.8

    @property
    def names(self) -> tuple[str, ...]:
        return self.connectors


Action = Failover | Split | LeastCost


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``[[rule]]``; an empty criterion matches everything."""

    name: str
    action: Action
    accounts: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()
    countries: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    senders: frozenset[str] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    tags: frozenset[str] = frozenset()
    window: TimeWindow | None = None


@dataclass(frozen=True, slots=True)
class ClassRule:
    """One ``[[classes]]`` entry: the class of the messages it matches (whose
    request named none). Its criteria are a rule's, but ``priorities``, which
    is always empty (it is there so a rule's matching applies as it is)."""

    name: str  # its ``name``, else ``classes[i]``
    priority: Priority
    accounts: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()
    countries: frozenset[str] = frozenset()
    networks: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    senders: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    window: TimeWindow | None = None
    priorities: frozenset[Priority] = frozenset()


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """How a connector's delivery rate is measured: over the final receipts
    of its last ``window`` seconds (the newest ``max_samples`` of them); with
    fewer than ``min_samples`` it counts as healthy (too little to judge)."""

    window: float = 900.0
    min_samples: int = 20
    max_samples: int = 1000


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    """A parsed routes file."""

    rules: tuple[Rule, ...] = ()
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    health: HealthPolicy = HealthPolicy()
    classes: tuple[ClassRule, ...] = ()

    @property
    def connectors(self) -> frozenset[str]:
        """Every connector some rule names."""
        return frozenset(name for rule in self.rules for name in rule.action.names)


class RoutesFileError(ValueError):
    """A routes file was refused (nothing of it is used): ``problems`` names
    each bad field by its path in the file. Fix them and import again."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        text = "\n".join(f"  {p}" for p in shown) + (f"\n  ... and {more} more" if more else "")
        super().__init__(f"routes refused: {len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''}\n{text}")  # fmt: skip
        self.problems = tuple(problems)


# -- parsing -----------------------------------------------------------------------


class _Bad(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


_RULE_KEYS: Final = frozenset({
    "name", "accounts", "groups", "countries", "networks", "prefixes", "senders",
    "priorities", "tags", "days", "hours", "failover", "split", "least_cost",
    "min_delivery_rate",
})  # fmt: skip
_CLASS_KEYS: Final = frozenset({
    "name", "priority", "accounts", "groups", "countries", "networks", "prefixes", "senders",
    "tags", "days", "hours",
})  # fmt: skip
_TOP_KEYS: Final = frozenset({"rule", "classes", "groups", "health"})
#: Where buy prices are now, for a routes file still naming a price CSV.
_PRICES_MOVED: Final = ("prices: routes files no longer name buy prices; import each connector's"
                        " buy list with `herald prices import --connector NAME FILE`"
                        " (docs/billing.md), which least-cost rules use")


def _strings(value: object, path: str, pattern: re.Pattern[str] | None = None,
             *, what: str = "a string", limit: int = MAX_NAME) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _Bad(path, "must be a non-empty list")
    if len(value) > MAX_VALUES:
        raise _Bad(path, f"lists more than {MAX_VALUES} values")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item or len(item) > limit:
            raise _Bad(f"{path}[{i}]", f"must be {what} of 1..{limit} characters")
        if pattern is not None and not pattern.fullmatch(item):
            raise _Bad(f"{path}[{i}]", f"{item!r} is not {what}")
        out.append(item)
    return out


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or len(value) > MAX_NAME:
        raise _Bad(path, f"must be a name of 1..{MAX_NAME} letters, digits, '.', '_' or '-'")
    return value


def _connectors(value: object, path: str) -> tuple[str, ...]:
    names = _strings(value, path, _NAME, what="a connector name")
    if len(names) > MAX_CONNECTORS:
        raise _Bad(path, f"names more than {MAX_CONNECTORS} connectors")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _Bad(path, f"names {', '.join(twice)} twice")
    return tuple(names)


def _action(t: Mapping[str, Any], path: str) -> Action:
    given = [k for k in ("failover", "split", "least_cost") if k in t]
    if len(given) != 1:
        raise _Bad(path, "needs exactly one action: failover = [...], split = {name = weight,"
                   " ...} or least_cost = [...]" + (f" (has {', '.join(given)})" if given else ""))
    kind = given[0]
    if "min_delivery_rate" in t and kind != "least_cost":
        raise _Bad(f"{path}.min_delivery_rate", "is for least_cost rules only")
    if kind == "failover":
        return Failover(_connectors(t[kind], f"{path}.failover"))
    if kind == "least_cost":
        rate = t.get("min_delivery_rate", 0.8)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise _Bad(f"{path}.min_delivery_rate", "must be a fraction from 0 to 1 (0.9: 90 %)")
        return LeastCost(_connectors(t[kind], f"{path}.least_cost"), float(rate))
    split = t[kind]
    if not isinstance(split, dict) or not split:
        raise _Bad(f"{path}.split", "must be a table of connector = weight, e.g. {a = 70, b = 30}")
    if len(split) > MAX_CONNECTORS:
        raise _Bad(f"{path}.split", f"names more than {MAX_CONNECTORS} connectors")
    weights = []
    for name, weight in split.items():
        _name(name, f"{path}.split")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= MAX_WEIGHT:
            raise _Bad(f"{path}.split.{name}", f"must be a whole weight of 1..{MAX_WEIGHT}")
        weights.append((name, weight))
    return Split(tuple(weights))


def _window(t: Mapping[str, Any], path: str) -> TimeWindow | None:
    if "days" not in t and "hours" not in t:
        return None
    days = frozenset(range(7))
    if "days" in t:
        names = _strings(t["days"], f"{path}.days", what="a day (mon..sun)")
        bad = [d for d in names if d.lower() not in DAYS]
        if bad:
            raise _Bad(f"{path}.days", f"{bad[0]!r} is not a day: use {', '.join(DAYS)}")
        days = frozenset(DAYS.index(d.lower()) for d in names)
    start = end = 0
    if "hours" in t:
        hours = t["hours"]
        if (not isinstance(hours, list) or len(hours) != 2
                or not all(isinstance(h, int) and not isinstance(h, bool) for h in hours)
                or not (0 <= hours[0] <= 23 and 0 <= hours[1] <= 24)):
            raise _Bad(f"{path}.hours", "must be [start, end]: UTC hours, start 0..23 and end"
                       " 0..24, the end not included ([8, 20]: 08:00-19:59; [22, 6] wraps)")
        start, end = hours[0], hours[1] % 24
    return TimeWindow(days, start, end)


def _rule(t: object, path: str, groups: Mapping[str, frozenset[str]]) -> Rule:
    if not isinstance(t, dict):
        raise _Bad(path, "must be a table")
    unknown = sorted(set(t) - _RULE_KEYS)
    if unknown:
        raise _Bad(f"{path}.{unknown[0]}",
                   f"is not a rule field (fields: {', '.join(sorted(_RULE_KEYS))})")
    if "name" not in t:
        raise _Bad(f"{path}.name", "is required (it names the rule in every decision)")
    name = _name(t["name"], f"{path}.name")
    action = _action(t, path)
    return Rule(name, action, **_criteria(t, path, groups))


def _criteria(t: Mapping[str, Any], path: str,
              groups: Mapping[str, frozenset[str]]) -> dict[str, Any]:
    """The criteria a rule or class entry sets, as keyword arguments."""
    kw: dict[str, Any] = {}
    if "accounts" in t:
        kw["accounts"] = frozenset(_strings(t["accounts"], f"{path}.accounts",
                                            what="an account name"))
    if "groups" in t:
        named = _strings(t["groups"], f"{path}.groups", _NAME, what="a group name")
        missing = [g for g in named if g not in groups]
        if missing:
            raise _Bad(f"{path}.groups", f"no group {missing[0]!r} in [groups]")
        kw["groups"] = tuple(named)
    if "countries" in t:
        kw["countries"] = frozenset(_strings(t["countries"], f"{path}.countries", _COUNTRY,
                                             what="an ISO 3166 country code (DE)"))
    if "networks" in t:
        kw["networks"] = frozenset(_strings(t["networks"], f"{path}.networks", _NETWORK,
                                            what="an MCC+MNC (26201)"))
    if "prefixes" in t:
        prefixes = _strings(t["prefixes"], f"{path}.prefixes", _PREFIX,
                            what="E.164 digits (4917)")
        kw["prefixes"] = tuple(sorted({p.removeprefix("+") for p in prefixes}))
    if "senders" in t:
        kw["senders"] = frozenset(_strings(t["senders"], f"{path}.senders", what="a sender",
                                           limit=20))
    if "priorities" in t:
        labels = _strings(t["priorities"], f"{path}.priorities", what="a priority class")
        try:
            kw["priorities"] = frozenset(Priority.parse(p) for p in labels)
        except ValueError as exc:
            raise _Bad(f"{path}.priorities", str(exc)) from None
    if "tags" in t:
        kw["tags"] = frozenset(_strings(t["tags"], f"{path}.tags", what="a tag",
                                        limit=MAX_TAG_LENGTH))
    kw["window"] = _window(t, path)
    return kw


def _class(t: object, path: str, groups: Mapping[str, frozenset[str]]) -> ClassRule:
    if not isinstance(t, dict):
        raise _Bad(path, "must be a table")
    if "priorities" in t:
        raise _Bad(f"{path}.priorities", "a class entry sets one class (priority = ...);"
                   " it does not match on one")
    unknown = sorted(set(t) - _CLASS_KEYS)
    if unknown:
        raise _Bad(f"{path}.{unknown[0]}",
                   f"is not a class field (fields: {', '.join(sorted(_CLASS_KEYS))})")
    name = _name(t["name"], f"{path}.name") if "name" in t else path
    if "priority" not in t:
        raise _Bad(f"{path}.priority", "is required: otp, transactional, bulk or marketing")
    label = t["priority"]
    try:
        if not isinstance(label, str):
            raise ValueError("must be otp, transactional, bulk or marketing")
        priority = Priority.parse(label)
    except ValueError as exc:
        raise _Bad(f"{path}.priority", str(exc)) from None
    return ClassRule(name, priority, **_criteria(t, path, groups))


def _health(t: object) -> HealthPolicy:
    if not isinstance(t, dict):
        raise _Bad("health", "must be a table")
    unknown = sorted(set(t) - {"window", "min_samples", "max_samples"})
    if unknown:
        raise _Bad(f"health.{unknown[0]}",
                   "is not a health field (window, min_samples, max_samples)")
    window = t.get("window", 900)
    if (isinstance(window, bool) or not isinstance(window, int | float)
            or not 10 <= window <= 86_400):
        raise _Bad("health.window", "must be seconds from 10 to 86400")
    counts = {}
    for key, default in (("min_samples", 20), ("max_samples", 1000)):
        value = t.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
            raise _Bad(f"health.{key}", "must be a whole number from 0 to 100000")
        counts[key] = value
    if counts["max_samples"] < max(1, counts["min_samples"]):
        raise _Bad("health.max_samples", "must be at least min_samples (and 1)")
    return HealthPolicy(float(window), counts["min_samples"], counts["max_samples"])


def parse_routes(text: str) -> RoutingPlan:
    """The plan a routes file's ``text`` holds. Raises :class:`RoutesFileError`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoutesFileError([f"not TOML: {exc}"]) from None
    problems: list[str] = []
    problems += [f"{k}: is not a routes-file key ({', '.join(sorted(_TOP_KEYS))})"
                 for k in sorted(set(doc) - _TOP_KEYS - {"prices"})]
    groups: dict[str, frozenset[str]] = {}
    raw_groups = doc.get("groups", {})
    if not isinstance(raw_groups, dict):
        problems.append("groups: must be a table of name = [account, ...]")
        raw_groups = {}
    for gname, members in raw_groups.items():
        try:
            groups[_name(gname, "groups")] = frozenset(
                _strings(members, f"groups.{gname}", what="an account name"))
        except _Bad as exc:
            problems.append(str(exc))
    health = HealthPolicy()
    if "health" in doc:
        try:
            health = _health(doc["health"])
        except _Bad as exc:
            problems.append(str(exc))
    if "prices" in doc:
        problems.append(_PRICES_MOVED)
    rules: list[Rule] = []
    raw_rules = doc.get("rule", [])
    if not isinstance(raw_rules, list):
        problems.append("rule: write each rule as a [[rule]] table")
        raw_rules = []
    if len(raw_rules) > MAX_RULES:
        problems.append(f"rule: more than {MAX_RULES} rules")
        raw_rules = raw_rules[:MAX_RULES]
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_rules):
        try:
            rule = _rule(raw, f"rule[{i}]", groups)
        except _Bad as exc:
            problems.append(str(exc))
            continue
        if rule.name in seen:
            problems.append(f"rule[{i}].name: {rule.name!r} is already rule[{seen[rule.name]}]'s")
            continue
        seen[rule.name] = i
        rules.append(rule)
    classes = _classes(doc.get("classes", []), groups, problems)
    if problems:
        raise RoutesFileError(problems)
    return RoutingPlan(tuple(rules), groups, health, classes=classes)


def _classes(raw: object, groups: Mapping[str, frozenset[str]],
             problems: list[str]) -> tuple[ClassRule, ...]:
    """The ``[[classes]]`` entries; each bad one adds to ``problems``."""
    if not isinstance(raw, list):
        problems.append("classes: write each class entry as a [[classes]] table")
        return ()
    if len(raw) > MAX_CLASSES:
        problems.append(f"classes: more than {MAX_CLASSES} entries")
        raw = raw[:MAX_CLASSES]
    entries: list[ClassRule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        try:
            entry = _class(item, f"classes[{i}]", groups)
        except _Bad as exc:
            problems.append(str(exc))
            continue
        if entry.name in seen:
            problems.append(f"classes[{i}].name: {entry.name!r} is already"
                            f" classes[{seen[entry.name]}]'s")
            continue
        seen[entry.name] = i
        entries.append(entry)
    return tuple(entries)
