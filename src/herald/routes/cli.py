"""``herald routes`` and ``herald connectors``: routing rules, buy prices, connector states.

``herald routes import FILE`` stores a routes file (TOML: ordered rules,
account groups, health settings) in place of the rules in force; a file
with a bad field is refused whole, every problem named. ``herald routes
explain`` shows the decision for a message: every rule considered and why
it matched or not, the buy prices (each connector's buy list of ``herald
prices import --connector``) and health figures.
``herald connectors disable NAME`` keeps routing off a connector until
``enable``. A running herald on the same data directory applies each change
within a few seconds, without a restart. Each change is recorded in the
audit log as made by ``cli:<your user name>`` (``herald admin audit``).
See docs/routing.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from herald._store_cli import add_store_option, store_command, store_name
from herald.accounts import Accounts
from herald.admin import Admin, AdminError, AdminKeys, cli_actor
from herald.config import ConfigError, load_config
from herald.intake import (
    IntakePolicy,
    TableFileError,
)
from herald.routes._explain import explain_route
from herald.routes._live import (
    CHECK_INTERVAL,
    parse_stored,
    read_health,
)
from herald.routing import (
    DAYS,
    FALLBACK,
    ClassRule,
    Decision,
    Failover,
    LeastCost,
    RoutesFileError,
    RouteTable,
    RoutingPlan,
    Rule,
    RuleCheck,
    Split,
    TimeWindow,
    parse_routes,
)
from herald.store import (
    Priority,
    Store,
    StoredRoutes,
    StoreError,
)

__all__ = ["register"]

DEFAULT_DATA_DIR = Path("herald-data")
_CONNECTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Numbers are read as herald reads a destination, minus the checks the tables make.
_LOOKUP_POLICY = IntakePolicy(require_valid_number=False)

Action = Callable[[argparse.Namespace, Store], Awaitable[int]]
_command = functools.partial(store_command, file_errors=(RoutesFileError, TableFileError),
                             errors=(StoreError, ConfigError, AdminError))


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="herald's data directory (default: ./herald-data)")
    add_store_option(common)
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", type=Path,
                        help="herald.toml: check connector names against it, and use its"
                             " [[routes]] as the fallback")

    routes = subparsers.add_parser(
        "routes", help="import, list and explain the routing rules",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    actions = routes.add_subparsers(dest="routes_action", metavar="ACTION", required=True)
    imp = actions.add_parser("import", parents=[common, config],
                             help="replace the routing rules with a routes file (TOML)")
    imp.add_argument("file", type=Path, help="routes file (TOML)")
    imp.set_defaults(func=_command(_import, create=True))
    lst = actions.add_parser("list", parents=[common], help="the rules in force")
    lst.set_defaults(func=_command(_list))
    explain = actions.add_parser("explain", parents=[common, config],
                                 help="the decision for a message, and why")
    explain.add_argument("--account", required=True, help="the sending account's name")
    explain.add_argument("--to", required=True, help="destination, E.164 (+4917012345678)")
    explain.add_argument("--sender", default="", help="sender id (default: none)")
    explain.add_argument("--priority", type=_priority,
                         help="otp, transactional, bulk or marketing (default: as intake"
                              " decides: a --tag naming a class, else the first matching"
                              " [[classes]] entry, else the account's default)")
    explain.add_argument("--tag", help="the message's tag")
    explain.add_argument("--at", type=_time,
                         help="when, for time windows: 2027-01-15T08:00Z (default: now)")
    explain.add_argument("--message-id", default="explain",
                         help="message id (split rules choose by it; default: 'explain')")
    explain.set_defaults(func=_command(_explain))
    clear = actions.add_parser("clear", parents=[common],
                               help="remove the rules ([[routes]] of herald.toml decide alone)")
    clear.set_defaults(func=_command(_clear))

    connectors = subparsers.add_parser(
        "connectors", help="disable or enable routing to a connector; its health",
        description="A disabled connector gets no new messages from any rule or route "
                    "until enabled again; a running herald follows within a few seconds.")
    cactions = connectors.add_subparsers(dest="connectors_action", metavar="ACTION",
                                         required=True)
    for name, disabled, text in (("disable", True, "keep routing off a connector"),
                                 ("enable", False, "route to a connector again")):
        p = cactions.add_parser(name, parents=[common, config], help=text)
        p.add_argument("name", help="the connector's name (herald.toml [[connectors]])")
        if disabled:
            p.add_argument("--reason", help="why, for whoever looks next")
        p.set_defaults(func=_command(_set_state, create=True), disabled=disabled)
    status = cactions.add_parser("list", parents=[common],
                                 help="connector states and delivery rates")
    status.set_defaults(func=_command(_connectors))


def _priority(text: str) -> Priority:
    try:
        return Priority.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _time(text: str) -> float:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (2027-01-15T08:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@contextlib.asynccontextmanager
async def _admin(store: Store) -> AsyncIterator[Admin]:
    """The admin service, through which changes are made and recorded."""
    accounts, keys = Accounts(store), AdminKeys(store)
    try:
        yield Admin(store, accounts, keys)
    finally:
        keys.close()
        accounts.close()


class _AnyPassword(Mapping[str, str]):
    """The environment, in which every variable is set (to ``""`` if it is not):
    these commands read herald.toml for its connectors' names and its routes,
    never a connector's password, so its ``password_env`` need not be set."""

    def __getitem__(self, key: str) -> str:
        return os.environ.get(key, "")

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def _configured(args: argparse.Namespace) -> tuple[frozenset[str] | None, RouteTable | None]:
    """The connectors and [[routes]] of ``--config``, if given."""
    if getattr(args, "config", None) is None:
        return None, None
    config = load_config(args.config, env=_AnyPassword())
    return frozenset(c.name for c in config.connectors), RouteTable(config.routes)


# -- routes --------------------------------------------------------------------------


async def _import(args: argparse.Namespace, store: Store) -> int:
    text = args.file.read_text(encoding="utf-8")
    plan = parse_routes(text)
    known, _ = _configured(args)
    if known is not None and plan.connectors - known:
        raise ValueError(f"{args.file}: rules name connectors {args.config} does not have: "
                         + ", ".join(sorted(plan.connectors - known)))
    async with _admin(store) as admin:
        done = await admin.import_routes(
            cli_actor(), StoredRoutes(text, str(args.file), time.time()))
    classes = f", {_entries(len(plan.classes))}" if plan.classes else ""
    print(f"Routes imported: {done.rules} rules{classes} (generation {done.generation}).")
    print(f"A running herald on {store_name(args)} uses them within {CHECK_INTERVAL:g} s.")
    return 0


def _criteria(rule: Rule | ClassRule) -> str:
    parts = []
    for label, values in (("accounts", rule.accounts), ("groups", rule.groups),
                          ("countries", rule.countries), ("networks", rule.networks),
                          ("prefixes", rule.prefixes), ("senders", rule.senders),
                          ("priorities", [p.label for p in rule.priorities]),
                          ("tags", rule.tags)):
        if values:
            parts.append(f"{label} {','.join(sorted(values))}")
    if rule.window is not None:
        parts.append(rule.window.describe())
    return "; ".join(parts) or "everything"


def _action(rule: Rule) -> str:
    action = rule.action
    if isinstance(action, Failover):
        return "failover " + " > ".join(action.connectors)
    if isinstance(action, Split):
        return "split " + ", ".join(f"{c} {w}" for c, w in action.weights)
    assert isinstance(action, LeastCost)
    return (f"least cost of {', '.join(action.connectors)}"
            f" (min delivery rate {action.min_delivery_rate:.0%})")


async def _list(args: argparse.Namespace, store: Store) -> int:
    stored = await store.get_routes()
    if stored is None:
        print("No routing rules: the [[routes]] of herald.toml decide.")
    else:
        plan = parse_stored(stored)
        classes = f", {_entries(len(plan.classes))}" if plan.classes else ""
        print(f"Routes from {stored.source}, imported {_stamp(stored.imported_at)}"
              f" (generation {stored.generation}): {len(plan.rules)} rules{classes}.")
        for k, rule in enumerate(plan.rules, 1):
            print(f"  {k}. {rule.name}: {_criteria(rule)} -> {_action(rule)}")
        if plan.classes:
            print("  class entries (for messages that name no class; then the account's):")
        for k, entry in enumerate(plan.classes, 1):
            print(f"    {k}. {entry.name}: {_criteria(entry)} -> {entry.priority.label}")
        for group, members in sorted(plan.groups.items()):
            print(f"  group {group}: {', '.join(sorted(members))}")
        print("  then: the [[routes]] of herald.toml")
    for state in await store.connector_states():
        if state.disabled:
            print(f"Connector {state.connector} disabled since {_stamp(state.changed_at)}"
                  + (f": {state.reason}" if state.reason else ""))
    return 0


async def _clear(args: argparse.Namespace, store: Store) -> int:
    async with _admin(store) as admin:
        had = await admin.clear_routes(cli_actor())
    print("Routing rules removed: the [[routes]] of herald.toml decide." if had
          else "There were no routing rules.")  # fmt: skip
    return 0


async def _explain(args: argparse.Namespace, store: Store) -> int:
    now = args.at if args.at is not None else time.time()
    _, fallback = _configured(args)
    found = await explain_route(
        store, account=args.account, to=args.to, now=now, fallback=fallback,
        sender=args.sender, tag=args.tag, priority=args.priority, message_id=args.message_id,
        tag_field="--tag")
    note = "" if found.account_known else " (no such account in this store)"
    stored, decision = found.stored, found.decision
    print(f"+{found.digits}: network {found.network or 'unknown'},"
          f" country {found.country or 'unknown'}")
    print(f"account {args.account}{note}, sender {args.sender or '-'},"
          f" priority {found.priority.label}, tag {args.tag or '-'}, at {_stamp(now)}"
          f" ({_weekday(now)})")
    if found.class_checks is not None:
        print(f"\nClass entries (from {stored.source if stored else '-'}):")
        _checks(found.class_checks)
    if found.priority_from is not None:
        print(f"\nClass: {found.priority.label}, from {found.priority_from}")
    if stored is None:
        print("\nNo routing rules imported.")
    else:
        print(f"\nRules (from {stored.source}, generation {stored.generation}):")
    _checks(decision.checks)
    if not decision.connectors:
        print("\nNo decision: no rule or route leaves a connector for this destination"
              + ("" if fallback is not None else " (--config herald.toml adds its [[routes]])"))
        return 1
    _decision(decision, found.plan, found.mcc_mnc, found.country)
    return 0


def _checks(checks: Sequence[RuleCheck]) -> None:
    width = max((len(c.rule) for c in checks), default=0)
    for k, check in enumerate(checks, 1):
        verdict = "MATCH" if check.matched else "no   "
        print(f"  {k}. {check.rule:<{width}}  {verdict}  {check.reason}")


def _decision(decision: Decision, plan: RoutingPlan, network: str | None,
              country: str | None) -> None:
    rule = next((r for r in plan.rules if r.name == decision.rule), None)
    how = _action(rule) if rule is not None else "longest [[routes]] prefix"
    chosen = ("the [[routes]] of herald.toml" if decision.rule == FALLBACK
              else f"rule {decision.rule}")
    print(f"\nDecision: {' > '.join(decision.connectors)}")
    print(f"  chosen by {chosen}: {how}")
    if decision.prices:
        where = "/".join(x for x in (network or "", country or "") if x) or "this destination"
        print(f"\nBuy prices for {where} (per part, by the connectors' buy lists):")
        for quote in decision.prices:
            price = ("no price (its buy list has no entry for this, or there is none)"
                     if quote.price is None else f"{quote.price:<10f} entry {quote.entry}")
            print(f"  {quote.connector:<16} {price}")
    if decision.health:
        policy = plan.health
        print(f"\nHealth (final receipts of the last {policy.window:g} s, newest"
              f" {policy.max_samples} at most; fewer than {policy.min_samples}: healthy):")
        for h in decision.health:
            print(f"  {h.connector:<16} {h.describe(decision.threshold, policy.min_samples)}")


def _entries(n: int) -> str:
    return f"{n} class entr{'y' if n == 1 else 'ies'}"


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _weekday(seconds: float) -> str:
    day, hour = TimeWindow.when(seconds)
    return f"{DAYS[day]} {hour:02d}h UTC"


# -- connectors ----------------------------------------------------------------------


async def _set_state(args: argparse.Namespace, store: Store) -> int:
    name = args.name
    if not _CONNECTOR.fullmatch(name):
        raise ValueError(f"{name!r} is not a connector name")
    known, _ = _configured(args)
    if known is not None and name not in known:
        raise ValueError(f"{args.config} has no connector {name!r}")
    async with _admin(store) as admin:
        generation = await admin.set_connector_state(
            cli_actor(), name, disabled=args.disabled, reason=getattr(args, "reason", None))
    verb = "disabled: no rule or route sends to it" if args.disabled else "enabled"
    print(f"Connector {name} {verb} (generation {generation}).")
    print(f"A running herald on {store_name(args)} follows within {CHECK_INTERVAL:g} s.")
    return 0


async def _connectors(args: argparse.Namespace, store: Store) -> int:
    plan = parse_stored(await store.get_routes())
    states = {s.connector: s for s in await store.connector_states()}
    now = time.time()
    disabled = {n for n, s in states.items() if s.disabled}
    health = await read_health(store, plan, now, disabled,
                               connectors=set(states) | plan.connectors)
    if not health:
        print("No connector named by rules or by an operator yet.")
    policy = plan.health
    print(f"Delivery over the last {policy.window:g} s (newest {policy.max_samples} final"
          f" receipts at most):")
    for h in sorted(health, key=lambda h: h.connector):
        print(f"  {h.connector:<16} {h.describe(None, policy.min_samples)}")
    return 0
