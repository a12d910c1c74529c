"""Policy files: what parses, and the error (naming the field) for what does not."""

from __future__ import annotations

import pytest

from herald.signaling.policy import Action, Category, PolicyError, Rule, parse_policy
from herald.signaling.policy.categories import category_of

from .builders import POLICY_TOML, policy


def test_the_test_policy_parses_with_documented_defaults() -> None:
    p = policy()
    assert (p.home.mcc, p.home.mnc, p.home.gt_prefixes) == ("001", "01", ("1999",))
    assert [x.name for x in p.partners] == ["near", "far"]
    assert p.partners[0].imsi_prefixes == ("00202",)  # default: MCC+MNC
    assert p.platform_gts == ("19990000001",)
    assert p.actions[Rule.CAT1] is Action.BLOCK
    assert p.actions[Rule.LOOKUP_ONLY] is Action.ALERT
    assert p.velocity.max_speed_kmh == 1000.0
    assert p.limits.subscribers == 200_000
    assert "salt" not in repr(p).replace("salt=<hidden>", "")


def test_overrides_allow_deny_and_sections_are_read() -> None:
    p = policy(
        """
[categories]
unknown = "cat2"
[[categories.override]]
operation = "sendRoutingInfoForSM"
ac = [20, 3]
category = "cat1"
[[categories.override]]
operation = 71
category = "cat3"

[[allow]]
gt_prefixes = ["2888"]
operations = ["provideSubscriberInfo", 71]

[deny]
gt_prefixes = ["4666"]

[velocity]
max_speed_kmh = 900
slack_km = 0

[sms]
lookup_only_window_s = 15

[actions]
range-sweep = "alert"

[proxy]
on_block = "udts"
return_cause = 7
"""
    )
    assert p.unknown_category is Category.CAT2
    assert p.category_overrides == {(45, 20, 3): Category.CAT1, (71, None, None): Category.CAT3}
    assert p.allow[0].operations == frozenset({70, 71})
    assert p.deny.gt_prefixes == ("4666",)
    assert (p.velocity.max_speed_kmh, p.velocity.slack_km) == (900.0, 0.0)
    assert p.sms.lookup_only_s == 15.0
    assert p.actions[Rule.RANGE_SWEEP] is Action.ALERT
    assert (p.proxy.on_block, p.proxy.return_cause) == ("udts", 7)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("[home2]\nx = 1\n", "home2"),
        ("[velocity]\nmax_speed = 3\n", "velocity.max_speed"),
        ("[velocity]\nmax_speed_kmh = -3\n", "velocity.max_speed_kmh"),
        ("[velocity]\nmax_speed_kmh = true\n", "velocity.max_speed_kmh"),
        ("[[partners]]\nname = 'x'\nmcc = '01'\nmnc = '01'\ngt_prefixes = []\n", "partners[2].mcc"),
        ("[[partners]]\nname = 'x'\nmcc = '005'\nmnc = '05'\n", "partners[2].gt_prefixes"),
        (
            "[[partners]]\nname = 'x'\nmcc = '005'\nmnc = '05'\ngt_prefixes = ['19']\n",
            "partners[2].gt_prefixes[0]",
        ),
        (
            "[[partners]]\nname = 'x'\nmcc = '005'\nmnc = '05'\ngt_prefixes = ['5']\n"
            "region = 'mars'\n",
            "partners[2].region",
        ),
        ("[actions]\ncat9 = 'block'\n", "actions.cat9"),
        ("[actions]\ncat1 = 'drop'\n", "actions.cat1"),
        ("[deny]\noperations = ['locateEveryone']\n", "deny.operations[0]"),
        ("[[allow]]\n", "allow[0]"),
        ("[lookups]\nsweep_distinct = 1\n", "lookups.sweep_distinct"),
        ("[lookups]\nsweep_distinct = 10\nsweep_span = 5\n", "lookups.sweep_span"),
        ("[lookups]\nsweep_block_digits = 2\nsweep_span = 101\n", "lookups.sweep_span"),
        ("[limits]\nsubscribers = 'many'\n", "limits.subscribers"),
        ("[proxy]\non_block = 'reject'\n", "proxy.on_block"),
        (
            "[[categories.override]]\noperation = 71\ncategory = 'cat7'\n",
            "categories.override[0].category",
        ),
        (
            "[[categories.override]]\noperation = 71\nac = [29]\ncategory = 'cat1'\n",
            "categories.override[0].ac",
        ),
        ("[deny]\ngt_prefixes = ['+1999']\n", "deny.gt_prefixes[0]"),
    ],
)
def test_invalid_fields_are_named(extra: str, field: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(POLICY_TOML + extra)
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(field + ":")


def test_salt_is_required_and_long_enough() -> None:
    without = POLICY_TOML.replace('salt = "test-salt-0123456789abcdef"\n', "")
    with pytest.raises(PolicyError, match="salt: is required"):
        parse_policy(without)
    short = POLICY_TOML.replace("test-salt-0123456789abcdef", "short")
    with pytest.raises(PolicyError, match="salt: must be at least 16 bytes"):
        parse_policy(short)


def test_toml_syntax_errors_are_policy_errors() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy(POLICY_TOML + "\n[home\n")


def test_home_is_required() -> None:
    with pytest.raises(PolicyError, match=r"^home\.mcc: is required"):
        parse_policy('salt = "0123456789abcdef0123"\n')


@pytest.mark.parametrize(
    ("opcode", "ac", "category"),
    [
        (46, (21, 3), Category.CAT3),  # mo-ForwardSM
        (46, (25, 2), Category.SMS),  # forwardSM, MT
        (46, (25, 3), Category.CAT1),  # not a pair TS 29.002 defines
        (71, (29, 3), Category.CAT1),
        (70, (28, 3), Category.CAT2),
        (2, (1, 3), Category.CAT3),
        (7, (1, 3), Category.CAT2),  # ISD inside networkLocUp
        (45, (20, 3), Category.SMS),
        (45, None, Category.SMS),  # no context known: the opcode's worst case
        (46, None, Category.CAT3),
        (16, None, Category.CAT1),
        (200, (20, 3), Category.CAT1),
    ],
)
def test_default_categories_key_on_operation_and_context(
    opcode: int, ac: tuple[int, int] | None, category: Category
) -> None:
    assert category_of(opcode, ac) is category


@pytest.mark.parametrize("salt", [b"s" * 16, b"t" * 64, b"u" * 65, "sel-ünïcode-salt!".encode()])
def test_the_engines_hash_is_the_codecs_salted_hash(salt: bytes) -> None:
    """One published hash across herald: HMAC-SHA256(salt, "kind:id"), truncated."""
    from herald.signaling.policy.prefix import SubscriberHasher
    from herald.signaling.privacy import salted_hash

    hasher = SubscriberHasher(salt)
    for kind, ident in (("imsi", "001010000000001"), ("msisdn", "19995550001"), ("gt", "")):
        assert hasher(kind, ident) == salted_hash(salt, ident, kind=kind)
    assert hasher("imsi", "001010000000001") != hasher("msisdn", "001010000000001")


def test_prefix_map_finds_the_longest_prefix() -> None:
    from herald.signaling.policy.prefix import PrefixMap

    table = PrefixMap([("1", "a"), ("199", "b"), ("1999", "c"), ("44", "d")])
    assert [table.longest(d) for d in ("19990", "1998", "12", "1", "44", "4", "")] == [
        "c",
        "b",
        "a",
        "a",
        "d",
        None,
        None,
    ]
    assert not PrefixMap() and "4455" in table and "55" not in table
