"""Buy prices: what a connector charges herald for one message part to a destination.

Least-cost rules ask a :class:`BuyPrices`. Buy prices have one home: each
connector's buy list of billing (``herald prices import --connector``, a
:class:`herald.rating.PriceList`), the very lists a message's CDR takes its
buy price from when it is sent, so least-cost choices and margins agree.
:class:`ConnectorPrices` answers for those lists: the most specific entry
wins (network by MCC/MNC, then country calling code, then default).
Money is :class:`~decimal.Decimal`, never a float.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from herald.intake import Network
from herald.rating import PriceKey, PriceList

__all__ = ["BuyPrices", "ConnectorPrices"]


class BuyPrices(Protocol):
    """Buy prices by connector and destination."""

    def price(self, connector: str, to: str, network: Network | None
              ) -> tuple[PriceKey, Decimal] | None:
        """What ``connector`` charges per part to ``to`` (E.164 digits) on
        ``network`` (if known), and the entry that prices it; ``None``: no
        price (least-cost rules put it after the priced connectors)."""
        ...


class ConnectorPrices:
    """Each connector's buy list (connector name -> :class:`~herald.rating.PriceList`)."""

    __slots__ = ("_lists",)

    def __init__(self, lists: Mapping[str, PriceList] | None = None) -> None:
        self._lists = dict(lists or {})

    def __len__(self) -> int:
        """Entries in every list."""
        return sum(len(p) for p in self._lists.values())

    @property
    def connectors(self) -> frozenset[str]:
        """The connectors with a buy list."""
        return frozenset(self._lists)

    def price(self, connector: str, to: str, network: Network | None
              ) -> tuple[PriceKey, Decimal] | None:
        found = self._lists.get(connector)
        if found is None:
            return None
        return found.price(to, None if network is None else network.mccmnc)
