"""A process's router, kept current with the store while herald runs.

Theory of operation
-------------------
``herald routes import`` and ``herald connectors disable|enable`` (other
processes, any time) write the store and increase its routing generation.
:class:`LiveRouting`'s :meth:`~LiveRouting.run` task reads that generation
every :data:`CHECK_INTERVAL` seconds (one one-row read) and, when it moved,
reads the routes file and the connector states, parses them (pure:
:func:`~herald.routing.parse_routes`) and swaps a new immutable
:class:`~herald.routing.Router` in with one assignment. Least-cost rules
price connectors by billing's buy lists: at the same check it reads the
store's price-list generation, and when ``herald prices import`` moved it,
the buy lists (:func:`read_buy_prices`) and swaps a new router in. Every
:data:`HEALTH_INTERVAL` seconds it also reads the delivery counts of the
connectors least-cost rules name (bounded, read-only; see
``Store.delivery_counts``), and the number tables when their generation
moved (the network of a destination). Anything that cannot be read or is
refused leaves the router in use as it is (logged) until the next change.

:meth:`~LiveRouting.decide` is what dispatch calls for each claimed
message: synchronous, no I/O. Without rules it is the ``[[routes]]`` prefix
lookup and nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable
from typing import Final

from herald.intake import EMPTY_INDEX, Network, NumberIndex
from herald.numbers import load_index
from herald.rating import PriceList
from herald.routing import (
    FALLBACK,
    ConnectorPrices,
    Decision,
    Health,
    LeastCost,
    RouteQuery,
    Router,
    RoutesFileError,
    RouteTable,
    RoutingPlan,
    country_of,
    parse_routes,
)
from herald.store import (
    BillingStore,
    Message,
    PriceSide,
    Priority,
    Store,
    StoreBusy,
    StoreClosed,
    StoredRoutes,
    StoreUnavailable,
)

__all__ = [
    "CHECK_INTERVAL", "HEALTH_INTERVAL", "LiveRouting", "build_router", "parse_stored",
    "read_buy_prices", "read_health",
]

log = logging.getLogger("herald.routes")

#: Seconds between looks at the routing generation: how long ``herald routes
#: import`` or ``herald connectors disable`` takes to apply in a running herald.
CHECK_INTERVAL: Final = 2.0
#: Seconds between readings of the connectors' delivery counts.
HEALTH_INTERVAL: Final = 10.0
#: Seconds a cached decision is reused (see :meth:`LiveRouting.decide`): how
#: late a time window's start or end may apply. A new router empties the cache.
CACHE_SECONDS: Final = 5.0
#: Decisions cached at most (the cache is emptied when it is full).
MAX_CACHED: Final = 20_000

_Key = tuple[int, Network, str, str, Priority, str | None]


def parse_stored(stored: StoredRoutes | None) -> RoutingPlan:
    """The plan of stored routes. Raises :class:`RoutesFileError`."""
    return RoutingPlan() if stored is None else parse_routes(stored.rules)


async def read_buy_prices(store: BillingStore) -> ConnectorPrices:
    """Every connector's buy list as the store keeps it (``herald prices import
    --connector``): what least-cost rules price by, as CDRs do."""
    stored = await store.price_lists(PriceSide.BUY)
    return ConnectorPrices({s.owner: PriceList.from_stored(s) for s in stored})


def health_connectors(plan: RoutingPlan) -> frozenset[str]:
    """The connectors whose delivery rate some least-cost rule looks at."""
    return frozenset(c for r in plan.rules if isinstance(r.action, LeastCost)
                     for c in r.action.connectors)  # fmt: skip


async def read_health(
    store: Store, plan: RoutingPlan, now: float, disabled: Collection[str],
    connectors: Iterable[str] = (),
) -> list[Health]:
    """Each connector's health: the delivery counts of ``connectors`` and of
    those least-cost rules name, and the operator's ``disabled`` ones."""
    names = set(connectors) | health_connectors(plan)
    policy = plan.health
    counts = await store.delivery_counts(names, now - policy.window, policy.max_samples)
    health = [Health(n, c.delivered, c.finals, n in disabled) for n, c in counts.items()]
    health += [Health(n, disabled=True) for n in disabled if n not in counts]
    return health


def build_router(plan: RoutingPlan, prices: ConnectorPrices, fallback: RouteTable | None,
                 health: Iterable[Health]) -> Router:
    return Router(plan.rules, groups=plan.groups, fallback=fallback, prices=prices,
                  health=health, policy=plan.health)


class LiveRouting:
    """The router dispatch decides with, and the task that keeps it current.

    ``known``: the connectors this herald has; routes naming others are
    refused (logged) and the ones in use stay.
    """

    def __init__(
        self,
        store: Store,
        fallback: RouteTable,
        known: Collection[str],
        clock: Callable[[], float],
        *,
        interval: float = CHECK_INTERVAL,
        health_interval: float = HEALTH_INTERVAL,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._known = frozenset(known)
        self._clock = clock
        self.interval = interval
        self.health_interval = health_interval
        self.router = Router(fallback=fallback)
        self.plan = RoutingPlan()
        self._prices = ConnectorPrices()
        self.prices_generation = -1  # of the buy lists in use
        self._disabled: frozenset[str] = frozenset()
        self._health: list[Health] = []
        self._index: NumberIndex = EMPTY_INDEX
        self._accounts: dict[int, str] = {}
        self._accounts_stale = False
        self._uses_accounts = False
        self._uses_network = False
        self._uses_country = False
        self.generation = -1  # of the routes in use; -1: none read yet
        self._damaged = -1
        self._numbers_generation = -1
        self._health_at = 0.0
        self._cache: dict[_Key, Decision] = {}
        self._cache_until = 0.0

    # -- deciding (dispatch, per message) ---------------------------------------------

    def decide(self, message: Message) -> Decision:
        """The decision for ``message`` now. Raises :class:`~herald.routing.NoRoute`,
        :class:`~herald.routing.InvalidNumber`.

        Decisions are cached for :data:`CACHE_SECONDS` by (account, network,
        prefix class, sender, priority, tag): what the rules look at, but for
        the country, taken to be the same for every number of one network
        (an MCC belongs to one country), and the message id and ``to``, which
        :meth:`~herald.routing.Router.again` applies to a cached decision
        (the split, the prefix routes). A destination without a known network
        is decided afresh each time.
        """
        router = self.router
        if not router.rules:
            if not router.disabled:  # the prefix routes alone, as before rules existed
                return Decision(self._fallback.lookup(message.to), FALLBACK)
            return router.decide(_bare(message), 0.0)
        to = message.to
        network = self._index.network_of(to) if self._uses_network else None
        now = self._clock()
        key: _Key | None = None
        if network is not None or not self._uses_country:
            if now >= self._cache_until or len(self._cache) >= MAX_CACHED:
                self._cache.clear()
                self._cache_until = now + CACHE_SECONDS
            key = (message.account_id, network or _NO_NETWORK, router.prefix_class(to),
                   message.sender, message.priority, message.tag)
            cached = self._cache.get(key)
            if cached is not None:
                return router.again(cached, message.id, to)
        account = None
        if self._uses_accounts:
            account = self._accounts.get(message.account_id)
            if account is None:  # a new account: read the names at the next refresh
                self._accounts_stale = True
        query = RouteQuery(
            message.id, account, to, message.sender, message.priority, message.tag, network,
            country_of(to) if self._uses_country else None,
        )
        decision = router.decide(query, now)
        if key is not None:
            self._cache[key] = decision
        return decision

    # -- keeping current ----------------------------------------------------------------

    async def refresh(self) -> bool:
        """Load the routes, or the buy lists, if their generation moved; whether
        a new router is in use.

        Raises the store's errors (try again later), :class:`RoutesFileError`
        and ``ValueError`` for stored routes this herald refuses (not tried
        again until they change).
        """
        current = await self._store.routing_generation()
        changed = current not in (self.generation, self._damaged)
        if changed:
            try:
                stored = await self._store.get_routes()
                plan = parse_stored(stored)
                unknown = plan.connectors - self._known
                if unknown:
                    raise ValueError(f"routes name connectors herald.toml does not have:"
                                     f" {', '.join(sorted(unknown))}")
            except ValueError:
                self._damaged = current
                raise
            states = await self._store.connector_states()
            self.plan = plan
            self._disabled = frozenset(s.connector for s in states if s.disabled)
            self._uses_accounts = any(r.accounts or r.groups for r in plan.rules)
            least_cost = any(isinstance(r.action, LeastCost) for r in plan.rules)
            # Buy lists price by calling code too: a least-cost decision for a
            # number of unknown network is not cached (see decide).
            self._uses_country = least_cost or any(r.countries for r in plan.rules)
            # The network keys the decision cache, sparing the country's lookup
            # (phonenumbers' for a shared country code) on a hit.
            self._uses_network = self._uses_country or any(r.networks for r in plan.rules)
        priced = await self._refresh_prices()
        await self._refresh_tables(force=changed)
        if changed:  # only now: a failed read above is tried again at the next refresh
            self.generation = current
            self._swap()
            log.info("routing generation %d in use: %d rules, %d buy prices, disabled: %s",
                     current, len(self.plan.rules), len(self._prices),
                     ", ".join(sorted(self._disabled)) or "none")  # fmt: skip
        elif priced:
            self._swap()
            log.info("buy prices of generation %d in use: %d prices",
                     self.prices_generation, len(self._prices))
        return changed or priced

    async def _refresh_prices(self) -> bool:
        """Read the buy lists if their generation moved; whether it did."""
        current = await self._store.price_lists_generation()
        if current == self.prices_generation:
            return False
        self._prices = await read_buy_prices(self._store)
        self.prices_generation = current
        return True

    async def _refresh_tables(self, *, force: bool) -> None:
        """Health, accounts and number tables, when due or after a change."""
        now = self._clock()
        swap = False
        if force or now - self._health_at >= self.health_interval:
            self._health_at = now
            if self.plan.rules or self._disabled:
                self._health = await read_health(self._store, self.plan, now, self._disabled)
                swap = True
            self._accounts_stale = self._uses_accounts
        if self._accounts_stale:
            self._accounts_stale = False
            self._accounts = {a.id: a.name for a in await self._store.list_accounts()}
            self._cache = {}  # decisions made without a new account's name
        if self._uses_network:
            numbers = await self._store.number_tables_generation()
            if numbers != self._numbers_generation:
                self._numbers_generation, self._index = await load_index(self._store)
        if swap and not force:
            self._swap()

    def _swap(self) -> None:
        self.router = build_router(self.plan, self._prices, self._fallback, self._health)
        self._cache = {}  # decisions of the old router

    async def run(self) -> None:
        """Refresh every ``interval`` seconds until cancelled or the store closes."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except StoreClosed:
                return
            except (StoreBusy, StoreUnavailable) as exc:  # e.g. PostgreSQL away: next time
                log.warning("reading the routes failed; the routes in use stay: %s", exc)
            except (RoutesFileError, ValueError) as exc:
                log.error("stored routes refused; the routes in use stay: %s", exc)
            except Exception:
                log.exception("reading the routes failed; the routes in use stay")


_NO_NETWORK: Final = Network("000", "00")


def _bare(message: Message) -> RouteQuery:
    """A query for a router without rules: only ``to`` is looked at."""
    return RouteQuery(message.id, None, message.to, message.sender, message.priority,
                      message.tag, None, None)
