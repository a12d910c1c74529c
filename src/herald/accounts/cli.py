"""``herald accounts``: create accounts and their credentials from the shell.

Secrets are printed exactly once, when issued; herald keeps only their
argon2id hashes, so a lost key is replaced (``issue-key``, ``add-smpp`` with a
new system_id), never recovered. The commands work while ``herald serve``
runs on the same data directory (SQLite lets them write alongside it); a
running server notices a revocation made here within its credential cache's
lifetime (60 s by default).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from herald.accounts._credentials import DEFAULT_SMPP_PASSWORD_LENGTH, AccountsError
from herald.accounts._service import DEFAULT_BIND_LIMIT, DEFAULT_RATE_LIMIT, Accounts
from herald.accounts._webhook import load_master_key, webhook_secret
from herald.store import SQLiteConfig, SQLiteStore, StoreError

__all__ = ["DEFAULT_DATA_DIR", "register"]

DEFAULT_DATA_DIR = Path("herald-data")

Action = Callable[[argparse.Namespace, SQLiteStore, Accounts], Awaitable[None]]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "accounts",
        help="create accounts, API keys and SMPP logins",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    actions = parser.add_subparsers(dest="accounts_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="herald's data directory (default: ./herald-data)",
    )

    create = actions.add_parser(
        "create", parents=[common], help="create an account and print its API key once"
    )
    create.add_argument("name", help="account name: letters, digits, '.', '_', '-'")
    create.add_argument(
        "--rate-limit",
        type=float,
        default=DEFAULT_RATE_LIMIT,
        help=f"messages per second (default {DEFAULT_RATE_LIMIT:g})",
    )
    create.add_argument(
        "--bind-limit",
        type=int,
        default=DEFAULT_BIND_LIMIT,
        help=f"simultaneous SMPP binds (default {DEFAULT_BIND_LIMIT})",
    )
    create.add_argument("--callback-url", help="default webhook URL for status and inbound events")
    create.set_defaults(func=_command(_create, create_store=True))

    smpp = actions.add_parser(
        "add-smpp", parents=[common], help="add an SMPP login and print its password once"
    )
    smpp.add_argument("name", help="the account")
    smpp.add_argument("--system-id", required=True, help="SMPP system_id (1..15 characters)")
    smpp.add_argument(
        "--password-length",
        type=int,
        default=DEFAULT_SMPP_PASSWORD_LENGTH,
        help="password length (default 8, the SMPP 3.4 limit many clients enforce; up to 64)",
    )
    smpp.set_defaults(func=_command(_add_smpp))

    listing = actions.add_parser("list", parents=[common], help="list accounts (no secrets)")
    listing.set_defaults(func=_command(_list))

    issue = actions.add_parser(
        "issue-key", parents=[common], help="issue another API key and print it once"
    )
    issue.add_argument("name", help="the account")
    issue.set_defaults(func=_command(_issue_key))

    revoke = actions.add_parser("revoke-key", parents=[common], help="revoke an API key")
    revoke.add_argument("key_id", help="the key id (the part after 'hk_')")
    revoke.set_defaults(func=_command(_revoke_key))


def _command(action: Action, *, create_store: bool = False) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            asyncio.run(_with_store(action, args, create_store))
        except (AccountsError, StoreError, ValueError, OSError) as exc:
            print(f"herald accounts: {exc}", file=sys.stderr)
            return 1
        return 0

    return run


async def _with_store(action: Action, args: argparse.Namespace, create: bool) -> None:
    store = SQLiteStore.open(SQLiteConfig(data_dir=args.data_dir, create=create))
    accounts = Accounts(store)
    try:
        await action(args, store, accounts)
    finally:
        accounts.close()
        await store.aclose()


async def _create(args: argparse.Namespace, store: SQLiteStore, accounts: Accounts) -> None:
    account, key = await accounts.create(
        args.name,
        time.time(),
        rate_limit=args.rate_limit,
        bind_limit=args.bind_limit,
        callback_url=args.callback_url,
    )
    master_key = load_master_key(args.data_dir)
    secret = webhook_secret(master_key, account.id, account.webhook_secret_version)
    print(f"Created account {account.name!r} (id {account.id}).")
    print("API key (shown once; herald keeps only a hash):")
    print(f"  {key.key}")
    print("Webhook signing secret (derived from <data-dir>/master.key; back that file up):")
    print(f"  {secret}")


async def _add_smpp(args: argparse.Namespace, store: SQLiteStore, accounts: Accounts) -> None:
    account = await store.get_account_by_name(args.name)
    issued = await accounts.add_smpp(
        account.id, args.system_id, time.time(), password_length=args.password_length
    )
    print(f"SMPP login for account {account.name!r} (shown once; herald keeps only a hash):")
    print(f"  system_id: {issued.system_id}")
    print(f"  password:  {issued.password}")


async def _issue_key(args: argparse.Namespace, store: SQLiteStore, accounts: Accounts) -> None:
    account = await store.get_account_by_name(args.name)
    key = await accounts.issue_api_key(account.id, time.time())
    print(f"New API key for account {account.name!r} (shown once; herald keeps only a hash):")
    print(f"  {key.key}")


async def _revoke_key(args: argparse.Namespace, store: SQLiteStore, accounts: Accounts) -> None:
    if not await accounts.revoke_api_key(args.key_id, time.time()):
        raise ValueError(f"no active API key {args.key_id!r}")
    print(f"Revoked API key {args.key_id}.")


async def _list(args: argparse.Namespace, store: SQLiteStore, accounts: Accounts) -> None:
    rows = [("ID", "NAME", "RATE/S", "BINDS", "API KEYS", "SMPP SYSTEM IDS", "CALLBACK URL")]
    for account in await store.list_accounts():
        keys = [k.key_id for k in await store.list_api_keys(account.id) if not k.revoked]
        logins = [c.system_id for c in await store.list_smpp_credentials(account.id)]
        rows.append((
            str(account.id), account.name, f"{account.rate_limit:g}", str(account.bind_limit),
            " ".join(keys) or "-", " ".join(logins) or "-", account.callback_url or "-",
        ))  # fmt: skip
    if len(rows) == 1:
        print("No accounts yet: herald accounts create NAME")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
