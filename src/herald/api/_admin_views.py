"""What the admin API shows, as JSON values: one builder for the API and the console.

The admin API (:mod:`herald.api._admin`) renders these dictionaries as JSON
and the operator console (:mod:`herald.console`) renders the same ones as
HTML, so the two cannot disagree and the console shows nothing the API does
not. Each method reads through :class:`herald.admin.Admin` (its store) and the
:class:`~herald.api._context.AdminContext`; none authenticates (the callers
do). The few that change something (:meth:`AdminViews.cancel_message`,
:meth:`~AdminViews.set_connector`, :meth:`~AdminViews.set_fraud_mode`) go
through the admin service with the caller's actor, so each change is recorded
in the audit log; the console's other changes call the service directly.

The overview's per-second figures come from the process's Prometheus
counters (those of ``herald serve``'s delivery process included), sampled
when the overview is read (:class:`Overview`).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from herald.admin import (
    BillingAdmin,
    FieldProblem,
    InvalidInput,
    NotFound,
    describe_settings,
)
from herald.billing import margin_key, margin_percent, money
from herald.defence import LiveDefence
from herald.ids import is_valid_id
from herald.intake import country_of
from herald.metrics import Metrics
from herald.routes import explain_route, parse_stored
from herald.store import (
    MAX_PAGE_SIZE,
    RECENT_WINDOW,
    Account,
    AdminStore,
    AuditEntry,
    Balance,
    ChangeOutcome,
    ConnectorState,
    FinalPart,
    Message,
    MessageFilter,
    MessageNotFound,
    OverviewMinute,
    PriceSide,
    Priority,
    RecentFilter,
    RefundPolicy,
    Status,
    StoreError,
)

from ._admin_guard import GuardViews
from ._admin_routing import RoutingViews
from ._attempts import TIMELINE_ORDER, attempt_events, attempts_view
from ._blocked import decision_view
from ._context import AdminContext
from ._fraud import settings_view, updated_settings
from ._problems import ApiProblem, FieldError
from ._render import deliveries_view, message_view, rfc3339, route_view

__all__ = [
    "MAX_SCANNED_ACCOUNTS",
    "AdminViews",
    "MessageSearch",
    "Overview",
    "audit_view",
    "balance_view",
    "state_view",
]

log = logging.getLogger("herald.api.admin")
T = TypeVar("T")

#: Without an account, a message search asks each account's index in turn
#: (the messages table is indexed by account); past this many accounts the
#: search must name one.
MAX_SCANNED_ACCOUNTS: Final = 200
#: Seconds the overview's per-second rates are averaged over.
RATE_WINDOW: Final = 10.0
#: The overview keeps one sample per this many seconds, for an hour.
HISTORY_STEP: Final = 5.0
HISTORY_SAMPLES: Final = 720
#: ... and one per minute for a day. A sample is taken when the overview is read:
#: between two samples the chart shows the average rate (the counters are totals).
DAY_STEP: Final = 60.0
DAY_SAMPLES: Final = 1440
#: Seconds of the day's chart (and of the points the store keeps for it).
DAY: Final = DAY_STEP * DAY_SAMPLES
#: Countries the overview lists at most (those with the most final parts).
MAX_COUNTRIES: Final = 20
#: The overview's delivery rate per connector: its newest final parts of the
#: last hour, at most this many (an index range each: bounded, not by traffic).
DELIVERY_WINDOW: Final = 3600.0
DELIVERY_SAMPLE: Final = 1000
#: CDRs read to find a message's (those accepted in the same instant as it, from it on).
CDR_PEERS: Final = 100
#: Final statuses the overview counts as failed (delivered and cancelled are not).
FAILED: Final = ("undelivered", "expired", "rejected", "failed")
#: The per-connector gauges the overview reads, by the key it gives them.
_CONNECTOR_GAUGES: Final = {"herald_connector_queue": "queue",
                            "herald_connector_inflight": "inflight",
                            "herald_connector_oldest_queued_seconds": "oldest"}

COUNTERS: Final = ("accepted", "sent", "delivered", "failed")


def balance_view(name: str, balance: Balance, billed: bool) -> dict[str, Any]:
    return {"account": name, "balance": money(balance.balance),
            "credit_limit": money(balance.credit_limit), "available": money(balance.available),
            "refund_policy": balance.refund_policy.label, "billed": billed}  # fmt: skip


def margin_view(key: str, messages: int, revenue: int, cost: int,
                unpriced: int) -> dict[str, Any]:  # fmt: skip
    percent = margin_percent(revenue - cost, revenue)
    return {"key": key, "messages": messages, "revenue": money(revenue), "cost": money(cost),
            "margin": money(revenue - cost), "margin_percent": None if percent == "-"
            else percent, "unpriced": unpriced}  # fmt: skip


def state_view(state: ConnectorState) -> dict[str, Any]:
    return {"connector": state.connector, "disabled": state.disabled, "reason": state.reason,
            "changed_at": rfc3339(state.changed_at)}  # fmt: skip


def audit_view(e: AuditEntry) -> dict[str, Any]:
    return {"seq": e.seq, "at": rfc3339(e.at), "actor": e.actor, "action": e.action,
            "target": e.target, "changes": dict(e.changes)}  # fmt: skip


_NO_FINALS: Final = {"finals": 0, "delivery_rate": None, "latency_p50": None,
                     "latency_p90": None}  # fmt: skip


def _percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of sorted values (``None``: none)."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _delivery(finals: Sequence[FinalPart], key: Callable[[FinalPart], str]
              ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Final parts grouped by ``key``: how many, the share delivered, and the
    receipt latency (sent upstream to delivered, seconds) at the median and p90."""
    groups: dict[str, list[FinalPart]] = {}
    for f in finals:
        groups.setdefault(key(f), []).append(f)
    out = {}
    for name, parts in groups.items():
        delivered = [f for f in parts if f.delivered]
        waits = sorted(max(0.0, f.final_at - f.sent_at) for f in delivered
                       if f.sent_at is not None)  # fmt: skip
        out[name] = {"finals": len(parts),
                     "delivery_rate": round(len(delivered) / len(parts), 4),
                     "latency_p50": _percentile(waits, 0.5),
                     "latency_p90": _percentile(waits, 0.9)}  # fmt: skip
    return out


def _invalid(field: str, code: str, detail: str) -> ApiProblem:
    return ApiProblem(422, "invalid-request", "the request has invalid parameters",
                      [FieldError((field,), code, detail, "query")])


@dataclass(frozen=True, slots=True)
class MessageSearch:
    """A message search: by ``id``; or an account's (or every account's) messages,
    newest first, filtered by number, reference, status and acceptance time."""

    id: str | None = None
    account: str | None = None
    to: str | None = None
    reference: str | None = None
    status: Status | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    cursor: str | None = None

    @classmethod
    def parse(cls, params: Callable[[str], str | None],
              since: Callable[[str | None, str], float | None]) -> MessageSearch:
        """From query parameters (``params(name)``); raises :class:`ApiProblem` 422
        naming the parameter. ``since`` parses a time (epoch or RFC 3339)."""
        status = None
        label = params("status")
        if label:
            status = next((s for s in Status if s.label == label), None)
            if status is None:
                raise _invalid("status", "invalid_choice", "must be one of "
                               + ", ".join(s.label for s in Status))
        to = params("to") or None
        if to is not None:
            digits = to.strip().removeprefix("+").replace(" ", "")
            if not digits.isdigit() or len(digits) > 20:
                raise _invalid("to", "not_valid", "must be a phone number (E.164 digits)")
            to = digits
        raw_limit = params("limit") or "50"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
            raise _invalid("limit", "out_of_range", f"must be an integer 1..{MAX_PAGE_SIZE}")
        reference = params("reference") or None
        if reference is not None and len(reference) > 255:
            raise _invalid("reference", "too_long", "has at most 255 characters")
        return cls(
            id=(params("id") or "").strip() or None, account=params("account") or None,
            to=to, reference=reference, status=status,
            since=since(params("since") or None, "since"),
            until=since(params("until") or None, "until"),
            limit=int(raw_limit), cursor=params("cursor") or None,
        )  # fmt: skip


@dataclass(slots=True)
class _Sample:
    at: float
    totals: dict[str, float]


class Overview:
    """The platform's counters now, their rates per second, and an hour and a day of history.

    Sampled from the metrics registry when read (at most once a second): the
    history holds what was seen while someone looked (the console polls it).
    With a ``store``, each point of the day's chart is kept there too
    (:meth:`~herald.store.Store.record_overview_minute`), and a new process
    shows the points its predecessors kept: the day's chart outlives a restart
    (the counters start again from 0; the hour's chart starts afresh). ``wall``
    gives those points' epoch seconds.
    """

    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic, *,
                 store: AdminStore | None = None, wall: Callable[[], float] = time.time,
                 ) -> None:  # fmt: skip
        self._metrics = metrics
        self._clock = clock
        self._store = store
        self._wall = wall
        self._recent: deque[_Sample] = deque(maxlen=64)  # >= RATE_WINDOW at 1 a second
        self.history: deque[_Sample] = deque(maxlen=HISTORY_SAMPLES)
        self.day: deque[_Sample] = deque(maxlen=DAY_SAMPLES)
        #: The day's points kept by earlier processes (read once, at the first read).
        self._earlier: tuple[OverviewMinute, ...] | None = None

    def _read(self) -> tuple[dict[str, float], dict[str, dict[str, float]], dict[str, float]]:
        totals = dict.fromkeys(COUNTERS, 0.0)
        connectors: dict[str, dict[str, float]] = {}
        backlog: dict[str, float] = {}
        for family in self._metrics.registry.collect():
            for s in family.samples:
                name, labels = s.name, s.labels
                if name == "herald_messages_accepted_total":
                    totals["accepted"] += s.value
                elif name == "herald_upstream_submits_total" and labels.get("outcome") == "ok":
                    totals["sent"] += s.value
                    key = "sent:" + labels.get("connector", "")
                    totals[key] = totals.get(key, 0.0) + s.value
                elif name == "herald_messages_final_total":
                    status = labels.get("status")
                    if status == "delivered":
                        totals["delivered"] += s.value
                    elif status in FAILED:
                        totals["failed"] += s.value
                elif name in _CONNECTOR_GAUGES:
                    connectors.setdefault(labels["connector"], {})[_CONNECTOR_GAUGES[name]] = (
                        s.value)
                elif name == "herald_messages_unsent":
                    backlog["unsent"] = s.value
                elif name == "herald_messages_due":
                    backlog["due"] = s.value
                elif name == "herald_outbox_backlog":
                    backlog[labels.get("channel", "")] = s.value
        return totals, connectors, backlog

    async def read(self) -> tuple[dict[str, float], dict[str, float | None],
                                  dict[str, dict[str, float]], dict[str, float]]:
        """Totals, rates per second (``None`` until two samples), per-connector
        queue and in-flight counts, and the store's backlog."""
        await self._metrics.refresh()
        totals, connectors, backlog = self._read()
        now = self._clock()
        if self._store is not None and self._earlier is None:
            self._earlier = await self._kept(self._store.overview_minutes(self._wall() - DAY),
                                             ())
        if not self._recent or now - self._recent[-1].at >= 1.0:
            self._recent.append(_Sample(now, totals))
            if not self.history or now - self.history[-1].at >= HISTORY_STEP:
                self.history.append(_Sample(now, totals))
            if not self.day or now - self.day[-1].at >= DAY_STEP:
                before = self.day[-1] if self.day else None
                self.day.append(_Sample(now, totals))
                if before is not None and self._store is not None:
                    await self._kept(self._store.record_overview_minute(OverviewMinute(
                        self._wall(), now - before.at,
                        *(max(0.0, totals[k] - before.totals.get(k, 0.0)) for k in COUNTERS)),
                        DAY), None)  # fmt: skip
        base = next((s for s in self._recent if now - s.at <= RATE_WINDOW), None)
        rates: dict[str, float | None] = dict.fromkeys(totals)
        if base is not None and now - base.at >= 1.0:
            span = now - base.at
            rates = {k: round(max(0.0, v - base.totals.get(k, 0.0)) / span, 2)
                     for k, v in totals.items()}
        return totals, rates, connectors, backlog

    @staticmethod
    async def _kept(call: Awaitable[T], otherwise: T) -> T:
        """A read or write of the kept points; ``otherwise`` when the store fails
        (the chart is a convenience: the overview answers all the same)."""
        try:
            return await call
        except StoreError as exc:
            log.warning("the overview's kept points: %s", exc)
            return otherwise

    def series(self, day: bool = False) -> list[dict[str, Any]]:
        """Per-second rates between successive samples of the hour's history (or,
        with ``day``, the day's: first those kept by earlier processes), oldest first."""
        out = []
        if day and self._earlier:
            wall = self._wall()
            for m in self._earlier:
                if wall - m.at <= DAY and m.seconds > 0:
                    out.append({"seconds_ago": round(wall - m.at, 1),
                                "seconds": round(m.seconds, 1), **{
                        k: round(getattr(m, k) / m.seconds, 2) for k in COUNTERS}})  # fmt: skip
        points = list(self.day if day else self.history)
        if points and self._recent and self._recent[-1].at > points[-1].at:
            # the interval so far (since the last 5 s or minute point): the charts
            # move with the counters, not up to a step behind them
            points.append(self._recent[-1])
        for before, after in itertools.pairwise(points):
            span = after.at - before.at
            out.append({"seconds_ago": round(self._clock() - after.at, 1),
                        "seconds": round(span, 1), **{
                k: round(max(0.0, after.totals[k] - before.totals.get(k, 0.0)) / span, 2)
                for k in COUNTERS}})  # fmt: skip
        return out


class AdminViews:
    """The admin API's answers as JSON values (see the module's docstring)."""

    def __init__(self, admin: AdminContext, metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        self._admin = admin
        self.service = admin.service
        self.billing = BillingAdmin(admin.service, clock=clock)
        self.overview_sampler = Overview(metrics, store=admin.service.store)
        self.guard = GuardViews(admin.guard, clock)
        self.routing = RoutingViews(admin, clock)
        #: The pumping defence this app screens with (install_admin sets it).
        self.defence: LiveDefence | None = None
        #: Whether callback URLs may name private addresses (AdminRoutes sets it
        #: from [webhooks] block_private_addresses), for the console's settings form.
        self.allow_private_urls = False
        self._clock = clock

    # -- accounts ------------------------------------------------------------------------

    async def account(self, account: Account) -> dict[str, Any]:
        store = self.service.store
        keys = await store.list_api_keys(account.id)
        logins = await store.list_smpp_credentials(account.id)
        return {
            "id": account.id, "name": account.name, "created_at": rfc3339(account.created_at),
            "disabled": account.disabled, **describe_settings(account),
            "api_keys": [{"key_id": k.key_id, "created_at": rfc3339(k.created_at),
                          "revoked_at": None if k.revoked_at is None else rfc3339(k.revoked_at)}
                         for k in keys],
            "smpp_logins": [{"system_id": c.system_id, "created_at": rfc3339(c.created_at)}
                            for c in logins],
        }  # fmt: skip

    async def accounts(self) -> dict[str, Any]:
        accounts = await self.service.store.list_accounts()
        return {"accounts": [await self.account(a) for a in accounts]}

    async def balance(self, name: str) -> dict[str, Any]:
        return balance_view(name, *await self.billing.balance(name))

    async def balances(self, accounts: Sequence[Account]) -> dict[str, dict[str, Any]]:
        """:meth:`balance` of each of ``accounts`` by name, the sell lists read once."""
        store = self.service.store
        billed = {s.owner for s in await store.price_lists(PriceSide.SELL)}
        out = {}
        for a in accounts:
            found = await store.get_balance(a.id)
            balance = found if found is not None else Balance(a.id, 0, 0, RefundPolicy.NONE)
            out[a.name] = balance_view(a.name, balance, str(a.id) in billed)
        return out

    async def price_lists(self) -> dict[str, Any]:
        """Every price list: side, owner, size, import time (docs/billing.md)."""
        lists = await self.billing.price_lists()
        return {"generation": await self.service.store.price_lists_generation(),
                "price_lists": [{"side": "sell" if i.side is PriceSide.SELL else "buy",
                                 "owner": i.owner, "entries": i.entries,
                                 "imported_at": rfc3339(i.imported_at)}
                                for i in lists]}  # fmt: skip

    async def margins(self, since: float, until: float, by: str = "account",
                      account_id: int | None = None) -> dict[str, Any]:
        """Revenue, cost and margin of the messages accepted in ``[since, until)``,
        by ``account``, ``connector`` or ``country`` (docs/billing.md)."""
        store = self.service.store
        found = await store.margin(since, until, by, account_id=account_id)
        names = {str(a.id): a.name for a in await store.list_accounts()}
        rows = [margin_view(margin_key(r, by, names), r.messages, r.revenue, r.cost,
                            r.unpriced) for r in found]  # fmt: skip
        total = margin_view("total", sum(r.messages for r in found),
                            sum(r.revenue for r in found), sum(r.cost for r in found),
                            sum(r.unpriced for r in found))  # fmt: skip
        return {"by": by, "from": rfc3339(since), "to": rfc3339(until), "rows": rows,
                "total": total}

    # -- connectors and routes -----------------------------------------------------------

    def connectors(self) -> dict[str, Any]:
        states = self._admin.connectors()
        out = []
        for c in states:
            if c.bound is None:
                state = "unknown"
            else:
                state = ("down" if c.bound == 0 else "up" if c.bound >= c.binds else "partial")
            out.append({"name": c.name, "host": c.host, "port": c.port,
                        "system_id": c.system_id, "bind_type": c.bind_type, "binds": c.binds,
                        "bound": c.bound, "tps": "unlimited" if math.isinf(c.tps) else c.tps,
                        "window": c.window, "state": state})  # fmt: skip
        reporting = all(c.bound is not None for c in states)
        return {"connectors": out, "reporting": reporting}

    def check_connector(self, name: str) -> None:
        """Raises :class:`NotFound` for a connector herald.toml does not have."""
        known = {c.name for c in self._admin.connectors()}
        if known and name not in known:
            raise NotFound(f"herald.toml has no connector {name!r}")

    async def set_connector(self, actor: str, name: str, disabled: bool,
                            reason: str | None = None) -> dict[str, Any]:
        """Disable or enable routing to a connector (recorded); its state now."""
        self.check_connector(name)
        generation = await self.service.set_connector_state(actor, name, disabled=disabled,
                                                            reason=reason)
        states = {s.connector: s for s in await self.service.store.connector_states()}
        return {**state_view(states[name]), "generation": generation}

    async def routes(self) -> dict[str, Any]:
        store = self.service.store
        stored = await store.get_routes()
        plan = parse_stored(stored)
        return {
            "generation": await store.routing_generation(),
            "source": stored.source if stored is not None else None,
            "imported_at": rfc3339(stored.imported_at) if stored is not None else None,
            "rules": [r.name for r in plan.rules],
            "connectors": [state_view(s) for s in await store.connector_states()],
        }  # fmt: skip

    async def explain(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The route explainer (``herald routes explain``) for a message described by
        ``given``: ``account``, ``to`` (required), ``sender``, ``tag``, ``priority``.
        Raises :class:`herald.admin.InvalidInput` naming each refused field."""
        problems = [FieldProblem(name, "required", "is required") for name in ("account", "to")
                    if not isinstance(given.get(name), str) or not given[name].strip()]
        for name in ("sender", "tag", "priority"):
            value = given.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > 64):
                problems.append(FieldProblem(name, "wrong_type",
                                             "must be a string of at most 64 characters"))
        priority = None
        if isinstance(given.get("priority"), str) and given["priority"]:
            try:
                priority = Priority.parse(given["priority"])
            except ValueError as exc:
                problems.append(FieldProblem("priority", "invalid_choice", str(exc)))
        if problems:
            raise InvalidInput(problems)
        try:
            found = await explain_route(
                self.service.store, account=given["account"].strip(), to=given["to"],
                now=self._clock(), fallback=self._admin.fallback_routes,
                sender=given.get("sender") or "", tag=given.get("tag") or None,
                priority=priority)  # fmt: skip
        except ValueError as exc:
            field = "tag" if str(exc).startswith("tag") else "to"
            raise InvalidInput.one(field, "not_valid", str(exc)) from None
        d, policy = found.decision, found.plan.health
        return {
            "to": f"+{found.digits}", "network": found.network, "country": found.country,
            "account": found.account, "account_known": found.account_known,
            "priority": found.priority.label, "priority_from": found.priority_from,
            "classes": None if found.class_checks is None else [
                {"entry": c.rule, "matched": c.matched, "reason": c.reason}
                for c in found.class_checks],
            "rules_source": found.stored.source if found.stored else None,
            "rules": [{"rule": c.rule, "matched": c.matched, "reason": c.reason}
                      for c in d.checks],
            "decision": {"connectors": list(d.connectors), "rule": d.rule}
            if d.connectors else None,
            "prices": [{"connector": q.connector,
                        "price": None if q.price is None else f"{q.price:f}",
                        "entry": q.entry} for q in d.prices],
            "health": [{"connector": h.connector,
                        "state": h.describe(d.threshold, policy.min_samples)}
                       for h in d.health],
            "herald_toml_routes": found.fallback,
        }  # fmt: skip

    # -- the pumping defence (docs/fraud.md) --------------------------------------------

    async def fraud(self, name: str, limit: int = 100) -> dict[str, Any]:
        """An account's defence settings and its latest decisions (what
        ``GET /v1/admin/accounts/{name}/fraud[/decisions]`` answer)."""
        settings = await self.service.fraud_settings(name)
        decisions = await self.service.fraud_decisions(name, limit)
        return {"account": name, "settings": settings_view(settings),
                "decisions": [decision_view(d) for d in decisions],
                "blocks": (await self.fraud_blocks(name))["blocks"]}

    async def fraud_blocks(self, name: str) -> dict[str, Any]:
        """The account's blocks and throttles in force with their expiry (what
        ``GET /v1/admin/accounts/{name}/fraud/blocks`` answers)."""
        account = await self.service.account(name)
        found = [] if self.defence is None else self.defence.blocks(account.id, self._clock())
        return {"blocks": [{"cell": b.cell, "kind": b.kind, "until": rfc3339(b.until / 1000),
                            "strikes": b.strikes} for b in found]}  # fmt: skip

    async def update_fraud(self, actor: str, name: str, payload: Mapping[str, Any]
                           ) -> dict[str, Any]:  # fmt: skip
        """Change the defence settings given (the checks and record of ``PATCH
        .../fraud``); raises :class:`ApiProblem` 422 naming each refused field."""
        current = await self.service.fraud_settings(name)
        await self.service.set_fraud_settings(actor, name, updated_settings(current, payload))
        return await self.fraud(name)

    async def set_fraud_mode(self, actor: str, name: str, mode: str) -> dict[str, Any]:
        """Switch the account's defence to ``enforce`` or ``monitor`` (recorded:
        ``account.fraud``), by the checks of ``PATCH .../fraud``."""
        current = await self.service.fraud_settings(name)
        await self.service.set_fraud_settings(actor, name,
                                              updated_settings(current, {"mode": mode}))
        return await self.fraud(name)

    # -- overview ------------------------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        """Counters, rates per second, queues and binds per connector, backlogs."""
        totals, rates, queues, backlog = await self.overview_sampler.read()
        connectors = self.connectors()
        store = self.service.store
        states = {s.connector: s for s in await store.connector_states()}
        names = [c["name"] for c in connectors["connectors"]]
        finals = await store.recent_finals(names, self._clock() - DELIVERY_WINDOW,
                                           DELIVERY_SAMPLE) if names else []
        by_connector = _delivery(finals, lambda f: f.connector)
        by_country = _delivery(finals, lambda f: country_of(f.to.removeprefix("+")) or "other")
        rows = []
        for c in connectors["connectors"]:
            q = queues.get(c["name"], {})
            state = states.get(c["name"])
            done = by_connector.get(c["name"], _NO_FINALS)
            rows.append({"name": c["name"], "state": c["state"], "bound": c["bound"],
                         "binds": c["binds"], "tps_limit": c["tps"],
                         "tps": rates.get("sent:" + c["name"]),
                         "queue": int(q.get("queue", 0)),
                         "oldest_queued_seconds": round(q["oldest"], 1)
                         if q.get("queue") and "oldest" in q else None,
                         "inflight": int(q.get("inflight", 0)),
                         "disabled": bool(state and state.disabled), **done})  # fmt: skip
        countries = sorted(({"country": k, **v} for k, v in by_country.items()),
                           key=lambda r: (-r["finals"], r["country"]))[:MAX_COUNTRIES]
        return {
            "at": rfc3339(self._clock()),
            "totals": {k: int(totals[k]) for k in COUNTERS},
            "per_second": {k: rates[k] for k in COUNTERS},
            "connectors": rows,
            "binds_up": sum(r["bound"] or 0 for r in rows),
            "backlog": {"unsent": int(backlog.get("unsent", 0)),
                        "due": int(backlog.get("due", 0)),
                        "webhooks": int(backlog.get("webhook", 0)),
                        "smpp_events": int(backlog.get("smpp", 0))},
            "countries": countries,
            "history": self.overview_sampler.series(),
            "history_day": self.overview_sampler.series(day=True),
        }  # fmt: skip

    # -- messages ------------------------------------------------------------------------

    async def _names(self) -> dict[int, str]:
        return {a.id: a.name for a in await self.service.store.list_accounts()}

    def _row(self, m: Message, names: dict[int, str]) -> dict[str, Any]:
        return {**message_view(m), "account": names.get(m.account_id, str(m.account_id))}

    async def messages(self, q: MessageSearch) -> dict[str, Any]:
        """Messages matching ``q``, newest first, and the cursor of the next page
        (``None``: the last; searches over every account, or by status or time,
        have one page). Every read is an index range: by id; by account (and
        number or reference); else among the newest :data:`RECENT_WINDOW`
        messages (``window`` in the answer says so)."""
        store = self.service.store
        names = await self._names()
        nothing: dict[str, Any] = {"messages": [], "next_cursor": None, "window": None}
        if q.id is not None:
            if not is_valid_id(q.id):
                return nothing
            try:
                m = await store.get_message(q.id)
            except MessageNotFound:
                return nothing
            return {**nothing, "messages": [self._row(m, names)]}
        account = None if q.account is None else await self.service.account(q.account)
        indexed = q.to is not None or q.reference is not None
        filtered = q.status is not None or q.since is not None or q.until is not None
        if account is not None and (indexed or not filtered):
            page = await store.list_messages(self._filter(account.id, q), q.cursor)
            return {**nothing, "messages": [self._row(m, names) for m in page.messages],
                    "next_cursor": page.next_cursor}
        if not indexed:  # by status or time: the newest messages only, whatever matches
            recent = await store.recent_messages(RecentFilter(
                account_id=None if account is None else account.id,
                status=None if q.status is None else int(q.status),
                since=q.since, until=q.until, limit=q.limit))  # fmt: skip
            return {**nothing, "messages": [self._row(m, names) for m in recent],
                    "window": RECENT_WINDOW}
        if len(names) > MAX_SCANNED_ACCOUNTS:
            raise _invalid("account", "required", f"name an account: there are more than"
                           f" {MAX_SCANNED_ACCOUNTS} to search")
        found: list[Message] = []
        for account_id in names:
            found += (await store.list_messages(self._filter(account_id, q))).messages
        found.sort(key=lambda m: (m.accepted_at, m.id), reverse=True)
        return {**nothing, "messages": [self._row(m, names) for m in found[:q.limit]]}

    @staticmethod
    def _filter(account_id: int, q: MessageSearch) -> MessageFilter:
        return MessageFilter(account_id, status=q.status, to=q.to, reference=q.reference,
                             since=q.since, until=q.until, limit=q.limit)

    async def message(self, message_id: str) -> dict[str, Any]:
        """One message with its route, parts upstream, failed webhooks, its submit and
        webhook attempts and a timeline. Raises :class:`herald.admin.NotFound`."""
        store = self.service.store
        if not is_valid_id(message_id):
            raise NotFound(f"no message {message_id!r}")
        try:
            m = await store.get_message(message_id)
        except MessageNotFound:
            raise NotFound(f"no message {message_id!r}") from None
        segments = await store.get_segments(message_id)
        failed = await store.failed_deliveries(message_id, m.account_id)
        route = (await store.get_message_routes([message_id])).get(message_id)
        owner = await store.get_account(m.account_id)
        view = self._row(m, {owner.id: owner.name})
        view["route"] = route_view(route)
        view["parts"] = [{"index": s.index, "connector": s.connector,
                          "upstream_id": s.upstream_id, "status": s.status.label,
                          "error_code": s.error_code, "updated_at": rfc3339(s.updated_at)}
                         for s in segments]  # fmt: skip
        view["webhooks"] = deliveries_view(failed)
        view["attempts"] = attempts_view(await store.message_attempts(message_id), segments,
                                         m.sent_at)  # fmt: skip
        view["charge"] = await self._charge(m)
        view["timeline"] = _timeline(view)
        return view

    async def _charge(self, m: Message) -> dict[str, Any] | None:
        """The message's CDR (docs/billing.md), ``None`` when it was not charged.
        Read by the CDRs' time index: those accepted in the same instant, at most
        :data:`CDR_PEERS` (a batch shares its acceptance time)."""
        after = (m.accepted_at, m.id[:-1])  # just before the id: (t, id) is the first key
        peers = await self.service.store.list_cdrs(
            m.accepted_at, math.nextafter(m.accepted_at, math.inf), account_id=m.account_id,
            after=after, limit=CDR_PEERS)  # fmt: skip
        cdr = next((c for c in peers if c.message_id == m.id), None)
        if cdr is None:
            return None
        return {"sell": money(cdr.sell), "refunded": money(cdr.refunded),
                "priced_by": cdr.price_key, "country": cdr.country, "network": cdr.network,
                "connector": cdr.connector,
                "buy": None if cdr.buy is None else money(cdr.buy)}  # fmt: skip

    async def cancel_message(self, actor: str, message_id: str) -> dict[str, Any]:
        """Cancel a message that has not gone out, recorded as ``message.cancel``.
        Raises :class:`herald.admin.NotFound`, :class:`ApiProblem` 409 (too late,
        or dispatch holds it now)."""
        if not is_valid_id(message_id):
            raise NotFound(f"no message {message_id!r}")
        result = await self.service.cancel_message(actor, message_id)
        message = result.message
        if result.outcome is ChangeOutcome.IN_PROGRESS:
            raise ApiProblem(409, "cancel-in-progress", "the message is being submitted"
                             " upstream now; try again in a few seconds",
                             extra={"message_status": message.status.label})
        if result.outcome is ChangeOutcome.TOO_LATE and message.status is not Status.CANCELLED:
            raise ApiProblem(409, "cancel-too-late", "the message cannot be cancelled: it is"
                             f" {message.status.label}",
                             extra={"message_status": message.status.label})
        return await self.message(message_id)


def _timeline(view: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's events in time order: its statuses, attempts, parts and failed
    webhooks (those of one instant in :data:`TIMELINE_ORDER`)."""
    events: list[dict[str, Any]] = [
        {"at": at, "event": status, "detail": ""} for status, at in view["timestamps"].items()]
    route = view["route"]
    if route["connector"] or route["rule"]:
        rule = route["rule"] or "the [[routes]] of herald.toml"
        events.append({"at": view["timestamps"].get("sent") or view["timestamps"]["accepted"],
                       "event": "routed",
                       "detail": f"by {rule} to {route['connector'] or '(not yet)'}"})
    for p in view["parts"]:
        detail = f"part {p['index'] + 1} via {p['connector']}: upstream id {p['upstream_id']}," \
            f" {p['status']}" + (f" (error {p['error_code']})" if p["error_code"] else "")
        events.append({"at": p["updated_at"], "event": "part", "detail": detail})
    charge = view["charge"]
    if charge is not None:
        cost = f", cost {charge['buy']} at {charge['connector']}" if charge["buy"] else ""
        refund = f", {charge['refunded']} refunded" if charge["refunded"] != money(0) else ""
        events.append({"at": view["timestamps"]["accepted"], "event": "charged",
                       "detail": f"{charge['sell']} (price entry {charge['priced_by']})"
                                 f"{refund}{cost}"})
    for w in view["webhooks"]:
        events.append({"at": w["next_attempt_at"] or view["timestamps"]["accepted"],
                       "event": f"webhook {w['state']}",
                       "detail": f"{w['event']} to {w['url']}: {w['attempts']} attempts,"
                                 f" {w['error']}"})
    events += attempt_events(view["attempts"])
    # A receipt read before its submit_sm_resp was recorded (parked, then applied
    # with the record) carries an earlier time than "sent": a final status is
    # still shown after the sending it ends (its own time unchanged).
    sent = view["timestamps"].get("sent")
    after_sent = set(view["timestamps"]) - _BEFORE_SENT

    def order(e: dict[str, Any]) -> tuple[Any, int]:
        at = e["at"]
        if sent is not None and e["event"] in after_sent and at < sent:
            at = sent
        return at, TIMELINE_ORDER.get(e["event"], 7)

    return sorted(events, key=order)


#: Statuses a message has before it is sent (the rest follow its sending).
_BEFORE_SENT: Final = frozenset({"accepted", "scheduled", "queued", "sent"})
