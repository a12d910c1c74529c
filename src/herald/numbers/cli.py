"""``herald numbers``: the operator's numbering plan and ported numbers.

Each import replaces the whole table from a CSV file (formats in
docs/numbers.md); a file with a bad line is refused whole, every bad line
named. A running herald on the same data directory uses a new table within
a few seconds, without a restart. With a plan loaded, herald refuses numbers
outside its ranges at acceptance (HTTP 422 naming `to`, code `unassigned`;
SMPP ESME_RINVDSTADR). Imports and removals are recorded in the audit log as
made by ``cli:<your user name>`` (``herald admin audit``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from herald._store_cli import add_store_option, file_lines, store_command, store_name
from herald.accounts import Accounts
from herald.admin import Admin, AdminKeys, cli_actor
from herald.intake import (
    IntakeError,
    IntakePolicy,
    Network,
    NumberingPlan,
    PortedNumbers,
    normalize_destination,
    plan_csv,
    ported_csv,
)
from herald.numbers._tables import CHECK_INTERVAL, load_index
from herald.store import (
    NumberTableKind,
    Store,
    StoreError,
)

__all__ = ["DEFAULT_DATA_DIR", "register"]

DEFAULT_DATA_DIR = Path("herald-data")
KINDS = {"plan": NumberTableKind.PLAN, "ported": NumberTableKind.PORTED}
#: Numbers are looked up as herald reads a destination, minus the checks the
#: tables themselves make (a plan decides what is assigned).
_LOOKUP_POLICY = IntakePolicy(require_valid_number=False)

Action = Callable[[argparse.Namespace, Store], Awaitable[int]]
_command = functools.partial(store_command, name="numbers", errors=(StoreError,))


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "numbers",
        help="import, inspect and export the numbering plan and ported numbers",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    actions = parser.add_subparsers(dest="numbers_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="herald's data directory (default: ./herald-data)")
    add_store_option(common)

    plan = actions.add_parser("import-plan", parents=[common],
                              help="replace the numbering plan with a CSV file"
                              " (columns prefix,mcc,mnc,network)")
    plan.add_argument("file", type=Path, help="CSV file, UTF-8, with a header row")
    plan.set_defaults(func=_command(_import_plan, create=True))
    ported = actions.add_parser("import-ported", parents=[common],
                                help="replace the ported numbers with a CSV file"
                                " (columns number,mcc,mnc)")
    ported.add_argument("file", type=Path, help="CSV file, UTF-8, with a header row")
    ported.set_defaults(func=_command(_import_ported, create=True))
    lookup = actions.add_parser("lookup", parents=[common],
                                help="the network of a number (exit 1: none)")
    lookup.add_argument("number", nargs="+",
                        help="E.164, e.g. +491701234567 (spaces allowed: +49 170 1234567)")
    lookup.set_defaults(func=_command(_lookup))
    export = actions.add_parser("export", parents=[common],
                                help="write a table as CSV (what import reads back)")
    export.add_argument("table", choices=sorted(KINDS))
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=_command(_export))
    status = actions.add_parser("status", parents=[common], help="the tables in the store")
    status.set_defaults(func=_command(_status))
    clear = actions.add_parser("clear", parents=[common],
                               help="remove a table (no plan: every number is checked by"
                               " its country's plan only, as without tables)")
    clear.add_argument("table", choices=sorted(KINDS))
    clear.set_defaults(func=_command(_clear))





@contextlib.asynccontextmanager
async def _admin(store: Store) -> AsyncIterator[Admin]:
    """The admin service, through which changes are made and recorded."""
    accounts, keys = Accounts(store), AdminKeys(store)
    try:
        yield Admin(store, accounts, keys)
    finally:
        keys.close()
        accounts.close()


async def _import_plan(args: argparse.Namespace, store: Store) -> int:
    started = time.perf_counter()
    async with _admin(store) as admin:
        done = await admin.import_number_table(cli_actor(), NumberTableKind.PLAN,
                                               file_lines(args.file))  # fmt: skip
    print(f"Numbering plan imported: {done.entries:,} prefixes, {done.networks:,} networks,"
          f" {done.octets:,} octets (generation {done.generation}, {_since(started)}).")
    print(f"A running herald on {store_name(args)} uses it within {CHECK_INTERVAL:g} s.")
    return 0


async def _import_ported(args: argparse.Namespace, store: Store) -> int:
    started = time.perf_counter()
    async with _admin(store) as admin:
        done = await admin.import_number_table(cli_actor(), NumberTableKind.PORTED,
                                               file_lines(args.file))  # fmt: skip
    print(f"Ported numbers imported: {done.entries:,} numbers, {done.networks:,}"
          f" networks, {done.octets:,} octets (generation {done.generation},"
          f" {_since(started)}).")
    print(f"A running herald on {store_name(args)} uses them within {CHECK_INTERVAL:g} s.")
    return 0


def _since(started: float) -> str:
    return f"{time.perf_counter() - started:.2f} s"


def _network(net: Network | None) -> str:
    if net is None:
        return "-"
    return f"{net.mcc}-{net.mnc} {net.name}".rstrip()


async def _lookup(args: argparse.Namespace, store: Store) -> int:
    try:
        digits = normalize_destination("".join(args.number), field="number",
                                       policy=_LOOKUP_POLICY)
    except IntakeError as exc:
        raise ValueError(str(exc)) from None
    _, index = await load_index(store)
    found = index.resolve(digits)
    print(f"+{digits}")
    if index.ported is not None:
        print(f"  ported to  {_network(found.ported)}")
    if index.plan is not None:
        where = f" (prefix {found.prefix})" if found.prefix is not None else ""
        print(f"  plan       {_network(found.plan)}{where}")
    if found.network is not None:
        print(f"  network    {_network(found.network)}")
        return 0
    if index.plan is not None:
        print("  unassigned: no plan range covers it; herald refuses it at acceptance")
    else:
        print("  no numbering plan loaded (herald serve checks numbers with phonenumbers)")
    return 1


async def _export(args: argparse.Namespace, store: Store) -> int:
    kind = KINDS[args.table]
    table = await store.get_number_table(kind)
    if table is None:
        raise ValueError(f"no {args.table} table in {store_name(args)}")
    lines: Iterable[str]
    if kind is NumberTableKind.PLAN:
        lines = plan_csv(NumberingPlan.from_bytes(table.data))
    else:
        lines = ported_csv(PortedNumbers.from_bytes(table.data))
    if args.output is None:
        _write(sys.stdout, lines)
    else:
        with args.output.open("w", encoding="utf-8", newline="") as fh:
            _write(fh, lines)
    return 0


def _write(out: TextIO, lines: Iterable[str]) -> None:
    for line in lines:
        out.write(line)


async def _status(args: argparse.Namespace, store: Store) -> int:
    print(f"generation {await store.number_tables_generation()}")
    for name, kind in sorted(KINDS.items()):
        table = await store.get_number_table(kind)
        if table is None:
            print(f"{name:<7} none")
            continue
        when = datetime.fromtimestamp(table.imported_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{name:<7} {table.entries:,} entries, imported {when}"
              f" (generation {table.generation}), {len(table.data):,} octets")
    return 0


async def _clear(args: argparse.Namespace, store: Store) -> int:
    async with _admin(store) as admin:
        had = await admin.clear_number_table(cli_actor(), KINDS[args.table])
    generation = await store.number_tables_generation()
    print(f"{args.table} table removed (generation {generation})." if had
          else f"There was no {args.table} table.")  # fmt: skip
    return 0
