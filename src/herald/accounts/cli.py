"""``herald accounts``: create accounts and their credentials from the shell.

Secrets are printed exactly once, when issued; herald keeps only their
argon2id hashes, so a lost key is replaced (``issue-key``, ``add-smpp`` with a
new system_id), never recovered. The commands work while ``herald serve``
runs on the same data directory (SQLite lets them write alongside it); a
running server applies a change made here within a few seconds (see
docs/admin.md). Every change is recorded in the audit log as made by
``cli:<your user name>`` (``herald admin audit``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from herald._store_cli import STORE_HELP, open_store
from herald.accounts._controls_cli import (
    add_control_options,
    apply_control_options,
    describe_controls,
)
from herald.accounts._credentials import (
    API_KEY_PREFIX,
    DEFAULT_SMPP_PASSWORD_LENGTH,
    AccountsError,
    InvalidCredentials,
    parse_api_key,
)
from herald.accounts._fraud_cli import add_fraud_options, fraud_command
from herald.accounts._service import DEFAULT_BIND_LIMIT, DEFAULT_RATE_LIMIT, Accounts
from herald.accounts._webhook import load_master_key, webhook_secret
from herald.admin import Admin, AdminError, AdminKeys, cli_actor
from herald.intake import IntakeError, check_callback_url
from herald.store import (
    DEFAULT_PRIORITY,
    MAX_WEBHOOK_BATCH,
    MAX_WEBHOOK_BATCH_WAIT,
    Account,
    Priority,
    StatusEvents,
    Store,
    StoreError,
)

__all__ = ["DEFAULT_DATA_DIR", "register"]

DEFAULT_DATA_DIR = Path("herald-data")

Action = Callable[[argparse.Namespace, Store, Admin], Awaitable[None]]


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
    common.add_argument("--store", metavar="URL", help=STORE_HELP)

    create = actions.add_parser(
        "create", parents=[common], help="create an account and print its API key once"
    )
    create.add_argument("name", help="account name: letters, digits, '.', '_', '-'")
    create.add_argument(
        "--rate-limit",
        type=_rate,
        default=DEFAULT_RATE_LIMIT,
        help=f"messages per second, or 'unlimited' (default {DEFAULT_RATE_LIMIT:g})",
    )
    create.add_argument(
        "--bind-limit",
        type=int,
        default=DEFAULT_BIND_LIMIT,
        help=f"simultaneous SMPP binds (default {DEFAULT_BIND_LIMIT})",
    )
    _webhook_options(create)
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

    settings = actions.add_parser(
        "set", parents=[common],
        help="change an account's limits, controls and webhook settings",
        description="Change the settings given; the others stay (a list given replaces the"
        " list). Webhook settings apply to events written from then on; a running server"
        " reads every change within a few seconds. docs/accounts.md describes the controls.",
    )  # fmt: skip
    settings.add_argument("name", help="the account")
    settings.add_argument("--rate-limit", type=_rate, help="messages per second, or 'unlimited'")
    settings.add_argument("--bind-limit", type=int, help="simultaneous SMPP binds")
    add_control_options(settings)
    _webhook_options(settings)
    settings.set_defaults(func=_command(_set))

    fraud = actions.add_parser(
        "fraud", parents=[common],
        help="an account's pumping defence: mode, OTP messages, allow/deny lists, ceilings",
        description="Change the settings given; the others stay (a list given replaces the"
        " list). A running server reads them within a few seconds. docs/fraud.md, \"Live\".",
    )  # fmt: skip
    add_fraud_options(fraud)
    fraud.set_defaults(func=_command(fraud_command))

    revoke = actions.add_parser("revoke-key", parents=[common], help="revoke an API key")
    revoke.add_argument("key_id", metavar="KEY",
                        help="the key as printed (hk_<id>_<secret>), or its id (the part after"
                        " 'hk_')")
    revoke.set_defaults(func=_command(_revoke_key))

    remove = actions.add_parser("remove-smpp", parents=[common],
                                help="remove an SMPP login (its binds are refused from then on)")
    remove.add_argument("system_id")
    remove.set_defaults(func=_command(_remove_smpp))

    reset = actions.add_parser("reset-smpp", parents=[common],
                               help="give an SMPP login a new password, printed once")
    reset.add_argument("system_id")
    reset.add_argument("--password-length", type=int, default=DEFAULT_SMPP_PASSWORD_LENGTH,
                       help="password length (default 8)")
    reset.set_defaults(func=_command(_reset_smpp))

    for verb, disabled, what in (("disable", True, "refuse its API keys and SMPP logins and"
                                  " close its binds (within seconds on a running server)"),
                                 ("enable", False, "accept its credentials again")):
        toggle = actions.add_parser(verb, parents=[common], help=f"{verb} an account: {what}")
        toggle.add_argument("name", help="the account")
        toggle.set_defaults(func=_command(functools.partial(_toggle, disabled=disabled)))


def _rate(value: str) -> float:
    if value.strip().lower() in ("unlimited", "inf", "none"):
        return math.inf
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number or 'unlimited'") from None
    if not rate > 0:
        raise argparse.ArgumentTypeError("the rate limit must be positive (or 'unlimited')")
    return rate


def _url_or_none(value: str) -> str | None:
    if value.strip().lower() == "none":
        return None
    try:
        return check_callback_url(value, field="URL")
    except IntakeError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _events(value: str) -> StatusEvents:
    try:
        return StatusEvents.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _priority(value: str) -> Priority | None:
    word = value.strip().lower()
    if word == "none":
        return None
    try:
        return Priority.parse(word)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _on_off(value: str) -> bool:
    word = value.strip().lower()
    if word not in ("on", "off"):
        raise argparse.ArgumentTypeError("say on or off")
    return word == "on"


def _batch(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_WEBHOOK_BATCH:
        raise argparse.ArgumentTypeError(f"a batch holds 1..{MAX_WEBHOOK_BATCH} events")
    return size


def _batch_wait(value: str) -> float:
    try:
        ms = float(value)
    except ValueError:
        ms = -1.0
    if not 0 <= ms <= MAX_WEBHOOK_BATCH_WAIT * 1000:
        raise argparse.ArgumentTypeError(
            f"the wait is 0..{MAX_WEBHOOK_BATCH_WAIT * 1000:g} milliseconds"
        )
    return ms


def _webhook_options(parser: argparse.ArgumentParser) -> None:
    """The webhook options of ``create`` and ``set``; absent from ``args`` unless given."""
    option = functools.partial(parser.add_argument, default=argparse.SUPPRESS)
    option("--callback-url", type=_url_or_none, metavar="URL",
           help="default webhook URL for status events (and inbound, unless --inbound-url);"
           " 'none' removes it")
    option("--callback-events", type=_events, metavar="EVENTS",
           help="status changes posted: 'final' (the default for a new account: delivered,"
           " undelivered, expired, rejected, failed, cancelled), 'all' (sent too), 'none', or"
           " statuses separated by commas; a message may choose its own")
    option("--inbound", type=_on_off, metavar="on|off", help="post inbound messages (default on)")
    option("--inbound-url", type=_url_or_none, metavar="URL",
           help="webhook URL for inbound messages ('none': the callback URL)")
    option("--webhook-batch", type=_batch, metavar="N",
           help='up to N events per POST, as {"events": [...]} (1, the default: one event'
           " per POST)")
    option("--webhook-batch-wait", type=_batch_wait, metavar="MS",
           help="milliseconds a batch waits for more events (default 0: it takes what is due)")
    option("--priority", type=_priority, metavar="CLASS",
           help="priority class of the messages that name none: otp, transactional, bulk,"
           " marketing ('none': transactional)")
    option("--allow-private-url", action="store_true",
           help="accept a URL naming a private, loopback or link-local address (for a herald"
           " with [webhooks] block_private_addresses = false)")


#: ``herald accounts`` option -> the setting it gives (herald.admin.SETTINGS).
_SETTINGS: Final = {
    "rate_limit": "rate_limit",
    "bind_limit": "bind_limit",
    "callback_url": "callback_url",
    "callback_events": "callback_events",
    "inbound": "inbound",
    "inbound_url": "inbound_url",
    "webhook_batch": "webhook_batch",
    "webhook_batch_wait": "webhook_batch_wait_ms",
    "priority": "priority",
}


#: Options whose 'none' removes the setting (None is a value, not "not given").
_NULLABLE: Final = frozenset({"callback_url", "inbound_url", "priority"})


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (an option absent, or None where None
    does not mean "remove it": not given)."""
    given = vars(args)
    return {setting: given[option] for option, setting in _SETTINGS.items()
            if option in given and (given[option] is not None or option in _NULLABLE)}


def _command(action: Action, *, create_store: bool = False) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            asyncio.run(_with_store(action, args, create_store))
        except (AccountsError, AdminError, StoreError, ValueError, OSError) as exc:
            print(f"herald accounts: {exc}", file=sys.stderr)
            return 1
        return 0

    return run


async def _with_store(action: Action, args: argparse.Namespace, create: bool) -> None:
    store = await open_store(args.data_dir, args.store, create=create)
    accounts = Accounts(store)
    keys = AdminKeys(store)
    try:
        await action(args, store, Admin(store, accounts, keys))
    finally:
        keys.close()
        accounts.close()
        await store.aclose()


def _allow_private(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "allow_private_url", False))


async def _create(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    account, key = await admin.create_account(
        cli_actor(), args.name, _settings(args), allow_private_urls=_allow_private(args))
    master_key = load_master_key(args.data_dir)
    secret = webhook_secret(master_key, account.id, account.webhook_secret_version)
    print(f"Created account {account.name!r} (id {account.id}).")
    print("API key (shown once; herald keeps only a hash):")
    print(f"  {key.key}")
    print("Webhook signing secret (derived from <data-dir>/master.key; back that file up):")
    print(f"  {secret}")


async def _add_smpp(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    account, issued = await admin.add_smpp(
        cli_actor(), args.name, args.system_id, args.password_length)
    print(f"SMPP login for account {account.name!r} (shown once; herald keeps only a hash):")
    print(f"  system_id: {issued.system_id}")
    print(f"  password:  {issued.password}")


async def _issue_key(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    account, key = await admin.issue_api_key(cli_actor(), args.name)
    print(f"New API key for account {account.name!r} (shown once; herald keeps only a hash):")
    print(f"  {key.key}")


async def _set(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    account = await admin.account(args.name)
    controls = apply_control_options(await store.get_controls(account.id), args)  # checked first
    changed = await admin.update_account(
        cli_actor(), args.name, _settings(args), allow_private_urls=_allow_private(args))
    new_controls = await admin.set_controls(cli_actor(), args.name, controls)
    print(f"Account {changed.name!r}:")
    for line in (*_describe(changed), *describe_controls(new_controls)):
        print(f"  {line}")


def _describe(a: Account) -> list[str]:
    batch = ("one event per POST" if a.webhook_batch_max == 1 else
             f"up to {a.webhook_batch_max} events per POST, waiting up to"
             f" {a.webhook_batch_wait * 1000:g} ms")  # fmt: skip
    rate = "unlimited" if math.isinf(a.rate_limit) else f"{a.rate_limit:g} messages/s"
    return [
        f"rate limit:      {rate}",
        f"bind limit:      {a.bind_limit}",
        f"callback URL:    {a.callback_url or '-'}",
        f"callback events: {a.webhook_events.describe()}",
        f"inbound:         {'on' if a.inbound_webhooks else 'off'}"
        f" ({a.inbound_url or a.callback_url or 'no URL'})",
        f"batching:        {batch}",
        f"priority:        {(DEFAULT_PRIORITY if a.priority is None else a.priority).label}"
        + (" (the default)" if a.priority is None else ""),
    ]


async def _revoke_key(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    key_id = args.key_id
    if key_id.startswith(API_KEY_PREFIX + "_"):  # the whole key, as it was printed
        try:
            key_id, _ = parse_api_key(key_id)
        except InvalidCredentials:
            raise ValueError("that is not an API key as herald prints them") from None
    await admin.revoke_api_key(cli_actor(), key_id)
    print(f"Revoked API key {key_id}.")


async def _remove_smpp(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    await admin.remove_smpp(cli_actor(), args.system_id)
    print(f"Removed SMPP login {args.system_id}; a running server refuses its binds from now"
          " on and closes those open within seconds.")


async def _reset_smpp(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    _, issued = await admin.reset_smpp(cli_actor(), args.system_id, args.password_length)
    print(f"New password for SMPP login {issued.system_id} (shown once; herald keeps only a"
          " hash):")
    print(f"  password:  {issued.password}")


async def _toggle(args: argparse.Namespace, store: Store, admin: Admin, *,
                  disabled: bool) -> None:
    account = await admin.set_disabled(cli_actor(), args.name, disabled)
    state = "disabled: its keys and logins are refused" if disabled else "enabled"
    print(f"Account {account.name!r} {state} (within seconds on a running server).")


async def _list(args: argparse.Namespace, store: Store, admin: Admin) -> None:
    rows = [("ID", "NAME", "RATE/S", "BINDS", "API KEYS", "SMPP SYSTEM IDS", "CALLBACK URL",
             "EVENTS")]  # fmt: skip
    for account in await store.list_accounts():
        keys = [k.key_id for k in await store.list_api_keys(account.id) if not k.revoked]
        logins = [c.system_id for c in await store.list_smpp_credentials(account.id)]
        rate = "unlimited" if math.isinf(account.rate_limit) else f"{account.rate_limit:g}"
        rows.append((
            str(account.id), account.name, rate, str(account.bind_limit),
            " ".join(keys) or "-", " ".join(logins) or "-", account.callback_url or "-",
            account.webhook_events.describe(),
        ))  # fmt: skip
    if len(rows) == 1:
        print("No accounts yet: herald accounts create NAME")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
