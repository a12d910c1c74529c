"""The ``[verify]`` settings and the SMS texts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "MAX_CODE_LENGTH", "MIN_CODE_LENGTH", "TEMPLATES", "USE_CASES", "Autofill",
    "VerifySettings", "render",
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


def render(locale: str, app: str, code: str, autofill: Autofill) -> str:
    """The SMS: the locale's text, then the Android app hash line and the iOS
    domain-bound line where configured. The iOS line goes last because iOS
    reads only the last line; SMS Retriever finds the hash anywhere in it."""
    lines = [TEMPLATES[locale].format(code=code, app=app)]
    if autofill.android_app_hash or autofill.ios_domain:
        lines.append("")
    if autofill.android_app_hash:
        lines.append(autofill.android_app_hash)
    if autofill.ios_domain:
        lines.append(f"@{autofill.ios_domain} #{code}")
    return "\n".join(lines)
