"""The ``[verify]`` settings and the SMS texts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "MAX_CODE_LENGTH", "MAX_TEMPLATE_LENGTH", "MIN_CODE_LENGTH", "TEMPLATES", "USE_CASES",
    "Autofill", "VerifySettings", "check_locale", "check_template", "render",
]

MIN_CODE_LENGTH: Final = 4
MAX_CODE_LENGTH: Final = 10
USE_CASES: Final = ("signup", "login", "password_reset", "transaction", "other")

#: The built-in texts by locale; ``{code}`` and ``{app}`` are filled in.
TEMPLATES: Final[Mapping[str, str]] = {
    "en": "{code} is your {app} verification code.",
    "de": "{code} ist Ihr {app} Bestätigungscode.",
    "fr": "{code} est votre code de vérification {app}.",
    "es": "{code} es tu código de verificación de {app}.",
}

#: An account's own text (docs/verify.md, "Texts"): with a 10-digit code, a
#: 32-character app and the autofill lines it still fits a few SMS segments.
MAX_TEMPLATE_LENGTH: Final = 320
#: A locale an account names its texts by: a BCP 47-like tag (``pt-BR``), or
#: ``default`` (the account's text for any locale it has no text of).
_LOCALE: Final = re.compile(r"default|[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_PLACEHOLDER: Final = re.compile(r"\{[^{}]*\}|[{}]")

#: Android's SMS Retriever identifies the app by an 11-character hash of its
#: package name and signing key (base64 alphabet).
_ANDROID_HASH: Final = re.compile(r"[A-Za-z0-9+/]{11}")
_DOMAIN: Final = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


@dataclass(frozen=True, slots=True)
class Autofill:
    """An account's lines that let phones fill the code in (docs/verify.md)."""

    android_app_hash: str | None = None  # SMS Retriever's 11-character app hash
    ios_domain: str | None = None  # the last line "@domain #code" (domain-bound codes)
    sender: str | None = None  # the SMS's sender, instead of [verify] sender

    def __post_init__(self) -> None:
        if self.android_app_hash is not None and not _ANDROID_HASH.fullmatch(
            self.android_app_hash
        ):
            raise ValueError("android_app_hash must be 11 characters of A-Z, a-z, 0-9, + or /")
        if self.ios_domain is not None and not _DOMAIN.fullmatch(self.ios_domain):
            raise ValueError("ios_domain must be a lower-case domain name")


@dataclass(frozen=True, slots=True)
class VerifySettings:
    """``[verify]``: how long a code lives, how often it may be checked and sent."""

    ttl: float = 600.0  # seconds a code may be checked after it was sent
    max_checks: int = 5  # checks of one verification
    sends_per_hour: int = 5  # SMS (first and resends) per number and account in an hour
    sender: str = "Verify"  # the SMS's sender (an account's [verify.accounts.<name>] may differ)
    accounts: Mapping[str, Autofill] = field(default_factory=dict)  # by account name

    def __post_init__(self) -> None:
        if not 30 <= self.ttl <= 86_400:
            raise ValueError("ttl must be 30 s to 1 day")
        if not 1 <= self.max_checks <= 100 or not 1 <= self.sends_per_hour <= 1000:
            raise ValueError("max_checks must be 1..100 and sends_per_hour 1..1000")

    def autofill(self, account_name: str) -> Autofill:
        return self.accounts.get(account_name) or Autofill()


def check_locale(locale: str) -> str | None:
    """Why ``locale`` cannot name an account's text, or ``None``."""
    if len(locale) > 35 or not _LOCALE.fullmatch(locale):
        return "a language tag such as en or pt-BR, or default"
    return None


def control_characters(text: str, allowed: str = "") -> bool:
    """Whether ``text`` holds a control character (Unicode Cc) not in ``allowed``:
    none belongs in an SMS's words (U+0000 cannot even be stored by PostgreSQL)."""
    return any(unicodedata.category(c) == "Cc" and c not in allowed for c in text)


def check_template(text: str) -> str | None:
    """Why ``text`` cannot be an account's Verify text, or ``None``: it carries
    ``{code}`` once, may name ``{app}``, and has no other braces (the text is
    filled by replacement, never by ``str.format``)."""
    if not 0 < len(text) <= MAX_TEMPLATE_LENGTH:
        return f"1 to {MAX_TEMPLATE_LENGTH} characters"
    if control_characters(text, "\n"):
        return "no control characters but line breaks (\\n)"
    fields = _PLACEHOLDER.findall(text)
    if fields.count("{code}") != 1:
        return "must contain {code} exactly once"
    if any(f not in ("{code}", "{app}") for f in fields):
        return "only {code} and {app} may appear in braces"
    if "\n@" in "\n" + text:
        return "no line may begin with @ (the iOS autofill line is herald's)"
    return None


def render(locale: str, app: str, code: str, autofill: Autofill,
           template: str | None = None) -> str:
    """The SMS: the account's ``template`` (checked by :func:`check_template`)
    or the locale's built-in text, then the Android app hash line and the iOS
    domain-bound line where configured. The iOS line goes last because iOS
    reads only the last line; SMS Retriever finds the hash anywhere in it."""
    text = TEMPLATES.get(locale, TEMPLATES["en"]) if template is None else template
    lines = [text.replace("{code}", code).replace("{app}", app)]
    if autofill.android_app_hash or autofill.ios_domain:
        lines.append("")
    if autofill.android_app_hash:
        lines.append(autofill.android_app_hash)
    if autofill.ios_domain:
        lines.append(f"@{autofill.ios_domain} #{code}")
    return "\n".join(lines)
