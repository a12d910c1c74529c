"""``herald optouts``: an account's opt-out list from the shell.

Numbers that sent STOP (or STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) to an
account's number are on its list, and herald refuses to send to them from
that account; START or UNSTOP takes them off. These commands list, add,
remove, import and export numbers; a running herald applies a change within
a few seconds. Changes are recorded in the audit log (``herald admin audit``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald._store_cli import add_store_option, open_store
from herald.accounts._service import Accounts
from herald.accounts.cli import DEFAULT_DATA_DIR
from herald.admin import Admin, AdminError, AdminKeys, check_numbers, cli_actor, opt_out_csv
from herald.intake import parse_opt_out_rows
from herald.store import Store, StoreError

__all__ = ["register"]

Action = Callable[[argparse.Namespace, Store, Admin, int], Awaitable[None]]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "optouts", help="list, add, remove, import and export an account's opted-out numbers",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )  # fmt: skip
    actions = parser.add_subparsers(dest="optouts_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="herald's data directory (default: ./herald-data)")
    add_store_option(common)
    common.add_argument("--account", required=True, help="the account's name")

    listing = actions.add_parser("list", parents=[common], help="print the opted-out numbers")
    listing.set_defaults(func=_command(_list))
    for verb, out, what in (("add", True, "opt numbers out"),
                            ("remove", False, "opt numbers back in")):
        change = actions.add_parser(verb, parents=[common], help=what)
        change.add_argument("numbers", nargs="+", metavar="NUMBER", help="E.164 numbers")
        change.set_defaults(func=_command(_changer(out)))
    imports = actions.add_parser(
        "import", parents=[common],
        help="opt out the numbers of a CSV file (the first column; a header is skipped)",
    )  # fmt: skip
    imports.add_argument("file", type=Path, metavar="FILE.csv", help="'-' reads standard input")
    imports.set_defaults(func=_command(_import))
    export = actions.add_parser("export", parents=[common],
                                help="write the list as CSV (number,opted_out_at,source)")
    export.add_argument("--output", "-o", type=Path, help="a file (default: standard output)")
    export.set_defaults(func=_command(_export))


def _command(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            asyncio.run(_with_store(action, args))
        except (AdminError, StoreError, ValueError, OSError) as exc:
            print(f"herald optouts: {exc}", file=sys.stderr)
            return 1
        return 0

    return run


async def _with_store(action: Action, args: argparse.Namespace) -> None:
    store = await open_store(args.data_dir, args.store)
    accounts = Accounts(store)
    keys = AdminKeys(store)
    try:
        admin = Admin(store, accounts, keys)
        account = await admin.account(args.account)
        await action(args, store, admin, account.id)
    finally:
        keys.close()
        accounts.close()
        await store.aclose()


def _changer(opted_out: bool) -> Action:
    async def change(args: argparse.Namespace, store: Store, admin: Admin,
                     account_id: int) -> None:
        numbers = check_numbers(args.numbers)  # InvalidInput: nothing changed
        changed = await admin.change_opt_outs(cli_actor(), args.account, numbers, opted_out,
                                              "cli")
        state = "opted out" if opted_out else "opted back in"
        print(f"{changed} of {len(numbers)} numbers {state} for {args.account}"
              f" ({len(numbers) - changed} already were).")

    return change


async def _list(args: argparse.Namespace, store: Store, admin: Admin,
                account_id: int) -> None:
    entries = await store.list_opt_outs(account_id)
    for e in entries:
        print(f"+{e.number}  {_when(e.updated_at)}  {e.source}")
    print(f"{len(entries)} opted-out numbers for {args.account}.", file=sys.stderr)


async def _import(args: argparse.Namespace, store: Store, admin: Admin,
                  account_id: int) -> None:
    if str(args.file) == "-":
        numbers = parse_opt_out_rows(csv.reader(sys.stdin))
    else:
        with args.file.open(newline="", encoding="utf-8-sig") as f:
            numbers = parse_opt_out_rows(csv.reader(f))
    changed = await admin.change_opt_outs(cli_actor(), args.account, numbers, True, "import")
    print(f"Imported {len(numbers)} numbers for {args.account}: {changed} newly opted out.")


async def _export(args: argparse.Namespace, store: Store, admin: Admin,
                  account_id: int) -> None:
    entries = await store.list_opt_outs(account_id)
    text = opt_out_csv(entries)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"Wrote {len(entries)} numbers to {args.output}.", file=sys.stderr)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
