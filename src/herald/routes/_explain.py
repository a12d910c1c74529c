"""The route explainer: the decision for one message, and why (``herald routes explain``,
the admin API's ``POST /v1/admin/routes/explain`` and the console's form).

It decides as dispatch would, from what the store holds now: the rules in
force, the connectors' buy lists and states, their recent delivery counts, the
number tables, and the account's default class; ``fallback`` is herald.toml's
``[[routes]]`` (``None``: not known to the caller). Read-only.
"""

from __future__ import annotations

from dataclasses import dataclass

from herald.intake import IntakeError, IntakePolicy, check_tag, normalize_destination
from herald.numbers import load_index
from herald.routes._live import build_router, parse_stored, read_buy_prices, read_health
from herald.routing import (
    Classifier,
    Decision,
    RouteQuery,
    RouteTable,
    RoutingPlan,
    RuleCheck,
    country_of,
)
from herald.store import DEFAULT_PRIORITY, Priority, Store, StoredRoutes, UnknownAccount

__all__ = ["Explanation", "explain_route"]

#: Numbers are read as herald reads a destination, minus the checks the tables make.
_LOOKUP_POLICY = IntakePolicy(require_valid_number=False)


@dataclass(frozen=True, slots=True)
class Explanation:
    """What :func:`explain_route` found; ``decision.connectors`` empty: no route."""

    digits: str
    network: str | None  # "262-01 Telekom"
    mcc_mnc: str | None
    country: str | None
    account: str
    account_known: bool
    priority: Priority
    priority_from: str | None  # None when the caller gave the priority
    class_checks: tuple[RuleCheck, ...] | None  # the [[classes]] entries looked at
    stored: StoredRoutes | None
    plan: RoutingPlan
    decision: Decision
    fallback: bool  # whether herald.toml's [[routes]] were known


async def explain_route(
    store: Store, *, account: str, to: str, now: float, fallback: RouteTable | None,
    sender: str = "", tag: str | None = None, priority: Priority | None = None,
    message_id: str = "explain", tag_field: str = "tag",
) -> Explanation:  # fmt: skip
    """The decision for a message of ``account`` to ``to`` at ``now``. Raises
    ``ValueError`` naming a bad ``to`` or ``tag`` (as ``tag_field``)."""
    try:
        digits = normalize_destination(to, field="to", policy=_LOOKUP_POLICY)
    except IntakeError as exc:
        raise ValueError(str(exc)) from None
    stored = await store.get_routes()
    plan = parse_stored(stored)
    prices = await read_buy_prices(store)
    states = await store.connector_states()
    disabled = {s.connector for s in states if s.disabled}
    health = await read_health(store, plan, now, disabled,
                               connectors=plan.connectors | (fallback.connectors if fallback
                                                             else frozenset()))
    _, index = await load_index(store)
    network = index.network_of(digits)
    country = country_of(digits)
    known = True
    default = None
    try:
        default = (await store.get_account_by_name(account)).priority
    except UnknownAccount:
        known = False
    try:
        _, implied = check_tag(tag, field=tag_field)
    except IntakeError as exc:
        raise ValueError(str(exc)) from None
    query = RouteQuery(message_id, account, digits, sender, DEFAULT_PRIORITY, tag, network,
                       country)
    # As intake decides (docs/routing.md, "Classes"): the request, a class entry,
    # the account's default, transactional.
    chosen = None
    wanted = priority if priority is not None else implied
    if priority is None and implied is None and plan.classes:
        chosen = Classifier(plan.classes, groups=plan.groups).classify(query, now, explain=True)
        wanted = chosen.priority
    source = (None if priority is not None else "the tag" if implied is not None
              else f"class entry {chosen.entry}" if chosen is not None and chosen.entry
              else "the account's default" if default is not None
              else "the default (no class entry or account default)")  # fmt: skip
    if wanted is None:
        wanted = DEFAULT_PRIORITY if default is None else default
    router = build_router(plan, prices, fallback, health)
    decision = router.decide(query._replace(priority=wanted), now, explain=True)
    net = f"{network.mcc}-{network.mnc} {network.name}".rstrip() if network else None
    return Explanation(
        digits, net, f"{network.mcc}-{network.mnc}" if network else None, country, account,
        known, wanted, source, None if chosen is None else tuple(chosen.checks), stored, plan,
        decision, fallback is not None)  # fmt: skip
