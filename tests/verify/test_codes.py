"""herald.verify: codes, their keyed hashes, the SMS texts and the [verify] settings."""

from __future__ import annotations

import pytest

from herald.config import ConfigError, parse_config
from herald.verify import (
    TEMPLATES,
    Autofill,
    code_hash,
    code_key,
    code_matches,
    new_code,
    new_salt,
    render,
)


@pytest.mark.parametrize("length", [4, 6, 10])
def test_codes_are_digits_of_the_length(length: int) -> None:
    codes = {new_code(length) for _ in range(50)}
    assert all(len(c) == length and c.isdigit() for c in codes)
    assert len(codes) > 1  # random, not constant


def test_the_hash_needs_the_key_and_the_salt() -> None:
    key, other = code_key(b"k" * 32), code_key(b"j" * 32)
    salt = new_salt()
    stored = code_hash(key, salt, "123456")
    assert b"123456" not in stored and len(stored) == 32
    assert code_matches(key, salt, stored, "123456")
    assert not code_matches(key, salt, stored, "123457")
    assert not code_matches(other, salt, stored, "123456")
    assert not code_matches(key, new_salt(), stored, "123456")


@pytest.mark.parametrize(
    ("autofill", "lines"),
    [
        (Autofill(), ["123456 is your Acme verification code."]),
        (Autofill(android_app_hash="FA+9qCX9VSu"),
         ["123456 is your Acme verification code.", "", "FA+9qCX9VSu"]),
        (Autofill(ios_domain="acme.example"),
         ["123456 is your Acme verification code.", "", "@acme.example #123456"]),
        (Autofill("FA+9qCX9VSu", "acme.example"),
         ["123456 is your Acme verification code.", "", "FA+9qCX9VSu",
          "@acme.example #123456"]),  # iOS reads the last line only
    ],
)
def test_render(autofill: Autofill, lines: list[str]) -> None:
    assert render("en", "Acme", "123456", autofill).split("\n") == lines


@pytest.mark.parametrize("locale", sorted(TEMPLATES))
def test_every_template_names_the_code_and_the_app(locale: str) -> None:
    text = render(locale, "Acme", "9876", Autofill())
    assert "9876" in text and "Acme" in text


@pytest.mark.parametrize(
    ("table", "path"),
    [
        ({"ttl": 10}, "verify.ttl"),
        ({"max_checks": 0}, "verify.max_checks"),
        ({"colour": 1}, "verify.colour"),
        ({"accounts": {"acme": {"android_app_hash": "short"}}}, "verify.accounts.acme"),
        ({"accounts": {"acme": {"ios_domain": "not a domain"}}}, "verify.accounts.acme"),
        ({"accounts": {"acme": {"nope": 1}}}, "verify.accounts.acme.nope"),
    ],
)
def test_bad_settings_name_their_path(table: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"verify": table})
    assert path in str(info.value)


def test_settings() -> None:
    v = parse_config({"verify": {"ttl": 300, "sends_per_hour": 3, "sender": "Acme",
                                 "accounts": {"acme": {"ios_domain": "acme.example"}}}}).verify
    assert (v.ttl, v.max_checks, v.sends_per_hour, v.sender) == (300.0, 5, 3, "Acme")
    assert v.autofill("acme") == Autofill(ios_domain="acme.example")
    assert v.autofill("other") == Autofill()
