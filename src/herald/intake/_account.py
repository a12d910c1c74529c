"""Per-account controls, decided: senders, countries, opt-outs, client networks, quota days.

:class:`AccountRules` is an account's :class:`~herald.store.AccountControls`
read once into the forms the checks need (sets, prefixes, networks); the
checks are functions of it and of the data passed in (the opt-out list, the
client's address, ``now``). :meth:`AccountRules.parse` is also how an entry
is checked before it is stored, so a list that was stored always parses.

Refusals are the intake's errors, naming the field in the caller's
vocabulary (``docs/accounts.md`` lists them):

- ``to``: ``country_not_allowed`` (the destination's country is not in the
  account's list), ``opted_out`` (the number sent STOP to the account);
  HTTP 422, SMPP ESME_RINVDSTADR: both are about this destination, and a
  client that drops a destination on ESME_RINVDSTADR does what is wanted;
- ``from``: ``sender_not_allowed`` (not in the account's sender list),
  ``sender_not_allowed_in_country`` (the destination's country takes another
  kind of sender); HTTP 422, SMPP ESME_RINVSRCADR.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

import phonenumbers

from herald.intake._errors import IntakeError, InvalidDestination, InvalidSource, InvalidSubmission
from herald.intake._networks import LineProblem, TableFileError
from herald.intake._numbers import country_of, strip_formatting
from herald.intake._sender import MAX_ALPHANUMERIC_SEPTETS, SenderKind, sender_kind
from herald.store import AccountControls

__all__ = [
    "CONTROL_ENTRY_CHECKS",
    "DAY_SECONDS",
    "NO_ACCOUNT_RULES",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "SENDER_RULE_KINDS",
    "AccountRules",
    "Network",
    "next_quota_day",
    "opt_out_keyword",
    "opt_out_number",
    "parse_opt_out_rows",
    "quota_day",
]

#: A UTC day: quotas count per day since the Unix epoch (POSIX days have no
#: leap seconds, so ``now // 86400`` is the UTC date).
DAY_SECONDS: Final = 86_400
#: Inbound bodies that opt the sender out of an account's messages (CTIA and
#: the UK's PhonepayPlus list these; carriers act on them too).
OPT_OUT_KEYWORDS: Final = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
#: ... and back in.
OPT_IN_KEYWORDS: Final = frozenset({"START", "UNSTOP"})
#: What a sender rule may require of the senders of a country's destinations.
#: ``registered``: an exact entry of the account's sender list (not a pattern).
SENDER_RULE_KINDS: Final = frozenset(
    {"alphanumeric", "numeric", "short_code", "international", "registered"}
)
#: Longest sender pattern: a name (11) or an E.164 number with ``+`` (16), and ``*``.
_MAX_PATTERN = 17
_KEYWORD_TRIM = " \t\r\n.!"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def quota_day(now: float) -> int:
    """The UTC day (days since 1970-01-01) that ``now`` (epoch seconds) falls in."""
    return int(now // DAY_SECONDS)


def next_quota_day(now: float) -> float:
    """Seconds from ``now`` to the next UTC midnight (when a used-up quota renews)."""
    return (quota_day(now) + 1) * DAY_SECONDS - now


def opt_out_keyword(text: str) -> bool | None:
    """``True`` if an inbound body is a STOP-type keyword, ``False`` if it is
    START or UNSTOP, ``None`` for anything else. Case does not matter, nor
    white space or a final ``.`` or ``!`` around the one word."""
    word = text.strip(_KEYWORD_TRIM).upper()
    if word in OPT_OUT_KEYWORDS:
        return True
    if word in OPT_IN_KEYWORDS:
        return False
    return None


def opt_out_number(address: str) -> str | None:
    """An inbound sender as an opt-out list holds it (E.164 digits), or ``None``
    for a sender that is not a number (an alphanumeric name)."""
    digits = strip_formatting(address).removeprefix("+")
    if 0 < len(digits) <= 15 and digits.isdigit() and digits.isascii():
        return digits
    return None


#: Bad lines a refused opt-out file's error lists (it counts them all).
MAX_LISTED_OPT_OUT_PROBLEMS: Final = 10


def parse_opt_out_rows(rows: Iterable[list[str]]) -> list[str]:
    """The numbers (E.164 digits) of an opt-out file's CSV rows: the first column
    of each; a first row that is no number is a header; blank rows are skipped.
    Raises :class:`TableFileError` naming the bad lines (then import nothing)."""
    numbers: list[str] = []
    problems: list[LineProblem] = []
    count = 0
    for line, row in enumerate(rows, 1):
        cell = row[0].strip() if row else ""
        if not cell:
            continue
        number = opt_out_number(cell)
        if number is None:
            if line == 1:
                continue  # a header
            count += 1
            if len(problems) < MAX_LISTED_OPT_OUT_PROBLEMS:
                problems.append(LineProblem(line, f"{cell[:32]!r} is not a phone number"))
            continue
        numbers.append(number)
    if problems:
        raise TableFileError("nothing imported", problems, count)
    return numbers


def _network(entry: str) -> Network:
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP network (CIDR, e.g. 192.0.2.0/24)") from None


def _country(entry: str) -> str:
    code = entry.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{entry!r} is not a country code (ISO 3166-1 alpha-2, e.g. DE)")
    return code


def _pattern(entry: str) -> str:
    body = entry.removesuffix("*")
    if (not body or "*" in body or len(entry) > _MAX_PATTERN or not entry.isprintable()
            or body != body.strip()):  # fmt: skip
        raise ValueError(f"{entry!r} is not a sender or a sender prefix ending in '*'")
    if entry == body and sender_kind(body) is SenderKind.ALPHANUMERIC and (
        len(body) > MAX_ALPHANUMERIC_SEPTETS
    ):
        raise ValueError(f"{entry!r}: an alphanumeric sender has at most"
                         f" {MAX_ALPHANUMERIC_SEPTETS} characters")
    return entry


def _rule(entry: str) -> tuple[str, str]:
    country, sep, kind = entry.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in SENDER_RULE_KINDS:
        raise ValueError(f"{entry!r} is not a sender rule: COUNTRY:KIND, KIND one of"
                         f" {', '.join(sorted(SENDER_RULE_KINDS))}")
    return _country(country), kind


#: The check of one entry of each list of :class:`~herald.store.AccountControls`
#: (raises ``ValueError`` naming the entry): what :meth:`AccountRules.parse`
#: applies, and what the admin service names refused entries by.
CONTROL_ENTRY_CHECKS: Final[Mapping[str, Callable[[str], object]]] = {
    "senders": _pattern, "sender_rules": _rule, "countries": _country,
    "api_networks": _network, "smpp_networks": _network,
}


def _kind_matches(kind: str, sender: str, registered: bool) -> bool:
    actual = sender_kind(sender)
    if kind == "numeric":
        return actual is not SenderKind.ALPHANUMERIC
    if kind == "registered":
        return registered
    return actual.value == kind


@dataclass(frozen=True, slots=True)
class AccountRules:
    """An account's controls in checking form; build with :meth:`parse`."""

    daily_quota: int | None = None
    quota_segments: bool = False
    exact_senders: frozenset[str] = frozenset()
    sender_prefixes: tuple[str, ...] = ()
    sender_rules: Mapping[str, frozenset[str]] = field(default_factory=dict)
    countries: frozenset[str] = frozenset()
    api_networks: tuple[Network, ...] = ()
    smpp_networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, controls: AccountControls) -> AccountRules:
        """Read stored controls; raises ``ValueError`` naming a malformed entry."""
        patterns = [_pattern(p) for p in controls.senders]
        rules: dict[str, set[str]] = {}
        for country, kind in map(_rule, controls.sender_rules):
            rules.setdefault(country, set()).add(kind)
        return cls(
            controls.daily_quota, controls.quota_segments,
            frozenset(p for p in patterns if not p.endswith("*")),
            tuple(p[:-1] for p in patterns if p.endswith("*")),
            {c: frozenset(k) for c, k in rules.items()},
            frozenset(map(_country, controls.countries)),
            tuple(map(_network, controls.api_networks)),
            tuple(map(_network, controls.smpp_networks)),
        )  # fmt: skip

    @property
    def checks_messages(self) -> bool:
        """Whether :meth:`check` can refuse anything but an opted-out number."""
        return bool(self.exact_senders or self.sender_prefixes or self.sender_rules
                    or self.countries)  # fmt: skip

    def check(
        self,
        to: str,
        sender: str,
        opted_out: Container[str] = frozenset(),
        *,
        to_field: str = "to",
        from_field: str = "from",
    ) -> None:
        """Refuse a message (``to`` as E.164 digits, ``sender`` in its stored form)
        the account may not send; raises :class:`InvalidSubmission` with every
        refusal (see the module docstring for the codes)."""
        errors: list[IntakeError] = []
        if to in opted_out:
            errors.append(InvalidDestination(
                to_field, "is on this account's opt-out list (it sent STOP, or was added)",
                "opted_out"))  # fmt: skip
        if self.checks_messages:
            country = country_of(to) if self.countries or self.sender_rules else None
            if self.countries and country not in self.countries:
                errors.append(InvalidDestination(
                    to_field, f"is in a country this account may not send to"
                    f" ({country or 'none'})", "country_not_allowed"))  # fmt: skip
            registered = sender in self.exact_senders
            if (self.exact_senders or self.sender_prefixes) and not (
                registered or sender.startswith(self.sender_prefixes)
            ):
                errors.append(InvalidSource(
                    from_field, "is not one of this account's sender ids",
                    "sender_not_allowed"))  # fmt: skip
            kinds = self.sender_rules.get(country or "")
            if kinds and not any(_kind_matches(k, sender, registered) for k in kinds):
                errors.append(InvalidSource(
                    from_field, f"is not allowed for destinations in {country}: they take"
                    f" {' or '.join(sorted(kinds))} senders",
                    "sender_not_allowed_in_country"))  # fmt: skip
        if errors:
            raise InvalidSubmission(tuple(errors))

    def allows_api_client(self, address: str) -> bool:
        """Whether an API key of the account may be used from ``address``."""
        return _allowed(self.api_networks, address)

    def allows_smpp_client(self, address: str) -> bool:
        """Whether an SMPP login of the account may bind from ``address``."""
        return _allowed(self.smpp_networks, address)


def _allowed(networks: tuple[Network, ...], address: str) -> bool:
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False  # no address (a UNIX socket, a test client): not in any network
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return any(ip in net for net in networks)


NO_ACCOUNT_RULES: Final = AccountRules()
