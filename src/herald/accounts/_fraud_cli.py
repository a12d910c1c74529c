"""``herald accounts fraud``: an account's pumping-defence settings, customer
controls and last decisions (docs/fraud.md, "Live")."""

from __future__ import annotations

import argparse
import dataclasses
import functools
from decimal import Decimal, InvalidOperation
from typing import Any

from herald.admin import Admin, cli_actor
from herald.rating import MICROS
from herald.store import FraudDecision, FraudMode, FraudSettings, Store

__all__ = ["add_fraud_options", "fraud_command"]

_CLEAR = frozenset({"", "none", "-"})


def _prefixes(value: str) -> tuple[str, ...]:
    if value.strip().lower() in _CLEAR:
        return ()
    entries = tuple(e.strip() for e in value.split(","))
    for entry in entries:
        if not (entry.startswith("+") and entry[1:].isascii() and entry[1:].isdigit()
                and 2 <= len(entry) <= 16):
            raise argparse.ArgumentTypeError(f"{entry!r} is not '+' and 1 to 15 digits")
    return entries


def _caps(value: str) -> dict[str, Decimal]:
    if value.strip().lower() in _CLEAR:
        return {}
    caps: dict[str, Decimal] = {}
    for entry in value.split(","):
        country, _, amount = entry.strip().partition("=")
        try:
            money = Decimal(amount)
        except InvalidOperation:
            money = Decimal(-1)
        if not (len(country) == 2 and country.isascii() and country.isalpha()
                and country.isupper()) or not money.is_finite() or money < 0 or (
                    money * MICROS) % 1:
            raise argparse.ArgumentTypeError(
                f"{entry.strip()!r}: say COUNTRY=AMOUNT, e.g. GB=5.00 (ISO 3166-1 alpha-2;"
                " at most 6 decimals)")
        caps[country] = money
    return caps


def _mode(value: str) -> FraudMode:
    try:
        return FraudMode(value.strip().lower())
    except ValueError:
        raise argparse.ArgumentTypeError("say enforce or monitor") from None


def _on_off(value: str) -> bool:
    word = value.strip().lower()
    if word not in ("on", "off"):
        raise argparse.ArgumentTypeError("say on or off")
    return word == "on"


def add_fraud_options(parser: argparse.ArgumentParser) -> None:
    option = functools.partial(parser.add_argument, default=argparse.SUPPRESS)
    parser.add_argument("name", help="the account")
    option("--mode", type=_mode, metavar="enforce|monitor",
           help="enforce: a block refuses the SMS (403); monitor: record would_block and send")
    option("--otp-messages", type=_on_off, metavar="on|off",
           help="also screen POST /v1/messages with priority otp (default off)")
    option("--allow", type=_prefixes, metavar="PREFIXES",
           help="numbers or prefixes (+4477009,+14155550100) always allowed, the engine not"
           " asked; 'none' clears")
    option("--deny", type=_prefixes, metavar="PREFIXES",
           help="numbers or prefixes always refused (checked first); 'none' clears")
    option("--country-caps", type=_caps, metavar="CC=AMOUNT,...",
           help="money per 24 hours (the account's currency) the defence lets through to a"
           " country: GB=5.00,NG=0; 'none' clears")
    parser.add_argument("--decisions", type=int, default=0, metavar="N",
                        help="also print the account's last N decisions")


def _describe(s: FraudSettings) -> list[str]:
    caps = ", ".join(f"{c} {a:f}" for c, a in sorted(s.country_caps.items())) or "none"
    return [
        f"mode:            {s.mode.value}",
        f"OTP messages:    {'screened' if s.otp_messages else 'not screened'}",
        f"allow:           {', '.join(s.allow) or 'none'}",
        f"deny:            {', '.join(s.deny) or 'none'}",
        f"ceilings/24 h:   {caps}",
    ]


def _decision_line(d: FraudDecision) -> str:
    reasons = "; ".join(f"{r.code} {r.cell}".strip() for r in d.reasons)
    return f"{d.id}  {d.action.value:<11}  {d.to}  {reasons}"


async def fraud_command(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    current = await admin.fraud_settings(args.name)
    given: dict[str, Any] = {f.name: getattr(args, f.name)
                             for f in dataclasses.fields(FraudSettings) if hasattr(args, f.name)}
    settings = await admin.set_fraud_settings(cli_actor(), args.name,
                                              dataclasses.replace(current, **given))
    print(f"Account {args.name!r}, pumping defence:")
    for line in _describe(settings):
        print(f"  {line}")
    if args.decisions > 0:
        found = await admin.fraud_decisions(args.name, args.decisions)
        print(f"Last {len(found)} decisions, newest first:")
        for d in found:
            print(f"  {_decision_line(d)}")
