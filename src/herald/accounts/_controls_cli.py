"""The control options of ``herald accounts set`` (``docs/accounts.md``)."""

from __future__ import annotations

import argparse
import functools
from typing import Final

from herald.admin import CONTROLS, apply_controls
from herald.intake import SENDER_RULE_KINDS
from herald.store import AccountControls

__all__ = ["add_control_options", "apply_control_options", "describe_controls"]

#: Words that clear a list (it then restricts nothing).
_CLEAR: Final = frozenset({"", "any", "all", "none", "-"})


def _entries(value: str) -> tuple[str, ...]:
    """A comma-separated list; ``any``/``all``/``none`` is the empty list."""
    if value.strip().lower() in _CLEAR:
        return ()
    entries = tuple(e.strip() for e in value.split(","))
    if not all(entries):
        raise argparse.ArgumentTypeError(f"{value!r} has an empty entry")
    return entries


def _quota(value: str) -> int | None:
    if value.strip().lower() in ("none", "unlimited"):
        return None
    try:
        quota = int(value)
    except ValueError:
        quota = -1
    if quota < 0:
        raise argparse.ArgumentTypeError("the daily quota is a whole number >= 0, or 'none'")
    return quota


def _unit(value: str) -> str:
    word = value.strip().lower()
    if word not in ("messages", "segments"):
        raise argparse.ArgumentTypeError("say messages or segments")
    return word


def add_control_options(parser: argparse.ArgumentParser) -> None:
    """Add the options; each is absent from ``args`` unless given."""
    option = functools.partial(parser.add_argument, default=argparse.SUPPRESS)
    option("--daily-quota", type=_quota, metavar="N",
           help="messages (or segments, --quota-unit) accepted per UTC day; 'none' for no"
           " quota. Beyond it: HTTP 429 until midnight UTC, SMPP ESME_RSUBMITFAIL")
    option("--quota-unit", type=_unit, metavar="messages|segments",
           help="what the daily quota counts (default messages)")
    option("--senders", type=_entries, metavar="LIST",
           help="sender ids the account may use, separated by commas: exact ('ACME',"
           " '+4915112345678', '12345') or a prefix ending in '*' ('ACME*', '+49151*');"
           " 'any' allows every sender")
    option("--sender-rules", type=_entries, metavar="LIST",
           help="COUNTRY:KIND entries: destinations in COUNTRY take only senders of KIND"
           f" ({', '.join(sorted(SENDER_RULE_KINDS))}; 'registered': an exact entry of"
           " --senders); several entries for one country allow any of them; 'none' clears")
    option("--countries", type=_entries, metavar="LIST",
           help="destination countries allowed, ISO 3166-1 alpha-2 codes separated by commas"
           " (DE,FR); 'all' allows every country")
    option("--api-allow", type=_entries, metavar="CIDRS",
           help="client networks the account's API keys may be used from (192.0.2.0/24,"
           "2001:db8::/32); 'any' allows every address")
    option("--smpp-allow", type=_entries, metavar="CIDRS",
           help="client networks the account's SMPP logins may bind from; 'any' allows every"
           " address")


def apply_control_options(controls: AccountControls, args: argparse.Namespace) -> AccountControls:
    """``controls`` with the options given (checked as the admin API checks them);
    raises :class:`~herald.admin.InvalidInput` naming each malformed entry."""
    given = vars(args)
    return apply_controls(controls, {name: given[name] for name in CONTROLS if name in given})


def describe_controls(c: AccountControls) -> list[str]:
    unit = "segments" if c.quota_segments else "messages"
    quota = "none" if c.daily_quota is None else f"{c.daily_quota} {unit} per UTC day"
    return [
        f"daily quota:     {quota}",
        f"senders:         {', '.join(c.senders) or 'any'}",
        f"sender rules:    {', '.join(c.sender_rules) or 'none'}",
        f"countries:       {', '.join(c.countries) or 'all'}",
        f"API from:        {', '.join(c.api_networks) or 'any address'}",
        f"SMPP from:       {', '.join(c.smpp_networks) or 'any address'}",
    ]
