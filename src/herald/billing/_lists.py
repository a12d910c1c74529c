"""A process's view of the sell price lists, reloaded when the store says they changed.

Theory of operation
-------------------
``herald prices import`` (another process, any time) stores a list and
increases the store's price-list generation. Every herald process that
accepts messages holds a :class:`PriceLists`; its :meth:`~PriceLists.run`
task reads that generation every :data:`CHECK_INTERVAL` seconds (one
one-row read) and, when it has moved, reads every sell list and swaps a new
immutable mapping (account id -> :class:`~herald.rating.PriceList`) in with
one assignment. Intake asks :meth:`~PriceLists.sell` for each submission:
an account with a list is charged (:func:`rate`), one without is not, as
before billing existed.

Buy lists are not held here: the store prices a message's connector when
the message is sent (see ``docs/billing.md``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final

from herald.intake import DestinationRules
from herald.rating import PriceList, Rating
from herald.store import BillingStore, PriceSide, StoreBusy, StoreClosed, StoreUnavailable

__all__ = ["CHECK_INTERVAL", "PriceLists", "Unpriced", "no_prices", "rate"]

log = logging.getLogger("herald.billing")

#: Seconds between looks at the store's price-list generation: how long an
#: import takes to apply in a running herald, at the cost of one tiny read.
CHECK_INTERVAL: Final = 2.0


def no_prices(account_id: int) -> PriceList | None:
    """No account is billed (an API or SMPP front without billing)."""
    del account_id
    return None


class Unpriced(Exception):
    """The account's price list has no entry for the destination (and no
    default): the account may not send there."""


def rate(prices: PriceList, to: str, segments: int, rules: DestinationRules) -> Rating:
    """What a message of ``segments`` parts to ``to`` (E.164 digits) costs under
    ``prices``, its network taken from the number tables of ``rules``
    (``.charge()`` is what the store takes). Raises :class:`Unpriced`."""
    network = rules.index.network_of(to)
    rating = prices.rate(to, None if network is None else network.mccmnc, segments)
    if rating is None:
        raise Unpriced(to)
    return rating


class PriceLists:
    """The sell lists accounts are charged by, reloaded when they change."""

    def __init__(self, store: BillingStore, *, interval: float = CHECK_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._sell: Mapping[int, PriceList] = {}
        self.generation = -1  # of the lists in use; -1: none read yet

    def sell(self, account_id: int) -> PriceList | None:
        """The account's sell list as it stands, or ``None`` (not billed)."""
        return self._sell.get(account_id)

    async def refresh(self) -> bool:
        """Load the lists if their generation moved; whether new ones are in use.
        Raises the store's errors (the old lists stay in use; try again later)."""
        current = await self._store.price_lists_generation()
        if current == self.generation:
            return False
        stored = await self._store.price_lists(PriceSide.SELL)
        self._sell = {int(s.owner): PriceList.from_stored(s) for s in stored}
        self.generation = current
        log.info("price lists of generation %d in use: %d billed accounts",
                 current, len(self._sell))  # fmt: skip
        return True

    async def run(self) -> None:
        """Refresh every ``interval`` seconds until cancelled or the store closes."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except StoreClosed:
                return
            except (StoreBusy, StoreUnavailable) as exc:  # e.g. PostgreSQL away: next time
                log.warning("reading the price lists failed; the previous ones stay in use:"
                            " %s", exc)
            except Exception:  # the old lists stay in use
                log.exception("reading the price lists failed; the previous ones stay in use")
