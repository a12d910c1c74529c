"""The store's billing values: price lists, balances, charges and CDRs.

Money is integers here: a charge, a balance and a credit limit in
micro-units (:data:`MICROS` to one unit of currency), a price per segment in
:data:`PRICE_SCALE` parts of a unit (ten decimal places), so the store adds
and compares amounts exactly, in SQL, inside the accepting transaction.
:mod:`herald.rating` turns them into :class:`~decimal.Decimal` and back;
docs/billing.md describes the rules for operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from herald.store._errors import InvalidRecord
from herald.store._model import Status

__all__ = [
    "MAX_AMOUNT",
    "MAX_PRICE_KEY_LENGTH",
    "MAX_PRICE_LIST_ENTRIES",
    "MICROS",
    "PRICE_SCALE",
    "Balance",
    "Cdr",
    "Charge",
    "MarginRow",
    "PriceEntry",
    "PriceKind",
    "PriceSide",
    "RefundPolicy",
    "StoredPriceList",
]

#: Micro-units in one unit of currency: charges and balances are whole micro-units.
MICROS: Final = 10**6
#: Parts of a unit a price per segment is counted in (ten decimal places).
PRICE_SCALE: Final = 10**10
#: The largest balance, credit limit or top-up, either way: 10^12 units of
#: currency in micro-units, 10^18, below SQLite's 2^63.
MAX_AMOUNT: Final = 10**18
#: Characters of a price list entry's key (an MCC/MNC has 6, a country code 3).
MAX_PRICE_KEY_LENGTH: Final = 8
#: Entries of one stored price list.
MAX_PRICE_LIST_ENTRIES: Final = 100_000


class PriceSide(IntEnum):
    """Whose price list: what an account pays (sell) or what a connector costs (buy)."""

    SELL = 0  # owner: the account id, in decimal
    BUY = 1  # owner: the connector's name


class PriceKind(IntEnum):
    """What an entry prices; a smaller value is more specific and wins."""

    NETWORK = 0  # key: MCC and MNC digits run together ("26201")
    COUNTRY = 1  # key: the E.164 country calling code's digits ("49")
    DEFAULT = 2  # key: ""


class RefundPolicy(IntEnum):
    """When a charged message's price goes back to its account (once, when its
    final status is written)."""

    NONE = 0  # never
    REJECTED = 1  # rejected upstream, failed in herald or cancelled: never sent on
    UNDELIVERED = 2  # every final status but delivered

    @property
    def label(self) -> str:
        return self.name.lower()

    def refunds(self, status: Status) -> bool:
        """Whether a message that ended with ``status`` is refunded."""
        return status in _REFUNDED[self]


_REFUNDED: Final[dict[RefundPolicy, frozenset[Status]]] = {
    RefundPolicy.NONE: frozenset(),
    RefundPolicy.REJECTED: frozenset({Status.REJECTED, Status.FAILED, Status.CANCELLED}),
    RefundPolicy.UNDELIVERED: frozenset(
        {Status.UNDELIVERED, Status.EXPIRED, Status.REJECTED, Status.FAILED, Status.CANCELLED}
    ),
}


@dataclass(frozen=True, slots=True)
class PriceEntry:
    """One entry of a price list: the price of a segment in :data:`PRICE_SCALE` parts."""

    kind: PriceKind
    key: str
    price: int

    def __post_init__(self) -> None:
        if len(self.key) > MAX_PRICE_KEY_LENGTH or (self.kind is PriceKind.DEFAULT) != (
            self.key == ""
        ):
            raise InvalidRecord("key", "an MCC/MNC, a country code, or empty for the default")
        if not 0 <= self.price <= MAX_AMOUNT:
            raise InvalidRecord("price", f"must be 0..{MAX_AMOUNT}")


@dataclass(frozen=True, slots=True)
class StoredPriceList:
    """A stored price list, replaced whole by each import."""

    side: PriceSide
    owner: str  # the account id (sell) or the connector's name (buy)
    entries: tuple[PriceEntry, ...]
    imported_at: float


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's money: ``balance`` may go down to ``-credit_limit``
    (micro-units); ``refund_policy`` says which failures are refunded."""

    account_id: int
    balance: int
    credit_limit: int
    refund_policy: RefundPolicy

    @property
    def available(self) -> int:
        """What the account may still spend, in micro-units."""
        return self.balance + self.credit_limit


@dataclass(frozen=True, slots=True)
class Charge:
    """What accepting one message costs its account, with what priced it."""

    country: str  # the E.164 country calling code's digits of its destination
    network: str | None  # its MCC/MNC, when the number tables know it
    price_key: str  # the price list entry that priced it ("26201", "+49", "default")
    amount: int  # micro-units

    def __post_init__(self) -> None:
        if not 0 <= self.amount <= MAX_AMOUNT:
            raise InvalidRecord("amount", f"must be 0..{MAX_AMOUNT}")
        if not (0 < len(self.price_key) <= MAX_PRICE_KEY_LENGTH) or len(self.country) > 3:
            raise InvalidRecord("price_key", "not a price list key")


@dataclass(frozen=True, slots=True)
class Cdr:
    """The charging record of a message: what its account paid (``sell``, less
    ``refunded``) and what sending it cost (``buy``, from the buy list of the
    connector that sent it, when it was sent; ``None`` when it was not sent or
    that connector has no buy list). Money in micro-units."""

    message_id: str
    account_id: int
    accepted_at: float
    country: str
    network: str | None
    segments: int
    price_key: str
    sell: int
    refunded: int
    connector: str | None
    buy: int | None
    status: Status


@dataclass(frozen=True, slots=True)
class MarginRow:
    """One line of a margin report: messages, their revenue (sell less refunds)
    and their known cost (buy), in micro-units; ``unpriced`` counts messages
    sent without a buy price (their cost is missing from ``cost``)."""

    key: str
    messages: int
    revenue: int
    cost: int
    unpriced: int

    @property
    def margin(self) -> int:
        return self.revenue - self.cost
