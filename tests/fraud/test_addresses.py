"""Client address types from the operator's tables (docs/fraud.md, "Live"): the
narrowest range wins, then the AS number; anything else has no type (fail open)."""

from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import pytest

from herald.config import ConfigError, parse_config
from herald.fraud import AddressTypes, parse_asn

TYPES = AddressTypes(
    {"hosting": ["203.0.113.0/24", "2001:db8::/32"], "vpn": ["203.0.113.128/25"],
     "mobile": ["198.51.100.7"]},
    {"residential": ["AS64500", "64501"], "hosting": ["as16509"]})


@pytest.mark.parametrize(("ip", "asn", "expected"), [
    ("203.0.113.7", None, "hosting"),
    ("203.0.113.200", None, "vpn"),  # the narrower range
    ("198.51.100.7", None, "mobile"),  # one address
    ("198.51.100.8", None, None),
    ("2001:db8:5::1", None, "hosting"),
    ("2001:db9::1", None, None),
    ("198.51.100.8", "AS64501", "residential"),  # no range: the AS number's type
    ("203.0.113.7", "AS64500", "hosting"),  # a range wins over the AS number
    (None, "16509", "hosting"),
    (None, "AS7", None),
    ("nonsense", "nonsense", None),  # fail open
    (None, None, None),
])  # fmt: skip
def test_the_type_of_an_address(ip: str | None, asn: str | None, expected: str | None) -> None:
    assert TYPES.type_of(ip, asn) == expected


def test_empty_tables_know_no_type_and_tables_travel_to_other_processes() -> None:
    assert not AddressTypes() and AddressTypes().type_of("203.0.113.7", "AS16509") is None
    assert pickle.loads(pickle.dumps(TYPES)) == TYPES and len(TYPES) == 7


@pytest.mark.parametrize(("text", "expected"), [("AS64500", "AS64500"), ("as0064500", "AS64500"),
                                                ("4294967295", "AS4294967295")])
def test_as_numbers_are_normalised(text: str, expected: str) -> None:
    assert parse_asn(text) == expected


@pytest.mark.parametrize("text", ["", "AS", "AS-1", "4294967296", "AS\uff11\uff12", "AS 1"])
def test_bad_as_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="an AS number"):
        parse_asn(text)


def test_the_tables_come_from_the_config() -> None:
    config = parse_config({"fraud": {"address_types": {"hosting": ["203.0.113.0/24"]},
                                     "asn_types": {"vpn": ["AS9009"]}}})
    assert config.address_types.type_of("203.0.113.9") == "hosting"
    assert config.address_types.type_of("192.0.2.1", "AS9009") == "vpn"
    assert parse_config({}).address_types == AddressTypes()


@pytest.mark.parametrize(("table", "where", "says"), [
    ({"address_types": {"cloud": ["203.0.113.0/24"]}}, "fraud.address_types", "'cloud'"),
    ({"address_types": {"vpn": ["203.0.113.300"]}}, "fraud.address_types", "203.0.113.300"),
    ({"address_types": {"vpn": ["192.0.2.0/24"], "hosting": ["192.0.2.9/24"]}},
     "fraud.address_types", "listed as vpn"),
    ({"address_types": {"vpn": "192.0.2.0/24"}}, "fraud.address_types.vpn", "must be list"),
    ({"asn_types": {"vpn": ["AS1"], "hosting": ["1"]}}, "fraud.asn_types", "listed as vpn"),
    ({"asn_types": {"vpn": ["ASX"]}}, "fraud.asn_types", "an AS number"),
    ({"asns": {}}, "fraud.asns", "unknown setting"),
])  # fmt: skip
def test_bad_tables_name_the_setting(table: dict[str, object], where: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"fraud": table})
    assert str(caught.value).startswith(where) and says in str(caught.value)


def test_the_documented_example_parses() -> None:
    text = (Path(__file__).resolve().parents[2] / "herald.example.toml").read_text()
    start = text.index("# [fraud.address_types]")
    lines = []
    for line in text[start:].splitlines():
        if not line.startswith("# "):
            break
        lines.append(line.removeprefix("# "))
    types = parse_config(tomllib.loads("\n".join(lines))).address_types
    assert types.type_of("203.0.113.200") == "hosting"
    assert types.type_of("198.51.100.9") == "vpn"
    assert types.type_of("192.0.2.1", "AS14061") == "hosting"
