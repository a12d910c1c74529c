"""``herald admin``: admin keys for the admin API, and the audit log.

An admin key (``ha_...``) opens ``/v1/admin`` and nothing else; account API
keys do not open it. A key is printed once when created; herald keeps only
its argon2id hash. A revoked key is refused from its next request, also by
a running herald. Every change made through the admin API or the ``herald``
commands is in the audit log: ``herald admin audit``. See docs/admin.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald._store_cli import STORE_HELP, open_store
from herald.accounts import Accounts
from herald.admin._errors import AdminError
from herald.admin._keys import AdminKeys
from herald.admin._service import Admin, cli_actor
from herald.store import AdminScope, AuditEntry, AuditFilter, StoreError

__all__ = ["register"]

DEFAULT_DATA_DIR = Path("herald-data")
#: Entries ``herald admin audit`` shows unless told otherwise.
DEFAULT_AUDIT_LIMIT = 50
MAX_AUDIT_LIMIT = 10_000

Action = Callable[[argparse.Namespace, Admin], Awaitable[None]]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "admin", help="admin API keys and the audit log of changes",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )  # fmt: skip
    groups = parser.add_subparsers(dest="admin_action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="herald's data directory (default: ./herald-data)")
    common.add_argument("--store", metavar="URL", help=STORE_HELP)

    keys = groups.add_parser("keys", help="create, list and revoke admin keys")
    key_actions = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    create = key_actions.add_parser("create", parents=[common],
                                    help="create an admin key and print it once")
    create.add_argument("name", help="who uses it (the audit log names it): letters, digits,"
                        " '.', '_', '@', '-'")
    create.add_argument("--read-only", action="store_true",
                        help="the key may read (GET) but change nothing")
    create.set_defaults(func=_command(_create_key, create=True))
    listing = key_actions.add_parser("list", parents=[common], help="list admin keys (no secrets)")
    listing.set_defaults(func=_command(_list_keys))
    revoke = key_actions.add_parser("revoke", parents=[common],
                                    help="revoke the active admin key of this name")
    revoke.add_argument("name")
    revoke.set_defaults(func=_command(_revoke_key))

    audit = groups.add_parser("audit", parents=[common],
                              help="the latest changes, oldest first (who, when, what)")
    audit.add_argument("--since", type=_since, metavar="WHEN",
                       help="changes at or after WHEN: an ISO 8601 time (2026-12-07T10:00Z)"
                       " or an age (30m, 12h, 7d)")
    audit.add_argument("--target", metavar="TARGET",
                       help="changes to TARGET only (account:acme); a trailing * matches a"
                       " prefix (account:*)")
    audit.add_argument("--limit", type=_limit, default=DEFAULT_AUDIT_LIMIT,
                       help=f"the latest N changes (default {DEFAULT_AUDIT_LIMIT})")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(func=_command(_audit))


_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _since(value: str) -> float:
    """An epoch time from an ISO 8601 time or an age before now."""
    age = _AGE.fullmatch(value.strip())
    if age:
        return time.time() - float(age[1]) * _UNIT[age[2]]
    try:
        when = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither an ISO 8601 time nor an age like 30m, 12h, 7d") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_AUDIT_LIMIT:
        raise argparse.ArgumentTypeError(f"the limit is 1..{MAX_AUDIT_LIMIT}")
    return limit


def _command(action: Action, *, create: bool = False) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            asyncio.run(_with_admin(action, args, create))
        except (AdminError, StoreError, ValueError, OSError) as exc:
            print(f"herald admin: {exc}", file=sys.stderr)
            return 1
        return 0

    return run


async def _with_admin(action: Action, args: argparse.Namespace, create: bool) -> None:
    async with open_admin(args.data_dir, create=create, url=args.store) as admin:
        await action(args, admin)


@contextlib.asynccontextmanager
async def open_admin(
    data_dir: Path, *, create: bool = False, url: str | None = None
) -> AsyncIterator[Admin]:
    """The admin service on the store in ``data_dir`` (or PostgreSQL's at ``url``),
    for a command's length."""
    store = await open_store(data_dir, url, create=create)
    accounts, keys = Accounts(store), AdminKeys(store)
    try:
        yield Admin(store, accounts, keys)
    finally:
        keys.close()
        accounts.close()
        await store.aclose()


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _create_key(args: argparse.Namespace, admin: Admin) -> None:
    scope = AdminScope.READ if args.read_only else AdminScope.WRITE
    issued = await admin.issue_admin_key(cli_actor(), args.name, scope)
    print(f"Admin key {issued.name!r} ({scope.value}; shown once, herald keeps only a hash):")
    print(f"  {issued.key}")
    print("Use it as 'Authorization: Bearer <key>' on /v1/admin/... only.")


async def _list_keys(args: argparse.Namespace, admin: Admin) -> None:
    rows = [("NAME", "ID", "SCOPE", "CREATED", "REVOKED")]
    for k in await admin.store.list_admin_keys():
        rows.append((k.name, k.key_id, k.scope.value, _time(k.created_at), _time(k.revoked_at)))
    if len(rows) == 1:
        print("No admin keys yet: herald admin keys create NAME")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


async def _revoke_key(args: argparse.Namespace, admin: Admin) -> None:
    await admin.revoke_admin_key(cli_actor(), args.name)
    print(f"Revoked admin key {args.name!r}: refused from its next request on.")


def _line(entry: AuditEntry) -> str:
    changes = json.dumps(dict(entry.changes), ensure_ascii=False, separators=(",", ":"))
    return f"{_time(entry.at)}  #{entry.seq}  {entry.actor}  {entry.action}  {entry.target}" \
        f"  {changes}"


async def _audit(args: argparse.Namespace, admin: Admin) -> None:
    entries = await admin.audit(AuditFilter(since=args.since, target=args.target,
                                            limit=args.limit))  # fmt: skip
    if not entries and not args.json:
        print("No changes recorded" + (" that match." if args.since or args.target else " yet."))
    for entry in reversed(entries):  # oldest first, as a log reads
        if args.json:
            print(json.dumps({"seq": entry.seq, "at": _time(entry.at), "actor": entry.actor,
                              "action": entry.action, "target": entry.target,
                              "changes": dict(entry.changes)}, ensure_ascii=False))
        else:
            print(_line(entry))
