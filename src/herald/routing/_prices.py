"""Buy prices: what a connector charges herald for one message part to a destination.

Least-cost rules ask a :class:`BuyPrices` (any object with its ``price``
method: the rating package's price lists fit it). :class:`PriceList` is a
simple one, read from CSV (:func:`parse_prices`, columns
``connector,mcc,mnc,country,price``): a row with ``mcc`` and ``mnc`` prices
that network, a row with ``country`` (ISO 3166 alpha-2) that country, a row
with neither is the connector's default. The most specific price wins:
network, then country, then default. Money is :class:`~decimal.Decimal`,
never a float.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Final, Protocol

from herald.intake import LineProblem, Network, TableFileError

__all__ = ["MAX_PRICES", "PRICE_COLUMNS", "BuyPrices", "PriceList", "parse_prices"]

PRICE_COLUMNS: Final = ("connector", "mcc", "mnc", "country", "price")
#: Rows a price list may have: every network of the world for a hundred connectors.
MAX_PRICES: Final = 500_000
#: Digits after the decimal point: prices per part are fractions of a cent.
MAX_PRICE_PLACES: Final = 6
#: The largest price per part (a typo guard: a misplaced point costs real money).
MAX_PRICE: Final = Decimal(1000)

_MCC = re.compile(r"[0-9]{3}")
_MNC = re.compile(r"[0-9]{2,3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_CONNECTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class BuyPrices(Protocol):
    """Buy prices by connector and destination."""

    def price(self, connector: str, network: Network | None, country: str | None) -> Decimal | None:
        """What ``connector`` charges per part for the destination, or ``None``
        (no price: least-cost rules put it after the priced connectors)."""
        ...


class PriceList:
    """Prices per connector: by network (MCC+MNC), by country, default."""

    __slots__ = ("_countries", "_defaults", "_networks", "rows")

    def __init__(self, rows: Iterable[tuple[str, str | None, str | None, Decimal]] = ()) -> None:
        """``rows``: (connector, MCC+MNC or None, country or None, price)."""
        self._networks: dict[tuple[str, str], Decimal] = {}
        self._countries: dict[tuple[str, str], Decimal] = {}
        self._defaults: dict[str, Decimal] = {}
        self.rows = 0
        for connector, mccmnc, country, price in rows:
            if mccmnc is not None:
                self._networks[connector, mccmnc] = price
            elif country is not None:
                self._countries[connector, country] = price
            else:
                self._defaults[connector] = price
            self.rows += 1

    def __len__(self) -> int:
        return self.rows

    def price(self, connector: str, network: Network | None, country: str | None) -> Decimal | None:
        if network is not None:
            found = self._networks.get((connector, network.mccmnc))
            if found is not None:
                return found
        if country is not None:
            found = self._countries.get((connector, country))
            if found is not None:
                return found
        return self._defaults.get(connector)


def _price(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"price {text!r} is not a decimal number (0.0123)") from None
    if not value.is_finite() or value < 0 or value > MAX_PRICE:
        raise ValueError(f"price {text!r} must be from 0 to {MAX_PRICE}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_PRICE_PLACES:
        raise ValueError(f"price {text!r} has more than {MAX_PRICE_PLACES} decimal places")
    return value


def parse_prices(lines: Iterable[str]) -> PriceList:
    """A price list from CSV lines (header row first; blank lines and lines
    whose first field begins with ``#`` are skipped).

    Raises :class:`~herald.intake.TableFileError` naming every bad line: a
    missing column, a bad connector name, MCC (3 digits) or MNC (2-3), an MNC
    without MCC or both a network and a country, a country that is not two
    capital letters, a price that is not a decimal from 0 to 1000 with at most
    six places, the same connector and destination twice.
    """
    problems: list[LineProblem] = []
    count = 0
    rows: list[tuple[str, str | None, str | None, Decimal]] = []
    seen: dict[tuple[str, str | None, str | None], int] = {}
    where: list[int] | None = None
    reader = csv.reader((line.removeprefix("\ufeff") for line in lines), strict=True)

    def bad(line: int, message: str) -> None:
        nonlocal count
        count += 1
        if len(problems) < 20:
            problems.append(LineProblem(line, message))

    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].lstrip()[:1] == "#":
                continue
            if where is None:
                names = [n.strip().lower() for n in row]
                missing = [c for c in PRICE_COLUMNS if c not in names]
                if missing:
                    bad(line, f"the header row must name the columns {', '.join(PRICE_COLUMNS)};"
                        f" missing: {', '.join(missing)}")
                    break
                where = [names.index(c) for c in PRICE_COLUMNS]
                continue
            if len(rows) + count >= MAX_PRICES:
                bad(line, f"more than {MAX_PRICES:,} prices")
                break
            try:
                connector, mcc, mnc, country, text = (
                    row[k].strip() if k < len(row) else "" for k in where)
                if not _CONNECTOR.fullmatch(connector):
                    raise ValueError(f"connector {connector!r} is not a connector name")
                mccmnc = None
                if mcc or mnc:
                    if not (_MCC.fullmatch(mcc) and _MNC.fullmatch(mnc)):
                        raise ValueError(f"mcc/mnc {mcc!r}/{mnc!r}: 3 and 2-3 digits,"
                                         " both or neither")
                    mccmnc = mcc + mnc
                if country and not _COUNTRY.fullmatch(country):
                    raise ValueError(f"country {country!r} is not an ISO 3166 code (DE)")
                if mccmnc and country:
                    raise ValueError("a row prices a network or a country, not both")
                price = _price(text)
            except ValueError as exc:
                bad(line, str(exc))
                continue
            key = (connector, mccmnc, country or None)
            earlier = seen.setdefault(key, line)
            if earlier != line:
                bad(line, f"{connector} has a price for this destination on line {earlier}")
                continue
            rows.append((connector, mccmnc, country or None, price))
    except csv.Error as exc:
        bad(reader.line_num, f"is not CSV: {exc}")
    if where is None and not count:
        bad(0, f"no header row ({','.join(PRICE_COLUMNS)})")
    if count:
        raise TableFileError("buy prices refused", problems, count)
    return PriceList(rows)
