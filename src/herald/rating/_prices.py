"""Price lists and the price of a message.

Theory of operation
-------------------
A :class:`PriceList` prices one segment (one SMS part) of a message by its
destination, with three kinds of entry, the most specific that applies
winning:

1. a **network**, by MCC/MNC (ITU-T E.212, written as the digits run
   together, ``26201``: how routes and the number tables name a network),
   known when the number tables resolve the destination;
2. a **country**, by its E.164 country calling code (``+49``), which every
   destination number begins with (:func:`country_code`), so a list priced
   by country works without any number table loaded;
3. the **default** (``default``), for every other destination.

A list without a default does not price every destination: :meth:`rate`
answers ``None`` for one it has no entry for, and the caller refuses the
message (an account may send only where it is priced).

The price of a message is the price of a segment times its segments,
rounded half to even to :data:`PLACES` decimal places (:func:`charge`):
prices may have up to :data:`MAX_PRICE_PLACES` places, charges and balances
are whole micro-units (:data:`MICROS` to one unit of currency), so every sum
of charges is exact. herald does not know currencies: all prices and
balances are in one currency the operator chooses.

Everything here is exact :class:`~decimal.Decimal` arithmetic under this
module's own context (never the thread's), no floats.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

from herald.intake import LineProblem, TableFileError
from herald.intake._networks import _csv_rows, _Problems  # one reader for every table file
from herald.store import PRICE_SCALE, Charge, PriceEntry, PriceKind, PriceSide, StoredPriceList

__all__ = [
    "DEFAULT",
    "MAX_PRICE",
    "MAX_PRICE_ENTRIES",
    "MAX_PRICE_PLACES",
    "MICROS",
    "PLACES",
    "PRICE_COLUMNS",
    "KeyKind",
    "LineProblem",
    "PriceKey",
    "PriceList",
    "Rating",
    "TableFileError",
    "charge",
    "country_code",
    "from_micros",
    "from_price_units",
    "parse_amount",
    "parse_key",
    "parse_price",
    "parse_price_list",
    "price_list_csv",
    "to_micros",
    "to_price_units",
]

#: Decimal places of a charge and of a balance: whole micro-units.
PLACES: Final = 6
#: Micro-units in one unit of currency.
MICROS: Final = 10**PLACES
#: Decimal places a price per segment may have (a charge is rounded to PLACES).
MAX_PRICE_PLACES: Final = 10
#: The largest price per segment: far above any SMS price, small enough that
#: price x 255 segments in micro-units fits SQLite's 64-bit integers many times.
MAX_PRICE: Final = Decimal(1_000_000)
#: Entries a list may have: every MCC/MNC in the world is about 2,000.
MAX_PRICE_ENTRIES: Final = 100_000
#: The CSV columns (header row), in the order export writes them.
PRICE_COLUMNS: Final = ("destination", "price")
#: How the default entry is written.
DEFAULT: Final = "default"

#: Enough digits for MAX_PRICE at MAX_PRICE_PLACES times 255 segments, exactly.
_CONTEXT: Final = Context(prec=40, rounding=ROUND_HALF_EVEN)
_QUANTUM: Final = Decimal(1).scaleb(-PLACES)
_MCCMNC = re.compile(r"[0-9]{5,6}")  # MCC (3 digits) + MNC (2 or 3)
_COUNTRY = re.compile(r"\+([1-9][0-9]{0,2})")
_PRICE = re.compile(r"[0-9]+(\.[0-9]+)?")  # plain decimal: no sign, exponent, NaN
_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")

# ITU-T E.164 Annex / list of assigned country codes: codes are prefix-free;
# the 1-digit codes are 1 (NANP) and 7, these are the 2-digit ones, every
# other code has 3 digits (assigned or not, a number's first three digits).
_TWO_DIGIT_CODES: Final = frozenset({
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
    "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
    "62", "63", "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94",
    "95", "98",
})


def country_code(digits: str) -> str:
    """The E.164 country calling code a number (E.164 digits) begins with:
    ``"1"`` for ``"14155552671"``, ``"49"`` for ``"491701234567"``."""
    if digits[:1] in ("1", "7"):
        return digits[:1]
    if digits[:2] in _TWO_DIGIT_CODES:
        return digits[:2]
    return digits[:3]


# -- money ---------------------------------------------------------------------------


# Rating runs for every message of a billed account, and a deployment has few
# distinct prices: the two Decimal steps are memoised (pure functions of
# hashable values). Measured with timeit on the 2-CPU VM: rate + charge() +
# the API's price_view went from ~12 us a message to ~3.3 us.
_MEMO: Final = 4096


@lru_cache(maxsize=_MEMO)
def charge(per_segment: Decimal, segments: int) -> Decimal:
    """``per_segment`` x ``segments``, rounded half to even to :data:`PLACES` places."""
    return _CONTEXT.multiply(per_segment, Decimal(segments)).quantize(_QUANTUM, context=_CONTEXT)


@lru_cache(maxsize=_MEMO)
def to_micros(amount: Decimal) -> int:
    """An amount of at most :data:`PLACES` places as whole micro-units;
    ``ValueError`` if it has more (round it with :func:`charge` first)."""
    micros = _CONTEXT.multiply(amount, Decimal(MICROS))
    if micros != micros.to_integral_value(context=_CONTEXT):
        raise ValueError(f"{amount} has more than {PLACES} decimal places")
    return int(micros)


def from_micros(micros: int) -> Decimal:
    """Micro-units as an amount with :data:`PLACES` places (``1500000`` -> ``1.500000``)."""
    return Decimal(micros).scaleb(-PLACES, context=_CONTEXT).quantize(_QUANTUM, context=_CONTEXT)


def to_price_units(price: Decimal) -> int:
    """A price per segment in the store's ``PRICE_SCALE`` parts of a unit."""
    units = _CONTEXT.multiply(price, Decimal(PRICE_SCALE))
    if units != units.to_integral_value(context=_CONTEXT) or units < 0:
        raise ValueError(f"price {price} has more than {MAX_PRICE_PLACES} decimal places")
    return int(units)


def from_price_units(units: int) -> Decimal:
    """:func:`to_price_units` back: the price with no trailing zeros (``0.04``)."""
    value = Decimal(units).scaleb(-MAX_PRICE_PLACES, context=_CONTEXT)
    # normalize() alone writes 100 as 1E+2: keep an exponent of at most 0
    value = value.normalize(context=_CONTEXT)
    return value.quantize(Decimal(1)) if value.as_tuple().exponent > 0 else value  # type: ignore[operator]


def _decimal(text: str, pattern: re.Pattern[str], places: int, what: str) -> Decimal:
    if not pattern.fullmatch(text):
        raise ValueError(f"{what} {text!r} is not a plain decimal number (like 0.0425)")
    value = Decimal(text)
    if -value.as_tuple().exponent > places:  # type: ignore[operator]  # finite here
        raise ValueError(f"{what} {text} has more than {places} decimal places")
    return value


def parse_price(text: str) -> Decimal:
    """A price per segment: a plain non-negative decimal of at most
    :data:`MAX_PRICE_PLACES` places, at most :data:`MAX_PRICE`; ``ValueError``
    naming what is wrong otherwise."""
    value = _decimal(text.strip(), _PRICE, MAX_PRICE_PLACES, "price")
    if value > MAX_PRICE:
        raise ValueError(f"price {text} is more than {MAX_PRICE}")
    return value


def parse_amount(text: str) -> Decimal:
    """An amount of money (a top-up, a credit limit): a plain decimal of at
    most :data:`PLACES` places, below 10^12 either way; ``ValueError`` otherwise."""
    try:
        value = _decimal(text.strip(), _AMOUNT, PLACES, "amount")
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"amount {text!r} is not a number") from None
    if abs(value) >= 10**12:
        raise ValueError(f"amount {text} is too large")
    return value


# -- keys ----------------------------------------------------------------------------


#: What an entry of a price list prices; the most specific kind (the smallest) wins.
KeyKind = PriceKind


@dataclass(frozen=True, slots=True)
class PriceKey:
    """One entry's destination: ``26201``, ``+49`` or ``default``."""

    kind: KeyKind
    value: str = ""  # MCC/MNC digits, country code digits, or "" for the default

    def __str__(self) -> str:
        match self.kind:
            case KeyKind.NETWORK:
                return self.value
            case KeyKind.COUNTRY:
                return "+" + self.value
            case KeyKind.DEFAULT:
                return DEFAULT


def parse_key(text: str) -> PriceKey:
    """A destination as a price list writes it; ``ValueError`` for anything else."""
    text = text.strip()
    if text.lower() == DEFAULT:
        return PriceKey(KeyKind.DEFAULT)
    if _MCCMNC.fullmatch(text):
        return PriceKey(KeyKind.NETWORK, text)
    found = _COUNTRY.fullmatch(text)
    if found:
        return PriceKey(KeyKind.COUNTRY, found.group(1))
    raise ValueError(
        f"destination {text!r} is not an MCC/MNC (5 or 6 digits, like 26201), "
        f"a country calling code (like +49) or {DEFAULT!r}"
    )


# -- lists and rating ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rating:
    """What a message costs: the entry that priced it, its price per segment,
    the segments and the charge (:func:`charge`); and where it goes (the
    country code and, if known, the network it was priced for)."""

    key: PriceKey
    per_segment: Decimal
    segments: int
    amount: Decimal
    country: str = ""
    network: str | None = None

    @property
    def micros(self) -> int:
        """The charge in micro-units (how balances hold it)."""
        return to_micros(self.amount)

    def charge(self) -> Charge:
        """The store's record of this charge (what ``accept`` takes from the balance)."""
        return Charge(self.country, self.network, str(self.key), self.micros)


@dataclass(frozen=True, slots=True)
class PriceList:
    """Prices per segment by network (MCC/MNC digits), country (calling code
    digits) and a default. Immutable; build one with :meth:`of` or
    :func:`parse_price_list`."""

    networks: Mapping[str, Decimal] = field(default_factory=dict)
    countries: Mapping[str, Decimal] = field(default_factory=dict)
    default: Decimal | None = None

    @classmethod
    def of(cls, entries: Iterable[tuple[PriceKey, Decimal]]) -> PriceList:
        """A list of ``entries`` (a later entry for the same key wins)."""
        networks: dict[str, Decimal] = {}
        countries: dict[str, Decimal] = {}
        default = None
        for key, price in entries:
            if key.kind is KeyKind.NETWORK:
                networks[key.value] = price
            elif key.kind is KeyKind.COUNTRY:
                countries[key.value] = price
            else:
                default = price
        return cls(networks, countries, default)

    def __len__(self) -> int:
        return len(self.networks) + len(self.countries) + (self.default is not None)

    def entries(self) -> Iterator[tuple[PriceKey, Decimal]]:
        """Every entry: networks, then countries (each in order), then the default."""
        for mccmnc in sorted(self.networks):
            yield PriceKey(KeyKind.NETWORK, mccmnc), self.networks[mccmnc]
        for code in sorted(self.countries, key=lambda c: (len(c), c)):
            yield PriceKey(KeyKind.COUNTRY, code), self.countries[code]
        if self.default is not None:
            yield PriceKey(KeyKind.DEFAULT), self.default

    def price(self, to: str, network: str | None = None) -> tuple[PriceKey, Decimal] | None:
        """The entry that prices a segment to ``to`` (E.164 digits) on
        ``network`` (its MCC/MNC digits, if known): network, country,
        default; ``None`` if the list prices none of them."""
        if network is not None:
            found = self.networks.get(network)
            if found is not None:
                return PriceKey(KeyKind.NETWORK, network), found
        code = country_code(to)
        found = self.countries.get(code)
        if found is not None:
            return PriceKey(KeyKind.COUNTRY, code), found
        if self.default is not None:
            return PriceKey(KeyKind.DEFAULT), self.default
        return None

    def rate(self, to: str, network: str | None, segments: int) -> Rating | None:
        """What a message of ``segments`` parts to ``to`` costs; ``None`` if
        the list does not price its destination."""
        found = self.price(to, network)
        if found is None:
            return None
        key, per_segment = found
        return Rating(key, per_segment, segments, charge(per_segment, segments),
                      country_code(to), network)  # fmt: skip

    def stored(self, side: PriceSide, owner: str, now: float) -> StoredPriceList:
        """This list as the store keeps it (prices in ``PRICE_SCALE`` parts)."""
        return StoredPriceList(side, owner, tuple(
            PriceEntry(key.kind, key.value, to_price_units(price)) for key, price in self.entries()
        ), now)  # fmt: skip

    @classmethod
    def from_stored(cls, stored: StoredPriceList) -> PriceList:
        """The list the store keeps as ``stored``."""
        return cls.of((PriceKey(e.kind, e.key), from_price_units(e.price))
                      for e in stored.entries)  # fmt: skip


def parse_price_list(lines: Iterable[str]) -> PriceList:
    """A price list from CSV text (``lines`` as a file opened with
    ``newline=""`` gives them). Columns: ``destination,price``; other columns
    are ignored, blank lines and lines beginning with ``#`` skipped.

    Raises :class:`TableFileError` naming each refused line: a destination
    that is not an MCC/MNC, a country calling code or ``default``, or is
    given twice; a price that is not a plain decimal of at most
    :data:`MAX_PRICE_PLACES` places up to :data:`MAX_PRICE`; a row with
    another number of fields than the header; no header; no entries; more
    than :data:`MAX_PRICE_ENTRIES` entries.
    """
    problems = _Problems()
    seen: dict[PriceKey, int] = {}
    entries: list[tuple[PriceKey, Decimal]] = []
    for line, (destination, price) in _csv_rows(
        lines, PRICE_COLUMNS, "the price list", MAX_PRICE_ENTRIES, problems
    ):
        try:
            key = parse_key(destination)
            value = parse_price(price)
        except ValueError as exc:
            problems.add(line, str(exc))
            continue
        earlier = seen.setdefault(key, line)
        if earlier != line:
            problems.add(line, f"destination {key} is already given on line {earlier}")
            continue
        entries.append((key, value))
    if problems.count:
        raise TableFileError("price list refused", problems.shown, problems.count)
    return PriceList.of(entries)


def price_list_csv(prices: PriceList) -> Iterator[str]:
    """The list as CSV lines (header first) that :func:`parse_price_list` reads back."""
    yield ",".join(PRICE_COLUMNS) + "\n"
    for key, price in prices.entries():
        yield f"{key},{price:f}\n"
