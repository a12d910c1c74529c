"""The ``[[classes]]`` entries in an intake process, kept current with the store.

Theory of operation
-------------------
A message whose request names no priority class gets the class of the first
``[[classes]]`` entry of the routes in force that matches it, else its
account's default, else transactional (``docs/routing.md``). The HTTP API and
the SMPP front ask :meth:`LiveClasses.of` at acceptance: synchronous, no I/O.
With no entries that is one attribute check; with entries, the answer is
cached for :data:`~herald.routes._live.CACHE_SECONDS` by (account, network,
prefix class, sender, tag), as :class:`~herald.routes.LiveRouting` caches
decisions (the country is taken to be the network's; a destination of
unknown network is classified afresh when entries name countries).

:meth:`LiveClasses.run` reads the routing generation every
:data:`~herald.routes.CHECK_INTERVAL` seconds (one one-row read) and, when it
moved, reads and parses the routes and swaps a new immutable
:class:`~herald.routing.Classifier` in. Routes that cannot be read or are
refused leave the entries in use as they are (logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from herald.intake import EMPTY_INDEX, Network, NumberIndex
from herald.routes._live import CACHE_SECONDS, CHECK_INTERVAL, MAX_CACHED
from herald.routing import Classifier, RouteQuery, RoutesFileError, country_of, parse_routes
from herald.store import DEFAULT_PRIORITY, Priority, Store, StoreBusy, StoreClosed, StoreUnavailable

__all__ = ["LiveClasses"]

log = logging.getLogger("herald.routes")

_Key = tuple[int, Network, str, str, str | None]
_NO_NETWORK: Final = Network("000", "00")


def _no_index() -> NumberIndex:
    return EMPTY_INDEX


class LiveClasses:
    """The class entries intake applies, and the task that keeps them current.

    ``index``: the number tables as they stand (the service passes those
    destinations are checked against), for entries naming networks.
    """

    def __init__(self, store: Store, *, index: Callable[[], NumberIndex] = _no_index,
                 interval: float = CHECK_INTERVAL) -> None:
        self._store = store
        self._index = index
        self.interval = interval
        self.classifier = Classifier()
        self.generation = -1  # of the routes in use; -1: none read yet
        self._damaged = -1
        self._cache: dict[_Key, Priority | None] = {}
        self._cache_until = 0.0

    def of(self, account_id: int, account: str, to: str, sender: str, tag: str | None,
           default: Priority | None, now: float) -> Priority | None:
        """The class of a message whose request named none: the first matching
        entry's, else ``default`` (the account's; ``None``: transactional)."""
        classifier = self.classifier
        if not classifier.entries:
            return default
        network = None
        if classifier.uses_network or classifier.uses_country:
            network = self._index().network_of(to)
        key: _Key | None = None
        if network is not None or not classifier.uses_country:
            if now >= self._cache_until or len(self._cache) >= MAX_CACHED:
                self._cache.clear()
                self._cache_until = now + CACHE_SECONDS
            key = (account_id, network or _NO_NETWORK, classifier.prefix_class(to), sender, tag)
            if key in self._cache:
                found = self._cache[key]
                return default if found is None else found
        query = RouteQuery("", account, to, sender, DEFAULT_PRIORITY, tag, network,
                           country_of(to) if classifier.uses_country else None)
        chosen = classifier.classify(query, now).priority
        if key is not None:
            self._cache[key] = chosen
        return default if chosen is None else chosen

    async def refresh(self) -> bool:
        """Load the entries if the routing generation moved; whether new ones
        are in use. Raises the store's errors (try again later) and
        :class:`RoutesFileError` (not tried again until the routes change)."""
        current = await self._store.routing_generation()
        if current in (self.generation, self._damaged):
            return False
        stored = await self._store.get_routes()
        try:
            plan = parse_routes(stored.rules) if stored is not None else None
        except RoutesFileError:
            self._damaged = current
            raise
        self.classifier = (Classifier(plan.classes, groups=plan.groups)
                           if plan is not None else Classifier())  # fmt: skip
        self._cache = {}
        self.generation = current
        if self.classifier.entries:
            log.info("routing generation %d: %d class entries in use", current,
                     len(self.classifier.entries))
        return True

    async def run(self) -> None:
        """Refresh every ``interval`` seconds until cancelled or the store closes."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except StoreClosed:
                return
            except (StoreBusy, StoreUnavailable) as exc:  # e.g. PostgreSQL away: next time
                log.warning("reading the routes failed; the class entries in use stay: %s", exc)
            except RoutesFileError as exc:
                log.error("stored routes refused; the class entries in use stay: %s", exc)
            except Exception:
                log.exception("reading the routes failed; the class entries in use stay")
