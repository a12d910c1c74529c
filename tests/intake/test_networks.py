"""Number tables: resolution (ported, then the plan's longest prefix), CSV files
refused line by line, and the stored form (pure: no store, no clock)."""

from __future__ import annotations

import io
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.intake import (
    MAX_REPORTED_PROBLEMS,
    DestinationRules,
    IntakePolicy,
    InvalidDestination,
    Network,
    NumberIndex,
    NumberingPlan,
    PortedNumbers,
    TableFileError,
    normalize_destination,
    parse_plan,
    parse_ported,
    plan_csv,
    ported_csv,
)
from herald.smpp.constants import CommandStatus

TELEKOM = Network("262", "01", "Telekom")
VODAFONE = Network("262", "02", "Vodafone")
O2 = Network("262", "03", "O2")
EE = Network("234", "30", "EE")

PLAN_CSV = """\
# an example plan
prefix,mcc,mnc,network
49,262,01,Telekom
4917,262,02,Vodafone
49170,262,03,O2
+447700900,234,30,EE
"""
PORTED_CSV = """\
number,mcc,mnc
491701234567,262,02
491520000001,262,03
447700900999,234,15
"""


def _lines(text: str) -> list[str]:
    return io.StringIO(text, newline="").readlines()


PLAN = parse_plan(_lines(PLAN_CSV))
PORTED = parse_ported(_lines(PORTED_CSV))
INDEX = NumberIndex(PLAN, PORTED)


# -- resolution ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "network", "why"),
    [
        ("491701234567", VODAFONE, "ported: overrides the plan's 49170 (O2)"),
        ("491709999999", O2, "plan: the longest prefix, 49170, wins over 4917 and 49"),
        ("491719999999", VODAFONE, "plan: 4917"),
        ("491520000001", O2, "ported out of a range only the short prefix 49 covers"),
        ("491520000002", TELEKOM, "plan: 49"),
        ("49170", O2, "a number exactly a prefix long"),
        ("4917", VODAFONE, "shorter than the deepest prefix of its segment (49170)"),
        ("491", TELEKOM, "shorter still: 49"),
        ("447700900123", EE, "a '+' in the file is dropped"),
        ("447700900999", Network("234", "15", ""), "ported to a network the plan does not name"),
        ("447911123456", None, "no prefix covers it"),
        ("33612345678", None, "no prefix covers it"),
        ("4", None, "shorter than every prefix"),
    ],
)
def test_ported_first_then_the_longest_plan_prefix(
    number: str, network: Network | None, why: str
) -> None:
    assert INDEX.network_of(number) == network, why


def test_a_ported_number_is_named_as_its_network_in_the_plan() -> None:
    found = INDEX.resolve("491701234567")
    assert (found.ported, found.plan, found.prefix) == (VODAFONE, O2, "49170")
    assert found.network == VODAFONE
    assert INDEX.resolve("447911123456").network is None
    assert NumberIndex(None, PORTED).network_of("491701234567") == Network("262", "02", "")


def test_no_tables_know_no_network() -> None:
    empty = NumberIndex()
    assert not empty.has_plan and empty.network_of("491701234567") is None
    assert NumberIndex(None, PORTED).has_plan is False
    assert INDEX.has_plan


@pytest.mark.parametrize("bad", ["", "12a", "+491701234567", "1234567890123456", "٤٩١"])
def test_lookups_take_e164_digits_only(bad: str) -> None:
    with pytest.raises(ValueError):
        INDEX.network_of(bad)


def test_a_number_with_a_leading_zero_is_in_no_table() -> None:
    # No E.164 number begins with 0; as an integer "0491..." would alias "491...".
    plan = NumberingPlan.build([("491", TELEKOM)])
    ported = PortedNumbers.build([("491701234567", "262", "02")])
    index = NumberIndex(plan, ported)
    assert index.network_of("0491701234567") is None
    assert index.network_of("491701234567") == Network("262", "02", "")


_prefixes = st.dictionaries(
    st.from_regex(r"[1-9][0-9]{0,6}", fullmatch=True),
    st.sampled_from([TELEKOM, VODAFONE, O2, EE]),
    max_size=60,
)
_numbers = st.lists(st.from_regex(r"[1-9][0-9]{0,14}", fullmatch=True), max_size=40)


@settings(max_examples=200, deadline=None)
@given(_prefixes, _numbers)
def test_the_flattened_plan_agrees_with_a_plain_longest_prefix_search(
    prefixes: dict[str, Network], numbers: list[str]
) -> None:
    plan = NumberingPlan.build(prefixes.items())
    # every prefix, and numbers derived from them (shorter, longer), and random ones
    probes = [*numbers, *prefixes, *(p[:-1] for p in prefixes if len(p) > 1),
              *(p + "0" for p in prefixes), *(p + "95" for p in prefixes)]  # fmt: skip
    for number in probes:
        expected = next((number[:k] for k in range(len(number), 0, -1)
                         if number[:k] in prefixes), None)  # fmt: skip
        at = plan.find(number) if number else -1
        got = plan.entry(at) if at >= 0 else None
        assert got == (None if expected is None else (expected, prefixes[expected])), number


# -- acceptance -------------------------------------------------------------------


def _routes(*prefixes: str) -> DestinationRules:
    return DestinationRules(INDEX, lambda digits: digits.startswith(prefixes))


@pytest.mark.parametrize(
    ("to", "rules", "outcome"),
    [
        ("+49 170 9999999", _routes("49"), "491709999999"),
        ("+447700900123", _routes(""), "447700900123"),  # phonenumbers: not assigned; the plan: EE
        ("+447911123456", _routes(""), "unassigned"),  # phonenumbers: assigned; the plan: no range
        ("+491709999999", _routes("44"), "unroutable"),
        ("+12", _routes(""), "too_short"),  # the number's form is checked first
        ("+447911123456", DestinationRules(routable=lambda d: True), "447911123456"),  # no plan
        ("+447700900123", DestinationRules(), "not_valid"),  # no plan: phonenumbers decides
        ("+447700900999", DestinationRules(NumberIndex(None, PORTED)), "not_valid"),
        ("+447700900999", _routes(""), "447700900999"),  # ported, outside the plan's ranges
    ],
)
def test_destinations_outside_the_plan_or_the_routes_are_refused(
    to: str, rules: DestinationRules, outcome: str
) -> None:
    if outcome.isdigit():
        assert normalize_destination(to, rules=rules) == outcome
        return
    with pytest.raises(InvalidDestination) as info:
        normalize_destination(to, field="destination_addr", rules=rules)
    assert (info.value.field, info.value.code) == ("destination_addr", outcome)
    assert info.value.http_status == 422
    assert info.value.smpp_status == CommandStatus.ESME_RINVDSTADR


def test_test_prefixes_skip_the_plan_but_not_the_routes() -> None:
    policy = IntakePolicy(test_prefixes=("999",))
    assert normalize_destination("+999123", policy=policy, rules=_routes("")) == "999123"
    with pytest.raises(InvalidDestination) as info:
        normalize_destination("+999123", policy=policy, rules=_routes("49"))
    assert info.value.code == "unroutable"


# -- CSV ----------------------------------------------------------------------------


def test_columns_in_any_order_extra_columns_comments_bom_and_crlf() -> None:
    text = ("\ufeffNetwork , MNC,country,mcc,prefix\r\n"
            "\r\n# a comment line\r\n"
            '"Telekom, DE",01,DE,262,49\r\n'
            "Vodafone,02,DE,262,4917\r\n")  # fmt: skip
    plan = parse_plan(_lines(text))
    assert list(plan.entries()) == [("49", Network("262", "01", "Telekom, DE")),
                                    ("4917", VODAFONE)]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("", [(0, "no header row")]),
        ("# only a comment\n", [(0, "no header row")]),
        ("prefix,mcc,mnc,network\n", [(0, "has no entries")]),
        ("prefix,mcc,network\n49,262,T\n", [(1, "missing: mnc")]),
        ("prefix,mcc,mnc,network,mcc\n", [(1, "given twice: mcc")]),
        ("prefix,mcc,mnc,network\n"
         "49,262,01,Telekom\n"
         "4x,262,01,T\n"          # line 3
         "049,262,01,T\n"         # line 4: E.164 numbers never begin with 0
         "1234567890123456,262,01,T\n"  # line 5: 16 digits
         "4917,26,02,V\n"         # line 6
         "4917,262,2,V\n"         # line 7
         "4917,262,0002,V\n"      # line 8
         "4917,262,02,\n"         # line 9
         "4917,262,02\n"          # line 10: three fields
         "49,262,02,Vodafone\n",  # line 11: 49 again
         [(3, "prefix '4x'"), (4, "prefix '049'"), (5, "prefix '1234567890123456'"),
          (6, "mcc '26'"), (7, "mnc '2'"), (8, "mnc '0002'"), (9, "network name is empty"),
          (10, "has 3 fields; the header has 4"), (11, "already given on line 2")]),
        ("prefix,mcc,mnc,network\n49,262,01,\"Telekom\n", [(2, "is not CSV")]),
        ("prefix,mcc,mnc,network\n49,262,01," + "x" * 65 + "\n", [(2, "more than 64")]),
    ],
)
def test_a_bad_plan_is_refused_naming_each_line(
    text: str, problems: list[tuple[int, str]]
) -> None:
    with pytest.raises(TableFileError) as info:
        parse_plan(_lines(text))
    got = [(p.line, p.message) for p in info.value.problems]
    assert len(got) == len(problems) == info.value.count, got
    for (line, message), (want_line, fragment) in zip(got, problems, strict=True):
        assert line == want_line and fragment in message, (line, message)
    if problems[0][0]:
        assert f"line {problems[0][0]}: " in str(info.value)


def test_a_bad_ported_file_is_refused_naming_each_line() -> None:
    text = ("number,mcc,mnc\n"
            "491701234567,262,02\n"
            "491701234568,262\n"          # line 3
            "+491701234569,262,03\n"
            "0491701234567,262,02\n"      # line 5
            "491701234567,262,03\n"       # line 6: line 2's number
            "491701234569,262,02\n")      # line 7: line 4's, without the '+'  # fmt: skip
    with pytest.raises(TableFileError) as info:
        parse_ported(_lines(text))
    assert [(p.line, p.message) for p in info.value.problems] == [
        (3, "has 2 fields; the header has 3"),
        (5, "number '0491701234567' is not an E.164 number: 1..15 digits, no leading 0,"
            " an optional '+'"),
        (6, "number 491701234567 is already given on line 2"),
        (7, "number 491701234569 is already given on line 4"),
    ]


def test_a_file_with_many_problems_lists_the_first_and_counts_all() -> None:
    text = "number,mcc,mnc\n" + "x,262,01\n" * 50
    with pytest.raises(TableFileError) as info:
        parse_ported(_lines(text))
    assert info.value.count == 50
    assert len(info.value.problems) == MAX_REPORTED_PROBLEMS
    assert info.value.problems[0].line == 2
    assert "... and 30 more" in str(info.value)


def test_duplicates_in_a_large_ported_file_are_counted() -> None:
    rows = [f"4915{n:08d},262,01\n" for n in range(30)]
    with pytest.raises(TableFileError) as info:
        parse_ported(["number,mcc,mnc\n", *rows, *rows])
    assert info.value.count == 30
    assert info.value.problems[0] == type(info.value.problems[0])(
        32, "number 491500000000 is already given on line 2")


# -- stored form and export -----------------------------------------------------------


def test_tables_survive_their_stored_form_and_csv_export() -> None:
    plan = NumberingPlan.from_bytes(PLAN.to_bytes())
    ported = PortedNumbers.from_bytes(PORTED.to_bytes())
    assert list(plan.entries()) == list(PLAN.entries())
    assert list(ported.entries()) == list(PORTED.entries())
    again = NumberIndex(plan, ported)
    for number in ("491701234567", "491709999999", "4917", "491", "447911123456"):
        assert again.resolve(number) == INDEX.resolve(number)
    assert list(parse_plan(plan_csv(plan)).entries()) == list(PLAN.entries())
    assert list(parse_ported(ported_csv(ported)).entries()) == list(PORTED.entries())
    odd = NumberingPlan.build([("1", Network("310", "410", 'AT&T "Mobility", US'))])
    assert list(parse_plan(plan_csv(odd)).entries()) == list(odd.entries())


def test_a_damaged_stored_table_is_refused() -> None:
    data = PLAN.to_bytes()
    for damaged in (data[:-1], data + b"\0", b"", data[:20], PORTED.to_bytes(),
                    data.replace(b'"262"', b'"26x"', 1)):  # fmt: skip
        with pytest.raises(ValueError):
            NumberingPlan.from_bytes(damaged)
    with pytest.raises(ValueError):
        PortedNumbers.from_bytes(data)
    # well formed, but an entry names a network the table does not list
    stray = PortedNumbers((Network("262", "01"),), array("Q", [4917]), array("H", [1]))
    with pytest.raises(ValueError, match="networks point outside"):
        PortedNumbers.from_bytes(stray.to_bytes())


def test_building_refuses_what_parsing_would() -> None:
    with pytest.raises(ValueError, match="twice"):
        NumberingPlan.build([("49", TELEKOM), ("49", O2)])
    with pytest.raises(ValueError, match="begins with 0"):
        NumberingPlan.build([("049", TELEKOM)])
    with pytest.raises(ValueError, match="twice"):
        PortedNumbers.build([("4917", "262", "01"), ("4917", "262", "02")])
    with pytest.raises(ValueError):
        Network("26", "01")
