"""Per-account controls, decided (``herald.intake.AccountRules``): tables of cases."""

from __future__ import annotations

import re

import phonenumbers
import pytest

from herald.intake import (
    AccountRules,
    InvalidSubmission,
    country_of,
    next_quota_day,
    normalize_destination,
    opt_out_keyword,
    opt_out_number,
    quota_day,
)
from herald.intake._numbers import _shared_regions
from herald.smpp.constants import CommandStatus
from herald.store import AccountControls

DE = "4915112345678"  # a German mobile number
FR = "33612345678"
US = "14155552671"
UK = "447400123456"


def _refusals(rules: AccountRules, to: str, sender: str,
              opted_out: frozenset[str] = frozenset()) -> list[tuple[str, str]]:  # fmt: skip
    try:
        rules.check(to, sender, opted_out)
    except InvalidSubmission as exc:
        return [(e.field, e.code) for e in exc.errors]
    return []


@pytest.mark.parametrize(
    ("digits", "country"),
    [(DE, "DE"), (FR, "FR"), (US, "US"), ("16135550123", "CA"), (UK, "GB"),
     ("447911123456", "GG"),  # +44 is shared: Guernsey
     ("447700900123", "GB"),  # a drama range, invalid to the library: the main country
     ("999123", None), ("882123456", None), ("", None), ("12ab", None)],
)
def test_the_country_of_a_number(digits: str, country: str | None) -> None:
    assert country_of(digits) == country


SENDERS = AccountControls(senders=("ACME", "+4915199*", "12345", "SHOP*"))


@pytest.mark.parametrize(
    ("sender", "refused"),
    [
        ("ACME", []),
        ("SHOP", []), ("SHOP-DE", []),  # prefix "SHOP*"
        ("+4915199000", []),
        ("12345", []),
        ("acme", [("from", "sender_not_allowed")]),  # exact case
        ("ACMEX", [("from", "sender_not_allowed")]),  # no "ACME*"
        ("1234", [("from", "sender_not_allowed")]),
        ("+4915100000", [("from", "sender_not_allowed")]),
    ],
)
def test_the_sender_list(sender: str, refused: list[tuple[str, str]]) -> None:
    assert _refusals(AccountRules.parse(SENDERS), DE, sender) == refused


RULES = AccountControls(senders=("ACME", "+4915199*", "12345"),
                        sender_rules=("US:numeric", "FR:alphanumeric", "DE:registered",
                                      "DE:short_code", "GB:international"))


@pytest.mark.parametrize(
    ("to", "sender", "refused"),
    [
        (US, "12345", []), (US, "+4915199000", []),
        (US, "ACME", [("from", "sender_not_allowed_in_country")]),
        (FR, "ACME", []),
        (FR, "12345", [("from", "sender_not_allowed_in_country")]),
        (DE, "ACME", []),  # registered: an exact entry
        (DE, "12345", []),  # registered and a short code
        (DE, "+4915199000", [("from", "sender_not_allowed_in_country")]),  # only a prefix
        (UK, "+4915199000", []),
        (UK, "ACME", [("from", "sender_not_allowed_in_country")]),
        ("34612345678", "ACME", []),  # Spain: no rule
    ],
)
def test_per_country_sender_rules(to: str, sender: str, refused: list[tuple[str, str]]) -> None:
    assert _refusals(AccountRules.parse(RULES), to, sender) == refused


GEO = AccountControls(countries=("DE", "FR"))


@pytest.mark.parametrize(
    ("to", "refused"),
    [(DE, []), (FR, []), (US, [("to", "country_not_allowed")]),
     (UK, [("to", "country_not_allowed")]),
     ("999123", [("to", "country_not_allowed")])],  # a test range is in no country
)
def test_geo_permissions(to: str, refused: list[tuple[str, str]]) -> None:
    assert _refusals(AccountRules.parse(GEO), to, "ACME") == refused


def test_an_empty_country_list_allows_every_country() -> None:
    rules = AccountRules.parse(AccountControls())
    assert [_refusals(rules, n, "ANY") for n in (DE, US, "999123")] == [[], [], []]


def test_opted_out_numbers_are_refused_whatever_else_is_set() -> None:
    for controls in (AccountControls(), GEO):
        rules = AccountRules.parse(controls)
        assert _refusals(rules, DE, "ACME", frozenset({DE})) == [("to", "opted_out")]
        assert _refusals(rules, FR, "ACME", frozenset({DE})) == []


def test_every_refusal_is_reported_and_carries_its_smpp_status() -> None:
    rules = AccountRules.parse(AccountControls(senders=("ACME",), countries=("FR",)))
    with pytest.raises(InvalidSubmission) as info:
        rules.check(DE, "OTHER", frozenset({DE}), to_field="destination_addr",
                    from_field="source_addr")
    codes = [(e.field, e.code, e.smpp_status) for e in info.value.errors]
    assert codes == [
        ("destination_addr", "opted_out", CommandStatus.ESME_RINVDSTADR),
        ("destination_addr", "country_not_allowed", CommandStatus.ESME_RINVDSTADR),
        ("source_addr", "sender_not_allowed", CommandStatus.ESME_RINVSRCADR),
    ]
    assert info.value.smpp_status == CommandStatus.ESME_RINVDSTADR
    assert all(e.http_status == 422 for e in info.value.errors)


@pytest.mark.parametrize(
    ("networks", "address", "allowed"),
    [
        ((), "203.0.113.9", True),
        (("127.0.0.0/8",), "127.0.0.1", True),
        (("10.0.0.0/8", "192.0.2.7"), "192.0.2.7", True),
        (("10.0.0.0/8",), "127.0.0.1", False),
        (("10.0.0.0/8",), "::ffff:10.1.2.3", True),  # a dual-stack socket's IPv4 client
        (("2001:db8::/32",), "2001:db8::1", True),
        (("2001:db8::/32",), "10.0.0.1", False),
        (("10.0.0.0/8",), "", False),  # no address: in no network
        (("10.0.0.0/8",), "not-an-address", False),
    ],
)
def test_client_networks(networks: tuple[str, ...], address: str, allowed: bool) -> None:
    rules = AccountRules.parse(AccountControls(api_networks=networks, smpp_networks=networks))
    assert rules.allows_api_client(address) is allowed
    assert rules.allows_smpp_client(address) is allowed


@pytest.mark.parametrize(
    ("controls", "named"),
    [
        (AccountControls(countries=("XX",)), "'XX'"),
        (AccountControls(countries=("Germany",)), "'Germany'"),
        (AccountControls(api_networks=("10.0.0.0/33",)), "'10.0.0.0/33'"),
        (AccountControls(smpp_networks=("example.com",)), "'example.com'"),
        (AccountControls(senders=("A*B",)), "'A*B'"),
        (AccountControls(senders=("*",)), "'*'"),
        (AccountControls(senders=("TWELVECHARSX",)), "'TWELVECHARSX'"),
        (AccountControls(sender_rules=("DE",)), "'DE'"),
        (AccountControls(sender_rules=("DE:smoke",)), "'DE:smoke'"),
        (AccountControls(sender_rules=("XX:numeric",)), "'XX'"),
    ],
)
def test_malformed_entries_are_named(controls: AccountControls, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        AccountRules.parse(controls)


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", True), ("stop", True), ("  Stop\n", True), ("STOP.", True), ("stop!", True),
        ("STOPALL", True), ("UNSUBSCRIBE", True), ("Cancel", True), ("END", True),
        ("quit", True),
        ("START", False), ("start", False), (" Unstop ", False),
        ("STOP please", None), ("STOPP", None), ("", None), ("STARTS", None),
        ("Don't stop", None), ("S T O P", None),
    ],
)
def test_opt_out_keywords(body: str, keyword: bool | None) -> None:
    assert opt_out_keyword(body) is keyword


@pytest.mark.parametrize(
    ("address", "number"),
    [("4917012345", "4917012345"), ("+49 170 12345", "4917012345"), ("ACME", None),
     ("", None), ("1" * 16, None)],
)
def test_opt_out_numbers(address: str, number: str | None) -> None:
    assert opt_out_number(address) == number


@pytest.mark.parametrize(
    ("now", "day", "to_midnight"),
    [(0.0, 0, 86400.0), (86399.5, 0, 0.5), (86400.0, 1, 86400.0),
     (1_800_000_000.0, 20833, 57600.0)],  # 2027-01-15T08:00:00Z
)
def test_quota_days_are_utc_days(now: float, day: int, to_midnight: float) -> None:
    assert quota_day(now) == day
    assert next_quota_day(now) == pytest.approx(to_midnight)


def test_country_of_agrees_with_the_library_on_every_region() -> None:
    """Whether a number was checked first (its region remembered) or not, the
    country is the library's own ``region_code_for_number``."""
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            digits = phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.E164)[1:]
            expected = phonenumbers.region_code_for_number(example)
            _shared_regions.clear()
            country_of.cache_clear()
            cold = country_of(digits)
            normalize_destination(digits)  # remembers the region of a shared code
            country_of.cache_clear()
            assert cold == country_of(digits) == expected, (region, digits)
            checked += 1
    assert checked > 400
