"""``[[classes]]`` entries: parsing, matching in order, explanations (pure)."""

from __future__ import annotations

import pytest

from herald.routing import Classifier, RoutesFileError, parse_routes
from herald.store import Priority

from .test_rules import CRITERIA, WED_1030, query


def classifier(text: str) -> Classifier:
    plan = parse_routes(text)
    return Classifier(plan.classes, groups=plan.groups)


# A rule's criteria, each in a class entry: the same matching, the same reasons.
@pytest.mark.parametrize(("criterion", "hit", "miss", "why"),
                         [c for c in CRITERIA if not c[0].startswith("priorities")])
def test_each_criterion_of_a_rule_matches_a_class_entry_alike(
    criterion: str, hit: dict[str, object], miss: dict[str, object], why: str
) -> None:
    c = classifier(f'[groups]\nvip = ["acme"]\n[[classes]]\n{criterion}\npriority = "otp"\n'
                   '[[classes]]\nname = "rest"\npriority = "bulk"\n')
    hit, miss = dict(hit), dict(miss)
    hit_now = float(hit.pop("now", WED_1030))  # type: ignore[arg-type]
    assert c.classify(query(**hit), hit_now)[:2] == (Priority.OTP, "classes[0]")
    miss_now = float(miss.pop("now", WED_1030))  # type: ignore[arg-type]
    other = c.classify(query(**{**hit, **miss}), miss_now, explain=True)
    assert other[:2] == (Priority.BULK, "rest")
    assert not other.checks[0].matched and why in other.checks[0].reason
    assert other.checks[1].matched


ENTRIES = """
[groups]
enterprise = ["acme", "globex"]

[[classes]]
name = "enterprise-login"
groups = ["enterprise"]
tags = ["login"]
priority = "otp"

[[classes]]
senders = ["SHOP"]
priority = "marketing"

[[classes]]
prefixes = ["49"]
hours = [20, 8]
priority = "bulk"
"""
WED_2130 = WED_1030 + 11 * 3600


@pytest.mark.parametrize(("fields", "now", "priority", "entry"), [
    ({"tag": "login"}, WED_1030, Priority.OTP, "enterprise-login"),
    ({"tag": "login", "sender": "SHOP"}, WED_1030, Priority.OTP, "enterprise-login"),  # first
    ({"tag": "login", "account": "initech", "sender": "SHOP"}, WED_1030, Priority.MARKETING,
     "classes[1]"),
    ({}, WED_2130, Priority.BULK, "classes[2]"),  # the night window, +49
    ({"to": "33612345678"}, WED_2130, None, None),  # no entry: the account's default then
    ({}, WED_1030, None, None),
])  # fmt: skip
def test_the_first_matching_entry_gives_the_class(
    fields: dict[str, object], now: float, priority: Priority | None, entry: str | None
) -> None:
    c = classifier(ENTRIES)
    assert c.classify(query(**fields), now)[:2] == (priority, entry)
    explained = c.classify(query(**fields), now, explain=True)
    assert explained[:2] == (priority, entry)
    checked = [ch.rule for ch in explained.checks]
    names = ["enterprise-login", "classes[1]", "classes[2]"]
    assert checked == (names[:names.index(entry) + 1] if entry else names)


def test_the_query_priority_is_not_looked_at_and_no_entries_give_nothing() -> None:
    c = classifier(ENTRIES)
    assert c.classify(query(tag="login", priority=Priority.MARKETING), WED_1030).priority \
        is Priority.OTP
    assert Classifier().classify(query(), WED_1030)[:2] == (None, None)
    assert (c.uses_accounts, c.uses_network, c.uses_country) == (True, False, False)
    assert c.prefix_class("4917012345678") == "49" and c.prefix_class("33612345678") == ""


def test_classes_and_rules_live_in_one_file() -> None:
    plan = parse_routes(ENTRIES + '[[rule]]\nname = "r"\npriorities = ["otp"]\nfailover = ["a"]\n')
    assert [r.name for r in plan.rules] == ["r"]
    assert [(e.name, e.priority) for e in plan.classes] == [
        ("enterprise-login", Priority.OTP), ("classes[1]", Priority.MARKETING),
        ("classes[2]", Priority.BULK)]


BAD = [
    ('[[classes]]\ntags = ["x"]\n', "classes[0].priority: is required"),
    ('[[classes]]\npriority = "urgent"\n', "classes[0].priority: not a priority class: 'urgent'"),
    ('[[classes]]\npriority = 1\n', "classes[0].priority: must be otp, transactional"),
    ('[[classes]]\npriority = "otp"\npriorities = ["bulk"]\n',
     "classes[0].priorities: a class entry sets one class"),
    ('[[classes]]\npriority = "otp"\nfailover = ["a"]\n', "classes[0].failover: is not a class"),
    ('[[classes]]\npriority = "otp"\n[[classes]]\npriority = "otp"\ncountries = ["de"]\n',
     "classes[1].countries[0]: 'de' is not an ISO 3166"),
    ('[[classes]]\npriority = "otp"\ngroups = ["vip"]\n', "classes[0].groups: no group 'vip'"),
    ('[[classes]]\nname = "a"\npriority = "otp"\n[[classes]]\nname = "a"\npriority = "bulk"\n',
     "classes[1].name: 'a' is already classes[0]'s"),
    ('[[classes]]\npriority = "otp"\nhours = [8]\n', "classes[0].hours: must be [start, end]"),
    ('classes = 3\n', "classes: write each class entry as a [[classes]] table"),
    ('classes = [3]\n', "classes[0]: must be a table"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_a_bad_class_entry_refuses_the_file_naming_the_field(text: str, problem: str) -> None:
    with pytest.raises(RoutesFileError) as caught:
        parse_routes(text + '[[rule]]\nname = "r"\nfailover = ["a"]\n')
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
