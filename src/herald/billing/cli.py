"""``herald prices``, ``herald balance`` and ``herald cdr``: billing.

Sell price lists are per account, buy price lists per connector; each import
replaces the whole list from a CSV file (``destination,price``; a bad line
refuses the file, every bad line named). A running herald on the same data
directory charges by a new sell list within a few seconds, without a
restart. Balances are prepaid, in the currency of the price lists, with a
credit limit and a refund policy per account. CDRs are exported as CSV and
summed up into margins. Every change goes through
:class:`herald.admin.BillingAdmin` (as the admin API's do) and is recorded in
the audit log (``herald admin audit``). docs/billing.md describes it all.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from herald._store_cli import add_store_option, file_lines, store_command, store_name
from herald.accounts import Accounts
from herald.admin import REFUND_POLICIES, Admin, AdminError, AdminKeys, BillingAdmin, cli_actor
from herald.billing._lists import CHECK_INTERVAL
from herald.billing._reports import (
    CDR_COLUMNS,
    CDR_PAGE,
    cdr_row,
    margin_key,
    margin_percent,
    money,
    parse_when,
    utc_text,
)
from herald.rating import price_list_csv
from herald.store import (
    Balance,
    PriceSide,
    Store,
    StoreError,
    UnknownAccount,
)

__all__ = ["CDR_COLUMNS", "register"]

DEFAULT_DATA_DIR = Path("herald-data")

Action = Callable[[argparse.Namespace, Store], Awaitable[int]]
_command = functools.partial(store_command, errors=(AdminError, StoreError))


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="herald's data directory (default: ./herald-data)")
    add_store_option(common)
    owner = argparse.ArgumentParser(add_help=False)
    whose = owner.add_mutually_exclusive_group(required=True)
    whose.add_argument("--account", metavar="NAME", help="an account's sell list")
    whose.add_argument("--connector", metavar="NAME",
                       help="a connector's buy list (CDR costs and least-cost routing)")

    prices = subparsers.add_parser(
        "prices", help="import and show sell (account) and buy (connector) price lists",
        description="Price lists: price per segment by MCC/MNC (26201), E.164 country code"
        " (+49) or default; see docs/billing.md. An account with a sell list is charged"
        " for every message it sends.",
    )  # fmt: skip
    actions = prices.add_subparsers(dest="prices_action", metavar="ACTION", required=True)
    imp = actions.add_parser("import", parents=[common, owner],
                             help="replace a price list with a CSV file (columns"
                             " destination,price)")  # fmt: skip
    imp.add_argument("file", type=Path, help="CSV file, UTF-8, with a header row")
    imp.set_defaults(func=_command(_import, name="prices"))
    show = actions.add_parser("show", parents=[common, owner],
                              help="write a price list as CSV (what import reads back)")
    show.set_defaults(func=_command(_show, name="prices"))
    remove = actions.add_parser("remove", parents=[common, owner],
                                help="remove a price list (an account without one is not"
                                " charged)")  # fmt: skip
    remove.set_defaults(func=_command(_remove, name="prices"))
    listing = actions.add_parser("list", parents=[common], help="every price list")
    listing.set_defaults(func=_command(_list, name="prices"))

    balance = subparsers.add_parser(
        "balance", help="an account's prepaid balance, credit limit and refund policy",
        description="Balances are in the currency of the price lists, to 6 decimal places."
        " A message is accepted only if the balance less its price stays at or above"
        " minus the credit limit.",
    )  # fmt: skip
    verbs = balance.add_subparsers(dest="balance_action", metavar="ACTION", required=True)
    show_b = verbs.add_parser("show", parents=[common], help="show an account's balance")
    show_b.add_argument("account", metavar="ACCOUNT", help="account name")
    show_b.set_defaults(func=_command(_balance_show, name="balance"))
    top = verbs.add_parser("top-up", parents=[common],
                           help="add to the balance (a negative amount takes away)")
    top.add_argument("account", metavar="ACCOUNT", help="account name")
    top.add_argument("amount", help="e.g. 100 or 12.50 (at most 6 decimal places)")
    top.set_defaults(func=_command(_top_up, name="balance"))
    setting = verbs.add_parser("set", parents=[common],
                               help="set the credit limit and/or the refund policy")
    setting.add_argument("account", metavar="ACCOUNT", help="account name")
    setting.add_argument("--credit-limit", metavar="AMOUNT",
                         help="how far below zero the balance may go (0: prepaid only)")
    setting.add_argument("--refund-policy", choices=sorted(REFUND_POLICIES),
                         help="none; rejected (refund messages rejected, failed or cancelled);"
                         " undelivered (also undelivered and expired)")  # fmt: skip
    setting.set_defaults(func=_command(_balance_set, name="balance"))

    cdr = subparsers.add_parser(
        "cdr", help="export charging records (CSV) and margin reports",
        description="Times: YYYY-MM-DD (UTC midnight), an RFC 3339 date-time, or epoch"
        " seconds; --from is included, --to is not.",
    )  # fmt: skip
    kinds = cdr.add_subparsers(dest="cdr_action", metavar="ACTION", required=True)
    period = argparse.ArgumentParser(add_help=False)
    period.add_argument("--from", dest="since", required=True, type=_when, metavar="TIME",
                        help="messages accepted at or after (2027-01-01, RFC 3339, epoch s)")
    period.add_argument("--to", dest="until", required=True, type=_when, metavar="TIME",
                        help="... and before this time")
    period.add_argument("--account", metavar="NAME", help="only this account's")
    export = kinds.add_parser("export", parents=[common, period],
                              help="the CDRs of messages accepted in a period, as CSV")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=_command(_export, name="cdr"))
    margin = kinds.add_parser("margin", parents=[common, period],
                              help="revenue, cost and margin of a period")
    margin.add_argument("--by", choices=("account", "connector", "country"), default="account",
                        help="group by account, connector that sent (cost from its buy list)"
                        " or country calling code (default: account)")
    margin.set_defaults(func=_command(_margin, name="cdr"))


def _when(text: str) -> float:
    """A time on the command line: a date (UTC midnight), RFC 3339 or epoch seconds."""
    try:
        return parse_when(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@asynccontextmanager
async def _billing(store: Store) -> AsyncIterator[BillingAdmin]:
    """The service that makes (and records, as ``cli:<os user>``) the changes."""
    accounts, keys = Accounts(store), AdminKeys(store)
    try:
        yield BillingAdmin(Admin(store, accounts, keys))
    finally:
        keys.close()
        accounts.close()


def _side(args: argparse.Namespace) -> tuple[PriceSide, str]:
    if args.account is not None:
        return PriceSide.SELL, args.account
    return PriceSide.BUY, args.connector


async def _account_id(store: Store, name: str) -> int:
    try:
        return (await store.get_account_by_name(name)).id
    except UnknownAccount:
        raise UnknownAccount(f"no account named {name!r} (herald accounts list)") from None


async def _owner(args: argparse.Namespace, store: Store) -> tuple[PriceSide, str, str]:
    """Side, stored owner and how to name it, from ``--account`` / ``--connector``."""
    if args.account is not None:
        return PriceSide.SELL, str(await _account_id(store, args.account)), (
            f"account {args.account!r}")  # fmt: skip
    return PriceSide.BUY, args.connector, f"connector {args.connector!r}"





# -- prices --------------------------------------------------------------------------


async def _import(args: argparse.Namespace, store: Store) -> int:
    side, _, who = await _owner(args, store)
    async with _billing(store) as billing:
        lines = file_lines(args.file, "price list refused")
        done = await billing.import_price_list(cli_actor(), *_side(args), lines)
        balance, _ = await billing.balance(args.account) if side is PriceSide.SELL else (
            None, False)  # fmt: skip
    print(f"Price list of {who} imported: {done.entries:,} entries"
          f" (generation {done.generation}).")  # fmt: skip
    if balance is not None:
        print(f"A running herald on {store_name(args)} charges by it within {CHECK_INTERVAL:g} s;"
              f" the account's balance is {money(balance.balance)}"
              f" (credit limit {money(balance.credit_limit)}).")
    else:
        print(f"CDRs of messages it sends are costed by it; a running herald on"
              f" {store_name(args)} routes least-cost rules by it within {CHECK_INTERVAL:g} s.")
    return 0


async def _show(args: argparse.Namespace, store: Store) -> int:
    await _owner(args, store)  # the account's name is checked first, as for import
    async with _billing(store) as billing:
        prices, _ = await billing.price_list(*_side(args))
    sys.stdout.writelines(price_list_csv(prices))
    return 0


async def _remove(args: argparse.Namespace, store: Store) -> int:
    _, _, who = await _owner(args, store)
    async with _billing(store) as billing:
        generation = await billing.remove_price_list(cli_actor(), *_side(args))
    print(f"Price list of {who} removed (generation {generation}).")
    return 0


async def _list(args: argparse.Namespace, store: Store) -> int:
    rows: list[tuple[str, ...]] = [("kind", "owner", "entries", "imported")]
    async with _billing(store) as billing:
        for info in await billing.price_lists():
            kind = "account" if info.side is PriceSide.SELL else "connector"
            rows.append((kind, info.owner, str(info.entries), utc_text(info.imported_at)))
    _table(rows, sys.stdout)
    return 0


# -- balances ------------------------------------------------------------------------


def _print_balance(name: str, balance: Balance, billed: bool) -> None:
    print(f"account:        {name}{'' if billed else ' (no sell price list: not charged)'}")
    print(f"balance:        {money(balance.balance)}")
    print(f"credit limit:   {money(balance.credit_limit)}")
    print(f"available:      {money(balance.available)}")
    print(f"refund policy:  {balance.refund_policy.label}")


async def _show_balance(store: Store, name: str) -> int:
    async with _billing(store) as billing:
        _print_balance(name, *await billing.balance(name))
    return 0


async def _balance_show(args: argparse.Namespace, store: Store) -> int:
    await _account_id(store, args.account)
    return await _show_balance(store, args.account)


async def _top_up(args: argparse.Namespace, store: Store) -> int:
    await _account_id(store, args.account)
    async with _billing(store) as billing:
        await billing.top_up(cli_actor(), args.account, args.amount, allow_negative=True)
    return await _show_balance(store, args.account)


async def _balance_set(args: argparse.Namespace, store: Store) -> int:
    if args.credit_limit is None and args.refund_policy is None:
        print("herald balance: give --credit-limit and/or --refund-policy", file=sys.stderr)
        return 2
    await _account_id(store, args.account)
    async with _billing(store) as billing:
        await billing.set_balance(cli_actor(), args.account, credit_limit=args.credit_limit,
                                  refund_policy=args.refund_policy)  # fmt: skip
    return await _show_balance(store, args.account)


# -- CDRs ----------------------------------------------------------------------------


async def _period(args: argparse.Namespace, store: Store) -> int | None:
    if args.until <= args.since:
        raise ValueError("--to must be after --from")
    return None if args.account is None else await _account_id(store, args.account)


async def _export(args: argparse.Namespace, store: Store) -> int:
    account_id = await _period(args, store)
    names = {a.id: a.name for a in await store.list_accounts()}
    out: TextIO = sys.stdout if args.output is None else args.output.open(
        "w", newline="", encoding="utf-8")  # fmt: skip
    count = 0
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CDR_COLUMNS)
        after: tuple[float, str] | None = None
        while True:
            page = await store.list_cdrs(args.since, args.until, account_id=account_id,
                                         after=after, limit=CDR_PAGE)  # fmt: skip
            writer.writerows(cdr_row(c, names) for c in page)
            count += len(page)
            if len(page) < CDR_PAGE:
                break
            after = (page[-1].accepted_at, page[-1].message_id)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.output is not None:
        print(f"{count:,} CDRs written to {args.output}.")
    return 0


def _table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(w) if k == 0 else cell.rjust(w)
                 for k, (cell, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        out.write("  ".join(cells).rstrip() + "\n")


async def _margin(args: argparse.Namespace, store: Store) -> int:
    account_id = await _period(args, store)
    found = await store.margin(args.since, args.until, args.by, account_id=account_id)
    names = {str(a.id): a.name for a in await store.list_accounts()}
    rows: list[tuple[str, ...]] = [
        (args.by, "messages", "revenue", "cost", "margin", "margin %", "no buy price")]
    total = [0, 0, 0, 0]
    for r in found:
        rows.append((margin_key(r, args.by, names), f"{r.messages:,}", money(r.revenue),
                     money(r.cost), money(r.margin), margin_percent(r.margin, r.revenue),
                     f"{r.unpriced:,}"))  # fmt: skip
        for k, v in enumerate((r.messages, r.revenue, r.cost, r.unpriced)):
            total[k] += v
    rows.append(("total", f"{total[0]:,}", money(total[1]), money(total[2]),
                 money(total[1] - total[2]), margin_percent(total[1] - total[2], total[1]),
                 f"{total[3]:,}"))  # fmt: skip
    _table(rows, sys.stdout)
    return 0
