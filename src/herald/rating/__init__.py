"""Rating: what a message costs (pure; no I/O, no clock).

:mod:`herald.rating._prices` holds price lists, their CSV form and the
rounding rule; docs/billing.md describes them for operators.
"""

from herald.rating._prices import (
    DEFAULT,
    MAX_PRICE,
    MAX_PRICE_ENTRIES,
    MAX_PRICE_PLACES,
    MICROS,
    PLACES,
    PRICE_COLUMNS,
    KeyKind,
    LineProblem,
    PriceKey,
    PriceList,
    Rating,
    TableFileError,
    charge,
    country_code,
    from_micros,
    from_price_units,
    parse_amount,
    parse_key,
    parse_price,
    parse_price_list,
    price_list_csv,
    to_micros,
    to_price_units,
)

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
